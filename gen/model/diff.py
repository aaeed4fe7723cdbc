"""`gen diff`: what differs between two compiled deployments. Pure: no store, no engine, no I/O.

A side is a Compiled (manifest + service objects) or None (nothing deployed). The result says
which services were added, removed or changed, and for a changed service every field that
changed: the image tag and the pinned image ID, env keys (added, removed, changed, each with old
and new value), ports, volumes, healthcheck fields, command, replicas, ... Declared volumes (and
networks) added, removed or changed are listed too.

`Diff.to_json()` is a stable structure for scripts; gen.cli.diffview renders it as text.
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
