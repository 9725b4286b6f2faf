"""symmv.matching"""
