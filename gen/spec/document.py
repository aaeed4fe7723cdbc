"""Parse, validate and normalise a gen spec (TOML; Compose files go through gen.compose).

The result is plain data (str/int/bool/None/list/dict, never floats) with every key
present, so the compiler can hash it canonically. Every problem is a SpecError whose
subject is the key path (`services.web.ports[0]`); nothing else escapes parse_spec, for
any input text. Image names are only checked for shape here: resolving them is the
compiler's job; secret files are only named here: reading them is the compiler's job too.

build_spec() is the one validator: parse_spec feeds it what tomllib returns, and
gen.compose feeds it a Compose file converted into the same TOML-shaped document, so both
formats get the same checks and the same normal form. The per-field parsers live in gen.fields,
the generic checks they are built from in gen.validate; this module holds the document: its
tables, the service table, and the checks across services (dependency cycles, host ports
published twice).
"""
from __future__ import annotations

import ipaddress
import os
import posixpath
import tomllib
from dataclasses import dataclass, field
from typing import Callable

from gen.errors import SpecError
from gen.spec.fields import (_argv, _check_secret_mounts, _depends_on, _env, _healthcheck, _image, _labels, _mounts,
                        _normpath, _ports, _restart, _secrets, _user, _working_dir)
from gen.model.naming import NAME_RE  # noqa: F401  (re-exported: the spec rule for names)
from gen.spec.validate import (NAME_RULE, REQUIRED, _check_keys, _checked_names, _duration_at_least,  # noqa: F401
                          _int_in, _one_line, _one_of, _parse_table, _string, _table, parse_duration)


@dataclass(frozen=True)
class Spec:
    name: str | None
    services: dict[str, dict]
    volumes: dict[str, dict]
    source: str = field(default="<string>", compare=False)   # where it came from, not what it says
    secrets: dict[str, dict] = field(default_factory=dict)   # name -> {"file": absolute path}


@dataclass(frozen=True)
class _Context:
    """What a service may refer to: declared volumes, secrets and sibling services."""
    volumes: frozenset
    services: frozenset
    secrets: frozenset = frozenset()


# ---------------------------------------------------------------- entry points

COMPOSE_SUFFIXES = (".yaml", ".yml")   # compose.yaml, docker-compose.yml, anything.yaml


def is_compose_file(path: str | os.PathLike) -> bool:
    return os.fsdecode(path).lower().endswith(COMPOSE_SUFFIXES)


def load_spec(path: str | os.PathLike) -> Spec:
    """A spec file: YAML files are Compose files (gen.compose), everything else is gen TOML."""
    if is_compose_file(path):
        from gen.spec.compose.reader import load_compose  # lazy: TOML users never import yaml
        return load_compose(path)
    source = os.fsdecode(path)
    text = read_text(source, source, "spec")
    return parse_spec(text, source, os.path.dirname(os.path.abspath(source)))


