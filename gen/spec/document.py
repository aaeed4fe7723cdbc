"""Parse, validate and normalise a gen spec document (TOML; Compose files go through gen.spec.compose).

The result is plain data (str/int/bool/None/list/dict, never floats) with every key
present, so the compiler can hash it canonically. Every problem is a SpecError whose
subject is the key path (`services.web.ports[0]`); nothing else escapes parse_spec, for
any input text. Image names are only checked for shape here: resolving them is the
compiler's job; secret and config files are only named here (gen.spec.files): reading them is the
compiler's job too.

build_spec() is the one validator: parse_spec feeds it what tomllib returns, and
gen.spec.compose feeds it a Compose file converted into the same TOML-shaped document, so both
formats get the same checks and the same normal form. The per-field parsers live in
gen.spec.fields, the generic checks they are built from in gen.spec.validate; this module holds
the document: its tables, the service table, and the checks across services (dependency cycles,
host ports published twice). Which reader a file goes to is gen.spec.load's business.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Callable

from gen.errors import SpecError
from gen.model.graph import start_order
from gen.model.naming import NAME_RE
from gen.model.ports import addresses_overlap
from gen.model.types import Spec
from gen.spec.fields import (parse_argv, parse_depends_on, parse_env, parse_healthcheck, parse_image, parse_labels,
                             parse_mounts, parse_ports, parse_restart, parse_user, parse_working_dir)
from gen.spec.files import check_file_mounts, declared_files, parse_configs, parse_secrets, pin_read_only_files
from gen.spec.messages import one_line, shown
from gen.spec.options import OPTION_KEYS, container_options
from gen.spec.validate import (NAME_RULE, REQUIRED, check_keys, checked_names, checked_string, checked_table,
                               duration_at_least, int_in, one_of, parse_table)


@dataclass(frozen=True)
class _Context:
    """What a service may refer to: declared volumes, secrets, configs and sibling services; the spec's
    folder, and the read-only files from it that services mount (pinned as configs, gen.spec.files)."""
    volumes: frozenset
    services: frozenset
    secrets: frozenset = frozenset()
    configs: frozenset = frozenset()
    base_dir: str = "/"
    pinned: dict = field(default_factory=dict)


# ---------------------------------------------------------------- entry points

def read_text(path: str, subject: str, what: str) -> str:
    """A UTF-8 text file (a BOM is tolerated); any failure is a SpecError about `subject`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        raise SpecError(subject, f"cannot read {what}: {one_line(str(err.strerror or err))}") from None
    except ValueError:  # a NUL in the path
        raise SpecError(subject, f"cannot read {what}: the path contains a NUL character") from None
    try:
        return data.decode("utf-8-sig")  # tolerate the BOM some editors write
    except UnicodeDecodeError as err:
        raise SpecError(subject, f"{what} is not UTF-8 text (bad byte at offset {err.start})") from None


def parse_spec(text: str, source: str = "<string>", base_dir: str | None = None) -> Spec:
    """Relative paths in the spec (secret files) are resolved against base_dir (default: the cwd)."""
    try:
        doc = tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError, and int() refusing >4300 digits
        raise SpecError(source, f"invalid TOML: {one_line(str(err))}") from None
    except RecursionError:     # tomllib recurses on nested arrays / inline tables
        raise SpecError(source, "invalid TOML: nested too deeply") from None
    return build_spec(doc, source, base_dir)


def build_spec(doc: dict, source: str = "<string>", base_dir: str | None = None,
               origin: Callable[[str], str] | None = None) -> Spec:
    """Validate and normalise a TOML-shaped document (what tomllib returns for a gen.toml).

    origin(subject), when given, maps a key path of `doc` to the key the user actually wrote
    (another front end converted it into this shape); errors are re-raised with that subject.
    """
    try:
        return _build(doc, source, base_dir)
    except SpecError as err:
        if origin is None:
            raise
        raise SpecError(origin(err.subject), err.reason) from None


def resolve_base_dir(base_dir: str | None) -> str:
    """The absolute directory relative paths in a spec start from (None: the cwd)."""
    try:
        return os.path.abspath(os.getcwd() if base_dir is None else base_dir)
    except OSError as err:  # the cwd was removed under us
        raise SpecError("<cwd>", f"cannot resolve relative paths: {err.strerror or err}") from None


def _build(doc: dict, source: str, base_dir: str | None) -> Spec:
    if not isinstance(doc, dict):
        raise SpecError(source, "the document must be a table")
    check_keys(doc, ("name", "services", "volumes", "secrets", "configs"), "")
    name = _profile_name(doc["name"]) if "name" in doc else None
    volumes = _declared_volumes(doc.get("volumes", {}))
    folder = resolve_base_dir(base_dir)
    secrets = declared_files(doc.get("secrets", {}), "secrets", folder)
    configs = declared_files(doc.get("configs", {}), "configs", folder)
    table = checked_table(doc.get("services", {}), "services")
    names = checked_names(table, "services")
    ctx = _Context(frozenset(volumes), frozenset(names), frozenset(secrets), frozenset(configs), folder)
    services = {name_: _service(name_, table[name_], ctx) for name_ in names}
    _check_port_conflicts(services)
    start_order(services)  # raises on dependency cycles
    return Spec(name, services, volumes, source, secrets, {**configs, **dict(sorted(ctx.pinned.items()))})


