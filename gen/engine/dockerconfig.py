"""What Docker is asked to create for one container or network, as plain values (no `docker` import):
gen.engine.docker hands them to the SDK. Kept apart so the translation is read (and tested) alone.

The shapes follow what Docker Compose v2 creates for the same service on the same engine, field by
field, so a Compose file deployed by gen configures its containers as Compose would (checked against
`docker inspect` of Compose's containers):
- A bind that may create its missing source, and a named volume without `nocopy`, go in
  HostConfig.Binds ("source:target:rw|ro"): only Binds make the daemon create a missing bind source
  (the Mounts API refuses one, moby/moby#43483). A bind with `create_host_path: false` or a
  propagation, a volume with `nocopy`, an anonymous volume and a tmpfs go in HostConfig.Mounts.
- Config.ExposedPorts holds `expose` and every published port; AttachStdout/AttachStderr are set.
- The first network is joined at create, the others by a connect before anything starts it, each
  with its aliases (on an engine of API < 1.44, which joins one network per create call).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gen.engine.base import Wiring
from gen.errors import EngineError
from gen.model import formats
from gen.model.naming import container_labels

NS_PER_MS = 1_000_000
DOCKER_STOP_TIMEOUT_S = 10       # what the daemon waits before it kills, when a container sets no StopTimeout
START_INTERVAL_API = (1, 44)     # the first API version that knows Healthcheck.StartInterval

# ContainerOptions keys whose value Docker takes as it is: key -> HostConfig field.
HOST_FIELDS = {
    "cap_add": "CapAdd", "cap_drop": "CapDrop", "privileged": "Privileged",
    "device_cgroup_rules": "DeviceCgroupRules", "sysctls": "Sysctls", "shm_size": "ShmSize", "tmpfs": "Tmpfs",
    "extra_hosts": "ExtraHosts", "dns": "Dns", "dns_search": "DnsSearch", "dns_opt": "DnsOptions", "init": "Init",
    "mem_limit": "Memory", "memswap_limit": "MemorySwap", "mem_reservation": "MemoryReservation",
    "mem_swappiness": "MemorySwappiness", "nano_cpus": "NanoCpus", "cpu_shares": "CpuShares",
    "cpu_quota": "CpuQuota", "cpu_period": "CpuPeriod", "cpuset": "CpusetCpus", "pids_limit": "PidsLimit",
    "oom_score_adj": "OomScoreAdj", "oom_kill_disable": "OomKillDisable", "security_opt": "SecurityOpt",
    "read_only": "ReadonlyRootfs", "pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode",
    "userns_mode": "UsernsMode", "cgroup": "CgroupnsMode", "cgroup_parent": "CgroupParent",
    "group_add": "GroupAdd", "runtime": "Runtime", "storage_opt": "StorageOpt",
}
# ... and key -> Config field.
CONFIG_FIELDS = {"stop_signal": "StopSignal", "hostname": "Hostname", "domainname": "Domainname",
                 "mac_address": "MacAddress", "tty": "Tty", "stdin_open": "OpenStdin"}


@dataclass(frozen=True)
class ContainerArgs:
    config: dict                 # keyword arguments of APIClient.create_container_config
    config_fields: dict          # Config fields set as they are on its result
    host: dict                   # keyword arguments of APIClient.create_host_config
    host_fields: dict            # HostConfig fields set as they are on its result
    endpoints: dict              # NetworkingConfig.EndpointsConfig: the network joined at create
    connects: list[tuple[str, dict]] = field(default_factory=list)   # (network, connect kwargs), in order
    platform: str | None = None  # the create call's `platform` parameter


def container_args(profile: str, service: str, obj: dict, h: str, manifest: str, replica: int,
                   wiring: Wiring, api_version: str) -> ContainerArgs:
    """Everything the create call of one replica needs (EngineError naming the service when an
    unmaterialised file or a volume missing from the wiring makes it impossible)."""
    opts = obj.get("options", {})
    binds, mounts = volume_args(service, obj, wiring)
    host = {"binds": binds or None,
            "mounts": mounts + file_mounts(service, obj) or None, "restart_policy": restart_policy(obj["restart"])}
    endpoints, connects = network_args(wiring)
    host["network_mode"] = wiring.network_mode or next(iter(wiring.networks), None)
    config = {"image": obj["image_id"], "command": obj["command"], "entrypoint": obj["entrypoint"],
              "environment": obj["env"], "user": obj["user"], "working_dir": obj["working_dir"],
              "labels": {**obj["labels"], **container_labels(profile, service, h, manifest, replica)},
              "stop_timeout": stop_timeout(obj["stop_grace_ms"]), "detach": True}
    config_fields = {CONFIG_FIELDS[k]: v for k, v in opts.items() if k in CONFIG_FIELDS}
    config_fields.update(AttachStdout=True, AttachStderr=True, ExposedPorts=exposed_ports(obj) or None)
    if obj["healthcheck"] is not None:
        config_fields["Healthcheck"] = healthcheck(obj["healthcheck"], api_version)
    # Set as they are: the SDK refuses port bindings beside network_mode host, which Compose sends
    # (and Docker then ignores).
    host_fields = {"PortBindings": port_bindings(obj["ports"]), **host_option_fields(opts)}
    return ContainerArgs(config, config_fields, host, host_fields, endpoints, connects, opts.get("platform"))


def host_option_fields(opts: dict) -> dict:
    fields = {"ExtraHosts": []}          # Compose sends an empty list, not null
    fields.update({HOST_FIELDS[k]: v for k, v in opts.items() if k in HOST_FIELDS})
    for key, name in (("cap_add", "CapAdd"), ("cap_drop", "CapDrop")):
        if key in opts:
            fields[name] = [capability(c) for c in opts[key]]
    if "devices" in opts:
        fields["Devices"] = [device(d) for d in opts["devices"]]
    if "ulimits" in opts:
        fields["Ulimits"] = [{"Name": name, "Soft": soft, "Hard": hard}
                             for name, (soft, hard) in sorted(opts["ulimits"].items())]
    if "systempaths=unconfined" in opts.get("security_opt", ()):
        # A Docker CLI option, not the daemon's: it means "mask and protect no /proc or /sys path".
        fields["SecurityOpt"] = [o for o in opts["security_opt"] if o != "systempaths=unconfined"]
        fields["MaskedPaths"], fields["ReadonlyPaths"] = [], []
    if "logging" in opts:
        fields["LogConfig"] = {"Type": opts["logging"].get("driver", ""), "Config": opts["logging"].get("options", {})}
    return fields


def capability(name: str) -> str:
    """As Compose sends it: "CAP_NET_ADMIN" for "NET_ADMIN" (Docker takes both), "ALL" as it is."""
    name = name.upper()
    return name if name == "ALL" or name.startswith("CAP_") else f"CAP_{name}"


def device(spec: str) -> dict:
    """"host[:container[:permissions]]", as `docker run --device` reads it."""
    parts = spec.split(":")
    return {"PathOnHost": parts[0], "PathInContainer": parts[1] if len(parts) > 1 else parts[0],
            "CgroupPermissions": parts[2] if len(parts) > 2 else "rwm"}


def exposed_ports(obj: dict) -> dict:
    ports = {p: {} for p in obj.get("options", {}).get("expose", [])}
    ports.update({f"{p['container_port']}/{p['protocol']}": {} for p in obj["ports"]})
    return ports


def port_bindings(ports: list[dict]) -> dict:
    """HostConfig.PortBindings; host port 0 (any free one) is sent as "", as Compose sends it."""
    bindings: dict[str, list] = {}
    for p in ports:
        bindings.setdefault(f"{p['container_port']}/{p['protocol']}", []).append(
            {"HostIp": p["host_ip"], "HostPort": str(p["host_port"]) if p["host_port"] else ""})
    return bindings


def network_args(wiring: Wiring) -> tuple[dict, list[tuple[str, dict]]]:
    """The first network's endpoint (joined at create) and connect kwargs for the others; nothing for
    a network_mode (host, none, container:X), which joins no network of gen's."""
    if wiring.network_mode:
        return {}, []
    joins = [(net, endpoint(aliases, wiring.ipv4.get(net), wiring.ipv6.get(net)))
             for net, aliases in wiring.networks.items()]
    if not joins:
        return {}, []
    (first, first_endpoint), others = joins[0], joins[1:]
    connects = [(net, {"aliases": e["Aliases"], "ipv4_address": e.get("IPAMConfig", {}).get("IPv4Address"),
                       "ipv6_address": e.get("IPAMConfig", {}).get("IPv6Address")}) for net, e in others]
    return {first: first_endpoint}, connects


