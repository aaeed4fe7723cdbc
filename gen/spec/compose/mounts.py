"""A Compose service's `volumes` -> gen.toml's (gen.spec.mounts checks what comes out).

The short syntax is gen.toml's own string ("data:/data:ro", "./src:/src", "/anonymous"), its host path
already absolute (gen.spec.compose.paths). The long syntax becomes gen.toml's table:
- type volume (no source: an anonymous volume), bind or tmpfs; npipe, image and cluster are refused;
- read_only; bind.propagation; volume.nocopy; tmpfs.size and tmpfs.mode;
- bind.create_host_path, as Compose has it: a bind without a `bind:` mapping creates a missing source
  (Docker's old binds do), one with a `bind:` mapping does not unless it says create_host_path: true
  (Compose then uses the mount API, which refuses a missing source);
- consistency only matters to Docker Desktop on macOS: accepted and ignored;
- bind.selinux (relabelling host files), bind.recursive and volume.subpath (engine API 1.45 and later;
  gen's engine is 1.41) are refused with the reason.
"""
from __future__ import annotations

from gen.errors import SpecError
from gen.spec.compose.shape import Origins, check_compose_keys, checked_mapping
from gen.spec.messages import shown

_TYPES = ("volume", "bind", "tmpfs")
_NEWER_ENGINE = "not supported: it needs Docker engine API 1.45 or later (gen's engine is 20.10, API 1.41)"
_OPTION_KEYS = {
    "bind": (("propagation", "create_host_path"), {"selinux": "not supported: gen does not relabel host files "
                                                              "(SELinux)", "recursive": _NEWER_ENGINE}),
    "volume": (("nocopy",), {"subpath": _NEWER_ENGINE, "labels": "not supported: gen labels its volumes itself"}),
    "tmpfs": (("size", "mode"), {}),
}


def convert_mount(item, path: str, origins: Origins):
    if isinstance(item, dict):
        return _long(item, path, origins)
    if not isinstance(item, str):
        raise SpecError(path, 'must be a string like "data:/data" or a mapping')
    return item


def _long(item: dict, path: str, origins: Origins) -> dict:
    mount = checked_mapping(item, path)
    check_compose_keys(mount, path, ("type", "source", "target", "read_only", "consistency", *_TYPES),
                       {"image": _NEWER_ENGINE, "npipe": "not supported on Linux engines"})
    kind = mount.get("type")
    if kind is None:
        raise SpecError(f"{path}.type", "missing required key")
    if kind not in _TYPES:
        raise SpecError(f"{path}.type", f"{shown(kind)} is not supported (use volume, bind or tmpfs)")
    out = {key: mount[key] for key in ("type", "source", "target", "read_only") if key in mount}
    if kind == "volume" and out.get("source") == "":
        del out["source"]
    for section in _TYPES:
        if section in mount and section != kind:
            raise SpecError(f"{path}.{section}", f"is only for a {section} mount (this one is type {kind})")
    options = checked_mapping(mount.get(kind, {}), f"{path}.{kind}") if kind in mount else None
    if options is not None:
        supported, refused = _OPTION_KEYS[kind]
        check_compose_keys(options, f"{path}.{kind}", supported, refused)
        for key, value in options.items():
            name = f"tmpfs_{key}" if kind == "tmpfs" else key
            out[name] = value
            origins.add(f"{path}.{name}", f"{path}.{kind}.{key}")
    if kind == "bind" and options is not None and "create_host_path" not in options:
        out["create_host_path"] = False     # Compose's mount API: a missing source is an error
        origins.add(f"{path}.create_host_path", f"{path}.bind")
    return out
