"""`gen status`: the current generation against what the engine runs. Read-only: no writes.

Drift is computed with the same planner that activation uses: anything the planner would do to
reach `current` is drift, plus containers that run but fail their healthcheck. The caller reads a
consistent snapshot (gen.api holds the profile's lock, taken without waiting, while it reads
`current`, the engine and the journal); when an activation holds the lock, the status is
`in_progress`: what runs is half-way between two generations by design, and calling it drift would
be a false alarm.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from gen.model.compile import Compiled
from gen.model.plan import Observed, Plan


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    hash: str
    ok: bool
    problem: str                          # "" when ok
    containers: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    profile: str
    generation: int | None
    manifest: str | None
    services: list[ServiceStatus]
    extra: list[dict]                     # gen-labelled containers that `current` does not declare
    activation: dict | None               # journal of an activation in flight or interrupted
    warm: list[dict] = field(default_factory=list)   # kept stopped for a rollback (gen.state.warm): expected

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.services) and not self.extra and not self.activation

    @property
    def busy(self) -> bool:
        """An activation is running right now: nothing was judged."""
        return bool(self.activation) and self.activation.get("state") == "in progress"

    def to_json(self) -> dict:
        return {"profile": self.profile, "generation": self.generation, "hash": self.manifest, "ok": self.ok,
                "services": [s.__dict__ for s in self.services], "extra": self.extra,
                "activation": self.activation, "warm": self.warm}


def status(profile: str, generation: int | None, compiled: Compiled, plan: Plan, observed: list[Observed],
           journal: dict | None) -> Status:
    by_id = {c.id: c for c in observed}
    services = [_service_status(compiled, plan, name, observed) for name in sorted(compiled.services)]
    old = [c for c in observed if c.service not in compiled.services or c.hash != compiled.services[c.service][0]]
    leaving = {*plan.to_remove, *plan.to_retire}     # a warm container still running is drift too
    extra = [_describe(by_id[cid]) for cid in [*plan.to_remove, *plan.to_retire] if by_id[cid] in old]
    warm = [_describe(c) for c in sorted(old, key=lambda c: c.name) if c.id not in leaving]
    return Status(profile, generation, compiled.manifest_hash if generation else None, services, extra,
                  activation_state(journal), warm)


def in_progress(profile: str, generation: int | None, manifest: str | None, holder_pid: int | None,
                journal: dict | None) -> Status:
    """The status while another process holds the profile's lock (an activation, or gc)."""
    activation = {**(journal or {"kind": "lock held", "from": generation}),
                  "pid": holder_pid or (journal or {}).get("pid"), "state": "in progress"}
    return Status(profile, generation, manifest, [], [], activation)


def _service_status(compiled: Compiled, plan: Plan, name: str, observed: list[Observed]) -> ServiceStatus:
    """A service is fine when the planner would leave it as it is: a job's container that exited 0 is
    fine too (the planner keeps it: it ran to completion), and shows as "completed"."""
    h, obj = compiled.services[name]
    mine = [c for c in observed if c.service == name and c.hash == h]
    step = plan.step(name)
    problem = "" if step.action == "keep" else step.reason
    unhealthy = [c for c in mine if c.health == "unhealthy"]
    if not problem and unhealthy:
        problem = f"{len(unhealthy)} container(s) unhealthy"
    return ServiceStatus(name, h, not problem, problem, [_describe(c, bool(obj.get("job")))
                                                         for c in sorted(mine, key=lambda c: c.name)])


def _describe(c: Observed, job: bool = False) -> dict:
    state = c.health if c.state == "running" and c.health else c.state
    if c.state == "exited":
        state = "completed" if job and c.exit_code == 0 else f"exited ({c.exit_code})"
    return {"name": c.name, "id": c.id[:12], "service": c.service, "hash": c.hash, "state": state}


def activation_state(journal: dict | None) -> dict | None:
    """The journal as `gen status` shows it: the activation in progress (its pid alive) or interrupted."""
    if not journal:
        return None
    return {**journal, "state": "in progress" if _alive(journal.get("pid")) else "interrupted"}


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
