"""Docker's event stream, read for the health gate (gen.engine.base.Watch): one daemon thread reads the
container events of one profile and wakes whoever waits. No `docker` import: gen.engine.docker hands
over the SDK's low-level client, whose `events()` returns a stream that another thread may close().

A hint, never a judge: the gate still lists the containers and judges them after every wake, and wakes
on its own timers too. So a stream that cannot be opened, breaks, or belongs to a transport whose
stream cannot be cancelled (ssh://) only makes the watch not `live`, and the gate polls as it did
before there were events.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Collection

from gen.model.naming import LABEL_PROFILE

# What changes a container's state or health as the gate judges it, and the end of a probe (exec_die:
# gen's early probes are execs; Docker's own healthchecks are execs too, so only the awaited ones wake).
EVENTS = ["start", "restart", "die", "kill", "stop", "oom", "destroy", "pause", "unpause", "health_status",
          "exec_die"]
JOIN_S = 0.5          # close(): how long to wait for the reader thread (it ends in microseconds when cancelled)
DONE_EXECS_KEPT = 256


def event_filters(profile: str) -> dict:
    return {"type": "container", "label": f"{LABEL_PROFILE}={profile}", "event": list(EVENTS)}


def cancellable(base_url: str) -> bool:
    """Can the SDK close() a stream under a blocked reader? Not over ssh:// (neither paramiko's channel nor
    the ssh client's pipes): such a reader would stay blocked until the next event."""
    return not base_url.startswith("http+docker://ssh")


class EventWatch:
    """The container events of one profile (implements gen.engine.base.Watch), read by one daemon thread.

    `live` turns True once the stream is open (the request answered: every event since the watch was
    made reaches wait()), and False for good when the stream ends or breaks, which also wakes the
    waiter so that it goes back to polling at once."""

    def __init__(self, api, profile: str, enabled: bool = True):
        self.live = False
        self._api = api
        # Since now: dockerd flushes the response's headers before it subscribes, and an event in between
        # comes from its log. Nothing older: the gate's first look, after this, sees what came before.
        # (A remote engine whose clock is behind ours may miss an event of that gap: the safety poll finds it.)
        since = time.time()
        self._open = lambda: api.events(since=since, filters=event_filters(profile), decode=True)
        self._woken = threading.Event()
        self._lock = threading.Lock()           # guards everything below, shared with the reader
        self._stream = None
        self._closed = False
        self._awaited: frozenset[str] = frozenset()     # probe (exec) ids the waiter waits for
        self._done_execs: deque[str] = deque(maxlen=DONE_EXECS_KEPT)
        self._thread = threading.Thread(target=self._read, name=f"gen-events-{profile}", daemon=True) \
            if enabled else None

    def __enter__(self) -> "EventWatch":
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait(self, timeout_s: float, probes: Collection[str] = ()) -> bool:
        """True as soon as a container of the profile changed (or one of `probes` ended) since the last
        call; False after timeout_s without one."""
        with self._lock:
            self._awaited = frozenset(probes)
            if self._awaited.intersection(self._done_execs):
                self._woken.clear()
                return True
        woken = self._woken.wait(max(timeout_s, 0.0))
        self._woken.clear()     # a later event sets it again; an earlier one, the caller's next list call sees
        return woken

    def close(self) -> None:
        """Cancel the stream and let the reader end. Never blocks for long: a reader still waiting for a
        hung dockerd to answer the request cannot be cancelled; it closes the stream itself when the
        answer comes (it is a daemon thread, and holds nothing else)."""
        with self._lock:
            self._closed, stream = True, self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:        # already closed by its end, or a transport that cannot: the reader ends anyway
                pass
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(JOIN_S)

    def _read(self) -> None:
        try:
            stream = self._open()
            with self._lock:
                if self._closed:
                    stream.close()
                    return
                self._stream, self.live = stream, True
            for event in stream:
                self._arrived(event)
        except Exception:            # cannot open, or broke: not live; the gate polls
            pass
        finally:
            self.live = False
            self._woken.set()

    def _arrived(self, event: dict) -> None:
        actor = event.get("Actor") or {}
        if event.get("Action") == "die":
            self._settled(actor.get("ID", ""))
        if event.get("Action") != "exec_die":
            self._woken.set()
            return
        exec_id = (actor.get("Attributes") or {}).get("execID", "")
        with self._lock:
            self._done_execs.append(exec_id)
            if exec_id in self._awaited:
                self._woken.set()

    def _settled(self, cid: str) -> None:
        """Wait until the container list shows the exit a "die" event announced. dockerd sends the event
        first, then tears down the container's network and mounts, then updates the view the list reads,
        all under the container's lock; an inspect takes that lock, so it returns once the list is right.
        Without this the gate, woken at once, would see the container still running, and sleep on."""
        try:
            self._api.inspect_container(cid)
        except Exception:            # gone already, or the engine failed: the gate's next look will tell
            pass
