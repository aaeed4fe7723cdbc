"""Compose's deploy.resources, and the numbers Compose reads its own way (gen.spec.compose.options).

What docker compose v2 (pkg/compose/create.go, compose-go v2) does with deploy.resources on one
engine, reproduced:
- limits.memory, limits.cpus and limits.pids set the container's memory limit, nano-CPUs and PIDs
  limit (a 0, or pids <= 0, sets nothing); reservations.memory its memory reservation.
- reservations.cpus is a Swarm scheduling hint: ignored (Compose ignores it too). generic_resources
  likewise (Swarm only).
- reservations.devices asks for GPUs (device requests): refused, gen has no such option.
- A service-level key beside a deploy.resources section that says otherwise (cpus vs limits.cpus,
  mem_limit vs limits.memory, pids_limit vs limits.pids, mem_reservation vs reservations.memory) is
  refused, as compose-go refuses it; a key the section leaves out counts as 0 there.
"""
from __future__ import annotations

import re
import struct

from gen.errors import SpecError
from gen.spec.compose.shape import Origins, check_compose_keys, checked_mapping
from gen.spec.messages import shown
from gen.spec.quantities import MAX_INT64, cpus_text, parse_size

_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]{1,3})?", re.IGNORECASE)
# (service-level key, the deploy.resources section holding its twin, the twin's key there)
_PAIRS = (("cpus", "limits", "cpus"), ("mem_limit", "limits", "memory"), ("pids_limit", "limits", "pids"),
          ("mem_reservation", "reservations", "memory"))


def compose_int(value, path: str) -> int:
    """An integer, or its text (Compose casts a string, e.g. from a variable)."""
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if type(value) is not int or not -MAX_INT64 - 1 <= value <= MAX_INT64:
        raise SpecError(path, f"must be an integer (got {shown(value)})")
    return value


def _float32(value, path: str) -> float:
    """A number of CPUs as compose holds it: a float32 (types.NanoCPUs; ServiceConfig.CPUS)."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(path, f"must be a number of CPUs (got {shown(value)})")
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except (OverflowError, struct.error):
        raise SpecError(path, "is too large") from None
    if single != single:
        raise SpecError(path, "must be a number of CPUs (got NaN)")
    if single < 0:
        raise SpecError(path, "must not be negative")
    return single


def compose_cpus(value, path: str) -> str | None:
    """cpus as docker compose applies it: int64(float32(cpus) * 1e9), the product rounded to a float32
    (cpus: 0.13 -> 129999992 nano-CPUs), as the exact decimal text gen.spec reads back; 0 -> None."""
    single = _float32(value, path)
    nano = int(struct.unpack("f", struct.pack("f", single * 1e9))[0]) if single < 9.2e9 else MAX_INT64 + 1
    if nano > MAX_INT64:
        raise SpecError(path, "is too large")
    return cpus_text(nano) if nano else None


def _memory(value, path: str) -> int:
    if not isinstance(value, str):  # Compose's schema takes only text here (mem_limit takes a number too)
        raise SpecError(path, f'must be a string like "512m" (got {shown(value)})')
    return parse_size(value, path)


def convert_resources(resources, path: str, origins: Origins) -> dict:
    """deploy.resources (limits, reservations) as TOML keys (mem_limit, cpus, mem_reservation, ...)."""
    service = path.removesuffix(".deploy.resources")
    resources = checked_mapping(resources, path)
    check_compose_keys(resources, path, ("limits", "reservations"))
    out: dict = {}

    def put(key: str, value, origin: str) -> None:
        out[key] = value
        origins.add(f"{service}.{key}", origin)

    limits = checked_mapping(resources.get("limits", {}), f"{path}.limits")
    check_compose_keys(limits, f"{path}.limits", ("cpus", "memory", "pids"))
    if "cpus" in limits and (cpus := compose_cpus(limits["cpus"], f"{path}.limits.cpus")):
        put("cpus", cpus, f"{path}.limits.cpus")
    if "memory" in limits and (memory := _memory(limits["memory"], f"{path}.limits.memory")):
        put("mem_limit", memory, f"{path}.limits.memory")
    if "pids" in limits and (pids := compose_int(limits["pids"], f"{path}.limits.pids")) > 0:
        put("pids_limit", pids, f"{path}.limits.pids")

    reservations = checked_mapping(resources.get("reservations", {}), f"{path}.reservations")
    check_compose_keys(reservations, f"{path}.reservations", ("cpus", "memory", "generic_resources"), {
        "devices": "not supported: device requests (GPUs) are not among gen's container options"})
    if "cpus" in reservations:
        _float32(reservations["cpus"], f"{path}.reservations.cpus")   # checked, then ignored as Compose does
    if "memory" in reservations and (memory := _memory(reservations["memory"], f"{path}.reservations.memory")):
        put("mem_reservation", memory, f"{path}.reservations.memory")
    return out


def check_against_deploy(svc: dict, path: str) -> None:
    """compose-go refuses a service-level key and its deploy.resources twin that differ, once the
    section (limits, reservations) is there at all; a service-level 0 is not compared."""
    deploy = svc.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, dict) else None
    if not isinstance(resources, dict):
        return  # absent, or malformed: converting deploy reports it
    for key, section, twin in _PAIRS:
        if key not in svc or not isinstance(resources.get(section), dict):
            continue
        where = f"{path}.deploy.resources.{section}"
        written = resources[section].get(twin)
        ours = _reading(key, svc[key], f"{path}.{key}", deploy=False)
        theirs = _reading(key, written, f"{where}.{twin}", deploy=True)
        if ours and ours != theirs:
            subject, what = (f"{where}.{twin}", f"is {shown(written)}") if written is not None else \
                (where, f"has no {twin}")
            raise SpecError(subject, f"{what} but {key} is {shown(svc[key])}: Compose refuses two different "
                                     "values (give the same in both, or only one)")


def _reading(key: str, value, path: str, deploy: bool):
    """The value compose compares: a float32 for cpus, bytes for memory, the integer for pids; absent: 0."""
    if value is None:
        return 0
    if key == "cpus":
        return _float32(value, path)
    if key == "pids_limit":
        return compose_int(value, path)
    return _memory(value, path) if deploy else parse_size(value, path)
