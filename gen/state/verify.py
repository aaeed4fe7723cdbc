"""`gen verify`: is the state directory whole? Read-only: no locks, no writes.

1. Rehash every store object (store.Store.verify): ok or corrupt.
2. Every generation of every profile: its manifest, the manifest's service objects and its spec
   source (when recorded) must exist and verify. Missing ones are reported by hash with the
   generations that need them; a corrupt object also names the generations that need it.
3. Each profile's `current` must point at an existing generation record.
Stray files (not objects: leftovers of a crash mid-write) are listed but are not a problem.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gen.errors import GenError
from gen.state.profile import Profile, list_profiles
from store import Store
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

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.problems)

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
        }


def verify(state_dir: Path, store: Store) -> VerifyResult:
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
        _need(store, h, "service", service, who, result)


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
