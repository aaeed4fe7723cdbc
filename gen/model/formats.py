"""What gen reads back, checked: every kind's format, known older shapes upgraded in memory, anything
else refused (gen.errors.UnknownFormat or CorruptState). Pure: the caller reads the bytes and says
where they came from (`where`: a file path or `object <hash>`), which every error names.

Upgrading never rewrites: an object keeps the hash it is stored under, so the containers an older gen
created for it (named and labelled by that hash) are recognised as they are, and a rollback to a
generation an older gen wrote runs it the way that gen did. The formats and their history are
described in gen.model.types.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from gen.errors import CorruptState, UnknownFormat
from gen.model.types import FORMATS, ConfigObject, GenerationRecord, Journal, Manifest, SecretObject, ServiceObject

KNOWN: dict[str, tuple[int, ...]] = {kind: tuple(range(1, newest + 1)) for kind, newest in FORMATS.items()}
HASH_RE = re.compile(r"[0-9a-f]{64}")      # store.objects.HASH_RE, without importing the store (`gen list` stays fast)

# Keys service objects gained without a format change (history of gen/compile.py and the spec's
# fields: `secrets` in 25a8b54, as {name, file, digest} in efbdaad; `labels`, `user`, `working_dir` in
# efbdaad/6a3e3b3), each with the value that runs an object written before it the way the gen of its
# time ran it: no secret mounted, gen's own labels only, the image's user and working directory.
SERVICE_ADDED: dict[str, Callable[[], object]] = {
    "secrets": list, "labels": dict, "user": lambda: None, "working_dir": lambda: None}

Check = Callable[[object], bool]


# -- shapes ----------------------------------------------------------------------------------------
def _str(v) -> bool:
    return isinstance(v, str)


def _int(v, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _hash(v) -> bool:
    return isinstance(v, str) and HASH_RE.fullmatch(v) is not None


def _optional(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _list_of(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _dict_of(check: Check) -> Check:
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())


def _table(shape: dict[str, Check]) -> Check:
    return lambda v: isinstance(v, dict) and all(k in v and check(v[k]) for k, check in shape.items())


_PORT = _table({"host_ip": _str, "host_port": _int, "container_port": _int, "protocol": _str})
_MOUNT = _table({"type": _str, "source": _str, "target": _str, "read_only": lambda v: isinstance(v, bool)})
_HEALTHCHECK = _table({"test": _list_of(_str), "interval_ms": _int, "timeout_ms": _int, "retries": _int,
                       "start_period_ms": _int})
_SECRET = _table({"name": _str, "file": _str, "digest": _str})
_PINNED = _table({"name": _str, "target": _str, "object": _hash, "uid": _int, "gid": _int,
                  "mode": lambda v: _int(v) and v <= 0o7777})
_ARGV = _optional(_list_of(_str))

SERVICE_SHAPE: dict[str, Check] = {
    "name": _str, "image": _str, "image_id": _str, "command": _ARGV, "entrypoint": _ARGV,
    "env": _dict_of(_str), "ports": _list_of(_PORT), "volumes": _list_of(_MOUNT), "depends_on": _list_of(_str),
    "replicas": lambda v: _int(v, 1), "update": lambda v: v in ("start-first", "stop-first"),
    "stop_grace_ms": _int, "restart": _str, "healthcheck": _optional(_HEALTHCHECK),
    "secrets": _list_of(_SECRET), "labels": _dict_of(_str), "user": _optional(_str), "working_dir": _optional(_str),
}
# Format 2 pins its secrets and config files (gen.model.types).
SERVICE_SHAPE_2: dict[str, Check] = {**SERVICE_SHAPE, "secrets": _list_of(_PINNED), "configs": _list_of(_PINNED)}
SECRET_SHAPE: dict[str, Check] = {"cipher": _str, "nonce": lambda v: isinstance(v, bytes),
                                  "sealed": lambda v: isinstance(v, bytes)}
CONFIG_SHAPE: dict[str, Check] = {"data": lambda v: isinstance(v, bytes)}
MANIFEST_SHAPE: dict[str, Check] = {
    "profile": _str, "services": _dict_of(_hash), "volumes": _dict_of(lambda v: isinstance(v, dict)),
    "networks": _dict_of(lambda v: isinstance(v, dict)),
}
RECORD_SHAPE: dict[str, Check] = {
    "generation": lambda v: _int(v, 1), "manifest": _hash, "created": _str, "services": _int,
    "source": _optional(_hash),
}
JOURNAL_SHAPE: dict[str, Check] = {
    "pid": _optional(_int), "kind": _str, "from": _optional(_int), "to": _optional(_str),
    "to_generation": _optional(_int), "started": _optional(lambda v: _int(v) or isinstance(v, float)),
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
    if check_format(value, "service", where) == 2:
        _kind(value, "service", where)
        _checked(value, SERVICE_SHAPE_2, "service object", where)
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
    return _plain(value, "manifest", MANIFEST_SHAPE, "manifest", where)      # type: ignore[return-value]


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
    _checked(upgraded, {"path": _optional(_str), "text": _str}, "spec source", where)
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
