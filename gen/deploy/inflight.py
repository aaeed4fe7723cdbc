"""Engine calls that outlive a killed gen: Docker carries out a stop it was asked for even when the process
that asked is gone, as late as the container's stop grace. Recovery after a kill (gen.deploy.recovery)
must not decide what runs before such a stop has landed, or it keeps a container that stops a moment
later (drift). It waits a short while for any call (IN_FLIGHT_MAX_S, a start or a short stop); a stop
whose grace is longer is noted in the profile before it is asked (Profile.note_stopping), with the
latest time it can land, and recovery waits until then.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

IN_FLIGHT_MAX_S = 2.0           # recovery always waits this long (or the longest grace, if shorter)
IN_FLIGHT_MARGIN_S = 0.3        # the engine's time to reap a killed process after the grace
DOCKER_DEFAULT_GRACE_S = 10.0   # a stop without a grace: Docker's own default


def grace_s(grace_ms: int | None) -> float:
    """The longest a stop with this grace takes before Docker kills (whole seconds: Docker rounds up)."""
    return DOCKER_DEFAULT_GRACE_S if grace_ms is None else float(-(-grace_ms // 1000))


class NotedStops:
    """The engine, with each stop that may outlast recovery's own wait noted (`note(until)`) first."""

    def __init__(self, engine, note: Callable[[float], None]):
        self._engine, self._note = engine, note
        self._noted = 0.0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def stop(self, cid: str, grace_ms: int | None) -> None:
        if grace_s(grace_ms) > IN_FLIGHT_MAX_S:
            until = time.time() + grace_s(grace_ms) + IN_FLIGHT_MARGIN_S
            with self._lock:
                if until > self._noted:             # the stops of one batch: one note
                    self._noted = until + 1.0
                    try:
                        self._note(self._noted)
                    except OSError:                 # a note, not the transaction: the stop goes ahead
                        pass
        return self._engine.stop(cid, grace_ms)
