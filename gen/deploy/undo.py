"""The undo of an activation: what it did to the engine, reversed. Called for any failure before the flip.

    created containers removed (jobs included; anonymous and named volumes never)
    containers it started that were stopped before: stopped again
    networks it created: removed (best effort)
    renames reversed, newest first (gen.deploy.renames)
    old containers it stopped: started again, dependencies first (a container sharing another's
      network stack cannot start before it), then waited for until healthy
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from gen.deploy.health import Probe, wait_healthy
from gen.deploy.options import Options, Progress
from gen.deploy.renames import Renames
from gen.engine.base import Engine
from gen.errors import GenError
from gen.faults import checkpoint

Parallel = Callable[[Callable, list[tuple]], None]      # run fn(*item) for every item, re-raise the first error


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


@dataclass
class Undo:
    engine: Engine
    profile: str
    log: UndoLog
    renames: Renames
    level_of: dict[str, int | None]      # service -> its level in the target (None: not in it)
    options: Options
    parallel: Parallel
    pmap: Callable
    progress: Progress

    def run(self) -> None:
        """Restore what ran before; raises when that fails (the caller reports it not restored)."""
        self._each("removed", self.engine.remove, self.log.created)
        self._each("stopped again", lambda cid: self.engine.stop(cid, 0), self.log.started)
        self._remove_created_networks()
        self.renames.undo(set(self.log.created))
        again = dict(self.log.stopped)
        for cid, service in again.items():
            self.progress(service, "restoring", cid[:12])
        for level in sorted({self._rank(s) for s in again.values()}):
            self._each("restarted", self.engine.start, [cid for cid, s in again.items() if self._rank(s) == level])
        probes = dict(self.pmap(self._restore_probe, list(again))) if self.options.early_probes else {}
        wait_healthy(self.engine, self.profile, {cid: None for cid in again}, again,
                     time.monotonic() + self.options.timeout_s, self.options, self.pmap,
                     {cid: probe for cid, probe in probes.items() if probe})
        checkpoint("undo: old containers healthy again")

    def _rank(self, service: str) -> int:
        level = self.level_of.get(service)
        return -1 if level is None else level

    def _remove_created_networks(self) -> None:
        """A network this activation created goes with it (a failed first switch leaves nothing behind)."""
        for name in self.log.networks:
            try:
                self.engine.remove_network(name)
            except GenError as e:        # in use by something else meanwhile: harmless to leave
                self.progress("", "warning", f"network {name} was left behind ({e.reason})")
            checkpoint(f"undo: network {name} removed")

    def _each(self, done: str, call: Callable[[str], object], cids) -> None:
        """One step of the undo on each container, in parallel; each container's step is a kill point."""
        def one(cid: str) -> None:
            call(cid)
            checkpoint(f"undo: {done} {cid[:12]}")
        self.parallel(one, [(cid,) for cid in cids])

    def _restore_probe(self, cid: str) -> tuple[str, Probe | None]:
        """The early probe of a restarted old container, from its own healthcheck. Best effort: without
        one, the restore waits for Docker's own check, which wait_healthy watches anyway."""
        try:
            return cid, Probe.of_container(self.engine.inspect(cid))
        except GenError:
            return cid, None
