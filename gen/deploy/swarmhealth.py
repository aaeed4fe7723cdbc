"""gen's own verdict on a Swarm service: healthy, failed (with the task's own error), or still waiting.

Swarm's answer is not used: its CLI exits 0 after an automatic rollback, and an update that cannot be
placed stays "updating" forever. gen reads the tasks instead. A service being brought to a definition
(a Watch) is healthy when
  - as many tasks of that definition (their gen.hash) as it has replicas are running (Swarm reports
    "running" only once a task's healthcheck passed: "starting" until then),
  - each has been seen running for the stability window without failing,
  - no task of another definition is still meant to run (Swarm finished replacing them);
it has failed as soon as a task of that definition made by this activation failed, was rejected, or
exited (a long-running service must keep running); and it fails at the deadline, naming what it was
waiting for ("no suitable node (...)" of a task Swarm could not place), never hanging.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from gen.deploy.options import Options, Progress, no_progress
from gen.engine.swarmstate import FAILED, Task
from gen.errors import ActivationFailed

POLL_S = 0.2        # one task list per poll for all the services waited for


@dataclass
class Watch:
    """One service being brought to one definition."""
    service: str                        # gen's name
    service_id: str
    hash: str                           # the definition
    replicas: int
    before: frozenset = frozenset()     # task IDs that existed before this activation touched it
    seen: dict = field(default_factory=dict)    # task ID -> when it was first seen running (monotonic)


@dataclass(frozen=True)
class Verdict:
    state: str              # healthy | failed | waiting
    detail: str = ""
    task: Task | None = None


def judge(w: Watch, tasks: list[Task], now: float, stability_s: float, node: Callable[[str], str]) -> Verdict:
    """The verdict on one watched service from its tasks (all tasks of its Swarm service)."""
    mine = [t for t in tasks if t.hash == w.hash]
    fresh = [t for t in mine if t.id not in w.before]
    for t in fresh:
        if t.state in FAILED or t.state == "complete":
            return Verdict("failed", describe_failure(t, node), t)
    # Tasks of this definition that count: new ones, and old ones still active (a restore finds the
    # tasks that never stopped; their failed history does not count against it).
    new = {t.id for t in fresh}
    current = [t for t in mine if t.desired == "running" and (t.id in new or t.active)]
    running = [t for t in current if t.state == "running"]
    for t in running:
        w.seen.setdefault(t.id, now)
    stable = [t for t in running if now - w.seen[t.id] >= stability_s]
    others = [t for t in tasks if t.hash != w.hash and t.desired == "running" and t.active]
    if len(stable) >= w.replicas and not others:
        return Verdict("healthy")
    return Verdict("waiting", _waiting(w, current, running, stable, others, node))


def describe_failure(t: Task, node: Callable[[str], str]) -> str:
    where = f" on {node(t.node)}" if t.node else ""
    if t.state == "complete":
        return f"task {t.id[:12]}{where} exited (code 0), but a service must keep running"
    return f"task {t.id[:12]}{where} {t.state}: {t.err or t.message or 'no reason given'}"


def _waiting(w: Watch, current: list[Task], running: list[Task], stable: list[Task], others: list[Task],
             node: Callable[[str], str]) -> str:
    """What the service still waits for, most telling first: a task Swarm cannot place, a task not
    running yet, old tasks still running, the stability window."""
    stuck = [t for t in current if t.state != "running" and t.err]
    if stuck:
        return f"task {stuck[0].id[:12]} {stuck[0].state}: {stuck[0].err}"
    starting = [t for t in current if t.state != "running"]
    if starting:
        where = f" on {node(starting[0].node)}" if starting[0].node else ""
        return f"task {starting[0].id[:12]}{where} {starting[0].state}" + (
            f" ({starting[0].message})" if starting[0].message else "")
    if len(running) < w.replicas:
        return f"{len(running)} of {w.replicas} task(s) running"
    if others:
        return f"{len(others)} task(s) of the previous definition still running"
    return f"{len(stable)} of {w.replicas} task(s) through the stability window"


def wait_healthy(tasks_of: Callable[[list[str]], list[Task]], watches: list[Watch], deadline: float,
                 options: Options, node: Callable[[str], str], progress: Progress = no_progress,
                 phase: str = "healthy", within_s: float | None = None) -> None:
    """Until every watched service is healthy; ActivationFailed naming the first that failed (at once)
    or that was not healthy by the deadline (with what it waited for). within_s: the bound the
    deadline stands for, as the message says it (default: the activation's --timeout)."""
    pending = {w.service: w for w in watches}
    while pending:
        tasks = tasks_of(sorted({w.service_id for w in pending.values()}))
        now = time.monotonic()
        for name, w in sorted(pending.items()):
            verdict = judge(w, [t for t in tasks if t.service_id == w.service_id], now, options.stability_s, node)
            if verdict.state == "failed":
                raise ActivationFailed(f"service {name}", verdict.detail, service=name, state=verdict.task.state,
                                       exit_status=verdict.task.exit_code)
            if verdict.state == "healthy":
                del pending[name]
                progress(name, phase, "")
        if not pending:
            return
        if now >= deadline:
            name, w = sorted(pending.items())[0]
            verdict = judge(w, [t for t in tasks if t.service_id == w.service_id], now, options.stability_s, node)
            raise ActivationFailed(f"service {name}", f"not healthy within {within_s or options.timeout_s:g} s: {verdict.detail}",
                                   service=name, state="timeout")
        time.sleep(min(POLL_S, max(0.0, deadline - now)) or POLL_S / 4)
