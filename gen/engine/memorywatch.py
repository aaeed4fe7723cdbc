"""MemoryEngine's watch (gen.engine.base.Watch): the health gate's wake-up, in memory.

Nothing in a MemoryEngine changes by itself, only through calls (the gate's own list call plays out
what a fresh container was scripted to do), so the watch compares what the profile's containers look
like now with what they looked like at its last wake, every TICK_S: as exact as an event stream, and
live from the start, so pure tests run the gate's event-driven path (its timers included).
"""
from __future__ import annotations

import time
from collections.abc import Collection

from gen.model.naming import LABEL_PROFILE

TICK_S = 0.001


class MemoryWatch:
    live = True

    def __init__(self, engine, profile: str):
        self.engine, self.profile = engine, profile
        self._last = self._look()

    def __enter__(self) -> "MemoryWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait(self, timeout_s: float, probes: Collection[str] = ()) -> bool:
        """True once the profile's containers differ from the last wake; False after timeout_s. A memory
        probe's result is known when it starts, so `probes` never needs waiting for."""
        end = time.monotonic() + timeout_s
        while (now := self._look()) == self._last:
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, TICK_S))
        self._last = now
        return True

    def close(self) -> None:
        pass

    def _look(self) -> tuple:
        return tuple((c.id, c.state, c.health, c.restart_count) for c in list(self.engine.containers.values())
                     if c.labels.get(LABEL_PROFILE) == self.profile)


class Watching:
    """The watch() of MemoryEngine (a mixin, so that gen.engine.memory stays within its size)."""

    def watch(self, profile: str) -> MemoryWatch:
        return MemoryWatch(self, profile)
