"""A profile's history, read: references to deployments, one generation (`gen show`), the
activation log (`gen log`). No locks, no writes.

A reference (`ref`) names one deployment: a generation number of the profile, `current`, a
manifest hash (or unique prefix of at least 4 digits), or a spec file (.toml/.yaml/.yml), which
the caller compiles in memory (gen.api). `is_spec_ref` is the one rule deciding which is which.
"""
from __future__ import annotations

import os
import re

from gen.errors import CorruptState, ProfileError, SpecError
from gen.model import formats
from gen.model.compile import Compiled
from gen.model.diff import Side
from gen.state.manifests import load_compiled
from gen.state.profile import Generation, Profile, iso_time
from store import Store
from store.errors import StoreError

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")
HASH_PREFIX_RE = re.compile(r"[0-9a-f]{4,64}")     # a manifest hash, or a prefix of one long enough to mean it


def is_spec_ref(ref: str) -> bool:
    """Spec files end in .toml/.yaml/.yml; any other existing file counts too, unless the reference
    reads as `current`, a generation number or a hash prefix (a file named `3` does not shadow generation 3)."""
    if ref.lower().endswith(SPEC_SUFFIXES):
        return True
    return ref != "current" and not HASH_PREFIX_RE.fullmatch(ref.lower()) and not ref.isdigit() and os.path.isfile(ref)


def resolve_ref(store: Store, prof: Profile, ref: str) -> tuple[Compiled | None, Side]:
    """A generation number, `current` or a manifest hash prefix -> (compiled or None, side)."""
    current = prof.current_number()
    if ref == "current":
        if current is None:
            return None, Side("empty", profile=prof.name)
        ref = str(prof.current().number)      # a `current` naming no record is refused, naming the link
    if ref.isdigit() and (len(ref) < 4 or int(ref) in prof.numbers()):
        gen = prof.get(int(ref))    # a number too short to be a hash prefix must be a generation
        return load_compiled(store, gen.manifest), Side("generation", gen.manifest, gen.number, profile=prof.name,
                                                current=gen.number == current)
    if HASH_PREFIX_RE.fullmatch(ref.lower()):
        compiled = load_compiled(store, store.resolve_prefix(ref.lower()))
        return compiled, Side("manifest", compiled.manifest_hash, profile=compiled.manifest.get("profile"))
    raise SpecError(ref, "is neither a generation number, a manifest hash nor a spec file")


def spec_side(compiled: Compiled, path: str) -> tuple[Compiled, Side]:
    """A spec file compiled in memory, as one side of a diff."""
    return compiled, Side("spec", compiled.manifest_hash, path=path, profile=compiled.manifest["profile"])


def show(store: Store, prof: Profile, number: int | None = None) -> dict:
    """Generation `number` (default: current) as a JSON-able dict: record, services, volumes, spec source."""
    gen = prof.current() if number is None else prof.get(number)
    if gen is None:
        raise ProfileError(f"profile {prof.name}", "has no current generation; give a number (see `gen list`)")
    current = prof.current_number()
    compiled = load_compiled(store, gen.manifest)
    return {
        "profile": prof.name,
        "generation": gen.number,
        "hash": gen.manifest,
        "created": gen.created,
        "current": gen.number == current,
        "services": {name: {"hash": h, **{k: v for k, v in obj.items() if k not in ("kind", "name")}}
                     for name, (h, obj) in sorted(compiled.services.items())},
        "volumes": compiled.manifest.get("volumes", {}),
        "networks": compiled.manifest.get("networks", {}),
        "source": _source(store, gen),
    }


def _source(store: Store, gen: Generation) -> dict | None:
    if not gen.source:
        return None
    # The source only informs: one that cannot be read is shown as such, never fatal to `gen show`.
    try:
        obj = formats.source(store.get(gen.source), f"object {gen.source}")
    except (StoreError, CorruptState) as e:
        return {"hash": gen.source, "path": None, "text": None, "error": e.reason}
    return {"hash": gen.source, "path": obj["path"], "text": obj["text"], "error": None}


def log(prof: Profile) -> list[dict]:
    """Every switch, rollback and recovery of the profile, oldest first, with stable keys."""
    if not prof.path.is_dir():
        raise ProfileError(f"profile {prof.name}", "does not exist")
    return [log_entry(r) for r in prof.activations()]


def log_entry(r: dict) -> dict:
    outcome = str(r.get("outcome", ""))
    ok = outcome == "ok"
    to = r.get("to")
    started = r.get("started")
    return {
        "time": r.get("time") or (iso_time(started) if isinstance(started, (int, float)) else None),
        "kind": r.get("kind"),
        "from": r.get("from"),
        "to": to if isinstance(to, int) else None,              # generation number, when one was reached
        "to_hash": to if isinstance(to, str) else None,         # manifest prefix of a failed activation
        "outcome": "ok" if ok else "failed",
        "error": None if ok else (outcome[len("failed: "):] if outcome.startswith("failed: ") else outcome),
        "duration_s": r.get("duration_s"),
    }
