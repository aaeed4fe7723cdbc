"""Read-only views of a profile's history: `gen diff`, `gen show`, `gen log`. No locks, no writes.

A reference (`ref`) names one deployment: a generation number of the profile, `current`, a
manifest hash (or unique prefix of at least 4 digits), or a spec file (.toml/.yaml/.yml), which
is compiled in memory (images resolved on the engine) and never written to the store.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from gen.model.compile import Compiled, load
from gen.model.diff import Diff, Side, diff, format_healthcheck, format_mount, format_ms, format_port, short_image_id
from gen.errors import GenError, ProfileError, SpecError
from gen.state.profile import Generation, Profile
from store.errors import StoreError

if TYPE_CHECKING:
    from gen.api import Gen

SPEC_SUFFIXES = (".toml", ".yaml", ".yml")
_HEX = re.compile(r"[0-9a-f]{4,64}")


def is_spec_ref(ref: str) -> bool:
    """Spec files end in .toml/.yaml/.yml; any other existing file counts too, unless the reference
    reads as `current`, a generation number or a hash prefix (a file named `3` does not shadow generation 3)."""
    if ref.lower().endswith(SPEC_SUFFIXES):
        return True
    return ref != "current" and not _HEX.fullmatch(ref.lower()) and not ref.isdigit() and os.path.isfile(ref)


# ------------------------------------------------------------------------------------------- diff

def diff_refs(g: "Gen", profile: str | None, a: str | None, b: str | None) -> Diff:
    """diff(A, B); with only A given: current against A. Spec files may name the profile."""
    if a is None and b is None:
        raise GenError("diff", "which deployment? give a target: a generation number, a manifest hash "
                               "or a spec file (e.g. `gen diff 3`, `gen diff gen.toml`, `gen diff 2 3`)")
    refs = ["current", a] if b is None else [a, b]
    compiled: dict[int, Compiled] = {}
    for i, ref in enumerate(refs):          # spec files first: the first one names the profile
        if is_spec_ref(ref):
            compiled[i] = g.compile(ref, profile)
            profile = profile or compiled[i].manifest["profile"]
    prof = g.profile(profile)
    sides = [_spec_side(compiled[i], ref, prof) if i in compiled else resolve_ref(g, prof, ref)
             for i, ref in enumerate(refs)]
    return diff(sides[0][0], sides[1][0], sides[0][1], sides[1][1])


def resolve_ref(g: "Gen", prof: Profile, ref: str) -> tuple[Compiled | None, Side]:
    """A generation number, `current` or a manifest hash prefix -> (compiled or None, side)."""
    current = prof.current_number()
    if ref == "current":
        if current is None:
            return None, Side("empty", profile=prof.name)
        ref = str(current)
    if ref.isdigit() and (len(ref) < 4 or int(ref) in prof.numbers()):
        gen = prof.get(int(ref))    # a number too short to be a hash prefix must be a generation
        return load(g.store, gen.manifest), Side("generation", gen.manifest, gen.number, profile=prof.name,
                                                current=gen.number == current)
    if _HEX.fullmatch(ref.lower()):
        compiled = load(g.store, g.store.resolve_prefix(ref.lower()))
        return compiled, Side("manifest", compiled.manifest_hash, profile=compiled.manifest.get("profile"))
    raise SpecError(ref, "is neither a generation number, a manifest hash nor a spec file")


def _spec_side(compiled: Compiled, ref: str, prof: Profile) -> tuple[Compiled, Side]:
    return compiled, Side("spec", compiled.manifest_hash, path=ref, profile=compiled.manifest["profile"])


# ------------------------------------------------------------------------------------------- show

def show(g: "Gen", profile: str | None, number: int | None = None) -> dict:
    """Generation `number` (default: current) as a JSON-able dict: record, services, volumes, spec source."""
    prof = g.profile(profile)
    current = prof.current_number()
    if number is None:
        if current is None:
            raise ProfileError(f"profile {prof.name}", "has no current generation; give a number (see `gen list`)")
        number = current
    gen = prof.get(number)
    compiled = load(g.store, gen.manifest)
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
        "source": _source(g, gen),
    }


def _source(g: "Gen", gen: Generation) -> dict | None:
    if not gen.source:
        return None
    try:
        obj = g.store.get(gen.source)
    except StoreError as e:
        return {"hash": gen.source, "path": None, "text": None, "error": e.reason}
    if not isinstance(obj, dict) or obj.get("kind") != "source":
        return {"hash": gen.source, "path": None, "text": None, "error": "store object is not a spec source"}
    return {"hash": gen.source, "path": obj.get("path"), "text": obj.get("text"), "error": None}


def render_show(info: dict) -> list[tuple[str, str]]:
    """Lines as (style, text), like gen.diff.render."""
    out = [("header", f"generation {info['generation']} of profile {info['profile']}"
                      + ("  (current)" if info["current"] else ""))]
    out.append(("", f"  hash     {info['hash']}"))
    out.append(("", f"  created  {info['created']}"))
    src = info["source"]
    if src is None:
        out.append(("dim", "  spec     not recorded (built before gen kept spec sources, or switched by hash)"))
    elif src["error"]:
        out.append(("removed", f"  spec     source {src['hash'][:12]} unreadable: {src['error']}"))
    else:
        out.append(("", f"  spec     {src['path']}  (source {src['hash'][:12]})"))
    out.append(("header", f"services ({len(info['services'])}):"))
    for name, s in info["services"].items():
        out.append(("changed", f"  {name}  {s['hash'][:12]}"))
        for label, value in _service_fields(s):
            out.append(("", f"      {label:<12} {value}"))
    if info["volumes"]:
        out.append(("header", "volumes: " + ", ".join(info["volumes"])))
    if src and src["text"] is not None:
        out.append(("header", f"spec source ({src['path']}):"))
        out.extend(("dim", f"  | {line}") for line in src["text"].splitlines())
    return out


def _service_fields(s: dict) -> list[tuple[str, str]]:
    rows = [("image", f"{s.get('image')}  ({short_image_id(s.get('image_id') or '')})")]
    for key in ("entrypoint", "command"):
        if s.get(key) is not None:
            rows.append((key, _json(s[key])))
    if s.get("env"):
        rows.append(("env", ", ".join(f"{k}={_json(v)}" for k, v in sorted(s["env"].items()))))
    if s.get("ports"):
        rows.append(("ports", ", ".join(format_port(p) for p in s["ports"])))
    if s.get("volumes"):
        rows.append(("volumes", ", ".join(format_mount(m) for m in s["volumes"])))
    if s.get("secrets"):
        rows.append(("secrets", ", ".join(s["secrets"])))
    if s.get("depends_on"):
        rows.append(("depends_on", ", ".join(s["depends_on"])))
    if s.get("healthcheck"):
        rows.append(("healthcheck", format_healthcheck(s["healthcheck"])))
    rows.append(("replicas", str(s.get("replicas"))))
    rows.append(("update", f"{s.get('update')}, stop_grace {format_ms(s.get('stop_grace_ms') or 0)}, "
                           f"restart {s.get('restart')}"))
    return rows


def _json(value) -> str:
    import json
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."


# -------------------------------------------------------------------------------------------- log

def log(g: "Gen", profile: str | None) -> tuple[str, list[dict]]:
    """Every switch, rollback and recovery of the profile, oldest first, with stable keys."""
    prof = g.profile(profile)
    if not prof.path.is_dir():
        raise ProfileError(f"profile {prof.name}", "does not exist")
    return prof.name, [log_entry(r) for r in prof.activations()]


def log_entry(r: dict) -> dict:
    from gen.state.profile import iso_time
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


def render_log(profile: str, entries: list[dict]) -> list[tuple[str, str]]:
    if not entries:
        return [("dim", f"profile {profile}: no activations yet")]
    out = []
    for e in entries:
        when = (e["time"] or "?").replace("T", " ").rstrip("Z")
        src = "-" if e["from"] is None else str(e["from"])
        dst = str(e["to"]) if e["to"] is not None else (e["to_hash"] or "-")
        took = f"{e['duration_s']:.1f}s" if isinstance(e["duration_s"], (int, float)) else "?"
        line = f"{when:<23}  {e['kind'] or '?':<8}  {src:>4} -> {dst:<12}  {e['outcome']:<6}  {took:>7}"
        if e["error"]:
            line += f"  {e['error']}"
        out.append(("added" if e["outcome"] == "ok" else "removed", line))
    return out
