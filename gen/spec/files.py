"""Files a service mounts whose content a generation pins: secrets and config files.

- `[secrets.NAME] file = "..."` and `[configs.NAME] file = "..."` declare them (paths relative to the
  spec's folder); a service lists `secrets = ["NAME"]` (mounted at /run/secrets/NAME) and
  `configs = ["NAME" | { source, target, uid, gid, mode }]` (mounted at target, default /NAME).
- A read-only bind mount of a regular file from the spec's folder (`./nginx.conf:/etc/nginx.conf:ro`)
  is a config too (pin_read_only_files): named by its path, keeping the file's owner and mode as the
  bind showed them. So editing it changes nothing until the next switch, and a rollback restores it.
  Everything else from the host (writable binds, directories, files elsewhere) stays host state.
Only paths are handled here; gen.model.compile reads the files (through the caller's PinFile).
"""
from __future__ import annotations

import os
import posixpath

from gen.errors import SpecError
from gen.spec.fields import normal_path, references
from gen.spec.messages import shown
from gen.spec.validate import REQUIRED, checked_names, checked_string, checked_table, parse_table

SECRETS_DIR = "/run/secrets"   # where a service's secrets appear inside its containers
CONFIG_DEFAULTS = {"uid": 0, "gid": 0, "mode": 0o444}    # Compose's, for a declared config
MAX_PINNED_BYTES = 16 << 20    # a larger read-only file stays a bind mount (host state), not a store object


# -- declarations ----------------------------------------------------------------------------------
def declared_files(value: object, section: str, base_dir: str) -> dict[str, dict]:
    """[secrets.NAME] / [configs.NAME] file = "path": the path made absolute; compile reads the file."""
    table = checked_table(value, section)
    fields = {"file": ("file", _host_file(base_dir), REQUIRED)}
    return {name: parse_table(checked_table(table[name], f"{section}.{name}"), fields, f"{section}.{name}", None)
            for name in checked_names(table, section)}


def _host_file(base_dir: str):
    def parse(value, path, ctx=None):
        file = checked_string(value, path, empty_ok=False)
        return normal_path(file if file.startswith("/") else posixpath.join(base_dir, file))
    return parse


# -- what a service uses -----------------------------------------------------------------------------
def parse_secrets(value, path, ctx) -> list[str]:
    return references(value, path, ctx.secrets, "secret {} is not declared in [secrets]", "duplicate secret {}")


def parse_configs(value, path, ctx) -> list[dict]:
    """`configs = ["name", { source = "name", target = "/etc/x.conf", uid = 0, gid = 0, mode = 0o440 }]`:
    a declared config mounted read-only at target (default /<name>, as in Compose)."""
    if not isinstance(value, list):
        raise SpecError(path, "must be a list of config names or tables")
    uses: list[dict] = []
    for i, item in enumerate(value):
        sub = f"{path}[{i}]"
        table = {"source": item} if isinstance(item, str) else checked_table(item, sub)
        use = parse_table(table, _CONFIG_FIELDS, sub, ctx)
        if use["source"] not in ctx.configs:
            raise SpecError(f"{sub}.source" if isinstance(item, dict) else sub,
                            f"config {shown(use['source'])} is not declared in [configs]")
        use["target"] = use["target"] or f"/{use['source']}"
        clash = next((j for j, other in enumerate(uses) if other["target"] == use["target"]), None)
        if clash is not None:
            raise SpecError(sub, f"target {use['target']} is already used by {path}[{clash}]")
        uses.append(use)
    return uses


def _container_path(value, path, ctx=None) -> str:
    target = checked_string(value, path, empty_ok=False)
    if not target.startswith("/") or normal_path(target) == "/":
        raise SpecError(path, f"{shown(target)} must be an absolute path of a file")
    return normal_path(target)


def _file_id(value, path, ctx=None) -> int:
    """A numeric uid or gid: an integer, or a string of digits (Compose writes uid: "103")."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if type(value) is not int or not 0 <= value < 2 ** 32:
        raise SpecError(path, f"must be a numeric id (0..4294967295), got {shown(value)}")
    return value


def _file_mode(value, path, ctx=None) -> int:
    """Permission bits: an integer (TOML 0o440) or octal digits as a string ("0440")."""
    if isinstance(value, str) and value and len(value) <= 5 and all(c in "01234567" for c in value):
        value = int(value, 8)
    if type(value) is not int or not 0 <= value <= 0o777:
        raise SpecError(path, f'must be permission bits such as 0o440 (TOML) or "0440", got {shown(value)}')
    return value


_CONFIG_FIELDS = {
    "source": ("source", lambda v, p, c=None: checked_string(v, p, empty_ok=False), REQUIRED),
    "target": ("target", _container_path, None),
    "uid": ("uid", _file_id, CONFIG_DEFAULTS["uid"]),
    "gid": ("gid", _file_id, CONFIG_DEFAULTS["gid"]),
    "mode": ("mode", _file_mode, CONFIG_DEFAULTS["mode"]),
}


# -- checks across a service's mounts ------------------------------------------------------------------
def check_file_mounts(service: dict, path: str) -> None:
    """A volume or config mounted at (or inside) /run/secrets/NAME would hide or fight the secret NAME;
    a volume and a config on one target, the same."""
    spots = {f"{SECRETS_DIR}/{name}": f"secret {shown(name)}" for name in service["secrets"]}
    for key in ("volumes", "configs"):
        for i, mount in enumerate(service[key]):
            for spot, what in spots.items():
                if mount["target"] == spot or mount["target"].startswith(spot + "/"):
                    raise SpecError(f"{path}.{key}[{i}]", f"target {mount['target']} collides with "
                                                          f"{what} (mounted at {spot})")
    volumes = {m["target"]: i for i, m in enumerate(service["volumes"])}
    for i, use in enumerate(service["configs"]):
        if use["target"] in volumes:
            raise SpecError(f"{path}.configs[{i}]", f"target {use['target']} is already mounted "
                                                    f"by {path}.volumes[{volumes[use['target']]}]")


# -- read-only files from the spec's folder ------------------------------------------------------------
def pin_read_only_files(service: dict, path: str, base_dir: str, pinned: dict[str, dict]) -> None:
    """Move the service's read-only binds of regular files from base_dir into its configs, named
    "./<path from base_dir>" (a name no declared config can have), owner and mode None: the file's
    own, read when it is pinned. `pinned` collects their declarations (name -> {"file", "key"})."""
    kept = []
    for i, mount in enumerate(service["volumes"]):
        if not _pinnable(mount, base_dir):
            kept.append(mount)
            continue
        name = "./" + posixpath.relpath(mount["source"], base_dir)
        pinned.setdefault(name, {"file": mount["source"], "key": f"{path}.volumes[{i}]"})
        service["configs"].append({"source": name, "target": mount["target"], "uid": None, "gid": None, "mode": None})
    service["volumes"] = kept


def _pinnable(mount: dict, base_dir: str) -> bool:
    if mount["type"] != "bind" or not mount["read_only"] or base_dir == "/":
        return False
    if not mount["source"].startswith(base_dir.rstrip("/") + "/"):
        return False
    try:
        st = os.stat(mount["source"])
    except (OSError, ValueError):
        return False            # absent or unreadable: the bind stays what it says (Docker reports it)
    return os.path.isfile(mount["source"]) and st.st_size <= MAX_PINNED_BYTES