def endpoint(aliases: list[str], ipv4: str | None, ipv6: str | None) -> dict:
    config: dict = {"Aliases": list(aliases)}
    addresses = {k: v for k, v in (("IPv4Address", ipv4), ("IPv6Address", ipv6)) if v}
    if addresses:
        config["IPAMConfig"] = addresses
    return config


def volume_args(service: str, obj: dict, wiring: Wiring) -> tuple[list[str], list[dict]]:
    """(HostConfig.Binds, HostConfig.Mounts) of the service's volumes, as Compose splits them (above)."""
    binds, mounts = [], []
    for m in obj["volumes"]:
        source = m["source"]
        if m["type"] == "volume":
            source = wiring.anonymous.get(m["target"]) if not source else wiring.volumes.get(source)
            if not source:
                raise EngineError(f"service {service}", f"volume for {m['target']} is not wired to an engine volume")
        as_bind = (m["type"] == "bind" and m.get("create_host_path", True) and "propagation" not in m
                   or m["type"] == "volume" and m["source"] and not m.get("nocopy"))
        if as_bind:
            binds.append(f"{source}:{m['target']}:{'ro' if m['read_only'] else 'rw'}")
        else:
            mounts.append(mount(m, source))
    return binds, mounts


def mount(m: dict, source: str) -> dict:
    spec: dict = {"Type": m["type"], "Target": m["target"]}
    if m["type"] != "tmpfs":
        spec["Source"] = source
    if m["read_only"]:
        spec["ReadOnly"] = True
    if m["type"] == "bind":
        spec["BindOptions"] = {"Propagation": m["propagation"]} if "propagation" in m else {}
    elif m["type"] == "volume":
        spec["VolumeOptions"] = {"NoCopy": True} if m.get("nocopy") else {}
    elif "tmpfs_size" in m or "tmpfs_mode" in m:
        spec["TmpfsOptions"] = {k: m[f] for k, f in (("SizeBytes", "tmpfs_size"), ("Mode", "tmpfs_mode")) if f in m}
    return spec


