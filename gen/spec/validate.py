"""Field-agnostic validation for specs: the shape checks (tables, keys, names, strings, integers,
choices, durations) that field parsers are built from, the table-driven _parse_table, and the
helpers that render key paths and user values in error messages. Every check raises SpecError
naming the key path. The service-field parsers built on these live in gen.fields."""
from __future__ import annotations

import re

from gen.errors import SpecError
from gen.model.naming import NAME_RE

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
        raise SpecError(key, f'invalid duration {_show(text)} (use e.g. "200ms", "5s", "1m30s")')
    total, last_rank = 0, -1
    for whole, fraction, unit in _DURATION_PART.findall(text):
        rank = list(_UNIT_MS).index(unit)
        if rank <= last_rank:  # "30s1m" or "1s1s": almost certainly a typo
            raise SpecError(key, f"invalid duration {_show(text)} (units must go from largest to smallest)")
        last_rank = rank
        scaled = int(whole + fraction) * _UNIT_MS[unit]
        if scaled % 10 ** len(fraction):
            raise SpecError(key, f"{_show(text)} is not a whole number of milliseconds")
        total += scaled // 10 ** len(fraction)
    if total > MAX_DURATION_MS:
        raise SpecError(key, f"{_show(text)} is too large (at most 24h)")
    return total


# ---------------------------------------------------------------- generic checks

def _table(value: object, path: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, "must be a table")
    return value


def _check_keys(table: dict, allowed, path: str) -> None:
    for key in sorted(table):
        if key not in allowed:
            reason = (f"unknown key (expected one of: {', '.join(sorted(allowed))})" if allowed
                      else "unknown key (no keys are allowed here yet)")
            raise SpecError(_sub(path, key), reason)


def _checked_names(table: dict, path: str) -> list[str]:
    for key in sorted(table):
        if not NAME_RE.match(key):
            raise SpecError(_sub(path, key), NAME_RULE)
    return sorted(table)


def _string(value: object, path: str, max_len: int = MAX_SHORT, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise SpecError(path, "must be a string")
    if "\x00" in value:  # Docker (and C strings below it) would truncate silently
        raise SpecError(path, "must not contain NUL characters")
    if len(value) > max_len:
        raise SpecError(path, f"is too long (at most {max_len} characters)")
    if not value and not empty_ok:
        raise SpecError(path, "must not be empty")
    return value


def _string_list(value: object, path: str, max_len: int = MAX_LONG) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(path, "must be a list of strings")
    return [_string(item, f"{path}[{i}]", max_len) for i, item in enumerate(value)]


def _int_in(low: int, high: int):
    def parse(value, path, ctx=None):
        if type(value) is not int:  # rejects bool (an int subclass) and float
            raise SpecError(path, "must be an integer")
        if not low <= value <= high:
            raise SpecError(path, f"{_show(value)} is out of range ({low}..{high})")
        return value
    return parse


def _one_of(*choices: str):
    def parse(value, path, ctx=None):
        if _string(value, path) not in choices:
            raise SpecError(path, f"must be one of: {', '.join(choices)} (got {_show(value)})")
        return value
    return parse


def _duration_at_least(minimum_ms: int):
    def parse(value, path, ctx=None):
        ms = parse_duration(value, path)
        if ms < minimum_ms:
            raise SpecError(path, f"must be at least {minimum_ms}ms")
        return ms
    return parse


def _parse_table(table: dict, fields: dict, path: str, ctx) -> dict:
    """Table-driven: fields maps key -> (normalised key, parser, default as written in TOML)."""
    _check_keys(table, fields, path)
    out = {}
    for key, (out_key, parse, default) in fields.items():
        sub = _sub(path, key)
        if key in table:
            out[out_key] = parse(table[key], sub, ctx)
        elif default is REQUIRED:
            raise SpecError(sub, "missing required key")
        else:  # defaults go through the parser too, so they are normalised the same way
            out[out_key] = None if default is None else parse(default, sub, ctx)
    return out


# ---------------------------------------------------------------- message helpers

_BARE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # valid names and env keys print as-is


def _sub(path: str, key: str) -> str:
    shown = key if _BARE_KEY.fullmatch(key) else repr(_clip(key))  # repr keeps it one line
    return f"{path}.{shown}" if path else shown


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _is_huge(value: object) -> bool:
    return type(value) is int and value.bit_length() > 64


def _show(value: object) -> str:
    """A short, single-line rendering of a user value for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_huge(value):
        return "a very large number"  # str() of a huge int is slow or refused outright
    if isinstance(value, str):
        return repr(_clip(value))
    return str(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())
