"""What every Compose converter leans on (gen.spec.compose.convert, gen.spec.compose.fields).

- Origins: converted key path -> the Compose key it came from, so that gen.spec's errors,
  raised against the converted document, name what the user wrote.
- check_compose_keys: unknown keys and keys gen cannot honour are errors, never silently dropped.
- checked_mapping and checked_list: shape checks, with Compose's rule that a null option counts
  as absent.
- scalar_text: numbers and booleans as Compose turns them into strings (Go's formatting).
"""
from __future__ import annotations

import decimal
from collections.abc import Mapping

from gen.errors import SpecError
from gen.spec.messages import key_path


class Origins:
    """Maps a key path of the converted document back to the Compose key it came from."""

    def __init__(self):
        self.paths: dict[str, tuple[str, bool]] = {}

    def add(self, converted: str, original: str, whole: bool = False) -> None:
        """whole: errors anywhere under `converted` name `original` itself (e.g. a split command string)."""
        self.paths[converted] = (original, whole)

    def __call__(self, subject: str) -> str:
        cuts = [len(subject)] + [i for i in range(len(subject) - 1, 0, -1) if subject[i] in ".["]
        for cut in cuts:
            found = self.paths.get(subject[:cut])
            if found:
                original, whole = found
                return original if whole else original + subject[cut:]
        return subject


def check_compose_keys(mapping: dict, path: str, supported,
                       unsupported: Mapping[str, str | None] | None = None) -> None:
    """Unknown keys, and keys Compose has but gen cannot honour (reason None: a generic one), are errors."""
    unsupported = unsupported or {}
    for key in sorted(mapping):
        if key in supported:
            continue
        if key in unsupported:
            reason = unsupported[key] or f"not supported by gen (supported here: {', '.join(sorted(supported))})"
        else:
            reason = f"unknown key (expected one of: {', '.join(sorted(supported))})"
        raise SpecError(key_path(path, key), reason)


def checked_mapping(value, path: str, what: str = "must be a mapping", keep_null: bool = False) -> dict:
    """A mapping of options, where a null value means the option is absent (keep_null: of definitions)."""
    if not isinstance(value, dict):
        raise SpecError(path, what)
    return dict(value) if keep_null else {key: item for key, item in value.items() if item is not None}


def checked_list(value, path: str) -> list:
    if not isinstance(value, list):
        raise SpecError(path, "must be a list")
    return value


def scalar_text(value, path: str) -> str:
    """Compose turns numbers and booleans into strings where a string is wanted (true -> "true")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise SpecError(path, "number is too large (quote it)")
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    raise SpecError(path, "must be a string, a number or a boolean")


def _go_float(value: float) -> str:
    """A float as Compose prints it (Go's fmt.Sprint): 1.0 -> "1", 1.5 -> "1.5", 1e6 -> "1e+06"."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign, digits, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()  # repr: the shortest digits
    magnitude = len(digits) + exponent - 1
    text = "".join(map(str, digits))
    if -4 <= magnitude < 6:  # Go's %g with the shortest digits switches to an exponent at 1e6
        text = format(decimal.Decimal(f"{text}e{exponent}"), "f")
    else:
        text = text[0] + ("." + text[1:] if len(text) > 1 else "") + f"e{'-' if magnitude < 0 else '+'}{abs(magnitude):02d}"
    return ("-" if sign else "") + text
