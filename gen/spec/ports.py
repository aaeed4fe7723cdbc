"""Published ports of a service (`ports = [...]`), as gen.toml writes them and Compose's short syntax
does: `[ip:][host:]container[/tcp|udp]`, IPv6 as `[::1]:8080:80`, each port number possibly a range
(`8000-8002:8000-8002`, one port per number).

A port without a host port (`"3000"`, `"127.0.0.1::80"`) is published on an ephemeral host port the
engine picks, as Compose does: host_port 0, which never clashes with anything (gen.model.ports). A
host range for one container port (`"8000-8005:80"`, Docker picks one port of the range) is refused:
the published port would not be known before it runs.

A port may also be a table, Compose's long syntax: `{ target = 80, published = 8080, host_ip = "...",
protocol = "tcp", mode = "host" }`. `mode` is for a Swarm: ingress (Compose's default, and so the
short syntax's: left out) publishes through the routing mesh on every node, host on the node that runs
the task (one task per node can bind it). One engine publishes either on itself: there they are the same.
"""
from __future__ import annotations

from gen.errors import SpecError
from gen.model.ports import EPHEMERAL
from gen.spec.fields import canonical_ip
from gen.spec.messages import clip, shown
from gen.spec.validate import check_keys, checked_string

PROTOCOLS = ("tcp", "udp")
_FORMAT = "expected [ip:][host:]container[/tcp|udp], ranges as 8000-8002, IPv6 as [::1]:8080:80"
MAX_RANGE = 1000            # ports one entry may publish


def parse_ports(value, path, ctx=None) -> list[dict]:
    """ctx.port_paths, when the context has it, gets the key path each port came from (a range gives
    several ports from one entry), for errors about a port found later (gen.spec.relations)."""
    if not isinstance(value, list):
        raise SpecError(path, "must be a list of strings or tables")
    ports, paths = [], []
    for i, item in enumerate(value):
        found = [port_table(item, f"{path}[{i}]")] if isinstance(item, dict) else _ports(item, f"{path}[{i}]")
        ports += found
        paths += [f"{path}[{i}]"] * len(found)
    if hasattr(ctx, "port_paths"):
        ctx.port_paths[path] = paths
    return ports


def _ports(value: object, path: str) -> list[dict]:
    text = checked_string(value, path)
    spec, slash, protocol = text.partition("/")
    protocol = protocol if slash else "tcp"
    if protocol not in PROTOCOLS:
        raise SpecError(path, f"invalid protocol {shown(protocol)} (use tcp or udp)")
    host_ip, host, container = _split(spec, path, text)
    containers = _numbers(container, path, text)
    hosts = _numbers(host, path, text) if host else [EPHEMERAL] * len(containers)
    if len(hosts) != len(containers):
        if len(containers) == 1:
            raise SpecError(path, f"{shown(text)}: a host port range for one container port is not supported "
                                  "(Docker would pick one port of the range): publish one host port, or none")
        raise SpecError(path, f"{shown(text)}: the host and container ranges differ in length")
    return [{"host_ip": host_ip, "host_port": h, "container_port": c, "protocol": protocol}
            for h, c in zip(hosts, containers)]


def _split(spec: str, path: str, text: str) -> tuple[str, str, str]:
    """(host ip, host port or range or "", container port or range)."""
    malformed = SpecError(path, f"malformed port {shown(text)} ({_FORMAT})")
    if spec.startswith("["):
        end = spec.find("]")
        parts = spec[end + 2:].split(":") if end > 0 and spec[end + 1:end + 2] == ":" else []
        if len(parts) != 2:
            raise malformed
        return canonical_ip(spec[1:end], True, path), parts[0], parts[1]
    parts = spec.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        if not parts[0]:
            raise malformed
        return "", parts[0], parts[1]
    if len(parts) == 3:
        return canonical_ip(parts[0], False, path), parts[1], parts[2]
    raise malformed


def _numbers(text: str, path: str, whole: str) -> list[int]:
    """"80" -> [80]; "8000-8002" -> [8000, 8001, 8002]."""
    first, dash, last = text.partition("-")
    low = port_number(first, path, whole)
    if not dash:
        return [low]
    high = port_number(last, path, whole)
    if high < low:
        raise SpecError(path, f"{shown(whole)}: the range {clip(text)} ends before it starts")
    if high - low >= MAX_RANGE:
        raise SpecError(path, f"{shown(whole)}: the range {clip(text)} is too large (at most {MAX_RANGE} ports)")
    return list(range(low, high + 1))


def port_number(digits: str, path: str, whole: str) -> int:
    if not (digits.isascii() and digits.isdigit()):
        raise SpecError(path, f"malformed port {shown(whole)} ({_FORMAT})")
    if len(digits) > 5 or not 1 <= int(digits) <= 65535:  # length first: int() of huge text is slow
        raise SpecError(path, f"port {clip(digits)} is out of range (1..65535)")
    return int(digits)


PORT_KEYS = ("target", "published", "host_ip", "protocol", "mode")
MODES = ("ingress", "host")


def port_table(table: dict, path: str) -> dict:
    """The long syntax: one container port, published on one host port (or an ephemeral one)."""
    check_keys(table, PORT_KEYS, path)
    if "target" not in table:
        raise SpecError(f"{path}.target", "missing required key")
    port = {"host_ip": "", "host_port": EPHEMERAL, "container_port": _table_number(table["target"], f"{path}.target"),
            "protocol": table.get("protocol", "tcp")}
    if "published" in table:
        port["host_port"] = _table_number(table["published"], f"{path}.published")
    if "host_ip" in table and checked_string(table["host_ip"], f"{path}.host_ip"):
        port["host_ip"] = canonical_ip(table["host_ip"], False, f"{path}.host_ip")
    if port["protocol"] not in PROTOCOLS:
        raise SpecError(f"{path}.protocol", f"must be tcp or udp (got {shown(port['protocol'])})")
    mode = table.get("mode", "ingress")
    if mode not in MODES:
        raise SpecError(f"{path}.mode", f"must be host or ingress (got {shown(mode)})")
    return {**port, "mode": "host"} if mode == "host" else port


def _table_number(value, path: str) -> int:
    """A port number, as an integer or as digits (`docker compose config` writes published as a string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SpecError(path, f"must be a port number (got {shown(value)})")
    if "-" in value:
        raise SpecError(path, f"port range {shown(value)} is not supported here (Docker would pick one port of "
                              "the range): publish one port, or write the range in the short syntax")
    return port_number(value, path, value)
