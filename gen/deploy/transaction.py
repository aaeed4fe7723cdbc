"""One activation, end to end: plan against what runs, journal, Activation, commit, activation log.

    plan(observed, manifest) -> journal written -> Activation.run(commit) -> journal removed -> logged

The caller holds the profile's lock. The Commit is what makes the outcome count: for a switch,
the image pins and the generation record, then the flip of `current` (commit_switch); for a
rollback, the flip alone; for a recovery, nothing (it converges on `current`). Bookkeeping after
the outcome is decided (the journal's removal, the activation log) is best effort: its failure is
a warning, never a changed outcome. The journal is written before the first engine
call and removed only once the engine matches either the old or the new generation, so a process
killed anywhere in between leaves a journal that the next mutating command recovers from first
(gen.deploy.recovery).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from gen.deploy.commit import Commit
from gen.faults import checkpoint
from gen.deploy.materialize import materialize
from gen.deploy.options import Options, Progress, Result, no_progress
from gen.engine.base import Engine
from gen.errors import ActivationFailed, CorruptState, SpecError, StateTooFull
from gen.model import formats
from gen.model.compile import Compiled
from gen.model.plan import Plan, plan
from gen.state import roots
from gen.state.manifests import store_compiled
from gen.state.pins import pin_images
from gen.state.profile import Profile
from gen.state.target import Target
from gen.state.warm import pairs_of, warm_manifests
from store import Store
from store.errors import StoreError
from store.objects import HASH_RE

# Free space the state directory must have before anything running is touched: the commit writes a
# generation record, a symlink and a log line (a few KiB); a full disk must fail the switch before
# the old containers are stopped, not at the commit, after an outage.
COMMIT_RESERVE_BYTES = 1 << 20
LOCK_TIMEOUT_S = 30.0           # how long a switch waits for a running gc before it writes its closure


@dataclass
class Deployer:
    """Runs activations of profiles on one engine."""
    store: Store
    engine: Engine
    options: Options = Options()
    progress: Progress = no_progress
    on_plan: Callable[[Plan], None] = field(default=lambda plan: None)   # told the plan before it runs
    target: Target = field(default_factory=Target)     # the local engine; a Swarm's: gen.deploy.swarm

    def plan(self, prof: Profile, compiled: Compiled, observed: list | None = None, number: int | None = None,
             warm: tuple[dict, ...] | None = None) -> Plan:
        """The plan from what runs now (observed, when the caller has already listed it) to `compiled` as
        generation `number` (None: a new one), keeping the old containers of the generations below it
        warm (gen.state.warm; `warm`: their manifests, when the caller has read them). What one engine
        cannot run is refused here, before the journal, a generation or a container is touched (SpecError, exit 1)."""
        check_one_engine(compiled)
        observed = self.engine.observe(prof.name) if observed is None else observed
        warm = warm_manifests(self.store, prof, number) if warm is None else warm
        return plan(prof.name, compiled.services, observed, self.known(observed, compiled), pairs_of(warm))

    def known(self, observed, compiled: Compiled | None = None) -> dict[str, dict]:
        """Service objects of the observed containers, where the store has them intact: used only to
        explain a change and to stop old containers with their own grace. A missing, damaged or
        foreign object is left out (the plan then says just "changed"), so a stale object never
        blocks a switch or a recovery. Those `compiled` has (every one, on a no-op) are not read again."""
        found = {h: obj for h, obj in compiled.services.values()} if compiled else {}
        for h in {c.hash for c in observed if HASH_RE.fullmatch(c.hash)} - found.keys():     # labels may be anything
            try:
                found[h] = formats.service_object(self.store.get(h), f"object {h}")
            except (StoreError, CorruptState):
                continue
        return found

    def _manifests(self, *hashes: str | None) -> tuple[dict, ...]:
        """The manifests of the generations being left, where the store has them intact (only used to
        remove their networks once unused: a missing one leaves a network behind, nothing worse)."""
        found = []
        for h in sorted({h for h in hashes if h and HASH_RE.fullmatch(h)}):
            try:
                found.append(formats.manifest(self.store.get(h), f"object {h}"))
            except (StoreError, CorruptState):
                continue
        return tuple(found)

    def dry_run(self, prof: Profile, compiled: Compiled, number: int | None = None) -> Result:
        p = self.plan(prof, compiled, number=switch_number(prof, compiled) if number is None else number)
        current = prof.current()
        return Result(prof.name, current.number if current else None, compiled.manifest_hash, p, False,
                      "dry run: nothing was changed")

    def activate(self, prof: Profile, compiled: Compiled, kind: str, commit: Commit,
                 interrupted: str | None = None, number: int | None = None) -> Result:
        """Make the engine run `compiled`, then commit; or undo and raise. Caller holds the lock.
        interrupted: the manifest an interrupted activation was making current (a recovery), whose
        networks go too when `compiled` does not use them. number: the generation `compiled` is (None:
        a switch's, see switch_number)."""
        started = time.monotonic()
        current = prof.current()
        warm = warm_manifests(self.store, prof, switch_number(prof, compiled) if number is None else number)
        p = self.plan(prof, compiled, warm=warm)
        if p.is_noop and current and current.manifest == compiled.manifest_hash:
            self.refresh(compiled)      # nothing to change, but pinned files removed by hand are written again
            return Result(prof.name, current.number, compiled.manifest_hash, p, False,
                          f"generation {current.number} is already current; nothing to do")
        if not p.is_noop:
            check_free_space(prof)
        self.on_plan(p)
        prof.begin(kind, current.number if current else None, compiled.manifest_hash, None)
        checkpoint("journal written")
        record = {"kind": kind, "from": current.number if current else None, "started": time.time()}
        warnings: list[str] = []
        try:
            # left: the current generation, an interrupted one, and those kept warm until now (read only
            # by a Swarm's activation, for the resources they named)
            def previous() -> tuple[dict, ...]:
                return self._manifests(current.manifest if current else None, interrupted) \
                    + (warm_manifests(self.store, prof, current.number) if current else ())
            number = self.execute(compiled, p, previous, commit, warm, prof.note_stopping)
        except Exception as e:
            if isinstance(e, ActivationFailed) and e.restored:
                # the previous state is back; otherwise the journal stays for recovery
                self._best_effort(warnings, "removing the journal", prof.end)
            self._best_effort(warnings, "writing the activation log", prof.log_activation, {
                **record, "to": compiled.manifest_hash[:12], "outcome": f"failed: {e}",
                "duration_s": round(time.monotonic() - started, 3)})
            raise
        self._best_effort(warnings, "removing the journal (the next command recovers first, harmlessly)", prof.end)
        checkpoint("journal removed")
        duration = time.monotonic() - started
        self._best_effort(warnings, "writing the activation log", prof.log_activation, {
            **record, "to": number, "outcome": "ok", "duration_s": round(duration, 3)})
        message = f"generation {number} is now current" if number else "no generation is current; no containers run"
        return Result(prof.name, number, compiled.manifest_hash, p, True, message, duration, tuple(warnings))

    def execute(self, compiled: Compiled, p: Plan, previous: Callable[[], tuple[dict, ...]], commit: Commit,
                warm: tuple[dict, ...] = (), note_stopping: Callable[[float], None] | None = None) -> int | None:
        """Run the transaction of plan `p` (a Swarm's: gen.deploy.swarm overrides this and refresh). warm:
        the manifests of the warm generations, whose networks stay (a kept container cannot start again
        on a network made anew: Docker knows it by the old one's id). previous: reads the manifests
        being left (a Swarm's activation removes what only they named). note_stopping: told how late a
        long stop may land, for a recovery after a kill (gen.deploy.inflight)."""
        from gen.deploy.activation import Activation      # not imported by verbs that only plan (status, no-op)
        from gen.deploy.inflight import NotedStops
        engine = NotedStops(self.engine, note_stopping) if note_stopping else self.engine
        return Activation(engine, compiled, p, self.options, self.progress, warm).run(commit)

    def refresh(self, compiled: Compiled) -> None:
        """A no-op switch: nothing changes on the engine, but the running containers' pinned files (secrets,
        configs on tmpfs) may be gone (removed by hand): written again, or their next restart fails."""
        materialize(compiled)

    def _best_effort(self, warnings: list[str], what: str, fn, *args) -> None:
        """Bookkeeping whose failure must not change an outcome already decided: warn, go on."""
        try:
            fn(*args)
        except Exception as e:
            text = f"{what} failed: {e}"
            warnings.append(text)
            self.progress("", "warning", text)

    def commit_switch(self, prof: Profile, compiled: Compiled,
                      record_source: Callable[[], str | None] = lambda: None) -> Commit:
        """The commit of a switch. Now, before anything running is touched: the closure written
        again (gc may have collected this build while we waited for the lock). Then images pinned
        and a generation recorded (only when the manifest differs from the newest, as in Nix), both
        undoable; then `current` flipped."""
        with roots.writing(self.store, LOCK_TIMEOUT_S):      # gc waits until the closure is rooted
            store_compiled(self.store, compiled)
            roots.record_build(prof.path.parent.parent, prof.name, compiled.manifest_hash)
        chosen: list[int] = []
        appended: list[int] = []

        def prepare() -> None:
            pin_images(self.engine, prof.path.parent.parent, prof.name, compiled)   # a recorded generation's images survive `image prune`
            checkpoint("commit: images pinned")
            newest = prof.newest()
            if newest and newest.manifest == compiled.manifest_hash:
                chosen.append(newest.number)
            else:
                gen = prof.append(compiled.manifest_hash, len(compiled.services), source=record_source())
                chosen.append(gen.number)
                appended.append(gen.number)
            checkpoint("generation recorded")

        def abandon() -> None:
            for n in appended:
                if prof.current_number() != n:
                    prof.delete_generation(n)
        return Commit(prepare=prepare, flip=lambda: _flip_to(prof, chosen[0]),
                      flipped=lambda: bool(chosen) and _points_at(prof, chosen[0]), abandon=abandon)

    def commit_rollback(self, prof: Profile, number: int) -> Commit:
        """The commit of a rollback: `current` flips to an existing generation; none is created."""
        return Commit(flip=lambda: _flip_to(prof, number), flipped=lambda: _points_at(prof, number))

    def commit_nothing(self, number: int | None) -> Commit:
        """The commit of a recovery: `current` already names what the engine now runs."""
        return Commit(flip=lambda: number)


def switch_number(prof: Profile, compiled: Compiled) -> int | None:
    """The generation a switch to `compiled` makes current: the newest when it has the same manifest (no
    record is added, as in Nix), else a new one (None: numbered above all)."""
    newest = prof.newest()
    return newest.number if newest and newest.manifest == compiled.manifest_hash else None


def _flip_to(prof: Profile, number: int) -> int:
    prof.set_current(number)
    return number


def _points_at(prof: Profile, number: int) -> bool:
    """Has `current` moved to `number`? When it cannot even be read, assume it has: a commit that may
    have happened is never undone (the journal stays, and recovery converges on whatever `current` is)."""
    try:
        return prof.current_number() == number
    except Exception:
        return True


def check_one_engine(compiled: Compiled) -> None:
    """Replicas of a service that publishes a fixed host port cannot all bind it on one engine (on a Swarm
    they can: one task per node, gen.deploy.swarm); the spec cannot know the target, so it is refused here."""
    for name, (_, obj) in sorted(compiled.services.items()):
        fixed = [port for port in obj["ports"] if port["host_port"]]
        if obj["replicas"] > 1 and fixed:
            port = f"{fixed[0]['host_port']}/{fixed[0]['protocol']}"
            raise SpecError(f"services.{name}.replicas",
                            f"{obj['replicas']} replicas cannot all publish host port {port} on one engine")


def check_free_space(prof: Profile) -> None:
    """Fail before anything running is touched when the state directory's disk is (nearly) full."""
    where = prof.path if prof.path.exists() else prof.path.parent.parent
    try:
        st = os.statvfs(where)
    except OSError:
        return                      # cannot tell; the journal write right after fails cleanly if it must
    free = st.f_bavail * st.f_frsize
    if free < COMMIT_RESERVE_BYTES:
        raise StateTooFull(str(where), free, COMMIT_RESERVE_BYTES)
