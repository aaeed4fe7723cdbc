"""Host port rules, one place for the spec's checks and the planner's: when do two published ports clash. Pure.

A port published without a host port (Compose's "3000") has host_port 0: the engine picks a free
ephemeral port when the container starts, so it never clashes with anything, not even itself."""
from __future__ import annotations

import ipaddress

HostPort = tuple[str, int, str]     # (host ip, "" for any; port; protocol)


def addresses_overlap(a: str, b: str) -> bool:
    """Two host IPs a port is published on clash: the same address, or either one is "any"."""
    return a == b or _is_any_address(a) or _is_any_address(b)


def _is_any_address(ip: str) -> bool:
    return ip == "" or ipaddress.ip_address(ip).is_unspecified


EPHEMERAL = 0       # host_port of a port the engine publishes on a host port of its choosing


def host_ports(service: dict) -> frozenset[HostPort]:
    """The fixed host ports a service object (or validated service) publishes (ephemeral ones never clash)."""
    return frozenset((p["host_ip"], p["host_port"], p["protocol"]) for p in service["ports"]
                     if p["host_port"] != EPHEMERAL)


def ports_clash(a: frozenset[HostPort], b: frozenset[HostPort]) -> bool:
    """Could a container publishing `a` and one publishing `b` not both be bound at once?"""
    return any(port1 == port2 != EPHEMERAL and proto1 == proto2 and addresses_overlap(ip1, ip2)
               for ip1, port1, proto1 in a for ip2, port2, proto2 in b)
