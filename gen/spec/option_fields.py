"""Parsers of the container options that have structure (gen.spec.options holds the table of them all):
expose, devices, sysctls, ulimits, tmpfs, extra_hosts, logging. Each takes (value, key path) and
returns the normal value, or None when the value is Docker's default (an empty list or table), so
writing a default leaves the option out; bad input is a SpecError naming the key path."""
from __future__ import annotations

import ipaddress
import re

from gen.errors import SpecError
from gen.spec.fields import normal_path
from gen.spec.messages import key_path, shown
from gen.spec.validate import MAX_SHORT, checked_string, checked_table

_WORD = re.compile(r"[^\s\x00]+")      # one word: no whitespace, no NUL


def word(value, path: str, separator: str = "") -> str:
    """A non-empty string without whitespace (but for `separator`, e.g. the spaces of "c 1:3 mr")."""
    text = checked_string(value, path)
    if not _WORD.fullmatch(text.replace(separator, "x") if separator else text):
        raise SpecError(path, f"must be a non-empty string without spaces (got {shown(text)})")
    return text


def checked_list(value, path: str) -> list:
    if not isinstance(value, list):
        raise SpecError(path, "must be a list")
    return value


# ---------------------------------------------------------------- expose

_EXPOSE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?(?:/(tcp|udp|sctp))?")


def parse_expose(value, path: str) -> list[str] | None:
    """Ports the container exposes without publishing them: 80, "80/udp", "8000-8002" -> sorted,
    unique "80/tcp" strings (a range is every port in it, as `docker run --expose` reads one)."""
    ports: set[tuple[int, str]] = set()
    for i, item in enumerate(checked_list(value, path)):
        sub = f"{path}[{i}]"
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        match = _EXPOSE.fullmatch(checked_string(item, sub))
        if match is None:
            raise SpecError(sub, f'invalid port {shown(item)} (expected PORT[-PORT][/tcp|udp|sctp], e.g. "80/udp")')
        low, high = int(match[1]), int(match[2] or match[1])
        if not 1 <= low <= high <= 65535:
            raise SpecError(sub, f"invalid port range {shown(item)} (ports are 1..65535, low to high)")
        ports.update((port, match[3] or "tcp") for port in range(low, high + 1))
    return [f"{port}/{protocol}" for port, protocol in sorted(ports)] or None


# ---------------------------------------------------------------- devices

def parse_devices(value, path: str) -> list[str] | None:
    """Host devices: "HOST[:CONTAINER[:PERMISSIONS]]" -> "HOST:CONTAINER:PERMISSIONS" (rwm by default)."""
    devices = []
    for i, item in enumerate(checked_list(value, path)):
        sub = f"{path}[{i}]"
        parts = checked_string(item, sub).split(":")
        if len(parts) > 3:
            raise SpecError(sub, f"malformed device {shown(item)} (expected HOST[:CONTAINER[:PERMISSIONS]])")
        host = parts[0]
        container = parts[1] if len(parts) > 1 else host
        permissions = parts[2] if len(parts) > 2 else "rwm"
        for side, text in (("host", host), ("container", container)):
            if not text.startswith("/"):
                raise SpecError(sub, f"{side} path {shown(text)} must be an absolute device path")
        if not permissions or any(permissions.count(c) != 1 for c in permissions) or set(permissions) - set("rwm"):
            raise SpecError(sub, f"invalid permissions {shown(permissions)} (some of r, w, m, each once)")
        devices.append(f"{host}:{container}:{permissions}")
    return devices or None


# ---------------------------------------------------------------- sysctls, ulimits, tmpfs

_SYSCTL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def parse_sysctls(value, path: str) -> dict[str, str] | None:
    table = checked_table(value, path)
    out = {}
    for key in sorted(table):
        sub = key_path(path, key)
        if len(key) > MAX_SHORT or not _SYSCTL.fullmatch(key):
            raise SpecError(sub, "invalid kernel parameter name (e.g. net.core.somaxconn)")
        if not isinstance(table[key], str):
            raise SpecError(sub, "must be a string (quote it)")
        out[key] = checked_string(table[key], sub)
    return out or None


_ULIMITS = frozenset("core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime "
                     "sigpending stack".split())


def parse_ulimits(value, path: str) -> dict[str, list[int]] | None:
    """name -> one limit (soft = hard) or {soft, hard} -> name -> [soft, hard]; -1 is unlimited."""
    table = checked_table(value, path)
    out = {}
    for name in sorted(table):
        sub = key_path(path, name)
        if name not in _ULIMITS:
            raise SpecError(sub, f"unknown ulimit (expected one of: {', '.join(sorted(_ULIMITS))})")
        limit = table[name]
        if isinstance(limit, dict):
            for key in sorted(set(limit) - {"soft", "hard"}):
                raise SpecError(key_path(sub, key), "unknown key (expected soft and hard)")
            for key in ("soft", "hard"):
                if key not in limit:
                    raise SpecError(f"{sub}.{key}", "missing required key")
            soft, hard = _limit(limit["soft"], f"{sub}.soft"), _limit(limit["hard"], f"{sub}.hard")
        else:
            soft = hard = _limit(limit, sub)
        if hard != -1 and (soft == -1 or soft > hard):
            raise SpecError(sub, f"soft limit {soft} is above the hard limit {hard}")
        out[name] = [soft, hard]
    return out or None


