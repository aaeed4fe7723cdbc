"""Canonical msgpack: one value, exactly one byte string, on any machine.

Rules: maps have str keys sorted by their UTF-8 bytes; tuples encode as arrays; ints use
the smallest msgpack encoding (msgpack's default); str uses the str family and bytes the
bin family. Floats are rejected: their text and binary forms invite values that look
equal but hash differently (1.0 vs 1, -0.0 vs 0.0, NaN), so specs must use ints or strings.
"""
from __future__ import annotations

import blake3
import msgpack

from store.errors import EncodingError

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


class _Rejected(Exception):
    """Raised deep in a value; each level on the way up adds its step to `steps`.

    Building the path only on failure keeps the common (valid) case free of string work.
    """

    def __init__(self, reason: str):
        self.reason = reason
        self.steps: list[str] = []  # innermost first


class _Unusual(Exception):
    """The fast walk met something it does not handle itself; the careful walk takes over."""


def encode(value: object) -> bytes:
    try:
        normal = _fast(value)
    except (_Unusual, RecursionError):
        normal = _careful(value)
    try:
        return msgpack.packb(normal, use_bin_type=True)
    except (ValueError, TypeError, OverflowError) as exc:
        _careful(value)     # a key the fast walk let through (a lone surrogate) is named here, with its path
        # Otherwise a fault no walk checks, e.g. a lone surrogate in a str value.
        raise EncodingError("value", f"cannot encode: {exc}") from None


def decode(data: bytes) -> object:
    """Parse msgpack bytes. Does not check canonical form; see ensure_canonical."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except ValueError as exc:  # msgpack's format, extra-data and stack errors are ValueErrors
        raise EncodingError("bytes", f"not valid msgpack: {exc}") from None


def ensure_canonical(data: bytes) -> object:
    """Decode `data` and check it is exactly the canonical encoding of what it holds."""
    value = decode(data)
    if encode(value) != data:
        raise EncodingError("bytes", "valid msgpack but not the canonical encoding of its value")
    return value


def digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def hash_value(value: object) -> str:
    return digest(encode(value))


def _careful(value: object) -> object:
    try:
        return _normalise(value)
    except _Rejected as rejected:
        where = "value" + "".join(reversed(rejected.steps))
        raise EncodingError(where, rejected.reason) from None
    except RecursionError:
        raise EncodingError("value", "nested too deeply to encode") from None


def _fast(value: object) -> object:
    """_normalise for plain values (exact builtin types, str keys, ints in range), in one pass with no
    per-item bookkeeping: the common case, about twice as fast. Anything else (a subclass, a float,
    a non-str key) raises _Unusual, and the careful walk normalises it or names the fault's path.
    Sorting str keys by code point is sorting by UTF-8 bytes: UTF-8 preserves code point order
    (a lone surrogate, which UTF-8 cannot encode, fails in msgpack.packb)."""
    kind = type(value)
    if kind is str or kind is bool or kind is bytes or value is None:
        return value
    if kind is int:
        if INT_MIN <= value <= INT_MAX:
            return value
        raise _Unusual
    if kind is dict:
        for key in value:
            if type(key) is not str:
                raise _Unusual
        return {key: _fast(value[key]) for key in sorted(value)}
    if kind is list or kind is tuple:
        return [_fast(item) for item in value]
    raise _Unusual


def _normalise(value: object) -> object:
    """Return a structure msgpack packs canonically: plain types, maps in key order."""
    # bool before int: bool is an int subclass but encodes differently.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _normal_int(value)
    if isinstance(value, str):
        # str.__str__ drops a subclass (e.g. a str Enum) without calling its __str__.
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return _normal_map(value)
    if isinstance(value, (list, tuple)):
        return [_within(f"[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, float):
        raise _Rejected(f"float {value!r} is not allowed; canonical encoding has no floats (use an int or a string)")
    raise _Rejected(f"{type(value).__name__} is not encodable (allowed: dict, list, tuple, str, bytes, int, bool, None)")


def _normal_int(value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise _Rejected(f"int {value} is outside the msgpack range {INT_MIN}..{INT_MAX}")
    return int(value)  # drops subclasses such as IntEnum


def _normal_map(mapping: dict) -> dict:
    keyed = []
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise _Rejected(f"map key {key!r} has type {type(key).__name__}; map keys must be strings")
        keyed.append((_utf8(key), str.__str__(key), item))
    keyed.sort(key=lambda entry: entry[0])
    # msgpack packs a dict in insertion order, so inserting sorted keys fixes the byte order.
    return {key: _within(f".{key}", item) for _, key, item in keyed}


def _utf8(key: str) -> bytes:
    try:
        return key.encode("utf-8")
    except UnicodeEncodeError:
        raise _Rejected(f"map key {key!r} is not valid Unicode text") from None


def _within(step: str, item: object) -> object:
    try:
        return _normalise(item)
    except _Rejected as rejected:
        rejected.steps.append(step)
        raise
