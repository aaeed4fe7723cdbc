"""Garbage collection: old generations (gen.state.retention), unreachable store objects, stale image
pins (gen.state.pins).

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
3. **Image pins** (gen.state.pins) of the chosen profiles follow the kept generations: gc pins every image
   a kept generation uses and releases the pins no kept generation of that profile uses.

Concurrency. gc takes the lock of every profile (sorted by name, then any profile created
meanwhile) for the whole collection, so no switch, rollback or recover records a generation while
gc decides what is reachable. `gen build` takes no lock, and `gen switch SPEC` builds before it
takes the lock, so two more rules keep their objects alive:
- **grace**: an unreachable object whose file was modified less than GRACE_S seconds before this
  gc run started (or later) is kept, so objects a concurrent build writes are never collected by
  the gc they race with (the margin absorbs coarse file-system clocks); the next gc decides;
- a switch re-writes its whole closure under the lock, just before it records the generation
  (gen.deploy.transaction `commit_switch`), so a build collected while the switch waited for its lock comes back.
An object that already existed (unreachable, old) when a concurrent build found it is not
re-dated by the store; such a build prints a hash whose object may be collected: `gen switch HASH`
then fails with "no such object" and `gen switch SPEC` rebuilds it.

Everything is decided before anything is deleted: an unreadable generation record or a corrupt
reachable object aborts gc with nothing changed. `--dry-run` reports the same numbers, takes no
lock and changes nothing (no generation, object or tag).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gen.engine.base import Engine
from gen.errors import GenError, ProfileError
from gen.state.pins import sync_pins
from gen.state.profile import Generation, Profile, list_profiles
from gen.state.retention import GcReport, ProfileReport, parse_age, select
from store import Store
from store.objects import HASH_RE

GRACE_S = 1.0


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


def collect(state_dir: Path, store: Store, engine: Callable[[], Engine], profile: str | None = None, *,
            all_profiles: bool = False, keep: int | None = None, older_than: str | None = None,
            dry_run: bool = False, lock_timeout: float = 30.0, now: float | None = None) -> GcReport:
    """Run gc (see the module's docstring). `engine` connects on demand: only pins need it."""
    if profile and all_profiles:
        raise GenError("gc", "give either -p NAME or --all-profiles, not both")
    if keep is not None and keep < 0:
        raise GenError("--keep", f"must be 0 or more, not {keep}")
    age = parse_age(older_than) if older_than is not None else None
    targets = _targets(state_dir, profile, all_profiles)
    started = time.time()
    now = started if now is None else now
    report = GcReport(dry_run)
    locks = []
    try:
        if not dry_run:
            _lock_all(state_dir, lock_timeout, locks)
        names = sorted({*list_profiles(state_dir), *targets})
        state = {name: _read(state_dir, name, name in targets, keep, age, now) for name in names}
        reachable, images = _reachable(store, state, report)
        report.profiles = [ProfileReport(name, s.current, s.kept, s.deleted)
                           for name, s in state.items() if name in targets]
        if not dry_run:
            for name in targets:
                for n in state[name].deleted:
                    state[name].prof.delete_generation(n)
        sync_pins(engine, state_dir, targets, images, all_profiles, report)
        _sweep(store, reachable, started - GRACE_S, report)
    finally:
        for lock in reversed(locks):
            lock.release()
    return report


def _targets(state_dir: Path, profile: str | None, all_profiles: bool) -> list[str]:
    if profile:
        prof = Profile(state_dir, profile)
        if not prof.exists():
            raise ProfileError(f"profile {profile}", "has no generations")
        return [profile]
    names = list_profiles(state_dir)
    if all_profiles or len(names) <= 1:
        return names
    raise ProfileError("profile", f"several exist ({', '.join(names)}); choose one with -p NAME "
                       "or collect them all with --all-profiles")


def _lock_all(state_dir: Path, timeout_s: float, locks: list) -> None:
    """Every profile's lock, in name order; then those of profiles created meanwhile, until none is new."""
    held: set[str] = set()
    while True:
        new = [n for n in list_profiles(state_dir) if n not in held]
        if not new:
            return
        for name in new:
            locks.append(Profile(state_dir, name).acquire(timeout_s))
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

