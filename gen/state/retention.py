"""gc's policy and its report: which generations a `--keep N` / `--older-than D` run keeps. Pure.

Either rule given keeps a generation; the current generation always survives; with neither rule
nothing is deleted. `--older-than D` keeps generations created at or after now - D and, as Nix
does, the newest generation created before the cutoff (the state the profile was in at the
cutoff, so a rollback target from before it remains).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from gen.errors import GenError
from gen.state.profile import Generation

_AGE_PART = re.compile(r"([0-9]+)([smhdw])")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# -- policy (pure) --------------------------------------------------------------------------------
def parse_age(text: str) -> int:
    """'30d', '12h', '90m', '1w', '45s', or a sum like '1d12h' -> seconds."""
    t = text.strip().lower()
    if not t or len(t) > 32 or _AGE_PART.sub("", t):
        raise GenError("--older-than", f"{text!r} is not a duration (examples: 30d, 12h, 90m, 1w, 1d12h)")
    return sum(int(n) * _AGE_UNITS[u] for n, u in _AGE_PART.findall(t))


def created_at(gen: Generation) -> float | None:
    """A record's creation time as a POSIX timestamp (None if it cannot be read)."""
    try:
        when = datetime.fromisoformat(gen.created.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def select(generations: list[Generation], current: int | None, keep: int | None,
           older_than_s: float | None, now: float) -> tuple[list[int], list[int]]:
    """(kept, deleted) generation numbers. Either rule given keeps a generation; current is always
    kept; with no rule nothing is deleted. A record whose time cannot be read is kept."""
    numbers = sorted(g.number for g in generations)
    if keep is None and older_than_s is None:
        return numbers, []
    kept = {current} if current is not None else set()
    if keep is not None:
        kept.update(numbers[max(0, len(numbers) - keep):] if keep else [])
    if older_than_s is not None:
        cutoff = now - older_than_s
        times = {g.number: created_at(g) for g in generations}
        old = [n for n in numbers if times[n] is not None and times[n] < cutoff]
        kept.update(n for n in numbers if n not in old)
        if old:
            kept.add(old[-1])           # Nix: the newest generation from before the cutoff stays
    return [n for n in numbers if n in kept], [n for n in numbers if n not in kept]


# -- the report -----------------------------------------------------------------------------------
@dataclass
class ProfileReport:
    profile: str
    current: int | None
    kept: list[int]
    deleted: list[int]

    def to_json(self) -> dict:
        return {"profile": self.profile, "current": self.current, "kept": self.kept, "deleted": self.deleted}


@dataclass
class GcReport:
    dry_run: bool
    profiles: list[ProfileReport] = field(default_factory=list)
    objects_deleted: int = 0
    bytes_freed: int = 0
    objects_live: int = 0               # reachable from a kept generation
    objects_recent: int = 0             # unreachable but written during (or just before) this run: kept
    pins_added: list[str] = field(default_factory=list)
    pins_released: list[str] = field(default_factory=list)
    images_dropped: list[str] = field(default_factory=list)   # dropped by the engine with their last tag
    archives_deleted: int = 0           # image archives of the closure (gen.state.archives) freed
    archive_bytes_freed: int = 0
    archives_live: int = 0              # archives of images that kept objects use
    archives_recent: int = 0            # unused but written during (or just before) this run: kept
    containers_removed: list[str] = field(default_factory=list)   # stopped, of no kept generation (gen.state.warm)
    warnings: list[str] = field(default_factory=list)

    @property
    def generations_deleted(self) -> int:
        return sum(len(p.deleted) for p in self.profiles)

    def to_json(self) -> dict:
        return {"dry_run": self.dry_run, "profiles": [p.to_json() for p in self.profiles],
                "generations_deleted": self.generations_deleted, "objects_deleted": self.objects_deleted,
                "bytes_freed": self.bytes_freed, "objects_live": self.objects_live,
                "objects_recent": self.objects_recent, "pins_added": self.pins_added,
                "pins_released": self.pins_released, "images_dropped": self.images_dropped,
                "archives_deleted": self.archives_deleted, "archive_bytes_freed": self.archive_bytes_freed,
                "archives_live": self.archives_live, "archives_recent": self.archives_recent,
                "containers_removed": self.containers_removed, "warnings": self.warnings}
