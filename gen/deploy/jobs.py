"""Jobs: services that run to completion (a migration, a seed). A job's container is started at its
dependency level and the level waits for it to exit: 0 is done, anything else fails the switch
(which then undoes everything) naming the service, its exit code and its last log lines. A job has
no healthcheck gate and no stability window. Its exited-0 container stays: the planner keeps it while
the job's definition is unchanged, so it runs again only when that changes (gen.model.plan).
"""
from __future__ import annotations

import time

from gen.deploy.options import Options
from gen.engine.base import Engine
from gen.errors import ActivationFailed, GenError

RESTARTS_FOREVER = ("always", "unless-stopped")


def is_job(obj: dict) -> bool:
    return bool(obj.get("job"))


def as_created(obj: dict) -> dict:
    """A job as the engine creates it: a policy that restarts it after a success (always,
    unless-stopped: gen's default for services) would never let it end, so it runs with "no";
    on-failure[:N] (retry a failure) is kept."""
    if is_job(obj) and obj["restart"].partition(":")[0] in RESTARTS_FOREVER:
        return {**obj, "restart": "no"}
    return obj


def wait_completed(engine: Engine, profile: str, jobs: dict[str, str], deadline: float, options: Options) -> None:
    """Block until every job container (id -> service) has exited 0; ActivationFailed on the first that
    exits otherwise, disappears, or is still running at the deadline (its last log lines in the error,
    which the CLI prints). One list call per look; a job restarting under on-failure is still running.
    Between looks it sleeps on the engine's watch (a job's exit is an event), as the health gate does."""
    pending = set(jobs)
    if not pending:
        return
    with engine.watch(profile) as watch:        # subscribed before the first look: nothing is missed
        while True:
            live = watch.live                   # read before the look (see Watch.live)
            now = time.monotonic()
            seen = {c.id: c for c in engine.observe(profile, ids=sorted(pending))}     # only the jobs still running
            for cid in sorted(pending):
                c = seen.get(cid)
                if c is None:
                    _fail(engine, jobs[cid], cid, "disappeared from the engine", "missing", None)
                elif c.state == "exited" and c.exit_code == 0:
                    pending.discard(cid)
                elif c.state in ("exited", "dead"):
                    _fail(engine, jobs[cid], cid, f"exited with code {c.exit_code}", c.state, c.exit_code)
            if not pending:
                return
            if now > deadline:
                cid = sorted(pending)[0]
                state = seen[cid].state if cid in seen else "missing"
                _fail(engine, jobs[cid], cid, f"did not complete within the timeout (state: {state})", state, None)
            interval = options.safety_poll_s if live else options.poll_s
            watch.wait(max(min(deadline, now + interval) - time.monotonic(), 0.0))


def _fail(engine: Engine, service: str, cid: str, what: str, state: str, code: int | None) -> None:
    try:
        logs = engine.logs(cid, tail=10).strip()
    except GenError:
        logs = ""
    raise ActivationFailed(f"service {service}", f"job container {cid[:12]} {what}", service=service,
                           state=state, exit_status=code, logs=logs)
