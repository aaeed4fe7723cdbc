"""Activation: execute a Plan as one bounded transaction.

    prepare (secrets and config files materialised, images, network, volumes, create containers)
                                                          -- nothing running is touched yet
    per dependency level: stop what must stop first, start the new, wait for health
    commit, in two phases (see Commit): what may still be undone, then the flip of `current`
    remove the old containers (and their materialised files)

Any failure before the flip (any exception, not only gen's own) undoes everything this transaction
did, in reverse: created containers are removed, stopped ones started again (and checked), started
ones stopped again, the commit's first phase abandoned. Once the flip has happened, nothing is
undone: a failure after it finishes forward and reports exit 3 (the journal stays). Named volumes are
never removed. A crash at any point is repaired by converging on `current` with the same code
(gen.deploy.recovery), because every container is labelled and named by its content hash.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from gen.model.compile import Compiled
from gen.errors import ActivationFailed, GenError, Interrupted, NotOwned
from gen.deploy.commit import Commit, flip, interrupts_deferred
from gen.faults import checkpoint
from gen.deploy.health import Probe, wait_healthy
from gen.deploy.materialize import materialize, remove_stale, with_paths
from gen.deploy.options import Options, Progress, no_progress
from gen.engine.base import Engine
from gen.model.naming import LABEL_PROFILE, network_name, volume_name
from gen.model.plan import Plan
from store.errors import StoreError

@dataclass
class UndoLog:
    created: list[str] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)     # (container id, service)
    started: list[str] = field(default_factory=list)                 # previously stopped, started by us
    networks: list[str] = field(default_factory=list)                # created by this activation
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, item) -> None:
        with self._lock:
            getattr(self, kind).append(item)


class Activation:
    def __init__(self, engine: Engine, target: Compiled, plan: Plan, options: Options = Options(),
                 progress: Progress = no_progress):
        self.engine = engine
        self.target = target
        self.plan = plan
        self.options = options
        self.progress = progress
        self.profile = plan.profile
        self.undo_log = UndoLog()
        self._pool = ThreadPoolExecutor(max_workers=options.workers)
        self._new_ids: dict[str, str] = {}       # container name -> id, for containers we created
        self._started_at: dict[str, float] = {}  # container id -> when its start returned (monotonic)
        self._unsettled: dict[str, str] = {}     # started without a healthcheck, window not yet checked
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
                self._prepare()
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
            self._pool.shutdown(wait=True)

    def _finish_forward(self, after_flip: BaseException | None) -> None:
        """After the flip: remove the old containers; report (never undo) what went wrong."""
        try:
            self._cleanup()
        except Exception as e:
            raise Interrupted("cleanup", f"the new generation is committed and running, but removing the old "
                              f"containers failed ({_describe(e)}); run `gen recover`") from None
        self._remove_stale_files()
        if after_flip is not None:
            raise Interrupted("commit", f"the new generation is current and running, but the commit may not be "
                              f"durable ({_describe(after_flip)}); run `gen recover` once the disk is healthy") from None

    def _remove_stale_files(self) -> None:
        """The materialised files of services whose containers are gone (gen.deploy.materialize):
        best effort, a leftover only costs a little tmpfs."""
        try:
            problems = remove_stale(self.target)
        except Exception as e:
            problems = [_describe(e)]
        for problem in problems:
            self.progress("", "warning", f"materialised files left behind: {problem}")

    # -- prepare: everything that can fail before anything running is touched ----------------------
    def _prepare(self) -> None:
        # Secrets and config files first, for every service (a kept one's too: after a reboot its
        # files are gone), so a missing or wrong key is found before the engine is asked anything.
        self._paths = materialize(self.target)
        new = [(s, c) for s in self.plan.steps for c in s.create]
        for image in sorted({self.target.services[s.service][1]["image_id"] for s, _ in new}):
            self.engine.image_id(image, f"image {image[:19]}")
        if new:
            if self.engine.ensure_network(network_name(self.profile), {LABEL_PROFILE: self.profile}):
                self.undo_log.add("networks", network_name(self.profile))
            checkpoint("network")
        for vol, opts in self.target.manifest["volumes"].items():
            self.engine.ensure_volume(self._volume(vol), {LABEL_PROFILE: self.profile},
                                      external=bool(opts.get("external")))
            checkpoint(f"volume {vol}")
        self._parallel(self._create, new)

    def _volume(self, vol: str) -> str:
        """The engine's name of a declared volume: the user's own for an external one, else the profile's."""
        opts = self.target.manifest["volumes"][vol]
        return opts["name"] if opts.get("external") else volume_name(self.profile, vol)

    def _create(self, step, c) -> None:
        h, obj = self.target.services[step.service]
        self.progress(step.service, "creating", c.name)
        volumes = {v: self._volume(v) for v in self.target.manifest["volumes"]}
        with _naming(step.service, f"container {c.name} could not be created"):
            cid = self.engine.create(self.profile, step.service, with_paths(obj, self._paths.get(h, {})), h,
                                     self.target.manifest_hash, c.replica, c.name, network_name(self.profile), volumes)
        self.undo_log.add("created", cid)
        self._new_ids[c.name] = cid
        checkpoint(f"created {c.name}")

    # -- start, per dependency level -------------------------------------------------------------
    def _start_level(self, steps, deadline: float) -> None:
        self._parallel(self._stop_old, [(s, cid) for s in steps for cid in s.stop_before])
        self._parallel(self._quiesce, [(s, cid) for s in steps for cid in s.quiesce])
        started: dict[str, str] = {}
        for s in steps:
            for cid in s.start:
                started[cid] = s.service
            for c in s.create:
                started[self._new_ids[c.name]] = s.service
        self._parallel(self._start, [(started[cid], cid) for cid in started])
        for s in steps:
            self.progress(s.service, "waiting", "for health")
        probes = {cid: probe for cid, svc in started.items() if (probe := self._probe_for(svc)) is not None}
        # The next level needs this one healthy, or, for a container without a healthcheck, running:
        # its stability window and restart check come once, before the commit (_settle), so a chain
        # of N levels costs one window, not N.
        wait_healthy(self.engine, self.profile, {cid: self._health_of(svc) for cid, svc in started.items()},
                     started, deadline, self.options, self._pool.map, probes, settle=False)
        unchecked = {cid: svc for cid, svc in started.items() if not self._health_of(svc)}
        self._unsettled.update(unchecked)
        for s in steps:
            if s.service in unchecked.values():
                self.progress(s.service, "running", f"{self.options.stability_s:g} s stability window")
            else:
                self.progress(s.service, "healthy", "")
        checkpoint("level healthy")

    def _settle(self, deadline: float) -> None:
        """Every container started without a healthcheck must have run through the stability window,
        counted from its own start, without exiting or restarting (with no window: not restarted)."""
        if not self._unsettled:
            return
        wait_healthy(self.engine, self.profile, {cid: False for cid in self._unsettled}, self._unsettled,
                     deadline, self.options, self._pool.map, since=self._started_at)
        for service in sorted(set(self._unsettled.values())):
            self.progress(service, "healthy", "")
        checkpoint("stable")

    def _health_of(self, service: str) -> bool:
        hc = self.target.services[service][1]["healthcheck"]
        return bool(hc) and hc["test"] != ["NONE"]

    def _probe_for(self, service: str) -> Probe | None:
        obj = self.target.services[service][1]
        if not self.options.early_probes or not self._health_of(service):
            return None
        return Probe.of(obj["healthcheck"], obj["user"])

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

    # -- after commit: remove what the new generation does not use --------------------------------
    def _cleanup(self) -> None:
        by_id = {cid: s for s in self.plan.steps for cid in s.remove_after}
        self._parallel(self._remove_old, list(by_id.items()))
        if not self.target.services and by_id:
            # An empty generation deletes the deployment: its network goes too (volumes never do).
            try:
                self.engine.remove_network(network_name(self.profile))
            except GenError:
                pass      # still in use by something gen did not create: harmless to leave
            checkpoint("network removed")

    def _remove_old(self, cid: str, step) -> None:
        self.progress(step.service, "removing", cid[:12])
        grace = self.plan.grace_ms.get(cid)
        if grace != 0:
            self.engine.stop(cid, grace)    # let it shut down cleanly; with no grace, remove kills it at once
        self.engine.remove(cid)
        checkpoint(f"removed {cid[:12]}")

    # -- undo ------------------------------------------------------------------------------------
    def _undo_and_raise(self, failure: BaseException, commit: Commit) -> None:
        restored, problem = True, ""
        try:
            self._undo_each("removed", self.engine.remove, self.undo_log.created)
            self._remove_created_networks()
            self._undo_each("stopped again", lambda cid: self.engine.stop(cid, 0), self.undo_log.started)
            again = dict(self.undo_log.stopped)
            for cid, service in again.items():
                self.progress(service, "restoring", cid[:12])
            self._undo_each("restarted", self.engine.start, again)
            probes = dict(self._pool.map(self._restore_probe, list(again))) if self.options.early_probes else {}
            wait_healthy(self.engine, self.profile, {cid: None for cid in again}, again,
                         time.monotonic() + self.options.timeout_s, self.options, self._pool.map,
                         {cid: probe for cid, probe in probes.items() if probe})
            checkpoint("undo: old containers healthy again")
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

    def _remove_created_networks(self) -> None:
        """A network this activation created goes with it (a failed first switch leaves nothing behind)."""
        for name in self.undo_log.networks:
            try:
                self.engine.remove_network(name)
            except GenError as e:        # in use by something else meanwhile: harmless to leave
                self.progress("", "warning", f"network {name} was left behind ({e.reason})")
            checkpoint(f"undo: network {name} removed")

    def _undo_each(self, done: str, call: Callable[[str], object], cids) -> None:
        """One step of the undo on each container, in parallel; each container's step is a kill point."""
        def one(cid: str) -> None:
            call(cid)
            checkpoint(f"undo: {done} {cid[:12]}")
        self._parallel(one, [(cid,) for cid in cids])

    def _restore_probe(self, cid: str) -> tuple[str, Probe | None]:
        """The early probe of a restarted old container, from its own healthcheck. Best effort: without
        one, the restore waits for Docker's own check, which wait_healthy watches anyway."""
        try:
            return cid, Probe.of_container(self.engine.inspect(cid))
        except GenError:
            return cid, None

    def _parallel(self, fn, items: list[tuple]) -> None:
        """Run fn(*item) for every item on the pool; re-raise the first GenError after all finished."""
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
