"""Compose service keys that are container options, converted into the TOML spelling that
gen.spec.options validates (deploy.resources becomes mem_limit, cpus, ...).

Compose spells these keys as gen.toml does; what differs is the forms it also takes (a string for a
one-item list, "k=v" lists for tables, numbers and booleans written as strings, long-syntax devices)
and a few of its own readings, reproduced here so a Compose file makes the container Docker Compose
v2 makes: `cpus` goes through a float32 (cpus: 0.13 gives 129999992 nano-CPUs, not 130000000),
mem_swappiness: 0 is dropped, and deploy.resources follows compose's setLimits/setReservations
(gen.spec.compose.resources)."""
from __future__ import annotations

from gen.errors import SpecError
from gen.spec.compose.fields import key_value_items
from gen.spec.compose.resources import check_against_deploy, compose_cpus, compose_int, convert_resources
from gen.spec.compose.shape import Origins, check_compose_keys, checked_list, checked_mapping, scalar_text
from gen.spec.messages import key_path
from gen.spec.options import OPTION_KEYS

__all__ = ["COMPOSE_OPTION_KEYS", "convert_options", "convert_resources"]

# Compose service keys handled here (accepted by the converter, no longer refused).
COMPOSE_OPTION_KEYS: frozenset[str] = OPTION_KEYS

_FLAGS = ("privileged", "init", "oom_kill_disable", "read_only", "tty", "stdin_open")
_INTEGERS = ("cpu_shares", "cpu_quota", "cpu_period", "pids_limit", "oom_score_adj", "mem_swappiness")
_ONE_OR_MORE = ("dns", "dns_search", "tmpfs")      # a string, or a list of them
_BOOLEAN_TEXT = {"true": True, "false": False, "y": True, "yes": True, "on": True,
                 "n": False, "no": False, "off": False}


def convert_options(svc: dict, path: str, origins: Origins) -> dict:
    """The container options of a Compose service, as TOML keys (only those the file sets)."""
    out = {}
    for key in sorted(COMPOSE_OPTION_KEYS & set(svc)):
        value = _convert(key, svc[key], f"{path}.{key}", origins)
        if value is not None:
            out[key] = value
    check_against_deploy(svc, path)
    return out


def _convert(key: str, value, path: str, origins: Origins):
    if key in _FLAGS:
        return _flag(value, path)
    if key in _INTEGERS:
        number = compose_int(value, path)
        # compose sets MemorySwappiness only when it is not 0, so 0 means the engine's default
        return None if key == "mem_swappiness" and number == 0 else number
    if key == "cpus":
        return compose_cpus(value, path)
    if key in _ONE_OR_MORE and isinstance(value, str):
        origins.add(path, path, whole=True)
        return [value]
    converter = _CONVERTERS.get(key)
    return converter(value, path, origins) if converter else value


def _flag(value, path: str) -> bool:
    """true/false, or the text Compose casts (a variable gives text): "true", "no", "on", ..."""
    if isinstance(value, str) and value.lower() in _BOOLEAN_TEXT:
        return _BOOLEAN_TEXT[value.lower()]
    if not isinstance(value, bool):
        raise SpecError(path, "must be true or false")
    return value


def _sysctls(value, path: str, origins: Origins) -> dict:
    """A mapping, or "name=value" items (a bare name is an empty value, as in Compose)."""
    if isinstance(value, list):
        return key_value_items(value, path, origins, "name")
    table = checked_mapping(value, path, "must be a mapping or a list of name=value strings", keep_null=True)
    return {name: "" if item is None else scalar_text(item, key_path(path, name)) for name, item in table.items()}


def _ulimits(value, path: str, origins: Origins) -> dict:
    """name -> a limit, or {soft, hard}; numbers may be written as text (Compose casts them)."""
    out = {}
    for name, limit in checked_mapping(value, path).items():
        sub = key_path(path, name)
        if isinstance(limit, dict):
            limit = checked_mapping(limit, sub)
            check_compose_keys(limit, sub, ("soft", "hard"))
            out[name] = {key: compose_int(item, f"{sub}.{key}") for key, item in limit.items()}
        else:
            out[name] = compose_int(limit, sub)
    return out


def _devices(value, path: str, origins: Origins) -> list:
    """"HOST[:CONTAINER[:PERMISSIONS]]" strings, or {source, target, permissions} -> strings."""
    out = []
    for i, item in enumerate(checked_list(value, path)):
        sub = f"{path}[{i}]"
        if not isinstance(item, dict):
            out.append(item)
            continue
        device = checked_mapping(item, sub)
        check_compose_keys(device, sub, ("source", "target", "permissions"))
        if "source" not in device:
            raise SpecError(f"{sub}.source", "missing required key")
        parts = [device["source"], device.get("target", device["source"]), device.get("permissions", "rwm")]
        for key, part in zip(("source", "target", "permissions"), parts):
            if not isinstance(part, str) or ":" in part:
                raise SpecError(f"{sub}.{key}", "must be a string without ':'")
        out.append(":".join(parts))
    return out


def _extra_hosts(value, path: str, origins: Origins):
    if isinstance(value, list):  # Compose reads any scalar item as its text
        return [item if isinstance(item, (list, dict)) or item is None else scalar_text(item, f"{path}[{i}]")
                for i, item in enumerate(value)]
    if not isinstance(value, dict):
        raise SpecError(path, 'must be a list of "HOST:IP" strings or a mapping')
    return value


def _logging(value, path: str, origins: Origins) -> dict:
    logging = checked_mapping(value, path)
    check_compose_keys(logging, path, ("driver", "options"))
    out = {key: logging[key] for key in ("driver",) if key in logging}
    if "options" in logging:  # a null option is an empty one (compose's map[string]string)
        options = checked_mapping(logging["options"], f"{path}.options", keep_null=True)
        out["options"] = {key: "" if item is None else scalar_text(item, key_path(f"{path}.options", key))
                          for key, item in options.items()}
    return out


def _storage_opt(value, path: str, origins: Origins) -> dict:
    table = checked_mapping(value, path)
    return {key: scalar_text(item, key_path(path, key)) for key, item in table.items()}


_CONVERTERS = {
    "sysctls": _sysctls,
    "ulimits": _ulimits,
    "devices": _devices,
    "extra_hosts": _extra_hosts,
    "logging": _logging,
    "storage_opt": _storage_opt,
}
