"""What gen reads back, checked: every kind's format, known older shapes upgraded in memory, anything
else refused (gen.errors.UnknownFormat or CorruptState). Pure: the caller reads the bytes and says
where they came from (`where`: a file path or `object <hash>`), which every error names.

Upgrading never rewrites: an object keeps the hash it is stored under, so the containers an older gen
created for it (named and labelled by that hash) are recognised as they are, and a rollback to a
generation an older gen wrote runs it the way that gen did. The formats and their history are
described in gen.model.types.
"""
from __future__ import annotations

from collections.abc import Callable

from gen.errors import CorruptState, UnknownFormat
from gen.model.shapes import (HEALTHCHECK_3, MANIFEST_KEYS, MOUNT_3, NETWORK_DEF, PORT_3, SERVICE_ADDED_3,
                              STRING_MAP, STRINGS, Check, dict_of, is_hash, is_int, is_str, list_of, optional, table)
from gen.model.types import FORMATS, ConfigObject, GenerationRecord, Journal, Manifest, SecretObject, ServiceObject

KNOWN: dict[str, tuple[int, ...]] = {kind: tuple(range(1, newest + 1)) for kind, newest in FORMATS.items()}

# Keys service objects gained without a format change (history of gen/compile.py and the spec's
# fields: `secrets` in 25a8b54, as {name, file, digest} in efbdaad; `labels`, `user`, `working_dir` in
# efbdaad/6a3e3b3), each with the value that runs an object written before it the way the gen of its
# time ran it: no secret mounted, gen's own labels only, the image's user and working directory.
SERVICE_ADDED: dict[str, Callable[[], object]] = {
    "secrets": list, "labels": dict, "user": lambda: None, "working_dir": lambda: None}


# -- shapes ----------------------------------------------------------------------------------------
_PORT = table({"host_ip": is_str, "host_port": is_int, "container_port": is_int, "protocol": is_str})
_MOUNT = table({"type": is_str, "source": is_str, "target": is_str, "read_only": lambda v: isinstance(v, bool)})
_HEALTHCHECK = table({"test": STRINGS, "interval_ms": is_int, "timeout_ms": is_int, "retries": is_int,
                      "start_period_ms": is_int})
_SECRET = table({"name": is_str, "file": is_str, "digest": is_str})
_PINNED = table({"name": is_str, "target": is_str, "object": is_hash, "uid": is_int, "gid": is_int,
                 "mode": lambda v: is_int(v) and v <= 0o7777})
_ARGV = optional(STRINGS)

SERVICE_SHAPE: dict[str, Check] = {
    "name": is_str, "image": is_str, "image_id": is_str, "command": _ARGV, "entrypoint": _ARGV,
    "env": STRING_MAP, "ports": list_of(_PORT), "volumes": list_of(_MOUNT), "depends_on": STRINGS,
    "replicas": lambda v: is_int(v, 1), "update": lambda v: v in ("start-first", "stop-first"),
    "stop_grace_ms": is_int, "restart": is_str, "healthcheck": optional(_HEALTHCHECK),
    "secrets": list_of(_SECRET), "labels": STRING_MAP, "user": optional(is_str), "working_dir": optional(is_str),
}
# Format 2 pins its secrets and config files (gen.model.types).
SERVICE_SHAPE_2: dict[str, Check] = {**SERVICE_SHAPE, "secrets": list_of(_PINNED), "configs": list_of(_PINNED)}
# Format 3: mount and healthcheck options, and the keys of SERVICE_ADDED_3 where present; nothing else.
SERVICE_SHAPE_3: dict[str, Check] = {**SERVICE_SHAPE_2, "volumes": list_of(MOUNT_3), "ports": list_of(PORT_3),
                                     "healthcheck": optional(HEALTHCHECK_3)}
