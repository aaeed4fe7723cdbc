"""The state directory's secret key, and the keyed digest of a secret's value it makes.

The digest changes when a secret's value changes (so the generation changes and the services using
it are replaced) but, keyed with this state directory's own random key, reveals nothing about a
low-entropy value to a reader of the store.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from blake3 import blake3

from gen.errors import SpecError
from store import atomic_write
from store.fsutil import ensure_dir

KEY_FILE = "secret.key"


def secret_key(state_dir: Path) -> bytes:
    """This state directory's random key (created once, mode 0600)."""
    path = Path(state_dir) / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        ensure_dir(state_dir)
        atomic_write(path, os.urandom(32), mode=0o600)
        return path.read_bytes()


def keyed_secret_digest(key: bytes) -> Callable[[str, str], str]:
    """digest(file, key_path): the keyed blake3 of a secret file's content; SpecError naming key_path
    when the file cannot be read."""
    def digest(path: str, key_path: str) -> str:
        try:
            with open(path, "rb") as f:
                return blake3(f.read(), key=key).hexdigest()
        except OSError as e:
            raise SpecError(key_path, f"cannot read secret file {path}: {e.strerror}") from None
    return digest
