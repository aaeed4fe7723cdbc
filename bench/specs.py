"""Spec generators: one neutral model, written as gen TOML, Compose YAML and JSON (for the floor).

A spec directory holds `gen.toml`, `compose.yaml` and `spec.json`, all describing the same services:
same image, command, environment, restart policy, healthcheck and a stop grace of 0 s.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

IMAGE = "gen-test/busybox:1"
COMMAND = ["sleep", "3600"]
RESTART = "unless-stopped"


@dataclass(frozen=True)
class Health:
    test: list[str]
    interval_ms: int
    timeout_ms: int
    retries: int


@dataclass(frozen=True)
class Service:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=lambda: list(COMMAND))
    image: str = IMAGE
    health: Health | None = None


def services(n: int, changed: int | None = None) -> list[Service]:
    """n plain services; `changed` (an index) gets a different value of one env var."""
    return [Service(f"s{i:04d}", {"REV": "2" if i == changed else "1"}) for i in range(n)]


def healthy_single() -> list[Service]:
    return [Service("s0000", {"REV": "1"}, health=Health(["CMD", "true"], 200, 1000, 3))]


def write(spec_dir: Path, project: str, svcs: list[Service]) -> Path:
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "gen.toml").write_text(gen_toml(project, svcs))
    (spec_dir / "compose.yaml").write_text(compose_yaml(svcs))
    (spec_dir / "spec.json").write_text(json.dumps([asdict(s) for s in svcs], indent=1))
    return spec_dir


def load(spec_dir: Path) -> list[Service]:
    rows = json.loads((spec_dir / "spec.json").read_text())
    return [Service(**{**r, "health": Health(**r["health"]) if r["health"] else None}) for r in rows]


# -- gen: TOML --------------------------------------------------------------------------------
def _q(value) -> str:
    # JSON strings and arrays of strings are valid TOML basic strings and arrays.
    return json.dumps(value)


def gen_toml(project: str, svcs: list[Service]) -> str:
    out = [f"name = {_q(project)}", ""]
    for s in svcs:
        env = ", ".join(f"{k} = {_q(v)}" for k, v in s.env.items())
        out += [f"[services.{s.name}]", f"image = {_q(s.image)}", f"command = {_q(s.command)}",
                f"env = {{ {env} }}", f'restart = "{RESTART}"', 'stop_grace = "0s"']
        if s.health:
            h = s.health
            out += [f"[services.{s.name}.healthcheck]", f"test = {_q(h.test)}",
                    f'interval = "{h.interval_ms}ms"', f'timeout = "{h.timeout_ms}ms"', f"retries = {h.retries}"]
        out.append("")
    return "\n".join(out)


# -- compose: YAML ------------------------------------------------------------------------------
def compose_doc(svcs: list[Service]) -> dict:
    doc: dict = {"services": {}}
    for s in svcs:
        svc = {"image": s.image, "command": s.command, "environment": s.env, "restart": RESTART,
               "stop_grace_period": "0s", "pull_policy": "never"}
        if s.health:
            h = s.health
            svc["healthcheck"] = {"test": h.test, "interval": f"{h.interval_ms}ms",
                                  "timeout": f"{h.timeout_ms}ms", "retries": h.retries}
        doc["services"][s.name] = svc
    return doc


def compose_yaml(svcs: list[Service]) -> str:
    return "\n".join(yaml_block(compose_doc(svcs), 0)) + "\n"


def yaml_block(value: dict, indent: int) -> list[str]:
    """Block YAML for nested dicts whose leaves are scalars or lists of scalars (flow style)."""
    pad, lines = "  " * indent, []
    for key, v in value.items():
        if isinstance(v, dict):
            lines.append(f"{pad}{key}:" + ("" if v else " {}"))
            lines += yaml_block(v, indent + 1)
        else:
            lines.append(f"{pad}{key}: {json.dumps(v)}")     # JSON scalars/arrays are valid YAML
    return lines
