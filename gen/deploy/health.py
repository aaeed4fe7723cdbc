"""The health gate: wait until new containers are healthy, or fail naming the first that is not.

Healthy means: Docker's healthcheck reports `healthy` (or one of gen's early probes of that same
check passed, see Probe), or, for a container without a healthcheck, running for the stability
window without a restart. Exited, crash-looping or `unhealthy` fails at once with the container's
exit code, last healthcheck output and last log lines.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from gen.deploy.options import Options
from gen.engine.base import ContainerDetails, Engine
from gen.errors import ActivationFailed, GenError
from gen.model.plan import Observed


def wait_healthy(engine: Engine, profile: str, has_check: dict[str, bool | None], services: dict[str, str],
                 deadline: float, options: Options, pmap=map, probes: dict[str, "Probe"] | None = None,
                 settle: bool = True, since: dict[str, float] | None = None) -> None:
    """Block until every container is healthy (its healthcheck passes, or, without one, it has been
    running for the stability window without a restart). Fails fast on exit, crash loop or unhealthy.

    has_check[cid] None means "ask the engine" (used when restoring containers of an older generation).
    settle=False: a container without a healthcheck only has to be running (no window, no restart
    check): the caller settles it later. since[cid] is when the container started (monotonic), so a
    window that began earlier is not waited again.
    One engine list call per look (of the pending containers alone), whatever their number; pmap runs the per-container
    restart checks and early probes (a thread pool's map runs them concurrently). Between looks the
    gate sleeps on the engine's watch (Engine.watch: Docker's events) until a container changes, or
    until the next moment that matters without an event (see Gate.next_look).
    """
    gate = Gate(engine, profile, has_check, services, options, pmap, dict(probes or {}), settle, dict(since or {}))
    if not gate.pending:
        return
    with engine.watch(profile) as watch:        # subscribed before the first look: nothing is missed
        while True:
            live = watch.live                   # read before the look (see Watch.live)
            now = time.monotonic()
            gate.look(now)
            if not gate.pending:
                return
            if now > deadline:
                gate.time_out()
            watch.wait(gate.next_look(now, deadline, live) - time.monotonic(), gate.probes_in_flight())


@dataclass
class Gate:
    """One wait_healthy: the containers still pending, judged at each look from one list call."""
    engine: Engine
    profile: str
    has_check: dict[str, bool | None]
    services: dict[str, str]
    options: Options
    pmap: Callable
    probes: dict[str, "Probe"]
    settle: bool
    running_since: dict[str, float]
    pending: set[str] = field(init=False)
    seen: dict[str, Observed] = field(default_factory=dict)
    # No new probe before this: PROBE_STARTS_PER_POLL per poll_s at most, however often events wake the gate.
    probe_starts_at: float = 0.0

    def __post_init__(self) -> None:
        self.pending = set(self.has_check)

    def look(self, now: float) -> None:
        """List the containers; fail on the first that failed, drop from pending those now healthy."""
        engine, services, probes, pending = self.engine, self.services, self.probes, self.pending
        # Only what it waits for: the engine narrows the list by id before it looks at each container.
        seen = self.seen = {c.id: c for c in engine.observe(self.profile, ids=sorted(pending))}
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
            if self.checked(cid):
                if c.health == "healthy":
                    pending.discard(cid)
            elif c.state == "running" and not self.settle:
                pending.discard(cid)
            elif c.state == "running" and now - self.running_since.setdefault(cid, now) >= self.options.stability_s:
                ripe.append(cid)
        # The list call cannot see a quick restart; the restart count can. Ask for all ripe ones at once.
        for cid, info in zip(ripe, self.pmap(engine.inspect, ripe)):
            if info.restarting or not info.running:
                _fail(engine, services[cid], cid, f"exited with code {info.exit_code}"
                      + (f" after {info.restart_count} restart(s)" if info.restart_count else ""), seen[cid])
            if info.restart_count:
                _fail(engine, services[cid], cid,
                      f"restarted {info.restart_count} time(s) during the stability window", seen[cid])
            pending.discard(cid)
        probing = probes_to_advance(probes, self.probing(), now)
        if now < self.probe_starts_at:
            probing = [cid for cid in probing if probes[cid].exec_id is not None]     # collect, start none
        elif any(probes[cid].exec_id is None for cid in probing):
            self.probe_starts_at = now + self.options.poll_s
        for cid, passed in zip(probing, self.pmap(lambda cid: probes[cid].advance(engine, cid, now), probing)):
            if passed:
                pending.discard(cid)

    def checked(self, cid: str) -> bool:
        """Is the container gated on its healthcheck (rather than on the stability window)?"""
        c = self.seen[cid]
        return self.has_check[cid] if self.has_check[cid] is not None else c.health is not None

    def probing(self) -> list[str]:
        """The pending containers whose early probe may run: those running."""
        return [cid for cid in sorted(self.pending & self.probes.keys()) if self.seen[cid].state == "running"]

    def probes_in_flight(self) -> list[str]:
        return [self.probes[cid].exec_id for cid in self.probing() if self.probes[cid].exec_id is not None]

    def next_look(self, now: float, deadline: float, live: bool) -> float:
        """When to look again if no event comes first: the deadline; a stability window that ripens; an
        early probe that is due, or in flight (collected every poll_s: the watch wakes the gate when it
        ends, on engines that can tell); and the safety-net poll: an event stream is a hint, so a
        missed one costs safety_poll_s, never a hang. A watch that is not live (yet, or any more)
        wakes for nothing, so the gate then polls every poll_s, as it did before there were events."""
        soon = now + self.options.poll_s
        at = [deadline, now + self.options.safety_poll_s if live else soon]
        for cid in self.probing():
            probe, due = self.probes[cid], max(self.probes[cid].next_at, self.probe_starts_at)
            at.append(soon if probe.exec_id is not None or due <= now else due)
        if self.settle:
            at += [self.running_since[cid] + self.options.stability_s for cid in self.pending
                   if cid in self.running_since and self.seen[cid].state == "running" and not self.checked(cid)]
        return max(min(at), now + MIN_SLEEP_S)

    def time_out(self) -> None:
        cid = sorted(self.pending)[0]
        c = self.seen.get(cid)
        state = (c.health or c.state) if c else "missing"
        _fail(self.engine, self.services[cid], cid, f"not healthy within the timeout (state: {state})", c)


def has_check(obj: dict) -> bool:
    """Does the service's container have a healthcheck to gate on?"""
    hc = obj["healthcheck"]
    return bool(hc) and hc["test"] != ["NONE"]


