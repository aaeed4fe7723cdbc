"""Fault injection: every step boundary of a real activation is numbered as it is reached.

GEN_FAULT_TRACE=file records the boundaries; GEN_FAULT_KILL_AT=k SIGKILLs the process at the k-th.
tests/faults.py kills gen at every boundary and checks that recovery converges. The counter lives in
gen.state.faults (gc, in gen.state, has boundaries too); this module re-exports it for gen.deploy.
"""
from __future__ import annotations

from gen.state.faults import checkpoint

__all__ = ["checkpoint"]
