"""Container options of a service (gen.model.types.ContainerOptions): the TOML keys that map to one
container's settings on one engine (cap_add, sysctls, mem_limit, ...), validated and normalised
into gen's units. Compose files reach here through gen.spec.compose.options, which renames what
Compose spells differently. Only keys the spec sets appear in the result.

A value that is Docker's own default (false, 0, "", an empty list) is left out like an absent key:
writing `privileged = false` then changes no service hash. `init = false` is kept, since it overrides
an engine configured to run an init by default. What Docker would refuse at container creation
regardless of the host (a swap limit without a memory limit, a period under 1ms, ...) is refused
here, naming the key, so a switch never fails on it half-way."""
from __future__ import annotations

import re

from gen.errors import SpecError
from gen.spec.messages import shown
from gen.spec.option_fields import (checked_list, ip_addresses, parse_devices, parse_expose, parse_extra_hosts,
                                    parse_logging, parse_sysctls, parse_tmpfs, parse_ulimits, string_table, word)
from gen.spec.quantities import MAX_INT64, check_capability, check_signal, parse_cpus, parse_size
from gen.spec.validate import checked_string

MIN_MEMORY = 6 * 2 ** 20    # Docker's smallest memory limit and reservation ("6MB")


# ---------------------------------------------------------------- scalar parsers

def _boolean(value, path):
    if not isinstance(value, bool):
        raise SpecError(path, "must be true or false")
    return value


def _flag(value, path):
    return _boolean(value, path) or None


def _integer(low: int, high: int, default: int = 0):
    def parse(value, path):
        if type(value) is not int:
            raise SpecError(path, "must be an integer")
        if not low <= value <= high:
            raise SpecError(path, f"{shown(value)} is out of range ({low}..{high})")
        return None if value == default else value
    return parse


def _cpu_quota(value, path):
    quota = _integer(-1, MAX_INT64)(value, path)
    if quota is not None and 0 < quota < 1000:
        raise SpecError(path, "must be at least 1000 (1ms), or -1 for no quota")
    return quota


def _cpu_period(value, path):
    period = _integer(0, 1_000_000)(value, path)
    if period is not None and period < 1000:
        raise SpecError(path, "must be at least 1000 (1ms)")
    return period


def _memory(value, path):
    size = parse_size(value, path)
    if 0 < size < MIN_MEMORY:
        raise SpecError(path, "is below Docker's minimum of 6m (6291456 bytes)")
    return size or None


def _swap(value, path):
    return parse_size(value, path, minus_one=True) or None


def _size(value, path):
    return parse_size(value, path) or None


def _cpus(value, path):
    return parse_cpus(value, path) or None


def _signal(value, path):
    return check_signal(word(value, path), path) if value != "" else None


def _capabilities(value, path):
    return _unique_words(value, path, check_capability, sort=True)


def _unique_words(value, path, check=None, sort=False, separator=""):
    """A list of words, each once (in the order written, or sorted where the engine ignores the order).
    A repeated one is dropped, as Compose drops it. separator: a character allowed inside a word."""
    out = []
    for i, item in enumerate(checked_list(value, path)):
        sub = f"{path}[{i}]"
        text = word(str(item) if type(item) is int else item, sub, separator)
        if text not in out:
            out.append(check(text, sub) if check else text)
    return (sorted(out) if sort else out) or None


def _groups(value, path):
    return _unique_words(value, path, sort=True)


def _words(value, path):
    return _unique_words(value, path)


def _pattern(regex: str, example: str):
    compiled = re.compile(regex)

    def parse(value, path):
        text = checked_string(value, path)
        if text and not compiled.fullmatch(text):
            raise SpecError(path, f"invalid value {shown(text)} (e.g. {example})")
        return text or None
    return parse


_CGROUP_RULE = re.compile(r"[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}")


def _cgroup_rules(value, path):
    return _unique_words(value, path, _cgroup_rule, separator=" ")


def _cgroup_rule(rule, path):
    if not _CGROUP_RULE.fullmatch(rule):
        raise SpecError(path, f'invalid device cgroup rule {shown(rule)} (e.g. "c 1:3 mr")')
    return rule


_SECURITY_KEYS = ("label", "apparmor", "seccomp", "no-new-privileges", "systempaths")


def _security_options(value, path):
    """The order is kept: Docker applies them in turn."""
    return _unique_words(value, path, _security_option)


def _security_option(option, path):
    """`seccomp=FILE` is refused: gen would have to pin the profile's content (Compose inlines it).
    `systempaths=unconfined` is the Docker CLI's: the engine side applies it (no masked, no read-only paths)."""
    key, separator, setting = option.partition("=") if "=" in option else option.partition(":")
    if key not in _SECURITY_KEYS or (not separator and key != "no-new-privileges"):
        raise SpecError(path, f"invalid security option {shown(option)} (e.g. no-new-privileges:true, "
                              "label=disable, apparmor=PROFILE, seccomp=unconfined)")
    if key == "seccomp" and setting not in ("unconfined", "builtin"):
        raise SpecError(path, "a seccomp profile file is not supported yet (only seccomp=unconfined or builtin)")
    if key == "systempaths" and setting != "unconfined":
        raise SpecError(path, "only systempaths=unconfined is known")
    return option


_CONTAINER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")    # a container's name or ID


def _namespace(*modes: str, container: bool = False):
    """pid, ipc, uts, userns_mode, cgroup: a fixed mode, or container:NAME (a container of the engine
    that is not gen's); service:NAME is refused until gen can follow a service's container."""
    def parse(value, path):
        text = checked_string(value, path)
        kind, _, name = text.partition(":")
        if not text or text in modes or (container and kind == "container" and _CONTAINER.fullmatch(name)):
            return text or None
        if kind == "service" and container:
            raise SpecError(path, f"{shown(text)}: sharing another service's namespace is not supported yet "
                                  "(gen replaces that service's container, and the namespace would go with it)")
        choices = ", ".join(modes + (("container:NAME",) if container else ()))
        raise SpecError(path, f"must be one of: {choices} (got {shown(text)})")
    return parse


