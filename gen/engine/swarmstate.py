"""What a Swarm manager reports, in gen's vocabulary: a profile's services and their tasks. Pure: the
parsers take the dicts of Docker's API (GET /services, GET /tasks, GET /nodes) as they come.

A task's version is the `gen.hash` label of its container spec: gen writes a service's task template
as a function of its service object alone (gen.engine.swarmspec), so every task made from one
definition carries that definition's hash, whatever Swarm did in between.
"""
from __future__ import annotations

from dataclasses import dataclass

from gen.model.naming import LABEL_HASH, LABEL_MANIFEST, LABEL_SERVICE

# Task states (swarmkit's), in the order a task goes through them.
ACTIVE = frozenset({"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting",
                    "running"})
FAILED = frozenset({"failed", "rejected"})      # the task's own failure; "complete": it exited 0


@dataclass(frozen=True)
class ObservedService:
    """One gen-labelled Swarm service (Engine: SwarmEngine.services)."""
    id: str
    name: str                       # Swarm's name: <profile>_<service>
    service: str                    # gen's service name (label gen.service)
    hash: str                       # label gen.hash: the service object it runs
    manifest: str                   # label gen.manifest
    version: int                    # Version.Index: an update must name it
    replicas: int | None            # None: not a replicated service
    update_state: str               # UpdateStatus.State ("" when it was never updated)
    update_message: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    service_id: str
    hash: str                       # gen.hash of the definition it was made from ("" if none)
    slot: int | None
    node: str                       # node ID ("" while unassigned)
    desired: str                    # DesiredState: running | shutdown | ...
    state: str                      # Status.State
    message: str
    err: str                        # Status.Err: "task: non-zero exit (1)", "no suitable node (...)"
    exit_code: int | None
    timestamp: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def observed_service(row: dict) -> ObservedService:
    spec = row.get("Spec") or {}
    labels = spec.get("Labels") or {}
    replicated = (spec.get("Mode") or {}).get("Replicated")
    status = row.get("UpdateStatus") or {}
    return ObservedService(
        id=row["ID"], name=spec.get("Name", ""), service=labels.get(LABEL_SERVICE, ""), hash=labels.get(LABEL_HASH, ""),
        manifest=labels.get(LABEL_MANIFEST, ""), version=int((row.get("Version") or {}).get("Index", 0)),
        replicas=int(replicated.get("Replicas", 1)) if isinstance(replicated, dict) else None,
        update_state=status.get("State", ""), update_message=status.get("Message", ""))


def task(row: dict) -> Task:
    container = ((row.get("Spec") or {}).get("ContainerSpec") or {})
    status = row.get("Status") or {}
    exit_code = (status.get("ContainerStatus") or {}).get("ExitCode")
    return Task(
        id=row["ID"], service_id=row.get("ServiceID", ""), hash=(container.get("Labels") or {}).get(LABEL_HASH, ""),
        slot=row.get("Slot"), node=row.get("NodeID", ""), desired=row.get("DesiredState", ""),
        state=status.get("State", ""), message=status.get("Message", ""), err=status.get("Err", ""),
        exit_code=exit_code if isinstance(exit_code, int) and status.get("State") in ("failed", "complete") else None,
        timestamp=status.get("Timestamp", ""))


def node_names(rows: list[dict]) -> dict[str, str]:
    """node ID -> its hostname (the ID when it has none)."""
    return {r["ID"]: ((r.get("Description") or {}).get("Hostname") or r["ID"][:12]) for r in rows}
