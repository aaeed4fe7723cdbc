"""The commit of an activation, in two phases (Commit), and the flip that is its point of no return.

Everything before the flip may still be undone; the flip is the atomic rename of `current`; a flip
that happened is never undone, even when the call that made it then failed (an fsync of the
directory after the rename): the activation finishes forward instead and reports it.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable


@dataclass
class Commit:
    """What makes an activation count, in two phases.

    prepare(): everything that may still be undone (store writes, image pins, the generation record);
    flip(): the commit point (the atomic rename of `current`); returns what run() reports;
    flipped(): has the commit point moved? Asked when flip() raised: the rename may have happened
      before the error (an fsync of the directory after it failed), and a rename that happened is
      never undone;
    abandon(): take back what prepare() did that must not outlive a failed activation.
    """
    flip: Callable[[], object]
    prepare: Callable[[], None] = lambda: None
    flipped: Callable[[], bool] = lambda: False
    abandon: Callable[[], None] = lambda: None


def flip(commit: Commit) -> tuple[object, BaseException | None]:
    """(what flip returned, None), or (None, the error) when flip raised after the commit point moved."""
    try:
        return commit.flip(), None
    except BaseException as e:
        if commit.flipped():
            return None, e
        raise


@contextmanager
def interrupts_deferred():
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
