"""Garbage collection: old generations, unreachable store objects, stale image pins (via gen.pins).

    gen gc [-p NAME | --all-profiles] [--keep N] [--older-than 30d] [--dry-run] [--json]

1. **Generations** of the chosen profiles are deleted by two rules; a generation survives when
   either rule given keeps it, and the current generation always survives:
   - `--keep N`: the newest N generations (by number);
   - `--older-than D`: generations created at or after now - D, plus, as Nix does, the newest
     generation created before the cutoff (the state the profile was in at the cutoff, so a
     rollback target from before it remains).
   With neither option no generation is deleted; gc still collects the store.
2. **Store objects** that no kept generation of *any* profile reaches are deleted. The roots are
   every generation record (its manifest, and its `source` object if it names one) and the target
   of an interrupted activation (journal); from a root, every string inside an object that is a
   64-hex object name present in the store is followed (a manifest names its service objects).
   Following every such string over-approximates, so gc may keep an object, never lose one.
3. **Image pins** (gen.pins) of the chosen profiles follow the kept generations: gc pins every image
   a kept generation uses and releases the pins no kept generation of that profile uses.

Concurrency. gc takes the lock of every profile (sorted by name, then any profile created
meanwhile) for the whole collection, so no switch, rollback or recover records a generation while
gc decides what is reachable. `gen build` takes no lock, and `gen switch SPEC` builds before it
takes the lock, so two more rules keep their objects alive:
- **grace**: an unreachable object whose file was modified less than GRACE_S seconds before this
  gc run started (or later) is kept, so objects a concurrent build writes are never collected by
  the gc they race with (the margin absorbs coarse file-system clocks); the next gc decides;
- a switch re-writes its whole closure under the lock, just before it records the generation
  (gen.api `_commit_switch`), so a build collected while the switch waited for its lock comes back.
An object that already existed (unreachable, old) when a concurrent build found it is not
re-dated by the store; such a build prints a hash whose object may be collected: `gen switch HASH`
then fails with "no such object" and `gen switch SPEC` rebuilds it.

Everything is decided before anything is deleted: an unreadable generation record or a corrupt
reachable object aborts gc with nothing changed. `--dry-run` reports the same numbers, takes no
lock and changes nothing (no generation, object or tag).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from gen.errors import GenError, LockBusy, ProfileError
from gen.state.pins import sync_pins
from gen.state.profile import Generation, Profile, list_profiles
from store import Store
from store.errors import LockTimeout
from store.objects import HASH_RE

if TYPE_CHECKING:
    from gen.api import Gen

GRACE_S = 1.0
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
                "warnings": self.warnings}

    def render(self) -> str:
        would = "would delete" if self.dry_run else "deleted"
        rows = ["dry run: nothing was changed"] if self.dry_run else []
        for p in self.profiles:
            cur = f" (current {p.current})" if p.current is not None else ""
            done = f"{would} generation(s) {_numbers(p.deleted)}" if p.deleted else "no generation to delete"
            rows.append(f"profile {p.profile}: {done}; kept {_numbers(p.kept) or 'none'}{cur}")
        recent = (f"; {self.objects_recent} unreferenced object(s) newer than this run kept"
                  if self.objects_recent else "")
        rows.append(f"store: {would} {self.objects_deleted} object(s), {_size(self.bytes_freed)} "
                    f"{'would be ' if self.dry_run else ''}freed; {self.objects_live} live{recent}")
        if self.pins_added or self.pins_released:
            verb = ("would pin", "would release") if self.dry_run else ("pinned", "released")
            rows.append(f"images: {verb[0]} {len(self.pins_added)}, {verb[1]} {len(self.pins_released)}"
                        + "".join(f"\n  {'+' if r in self.pins_added else '-'} {r}"
                                  for r in [*self.pins_added, *self.pins_released]))
        if self.images_dropped:
            rows.append(f"images: the engine removed {len(self.images_dropped)} image(s) whose last tag was "
                        f"gen's pin: {', '.join(i[7:19] for i in self.images_dropped)}")
        rows.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(rows)


def _numbers(ns: list[int]) -> str:
    return ", ".join(map(str, ns))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB"


# -- collection -----------------------------------------------------------------------------------
@dataclass
class _Profile:
    prof: Profile
    current: int | None
    generations: list[Generation]
    records: dict[int, dict]            # the raw JSON of each record (for optional fields: `source`)
    journal: dict | None
    kept: list[int]
    deleted: list[int]


def collect(g: "Gen", profile: str | None = None, *, all_profiles: bool = False, keep: int | None = None,
            older_than: str | None = None, dry_run: bool = False, now: float | None = None) -> GcReport:
    if profile and all_profiles:
        raise GenError("gc", "give either -p NAME or --all-profiles, not both")
    if keep is not None and keep < 0:
        raise GenError("--keep", f"must be 0 or more, not {keep}")
    age = parse_age(older_than) if older_than is not None else None
    targets = _targets(g, profile, all_profiles)
    started = time.time()
    now = started if now is None else now
    report = GcReport(dry_run)
    locks = []
    try:
        if not dry_run:
            _lock_all(g, locks)
        names = sorted({*list_profiles(g.state_dir), *targets})
        state = {name: _read(g.state_dir, name, name in targets, keep, age, now) for name in names}
        reachable, images = _reachable(g.store, state, report)
        report.profiles = [ProfileReport(name, s.current, s.kept, s.deleted)
                           for name, s in state.items() if name in targets]
        if not dry_run:
            for name in targets:
                for n in state[name].deleted:
                    state[name].prof.delete_generation(n)
        sync_pins(g, targets, images, all_profiles, report)
        _sweep(g.store, reachable, started - GRACE_S, report)
    finally:
        for lock in reversed(locks):
            lock.release()
    return report


def _targets(g: "Gen", profile: str | None, all_profiles: bool) -> list[str]:
    if profile:
        prof = Profile(g.state_dir, profile)
        if not prof.exists():
            raise ProfileError(f"profile {profile}", "has no generations")
        return [profile]
    names = list_profiles(g.state_dir)
    if all_profiles or len(names) <= 1:
        return names
    raise ProfileError("profile", f"several exist ({', '.join(names)}); choose one with -p NAME "
                       "or collect them all with --all-profiles")


def _lock_all(g: "Gen", locks: list) -> None:
    """Every profile's lock, in name order; then those of profiles created meanwhile, until none is new."""
    held: set[str] = set()
    while True:
        new = [n for n in list_profiles(g.state_dir) if n not in held]
        if not new:
            return
        for name in new:
            lock = Profile(g.state_dir, name).lock()
            started = time.monotonic()
            try:
                lock.acquire(g.lock_timeout)
            except LockTimeout as e:
                raise LockBusy(name, e.holder_pid, round(time.monotonic() - started, 1)) from None
            locks.append(lock)
            held.add(name)


