"""Names a container must take (gen.model.containers.Claim): a container_name, or its own name while
a container of the same hash holds it. A container never runs old and new under one name: the holder
is stopped first (the planner says so), renamed aside ("<name>-gen-old-<its id>"), then the claimant
takes the name and starts. Every rename is logged, so the undo reverses them, newest first, after the
containers this activation created are gone (which frees the names they took). A kill anywhere in
between is repaired by the planner, which sees a container under the wrong name as needing a claim.
"""
from __future__ import annotations

import threading

from gen.engine.base import Engine
from gen.errors import GenError, NotOwned
from gen.faults import checkpoint
from gen.model.containers import Claim
from gen.model.naming import aside_name


class ContainerNameTaken(NotOwned):
    """A container_name is held by a container that is not this profile's: refused before anything
    running is touched (exit 1), never taken over."""

    def __init__(self, name: str, profile: str, detail: str = ""):
        GenError.__init__(self, f"container {name}", f"the name is in use by a container that is not profile "
                          f"{profile!r}'s (made by hand, by Compose, or by another profile); remove or rename it, "
                          f"or change container_name{detail}")
        self.kind, self.name, self.owner = "container", name, None


def name_in_use(error: GenError) -> bool:
    """Docker's (and the memory engine's) 409 for a create or rename to a name another container holds."""
    return "is already in use" in error.reason


class Renames:
    """The renames of one activation, for its undo."""

    def __init__(self, engine: Engine, profile: str):
        self.engine = engine
        self.profile = profile
        self.done: list[tuple[str, str]] = []        # (container id, the name it had), in order
        self._lock = threading.Lock()

    def claim(self, claim: Claim, claimant_id: str) -> None:
        """Move the holder aside (it was stopped before), then give the claimant the name."""
        if claim.holder:
            self._rename(claim.holder, claim.name, aside_name(claim.name, claim.holder))
        try:
            self._rename(claimant_id, claim.was, claim.name)
        except GenError as e:
            if claim.holder or not name_in_use(e):
                raise
            raise ContainerNameTaken(claim.name, self.profile) from None

    def _rename(self, cid: str, was: str, name: str) -> None:
        self.engine.rename(cid, name)
        with self._lock:
            self.done.append((cid, was))
        checkpoint(f"renamed {cid[:12]}")

    def undo(self, removed: set[str]) -> None:
        """Every rename reversed, newest first; containers already removed are skipped."""
        for cid, was in reversed(self.done):
            if cid not in removed:
                self.engine.rename(cid, was)
                checkpoint(f"undo: renamed back {cid[:12]}")
