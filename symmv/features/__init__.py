"""symmv.features"""
