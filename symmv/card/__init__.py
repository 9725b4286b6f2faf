"""symmv.card"""
