"""symmv.io"""
