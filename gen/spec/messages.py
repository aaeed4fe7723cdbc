"""How errors about a spec render what the user wrote: key paths (`services.web.env.'a b'`) and
user values, always short and on one line, whatever the input. Used by every stage of gen.spec
and gen.spec.compose; it checks nothing itself."""
from __future__ import annotations

import re

BARE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # valid names and env keys print as-is


def key_path(path: str, key: str) -> str:
    """The key path of `key` inside the table at `path` ("" is the document itself)."""
    text = key if BARE_KEY.fullmatch(key) else repr(clip(key))  # repr keeps it one line
    return f"{path}.{text}" if path else text


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def is_huge_int(value: object) -> bool:
    return type(value) is int and value.bit_length() > 64


def shown(value: object) -> str:
    """A short, single-line rendering of a user value for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_huge_int(value):
        return "a very large number"  # str() of a huge int is slow or refused outright
    if isinstance(value, str):
        return repr(clip(value))
    return str(value)


def one_line(text: str) -> str:
    return " ".join(text.split())
