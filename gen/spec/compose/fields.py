"""Per-field converters for a Compose service: each takes a field's value and its Compose key path,
and returns what a gen.toml would hold there, or raises SpecError naming the Compose key.

They only translate syntax gen.toml lacks (long-form ports, depends_on options, `disable: true`,
label lists) and refuse what gen cannot honour; what is left, gen.spec checks as it checks a
gen.toml. Those that rename or split a key record it in `origins`, so later errors still name the
Compose key. Mounts, networks and build have modules of their own beside this one.
"""
from __future__ import annotations

import shlex

from gen.errors import SpecError
from gen.spec.compose.shape import Origins, check_compose_keys, checked_mapping, scalar_text
from gen.spec.fields import canonical_ip
from gen.spec.files import SECRETS_DIR
from gen.spec.messages import key_path, shown

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

def convert_port(item, path: str) -> str | dict:
    """The short syntax is gen.toml's own ("8080:80", "3000", "8000-8001:80-81"); the long one becomes it,
    or gen.toml's table when it says `mode: host` (a Swarm publishes it on the task's node; ingress, the
    default, is what `docker compose config` writes for every port: left out). `name` and `app_protocol`
    (labels for tools) change nothing gen does: accepted and ignored."""
    if isinstance(item, bool) or not isinstance(item, (int, str, dict)):
        raise SpecError(path, 'must be a string like "8080:80" or a mapping')
    if isinstance(item, int):
        return str(item)
    if isinstance(item, str):
        return item
    return _port_long(item, path)


def _port_long(item: dict, path: str) -> str | dict:
    port = checked_mapping(item, path)
    check_compose_keys(port, path, ("target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"))
    if "target" not in port:
        raise SpecError(f"{path}.target", "missing required key")
    target = _port_number_text(port["target"], f"{path}.target")
    published = _port_number_text(port["published"], f"{path}.published") if "published" in port else ""
    host_ip = port.get("host_ip", "")
    if not isinstance(host_ip, str):
        raise SpecError(f"{path}.host_ip", "must be a string")
    if host_ip:
        ip = canonical_ip(host_ip, False, f"{path}.host_ip")
        host_ip = f"[{ip}]:" if ":" in ip else f"{ip}:"
    protocol = port.get("protocol", "tcp")
    if not isinstance(protocol, str):
        raise SpecError(f"{path}.protocol", "must be a string")
    if port.get("mode", "ingress") not in ("host", "ingress"):
        raise SpecError(f"{path}.mode", f"must be host or ingress (got {shown(port['mode'])})")
    if port.get("mode") == "host":
        return {key: port[key] for key in ("target", "published", "host_ip", "protocol", "mode") if key in port}
    if host_ip or published:
        return f"{host_ip}{published}:{target}/{protocol}"
    return f"{target}/{protocol}"


def _port_number_text(value, path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        if isinstance(value, str) and "-" in value:
            raise SpecError(path, f"port range {shown(value)} is not supported here (Docker would pick one port "
                                  "of the range): publish one port, or write the range in the short syntax")
        raise SpecError(path, f"must be a port number (got {shown(value)})")
    return value


# ---------------------------------------------------------------- dependencies, health, labels, secrets

def convert_depends_on(value, path: str) -> list | dict:
    """The list form is gen.toml's; the mapping form becomes gen.toml's table NAME -> {condition,
    required, restart}, which gen.spec checks (gen.spec.relations)."""
    if isinstance(value, list):
        return value
    checked_mapping(value, path, "must be a list of service names or a mapping")
    return {dep: checked_mapping({} if options is None else options, key_path(path, dep))
            for dep, options in value.items()}


def convert_healthcheck(value, path: str, origins: Origins) -> dict:
    check = checked_mapping(value, path)
    check_compose_keys(check, path, ("test", "interval", "timeout", "retries", "start_period", "start_interval",
                                     "disable"))
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
    if "start_interval" in check:
        out["start_interval"] = check["start_interval"]
    return out


def key_value_items(items: list, path: str, origins: Origins, word: str = "key") -> dict[str, str]:
    """Compose's list form of a mapping: "key=value" strings (a bare key is an empty value); each key's
    origin is its item, so a later error names the item the user wrote."""
    table: dict[str, str] = {}
    for i, item in enumerate(items):
        sub = f"{path}[{i}]"
        if isinstance(item, (list, dict)) or item is None:
            raise SpecError(sub, f'must be a string "{word}=value"')
        key, _, text = scalar_text(item, sub).partition("=")
        table[key] = text
        origins.add(key_path(path, key), sub)
    return table


def convert_labels(value, path: str, origins: Origins) -> dict:
    labels: dict = {}
    if isinstance(value, list):
        labels = key_value_items(value, path, origins)
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
