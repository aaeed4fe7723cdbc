"""Shapes of what gen reads back: small predicates, and the shapes of the format 3 parts of a
service object and of a format 2 manifest's networks (gen.model.types). Pure; gen.model.formats
applies them. A shape says what gen could have written, not whether it is a good idea: the spec
validated that when the object was made."""
from __future__ import annotations

import re
from collections.abc import Callable

Check = Callable[[object], bool]
HASH_RE = re.compile(r"[0-9a-f]{64}")      # store.objects.HASH_RE, without importing the store (`gen list` stays fast)


def is_str(v) -> bool:
    return isinstance(v, str)


def is_bool(v) -> bool:
    return isinstance(v, bool)


def is_int(v, low: int | None = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)


def any_int(v) -> bool:
    return is_int(v, None)


def is_hash(v) -> bool:
    return isinstance(v, str) and HASH_RE.fullmatch(v) is not None


def optional(check: Check) -> Check:
    return lambda v: v is None or check(v)


def list_of(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def dict_of(check: Check) -> Check:
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())


def table(shape: dict[str, Check]) -> Check:
    """Every key of `shape` present and of its shape (other keys are not looked at)."""
    return lambda v: isinstance(v, dict) and all(k in v and check(v[k]) for k, check in shape.items())


def exactly(required: dict[str, Check], optional_keys: dict[str, Check]) -> Check:
    """`required` present, `optional_keys` of their shape where present, and no other key: a key a
    newer gen added would otherwise be dropped without a word."""
    def check(v) -> bool:
        return (table(required)(v) and set(v) <= required.keys() | optional_keys.keys()
                and all(c(v[k]) for k, c in optional_keys.items() if k in v))
    return check


STRINGS = list_of(is_str)
STRING_MAP = dict_of(is_str)


# -- format 3 of a service object --------------------------------------------------------------------
_LIST_OPTIONS = ("expose", "cap_add", "cap_drop", "devices", "device_cgroup_rules", "extra_hosts", "dns",
                 "dns_search", "dns_opt", "security_opt", "group_add")
_FLAG_OPTIONS = ("privileged", "init", "oom_kill_disable", "read_only", "tty", "stdin_open")
_TEXT_OPTIONS = ("stop_signal", "hostname", "domainname", "mac_address", "cpuset", "pid", "ipc", "uts",
                 "userns_mode", "cgroup", "cgroup_parent", "platform", "runtime")
_MAP_OPTIONS = ("sysctls", "tmpfs", "storage_opt")
_NUMBER_OPTIONS = ("shm_size", "mem_limit", "memswap_limit", "mem_reservation", "mem_swappiness", "nano_cpus",
                   "cpu_shares", "cpu_quota", "cpu_period", "pids_limit", "oom_score_adj")
OPTION_SHAPES: dict[str, Check] = {
    **{k: STRINGS for k in _LIST_OPTIONS}, **{k: is_bool for k in _FLAG_OPTIONS},
    **{k: is_str for k in _TEXT_OPTIONS}, **{k: STRING_MAP for k in _MAP_OPTIONS},
    **{k: any_int for k in _NUMBER_OPTIONS},
    "ulimits": dict_of(lambda v: isinstance(v, list) and len(v) == 2 and all(any_int(x) for x in v)),
    "logging": exactly({"driver": is_str}, {"options": STRING_MAP}),
}
OPTIONS = exactly({}, OPTION_SHAPES)
SERVICE_NETWORK = exactly({}, {"aliases": STRINGS, "ipv4_address": is_str, "ipv6_address": is_str})
MOUNT_3 = exactly({"type": lambda v: v in ("volume", "bind", "tmpfs"), "source": is_str, "target": is_str,
                   "read_only": is_bool},
                  {"create_host_path": is_bool, "nocopy": is_bool, "propagation": is_str,
                   "tmpfs_size": is_int, "tmpfs_mode": lambda v: is_int(v) and v <= 0o7777})
HEALTHCHECK_3 = exactly({"test": STRINGS, "interval_ms": is_int, "timeout_ms": is_int, "retries": is_int,
                         "start_period_ms": is_int}, {"start_interval_ms": is_int})
PORT_3 = exactly({"host_ip": is_str, "host_port": is_int, "container_port": is_int, "protocol": is_str},
                 {"mode": lambda v: v == "host"})
PLACEMENT = exactly({}, {"constraints": STRINGS, "max_replicas_per_node": lambda v: is_int(v, 1)})
# The keys format 3 adds to a service object (each absent when it is its default).
SERVICE_ADDED_3: dict[str, Check] = {
    "options": OPTIONS, "container_name": is_str, "networks": dict_of(SERVICE_NETWORK), "network_mode": is_str,
    "conditions": dict_of(lambda v: v in ("healthy", "completed")), "job": lambda v: v is True,
    "image_digest": is_str, "placement": PLACEMENT, "endpoint_mode": lambda v: v == "dnsrr",
}

# -- format 2 of a manifest: the deployment's networks -------------------------------------------------
NETWORK_DEF = exactly({}, {"external": lambda v: v is True, "name": is_str, "driver": is_str, "internal": is_bool,
                           "attachable": is_bool, "enable_ipv6": is_bool, "labels": STRING_MAP,
                           "driver_opts": STRING_MAP, "ipam": lambda v: isinstance(v, dict)})
MANIFEST_KEYS = ("kind", "format", "profile", "services", "volumes", "networks")
