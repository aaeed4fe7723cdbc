"""Recovery: converge the engine on `current`, with the same planner and transaction as a switch.

Containers are named and labelled by content hash and `current` is the only commit point, so
whatever an interrupted activation left behind (new containers created or started, old ones
stopped), planning `current` against what runs yields exactly the steps that restore it.
"""
from __future__ import annotations

import time

from gen.faults import checkpoint
from gen.deploy.inflight import IN_FLIGHT_MARGIN_S, IN_FLIGHT_MAX_S, grace_s
from gen.deploy.options import Result
from gen.deploy.transaction import Deployer
from gen.errors import CorruptState, UnknownFormat
from gen.model.compile import Compiled, compile_empty
from gen.state.manifests import load_compiled
from gen.state.profile import Profile


def converge(d: Deployer, prof: Profile, journal: dict | None = None) -> Result:
    """Make the engine run `current` (nothing, before the first generation). Caller holds the lock.
    journal: the interrupted activation's, if known (the networks of the manifest it was making
    current are removed when `current` does not use them)."""
    current = prof.current()
    compiled: Compiled = load_compiled(d.store, current.manifest) if current else compile_empty(prof.name)
    interrupted = (journal or {}).get("to")
    number = current.number if current else 0

    def once() -> Result:
        return d.activate(prof, compiled, "recover", d.commit_nothing(current.number if current else None),
                          interrupted if isinstance(interrupted, str) else None, number=number)
    stopping_until = prof.stopping_until()      # read before this pass's own activation ends and clears it
    result = once()
    if journal and getattr(d.engine, "calls_outlive_caller", True):
        # The killed process's last engine call (a stop, a start) is still carried out by Docker, and may
        # land after this pass looked at the engine: look again once it can have (gen.deploy.inflight),
        # and converge again.
        graces = [grace_s(g) for g in (result.plan.grace_ms.values() if result.plan else ())]
        wait = max(min(IN_FLIGHT_MAX_S, max(graces, default=0.0)) + IN_FLIGHT_MARGIN_S, stopping_until - time.time())
        if wait > IN_FLIGHT_MAX_S + IN_FLIGHT_MARGIN_S:
            d.progress("", "waiting", f"up to {wait:.0f} s for a stop the interrupted activation asked of the "
                       "engine (its grace period) to land")
        time.sleep(wait)
        if not d.plan(prof, compiled, number=number).is_noop:
            result = once()
    return result


def recover_if_interrupted(d: Deployer, prof: Profile) -> None:
    """Every mutating verb starts here: an interrupted activation is repaired first, and said so."""
    journal = prof.journal()
    if journal:
        d.progress("", "recovering", f"an interrupted {journal['kind']} (pid {journal['pid']}) was found; "
                   "converging on the current generation first")
        converge(d, prof, journal)
        checkpoint("recover first: converged on current")
        prof.end()
        checkpoint("recover first: journal removed")
        d.progress("", "recovered", "the engine matches the current generation again")


def recover(d: Deployer, prof: Profile) -> Result:
    """`gen recover`: converge on `current`, saying which interrupted activation it repaired. Caller holds the lock.

    Converging needs only `current`, so a damaged journal does not stop an explicit recover (every
    other verb refuses it and points here); one in a format this gen does not know (a newer gen's)
    does, since that gen may have meant more by it."""
    try:
        journal = prof.journal()
    except UnknownFormat:
        raise
    except CorruptState as e:
        d.progress("", "warning", f"{e}; converging on the current generation anyway")
        journal = {"kind": "activation (its journal was damaged)", "pid": None}
    result = converge(d, prof, journal)
    checkpoint("recover: converged on current")
    prof.end()
    checkpoint("recover: journal removed")
    if journal:
        by = f" (pid {journal['pid']})" if journal.get("pid") else ""
        return Result(**{**result.__dict__, "message": f"recovered an interrupted {journal['kind']}{by}; "
                         f"{result.message}"})
    return result
