"""The state directory's identity: a random name made once, so that what gen leaves on a shared engine
(image pins) says which state directory it belongs to, and one state directory's gc never touches
another's."""
from __future__ import annotations

import os
import re
from pathlib import Path

from gen.errors import CorruptState
from store.fsutil import atomic_write, ensure_dir

ID_FILE = "id"
_ID = re.compile(r"[0-9a-f]{16}")


def state_id(state_dir: Path) -> str:
    """16 hex digits, made on first use (atomically: temp file, fsync, rename). Two processes making it
    at the very same moment both write; each then reads back what the directory holds, so they agree
    unless one pinned in between, and such a pin is only left on the engine, never released by mistake."""
    path = Path(state_dir) / ID_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    ensure_dir(state_dir)
    atomic_write(path, (os.urandom(8).hex() + "\n").encode(), mode=0o600)
    return _read(path)


def _read(path: Path) -> str:
    text = path.read_bytes().decode("ascii", "replace").strip()
    if not _ID.fullmatch(text):
        raise CorruptState(path, "is not a state directory identity (16 hex digits); it names this state "
                           "directory's image pins: restore it, or remove it to start new pins (the old ones "
                           "are then left on the engine, untouched)")
    return text
