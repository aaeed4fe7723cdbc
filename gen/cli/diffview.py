"""Text views of deployments: a Diff (`gen diff`) and one generation (`gen show`).

Every view returns lines as (style, text); styles are "header", "added", "removed", "changed",
"dim", which the CLI prints plain, or in colour on a terminal.
"""
from __future__ import annotations

import json

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gen.api import Change, Diff

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
    if c.field in ("secrets", "configs") and isinstance(value, (dict, list)):
        refs = value if isinstance(value, list) else [value]
        return ", ".join(format_file_ref(r) if isinstance(r, dict) else _value(r, width) for r in refs) or "[]"
    return _value(value, width)


def format_file_ref(ref: dict) -> str:
    """A secret or config file by name, target and digest (never a value: the store holds none)."""
    if "object" in ref:
        return f"{ref.get('name')} -> {ref.get('target')} ({str(ref['object'])[:12]}, mode {ref.get('mode', 0):04o})"
    return f"{ref.get('name')} (from {ref.get('file')})"


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


def render_show(info: dict) -> list[tuple[str, str]]:
    """`gen show`: one generation (gen.api.Gen.show) as lines."""
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
    out.extend(render_exactness(info))
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
        rows.append(("secrets", ", ".join(_secret(x) for x in s["secrets"])))
    if s.get("configs"):
        rows.append(("configs", ", ".join(f"{c['name']} -> {c['target']} ({c['object'][:12]})" for c in s["configs"])))
    if s.get("depends_on"):
        rows.append(("depends_on", ", ".join(s["depends_on"])))
    if s.get("healthcheck"):
        rows.append(("healthcheck", format_healthcheck(s["healthcheck"])))
    rows.append(("replicas", str(s.get("replicas"))))
    rows.append(("update", f"{s.get('update')}, stop_grace {format_ms(s.get('stop_grace_ms') or 0)}, "
                           f"restart {s.get('restart')}"))
    return rows


def _secret(ref) -> str:
    """A service's secret: its name and its sealed object's digest (format 2), or the file it is read
    from (format 1). Never a value: the store holds none in plaintext."""
    if isinstance(ref, dict) and "object" in ref:
        return f"{ref.get('name')} (sealed {str(ref['object'])[:12]})"
    if isinstance(ref, dict):
        return f"{ref.get('name')} (from {ref.get('file')})"
    return str(ref)


def render_exactness(info: dict) -> list[tuple[str, str]]:
    """What a rollback to this generation restores (pinned) and what it leaves as the host has it."""
    pinned, host = [], []
    for name, s in info["services"].items():
        pinned.append(f"image   {name}: {s.get('image')} = {short_image_id(s.get('image_id') or '')}")
        if s.get("env"):
            pinned.append(f"env     {name}: {', '.join(sorted(s['env']))}")
        for ref in s.get("secrets") or ():
            if isinstance(ref, dict) and "object" in ref:
                pinned.append(f"secret  {name}: {ref['name']} -> {ref.get('target')}  (sealed {ref['object'][:12]})")
            elif isinstance(ref, dict):
                host.append(f"secret  {name}: {ref.get('name')} from {ref.get('file')} (read as the file is now: "
                            "an object of an older gen)")
        for ref in s.get("configs") or ():
            pinned.append(f"config  {name}: {ref['name']} -> {ref['target']}  ({ref['object'][:12]}, "
                          f"mode {ref['mode']:04o}, {ref['uid']}:{ref['gid']})")
        for m in s.get("volumes") or ():
            how = "read-only" if m.get("read_only") else "writable"
            kind = "named volume" if m.get("type") == "volume" else "bind"
            host.append(f"{'volume' if m.get('type') == 'volume' else 'bind':<7} {name}: {m.get('source')} -> "
                        f"{m.get('target')}  ({how} {kind})")
    out = [("header", "pinned by this generation (a rollback restores exactly these):")]
    out.extend(("", f"  {line}") for line in pinned)
    out.append(("header", "from the host (NOT restored by a rollback: used as the host has them):"))
    out.extend(("", f"  {line}") for line in host)
    if not host:
        out.append(("dim", "  nothing"))
    return out


def _json(value) -> str:
    import json
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 100 else text[:97] + "..."
