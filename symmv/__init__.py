"""symmv: build the SymMV video + symbolic-music dataset; train and evaluate V-MusProd on it."""
__version__ = "0.1.0"


def load(table, split=None, root=None, columns=None):
    """Read a SymMV table as pandas: `symmv.load("notes", split="train", root="data/symmv-demo")`."""
    from symmv.core.shards import load as _load

    return _load(table, split=split, root=root, columns=columns)
