"""What a service mounts (`volumes = [...]`): named and anonymous volumes, host binds, tmpfs.

Each entry is a string, as Compose's short syntax writes it:
- "data:/var/lib/x[:opts]"  a declared volume; "/srv/x:/x[:opts]" an absolute host path (bind);
- "/data"                   an anonymous volume at /data (Mount source "": gen keeps one per service,
                            replica and target, so its data survives a replace as Compose's does);
  opts, comma-separated: ro | rw, nocopy (volume), a bind propagation (rshared, slave, ...);
or a table with Mount's own keys: { type = "volume" | "bind" | "tmpfs", source, target, read_only,
create_host_path (bind; false: a missing source is an error, never created), nocopy (volume),
propagation (bind), tmpfs_size (bytes, or "64m"), tmpfs_mode (0o1777) }.
Options are stored only when not their default, so a plain mount keeps its old shape (and hash).
"""
from __future__ import annotations

import os

from gen.errors import SpecError
from gen.spec.fields import normal_path
from gen.spec.messages import shown
from gen.spec.quantities import parse_size
from gen.spec.validate import check_keys, checked_string

PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
DEFAULT_PROPAGATION = "rprivate"    # Docker's: left out of the normal form
_TABLE_KEYS = ("type", "source", "target", "read_only", "create_host_path", "nocopy", "propagation",
               "tmpfs_size", "tmpfs_mode")
_ONLY_FOR = {"create_host_path": "bind", "propagation": "bind", "nocopy": "volume",
             "tmpfs_size": "tmpfs", "tmpfs_mode": "tmpfs"}


def parse_mounts(value, path, ctx) -> list[dict]:
    if not isinstance(value, list):
        raise SpecError(path, "must be a list of strings or tables")
    mounts, targets = [], {}
    for i, item in enumerate(value):
        sub = f"{path}[{i}]"
        mount = _table(item, sub, ctx) if isinstance(item, dict) else _short(item, sub, ctx)
        if mount["target"] in targets:
            raise SpecError(sub, f"target {mount['target']} is already mounted by {path}[{targets[mount['target']]}]")
        targets[mount["target"]] = i
        mounts.append(mount)
    return mounts


def writes_host_data(mount: dict) -> bool:
    """A writable volume or bind (a tmpfs lives and dies with its container)."""
    return mount["type"] != "tmpfs" and not mount["read_only"]


# -- "source:target:opts" ---------------------------------------------------------------------------
def _short(value: object, path: str, ctx) -> dict:
    text = checked_string(value, path)
    parts = text.split(":")
    if len(parts) == 1 and text.startswith("/"):
        return _mount("volume", "", _target(text, path), False, {}, path)
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise SpecError(path, f"malformed volume {shown(text)} (expected source:target[:opts], or /target "
                              "for an anonymous volume)")
    source, target = parts[0], _target(parts[1], path)
    kind = _kind(source, path, ctx)
    read_only, options = _short_options(parts[2] if len(parts) == 3 else "rw", kind, path)
    return _mount(kind, normal_path(source) if kind == "bind" else source, target, read_only, options, path)


def _short_options(text: str, kind: str, path: str) -> tuple[bool, dict]:
    read_only, options, seen = False, {}, set()
    for option in text.split(","):
        if option in seen:
            raise SpecError(path, f"option {shown(option)} is given twice")
        seen.add(option)
        if option in ("ro", "rw"):
            if {"ro", "rw"} <= seen:
                raise SpecError(path, "ro and rw contradict each other")
            read_only = option == "ro"
        elif option == "nocopy" and kind == "volume":
            options["nocopy"] = True
        elif option in PROPAGATIONS and kind == "bind":
            options["propagation"] = option
        elif option in ("z", "Z"):
            raise SpecError(path, f"SELinux relabelling ({option}) is not supported: gen does not relabel host files")
        else:
            raise SpecError(path, f"invalid option {shown(option)} for a {kind} (use ro or rw"
                                  + (", nocopy)" if kind == "volume" else ", or a propagation such as rshared)"))
    return read_only, options


def _kind(source: str, path: str, ctx) -> str:
    if source in ctx.volumes:
        return "volume"
    if source.startswith("/"):
        return "bind"
    if "/" in source or source.startswith((".", "~")):
        raise SpecError(path, f"bind source {shown(source)} must be an absolute path")
    raise SpecError(path, f"named volume {shown(source)} is not declared in [volumes]")


