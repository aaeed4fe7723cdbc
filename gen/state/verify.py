"""`gen verify [--repair]`: is the state directory whole? Without --repair: read-only, no locks.

1. Rehash every store object (store.Store.verify): ok or corrupt.
2. Every generation of every profile: its manifest, the manifest's service objects and its spec
   source (when recorded) must exist and verify. Missing ones are reported by hash with the
   generations that need them; a corrupt object also names the generations that need it.
3. Each profile's `current` must point at an existing generation record.
4. The closure's image archives (store blobs) are rehashed, streamed; and, when an engine is given,
   every generation's images are looked for: on the engine, in the closure, or pinned by a registry
   digest; a generation none of these can serve is named: it could not be rolled back to today
   (gen.state.verifyimages; no network is needed).
Stray files (not objects: leftovers of a crash mid-write) are listed but are not a problem.

`--repair` (`repair`) is modest: an object is named by its hash, so its bytes can only come back
from something that makes exactly them again, a build. It builds the spec file each affected
generation recorded (its source object's path, if that file is still there) and the spec files the
caller gives, for each affected profile, and re-puts each broken object such a build makes (the
store rewrites a damaged file atomically). It removes nothing and writes nothing else; what no
build makes stays listed, with the generations that need it and why each build did not help.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from gen.engine.base import Engine
from gen.errors import GenError
from gen.model.compile import Compiled
from gen.state.profile import Profile, list_profiles
from gen.state import roots
from gen.state.roots import build_source, writing
from gen.state.verifyimages import ArchiveCheck, ImageCheck, check_archives, check_images
from store import Store, encode, hash_value
from store.errors import CorruptObject, MissingObject, StoreError


@dataclass
class VerifyResult:
    objects_ok: int = 0
    size_bytes: int = 0
    corrupt: dict[str, list[dict]] = field(default_factory=dict)    # hash -> [needed by]
    missing: dict[str, dict] = field(default_factory=dict)          # hash -> {"kind", "service", "needed_by"}
    stray: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)              # records that cannot be read, bad pointers
    profiles: dict[str, int] = field(default_factory=dict)         # profile -> generations checked
    repaired: list[dict] = field(default_factory=list)             # --repair: {"hash", "from"} re-put
    repair_notes: list[str] = field(default_factory=list)          # --repair: why a build did not help
    archives: ArchiveCheck = field(default_factory=ArchiveCheck)    # the closure's image archives
    images: ImageCheck = field(default_factory=ImageCheck)         # can every generation be rolled back to?

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.problems or self.archives.corrupt
                    or self.archives.problems or self.images.unrestorable)

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "objects": {"ok": self.objects_ok, "corrupt": len(self.corrupt), "missing": len(self.missing),
                        "stray": len(self.stray), "size_bytes": self.size_bytes},
            "corrupt": [{"hash": h, "needed_by": needed} for h, needed in sorted(self.corrupt.items())],
            "missing": [{"hash": h, **info} for h, info in sorted(self.missing.items())],
            "stray": self.stray,
            "problems": self.problems,
            "profiles": [{"profile": p, "generations": n} for p, n in sorted(self.profiles.items())],
            "repaired": self.repaired,
            "repair_notes": self.repair_notes,
            "archives": self.archives.to_json(),
            "images": self.images.to_json(),
        }

    def broken(self) -> set[str]:
        return set(self.corrupt) | set(self.missing)

    def needers(self) -> list[dict]:
        """Every {"profile", "generation"} that needs a broken object."""
        lists = [*self.corrupt.values(), *(info["needed_by"] for info in self.missing.values())]
        return [who for needed in lists for who in needed]


def verify(state_dir: Path, store: Store, engine: Callable[[], Engine] | None = None) -> VerifyResult:
    """engine: connects on demand, to check the generations' images (None: they are not checked)."""
    report = store.verify()
    result = VerifyResult(objects_ok=report.ok, size_bytes=report.size_bytes,
                          corrupt={h: [] for h in report.corrupt}, stray=[str(p) for p in report.stray])
    for name in list_profiles(state_dir):
        prof = Profile(state_dir, name)
        numbers = prof.numbers()
        result.profiles[name] = len(numbers)
        for n in numbers:
            _check_generation(store, prof, n, result)
        try:
            current = prof.current_number()
        except ValueError:
            result.problems.append(f"profile {name}: `current` does not point at a generation record")
            continue
        if current is not None and current not in numbers:
            result.problems.append(f"profile {name}: `current` points at generation {current}, which has no record")
    result.archives = check_archives(state_dir, store)
    result.images = check_images(state_dir, store, engine, result.archives) if engine else \
        ImageCheck(note="images not checked")
    return result


def _check_generation(store: Store, prof: Profile, n: int, result: VerifyResult) -> None:
    who = {"profile": prof.name, "generation": n}
    try:
        gen = prof.get(n)
    except (GenError, ValueError, KeyError, TypeError, OSError) as e:
        result.problems.append(f"profile {prof.name}: generation record {n} cannot be read ({_reason(e)})")
        return
    manifest = _need(store, gen.manifest, "manifest", None, who, result)
    if gen.source:
        _need(store, gen.source, "source", None, who, result)
    if manifest is None:
        return
    if not isinstance(manifest, dict) or manifest.get("kind") != "manifest":
        result.problems.append(f"profile {prof.name}: generation {n} names {gen.manifest[:12]}, which is not a manifest")
        return
    for service, h in sorted((manifest.get("services") or {}).items()):
        obj = _need(store, h, "service", service, who, result)
        if obj is not None:
            _check_pinned_files(store, obj, h, service, who, result)