def read_text(path: str, subject: str, what: str) -> str:
    """A UTF-8 text file (a BOM is tolerated); any failure is a SpecError about `subject`."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        raise SpecError(subject, f"cannot read {what}: {_one_line(str(err.strerror or err))}") from None
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
        raise SpecError(source, f"invalid TOML: {_one_line(str(err))}") from None
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


def _build(doc: dict, source: str, base_dir: str | None) -> Spec:
    if not isinstance(doc, dict):
        raise SpecError(source, "the document must be a table")
    _check_keys(doc, ("name", "services", "volumes", "secrets"), "")
    name = _profile_name(doc["name"]) if "name" in doc else None
    volumes = _declared_volumes(doc.get("volumes", {}))
    secrets = _declared_secrets(doc.get("secrets", {}), base_dir)
    table = _table(doc.get("services", {}), "services")
    names = _checked_names(table, "services")
    ctx = _Context(frozenset(volumes), frozenset(names), frozenset(secrets))
    services = {name_: _service(name_, table[name_], ctx) for name_ in names}
    _check_port_conflicts(services)
    start_order(services)  # raises on dependency cycles
    return Spec(name, services, volumes, source, secrets)


def start_order(services: dict[str, dict]) -> list[list[str]]:
    """Dependency levels: level 0 depends on nothing; each later level only on earlier ones.

    Dependencies outside `services` count as satisfied, so a planner may order a subset.
    """
    placed: set[str] = set()
    remaining = sorted(services)
    levels = []
    while remaining:
        level = [n for n in remaining if _deps(services, n) <= placed]
        if not level:
            cycle = _find_cycle(services, remaining)
            raise SpecError("services", "dependency cycle: " + " -> ".join(cycle))
        levels.append(level)
        placed.update(level)
        remaining = [n for n in remaining if n not in placed]
    return levels


# ---------------------------------------------------------------- fields

def _profile_name(value: object) -> str:
    if not NAME_RE.match(_string(value, "name")):
        raise SpecError("name", NAME_RULE)
    return value


def _declared_volumes(value: object) -> dict[str, dict]:
    table = _table(value, "volumes")
    for name in _checked_names(table, "volumes"):
        _check_keys(_table(table[name], f"volumes.{name}"), (), f"volumes.{name}")
    return {name: {} for name in sorted(table)}


def _declared_secrets(value: object, base_dir: str | None) -> dict[str, dict]:
    """[secrets.NAME] file = "path": only the path is normalised here; compile reads the file."""
    table = _table(value, "secrets")
    fields = {"file": ("file", _secret_file(base_dir), REQUIRED)}
    return {name: _parse_table(_table(table[name], f"secrets.{name}"), fields, f"secrets.{name}", None)
            for name in _checked_names(table, "secrets")}


def _secret_file(base_dir: str | None):
    def parse(value, path, ctx=None):
        file = _string(value, path, empty_ok=False)
        return _normpath(file if file.startswith("/") else posixpath.join(_base_dir(base_dir), file))
    return parse


def _base_dir(base_dir: str | None) -> str:
    try:
        return os.path.abspath(os.getcwd() if base_dir is None else base_dir)
    except OSError as err:  # the cwd was removed under us
        raise SpecError("<cwd>", f"cannot resolve relative paths: {err.strerror or err}") from None



# key -> (normalised key, parser, default as written in TOML); order = normalised dict order
_SERVICE_FIELDS = {
    "image": ("image", _image, REQUIRED),
    "command": ("command", _argv, None),
    "entrypoint": ("entrypoint", _argv, None),
    "env": ("env", _env, {}),
    "ports": ("ports", _ports, []),
    "volumes": ("volumes", _mounts, []),
    "depends_on": ("depends_on", _depends_on, []),
    "replicas": ("replicas", _int_in(1, 100), 1),
    "update": ("update", _one_of("start-first", "stop-first"), "start-first"),
    "stop_grace": ("stop_grace_ms", _duration_at_least(0), "10s"),
    "restart": ("restart", _restart, "unless-stopped"),
    "healthcheck": ("healthcheck", _healthcheck, None),
    "secrets": ("secrets", _secrets, []),
    "labels": ("labels", _labels, {}),
    "user": ("user", _user, None),
    "working_dir": ("working_dir", _working_dir, None),
}


def _service(name: str, value: object, ctx: _Context) -> dict:
    path = f"services.{name}"
    service = {"name": name, **_parse_table(_table(value, path), _SERVICE_FIELDS, path, ctx)}
    if service["replicas"] > 1 and service["ports"]:
        # On one engine, two containers cannot bind the same host port: fail now, not mid-switch.
        port = service["ports"][0]
        raise SpecError(f"{path}.replicas", f"{service['replicas']} replicas cannot all publish "
                                            f"host port {port['host_port']}/{port['protocol']}")
    _check_secret_mounts(service, path)
    return service


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


def addresses_overlap(a: str, b: str) -> bool:
    """Two host IPs a port is published on clash: the same address, or either one is "any"."""
    return a == b or _is_any_address(a) or _is_any_address(b)


def _is_any_address(ip: str) -> bool:
    return ip == "" or ipaddress.ip_address(ip).is_unspecified


def _deps(services: dict[str, dict], name: str) -> set[str]:
    return {dep for dep in services[name].get("depends_on", ()) if dep in services}


def _find_cycle(services: dict[str, dict], candidates: list[str]) -> list[str]:
    """The shortest cycle through the smallest name that lies on one (deterministic)."""
    for start in sorted(candidates):
        parent: dict[str, str] = {}
        queue = [start]
        for node in queue:  # breadth-first; the list grows while we walk it
            for dep in sorted(_deps(services, node)):
                if dep == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(parent[chain[-1]])
                    return chain[::-1] + [start]
                if dep not in parent:
                    parent[dep] = node
                    queue.append(dep)
    raise AssertionError("no cycle among services that cannot be ordered")
