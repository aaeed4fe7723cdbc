"""Service-field parsers for specs: each takes (value, key path, context) and returns normal data or
raises SpecError naming the key path. Built on the generic checks of gen.spec.validate; the service
table of gen.spec.document lists them, and the TOML and Compose front ends share them through it."""
from __future__ import annotations

import ipaddress
import posixpath
import re

from gen.errors import SpecError
from gen.spec.messages import BARE_KEY, clip, is_huge_int, key_path, shown
from gen.spec.validate import (MAX_LONG, MAX_SHORT, REQUIRED, checked_string, checked_string_list, checked_table,
                               duration_at_least, int_in, parse_table)

_IMAGE_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_IMAGE_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}")


def parse_image(value, path, ctx=None) -> str:
    ref = checked_string(value, path, empty_ok=False)
    if not _is_image_ref(ref):
        raise SpecError(path, f"invalid image reference {shown(ref)} "
                              "(expected [registry/]name[:tag][@digest], name in lowercase)")
    return ref


def _is_image_ref(ref: str) -> bool:
    """Docker's reference grammar, split into parts so no regex can backtrack badly."""
    name, at, digest = ref.partition("@")
    if at and not _IMAGE_DIGEST.fullmatch(digest):
        return False
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:  # a ":" after the last "/" starts the tag; before it, a registry port
        name, tag = name[:colon], name[colon + 1:]
        if not _IMAGE_TAG.fullmatch(tag):
            return False
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        if not _IMAGE_HOST.fullmatch(first):
            return False
        parts = parts[1:]
    return all(_IMAGE_COMPONENT.fullmatch(part) for part in parts)


def parse_argv(value, path, ctx=None) -> list[str]:
    argv = checked_string_list(value, path)
    if not argv:  # None already means "the image's default"; [] would be a third meaning
        raise SpecError(path, "must not be empty (leave the key out to use the image's default)")
    return argv


ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def parse_env(value, path, ctx=None) -> dict[str, str]:
    table = checked_table(value, path)
    env = {}
    for key in sorted(table):
        sub = key_path(path, key)
        if len(key) > MAX_SHORT or not ENV_KEY_RE.fullmatch(key):
            raise SpecError(sub, "invalid variable name (use [A-Za-z_][A-Za-z0-9_.-]*)")
        if not isinstance(table[key], str):
            raise SpecError(sub, _quote_hint(key, table[key]))
        env[key] = checked_string(table[key], sub, MAX_LONG)
    return env


def _quote_hint(key: str, value: object) -> str:
    if isinstance(value, (bool, int, float)) and not is_huge_int(value) and BARE_KEY.fullmatch(key):
        return f'must be a string (quote it: {key} = "{shown(value)}")'
    return "must be a string"


def canonical_ip(text: str, bracketed: bool, path: str) -> str:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise SpecError(path, f"invalid IP address {shown(text)}") from None
    if bracketed and ip.version == 4:
        raise SpecError(path, f"brackets are only for IPv6 addresses (got {shown(text)})")
    return str(ip)  # canonical spelling, so equal addresses compare equal


def normal_path(path: str) -> str:
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")  # POSIX normpath keeps a leading "//"; Docker does not care


def references(value, path: str, known, unknown: str, duplicate: str) -> list[str]:
    """A list of names that must each be declared elsewhere in the spec, once; sorted."""
    names = checked_string_list(value, path, MAX_SHORT)
    for i, name in enumerate(names):
        if name not in known:
            raise SpecError(f"{path}[{i}]", unknown.format(shown(name)))
        if name in names[:i]:
            raise SpecError(f"{path}[{i}]", duplicate.format(shown(name)))
    return sorted(names)


_RESTART_FIXED = ("no", "always", "unless-stopped", "on-failure")
_RESTART_COUNT = re.compile(r"on-failure:([0-9]+)")


def parse_restart(value, path, ctx=None) -> str:
    text = checked_string(value, path)
    if text in _RESTART_FIXED:
        return text
    match = _RESTART_COUNT.fullmatch(text)
    if match is None:
        raise SpecError(path, f"invalid restart policy {shown(text)} "
                              '(use "no", "always", "unless-stopped", "on-failure" or "on-failure:N")')
    digits = match[1]
    if len(digits) > 4 or not 1 <= int(digits) <= 1000:
        raise SpecError(path, f"retry count {clip(digits)} is out of range (1..1000)")
    return f"on-failure:{int(digits)}"  # "on-failure:05" and "on-failure:5" are one policy


def _health_test(value, path, ctx=None) -> list[str]:
    if isinstance(value, str):
        return ["CMD-SHELL", checked_string(value, path, MAX_LONG, empty_ok=False)]
    if not isinstance(value, list):
        raise SpecError(path, "must be a string or a list of strings")
    test = checked_string_list(value, path)
    kind, count = (test[0] if test else None), len(test)
    if (kind, count) == ("NONE", 1) or (kind == "CMD" and count >= 2) or (kind, count) == ("CMD-SHELL", 2):
        return test
    reasons = {"NONE": '["NONE"] takes nothing after "NONE"',
               "CMD": '"CMD" needs a command after it',
               "CMD-SHELL": '"CMD-SHELL" takes exactly one shell command string'}
    raise SpecError(path, reasons.get(kind, 'must start with "CMD", "CMD-SHELL" or "NONE" '
                                            "(or be a shell command string)"))


_HEALTH_FIELDS = {
    "test": ("test", _health_test, REQUIRED),
    "interval": ("interval_ms", duration_at_least(1), "2s"),
    "timeout": ("timeout_ms", duration_at_least(1), "5s"),
    "retries": ("retries", int_in(1, 1000), 3),
    "start_period": ("start_period_ms", duration_at_least(0), "0s"),
    "start_interval": ("start_interval_ms", duration_at_least(1), None),    # kept only when given
}


def parse_healthcheck(value, path, ctx) -> dict:
    check = parse_table(checked_table(value, path), _HEALTH_FIELDS, path, ctx)
    if check["start_interval_ms"] is None:
        del check["start_interval_ms"]
    return check


RESERVED_LABEL_PREFIX = "gen."   # gen finds its own containers by these labels


def parse_labels(value, path, ctx=None) -> dict[str, str]:
    table = checked_table(value, path)
    labels = {}
    for key in sorted(table):
        sub = key_path(path, key)
        checked_string(key, sub, MAX_SHORT, empty_ok=False)
        if key.startswith(RESERVED_LABEL_PREFIX):
            raise SpecError(sub, f"label keys starting with {RESERVED_LABEL_PREFIX!r} are reserved for gen's own labels")
        if not isinstance(table[key], str):
            raise SpecError(sub, _quote_hint(key, table[key]))
        labels[key] = checked_string(table[key], sub, MAX_LONG)
    return labels


_USER_RE = re.compile(r"[^\s:]+(?::[^\s:]+)?")


def parse_user(value, path, ctx=None) -> str:
    user = checked_string(value, path, empty_ok=False)
    if not _USER_RE.fullmatch(user):
        raise SpecError(path, f"invalid user {shown(user)} (expected user[:group], as names or numeric ids)")
    return user


def parse_working_dir(value, path, ctx=None) -> str:
    directory = checked_string(value, path, empty_ok=False)
    if not directory.startswith("/"):
        raise SpecError(path, f"{shown(directory)} must be an absolute path")
    return normal_path(directory)
