"""How services refer to each other, and the checks across services.

`depends_on` is a list of names (each waits for "running", Compose's service_started), or a table
NAME -> condition: "started", "healthy" (the dependency's healthcheck passes; it must have one) or
"completed" (the dependency is a job that must exit 0 first), in Compose's words too
(service_started, service_healthy, service_completed_successfully), or a table { condition,
required, restart }. `required = false` drops a dependency on a service that is not in the
deployment (left out by profiles); `restart = true` (Compose restarts the dependent when the
dependency restarts) has nothing to do in gen's one-shot switch, which replaces a dependent whose
dependency changed anyway, so it is accepted and changes nothing.

A job (`job = true`, or a dependency someone waits for with "completed") runs to exit 0, once per
definition: it restarts "no" or "on-failure" (default "no") and has one replica.
"""
from __future__ import annotations

import re

from gen.errors import SpecError
from gen.model.ports import addresses_overlap
from gen.spec.messages import key_path, shown
from gen.spec.validate import check_keys, checked_string, checked_table

CONDITIONS = {"started": "started", "service_started": "started",
              "healthy": "healthy", "service_healthy": "healthy",
              "completed": "completed", "service_completed_successfully": "completed"}
CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")   # Docker's rule


def parse_depends_on(value, path, ctx) -> dict[str, str]:
    """-> dependency name -> "started" | "healthy" | "completed" (only services in the deployment)."""
    if isinstance(value, list):
        entries = [(checked_string(item, f"{path}[{i}]"), "started", True, f"{path}[{i}]")
                   for i, item in enumerate(value)]
    elif isinstance(value, dict):
        entries = [(name, *_dependency(item, key_path(path, name)), key_path(path, name))
                   for name, item in value.items()]
    else:
        raise SpecError(path, "must be a list of service names or a table of conditions")
    out: dict[str, str] = {}
    for name, condition, required, sub in entries:
        if name in out:
            raise SpecError(sub, f"duplicate dependency {shown(name)}")
        if name not in ctx.services:
            if not required:
                continue        # left out (by profiles, or never defined): Compose drops it too
            if name in ctx.inactive:
                raise SpecError(sub, f"service {shown(name)} is not enabled by the active profiles "
                                     "(enable one of its profiles, or mark the dependency required = false)")
            raise SpecError(sub, f"unknown service {shown(name)}")
        out[name] = condition
    return dict(sorted(out.items()))


def _dependency(value, path: str) -> tuple[str, bool]:
    if isinstance(value, str):
        return _condition(value, path), True
    table = checked_table(value, path)
    check_keys(table, ("condition", "required", "restart"), path)
    for key in ("required", "restart"):
        if not isinstance(table.get(key, True), bool):
            raise SpecError(f"{path}.{key}", "must be true or false")
    return _condition(table.get("condition", "started"), f"{path}.condition"), table.get("required", True)


def _condition(value, path: str) -> str:
    word = checked_string(value, path)
    if word not in CONDITIONS:
        raise SpecError(path, f"must be started, healthy or completed (or Compose's service_started, "
                              f"service_healthy, service_completed_successfully), got {shown(word)}")
    return CONDITIONS[word]


def parse_container_name(value, path, ctx=None) -> str:
    name = checked_string(value, path, 255, empty_ok=False)
    if not CONTAINER_NAME.fullmatch(name):
        raise SpecError(path, f"{shown(name)} is not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)")
    return name


def parse_job(value, path, ctx=None) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, "must be true or false")
    return value


# ---------------------------------------------------------------- across services

def relate(services: dict[str, dict], port_paths: dict[str, list[str]]) -> None:
    """Settle what one service says about another (jobs, network_mode service:NAME) and check it.
    port_paths: per service, the key path each of its ports came from (a range gives several)."""
    for name, svc in services.items():
        path = f"services.{name}"
        mode = svc.get("network_mode", "")
        if mode.startswith("service:"):
            _network_service(name, mode.partition(":")[2], services, svc)
        for dep, condition in svc.get("conditions", {}).items():
            sub = key_path(f"{path}.depends_on", dep)
            if condition == "healthy" and (services[dep]["healthcheck"] or {}).get("test", ["NONE"]) == ["NONE"]:
                raise SpecError(sub, f"waits for {dep} to be healthy, but {dep} has no healthcheck")
            if condition == "completed":
                services[dep]["job"] = True
    for name, svc in services.items():
        if svc.get("job"):
            _check_job(name, svc)
        if svc["restart"] is None:
            svc["restart"] = "no" if svc.get("job") else "unless-stopped"
    _check_container_names(services)
    check_port_conflicts(services, port_paths)


def _network_service(name: str, target: str, services: dict, svc: dict) -> None:
    path = f"services.{name}.network_mode"
    if target == name:
        raise SpecError(path, "a service cannot share its own network stack")
    if target not in services:
        raise SpecError(path, f"unknown service {shown(target)}")
    if target not in svc["depends_on"]:     # it must run first: its network stack is joined
        svc["depends_on"] = sorted([*svc["depends_on"], target])


def _check_job(name: str, svc: dict) -> None:
    path = f"services.{name}"
    restart = svc["restart"]
    if restart is not None and restart != "no" and not restart.startswith("on-failure"):
        raise SpecError(f"{path}.restart", f"{shown(restart)}: a job runs to completion once, so it restarts "
                                           '"no" or "on-failure" (it is a job: job = true, or a dependency '
                                           "waits for it to complete)")
    if svc["replicas"] != 1:
        raise SpecError(f"{path}.replicas", "a job runs once: it has one replica")


def _check_container_names(services: dict[str, dict]) -> None:
    seen: dict[str, str] = {}
    for name, svc in sorted(services.items()):
        if "container_name" not in svc:
            continue
        path = f"services.{name}.container_name"
        if svc["replicas"] != 1:
            raise SpecError(path, f"{svc['replicas']} replicas cannot share one container name")
        if svc["container_name"] in seen:
            raise SpecError(path, f"{shown(svc['container_name'])} is already the name of {seen[svc['container_name']]}")
        seen[svc["container_name"]] = path


def check_port_conflicts(services: dict[str, dict], port_paths: dict[str, list[str]]) -> None:
    """Two fixed host ports that cannot both be bound; an ephemeral one (0) never clashes."""
    seen: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for name in sorted(services):
        for port, path in zip(services[name]["ports"], port_paths[name]):
            if not port["host_port"]:
                continue
            key = (port["host_port"], port["protocol"])
            for other_ip, other_path in seen.get(key, []):
                if addresses_overlap(port["host_ip"], other_ip):
                    raise SpecError(path, f"host port {key[0]}/{key[1]} is already published by {other_path}")
            seen.setdefault(key, []).append((port["host_ip"], path))
