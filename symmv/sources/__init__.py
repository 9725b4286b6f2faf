"""symmv.sources"""