SERVICE_KEYS_3 = frozenset(SERVICE_SHAPE_3) | {"kind", "format"} | frozenset(SERVICE_ADDED_3)
SECRET_SHAPE: dict[str, Check] = {"cipher": is_str, "nonce": lambda v: isinstance(v, bytes),
                                  "sealed": lambda v: isinstance(v, bytes)}
CONFIG_SHAPE: dict[str, Check] = {"data": lambda v: isinstance(v, bytes)}
MANIFEST_SHAPE: dict[str, Check] = {
    "profile": is_str, "services": dict_of(is_hash), "volumes": dict_of(lambda v: isinstance(v, dict)),
    "networks": dict_of(lambda v: isinstance(v, dict)),
}
MANIFEST_SHAPE_2: dict[str, Check] = {**MANIFEST_SHAPE, "networks": dict_of(NETWORK_DEF)}
RECORD_SHAPE: dict[str, Check] = {
    "generation": lambda v: is_int(v, 1), "manifest": is_hash, "created": is_str, "services": is_int,
    "source": optional(is_hash),
}
JOURNAL_SHAPE: dict[str, Check] = {
    "pid": optional(is_int), "kind": is_str, "from": optional(is_int), "to": optional(is_str),
    "to_generation": optional(is_int), "started": optional(lambda v: is_int(v) or isinstance(v, float)),
}


# -- checks ----------------------------------------------------------------------------------------
def check_format(value: object, kind: str, where: str, exit_code: int = 1) -> int:
    """The format `value` says it has (absent: 1, see gen.model.types), if this gen reads it."""
    if not isinstance(value, dict):
        raise CorruptState(where, f"is not a {kind} (a {type(value).__name__}, not a map)", exit_code=exit_code)
    found = value.get("format", 1)
    if isinstance(found, bool) or found not in KNOWN[kind]:
        raise UnknownFormat(where, kind, found, KNOWN[kind], exit_code=exit_code)
    return found


def _checked(value: dict, shape: dict[str, Check], kind: str, where: str, exit_code: int = 1) -> None:
    for key, check in shape.items():
        if key not in value:
            raise CorruptState(where, f"{kind} has no {key!r} (not written by gen, or damaged)", exit_code=exit_code)
        if not check(value[key]):
            raise CorruptState(where, f"{kind} has an unexpected {key!r}: {_shown(value[key])}", exit_code=exit_code)


