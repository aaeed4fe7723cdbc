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
2. **Store objects** that no root reaches are deleted. The roots (gen.state.roots) are every kept
   generation record of *any* profile (its manifest, and its `source` object if it names one), the
   target of an interrupted activation (journal), each profile's last build (its build root) and
   last import (its import root, with the spec source it carried).
   From a root only declared references are followed: a manifest names its service objects. A
   missing object a root needs is reported as a warning; a damaged manifest (its references unknown)
   aborts gc with nothing changed; a damaged service or source object is kept and reported (and the
   pins of its profile are left as they are, since its image is unknown).
3. **Image archives** of the closure (gen.state.archives): the archive of an image that a kept
   object uses (a service object reached from any root above, of any profile) is kept; the others are
   freed, index entry and blob, under the same lock and grace rules as objects. While a reachable
   object is damaged (its image unknown) no archive is freed.
4. **Kept containers** (gen.state.warm) of the chosen profiles: stopped containers that neither the
   current generation nor its warm generations (among the kept ones) use are removed, so the warm
   containers of a deleted generation go with it. Running containers and volumes are never touched.
5. **Image pins** (gen.state.pins) of the chosen profiles follow the kept generations: gc pins every image
   a kept generation uses and releases the pins no kept generation of that profile uses.

Concurrency (Nix's GC lock). gc takes the lock of every profile (sorted by name, then any profile
created meanwhile), so no switch, rollback or recover records a generation while gc decides; then
the store's gc lock, exclusive, so no writer is between its first object write and its root (a
build holds it shared until its build root is written; see gen.state.roots). gc reads every root
only once it holds both, and releases the store's lock once the sweep is done (writers wait no
longer than that), the profiles' locks once the pins follow. As a margin for writers that take no
lock (an older gen during an upgrade), an unreachable object whose file was modified less than
GRACE_S seconds before this gc run started (or later) is kept; the next gc decides.

Everything is decided before anything is deleted: an unreadable generation record or build root, or a
damaged reachable manifest, aborts gc with nothing changed. `--dry-run` reports the same numbers,
takes no lock and changes nothing (no generation, object or tag).
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gen.engine.base import Engine
from gen.errors import GenError, ProfileError
from gen.faults import checkpoint
from gen.state.archives import sweep as sweep_archives
from gen.state.pins import sync_pins
from gen.state.profile import Generation, Profile, list_profiles
from gen.state.retention import GcReport, ProfileReport, parse_age, select
from gen.state.roots import build_roots, import_roots, record_references, references
from gen.state.target import read_target
from gen.state.warm import remove_cold
from store import BlobStore, Store
from store.errors import CorruptObject, LockTimeout, MissingObject
from store.fsutil import fsync_dir
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


@dataclass
class _Reach:
    live: set[str]                      # present objects a root reaches: never deleted
    images: dict[str, dict]             # profile -> image ID -> kept generations using it
    unsure: set[str]                    # profiles with a damaged service object: their pins stay as they are
    used: set[str] | None               # image IDs of every reachable service object (None: one is damaged)


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
    with contextlib.ExitStack() as profiles_locked:
        if not dry_run:
            _lock_all(state_dir, lock_timeout, profiles_locked)
        with contextlib.ExitStack() as store_locked:
            if not dry_run:
                store_locked.callback(_lock_store(store, lock_timeout).release)
            names = sorted({*list_profiles(state_dir), *targets})
            state = {name: _read(state_dir, name, name in targets, keep, age, now) for name in names}
            reach = _reachable(store, state, _extra_roots(state_dir), report)
            report.profiles = [ProfileReport(name, s.current, s.kept, s.deleted)
                               for name, s in state.items() if name in targets]
            if not dry_run:
                _delete_generations(state, targets)
                checkpoint("gc: generations deleted, objects not yet swept")
            _sweep(store, reach.live, started - GRACE_S, report)
            checkpoint("gc: objects swept")
            sweep_archives(state_dir, BlobStore(store.root), reach.used, started - GRACE_S, report)
        for name in targets:        # the warm containers of deleted generations go with them
            if read_target(state[name].prof).kind == "engine":
                report.containers_removed += remove_cold(engine, store, state[name].prof, state[name].current,
                                                         state[name].kept, dry_run, report.warnings)
        # Pins talk to the engine: writers need not wait for that, but a switch must (it pins too).
        sync_pins(engine, state_dir, [t for t in targets if t not in reach.unsure], reach.images,
                  all_profiles, report)
    return report


def _delete_generations(state: dict[str, "_Profile"], targets: list[str]) -> None:
    """Delete the records, durably, before any object goes: otherwise a crash could keep the sweep and
    lose the unlinks, and a deleted generation would come back without its objects."""
    for name in targets:
        for n in state[name].deleted:
            state[name].prof.delete_generation(n)
            checkpoint(f"gc: generation {n} of {name} deleted")
        if state[name].deleted:
            fsync_dir(state[name].prof.path / "generations")


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


