"""Compose's merge rules, for `extends` (a service on top of its base) and for several files.

As compose-go merges (compose-spec "merge" rules), on prepared data (gen.spec.compose.yamlfile):
- mappings merge key by key, recursively; a scalar of the override replaces the base's;
- sequences are appended, except where an entry is identified by a key, and then the override's
  entry takes the base's place: volumes (by target), secrets and configs (by target), env_file (by
  path), ports and other lists of values (cap_add, dns, expose, ...: by value);
- command, entrypoint and healthcheck.test are replaced whole;
- environment, labels, build.args, build.labels, sysctls, annotations: the list and mapping forms
  merge as mappings (`A=1` is A: "1"); depends_on and networks: a list is a mapping of names;
- build as a string is build.context; logging with another driver replaces the base's whole.
A null in the override leaves the base's value.
"""
from __future__ import annotations

_REPLACED = ("command", "entrypoint")
_KEY_VALUE = ("environment", "labels", "sysctls", "annotations")
_NAMED = ("depends_on", "networks")
_BY_VALUE = ("cap_add", "cap_drop", "dns", "dns_opt", "dns_search", "expose", "ports", "profiles", "extra_hosts",
             "tmpfs", "security_opt", "group_add", "links", "external_links", "devices", "device_cgroup_rules")


def merge_service(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.setdefault(key, None)
        elif out.get(key) is None:
            out[key] = value
        else:
            out[key] = _merge_key(key, out[key], value)
    return out


def _merge_key(key: str, base, value):
    if key in _REPLACED:
        return value
    if key in _KEY_VALUE or key in _NAMED:
        as_map = as_mapping if key in _KEY_VALUE else as_names
        both = as_map(base), as_map(value)
        # a shape Compose does not have: the override's value stays, for the converter to report
        return value if None in both else _merge_maps(*both)
    if key == "build":
        return _merge_build(base, value)
    if key == "healthcheck" and isinstance(base, dict) and isinstance(value, dict):
        return {**_merge_maps(base, {k: v for k, v in value.items() if k != "test"}),
                **({"test": value["test"]} if "test" in value else {})}
    if key == "logging" and isinstance(base, dict) and isinstance(value, dict):
        if value.get("driver") not in (None, base.get("driver")):
            return value
        return _merge_maps(base, value)
    if key == "env_file":
        base, value = ([item] if isinstance(item, str) else item for item in (base, value))
    if isinstance(base, list) and isinstance(value, list):
        return unique(base + value, _IDENTITY.get(key, _by_value if key in _BY_VALUE else None))
    if isinstance(base, dict) and isinstance(value, dict):
        return _merge_maps(base, value)
    return value


def _merge_maps(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge_maps(out[key], value)
        elif value is not None or key not in out:
            out[key] = value
    return out


def _merge_build(base, value):
    base = {"context": base} if isinstance(base, str) else base
    value = {"context": value} if isinstance(value, str) else value
    if not (isinstance(base, dict) and isinstance(value, dict)):
        return value
    out = _merge_maps(base, value)
    for key in ("args", "labels"):
        both = as_mapping(base.get(key) or {}), as_mapping(value.get(key) or {})
        if key in out and None not in both:
            out[key] = _merge_maps(*both)
    return out


def as_mapping(value) -> dict | None:
    """["A=1", "B"] -> {"A": "1", "B": None}; a mapping stays one; None for any other shape."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return {key: text if equals else None for key, equals, text in (item.partition("=") for item in value)}


def as_names(value) -> dict | None:
    """[a, b] -> {a: None, b: None} (depends_on, networks); a mapping stays one; None for any other shape."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return dict.fromkeys(value)


def unique(items: list, identity) -> list:
    """Entries with the same identity: the later one takes the earlier one's place. identity None: all kept."""
    if identity is None:
        return items
    out, index = [], {}
    for item in items:
        key = identity(item)
        key = None if key is None else repr(key)      # any YAML value, hashable
        if key is not None and key in index:
            out[index[key]] = item
            continue
        if key is not None:
            index[key] = len(out)
        out.append(item)
    return out


def _by_value(item):
    return repr(item)


def _volume_target(item):
    if isinstance(item, dict):
        return item.get("target")
    if isinstance(item, str):
        parts = item.split(":")
        return parts[0] if len(parts) == 1 else parts[1]
    return None


def _mount_target(default_dir: str):
    def identity(item):
        if isinstance(item, str):
            return f"{default_dir}/{item}"
        if isinstance(item, dict):
            return item.get("target") or f"{default_dir}/{item.get('source')}"
        return None
    return identity


def _env_file_path(item):
    return item.get("path") if isinstance(item, dict) else item


_IDENTITY = {"volumes": _volume_target, "secrets": _mount_target("/run/secrets"), "configs": _mount_target(""),
             "env_file": _env_file_path}
