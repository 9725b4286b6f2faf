"""symmv.evaluation"""
