"""Activation: execute a Plan as one bounded transaction.

    prepare (images, network, volumes, create containers)  -- nothing running is touched yet
    per dependency level: stop what must stop first, start the new, wait for health
    commit (the caller flips `current`), then remove the old containers

Any failure before commit undoes everything this transaction did, in reverse: created containers
are removed, stopped ones started again (and checked), started ones stopped again. Named volumes are
never removed. A crash at any point is repaired by converging on `current` with the same code
(see gen.api.recover), because every container is labelled and named by its content hash.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from gen.compile import Compiled
from gen.errors import ActivationFailed, GenError, Interrupted
from gen.naming import network_name, volume_name
from gen.plan import Plan
from store.errors import StoreError

Progress = Callable[[str, str, str], None]      # (service, phase, detail)


@dataclass(frozen=True)
class Options:
    timeout_s: float = 60.0          # bound on waiting for health, per transaction
    stability_s: float = 1.0         # without a healthcheck: running this long without a restart
    poll_s: float = 0.05           # one engine list call per poll
    workers: int = 16
    early_probes: bool = True      # run healthchecks ourselves while Docker still says "starting" (see Probe)


def _no_progress(service: str, phase: str, detail: str = "") -> None:
    pass


# -- fault injection: every step boundary of a real activation is numbered as it is reached -----
_fault_lock = threading.Lock()
_fault_count = 0


def checkpoint(label: str) -> None:
    """A step boundary. GEN_FAULT_TRACE=file records them; GEN_FAULT_KILL_AT=k SIGKILLs us at the k-th."""
    global _fault_count
    trace, kill_at = os.environ.get("GEN_FAULT_TRACE"), os.environ.get("GEN_FAULT_KILL_AT")
    if not trace and not kill_at:
        return
    with _fault_lock:
        _fault_count += 1
        if trace:
            with open(trace, "a") as f:
                f.write(f"{_fault_count} {label}\n")
        if kill_at and int(kill_at) == _fault_count:
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class UndoLog:
    created: list[str] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)     # (container id, service)
    started: list[str] = field(default_factory=list)                 # previously stopped, started by us
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, item) -> None:
        with self._lock:
            getattr(self, kind).append(item)


class Activation:
    def __init__(self, engine, target: Compiled, plan: Plan, options: Options = Options(),
                 progress: Progress = _no_progress):
        self.engine = engine
        self.target = target
        self.plan = plan
        self.options = options
        self.progress = progress
        self.profile = plan.profile
        self.undo_log = UndoLog()
        self._pool = ThreadPoolExecutor(max_workers=options.workers)
        self._new_ids: dict[str, str] = {}       # container name -> id, for containers we created
        self._inflight: list = []                # futures of the last parallel batch

    def run(self, commit: Callable[[], None]) -> None:
        """Prepare, start, gate on health, commit, clean up. Raises ActivationFailed after undoing."""
        deadline = time.monotonic() + self.options.timeout_s
        try:
            try:
                self._prepare()
                for level in self.plan.by_level():
                    self._start_level(level, deadline)
                with _interrupts_deferred():
                    commit()     # last and atomic: once the pointer moved, nothing here can fail any more
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM before the commit: undo, as for any other failure. Let the engine
                # calls already in flight finish first, so that the undo log is complete.
                wait_futures(self._inflight)
                self._undo_and_raise(GenError("activation", "interrupted by a signal before the commit"))
            except (GenError, StoreError) as failure:
                self._undo_and_raise(failure)
            checkpoint("committed")
            try:
                self._cleanup()
            except GenError as e:
                raise Interrupted("cleanup", f"the new generation is committed and running, but removing the old "
                                  f"containers failed ({e}); run `gen recover`") from None
        finally:
            self._pool.shutdown(wait=True)

    # -- prepare: everything that can fail before anything running is touched ----------------------
    def _prepare(self) -> None:
        new = [(s, c) for s in self.plan.steps for c in s.create]
        for image in sorted({self.target.services[s.service][1]["image_id"] for s, _ in new}):
            self.engine.image_id(image, f"image {image[:19]}")
        if new:
            self.engine.ensure_network(network_name(self.profile), {"gen.profile": self.profile})
            checkpoint("network")
        for vol in self.target.manifest["volumes"]:
            self.engine.ensure_volume(volume_name(self.profile, vol), {"gen.profile": self.profile})
            checkpoint(f"volume {vol}")
        self._parallel(self._create, new)

    def _create(self, step, c) -> None:
        h, obj = self.target.services[step.service]
        self.progress(step.service, "creating", c.name)
        volumes = {v: volume_name(self.profile, v) for v in self.target.manifest["volumes"]}
        cid = self.engine.create(self.profile, step.service, obj, h, self.target.manifest_hash, c.replica,
                                 c.name, network_name(self.profile), volumes)
        self.undo_log.add("created", cid)
        self._new_ids[c.name] = cid
        checkpoint(f"created {c.name}")

    # -- start, per dependency level -------------------------------------------------------------
    def _start_level(self, steps, deadline: float) -> None:
        self._parallel(self._stop_old, [(s, cid) for s in steps for cid in s.stop_before])
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
        wait_healthy(self.engine, self.profile, {cid: self._health_of(svc) for cid, svc in started.items()},
                     started, deadline, self.options, self._pool.map, probes)
        for s in steps:
            self.progress(s.service, "healthy", "")
        checkpoint("level healthy")

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

    def _start(self, service: str, cid: str) -> None:
        self.progress(service, "starting", cid[:12])
        if cid not in self.undo_log.created:
            self.undo_log.add("started", cid)
        self.engine.start(cid)
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
    def _undo_and_raise(self, failure: GenError | StoreError) -> None:
        restored, problem = True, ""
        try:
            self._parallel(lambda cid: self.engine.remove(cid), [(cid,) for cid in self.undo_log.created])
            self._parallel(lambda cid: self.engine.stop(cid, 0), [(cid,) for cid in self.undo_log.started])
            again = dict(self.undo_log.stopped)
            for cid, service in again.items():
                self.progress(service, "restoring", cid[:12])
            self._parallel(lambda cid: self.engine.start(cid), [(cid,) for cid in again])
            probes = {}
            if self.options.early_probes:
                infos = self._pool.map(self.engine.inspect, list(again))
                probes = {cid: probe for cid, info in zip(again, infos) if (probe := Probe.of_container(info))}
            wait_healthy(self.engine, self.profile, {cid: None for cid in again}, again,
                         time.monotonic() + self.options.timeout_s, self.options, self._pool.map, probes)
        except GenError as e:
            restored, problem = False, str(e)
        failed = ActivationFailed.wrap(failure)
        if not restored:
            failed.mark_not_restored(problem)
        raise failed from None

    def _parallel(self, fn, items: list[tuple]) -> None:
        """Run fn(*item) for every item on the pool; re-raise the first GenError after all finished."""
        futures = [self._pool.submit(fn, *item) for item in items]
        self._inflight = futures
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]


@contextmanager
def _interrupts_deferred():
    """SIGINT or SIGTERM during the commit is ignored: the pointer flip is never cut in two, and a
    generation that committed is kept (the removal of old containers then completes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_healthy(engine, profile: str, has_check: dict[str, bool | None], services: dict[str, str],
                 deadline: float, options: Options, pmap=map, probes: dict[str, "Probe"] | None = None) -> None:
    """Block until every container is healthy (its healthcheck passes, or, without one, it has been
    running for the stability window without a restart). Fails fast on exit, crash loop or unhealthy.

    has_check[cid] None means "ask the engine" (used when restoring containers of an older generation).
    One engine list call per poll, whatever the number of containers; pmap runs the per-container
    restart checks and early probes (a thread pool's map runs them concurrently).
    """
    probes = dict(probes or {})
    running_since: dict[str, float] = {}
    pending = set(has_check)
    while pending:
        now = time.monotonic()
        seen = {c.id: c for c in engine.observe(profile)}
        ripe: list[str] = []
        for cid in sorted(pending):
            c = seen.get(cid)
            if c is None:
                _fail(engine, services[cid], cid, "disappeared from the engine", None)
            if c.state in ("exited", "dead"):
                _fail(engine, services[cid], cid, f"exited with code {c.exit_code}", c)
            if c.state == "restarting":
                _fail(engine, services[cid], cid, "is crash-looping (restarting)", c)
            if c.health == "unhealthy":
                _fail(engine, services[cid], cid, "healthcheck failed (unhealthy)", c)
            checked = has_check[cid] if has_check[cid] is not None else c.health is not None
            if checked:
                if c.health == "healthy":
                    pending.discard(cid)
                    probes.pop(cid, None)
            elif c.state == "running" and now - running_since.setdefault(cid, now) >= options.stability_s:
                ripe.append(cid)
        # The list call cannot see a quick restart; the restart count can. Ask for all ripe ones at once.
        for cid, info in zip(ripe, pmap(engine.inspect, ripe)):
            if info["RestartCount"] or not info["State"]["Running"]:
                _fail(engine, services[cid], cid,
                      f"restarted {info['RestartCount']} time(s) during the stability window", seen[cid])
            pending.discard(cid)
        probing = [cid for cid in sorted(pending & probes.keys()) if seen[cid].state == "running"]
        for cid, passed in zip(probing, pmap(lambda cid: probes[cid].advance(engine, cid, now), probing)):
            if passed:
                pending.discard(cid)
        if not pending:
            return
        if now > deadline:
            cid = sorted(pending)[0]
            c = seen.get(cid)
            state = (c.health or c.state) if c else "missing"
            _fail(engine, services[cid], cid, f"not healthy within the timeout (state: {state})", c)
        time.sleep(options.poll_s)


PROBE_FIRST_DELAY_S = 0.1      # between early probes: 0.1 s, doubling up to PROBE_MAX_DELAY_S
PROBE_MAX_DELAY_S = 1.0


@dataclass
class Probe:
    """gen's own run of a container's healthcheck while Docker still reports "starting".

    Docker 20.10 runs the first check one whole `interval` after the start (2 s by default, often 30 s
    in real specs), so a service that is ready in 100 ms would hold the switch for the whole interval.
    Docker 25 added `start_interval` for this; gen does the same on any engine: it runs the same test
    (as the container's user, with its environment) right after the start, then 0.1 s, 0.2 s, ... up to
    1 s apart, one at a time. A success within the check's timeout counts exactly like Docker's own
    first success. A failure counts for nothing: Docker's checks, with their retries, remain the only
    judge of "unhealthy", so the gate is never weaker than Docker's, only earlier.
    """
    argv: list[str]
    user: str
    timeout_s: float
    exec_id: str | None = None
    started: float = 0.0
    next_at: float = 0.0
    delay_s: float = PROBE_FIRST_DELAY_S

    @classmethod
    def of(cls, healthcheck: dict, user: str) -> "Probe":
        kind, *rest = healthcheck["test"]
        argv = ["/bin/sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest
        return cls(argv, user or "", healthcheck["timeout_ms"] / 1000)

    @classmethod
    def of_container(cls, info: dict) -> "Probe | None":
        """From an inspected container (restoring an older generation's): its healthcheck, if any."""
        hc = (info.get("Config") or {}).get("Healthcheck") or {}
        test = hc.get("Test") or []
        if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
            return None
        return cls.of({"test": test, "timeout_ms": (hc.get("Timeout") or 30_000_000_000) // 1_000_000},
                      info["Config"].get("User") or "")

    def advance(self, engine, cid: str, now: float) -> bool:
        """One step, once per poll: collect the probe in flight, or start the next when due. True once
        a probe passed. Engine errors (the container just stopped, say) are a failed probe: the
        observation of the container itself reports what happened."""
        try:
            if self.exec_id is None:
                if now < self.next_at:
                    return False
                self.exec_id, self.started = engine.probe_start(cid, self.argv, self.user), now
            code = engine.probe_result(self.exec_id)     # a quick check is often done already
        except GenError:
            code = -1
        if code is None and now - self.started <= self.timeout_s:
            return False                                  # still running, within its timeout
        if code == 0:
            return True
        self.exec_id, self.next_at = None, now + self.delay_s
        self.delay_s = min(self.delay_s * 2, PROBE_MAX_DELAY_S)
        return False


def _fail(engine, service: str, cid: str, reason: str, c) -> None:
    detail = ""
    try:
        info = engine.inspect(cid)
        health_log = (info["State"].get("Health") or {}).get("Log") or []
        if health_log and "healthcheck" in reason:
            last = health_log[-1]
            output = " ".join((last.get("Output") or "").split())[:200]
            detail = f"; last check exited {last.get('ExitCode')}" + (f": {output}" if output else "")
        logs = engine.logs(cid, tail=10).strip()
    except GenError:
        logs = ""
    raise ActivationFailed(f"service {service}", f"container {cid[:12]} {reason}{detail}", service=service,
                           state=c.state if c else "missing", exit_status=c.exit_code if c else None, logs=logs)
