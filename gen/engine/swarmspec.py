"""A gen service object as a Docker Swarm service: the ServiceSpec of Docker's API. Pure.

    name        <profile>_<service>
    labels      gen.profile, gen.service, gen.hash, gen.manifest (the service); the spec's labels and
                gen.profile, gen.service, gen.hash (its containers: a task's version is its gen.hash)
    image       the object's registry digest ("repo@sha256:..."), else a pushed copy's, else its image ID
                (which runs only where every node has that image)
    replicas, env, command (Args), entrypoint (Command), user, working_dir, stop_grace, healthcheck
    restart     no -> none, always | unless-stopped -> any, on-failure[:N] -> on-failure (MaxAttempts N)
    resources   cpus, mem_limit, pids_limit (limits), mem_reservation (reservation)
    update      Order: start-first | stop-first (stop-first whenever it publishes a host port: old and
                new cannot both bind it on one node, and Swarm would wait forever); all tasks at once,
                FailureAction pause: gen judges health itself and undoes from its store
    networks    overlay networks of the profile (<profile>_<name>), with aliases
    ports       PublishMode ingress (through the routing mesh on every node; absent `mode`, Compose's default)
                or host (`mode: host`: on the node that runs the task; a node binds it once)
    placement   constraints -> Placement.Constraints, max_replicas_per_node -> Placement.MaxReplicas
    endpoint_mode   EndpointSpec.Mode: vip (absent) | dnsrr
    secrets, configs   Swarm secrets and configs named by content (file_name), with target, uid, gid, mode
    volumes     named (<profile>_<name>, one per node), bind, tmpfs, anonymous
    options     stop_signal, cap_add, cap_drop, sysctls, ulimits, tmpfs, extra_hosts, dns*, hostname,
                init, read_only, group_add, tty, stdin_open, logging, platform, expose (no effect)

What a Swarm service cannot do is refused before anything is touched (check_service: a SpecError
naming the key, exit 1), never dropped: container_name, network_mode, jobs, a port bound to one
address, fixed addresses, ingress ports beside endpoint_mode dnsrr (the routing mesh needs a virtual IP),
and container options with no Swarm counterpart (privileged, devices, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gen.errors import SpecError
from gen.model.naming import LABEL_HASH, LABEL_MANIFEST, LABEL_PROFILE, LABEL_SERVICE

NS_PER_MS = 1_000_000
MONITOR_NS = 1_000_000_000      # Swarm's own watch after an update; gen's judgement is what counts
NAME_MAX = 63                   # Swarm's limit on names of secrets and configs is 64
RESTART = {"no": "none", "always": "any", "unless-stopped": "any"}
# Container options with a Swarm counterpart (the rest of ContainerOptions cannot apply: refused).
CONTAINER_OPTIONS = {"stop_signal": "StopSignal", "hostname": "Hostname", "init": "Init", "read_only": "ReadOnly",
                     "tty": "TTY", "stdin_open": "OpenStdin", "cap_add": "CapabilityAdd",
                     "cap_drop": "CapabilityDrop", "sysctls": "Sysctls", "group_add": "Groups"}
RESOURCE_OPTIONS = {"nano_cpus": ("Limits", "NanoCPUs"), "mem_limit": ("Limits", "MemoryBytes"),
                    "pids_limit": ("Limits", "Pids"), "mem_reservation": ("Reservations", "MemoryBytes")}
OTHER_OPTIONS = {"ulimits", "tmpfs", "extra_hosts", "dns", "dns_search", "dns_opt", "logging", "platform", "expose"}
OPTION_KEYS = {"nano_cpus": "cpus"}     # an option's key as the spec spells it, where it differs


@dataclass(frozen=True)
class Refs:
    """What the mapping needs from the cluster: engine names and IDs made in the prepare phase."""
    image: str                                                 # the reference every node runs
    networks: dict[str, str] = field(default_factory=dict)    # gen network -> engine name
    volumes: dict[str, str] = field(default_factory=dict)     # declared volume -> engine name
    files: dict[str, str] = field(default_factory=dict)       # pinned object hash -> Swarm secret/config ID
    names: dict[str, str] = field(default_factory=dict)       # pinned object hash -> Swarm secret/config name


def swarm_name(profile: str, service: str) -> str:
    return f"{profile}_{service}"


def file_name(profile: str, name: str, object_hash: str) -> str:
    """A Swarm secret or config is immutable: it is named by its content (the pinned object's hash), so
    a changed value is a new one and a rollback finds (or makes again) exactly the old one."""
    full = f"{profile}_{name}_{object_hash[:12]}"
    return full if len(full) <= NAME_MAX else f"{profile[:NAME_MAX - 13]}_{object_hash[:12]}"


def host_mode(port: dict) -> bool:
    return port.get("mode") == "host"


def update_order(obj: dict) -> tuple[str, str]:
    """(Swarm's update order, why when it is not the spec's). An ingress port is the mesh's, not a task's."""
    if obj["update"] == "start-first" and any(p["host_port"] and host_mode(p) for p in obj["ports"]):
        return "stop-first", "stop-first: it publishes a host port, which old and new cannot both bind on one node"
    return obj["update"], ""


# -- what cannot apply ------------------------------------------------------------------------------
def check_service(name: str, obj: dict) -> None:
    """A SpecError naming the key for anything a Swarm service cannot do."""
    path = f"services.{name}"
    for key, why in (("container_name", "Swarm names a service's containers itself"),
                     ("network_mode", "a Swarm service joins networks, not another container's stack"),
                     ("job", "jobs are not supported on a Swarm target yet")):
        if obj.get(key):
            raise SpecError(f"{path}.{key}", f"cannot apply on a Swarm ({why})")
    for i, port in enumerate(obj["ports"]):
        if port["host_ip"] not in ("", "0.0.0.0", "::"):
            raise SpecError(f"{path}.ports[{i}]", f"a Swarm publishes a port on every address of a node, not on "
                                                  f"{port['host_ip']} alone")
        if not host_mode(port) and obj.get("endpoint_mode") == "dnsrr":
            raise SpecError(f"{path}.ports[{i}]", "an ingress port needs endpoint_mode vip (the routing mesh "
                                                  "forwards to a virtual IP): publish it with mode host")
    for net, how in (obj.get("networks") or {}).items():
        for key in ("ipv4_address", "ipv6_address"):
            if key in how:
                raise SpecError(f"{path}.networks.{net}.{key}", "cannot apply on a Swarm (it assigns addresses)")
    for i, secret in enumerate(obj["secrets"]):
        if "object" not in secret:
            raise SpecError(f"{path}.secrets[{i}]", "was pinned by an older gen as a file on this host, which other "
                                                   "nodes lack: build the spec again to switch it to a Swarm")
    for key, value in (obj.get("options") or {}).items():
        if key not in CONTAINER_OPTIONS and key not in RESOURCE_OPTIONS and key not in OTHER_OPTIONS:
            raise SpecError(f"{path}.{OPTION_KEYS.get(key, key)}", "cannot apply on a Swarm (a Swarm service has no "
                                                                  "such setting)")
        if key == "tmpfs" and any(value.values()):
            raise SpecError(f"{path}.tmpfs", "tmpfs mount options cannot apply on a Swarm (use a tmpfs volume with "
                                             "size and mode)")


def network_definition(name: str, definition: dict) -> dict:
    """A network of the manifest as the overlay network gen creates for a Swarm (attachable, so that
    `docker run --network` can reach the services too)."""
    if definition.get("driver", "overlay") != "overlay":
        raise SpecError(f"networks.{name}.driver", f"{definition['driver']} networks cannot join a Swarm's "
                                                   "services across nodes (leave driver out: overlay)")
    return {**definition, "driver": "overlay", "attachable": True}


# -- the mapping ------------------------------------------------------------------------------------
def service_spec(profile: str, name: str, h: str, manifest: str, obj: dict, refs: Refs) -> dict:
    """The ServiceSpec (POST /services/create, /services/{id}/update) of one service object. Its task
    template depends on the object and refs alone, so mapping an older object again gives exactly the
    template its running tasks were made from (Swarm then leaves them running)."""
    check_service(name, obj)
    order, _ = update_order(obj)
    spec = {
        "Name": swarm_name(profile, name),
        "Labels": {LABEL_PROFILE: profile, LABEL_SERVICE: name, LABEL_HASH: h, LABEL_MANIFEST: manifest},
        "TaskTemplate": task_template(profile, name, h, obj, refs),
        "Mode": {"Replicated": {"Replicas": obj["replicas"]}},
        "UpdateConfig": {"Parallelism": 0, "Delay": 0, "FailureAction": "pause", "Monitor": MONITOR_NS,
                         "MaxFailureRatio": 0, "Order": order},
        "EndpointSpec": {"Mode": obj.get("endpoint_mode", "vip"), "Ports": [
            {"Protocol": p["protocol"], "TargetPort": p["container_port"],
             "PublishMode": "host" if host_mode(p) else "ingress",
             **({"PublishedPort": p["host_port"]} if p["host_port"] else {})} for p in obj["ports"]]},
    }
    return spec


def task_template(profile: str, name: str, h: str, obj: dict, refs: Refs) -> dict:
    options = obj.get("options") or {}
    template = {"ContainerSpec": container_spec(profile, name, h, obj, refs),
                "Resources": resources(options), "RestartPolicy": restart_policy(obj["restart"]),
                "Placement": placement(obj, options), "ForceUpdate": 0,
                "Networks": [{"Target": refs.networks[net], **({"Aliases": how["aliases"]} if how.get("aliases") else {})}
                             for net, how in sorted((obj.get("networks") or {"default": {}}).items())]}
    if "logging" in options:
        template["LogDriver"] = {"Name": options["logging"]["driver"], "Options": options["logging"].get("options", {})}
    return template


def container_spec(profile: str, name: str, h: str, obj: dict, refs: Refs) -> dict:
    options = obj.get("options") or {}
    spec = {"Image": refs.image, "Labels": {**obj["labels"], LABEL_PROFILE: profile, LABEL_SERVICE: name,
                                            LABEL_HASH: h},
            "Env": [f"{k}={v}" for k, v in sorted(obj["env"].items())],
            "StopGracePeriod": obj["stop_grace_ms"] * NS_PER_MS,
            "Mounts": [mount(m, refs, profile) for m in obj["volumes"]] + [
                {"Type": "tmpfs", "Target": target} for target in sorted(options.get("tmpfs", {}))],
            "Secrets": [_file(ref, refs, "Secret") for ref in obj["secrets"]],
            "Configs": [_file(ref, refs, "Config") for ref in obj.get("configs", ())]}
    for key, value in (("Command", obj["entrypoint"]), ("Args", obj["command"]), ("User", obj["user"]),
                       ("Dir", obj["working_dir"])):
        if value is not None:
            spec[key] = value
    if obj["healthcheck"] is not None:
        spec["HealthCheck"] = healthcheck(obj["healthcheck"])
    spec.update({field_: options[key] for key, field_ in CONTAINER_OPTIONS.items() if key in options})
    if "ulimits" in options:
        spec["Ulimits"] = [{"Name": n, "Soft": soft, "Hard": hard} for n, (soft, hard) in sorted(options["ulimits"].items())]
    if "extra_hosts" in options:      # "host:ip" -> /etc/hosts' "ip host"
        spec["Hosts"] = [f"{entry.partition(':')[2]} {entry.partition(':')[0]}" for entry in options["extra_hosts"]]
    dns = {field_: options[key] for key, field_ in (("dns", "Nameservers"), ("dns_search", "Search"),
                                                    ("dns_opt", "Options")) if key in options}
    if dns:
        spec["DNSConfig"] = dns
    return spec


def healthcheck(check: dict) -> dict:
    if check["test"] == ["NONE"]:
        return {"Test": ["NONE"]}
    return {"Test": check["test"], "Interval": check["interval_ms"] * NS_PER_MS,
            "Timeout": check["timeout_ms"] * NS_PER_MS, "Retries": check["retries"],
            "StartPeriod": check["start_period_ms"] * NS_PER_MS}


def restart_policy(restart: str) -> dict:
    if restart in RESTART:
        return {"Condition": RESTART[restart]}
    _, _, attempts = restart.partition(":")
    return {"Condition": "on-failure", **({"MaxAttempts": int(attempts)} if attempts else {})}


def resources(options: dict) -> dict:
    out: dict = {"Limits": {}, "Reservations": {}}
    for key, (kind, field_) in RESOURCE_OPTIONS.items():
        if key in options:
            out[kind][field_] = options[key]
    return out


def placement(obj: dict, options: dict) -> dict:
    out: dict = {}
    wanted = obj.get("placement") or {}
    if "constraints" in wanted:
        out["Constraints"] = list(wanted["constraints"])
    if "max_replicas_per_node" in wanted:
        out["MaxReplicas"] = wanted["max_replicas_per_node"]
    if "platform" in options:
        os_, _, arch = options["platform"].partition("/")
        out["Platforms"] = [{"OS": os_, "Architecture": arch.partition("/")[0]}]
    return out


def mount(m: dict, refs: Refs, profile: str) -> dict:
    base = {"Type": m["type"], "Target": m["target"], "ReadOnly": m["read_only"]}
    if m["type"] == "bind":
        return {**base, "Source": m["source"], **({"BindOptions": {"Propagation": m["propagation"]}}
                                                   if "propagation" in m else {})}
    if m["type"] == "tmpfs":
        size = {"SizeBytes": m["tmpfs_size"]} if "tmpfs_size" in m else {}
        return {**base, "TmpfsOptions": {**size, **({"Mode": m["tmpfs_mode"]} if "tmpfs_mode" in m else {})}}
    if not m["source"]:                 # anonymous: Swarm makes one per task
        return base
    engine_name = refs.volumes.get(m["source"], f"{profile}_{m['source']}")
    owned = engine_name == f"{profile}_{m['source']}"
    options = {**({"NoCopy": True} if m.get("nocopy") else {}), **({"Labels": {LABEL_PROFILE: profile}} if owned else {})}
    return {**base, "Source": engine_name, **({"VolumeOptions": options} if options else {})}


def _file(ref: dict, refs: Refs, kind: str) -> dict:
    """A pinned secret or config file (kind "Secret" | "Config") as the Swarm object of its content."""
    return {"File": {"Name": ref["target"], "UID": str(ref["uid"]), "GID": str(ref["gid"]), "Mode": ref["mode"]},
            f"{kind}ID": refs.files[ref["object"]], f"{kind}Name": refs.names[ref["object"]]}
