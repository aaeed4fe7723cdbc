"""How an activation runs (timeouts, the stability window), how it reports progress, what it returns.

Kept apart from the transaction so that importing them (gen.api does) costs nothing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from gen.model.plan import Plan

Progress = Callable[[str, str, str], None]      # (service, phase, detail); service "" = profile-wide


@dataclass(frozen=True)
class Options:
    timeout_s: float = 60.0          # bound on waiting for health, per transaction
    stability_s: float = 1.0         # without a healthcheck: running this long without a restart
    poll_s: float = 0.05             # between list calls while an early probe runs, or without engine events
    safety_poll_s: float = 1.0       # between list calls while engine events wake the gate (see health.Gate)
    workers: int = 16
    early_probes: bool = True        # run healthchecks ourselves while Docker still says "starting" (see Probe)
    closure: bool | None = None      # archive the generation's images in the store (None: the profile's setting)


@dataclass(frozen=True)
class Result:
    profile: str
    generation: int | None
    manifest: str
    plan: "Plan | None"
    changed: bool                  # did anything on the engine or the pointer change
    message: str
    duration_s: float = 0.0
    warnings: tuple[str, ...] = ()  # bookkeeping that failed after the outcome was decided


def no_progress(service: str, phase: str, detail: str = "") -> None:
    pass
