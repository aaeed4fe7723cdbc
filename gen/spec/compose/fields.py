"""Per-field converters for a Compose service: each takes a field's value and its Compose key path,
and returns what a gen.toml would hold there, or raises SpecError naming the Compose key.

They only translate syntax gen.toml lacks (long-form ports and mounts, depends_on conditions,
`disable: true`, label lists) and refuse what gen cannot honour; what is left, gen.spec checks
as it checks a gen.toml. Those that rename or split a key record it in `origins`, so later
errors still name the Compose key; mounts resolve host paths through the converter's
`host_path`, which knows the Compose file's directory and HOME.
"""
from __future__ import annotations

import shlex
from typing import Callable

from gen.errors import SpecError
from gen.model.naming import NAME_RE
from gen.spec.compose.shape import Origins, check_compose_keys, checked_mapping, scalar_text
from gen.spec.fields import canonical_ip
from gen.spec.files import SECRETS_DIR
from gen.spec.messages import key_path, shown

HostPath = Callable[[str, str], str]  # (host path as written, key path) -> absolute host path

# Compose's defaults where they differ from gen.toml's (applied before validation).
HEALTHCHECK_DEFAULTS = {"interval": "30s", "timeout": "30s", "retries": 3, "start_period": "0s"}


# ---------------------------------------------------------------- command, entrypoint

def convert_argv(value, path: str, origins: Origins):
    if isinstance(value, str):  # Compose splits a string the way a shell would
        origins.add(path, path, whole=True)
        try:
            return shlex.split(value)
        except ValueError as err:
            raise SpecError(path, f"cannot split {shown(value)} into words: {str(err).lower()}") from None
    if not isinstance(value, list):
        raise SpecError(path, "must be a string or a list of strings")
    return value


# ---------------------------------------------------------------- ports

def convert_port(item, path: str) -> str:
    if isinstance(item, bool) or not isinstance(item, (int, str, dict)):
        raise SpecError(path, 'must be a string like "8080:80" or a mapping')
    if isinstance(item, int):
        raise SpecError(path, _no_host_port(str(item)))
    if isinstance(item, str):
        return _port_short(item, path)
    return _port_long(item, path)


def _port_short(text: str, path: str) -> str:
    spec = text.partition("/")[0]
    if "-" in spec:
        raise SpecError(path, f"port range {shown(text)} is not supported (publish each port on its own)")
    if spec.startswith("["):
        end = spec.find("]")
        parts = spec[end + 2:].split(":") if end > 0 else []
        host = parts[0] if len(parts) == 2 else None
    else:
        parts = spec.split(":")
        host = None if len(parts) == 1 else parts[-2]
    if host == "" or (host is None and spec and ":" not in spec):
        raise SpecError(path, _no_host_port(text))
    return text  # the rest is gen's own port syntax, checked by gen.spec


def _port_long(item: dict, path: str) -> str:
    port = checked_mapping(item, path)
    check_compose_keys(port, path, ("target", "published", "host_ip", "protocol", "mode"),
                       {"name": None, "app_protocol": None})
    if "target" not in port:
        raise SpecError(f"{path}.target", "missing required key")
    target = _port_number_text(port["target"], f"{path}.target")
    if "published" not in port:
        raise SpecError(path, _no_host_port(target))
    published = _port_number_text(port["published"], f"{path}.published")
    host_ip = port.get("host_ip", "")
    if not isinstance(host_ip, str):
        raise SpecError(f"{path}.host_ip", "must be a string")
    if host_ip:
        ip = canonical_ip(host_ip, False, f"{path}.host_ip")
        host_ip = f"[{ip}]:" if ":" in ip else f"{ip}:"
    protocol = port.get("protocol", "tcp")
    if not isinstance(protocol, str):
        raise SpecError(f"{path}.protocol", "must be a string")
    if port.get("mode", "host") != "host":
        raise SpecError(f"{path}.mode", f"{shown(port['mode'])} is not supported: only mode: host "
                                        "(gen publishes ports on the engine's host)")
    return f"{host_ip}{published}:{target}/{protocol}"


