"""What Docker Compose v2 and gen create for one Compose file, compared field by field on the engine.

Both tools create (never start) the containers of the same file with the same stand-in image; then
`docker inspect` of each service's container is read into the same normal form on both sides (VIEWS)
and compared. What is compared, and what deliberately is not, is written down once, here.

Compared (VIEWS; "none" and "empty" are the same value, and an unset value is the engine's default):
- Config: Env (as a set), Cmd, Entrypoint, User, WorkingDir, ExposedPorts (a port without a protocol
  is tcp, as the engine reads it: Compose writes `expose: [5432]` as "5432"), Healthcheck (0 = the
  engine's default), StopSignal (default SIGTERM), StopTimeout (default 10 s), Tty, OpenStdin,
  Hostname and Domainname (the engine's default hostname, the container ID's first 12 digits, counts as
  none), Labels minus each tool's own (com.docker.compose.*, gen.*).
- HostConfig: PortBindings, RestartPolicy, CapAdd, CapDrop, Privileged, Devices, DeviceCgroupRules,
  Sysctls, Ulimits, ShmSize, Tmpfs, ExtraHosts, Dns, DnsOptions, DnsSearch, Init, LogConfig, Memory,
  MemoryReservation, MemorySwap, MemorySwappiness, OomKillDisable, OomScoreAdj, NanoCpus, CpuShares,
  CpuQuota, CpuPeriod, CpusetCpus, PidsLimit, SecurityOpt, ReadonlyRootfs, PidMode, IpcMode, UTSMode,
  UsernsMode, CgroupParent, GroupAdd, Runtime, and NetworkMode when it is host, none or another
  container's (container:<id> is read as container:<its service>).
- Mounts (the container's mount points, whatever API made them) as (type, source, target, read-only):
  a declared volume by its name in the file (Compose's "<project>_<vol>", gen's gen.model.naming
  name), an anonymous volume by its target only, a secret or config file by its target and the file it
  comes from (gen mounts a pinned copy of it, Compose the file itself), a bind by its host path.
- NetworkSettings.Networks: which networks, by their name in the file, each with its aliases (minus
  the tool's container name and the container ID, which each tool or the engine adds for itself) and
  fixed addresses.
- How many containers each service has, and the container's name when the file sets container_name.

Not compared, and why:
- Container names without container_name: each tool names its own ("<project>-<service>-1" against
  gen's "<profile>-<service>-<hash12>"); network and volume names carry each tool's prefix (mapped back
  to the file's names above).
- Config.Image: Compose records the reference it was given, gen the image ID; both are the stand-in.
- Labels each tool writes for itself: Compose's com.docker.compose.* (project, config hash, version),
  gen's gen.* (profile, service hash, manifest, replica).
- NetworkMode naming one of the container's own networks: only which of them a tool names at create
  (each picks its own first); the container is on all of them before it starts, which Networks compares.
- Fields neither tool sets from a Compose file (engine defaults: MaskedPaths, CgroupnsMode, ...), and
  state (Created, State, Path/Args, which repeat Entrypoint/Cmd).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_HEALTH = {"Interval": 30_000_000_000, "Timeout": 30_000_000_000, "Retries": 3, "StartPeriod": 0}
DEFAULT_STOP_TIMEOUT_S = 10


@dataclass
class Side:
    """How one tool's names read back into the file's names."""
    tool: str                                   # "Compose" | "gen"
    own_labels: str                             # the prefix of the labels it writes for itself
    volumes: dict[str, str]                     # engine volume name -> the file's volume name
    networks: dict[str, str]                    # engine network name -> the file's network name
    # service -> {target: (how it is shown, the host file it comes from)} for its secrets and config files
    files: dict[str, dict[str, tuple[str, str]]]
    pinned_root: str | None = None              # gen: where it materialises pinned files (gen.deploy.materialize)
    services_by_ref: dict[str, str] = field(default_factory=dict)   # container id or name -> service


@dataclass(frozen=True)
class Difference:
    service: str
    field: str
    compose: Any
    gen: Any

    def __str__(self) -> str:
        head = f"  {self.service}  {self.field}"
        if isinstance(self.compose, list) and isinstance(self.gen, list) and len(self.compose) + len(self.gen) > 4:
            only_compose = [x for x in self.compose if x not in self.gen]
            only_gen = [x for x in self.gen if x not in self.compose]
            return f"{head}\n    only Compose's: {only_compose!r}\n    only gen's:     {only_gen!r}"
        return f"{head}\n    Compose: {self.compose!r}\n    gen:     {self.gen!r}"


def _get(c: dict, path: str):
    value: Any = c
    for part in path.split("."):
        value = (value or {}).get(part)
    return value


def _sorted(items) -> list:
    return sorted(items or [])


def _dict(d) -> dict:
    return dict(sorted((d or {}).items()))


def _positive_or_none(v):
    return v if v and v > 0 else None


def _hostname(c: dict, side: Side) -> str:
    name = c["Config"].get("Hostname") or ""
    return "" if name == c["Id"][:12] else name


def _labels(c: dict, side: Side) -> dict:
    return {k: v for k, v in sorted((c["Config"].get("Labels") or {}).items()) if not k.startswith(side.own_labels)}


def _healthcheck(c: dict, side: Side):
    hc = c["Config"].get("Healthcheck")
    if not hc:
        return None
    return {"Test": hc.get("Test"), **{k: hc.get(k) or d for k, d in DEFAULT_HEALTH.items()}}


def _port_bindings(c: dict, side: Side) -> dict:
    return {port: sorted((b.get("HostIp") or "", b.get("HostPort") or "") for b in bindings or [])
            for port, bindings in sorted((c["HostConfig"].get("PortBindings") or {}).items())}


def _restart(c: dict, side: Side) -> tuple:
    policy = c["HostConfig"].get("RestartPolicy") or {}
    return policy.get("Name") or "no", policy.get("MaximumRetryCount") or 0


def _mode(path: str) -> Callable[[dict, Side], str]:
    """A namespace mode; "container:<id or name>" reads as "container:<service>"."""
    def read(c: dict, side: Side) -> str:
        value = _get(c, path) or ""
        kind, _, ref = value.partition(":")
        if kind == "container" and ref in side.services_by_ref:
            return f"container:{side.services_by_ref[ref]}"
        return value
    return read


def _network_mode(c: dict, side: Side) -> str:
    mode = _mode("HostConfig.NetworkMode")(c, side)
    return mode if mode in ("host", "none") or mode.startswith("container:") else "<its networks>"


def _mounts(c: dict, side: Side) -> list[tuple]:
    service = c["Config"]["Labels"].get("com.docker.compose.service") or c["Config"]["Labels"].get("gen.service")
    files = side.files.get(service, {})
    out = []
    for m in c.get("Mounts") or []:
        kind, target, ro = m.get("Type"), m.get("Destination"), not m.get("RW", True)
        if target in files and kind == "bind" and _from_file(m.get("Source") or "", files[target][1], side):
            source = files[target][0]
        elif kind == "volume":
            source = side.volumes.get(m.get("Name") or "", "")    # "": anonymous, compared by target
        else:
            source = m.get("Source") or ""
        out.append((kind, source, target, ro))
    return sorted(out)


def _from_file(source: str, file: str, side: Side) -> bool:
    """Does a bind mount show this secret or config file? Compose mounts the file itself; gen a pinned
    copy under its run directory (or, for an object written before pinning, the file itself)."""
    pinned = side.pinned_root is not None and os.path.realpath(source).startswith(
        os.path.realpath(side.pinned_root) + os.sep)
    return pinned or same_path(source, file)


def _networks(c: dict, side: Side) -> dict:
    own = {c["Id"][:12], c["Id"], c["Name"].lstrip("/")}
    out = {}
    for name, net in sorted((_get(c, "NetworkSettings.Networks") or {}).items()):
        ipam = net.get("IPAMConfig") or {}
        out[side.networks.get(name, name)] = {
            "aliases": sorted(set(net.get("Aliases") or []) - own),
            "ipv4": ipam.get("IPv4Address") or "", "ipv6": ipam.get("IPv6Address") or ""}
    return out


def _plain(path: str, normalise: Callable = lambda v: v) -> Callable[[dict, Side], Any]:
    return lambda c, side: normalise(_get(c, path))


# The compared fields: the name a difference is shown under -> its reading from one `docker inspect`.
VIEWS: dict[str, Callable[[dict, Side], Any]] = {
    "Config.Env": _plain("Config.Env", lambda v: sorted(set(v or []))),
    "Config.Cmd": _plain("Config.Cmd", lambda v: v or None),
    "Config.Entrypoint": _plain("Config.Entrypoint", lambda v: v or None),
    "Config.User": _plain("Config.User", lambda v: v or ""),
    "Config.WorkingDir": _plain("Config.WorkingDir", lambda v: v or ""),
    "Config.ExposedPorts": _plain("Config.ExposedPorts", lambda v: sorted(p if "/" in p else f"{p}/tcp" for p in v or [])),
    "Config.Healthcheck": _healthcheck,
    "Config.StopSignal": _plain("Config.StopSignal", lambda v: v or "SIGTERM"),
    "Config.StopTimeout": _plain("Config.StopTimeout", lambda v: DEFAULT_STOP_TIMEOUT_S if v is None else v),
    "Config.Tty": _plain("Config.Tty", bool),
    "Config.OpenStdin": _plain("Config.OpenStdin", bool),
    "Config.Hostname": _hostname,
    "Config.Domainname": _plain("Config.Domainname", lambda v: v or ""),
    "Config.Labels": _labels,
    "HostConfig.PortBindings": _port_bindings,
    "HostConfig.RestartPolicy": _restart,
    **{f"HostConfig.{k}": _plain(f"HostConfig.{k}", _sorted)
       for k in ("CapAdd", "CapDrop", "ExtraHosts", "Dns", "DnsOptions", "DnsSearch", "SecurityOpt", "GroupAdd",
                 "DeviceCgroupRules")},
    "HostConfig.Devices": _plain("HostConfig.Devices", lambda v: sorted(
        (d.get("PathOnHost"), d.get("PathInContainer"), d.get("CgroupPermissions")) for d in v or [])),
    "HostConfig.Ulimits": _plain("HostConfig.Ulimits", lambda v: sorted(
        (u.get("Name"), u.get("Soft"), u.get("Hard")) for u in v or [])),
    "HostConfig.Sysctls": _plain("HostConfig.Sysctls", _dict),
    "HostConfig.Tmpfs": _plain("HostConfig.Tmpfs", _dict),
    "HostConfig.LogConfig": _plain("HostConfig.LogConfig", lambda v: (
        (v or {}).get("Type") or "json-file", _dict((v or {}).get("Config")))),
    **{f"HostConfig.{k}": _plain(f"HostConfig.{k}", bool)
       for k in ("Privileged", "Init", "ReadonlyRootfs", "OomKillDisable")},
    **{f"HostConfig.{k}": _plain(f"HostConfig.{k}", lambda v: v or 0)
       for k in ("ShmSize", "Memory", "MemoryReservation", "MemorySwap", "NanoCpus", "CpuShares", "CpuQuota",
                 "CpuPeriod", "OomScoreAdj")},
    "HostConfig.MemorySwappiness": _plain("HostConfig.MemorySwappiness", lambda v: None if v in (None, -1) else v),
    "HostConfig.PidsLimit": _plain("HostConfig.PidsLimit", _positive_or_none),
    **{f"HostConfig.{k}": _plain(f"HostConfig.{k}", lambda v: v or "")
       for k in ("CpusetCpus", "UTSMode", "UsernsMode", "CgroupParent", "Runtime")},
    "HostConfig.PidMode": _mode("HostConfig.PidMode"),
    "HostConfig.IpcMode": _mode("HostConfig.IpcMode"),
    "HostConfig.NetworkMode": _network_mode,
    "Mounts": _mounts,
    "NetworkSettings.Networks": _networks,
}


def view(container: dict, side: Side) -> dict[str, Any]:
    """One container's compared fields, in the normal form both sides share."""
    return {name: read(container, side) for name, read in VIEWS.items()}


def compare(service: str, compose: dict, gen: dict, compose_side: Side, gen_side: Side,
            container_name: str | None = None) -> list[Difference]:
    """Differences between Compose's and gen's container of one service, field by field."""
    a, b = view(compose, compose_side), view(gen, gen_side)
    if container_name:
        a["Name"], b["Name"] = compose["Name"].lstrip("/"), gen["Name"].lstrip("/")
    return [Difference(service, k, a[k], b[k]) for k in a if a[k] != b[k]]


def engine_message(error: str) -> str:
    """The engine's own words in a tool's error ("Error response from daemon: X" -> "X")."""
    marker = "Error response from daemon:"
    line = next((ln for ln in reversed(error.strip().splitlines()) if marker in ln), error.strip().splitlines()[-1]
                if error.strip() else "")
    return line.split(marker, 1)[-1].strip()


def same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