def _check_pinned_files(store: Store, obj: object, h: str, service: str, who: dict, result: VerifyResult) -> None:
    """The sealed secrets and config files a service object pins must be there and verify too: without
    them its generation cannot be activated."""
    try:
        refs = roots.references(obj, f"object {h}")
    except (GenError, ValueError) as e:
        result.problems.append(f"object {h}: {_reason(e)}")
        return
    for ref in refs:
        _need(store, ref, "pinned file", service, who, result)


def _need(store: Store, h: str, kind: str, service: str | None, who: dict, result: VerifyResult):
    """The object's value if it exists and verifies; otherwise record who needs it and return None."""
    if h in result.corrupt:
        if who not in result.corrupt[h]:
            result.corrupt[h].append(who)
        return None
    try:
        return store.get(h)
    except CorruptObject:
        result.corrupt.setdefault(h, []).append(who)     # changed on disk since the rehash pass
    except MissingObject:
        entry = result.missing.setdefault(h, {"kind": kind, "service": service, "needed_by": []})
        if who not in entry["needed_by"]:
            entry["needed_by"].append(who)
    except StoreError as e:
        result.problems.append(f"object {h}: {e.reason}")
    return None


def _reason(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return "not valid JSON"
    return str(e) if isinstance(e, GenError) else f"{type(e).__name__}: {e}"


# -- repair ----------------------------------------------------------------------------------------
Rebuild = Callable[[str, "str | None"], Compiled]      # (spec path, profile) -> compiled, written nowhere


def repair(state_dir: Path, store: Store, rebuild: Rebuild, specs: Sequence[str] = (),
           lock_timeout: float = 30.0) -> VerifyResult:
    """Verify, re-put every broken object a build makes again, verify afresh (see the module's
    docstring). Rounds repeat while they repair something: a manifest rewritten reveals which service
    objects it needs."""
    result = verify(state_dir, store)
    repaired: list[dict] = []
    notes: list[str] = []
    tried: set[tuple[str, str | None]] = set()
    while result.broken():
        builds = [b for b in _builds(state_dir, store, result, specs, notes) if b not in tried]
        tried.update(builds)
        fixed = [fix for path, profile in builds
                 for fix in _rebuild_one(store, result.broken(), rebuild, path, profile, notes, lock_timeout)]
        if not fixed:
            break
        repaired.extend(fixed)
        result = verify(state_dir, store)
    result.repaired, result.repair_notes = repaired, list(dict.fromkeys(notes))
    return result


def _builds(state_dir: Path, store: Store, result: VerifyResult, specs: Sequence[str],
            notes: list[str]) -> list[tuple[str, str | None]]:
    """(spec path, profile) to build: what each affected generation recorded, then the caller's specs."""
    wanted: dict[str, set[int]] = {}
    for who in result.needers():
        wanted.setdefault(who["profile"], set()).add(who["generation"])
    builds = []
    for profile, numbers in sorted(wanted.items()):
        for n in sorted(numbers):
            path = _recorded_path(store, Profile(state_dir, profile), n, notes)
            if path:
                builds.append((path, profile))
    builds += [(os.path.abspath(spec), profile) for spec in specs for profile in sorted(wanted) or [None]]
    return list(dict.fromkeys(builds))


def _recorded_path(store: Store, prof: Profile, n: int, notes: list[str]) -> str | None:
    """The spec file generation n was built from, if it recorded one and the file is still there."""
    try:
        source = prof.get(n).source
        path = store.get(source).get("path") if source else None
    except (GenError, StoreError, ValueError, KeyError, TypeError, OSError, AttributeError):
        path = None
    if not path:
        notes.append(f"profile {prof.name} generation {n} recorded no readable spec source; "
                     "give its spec file with --from")
        return None
    if not os.path.isfile(path):
        notes.append(f"profile {prof.name} generation {n} was built from {path}, which no longer exists")
        return None
    return path


def _rebuild_one(store: Store, broken: set[str], rebuild: Rebuild, path: str, profile: str | None,
                 notes: list[str], lock_timeout: float) -> list[dict]:
    """Build `path` for `profile` and re-put the broken objects it makes."""
    who = f"{path} (profile {profile})" if profile else path
    try:
        made = _objects_made(rebuild(path, profile), path)
    except (GenError, StoreError, OSError) as e:
        notes.append(f"{who} could not be built: {e}")
        return []
    fixes = [(h, data) for h, data in made.items() if h in broken]
    if not fixes:
        notes.append(f"{who} builds none of the broken objects (the spec, an image or a file it reads changed)")
        return []
    with writing(store, lock_timeout):          # rooted already: the generations that need them name them
        for _, data in fixes:
            store.put_bytes(data)
    return [{"hash": h, "from": path} for h, _ in fixes]


def _objects_made(compiled: Compiled, path: str) -> dict[str, bytes]:
    """hash -> canonical bytes of every object a build of `path` writes (services, manifest, source)."""
    made = {h: compiled.encoded.get(h) or encode(obj) for h, obj in compiled.services.values()}
    made[compiled.manifest_hash] = encode(compiled.manifest)
    source = build_source(path)
    made[hash_value(source)] = encode(source)
    return made

