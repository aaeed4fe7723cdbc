"""Fault injection: every step boundary of a real activation, recovery, rollback or gc is numbered as
it is reached.

GEN_FAULT_TRACE=file records the boundaries; GEN_FAULT_KILL_AT=k SIGKILLs the process at the k-th.
tests/faults.py kills gen at every boundary and checks that recovery converges. Like gen.errors it sits
below every package (gc in gen.state and the transaction in gen.deploy both have boundaries), so one
process numbers all its boundaries with one counter.
"""
from __future__ import annotations

import os
import signal
import threading

_fault_lock = threading.Lock()
_fault_count = 0


def checkpoint(label: str) -> None:
    """A step boundary (a no-op unless one of the two variables is set). The label says where it is."""
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
