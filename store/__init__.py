"""Content-addressed storage with crash-safe writes. Knows nothing of Docker or gen."""
from store import errors
from store.canonical import decode, digest, encode, ensure_canonical, hash_value
from store.errors import (
    AmbiguousPrefix,
    CorruptObject,
    EncodingError,
    InvalidHash,
    LockTimeout,
    MissingObject,
    StateUnwritable,
    StoreError,
)
from store.fsutil import FileLock, atomic_symlink, atomic_write, ensure_dir, fsync_dir, read_link
from store.objects import Store, VerifyReport

__all__ = [
    "AmbiguousPrefix",
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
