"""Field-agnostic validation for specs: the shape checks (tables, keys, names, strings, integers,
choices, durations) that field parsers are built from, and the table-driven parse_table. Every
check raises SpecError naming the key path (rendered by gen.spec.messages). The service-field
parsers built on these live in gen.spec.fields."""
from __future__ import annotations

import re

from gen.errors import SpecError
from gen.model.naming import NAME_RE
from gen.spec.messages import key_path, shown

NAME_RULE = "invalid name (use [a-z0-9][a-z0-9_.-]*, at most 63 characters)"
REQUIRED = object()         # marks a field without a default
MAX_SHORT = 4096            # names, images, paths, env keys, policies
MAX_LONG = 65536            # command arguments and env values (scripts can be long)
MAX_DURATION_MS = 24 * 3600 * 1000

# ---------------------------------------------------------------- durations

_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}   # largest first
_DURATION_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|h|m|s))+")
_DURATION_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ms|h|m|s)")


def parse_duration(text: object, key: str) -> int:
    """"1m30s" -> 90000. Exact integer arithmetic: "1.5s" is fine, "0.5ms" is not."""
    if not isinstance(text, str):
        raise SpecError(key, 'must be a duration string like "5s"')
    if text.startswith("-") and _DURATION_RE.fullmatch(text[1:]):
        raise SpecError(key, "must not be negative")
    if text == "0":
        return 0
    if len(text) > 64 or not _DURATION_RE.fullmatch(text):
        raise SpecError(key, f'invalid duration {shown(text)} (use e.g. "200ms", "5s", "1m30s")')
    total, last_rank = 0, -1
    for whole, fraction, unit in _DURATION_PART.findall(text):
        rank = list(_UNIT_MS).index(unit)
        if rank <= last_rank:  # "30s1m" or "1s1s": almost certainly a typo
            raise SpecError(key, f"invalid duration {shown(text)} (units must go from largest to smallest)")
        last_rank = rank
        scaled = int(whole + fraction) * _UNIT_MS[unit]
        if scaled % 10 ** len(fraction):
            raise SpecError(key, f"{shown(text)} is not a whole number of milliseconds")
        total += scaled // 10 ** len(fraction)
    if total > MAX_DURATION_MS:
        raise SpecError(key, f"{shown(text)} is too large (at most 24h)")
    return total


# ---------------------------------------------------------------- generic checks

def checked_table(value: object, path: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, "must be a table")
    return value


def check_keys(table: dict, allowed, path: str) -> None:
    for key in sorted(table):
        if key not in allowed:
            raise SpecError(key_path(path, key), _unknown_key(key, allowed))


def _unknown_key(key: str, allowed) -> str:
    if not allowed:
        return "unknown key (no keys are allowed here yet)"
    if len(allowed) <= 20:
        return f"unknown key (expected one of: {', '.join(sorted(allowed))})"
    import difflib      # a service table has ~70 keys: name the likely ones, not all
    close = difflib.get_close_matches(key, sorted(allowed), n=3)
    return f"unknown key (did you mean {' or '.join(close)}?)" if close else "unknown key (see README: The spec)"


def checked_names(table: dict, path: str) -> list[str]:
    for key in sorted(table):
        if not NAME_RE.match(key):
            raise SpecError(key_path(path, key), NAME_RULE)
    return sorted(table)


def checked_string(value: object, path: str, max_len: int = MAX_SHORT, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise SpecError(path, "must be a string")
    if "\x00" in value:  # Docker (and C strings below it) would truncate silently
        raise SpecError(path, "must not contain NUL characters")
    if len(value) > max_len:
        raise SpecError(path, f"is too long (at most {max_len} characters)")
    if not value and not empty_ok:
        raise SpecError(path, "must not be empty")
    return value


def checked_string_list(value: object, path: str, max_len: int = MAX_LONG) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(path, "must be a list of strings")
    return [checked_string(item, f"{path}[{i}]", max_len) for i, item in enumerate(value)]


def int_in(low: int, high: int):
    def parse(value, path, ctx=None):
        if type(value) is not int:  # rejects bool (an int subclass) and float
            raise SpecError(path, "must be an integer")
        if not low <= value <= high:
            raise SpecError(path, f"{shown(value)} is out of range ({low}..{high})")
        return value
    return parse


def one_of(*choices: str):
    def parse(value, path, ctx=None):
        if checked_string(value, path) not in choices:
            raise SpecError(path, f"must be one of: {', '.join(choices)} (got {shown(value)})")
        return value
    return parse


def duration_at_least(minimum_ms: int):
    def parse(value, path, ctx=None):
        ms = parse_duration(value, path)
        if ms < minimum_ms:
            raise SpecError(path, f"must be at least {minimum_ms}ms")
        return ms
    return parse


def parse_table(table: dict, fields: dict, path: str, ctx) -> dict:
    """Table-driven: fields maps key -> (normalised key, parser, default as written in TOML)."""
    check_keys(table, fields, path)
    out = {}
    for key, (out_key, parse, default) in fields.items():
        sub = key_path(path, key)
        if key in table:
            out[out_key] = parse(table[key], sub, ctx)
        elif default is REQUIRED:
            raise SpecError(sub, "missing required key")
        else:  # defaults go through the parser too, so they are normalised the same way
            out[out_key] = None if default is None else parse(default, sub, ctx)
    return out
