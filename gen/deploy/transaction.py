"""One activation, end to end: plan against what runs, journal, Activation, commit, activation log.

    plan(observed, manifest) -> journal written -> Activation.run(commit) -> journal removed -> logged

The caller holds the profile's lock. `commit` is what makes the outcome count: for a switch, the
generation record and the flip of `current` (commit_switch); for a rollback, the flip alone; for a
recovery, nothing (it converges on `current`). The journal is written before the first engine
call and removed only once the engine matches either the old or the new generation, so a process
killed anywhere in between leaves a journal that the next mutating command recovers from first
(gen.deploy.recovery).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from gen.deploy.activation import Activation
from gen.deploy.faults import checkpoint
from gen.deploy.options import Options, Progress, Result, no_progress
from gen.engine.base import Engine
from gen.errors import ActivationFailed, GenError
from gen.model.compile import Compiled
from gen.model.plan import Plan, plan
from gen.state.manifests import store_compiled
from gen.state.pins import pin_images
from gen.state.profile import Profile
from store import Store
from store.errors import StoreError
from store.objects import HASH_RE


@dataclass
class Deployer:
    """Runs activations of profiles on one engine."""
    store: Store
    engine: Engine
    options: Options = Options()
    progress: Progress = no_progress
    on_plan: Callable[[Plan], None] = field(default=lambda plan: None)   # told the plan before it runs

    def plan(self, prof: Profile, compiled: Compiled) -> Plan:
        observed = self.engine.observe(prof.name)
        return plan(prof.name, compiled.services, observed, self.known(observed))

    def known(self, observed) -> dict[str, dict]:
        """Service objects of the observed containers, where the store has them (to explain changes)."""
        hashes = {c.hash for c in observed if HASH_RE.fullmatch(c.hash)}     # labels may be anything
        return {h: self.store.get(h) for h in hashes if self.store.has(h)}

    def dry_run(self, prof: Profile, compiled: Compiled) -> Result:
        p = self.plan(prof, compiled)
        current = prof.current()
        return Result(prof.name, current.number if current else None, compiled.manifest_hash, p, False,
                      "dry run: nothing was changed")

    def activate(self, prof: Profile, compiled: Compiled, kind: str, commit: Callable[[], int | None]) -> Result:
        """Make the engine run `compiled`, then commit(); or undo and raise. Caller holds the lock."""
        started = time.monotonic()
        current = prof.current()
        p = self.plan(prof, compiled)
        if p.is_noop and current and current.manifest == compiled.manifest_hash:
            return Result(prof.name, current.number, compiled.manifest_hash, p, False,
                          f"generation {current.number} is already current; nothing to do")
        self.on_plan(p)
        prof.begin(kind, current.number if current else None, compiled.manifest_hash, None)
        checkpoint("journal written")
        record = {"kind": kind, "from": current.number if current else None, "started": time.time()}
        number_box: list[int | None] = []
        try:
            Activation(self.engine, compiled, p, self.options, self.progress).run(
                lambda: number_box.append(commit()))
        except (GenError, StoreError) as e:
            if isinstance(e, ActivationFailed) and e.restored:
                prof.end()     # the previous state is back; otherwise the journal stays for recovery
            prof.log_activation({**record, "to": compiled.manifest_hash[:12], "outcome": f"failed: {e}",
                                 "duration_s": round(time.monotonic() - started, 3)})
            raise
        prof.end()
        checkpoint("journal removed")
        number = number_box[0]
        duration = time.monotonic() - started
        prof.log_activation({**record, "to": number, "outcome": "ok", "duration_s": round(duration, 3)})
        message = f"generation {number} is now current" if number else "no generation is current; no containers run"
        return Result(prof.name, number, compiled.manifest_hash, p, True, message, duration)

    def commit_switch(self, prof: Profile, compiled: Compiled,
                      record_source: Callable[[], str | None] = lambda: None) -> Callable[[], int]:
        """The commit of a switch: the closure written again, images pinned, a generation recorded
        (only when the manifest differs from the newest, as in Nix), then `current` flipped."""
        def commit() -> int:
            store_compiled(self.store, compiled)    # gc may have collected this build while we waited for the lock
            pin_images(self.engine, prof.name, compiled)   # a recorded generation's images survive `image prune`
            newest = prof.newest()
            gen = newest if newest and newest.manifest == compiled.manifest_hash else prof.append(
                compiled.manifest_hash, len(compiled.services), source=record_source())
            checkpoint("generation recorded")
            prof.set_current(gen.number)
            return gen.number
        return commit

    def commit_rollback(self, prof: Profile, number: int) -> Callable[[], int]:
        """The commit of a rollback: `current` flips to an existing generation; none is created."""
        def commit() -> int:
            prof.set_current(number)
            return number
        return commit