def _read(state_dir, name: str, target: bool, keep: int | None, age: int | None, now: float) -> _Profile:
    prof = Profile(state_dir, name)
    generations, records = [], {}
    for n in prof.numbers():
        path = prof.path / "generations" / f"{n}.json"
        try:
            records[n] = json.loads(path.read_bytes())
            generations.append(prof.get(n))
        except FileNotFoundError:
            continue                    # deleted since it was listed (only possible in a dry run)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ProfileError(f"profile {name}", f"generation record {path} is unreadable ({e}); "
                               "gc changed nothing") from None
    current = prof.current_number()
    if target:
        kept, deleted = select(generations, current, keep, age, now)
    else:
        kept, deleted = [g.number for g in generations], []
    return _Profile(prof, current, generations, records, prof.journal(), kept, deleted)


def _reachable(store: Store, state: dict[str, _Profile], report: GcReport) -> tuple[set[str], dict[str, dict]]:
    """Every object reachable from a root, and per profile: image ID -> kept generations using it."""
    roots: list[tuple[str, str]] = []                 # (hash, what names it)
    images: dict[str, dict[str, list[int]]] = {}
    for name, s in state.items():
        for n in s.kept:
            record = s.records[n]
            for key in ("manifest", "source"):
                if isinstance(record.get(key), str) and HASH_RE.fullmatch(record[key]):
                    roots.append((record[key], f"generation {n} of profile {name} ({key})"))
        to = (s.journal or {}).get("to")
        if isinstance(to, str) and HASH_RE.fullmatch(to):
            roots.append((to, f"the interrupted activation of profile {name}"))
    seen: set[str] = set()
    objects: dict[str, object] = {}
    stack = list(roots)
    while stack:
        h, why = stack.pop()
        if h in seen:
            continue
        seen.add(h)
        if not store.has(h):
            report.warnings.append(f"object {h[:12]} named by {why} is missing from the store")
            continue
        obj = store.get(h)          # verifies the hash: a corrupt object aborts gc before any deletion
        objects[h] = obj
        stack.extend((ref, f"object {h[:12]}") for ref in _hashes(obj) if ref not in seen)
    for name, s in state.items():
        per = images.setdefault(name, {})
        for n in s.kept:
            manifest = objects.get(s.records[n].get("manifest"))
            if not isinstance(manifest, dict):
                continue
            for h in (manifest.get("services") or {}).values():
                obj = objects.get(h)
                if isinstance(obj, dict) and isinstance(obj.get("image_id"), str):
                    per.setdefault(obj["image_id"], []).append(n)
    return {h for h in seen if h in objects}, images


def _hashes(value: object):
    if isinstance(value, str):
        if HASH_RE.fullmatch(value):
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _hashes(k)
            yield from _hashes(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _hashes(v)


def _sweep(store: Store, reachable: set[str], grace_until: float, report: GcReport) -> None:
    for h in store.iter_hashes():
        if h in reachable:
            report.objects_live += 1
            continue
        try:
            st = store.path_of(h).stat()
        except FileNotFoundError:
            continue                    # removed meanwhile (another gc)
        if st.st_mtime >= grace_until:
            report.objects_recent += 1
            continue
        if not report.dry_run:
            store.delete(h)
        report.objects_deleted += 1
        report.bytes_freed += st.st_size