def waited_healthy(services: dict[str, tuple[str, dict]]) -> set[str]:
    """Services some service waits on until healthy (depends_on condition "healthy"); without one, a
    dependent only waits for its dependency to run (Compose's service_started)."""
    return {dep for _, obj in services.values() for dep, condition in obj.get("conditions", {}).items()
            if condition == "healthy"}


def probe_for(obj: dict, options: Options) -> "Probe | None":
    """gen's early probe of a service's healthcheck, when it has one and early probes are on."""
    if not options.early_probes or not has_check(obj):
        return None
    return Probe.of(obj["healthcheck"], obj["user"])


MIN_SLEEP_S = 0.001            # between two looks, whatever the timers say: never a busy loop
PROBE_FIRST_DELAY_S = 0.1      # between early probes: 0.1 s, doubling up to PROBE_MAX_DELAY_S
PROBE_MAX_DELAY_S = 1.0
PROBE_STARTS_PER_POLL = 2      # at most 40 new probes a second, however many containers wait


def probes_to_advance(probes: dict[str, "Probe"], running: list[str], now: float) -> list[str]:
    """Every probe in flight (to collect it), plus the PROBE_STARTS_PER_POLL most overdue ones.
    Each probe is an exec in a container, which costs the engine about as much as a container's own
    healthcheck: 50 services slow to get ready must not turn into 50 execs a second."""
    in_flight = [cid for cid in running if probes[cid].exec_id is not None]
    due = sorted((probes[cid].next_at, cid) for cid in running
                 if probes[cid].exec_id is None and probes[cid].next_at <= now)
    return in_flight + [cid for _, cid in due[:PROBE_STARTS_PER_POLL]]


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
    def of_container(cls, info: ContainerDetails) -> "Probe | None":
        """From an inspected container (restoring an older generation's): its healthcheck, if any."""
        test = list(info.health_test)
        if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
            return None
        return cls.of({"test": test, "timeout_ms": info.health_timeout_ms}, info.user)

    def advance(self, engine: Engine, cid: str, now: float) -> bool:
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
        if code is None:
            # Past its timeout. It cannot be killed through the API, so start no more: hung probes
            # would pile up in the container. Docker's own checks (which do kill) take over.
            self.exec_id, self.next_at = None, float("inf")
            return False
        self.exec_id, self.next_at = None, now + self.delay_s
        self.delay_s = min(self.delay_s * 2, PROBE_MAX_DELAY_S)
        return False


def _fail(engine: Engine, service: str, cid: str, reason: str, c) -> None:
    detail = ""
    try:
        info = engine.inspect(cid)
        if info.last_check_exit is not None and "healthcheck" in reason:
            output = " ".join(info.last_check_output.split())[:200]
            detail = f"; last check exited {info.last_check_exit}" + (f": {output}" if output else "")
        logs = engine.logs(cid, tail=10).strip()
    except GenError:
        logs = ""
    raise ActivationFailed(f"service {service}", f"container {cid[:12]} {reason}{detail}", service=service,
                           state=c.state if c else "missing", exit_status=c.exit_code if c else None, logs=logs)