def file_mounts(service: str, obj: dict) -> list[dict]:
    """Secrets and config files, read-only: a pinned one from the copy gen.deploy.materialize wrote, a
    format 1 secret from its own file, as the gen that wrote the object did (formats.file_mounts)."""
    try:
        return [{"Type": "bind", "Source": source, "Target": target, "ReadOnly": True}
                for target, source in formats.file_mounts(obj)]
    except ValueError as e:
        raise EngineError(f"service {service}", str(e)) from None


def restart_policy(restart: str) -> dict:
    name, _, count = restart.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def healthcheck(hc: dict, api_version: str) -> dict:
    check = {"Test": hc["test"], "Interval": hc["interval_ms"] * NS_PER_MS, "Timeout": hc["timeout_ms"] * NS_PER_MS,
             "Retries": hc["retries"], "StartPeriod": hc["start_period_ms"] * NS_PER_MS}
    # An older engine rejects no unknown field, it ignores it: leaving it out says what runs.
    if "start_interval_ms" in hc and version_tuple(api_version) >= START_INTERVAL_API:
        check["StartInterval"] = hc["start_interval_ms"] * NS_PER_MS
    return check


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def stop_timeout(ms: int) -> int | None:
    """Config.StopTimeout: left out for Docker's own default (10s), as Compose leaves it out unless
    stop_grace_period is set: the container stops the same, and its configuration reads the same."""
    return None if ms == DOCKER_STOP_TIMEOUT_S * 1000 else grace_seconds(ms)


def grace_seconds(ms: int) -> int:
    # Docker's stop timeout is whole seconds; round up so a grace period is never cut short.
    return -(-ms // 1000)


def network_create_args(labels: dict[str, str], definition: dict) -> tuple[dict, dict | None]:
    """(create_network kwargs, IPAM as plain values or None) of a network gen creates. gen's labels
    win over the user's: gen.profile says who owns it."""
    kwargs = {"driver": definition.get("driver", "bridge"), "internal": definition.get("internal", False),
              "enable_ipv6": definition.get("enable_ipv6", False), "options": definition.get("driver_opts"),
              "labels": {**definition.get("labels", {}), **labels}, "check_duplicate": True}
    if "attachable" in definition:
        kwargs["attachable"] = definition["attachable"]
    ipam = definition.get("ipam")
    if not ipam:
        return kwargs, None
    pools = [{"subnet": c.get("subnet"), "iprange": c.get("ip_range"), "gateway": c.get("gateway"),
              "aux_addresses": c.get("aux_addresses")} for c in ipam.get("config", [])]
    return kwargs, {"driver": ipam.get("driver", "default"), "pools": pools, "options": ipam.get("options")}