def _limit(value, path: str) -> int:
    if type(value) is not int or not -1 <= value < 2 ** 63:
        raise SpecError(path, "must be an integer (-1: unlimited)")
    return value


def parse_tmpfs(value, path: str) -> dict[str, str] | None:
    """"TARGET[:OPTIONS]" items -> target -> mount options ("" for none)."""
    out: dict[str, str] = {}
    for i, item in enumerate(checked_list(value, path)):
        sub = f"{path}[{i}]"
        target, _, options = checked_string(item, sub).partition(":")
        if not target.startswith("/"):
            raise SpecError(sub, f"target {shown(target)} must be an absolute path")
        if options and not all(_WORD.fullmatch(option) for option in options.split(",")):
            raise SpecError(sub, f"malformed options {shown(options)} (comma-separated, e.g. size=64m,mode=1777)")
        target = normal_path(target)
        if out.get(target, options) != options:
            raise SpecError(sub, f"target {target} is already mounted")
        out[target] = options
    return dict(sorted(out.items())) or None


# ---------------------------------------------------------------- extra_hosts

def parse_extra_hosts(value, path: str) -> list[str] | None:
    """"HOST:IP" or "HOST=IP" items, or a table HOST -> IP (or a list of IPs) -> sorted "HOST:IP",
    the addresses of one host in the order written (the order /etc/hosts gets them)."""
    entries: list[tuple[str, str, str]] = []   # (host, address, key path)
    if isinstance(value, dict):
        for host, ips in value.items():
            sub = key_path(path, host)
            for j, ip in enumerate(ips if isinstance(ips, list) else [ips]):
                entries.append((host, checked_string(ip, f"{sub}[{j}]" if isinstance(ips, list) else sub), sub))
    else:
        for i, item in enumerate(checked_list(value, path)):
            sub = f"{path}[{i}]"
            text = checked_string(item, sub)
            # Compose cuts at the first "=", else at the first ":": "h=::1" and "h:::1" are one entry
            host, found, ips = text.partition("=" if "=" in text else ":")
            if not found:
                raise SpecError(sub, f'{shown(text)} has no address (expected "HOST:IP" or "HOST=IP")')
            entries.extend((host, ip, sub) for ip in ips.split(","))
    out = []
    for host, ip, sub in sorted(entries, key=lambda entry: entry[0]):  # stable: addresses keep their order
        if not host or not _WORD.fullmatch(host) or any(c in host for c in ":="):
            raise SpecError(sub, f"invalid host name {shown(host)}")
        line = f"{host}:{_host_address(ip, sub)}"
        if line not in out:
            out.append(line)
    return out or None


def _host_address(text: str, path: str) -> str:
    if text == "host-gateway":   # Docker puts the host's address there
        return text
    if len(text) > 2 and text[0] == "[" and text[-1] == "]":
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise SpecError(path, f"invalid IP address {shown(text)} (or host-gateway)") from None


def ip_addresses(value, path: str) -> list[str] | None:
    """dns: server addresses, in the order the resolver tries them."""
    out = []
    for i, item in enumerate(checked_list(value, path)):
        sub = f"{path}[{i}]"
        try:
            out.append(str(ipaddress.ip_address(checked_string(item, sub))))
        except ValueError:
            raise SpecError(sub, f"invalid IP address {shown(item)}") from None
    return out or None


# ---------------------------------------------------------------- logging

_DRIVER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./:-]*")


def parse_logging(value, path: str) -> dict | None:
    """{driver, options} -> {"driver": name ("" = the engine's default driver), "options": {str: str}}."""
    table = checked_table(value, path)
    for key in sorted(set(table) - {"driver", "options"}):
        raise SpecError(key_path(path, key), "unknown key (expected one of: driver, options)")
    driver = checked_string(table.get("driver", ""), f"{path}.driver")
    if driver and not _DRIVER.fullmatch(driver):
        raise SpecError(f"{path}.driver", f"invalid logging driver name {shown(driver)}")
    options = string_table(table.get("options", {}), f"{path}.options") or {}
    return {"driver": driver, "options": options} if driver or options else None


def string_table(value, path: str) -> dict[str, str] | None:
    table = checked_table(value, path)
    out = {}
    for key in sorted(table):
        sub = key_path(path, key)
        checked_string(key, sub, empty_ok=False)
        if not isinstance(table[key], str):
            raise SpecError(sub, "must be a string (quote it)")
        out[key] = checked_string(table[key], sub)
    return out or None