# ---------------------------------------------------------------- the table

# TOML key -> (ContainerOptions key, parser(value, key path) -> normal value, or None for Docker's default)
_OPTIONS = {
    "expose": ("expose", parse_expose),
    "stop_signal": ("stop_signal", _signal),
    "cap_add": ("cap_add", _capabilities),
    "cap_drop": ("cap_drop", _capabilities),
    "privileged": ("privileged", _flag),
    "devices": ("devices", parse_devices),
    "device_cgroup_rules": ("device_cgroup_rules", _cgroup_rules),
    "sysctls": ("sysctls", parse_sysctls),
    "ulimits": ("ulimits", parse_ulimits),
    "shm_size": ("shm_size", _size),
    "tmpfs": ("tmpfs", parse_tmpfs),
    "extra_hosts": ("extra_hosts", parse_extra_hosts),
    "dns": ("dns", ip_addresses),
    "dns_search": ("dns_search", _words),
    "dns_opt": ("dns_opt", _words),
    "hostname": ("hostname", _pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", "web-1")),
    "domainname": ("domainname", _pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", "example.com")),
    "mac_address": ("mac_address", _pattern(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", "02:42:ac:11:00:02")),
    "init": ("init", _boolean),     # false is kept: it overrides an engine that runs an init by default
    "logging": ("logging", parse_logging),
    "mem_limit": ("mem_limit", _memory),
    "memswap_limit": ("memswap_limit", _swap),
    "mem_reservation": ("mem_reservation", _memory),
    "mem_swappiness": ("mem_swappiness", _integer(-1, 100, default=-1)),
    "cpus": ("nano_cpus", _cpus),
    "cpu_shares": ("cpu_shares", _integer(0, 262144)),
    "cpu_quota": ("cpu_quota", _cpu_quota),
    "cpu_period": ("cpu_period", _cpu_period),
    "cpuset": ("cpuset", _pattern(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*", '"0-3" or "0,2"')),
    "pids_limit": ("pids_limit", _integer(-1, MAX_INT64)),
    "oom_score_adj": ("oom_score_adj", _integer(-1000, 1000)),
    "oom_kill_disable": ("oom_kill_disable", _flag),
    "security_opt": ("security_opt", _security_options),
    "read_only": ("read_only", _flag),
    "pid": ("pid", _namespace("host", container=True)),
    "ipc": ("ipc", _namespace("host", "private", "shareable", "none", container=True)),
    "uts": ("uts", _namespace("host")),
    "userns_mode": ("userns_mode", _namespace("host")),
    "cgroup": ("cgroup", _namespace("host", "private")),
    "cgroup_parent": ("cgroup_parent", _pattern(r"[^\s\x00]+", "my-group.slice")),
    "group_add": ("group_add", _groups),
    "tty": ("tty", _flag),
    "stdin_open": ("stdin_open", _flag),
    "platform": ("platform", _pattern(r"[a-z0-9_]+(/[a-z0-9_.]+){0,2}", "linux/amd64")),
    "runtime": ("runtime", _pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "runc")),
    "storage_opt": ("storage_opt", string_table),
}

# TOML keys of a service that are container options (each normalised by container_options).
OPTION_KEYS: frozenset[str] = frozenset(_OPTIONS)


def container_options(table: dict, path: str) -> dict:
    """The option keys of one service table (only OPTION_KEYS) -> ContainerOptions (only what is set)."""
    options = {}
    for key in sorted(table):
        name, parse = _OPTIONS[key]
        value = parse(table[key], f"{path}.{key}")
        if value is not None:
            options[name] = value
    _check_together(options, path)
    return dict(sorted(options.items()))


def _check_together(options: dict, path: str) -> None:
    """What Docker refuses about two options together, whatever the host."""
    memory, swap, reservation = (options.get(k, 0) for k in ("mem_limit", "memswap_limit", "mem_reservation"))
    if swap > 0 and not memory:
        raise SpecError(f"{path}.memswap_limit", "needs mem_limit (Docker refuses a swap limit without a memory limit)")
    if swap > 0 and swap < memory:
        raise SpecError(f"{path}.memswap_limit", "must be at least mem_limit (it counts memory and swap together)")
    if memory and reservation > memory:
        raise SpecError(f"{path}.mem_reservation", "must not be above mem_limit")
    for key in ("cpu_quota", "cpu_period"):
        if "nano_cpus" in options and key in options:
            raise SpecError(f"{path}.cpus", f"cannot be combined with {key} (Docker takes one or the other)")


# What Docker refuses beside a network_mode that borrows another container's network (container:NAME,
# and so Compose's service:NAME): that container's network settings are the ones in force.
_BORROWED_NETWORK = {"hostname": "hostname", "dns": "DNS servers", "extra_hosts": "host-to-IP mappings",
                     "expose": "exposed ports", "mac_address": "a MAC address"}


def check_network_mode(options: dict, network_mode: str | None, path: str) -> None:
    """Options that cannot go with the service's network_mode (Docker refuses the container)."""
    borrowed = (network_mode or "").startswith(("container:", "service:"))
    for key, what in _BORROWED_NETWORK.items():
        if key in options and (borrowed or (network_mode == "host" and key == "mac_address")):
            raise SpecError(f"{path}.{key}", f"{what} cannot be set with network_mode {shown(network_mode)} "
                                             "(the container uses another network namespace's)")
