"""Parse, validate and normalise a gen spec document (TOML; Compose files go through gen.spec.compose).

The result is plain data (str/int/bool/None/list/dict, never floats) with every key present
(format 3's only when not their default: gen.model.types), so the compiler can hash it canonically. Every problem is a SpecError whose
subject is the key path (`services.web.ports[0]`); nothing else escapes parse_spec, for
any input text. Image names are only checked for shape here: resolving them is the
compiler's job; secret and config files are only named here (gen.spec.files): reading them is the
compiler's job too.

build_spec() is the one validator: parse_spec feeds it what tomllib returns, and
gen.spec.compose feeds it a Compose file converted into the same TOML-shaped document, so both
formats get the same checks and the same normal form. The per-field parsers live in
gen.spec.fields (and ports, mounts, build, networks, files, options beside it), the generic checks
they are built from in gen.spec.validate; this module holds the document: its tables and the service
table. The checks across services (conditions, jobs, container names, host ports published twice)
are gen.spec.relations'; dependency cycles gen.model.graph's. Which reader a file goes to is
gen.spec.load's business.
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
from gen.model.types import Spec
from gen.spec.build import DEFAULT_PULL_POLICY, check_image_source, parse_build, parse_pull_policy
from gen.spec.fields import (parse_argv, parse_env, parse_healthcheck, parse_image, parse_labels, parse_restart,
                             parse_user, parse_working_dir)
from gen.spec.files import check_file_mounts, declared_files, parse_configs, parse_secrets, pin_read_only_files
from gen.spec.messages import one_line, shown
from gen.spec.mounts import parse_mounts, writes_host_data
from gen.spec.networks import (DEFAULT, declared_networks, parse_network_mode, parse_service_networks,
                               used_networks)
from gen.spec.options import OPTION_KEYS, check_network_mode, container_options
from gen.spec.ports import parse_ports
from gen.spec.profiles import select_services
from gen.spec.relations import parse_container_name, parse_depends_on, parse_job, relate
from gen.spec.swarmkeys import parse_endpoint_mode, parse_placement
from gen.spec.validate import (NAME_RULE, check_keys, checked_names, checked_string, checked_table,
                               duration_at_least, int_in, one_of, parse_table)


@dataclass(frozen=True)
class _Context:
    """What a service may refer to: declared volumes, secrets, configs, networks and sibling services
    (and those profiles left out); the spec's folder, and the read-only files from it that services
    mount (pinned as configs, gen.spec.files); where each port came from (gen.spec.ports)."""
    volumes: frozenset
    services: frozenset
    secrets: frozenset = frozenset()
    configs: frozenset = frozenset()
    base_dir: str = "/"
    pinned: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)
    inactive: frozenset = frozenset()
    port_paths: dict = field(default_factory=dict)


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


def parse_spec(text: str, source: str = "<string>", base_dir: str | None = None, profiles=()) -> Spec:
    """Relative paths in the spec (secret files) are resolved against base_dir (default: the cwd);
    `profiles`: the service profiles to enable (gen.spec.profiles)."""
    try:
        doc = tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError, and int() refusing >4300 digits
        raise SpecError(source, f"invalid TOML: {one_line(str(err))}") from None
    except RecursionError:     # tomllib recurses on nested arrays / inline tables
        raise SpecError(source, "invalid TOML: nested too deeply") from None
    return build_spec(doc, source, base_dir, profiles=profiles)


def build_spec(doc: dict, source: str = "<string>", base_dir: str | None = None,
               origin: Callable[[str], str] | None = None, profiles=()) -> Spec:
    """Validate and normalise a TOML-shaped document (what tomllib returns for a gen.toml).

    origin(subject), when given, maps a key path of `doc` to the key the user actually wrote
    (another front end converted it into this shape); errors are re-raised with that subject.
    profiles: the service profiles to enable (services without profiles are always in).
    """
    try:
        return _build(doc, source, base_dir, profiles)
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


def _build(doc: dict, source: str, base_dir: str | None, profiles) -> Spec:
    if not isinstance(doc, dict):
        raise SpecError(source, "the document must be a table")
    check_keys(doc, ("name", "services", "volumes", "secrets", "configs", "networks"), "")
    name = _profile_name(doc["name"]) if "name" in doc else None
    volumes = _declared_volumes(doc.get("volumes", {}))
    folder = resolve_base_dir(base_dir)
    secrets = declared_files(doc.get("secrets", {}), "secrets", folder)
    configs = declared_files(doc.get("configs", {}), "configs", folder)
    networks = declared_networks(doc.get("networks", {}))
    table = checked_table(doc.get("services", {}), "services")
    checked_names(table, "services")
    table, inactive = select_services(table, profiles)
    names = sorted(table)
    ctx = _Context(frozenset(volumes), frozenset(names), frozenset(secrets), frozenset(configs), folder,
                   networks=networks, inactive=inactive)
    services = {name_: _service(name_, table[name_], ctx) for name_ in names}
    relate(services, {n: ctx.port_paths.get(f"services.{n}.ports", []) for n in names})
    start_order(services)  # raises on dependency cycles
    return Spec(name, services, volumes, source, secrets, {**configs, **dict(sorted(ctx.pinned.items()))},
                used_networks(networks, services))


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
    "image": ("image", parse_image, None),                                     # None: only built (image "")
    "build": ("build", parse_build, None),
    "pull_policy": ("pull_policy", parse_pull_policy, DEFAULT_PULL_POLICY),
    "command": ("command", parse_argv, None),
    "entrypoint": ("entrypoint", parse_argv, None),
    "env": ("env", parse_env, {}),
    "ports": ("ports", parse_ports, []),
    "volumes": ("volumes", parse_mounts, []),
    "depends_on": ("depends_on", parse_depends_on, []),
    "replicas": ("replicas", int_in(1, 100), 1),
    "update": ("update", one_of("start-first", "stop-first"), None),      # None: chosen by default_update
    "stop_grace": ("stop_grace_ms", duration_at_least(0), "10s"),
    "restart": ("restart", parse_restart, None),                          # None: by relations.relate (jobs: "no")
    "healthcheck": ("healthcheck", parse_healthcheck, None),
    "secrets": ("secrets", parse_secrets, []),
    "configs": ("configs", parse_configs, []),
    "labels": ("labels", parse_labels, {}),
    "user": ("user", parse_user, None),
    "working_dir": ("working_dir", parse_working_dir, None),
    "container_name": ("container_name", parse_container_name, None),
    "networks": ("networks", parse_service_networks, None),
    "network_mode": ("network_mode", parse_network_mode, None),
    "job": ("job", parse_job, False),
    "placement": ("placement", parse_placement, None),               # Swarm only (gen.spec.swarmkeys)
    "endpoint_mode": ("endpoint_mode", parse_endpoint_mode, None),
}
# Keys left out of the normal form when they hold their default (gen.model.types: format 3).
_ABSENT_WHEN = {"build": None, "pull_policy": DEFAULT_PULL_POLICY, "container_name": None, "networks": None,
                "network_mode": None, "job": False, "conditions": {}, "placement": None, "endpoint_mode": None}


def _service(name: str, value: object, ctx: _Context) -> dict:
    path = f"services.{name}"
    table = checked_table(value, path)
    check_keys(table, OPTION_KEYS | set(_SERVICE_FIELDS), path)
    options = container_options({k: v for k, v in table.items() if k in OPTION_KEYS}, path)
    service = {"name": name, **parse_table({k: v for k, v in table.items() if k not in OPTION_KEYS},
                                           _SERVICE_FIELDS, path, ctx)}
    service["image"] = service["image"] or ""
    dependencies = service["depends_on"]
    service["depends_on"] = sorted(dependencies)
    service["conditions"] = {dep: when for dep, when in dependencies.items() if when != "started"}
    if service["networks"] == {DEFAULT: {}}:
        service["networks"] = None      # absent means the default network alone
    for key, default in _ABSENT_WHEN.items():
        if service[key] == default:
            del service[key]
    if options:
        service["options"] = options
    check_image_source(service, path)
    _check_network_use(service, table, path)
    check_network_mode(options, service.get("network_mode"), path)
    check_file_mounts(service, path)
    pin_read_only_files(service, path, ctx.base_dir, ctx.pinned)
    if service["update"] is None:
        service["update"] = default_update(service)
    elif service["update"] == "start-first" and "container_name" in service:
        raise SpecError(f"{path}.update", "start-first needs old and new side by side, and a container_name "
                                          "names only one container: leave update out (stop-first)")
    return service


def _check_network_use(service: dict, table: dict, path: str) -> None:
    """network_mode replaces the service's networks, and Docker publishes no port there."""
    if "network_mode" not in service:
        return
    if "networks" in table:
        raise SpecError(f"{path}.network_mode", "cannot be combined with networks (the service joins no "
                                                "network of its own)")
    if service["ports"]:
        raise SpecError(f"{path}.ports", f"cannot publish ports with network_mode {shown(service['network_mode'])} "
                                         "(Docker refuses or drops them)")


def default_update(service: dict) -> str:
    """stop-first for a service that writes a named volume or a bind (two processes writing one data
    directory corrupt it: two postgres on one volume), start-first otherwise. Asked for explicitly,
    either order is kept. A service with a container_name cannot run twice: stop-first."""
    if "container_name" in service or any(writes_host_data(mount) for mount in service["volumes"]):
        return "stop-first"
    return "start-first"