# -- { type = ..., ... } ------------------------------------------------------------------------------
def _table(table: dict, path: str, ctx) -> dict:
    check_keys(table, _TABLE_KEYS, path)
    kind = table.get("type")
    if kind not in ("volume", "bind", "tmpfs"):
        raise SpecError(f"{path}.type", "missing required key" if kind is None
                        else f"must be one of: volume, bind, tmpfs (got {shown(kind)})")
    for key, owner in _ONLY_FOR.items():
        if key in table and owner != kind:
            raise SpecError(f"{path}.{key}", f"is only for a {owner} mount")
    if "target" not in table:
        raise SpecError(f"{path}.target", "missing required key")
    target = _target(checked_string(table["target"], f"{path}.target"), f"{path}.target")
    read_only = _flag(table, "read_only", path)
    source = checked_string(table.get("source", ""), f"{path}.source")
    if kind == "volume" and source and source not in ctx.volumes:
        hint = " (a host path is type bind)" if "/" in source else ""
        raise SpecError(f"{path}.source", f"named volume {shown(source)} is not declared in [volumes]{hint}")
    if kind == "bind":
        if not source.startswith("/"):
            raise SpecError(f"{path}.source", "missing required key" if not source
                            else f"bind source {shown(source)} must be an absolute path")
        source = normal_path(source)
    if kind == "tmpfs" and source:
        raise SpecError(f"{path}.source", "a tmpfs mount has no source")
    return _mount(kind, source, target, read_only, _table_options(table, path), f"{path}.source")


def _table_options(table: dict, path: str) -> dict:
    options: dict = {}
    if "create_host_path" in table:
        options["create_host_path"] = _flag(table, "create_host_path", path)
    if "nocopy" in table:
        options["nocopy"] = _flag(table, "nocopy", path)
    if "propagation" in table:
        propagation = checked_string(table["propagation"], f"{path}.propagation")
        if propagation not in PROPAGATIONS:
            raise SpecError(f"{path}.propagation", f"must be one of: {', '.join(PROPAGATIONS)} (got {shown(propagation)})")
        options["propagation"] = propagation
    if "tmpfs_size" in table:
        options["tmpfs_size"] = parse_size(table["tmpfs_size"], f"{path}.tmpfs_size")
    if "tmpfs_mode" in table:
        options["tmpfs_mode"] = _mode(table["tmpfs_mode"], f"{path}.tmpfs_mode")
    return options


def _flag(table: dict, key: str, path: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", "must be true or false")
    return value


def _mode(value, path: str) -> int:
    if isinstance(value, str) and value and len(value) <= 5 and all(c in "01234567" for c in value):
        value = int(value, 8)
    if type(value) is not int or not 0 <= value <= 0o7777:
        raise SpecError(path, f'must be permission bits such as 0o1777 (TOML) or "1777", got {shown(value)}')
    return value


# -- the normal form ----------------------------------------------------------------------------------
def _target(text: str, path: str) -> str:
    if not text.startswith("/"):
        raise SpecError(path, f"target {shown(text)} must be an absolute path")
    if normal_path(text) == "/":
        raise SpecError(path, "cannot mount over the container's root /")
    return normal_path(text)


def _mount(kind: str, source: str, target: str, read_only: bool, options: dict, source_path: str) -> dict:
    """Mount with only the options that are not their default (absent = default: gen.model.types).
    source_path: the key path to blame for a bind source that must exist and does not."""
    mount = {"type": kind, "source": source, "target": target, "read_only": read_only}
    if options.get("create_host_path") is False:
        if not os.path.exists(source):
            raise SpecError(source_path, f"bind source {source} does not exist (create_host_path is false, "
                                         "so gen does not create it)")
        mount["create_host_path"] = False
    if options.get("nocopy"):
        mount["nocopy"] = True
    if options.get("propagation", DEFAULT_PROPAGATION) != DEFAULT_PROPAGATION:
        mount["propagation"] = options["propagation"]
    for key in ("tmpfs_size", "tmpfs_mode"):
        if key in options:
            mount[key] = options[key]
    return mount