def _checked_added(value: dict, added: dict[str, Check], known: frozenset, kind: str, where: str) -> None:
    """Optional keys checked where present; a key this gen does not know is refused, never dropped."""
    unknown = sorted(set(value) - known)
    if unknown:
        raise CorruptState(where, f"{kind} has a key this gen does not know: {unknown[0]!r} (written by a newer gen?)")
    for key, check in added.items():
        if key in value and not check(value[key]):
            raise CorruptState(where, f"{kind} has an unexpected {key!r}: {_shown(value[key])}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: dict, kind: str, where: str) -> None:
    if value.get("kind") != kind:
        raise CorruptState(where, f"is not a {kind} object (kind {_shown(value.get('kind'))})")


# -- the kinds -------------------------------------------------------------------------------------
def service_object(value: object, where: str) -> ServiceObject:
    """A service object as this gen runs it: checked, with keys an older gen did not write filled in.
    Format 1 has no `configs` (read it as obj.get("configs", []): an object of today that pins nothing
    is format 1 and must hash as it was written); its secrets stay SecretRef, bind-mounted from their
    file as the gen that wrote them did."""
    found = check_format(value, "service", where)
    if found >= 2:
        _kind(value, "service", where)
        _checked(value, SERVICE_SHAPE_2 if found == 2 else SERVICE_SHAPE_3, "service object", where)
        if found == 3:
            _checked_added(value, SERVICE_ADDED_3, SERVICE_KEYS_3, "service object", where)
        return value    # type: ignore[return-value]
    _kind(value, "service", where)
    upgraded = {**{k: make() for k, make in SERVICE_ADDED.items() if k not in value}, **value}
    if upgraded["secrets"] and all(isinstance(s, str) for s in upgraded["secrets"]):
        # Written between 25a8b54 and efbdaad: names only, and the gen of that time mounted none.
        upgraded["secrets"] = []
    _checked(upgraded, SERVICE_SHAPE, "service object", where)
    if "configs" in upgraded:
        raise CorruptState(where, "service object of format 1 has 'configs' (only format 2 pins config files)")
    return upgraded     # type: ignore[return-value]


def pinned_files(obj: ServiceObject) -> list[dict]:
    """The PinnedFile references of a (checked) service object: its secrets' and configs' objects."""
    return [ref for ref in (*obj["secrets"], *obj.get("configs", ())) if "object" in ref]


def file_mounts(obj: dict) -> list[tuple[str, str]]:
    """(container target, host file) of a service's secrets and configs, as an engine mounts them: a
    pinned file from the copy gen.deploy.materialize wrote (its `path`), a format 1 secret from its own
    file. ValueError naming a pinned file that was not materialised."""
    mounts = []
    for ref in [*obj["secrets"], *obj.get("configs", ())]:
        if "object" in ref and "path" not in ref:
            raise ValueError(f"{ref['name']} was not materialised before the container was created")
        mounts.append((ref.get("target") or f"/run/secrets/{ref['name']}", ref.get("path") or ref["file"]))
    return mounts


def secret_object(value: object, where: str) -> SecretObject:
    return _plain(value, "secret", SECRET_SHAPE, "secret object", where)     # type: ignore[return-value]


def config_object(value: object, where: str) -> ConfigObject:
    return _plain(value, "config", CONFIG_SHAPE, "config object", where)     # type: ignore[return-value]


def manifest(value: object, where: str) -> Manifest:
    """Format 2 differs from 1 only in its networks (any declared ones, not just the default)."""
    if check_format(value, "manifest", where) == 1:
        return _plain(value, "manifest", MANIFEST_SHAPE, "manifest", where)      # type: ignore[return-value]
    checked = _plain(value, "manifest", MANIFEST_SHAPE_2, "manifest", where)
    _checked_added(checked, {}, frozenset(MANIFEST_KEYS), "manifest", where)
    return checked      # type: ignore[return-value]


def _plain(value: object, kind: str, shape: dict, what: str, where: str) -> object:
    """An object of a kind with one known format and nothing to upgrade: checked, returned as it is."""
    check_format(value, kind, where)
    _kind(value, kind, where)
    _checked(value, shape, what, where)
    return value


def source(value: object, where: str) -> dict:
    """A spec source object ({kind, path, text}); `path` may be absent (None)."""
    check_format(value, "source", where)
    _kind(value, "source", where)
    upgraded = {"path": None, **value}
    _checked(upgraded, {"path": optional(is_str), "text": is_str}, "spec source", where)
    return upgraded


def generation_record(value: object, where: str, number: int | None = None) -> GenerationRecord:
    """A generation record (profiles/<name>/generations/<N>.json, decoded); `services` and `source`
    are optional (older records lack them). `number`: the N its file name says."""
    check_format(value, "generation record", where)
    upgraded = {"services": 0, "source": None, **value}
    _checked(upgraded, RECORD_SHAPE, "generation record", where)
    if number is not None and upgraded["generation"] != number:
        raise CorruptState(where, f"generation record says it is generation {upgraded['generation']}, "
                           f"but its file name says {number}")
    return upgraded     # type: ignore[return-value]


def journal(value: object, where: str) -> Journal:
    """An activation journal (decoded). Problems exit 3: an activation may have been interrupted."""
    check_format(value, "journal", where, exit_code=3)
    upgraded = {"pid": None, "from": None, "to": None, "to_generation": None, "started": None, **value}
    _checked(upgraded, JOURNAL_SHAPE, "journal", where, exit_code=3)
    return upgraded     # type: ignore[return-value]