def _port_number_text(value, path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        if isinstance(value, str) and "-" in value:
            raise SpecError(path, f"port range {shown(value)} is not supported (publish each port on its own)")
        raise SpecError(path, f"must be a port number (got {shown(value)})")
    return value


def _no_host_port(text: str) -> str:
    return (f"port {shown(text)} has no host port: gen publishes fixed host ports only "
            '(write "HOST:CONTAINER", e.g. "8080:80")')


# ---------------------------------------------------------------- volumes

def convert_mount(item, path: str, host_path: HostPath) -> str:
    if isinstance(item, dict):
        return _mount_long(item, path, host_path)
    if not isinstance(item, str):
        raise SpecError(path, 'must be a string like "data:/data" or a mapping')
    parts = item.split(":")
    if len(parts) == 1:
        raise SpecError(path, _anonymous(item))
    if parts[0].startswith((".", "~")):  # a host path relative to the compose file, or the home directory
        parts[0] = _no_colon(host_path(parts[0], path), path)
    return ":".join(parts)


def _mount_long(item: dict, path: str, host_path: HostPath) -> str:
    mount = checked_mapping(item, path)
    check_compose_keys(mount, path, ("type", "source", "target", "read_only"),
                {"bind": None, "volume": None, "tmpfs": None, "image": None, "consistency": None})
    kind = mount.get("type")
    if kind is None:
        raise SpecError(f"{path}.type", "missing required key")
    if kind not in ("volume", "bind"):
        raise SpecError(f"{path}.type", f"{shown(kind)} is not supported (use volume or bind)")
    for key in ("source", "target"):
        if key in mount and not isinstance(mount[key], str):
            raise SpecError(f"{path}.{key}", "must be a string")
    if "target" not in mount:
        raise SpecError(f"{path}.target", "missing required key")
    if not mount.get("source"):
        if kind == "volume":
            raise SpecError(path, _anonymous(mount["target"]))
        raise SpecError(f"{path}.source", "missing required key")
    source = mount["source"]
    if kind == "volume" and not NAME_RE.match(source):
        raise SpecError(f"{path}.source", f"{shown(source)} is not a volume name (for a host path use type: bind)")
    if kind == "bind":
        source = host_path(source, f"{path}.source")
    read_only = mount.get("read_only", False)
    if not isinstance(read_only, bool):
        raise SpecError(f"{path}.read_only", "must be true or false")
    source = _no_colon(source, f"{path}.source")
    target = _no_colon(mount["target"], f"{path}.target")
    return f"{source}:{target}" + (":ro" if read_only else "")


def _anonymous(target: str) -> str:
    return (f"anonymous volume {shown(target)} is not supported: name it (and declare it under the "
            "top-level volumes) or bind a host path")


def _no_colon(text: str, path: str) -> str:
    if ":" in text:
        raise SpecError(path, f"{shown(text)}: paths containing ':' are not supported")
    return text


# ---------------------------------------------------------------- dependencies, health, labels, secrets

def convert_depends_on(value, path: str, origins: Origins) -> list:
    if isinstance(value, list):
        return value  # gen.spec checks the names
    checked_mapping(value, path, "must be a list of service names or a mapping")
    for i, (dep, condition) in enumerate(list(value.items())):
        sub = key_path(path, dep)
        origins.add(f"{path}[{i}]", sub)
        options = checked_mapping({} if condition is None else condition, sub)
        check_compose_keys(options, sub, ("condition", "required", "restart"))
        when = options.get("condition", "service_started")
        if when == "service_completed_successfully":
            raise SpecError(f"{sub}.condition", "service_completed_successfully is not supported yet "
                                                "(gen has no one-shot services)")
        if when not in ("service_started", "service_healthy"):
            raise SpecError(f"{sub}.condition", f"must be service_started or service_healthy (got {shown(when)})")
        if options.get("required", True) is not True:
            raise SpecError(f"{sub}.required", "only true is supported (gen always starts dependencies)")
        if options.get("restart", False) is not False:
            raise SpecError(f"{sub}.restart", "only false is supported")
    return list(value)  # both conditions hold: gen starts a service after its dependencies are healthy


def convert_healthcheck(value, path: str, origins: Origins) -> dict:
    check = checked_mapping(value, path)
    check_compose_keys(check, path, ("test", "interval", "timeout", "retries", "start_period", "disable"),
                {"start_interval": None})
    out = {}
    disable = check.get("disable", False)
    if not isinstance(disable, bool):
        raise SpecError(f"{path}.disable", "must be true or false")
    if disable:
        if "test" in check:
            raise SpecError(f"{path}.disable", "cannot be combined with test")
        out["test"] = ["NONE"]
        origins.add(f"{path}.test", f"{path}.disable")
    elif "test" in check:
        out["test"] = check["test"]
    else:
        raise SpecError(f"{path}.test", "missing required key (gen does not take the image's HEALTHCHECK; "
                                        "give test, or disable: true)")
    for key, default in HEALTHCHECK_DEFAULTS.items():
        out[key] = check.get(key, default)
    return out


def convert_labels(value, path: str, origins: Origins) -> dict:
    labels: dict = {}
    if isinstance(value, list):
        for i, item in enumerate(value):
            sub = f"{path}[{i}]"
            if isinstance(item, (list, dict)) or item is None:
                raise SpecError(sub, 'must be a string "key=value"')
            key, _, text = scalar_text(item, sub).partition("=")
            labels[key] = text
            origins.add(key_path(path, key), sub)
    elif isinstance(value, dict):
        for key, item in value.items():
            sub = key_path(path, key)
            labels[key] = "" if item is None else scalar_text(item, sub)
    else:
        raise SpecError(path, "must be a list of key=value strings or a mapping")
    return labels


def convert_secret_ref(item, path: str):
    if not isinstance(item, dict):
        return item  # a name; gen.spec checks it is declared
    ref = checked_mapping(item, path)
    check_compose_keys(ref, path, ("source", "target"), {"uid": None, "gid": None, "mode": None})
    if "source" not in ref:
        raise SpecError(f"{path}.source", "missing required key")
    source = ref["source"]
    if "target" in ref and ref["target"] not in (source, f"{SECRETS_DIR}/{source}"):
        raise SpecError(f"{path}.target", f"only the default target ({SECRETS_DIR}/<source>) is supported")
    return source


def convert_config_ref(item, path: str):
    """A service's config: a name (mounted at /<name>) or {source, target, uid, gid, mode}, which is
    gen.toml's own table; gen.spec checks it."""
    if not isinstance(item, dict):
        return item
    ref = checked_mapping(item, path)
    check_compose_keys(ref, path, ("source", "target", "uid", "gid", "mode"))
    return ref
