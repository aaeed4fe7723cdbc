"""The Swarm cases' deployment, written as gen TOML and as the equivalent Compose file for `docker stack deploy`.

Ten busybox services: s0000 serves HTTP on a host-mode published port and has a healthcheck (1 replica); the
others sleep, with 1-3 replicas. A change sets another value of one env var of one sleeper (s0005, 3 replicas).

The Compose file asks Swarm for what gen's mapping asks it (gen/engine/swarmspec.py): every task of a service
updated at once (parallelism 0, delay 0), start-first for the sleepers and stop-first for the service with a
host port (old and new cannot both bind it on one node), restart on any exit, and Swarm's own post-update watch
as short as Swarm allows (monitor 1ms: a monitor of 0 is replaced by Swarm's 5 s default, which UpdateStatus
would then wait out; gen --stable-for 0 has no window either). Swarm's defaults (one task at a time,
stop-first, a 5 s monitor) would make `docker stack deploy` much slower on the 3-replica service.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.specs import IMAGE, RESTART, Health, yaml_block

N = 10
CHANGED = 5
SERVE = ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
CHECK = Health(["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"], 500, 2000, 3)


@dataclass(frozen=True)
class SwarmService:
    name: str
    replicas: int
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=lambda: ["sleep", "3600"])
    port: int | None = None          # published in host mode, to the container's 8080
    health: Health | None = None

    @property
    def order(self) -> str:          # gen's choice (gen.engine.swarmspec.update_order)
        return "stop-first" if self.port else "start-first"


def services(port: int, changed: int | None = None) -> list[SwarmService]:
    env = {i: {"REV": "2" if i == changed else "1"} for i in range(N)}
    return [SwarmService("s0000", 1, env[0], SERVE, port, CHECK)] + [
        SwarmService(f"s{i:04d}", 1 + i % 3, env[i]) for i in range(1, N)]


def write(spec_dir: Path, project: str, svcs: list[SwarmService]) -> Path:
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "gen.toml").write_text(gen_toml(project, svcs))
    (spec_dir / "compose.yaml").write_text("\n".join(yaml_block(compose_doc(svcs), 0)) + "\n")
    (spec_dir / "spec.json").write_text(json.dumps([asdict(s) for s in svcs], indent=1))
    return spec_dir


def changed_services(old_dir: Path | None, new_dir: Path) -> set[str]:
    """The services whose definition differs between two spec directories (all of them after none)."""
    new = {s["name"]: s for s in json.loads((new_dir / "spec.json").read_text())}
    old = {} if old_dir is None else {s["name"]: s for s in json.loads((old_dir / "spec.json").read_text())}
    return {name for name, s in new.items() if old.get(name) != s}


def gen_toml(project: str, svcs: list[SwarmService]) -> str:
    q = json.dumps        # JSON strings and arrays of strings are valid TOML
    out = [f"name = {q(project)}", ""]
    for s in svcs:
        env = ", ".join(f"{k} = {q(v)}" for k, v in s.env.items())
        out += [f"[services.{s.name}]", f"image = {q(IMAGE)}", f"command = {q(s.command)}", f"env = {{ {env} }}",
                f'restart = "{RESTART}"', 'stop_grace = "0s"', f"replicas = {s.replicas}"]
        if s.port:
            out.append(f'ports = [{{ target = 8080, published = {s.port}, mode = "host" }}]')
        if s.health:
            h = s.health
            out += [f"[services.{s.name}.healthcheck]", f"test = {q(h.test)}", f'interval = "{h.interval_ms}ms"',
                    f'timeout = "{h.timeout_ms}ms"', f"retries = {h.retries}"]
        out.append("")
    return "\n".join(out)


def compose_doc(svcs: list[SwarmService]) -> dict:
    doc: dict = {"version": "3.8", "services": {}}
    for s in svcs:
        svc: dict = {"image": IMAGE, "command": s.command, "environment": s.env, "stop_grace_period": "0s"}
        if s.port:
            svc["ports"] = [{"target": 8080, "published": s.port, "mode": "host"}]     # JSON flow style is YAML
        if s.health:
            h = s.health
            svc["healthcheck"] = {"test": h.test, "interval": f"{h.interval_ms}ms", "timeout": f"{h.timeout_ms}ms",
                                  "retries": h.retries}
        svc["deploy"] = {"replicas": s.replicas, "restart_policy": {"condition": "any"},
                         "update_config": {"parallelism": 0, "delay": "0s", "failure_action": "pause",
                                           "monitor": "1ms", "max_failure_ratio": 0, "order": s.order}}
        doc["services"][s.name] = svc
    return doc
