"""Content-addressed storage with crash-safe writes. Knows nothing of Docker or gen."""
import importlib

# Lazy exports (PEP 562): `from store.fsutil import ...` need not load msgpack and blake3.
_HOME = {
    "decode": "canonical", "digest": "canonical", "encode": "canonical", "ensure_canonical": "canonical",
    "hash_value": "canonical",
    "AmbiguousPrefix": "errors", "CorruptObject": "errors", "EncodingError": "errors", "InvalidHash": "errors",
    "LockTimeout": "errors", "MissingObject": "errors", "StateUnwritable": "errors", "StoreError": "errors",
    "FileLock": "fsutil", "atomic_symlink": "fsutil", "atomic_write": "fsutil", "ensure_dir": "fsutil",
    "fsync_dir": "fsutil", "read_link": "fsutil",
    "Store": "objects", "VerifyReport": "objects", "BlobStore": "blobs",
}


def __getattr__(name: str):
    if name == "errors":
        return importlib.import_module("store.errors")
    if name in _HOME:
        return getattr(importlib.import_module(f"store.{_HOME[name]}"), name)
    raise AttributeError(f"module 'store' has no attribute {name!r}")


__all__ = [
    "AmbiguousPrefix",
    "BlobStore",
    "CorruptObject",
    "EncodingError",
    "FileLock",
    "InvalidHash",
    "LockTimeout",
    "MissingObject",
    "StateUnwritable",
    "Store",
    "StoreError",
    "VerifyReport",
    "atomic_symlink",
    "atomic_write",
    "decode",
    "digest",
    "encode",
    "ensure_canonical",
    "ensure_dir",
    "errors",
    "fsync_dir",
    "hash_value",
    "read_link",
]
