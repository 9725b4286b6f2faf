"""symmv.pipeline"""
