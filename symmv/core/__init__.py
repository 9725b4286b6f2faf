"""symmv.core"""