def _lock_all(state_dir: Path, timeout_s: float, locks: contextlib.ExitStack) -> None:
    """Every profile's lock, in name order; then those of profiles created meanwhile, until none is new."""
    held: set[str] = set()
    while True:
        new = [n for n in list_profiles(state_dir) if n not in held]
        if not new:
            return
        for name in new:
            locks.callback(Profile(state_dir, name).acquire(timeout_s).release)
            held.add(name)


def _lock_store(store: Store, timeout_s: float):
    """The store's gc lock, exclusive: taken after the profiles' locks (writers hold it shared and take
    no profile lock meanwhile, so the order cannot deadlock)."""
    lock = store.lock(shared=False)
    try:
        lock.acquire(timeout_s)
    except LockTimeout as e:
        raise GenError("gc", f"a build or switch is writing the store; gave up after {e.waited_s:.1f}s "
                       "waiting for it; gc changed nothing") from None
    return lock


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


def _extra_roots(state_dir: Path) -> list[tuple[str, str, str]]:
    """(hash, kind, what names it) of each profile's last build and last import (gen.state.roots)."""
    roots = [(h, "manifest", f"the last build of profile {name}") for name, h in sorted(build_roots(state_dir).items())]
    for name, (manifest, source) in sorted(import_roots(state_dir).items()):
        roots.append((manifest, "manifest", f"the last import of profile {name}"))
        roots.extend([(source, "source", f"the last import of profile {name}")] if source else [])
    return roots


def _roots(state: dict[str, _Profile], extra: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """(hash, kind expected, what names it) for every root: kept generation records, journals, builds, imports."""
    roots = []
    for name, s in state.items():
        for n in s.kept:
            roots.extend((h, key, f"generation {n} of profile {name} ({key})")
                         for h, key in record_references(s.records[n]))
        to = (s.journal or {}).get("to")
        if isinstance(to, str) and HASH_RE.fullmatch(to):
            roots.append((to, "manifest", f"the interrupted activation of profile {name}"))
    return roots + extra


def _reachable(store: Store, state: dict[str, _Profile], extra: list[tuple[str, str, str]], report: GcReport) -> _Reach:
    """Every object reachable from a root by declared references, and the images kept generations use."""
    seen: set[str] = set()
    objects: dict[str, object] = {}
    damaged: set[str] = set()
    stack = _roots(state, extra)
    while stack:
        h, kind, why = stack.pop()
        if h in seen:
            continue
        seen.add(h)
        try:
            obj = store.get(h)          # rehashes: a damaged object is never trusted
        except MissingObject:
            report.warnings.append(f"object {h[:12]} named by {why} is missing from the store")
            continue
        except CorruptObject:
            # Kept (it is named). A damaged manifest hides what it refers to: nothing can be swept.
            if kind == "manifest":
                raise GenError(f"object {h}", f"is damaged and needed by {why}; what it refers to is unknown, "
                               "so gc changed nothing (`gen verify --repair` may rewrite it)") from None
            damaged.add(h)
            report.warnings.append(f"object {h[:12]} named by {why} is damaged; kept (see `gen verify --repair`)")
            continue
        objects[h] = obj
        stack.extend((ref, "service", f"manifest {h[:12]}") for ref in references(obj, f"object {h}")
                     if ref not in seen)
    images, unsure = _images(state, objects, damaged, report)
    used = None if damaged else {o["image_id"] for o in objects.values() if isinstance(o, dict)
                                 and o.get("kind") == "service" and isinstance(o.get("image_id"), str)}
    return _Reach({h for h in seen if h in objects or h in damaged}, images, unsure, used)


def _images(state: dict[str, _Profile], objects: dict[str, object], damaged: set[str],
            report: GcReport) -> tuple[dict[str, dict], set[str]]:
    """Per profile: image ID -> kept generations using it; and the profiles whose images are not all known."""
    images: dict[str, dict[str, list[int]]] = {}
    unsure: set[str] = set()
    for name, s in state.items():
        per = images.setdefault(name, {})
        for n in s.kept:
            manifest = objects.get(s.records[n].get("manifest"))
            if not isinstance(manifest, dict):
                continue
            for h in (manifest.get("services") or {}).values():
                obj = objects.get(h)
                if h in damaged:
                    unsure.add(name)
                elif isinstance(obj, dict) and isinstance(obj.get("image_id"), str):
                    per.setdefault(obj["image_id"], []).append(n)
    for name in sorted(unsure):
        report.warnings.append(f"profile {name}: image pins left as they are (a service object is damaged)")
    return images, unsure


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
            checkpoint(f"gc: object {h[:12]} deleted")
        report.objects_deleted += 1
        report.bytes_freed += st.st_size

