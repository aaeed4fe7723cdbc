"""`gen diff`: what differs between two compiled deployments. Pure: no store, no engine, no I/O.

A side is a Compiled (manifest + service objects) or None (nothing deployed). The result says
which services were added, removed or changed, and for a changed service every field that
changed: the image tag and the pinned image ID, env keys (added, removed, changed, each with old
and new value), ports, volumes, healthcheck fields, command, replicas, ... Declared volumes (and
networks) added, removed or changed are listed too.

`Diff.to_json()` is a stable structure for scripts; `render()` gives lines with a style name
("added", "removed", "changed", "header", "dim") that the CLI prints plain or in colour.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from gen.model.compile import Compiled

# Fields shown first, in this order; any other field (a newer spec format) follows alphabetically.
FIELD_ORDER = ("image", "image_id", "command", "entrypoint", "env", "ports", "volumes", "secrets",
               "healthcheck", "depends_on", "replicas", "update", "stop_grace_ms", "restart")
# Lists whose order does not matter to the user: shown as items added and removed.
SET_FIELDS = frozenset({"ports", "volumes", "secrets", "depends_on"})
# Dicts shown key by key.
KEYED_FIELDS = frozenset({"env", "healthcheck"})
IGNORED_FIELDS = frozenset({"kind", "name"})
ABSENT = None      # a field missing from one side (an object written by an older gen) reads as None


@dataclass(frozen=True)
class Change:
    field: str                 # service key: "image", "env", "ports", "healthcheck", ...
    change: str                # added | removed | changed
    key: str | None = None     # env key or healthcheck field; None for a whole field or a list item
    old: object = None
    new: object = None

    def to_json(self) -> dict:
        return {"field": self.field, "key": self.key, "change": self.change, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ServiceDiff:
    service: str
    old_hash: str
    new_hash: str
    changes: tuple[Change, ...]

    def to_json(self) -> dict:
        return {"service": self.service, "from": self.old_hash, "to": self.new_hash,
                "changes": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class Side:
    """What one side of a diff is, for labels: a generation, a manifest, a spec file, or nothing."""
    kind: str                          # generation | manifest | spec | empty
    hash: str | None = None
    generation: int | None = None
    path: str | None = None
    profile: str | None = None
    current: bool = False

    @property
    def label(self) -> str:
        if self.kind == "generation":
            return f"generation {self.generation}" + (" (current)" if self.current else "")
        if self.kind == "manifest":
            return f"manifest {self.hash[:12]}"
        if self.kind == "spec":
            return f"spec {self.path}"
        return "nothing"

    def to_json(self) -> dict:
        return {"kind": self.kind, "generation": self.generation, "hash": self.hash, "path": self.path,
                "profile": self.profile, "current": self.current}


@dataclass(frozen=True)
class Diff:
    old: Side
    new: Side
    added: tuple[tuple[str, str], ...]          # (service, hash)
    removed: tuple[tuple[str, str], ...]
    changed: tuple[ServiceDiff, ...]
    unchanged: tuple[str, ...]
    volumes: dict = field(default_factory=dict)   # {"added": [...], "removed": [...], "changed": [Change]}
    networks: dict = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed or any(self.volumes.values())
                    or any(self.networks.values()))

    def to_json(self) -> dict:
        def decls(d: dict) -> dict:
            return {"added": list(d["added"]), "removed": list(d["removed"]),
                    "changed": [c.to_json() for c in d["changed"]]}
        return {
            "from": self.old.to_json(),
            "to": self.new.to_json(),
            "identical": self.identical,
            "services": {
                "added": [{"service": n, "hash": h} for n, h in self.added],
                "removed": [{"service": n, "hash": h} for n, h in self.removed],
                "changed": [s.to_json() for s in self.changed],
                "unchanged": list(self.unchanged),
            },
            "volumes": decls(self.volumes),
            "networks": decls(self.networks),
        }


# ---------------------------------------------------------------------------------------------- diff

def diff(old: Compiled | None, new: Compiled | None, old_side: Side | None = None,
         new_side: Side | None = None) -> Diff:
    a = old.services if old else {}
    b = new.services if new else {}
    added = tuple((n, b[n][0]) for n in sorted(b.keys() - a.keys()))
    removed = tuple((n, a[n][0]) for n in sorted(a.keys() - b.keys()))
    changed, unchanged = [], []
    for name in sorted(a.keys() & b.keys()):
        (ha, oa), (hb, ob) = a[name], b[name]
        if ha == hb:
            unchanged.append(name)
        else:
            changed.append(ServiceDiff(name, ha, hb, tuple(service_changes(oa, ob))))
    ma = old.manifest if old else {}
    mb = new.manifest if new else {}
    return Diff(old_side or _side(old), new_side or _side(new), added, removed, tuple(changed), tuple(unchanged),
                _declarations(ma.get("volumes") or {}, mb.get("volumes") or {}),
                _declarations(ma.get("networks") or {}, mb.get("networks") or {}))


def service_changes(old: dict, new: dict) -> list[Change]:
    """Every difference between two service objects, fields in FIELD_ORDER, then alphabetical."""
    keys = (old.keys() | new.keys()) - IGNORED_FIELDS
    ordered = [k for k in FIELD_ORDER if k in keys] + sorted(keys - set(FIELD_ORDER))
    out: list[Change] = []
    for key in ordered:
        a, b = old.get(key, ABSENT), new.get(key, ABSENT)
        if a == b:
            continue
        if key not in old:
            out.append(Change(key, "added", new=b))
        elif key not in new:
            out.append(Change(key, "removed", old=a))
        elif isinstance(a, dict) and isinstance(b, dict) and (key in KEYED_FIELDS or key not in FIELD_ORDER):
            out.extend(_keyed(key, a, b))
        elif key in SET_FIELDS and isinstance(a, list) and isinstance(b, list):
            out.extend(_items(key, a, b))
        elif a is None:
            out.append(Change(key, "added", new=b))
        elif b is None:
            out.append(Change(key, "removed", old=a))
        else:
            out.append(Change(key, "changed", old=a, new=b))
    return out


def _keyed(field_: str, a: dict, b: dict) -> list[Change]:
    out = []
    for k in sorted(a.keys() | b.keys()):
        if k not in a:
            out.append(Change(field_, "added", k, new=b[k]))
        elif k not in b:
            out.append(Change(field_, "removed", k, old=a[k]))
        elif a[k] != b[k]:
            out.append(Change(field_, "changed", k, a[k], b[k]))
    return out


def _items(field_: str, a: list, b: list) -> list[Change]:
    ka, kb = [_key(x) for x in a], [_key(x) for x in b]
    removed = [x for x, k in zip(a, ka) if k not in kb]
    added = [x for x, k in zip(b, kb) if k not in ka]
    if not removed and not added:         # same items, another order (or duplicates): the whole list
        return [Change(field_, "changed", old=a, new=b)]
    return [Change(field_, "removed", old=x) for x in removed] + [Change(field_, "added", new=x) for x in added]


def _key(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _declarations(a: dict, b: dict) -> dict:
    return {"added": sorted(b.keys() - a.keys()), "removed": sorted(a.keys() - b.keys()),
            "changed": [Change(n, "changed", old=a[n], new=b[n]) for n in sorted(a.keys() & b.keys()) if a[n] != b[n]]}


def _side(c: Compiled | None) -> Side:
    return Side("manifest", c.manifest_hash, profile=c.manifest.get("profile")) if c else Side("empty")


# ---------------------------------------------------------------------------------------------- text

def render(d: Diff, width: int = 100) -> list[tuple[str, str]]:
    """Lines as (style, text). Styles: header, added, removed, changed, dim."""
    lines = [("header", f"{d.old.label} -> {d.new.label}")]
    if d.identical:
        same = "same manifest" if d.old.hash and d.old.hash == d.new.hash else "same services"
        lines.append(("dim", f"  no differences ({same})"))
        return lines
    for name, h in d.added:
        lines.append(("added", f"+ service {name}  ({h[:12]})"))
    for name, h in d.removed:
        lines.append(("removed", f"- service {name}  ({h[:12]})"))
    for s in d.changed:
        lines.append(("changed", f"~ service {s.service}  ({s.old_hash[:12]} -> {s.new_hash[:12]})"))
        for c in s.changes:
            lines.append((_style(c), "    " + describe(c, width)))
        if not s.changes:
            lines.append(("dim", "    (no field differs: the object format changed)"))
    # Every deployment has the default network: only worth a line when neither side is empty.
    both = d.old.kind != "empty" and d.new.kind != "empty"
    for kind, decl in (("volume", d.volumes), ("network", d.networks if both else {})):
        for n in decl.get("added", ()):
            lines.append(("added", f"+ {kind} {n}"))
        for n in decl.get("removed", ()):
            lines.append(("removed", f"- {kind} {n}"))
        for c in decl.get("changed", ()):
            lines.append(("changed", f"~ {kind} {c.field}: {_value(c.old, width)} -> {_value(c.new, width)}"))
    if d.unchanged:
        lines.append(("dim", f"  unchanged: {', '.join(d.unchanged)}"))
    lines.append(("header", summary(d)))
    return lines


def summary(d: Diff) -> str:
    return (f"{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
            f"{len(d.unchanged)} unchanged")


def describe(c: Change, width: int = 100) -> str:
    """One change as a line: `env GREETING: "hello" -> "hi"`, `ports + 127.0.0.1:80:8080/tcp`."""
    label = _label(c)
    if c.change == "added":
        return f"{label} + {_shown(c, c.new, width)}" if c.key is None else f"{label}: + {_shown(c, c.new, width)}"
    if c.change == "removed":
        return f"{label} - {_shown(c, c.old, width)}" if c.key is None else f"{label}: - {_shown(c, c.old, width)}"
    return f"{label}: {_shown(c, c.old, width)} -> {_shown(c, c.new, width)}"


def _label(c: Change) -> str:
    name = {"image_id": "image id", "stop_grace_ms": "stop_grace", "depends_on": "depends_on"}.get(c.field, c.field)
    if c.key is None:
        return name
    key = c.key[:-3] if c.field == "healthcheck" and c.key.endswith("_ms") else c.key
    return f"{name}.{key}" if c.field == "healthcheck" else f"{name} {key}"


def _style(c: Change) -> str:
    return {"added": "added", "removed": "removed"}.get(c.change, "changed")


def _shown(c: Change, value: object, width: int) -> str:
    if value is None:
        return "(none)"
    if c.field == "ports" and isinstance(value, dict):
        return format_port(value)
    if c.field == "volumes" and isinstance(value, dict):
        return format_mount(value)
    if c.field == "image" and isinstance(value, str):
        return value
    if c.field == "image_id" and isinstance(value, str):
        return short_image_id(value)
    if (c.field.endswith("_ms") or (c.key or "").endswith("_ms")) and isinstance(value, int):
        return format_ms(value)
    if c.field in ("ports", "volumes") and isinstance(value, list):
        fmt = format_port if c.field == "ports" else format_mount
        return "[" + ", ".join(fmt(v) if isinstance(v, dict) else _value(v, width) for v in value) + "]"
    if c.field == "healthcheck" and c.key is None and isinstance(value, dict):
        return format_healthcheck(value)
    return _value(value, width)


def _value(value: object, width: int = 100) -> str:
    text = json.dumps(value, ensure_ascii=False)     # quoted, so spaces and empty strings show
    return text if len(text) <= width else text[:width - 3] + "..."


def format_port(p: dict) -> str:
    ip = p.get("host_ip", "")
    ip = f"[{ip}]" if ":" in ip else ip
    return f"{ip + ':' if ip else ''}{p.get('host_port')}:{p.get('container_port')}/{p.get('protocol', 'tcp')}"


def format_mount(m: dict) -> str:
    return f"{m.get('source')}:{m.get('target')}" + (":ro" if m.get("read_only") else "")


def format_healthcheck(h: dict) -> str:
    parts = [json.dumps(h.get("test"), ensure_ascii=False)]
    for k in ("interval_ms", "timeout_ms", "retries", "start_period_ms"):
        if k in h:
            v = h[k]
            parts.append(f"{k[:-3] if k.endswith('_ms') else k}={format_ms(v) if k.endswith('_ms') else v}")
    return " ".join(parts)


def short_image_id(image_id: str) -> str:
    algo, _, digest = image_id.rpartition(":")
    return f"{algo}:{digest[:12]}" if algo else image_id[:12]


def format_ms(ms: int) -> str:
    """250 -> 250ms, 1000 -> 1s, 90000 -> 1m30s, 0 -> 0s."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out += f"{ms // size}{unit}"
            ms %= size
    return out