# ---------------------------------------------------------------- fields

def _profile_name(value: object) -> str:
    if not NAME_RE.match(checked_string(value, "name")):
        raise SpecError("name", NAME_RULE)
    return value


def _declared_volumes(value: object) -> dict[str, dict]:
    """[volumes.NAME]: a volume of the deployment (created as <profile>_NAME, owned by the profile), or
    `external = true` (with an optional `name`, default NAME): the user's volume, used as it is, never
    created or removed by gen. An owned volume's options stay {} so its manifest never changes."""
    table = checked_table(value, "volumes")
    out = {}
    for name in checked_names(table, "volumes"):
        path = f"volumes.{name}"
        options = checked_table(table[name], path)
        check_keys(options, ("external", "name"), path)
        external = options.get("external", False)
        if not isinstance(external, bool):
            raise SpecError(f"{path}.external", "must be true or false")
        if "name" in options and not external:
            raise SpecError(f"{path}.name", "is only for an external volume (gen names its own <profile>_NAME)")
        out[name] = {"external": True, "name": _docker_volume_name(options.get("name", name), f"{path}.name")} \
            if external else {}
    return dict(sorted(out.items()))


_DOCKER_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")


def _docker_volume_name(value: object, path: str) -> str:
    name = checked_string(value, path, empty_ok=False)
    if not _DOCKER_VOLUME_NAME.fullmatch(name):
        raise SpecError(path, f"{shown(name)} is not a Docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    return name


# key -> (normalised key, parser, default as written in TOML); order = normalised dict order
_SERVICE_FIELDS = {
    "image": ("image", parse_image, REQUIRED),
    "command": ("command", parse_argv, None),
    "entrypoint": ("entrypoint", parse_argv, None),
    "env": ("env", parse_env, {}),
    "ports": ("ports", parse_ports, []),
    "volumes": ("volumes", parse_mounts, []),
    "depends_on": ("depends_on", parse_depends_on, []),
    "replicas": ("replicas", int_in(1, 100), 1),
    "update": ("update", one_of("start-first", "stop-first"), None),      # None: chosen by default_update
    "stop_grace": ("stop_grace_ms", duration_at_least(0), "10s"),
    "restart": ("restart", parse_restart, "unless-stopped"),
    "healthcheck": ("healthcheck", parse_healthcheck, None),
    "secrets": ("secrets", parse_secrets, []),
    "configs": ("configs", parse_configs, []),
    "labels": ("labels", parse_labels, {}),
    "user": ("user", parse_user, None),
    "working_dir": ("working_dir", parse_working_dir, None),
}


def _service(name: str, value: object, ctx: _Context) -> dict:
    path = f"services.{name}"
    table = checked_table(value, path)
    options = container_options({k: v for k, v in table.items() if k in OPTION_KEYS}, path)
    service = {"name": name, **parse_table({k: v for k, v in table.items() if k not in OPTION_KEYS},
                                           _SERVICE_FIELDS, path, ctx)}
    if options:
        service["options"] = options
    if service["replicas"] > 1 and service["ports"]:
        # On one engine, two containers cannot bind the same host port: fail now, not mid-switch.
        port = service["ports"][0]
        raise SpecError(f"{path}.replicas", f"{service['replicas']} replicas cannot all publish "
                                            f"host port {port['host_port']}/{port['protocol']}")
    check_file_mounts(service, path)
    pin_read_only_files(service, path, ctx.base_dir, ctx.pinned)
    if service["update"] is None:
        service["update"] = default_update(service)
    return service


def default_update(service: dict) -> str:
    """stop-first for a service that writes a named volume or a bind (two processes writing one data
    directory corrupt it: two postgres on one volume), start-first otherwise. Asked for explicitly,
    either order is kept."""
    return "stop-first" if writes_host_data(service) else "start-first"


def writes_host_data(service: dict) -> bool:
    return any(not mount["read_only"] for mount in service["volumes"])


# ---------------------------------------------------------------- cross-service checks

def _check_port_conflicts(services: dict[str, dict]) -> None:
    seen: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for name in sorted(services):
        for i, port in enumerate(services[name]["ports"]):
            path, key = f"services.{name}.ports[{i}]", (port["host_port"], port["protocol"])
            for other_ip, other_path in seen.get(key, []):
                if addresses_overlap(port["host_ip"], other_ip):
                    raise SpecError(path, f"host port {key[0]}/{key[1]} is already published by {other_path}")
            seen.setdefault(key, []).append((port["host_ip"], path))
