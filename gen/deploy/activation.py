"""Activation: execute a Plan as one bounded transaction.

    prepare (secrets and config files materialised, images present or pulled by digest, networks,
             volumes, containers created, free names claimed)   -- nothing running is touched yet
    per dependency level: stop what must stop first, rename what must take a name, start the new, and
             wait for what the next levels need: a job's exit 0, and each dependency as its dependents
             ask (running; healthy for depends_on condition "healthy")
    every long-running container healthy (or stable for the window) before the commit
    commit, in two phases (see Commit): what may still be undone, then the flip of `current`
    remove the old containers (and their materialised files, and networks no longer used); those of a
             warm generation (gen.state.warm) are only stopped, kept for a rollback to start them

Any failure before the flip (any exception, not only gen's own) undoes everything this transaction
did, in reverse (gen.deploy.undo). Once the flip has happened, nothing is undone: a failure after it
finishes forward and reports exit 3 (the journal stays). Volumes are never removed. A crash at any
point is repaired by converging on `current` with the same code (gen.deploy.recovery), because every
container is labelled and named by its content hash.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from typing import Callable

from gen.deploy.commit import Commit, flip, interrupts_deferred
from gen.deploy.health import has_check, probe_for, wait_healthy, waited_healthy
from gen.deploy.images import prepare_images
from gen.deploy.jobs import as_created, is_job, wait_completed
from gen.deploy.materialize import materialize, remove_stale, with_paths
from gen.deploy.options import Options, Progress, no_progress
from gen.deploy.renames import ContainerNameTaken, Renames, name_in_use
from gen.deploy.undo import Undo, UndoLog
from gen.deploy.wiring import Networks, anonymous_volumes, retire_networks
from gen.engine.base import Engine
from gen.errors import ActivationFailed, GenError, Interrupted, NotOwned
from gen.faults import checkpoint
from gen.model.compile import Compiled
from gen.model.containers import network_peer
from gen.model.naming import LABEL_PROFILE
from gen.model.plan import Plan
from store.errors import StoreError


class Activation:
    def __init__(self, engine: Engine, target: Compiled, plan: Plan, options: Options = Options(),
                 progress: Progress = no_progress, warm: tuple[dict, ...] = ()):
        """warm: the manifests of the warm generations (gen.state.warm), whose networks stay after the
        commit; the profile's other networks the target does not join are removed."""
        self.engine = engine
        self.target = target
        self.plan = plan
        self.options = options
        self.progress = progress
        self.profile = plan.profile
        self.warm = warm
        self.nets = Networks(self.profile, target.manifest)
        self.undo_log = UndoLog()
        self.renames = Renames(engine, self.profile)
        self._pool = ThreadPoolExecutor(max_workers=options.workers)
        self._new_ids: dict[str, str] = {}       # container name -> id, for containers we created
        self._started_at: dict[str, float] = {}  # container id -> when its start returned (monotonic)
        self._unsettled: dict[str, str] = {}     # started, long-running, not yet gated (healthy / stable)
        self._inflight: list = []                # futures of the last parallel batch
        self._paths: dict[str, dict[str, str]] = {}  # service hash -> its pinned files' host paths

    def run(self, commit: Commit | Callable[[], object]) -> object:
        """Prepare, start, gate on health, commit, clean up; returns what commit.flip() returned.
        Raises ActivationFailed after undoing, or Interrupted (exit 3) when something failed after the
        flip (then the new generation is current and nothing was undone)."""
        commit = commit if isinstance(commit, Commit) else Commit(flip=commit)
        deadline = time.monotonic() + self.options.timeout_s
        after_flip: BaseException | None = None
        try:
            try:
                self.prepare()
                for level in self.plan.by_level():
                    self._start_level(level, deadline)
                self._settle(deadline)
                commit.prepare()
                with interrupts_deferred():
                    outcome, after_flip = flip(commit)
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM before the commit: undo, as for any other failure. Let the engine
                # calls already in flight finish first, so that the undo log is complete.
                wait_futures(self._inflight)
                self._undo_and_raise(GenError("activation", "interrupted by a signal before the commit"), commit)
            except Exception as failure:         # any exception, gen's own or not, before the flip: undo
                self._undo_and_raise(failure, commit)
            checkpoint("committed")
            self._finish_forward(after_flip)
            return outcome
        finally:
            self.close()

    def _finish_forward(self, after_flip: BaseException | None) -> None:
        """After the flip: remove the old containers; report (never undo) what went wrong."""
        try:
            self._parallel(self._remove_old, [(cid, s, cid in s.remove_after) for s in self.plan.steps
                                              for cid in (*s.remove_after, *s.retire_after)])
        except Exception as e:
            raise Interrupted("cleanup", f"the new generation is committed and running, but removing the old "
                              f"containers failed ({_describe(e)}); run `gen recover`") from None
        # The profile's networks neither the target nor a warm generation joins (best effort).
        retire_networks(self.engine, self.profile, self.target, self.warm)
        try:
            problems = remove_stale(self.target)    # materialised files of services that are gone
        except Exception as e:
            problems = [_describe(e)]
        for problem in problems:
            self.progress("", "warning", f"materialised files left behind: {problem}")
        if after_flip is not None:
            raise Interrupted("commit", f"the new generation is current and running, but the commit may not be "
                              f"durable ({_describe(after_flip)}); run `gen recover` once the disk is healthy") from None

    # -- prepare: everything that can fail before anything running is touched ----------------------
    def prepare(self) -> None:
        # Secrets and config files first, for every service (a kept one's too: after a reboot its
        # files are gone), so a missing or wrong key is found before the engine is asked anything.
        self._paths = materialize(self.target)
        new = [(s, c) for s in self.plan.steps for c in s.create]
        prepare_images(self.engine, self.target, {s.service: self._obj(s.service) for s, _ in new}, self.progress,
                       self.options.closure)
        # Started ones' too: a kept (warm) container's may be gone (it then joins the new one of that name).
        starting = {s.service for s in self.plan.steps if s.create or s.start}
        for net in sorted({n for name in starting for n in Networks.joined(self._obj(name))}):
            self._ensure_network(net)
        for vol, opts in self.target.manifest["volumes"].items():
            self.engine.ensure_volume(self.nets.volume(vol), {LABEL_PROFILE: self.profile},
                                      external=bool(opts.get("external")))
            checkpoint(f"volume {vol}")
        anonymous = {name for s, c in new
                     for name in anonymous_volumes(self.profile, s.service, self._obj(s.service), c.replica).values()}
        for name in sorted(anonymous):
            self.engine.ensure_volume(name, {LABEL_PROFILE: self.profile})
            checkpoint(f"volume {name}")
        # A container sharing another's network stack is created once that one exists (it joins it by id).
        sharing = {s.service for s, _ in new if network_peer(self._obj(s.service))}
        self._parallel(self._create, [(s, c) for s, c in new if s.service not in sharing])
        for level in self.plan.levels:
            self._parallel(self._create, [(s, c) for s, c in new if s.service in sharing and s.service in level])
        # A name nobody of the profile holds is taken now: a stranger holding it is refused untouched.
        for s in self.plan.steps:
            for claim in s.claims:
                if not claim.holder:
                    self.renames.claim(claim, self._new_ids.get(claim.claimant, claim.claimant))

    def _obj(self, service: str) -> dict:
        return self.target.services[service][1]

    def _ensure_network(self, net: str) -> None:
        name, definition = self.nets.engine_name(net), self.nets.defined.get(net, {})
        if self.engine.ensure_network(name, {LABEL_PROFILE: self.profile}, definition or None,
                                      external=self.nets.is_external(net)):
            self.undo_log.add("networks", name)
        checkpoint(f"network {name}")

    def _create(self, step, c) -> None:
        h, obj = self.target.services[step.service]
        self.progress(step.service, "creating", c.name)
        wiring = self.nets.wiring(step.service, obj, c.replica, self._peer_id(obj))
        created = as_created(with_paths(obj, self._paths.get(h, {})))
        try:
            with _naming(step.service, f"container {c.name} could not be created"):
                cid = self.engine.create(self.profile, step.service, created, h, self.target.manifest_hash, c.replica,
                                         c.name, wiring)
        except ActivationFailed as e:
            if c.name == obj.get("container_name") and name_in_use(e):
                raise ContainerNameTaken(c.name, self.profile) from None
            raise
        self.undo_log.add("created", cid)
        self._new_ids[c.name] = cid
        checkpoint(f"created {c.name}")

    def _peer_id(self, obj: dict) -> str | None:
        """The id of the replica-1 container of the service whose network stack `obj` shares, in the new
        generation: created by this activation, or kept."""
        peer = network_peer(obj)
        if peer is None:
            return None
        step = self.plan.step(peer)
        new = [self._new_ids[c.name] for c in step.create if c.replica == 1]
        return new[0] if new else step.kept[0]

    # -- start, per dependency level -------------------------------------------------------------
    def _start_level(self, steps, deadline: float) -> None:
        self._parallel(self._stop_old, [(s, cid) for s in steps for cid in s.stop_before])
        self._parallel(self._quiesce, [(s, cid) for s in steps for cid in s.quiesce])
        for claim in (claim for s in steps for claim in s.claims if claim.holder):
            self.renames.claim(claim, self._new_ids.get(claim.claimant, claim.claimant))
        started = {cid: s.service for s in steps for cid in s.start}
        started.update({self._new_ids[c.name]: s.service for s in steps for c in s.create})
        self._parallel(self._start, [(started[cid], cid) for cid in started])
        for s in steps:
            job = is_job(self._obj(s.service))
            self.progress(s.service, "running job" if job else "waiting", "until it exits" if job else "for health")
        self._wait_level(started, deadline)
        checkpoint("level healthy")     # what the next levels need is there (the fault tests know this name)

    def _wait_level(self, started: dict[str, str], deadline: float) -> None:
        """Wait for what the next levels need: every job's exit 0; a long-running container running, or
        healthy where a dependent's condition says so. The rest of the gate (healthy, or stable for the
        window) comes once, before the commit (_settle), so a chain of N levels costs one window, not N."""
        jobs = {cid: svc for cid, svc in started.items() if is_job(self._obj(svc))}
        services = {cid: svc for cid, svc in started.items() if cid not in jobs}
        awaited = waited_healthy(self.target.services)
        healthy = {cid: svc in awaited and has_check(self._obj(svc)) for cid, svc in services.items()}
        probes = {cid: p for cid, svc in services.items()
                  if healthy[cid] and (p := probe_for(self._obj(svc), self.options))}
        wait_healthy(self.engine, self.profile, healthy, services, deadline, self.options, self._pool.map, probes,
                     settle=False)
        self._unsettled.update({cid: svc for cid, svc in services.items() if not healthy[cid]})
        wait_completed(self.engine, self.profile, jobs, deadline, self.options)
        gated = {svc for cid, svc in services.items() if healthy[cid]}
        for service in sorted(set(started.values())):
            if (phase := self._phase_after_level(service, gated)) is not None:
                self.progress(service, *phase)

    def _settle(self, deadline: float) -> None:
        """Every long-running container started must be healthy (its healthcheck passes) or, without a
        healthcheck, have run through the stability window, counted from its own start, without
        exiting or restarting."""
        if not self._unsettled:
            return
        checked = {cid: has_check(self._obj(svc)) for cid, svc in self._unsettled.items()}
        probes = {cid: p for cid, svc in self._unsettled.items()
                  if checked[cid] and (p := probe_for(self._obj(svc), self.options))}
        wait_healthy(self.engine, self.profile, checked, self._unsettled, deadline, self.options, self._pool.map,
                     probes, since=self._started_at)
        for service in sorted(set(self._unsettled.values())):
            self.progress(service, "healthy", "")
        checkpoint("stable")

    def _phase_after_level(self, service: str, gated: set[str]) -> tuple[str, str] | None:
        """What a service shows once its level is done (None: still "waiting", for health)."""
        obj = self._obj(service)
        if is_job(obj):
            return "completed", ""
        if service in gated:
            return "healthy", ""
        return None if has_check(obj) else ("running", f"{self.options.stability_s:g} s stability window")

    def _stop_old(self, step, cid: str) -> None:
        self.progress(step.service, "stopping", cid[:12])
        self.engine.stop(cid, self.plan.grace_ms.get(cid))
        self.undo_log.add("stopped", (cid, step.service))
        checkpoint(f"stopped {cid[:12]}")

    def _quiesce(self, step, cid: str) -> None:
        self.progress(step.service, "stopping", f"{cid[:12]} (left over, not running)")
        self.engine.stop(cid, 0)
        checkpoint(f"stopped leftover {cid[:12]}")

    def _start(self, service: str, cid: str) -> None:
        self.progress(service, "starting", cid[:12])
        if cid not in self.undo_log.created:
            self.undo_log.add("started", cid)
        with _naming(service, f"container {cid[:12]} could not start"):
            self.engine.start(cid)
        self._started_at[cid] = time.monotonic()
        checkpoint(f"started {cid[:12]}")

    # -- after commit: remove what the new generation does not use, stop what stays warm ---------------
    def _remove_old(self, cid: str, step, remove: bool = True) -> None:
        self.progress(step.service, "removing" if remove else "stopping", cid[:12] + ("" if remove else " (kept warm)"))
        grace = self.plan.grace_ms.get(cid)
        if grace != 0 or not remove:
            self.engine.stop(cid, grace)    # let it shut down cleanly; with no grace, remove kills it at once
        if remove:
            self.engine.remove(cid)
        checkpoint(f"{'removed' if remove else 'stopped warm'} {cid[:12]}")

    # -- undo ------------------------------------------------------------------------------------
    def _undo_and_raise(self, failure: BaseException, commit: Commit = Commit(flip=lambda: None)) -> None:
        restored, problem = True, ""
        level_of = {s.service: s.level for s in self.plan.steps}
        try:
            Undo(self.engine, self.profile, self.undo_log, self.renames, level_of, self.options, self._parallel,
                 self._pool.map, self.progress).run()
        except Exception as e:
            restored, problem = False, _describe(e)
        try:
            commit.abandon()
            checkpoint("undo: prepared commit abandoned")
        except Exception as e:       # a generation record left behind is harmless: it was never current
            self.progress("", "warning", f"a prepared generation record could not be taken back ({_describe(e)})")
        if restored and isinstance(failure, NotOwned):
            raise failure from None      # a refusal (exit 1): nothing of the engine's was changed
        failed = ActivationFailed.wrap(failure)
        if not restored:
            failed.mark_not_restored(problem)
        raise failed from None

    def abort(self, failure: BaseException) -> None:
        """Undo what a prepare() outside run() did, and raise as a failed switch would."""
        self._undo_and_raise(failure)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @property
    def created(self) -> dict[str, str]:
        """container name -> id of every container this activation created."""
        return dict(self._new_ids)

    def _parallel(self, fn, items: list[tuple]) -> None:
        """Run fn(*item) for every item on the pool; re-raise the first error after all finished."""
        futures = [self._pool.submit(fn, *item) for item in items]
        self._inflight = futures
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]


@contextmanager
def _naming(service: str, what: str):
    """An engine error about a container becomes a failure that names its service (DESIGN rule 5)."""
    try:
        yield
    except GenError as e:
        if isinstance(e, ActivationFailed):
            raise
        raise ActivationFailed(f"service {service}", f"{what}: {e.reason}", service=service) from None


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, (GenError, StoreError)) else f"{type(e).__name__}: {e}"
