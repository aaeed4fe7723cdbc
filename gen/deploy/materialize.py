"""Materialise a generation's pinned files: the secret and config values its services mount, written
from the store to a tmpfs directory before any container is created, and bind-mounted read-only from
there (the way agenix and sops-nix keep generation-numbered secret directories under /run).

    <run>/<state>/<profile>/<service hash>/secrets/<name>     decrypted secret (0400, the service's uid)
    <run>/<state>/<profile>/<service hash>/configs/<i>        config file (its pinned owner and mode)

<run> is $GEN_RUN_DIR if set, else /run/gen if /run is a tmpfs, else /dev/shm/gen (a tmpfs on
almost every Linux): secrets never touch a disk and are gone after a reboot. <state> is the state
directory's identity (gen.state.identity), so two state directories never share files. Directories
are 0700.

One directory per service object, not per generation: a container lives as long as its service's hash
is unchanged, across generations, and its mounts must stay valid that long. Activation (switch,
rollback, recover) writes whatever is missing or differs for every service of its target, in the
prepare phase, so after a reboot the next activation puts them back; after the commit it removes the
directories of services the new generation no longer runs (their containers are gone), never the
current generation's.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from gen.errors import ActivationFailed, CorruptState
from gen.model import formats
from gen.model.compile import Compiled
from gen.state.identity import ID_FILE, state_id
from gen.state.secrets import key_path, secret_key, unseal
from store import decode

RUN_DIR_ENV = "GEN_RUN_DIR"
TMPFS = frozenset({"tmpfs", "ramfs"})


class MaterializeFailed(ActivationFailed):
    """A pinned file could not be written (key missing or wrong, no tmpfs, a full or foreign run
    directory). Raised in prepare, before anything running is touched: a refusal (exit 1)."""
    exit_code = 1


# -- where -----------------------------------------------------------------------------------------
def run_root(mountinfo: str | None = None) -> tuple[Path, bool]:
    """(the run directory, whether it is known to be on tmpfs). $GEN_RUN_DIR is the user's choice."""
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV]), True
    name = _run_name()
    info = _mountinfo() if mountinfo is None else mountinfo
    if filesystem_of("/run", info) in TMPFS:
        return Path("/run") / name, True
    return Path("/dev/shm") / name, filesystem_of("/dev/shm", info) in TMPFS


def _run_name() -> str:
    return "gen" if os.geteuid() == 0 else f"gen-{os.geteuid()}"    # /dev/shm is shared by every user


def filesystem_of(path: str, mountinfo: str) -> str | None:
    """The file system type of the mount holding `path`, from /proc/self/mountinfo's text."""
    best, found = -1, None
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not after:
            continue
        point = parts[4].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:          # the deepest mount; of stacked ones, the last
            best, found = len(point), after.split()[0]
    return found


def _mountinfo() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text()
    except OSError:
        return ""


def profile_dir(state_dir: str, profile: str, root: Path | None = None) -> Path:
    """Where a profile's files go: under the state directory's identity (gen.state.identity, which its
    image pins carry too), so two state directories never share files."""
    return (root or run_root()[0]) / state_id(Path(state_dir)) / profile


# -- writing ---------------------------------------------------------------------------------------
def materialize(target: Compiled) -> dict[str, dict[str, str]]:
    """Write every pinned file of the target's services that is missing or differs; returns, per service
    hash, ref key ("secret:NAME" / "config:I") -> host path. MaterializeFailed on any problem."""
    wanted = {h: obj for h, obj in target.services.values() if formats.pinned_files(obj)}
    if not wanted:
        return {}
    if target.state_dir is None:
        raise MaterializeFailed("secrets", "this deployment has no state directory to materialise its files from")
    root, on_tmpfs = run_root()
    if not on_tmpfs and any("object" in s for obj in wanted.values() for s in obj["secrets"]):
        raise MaterializeFailed(f"run directory {root}", f"is not on a tmpfs, and secrets must never reach a disk; "
                                f"set {RUN_DIR_ENV} to a directory on a tmpfs")
    try:
        top = root if os.environ.get(RUN_DIR_ENV) else root.parent   # gen/ itself must be ours, GEN_RUN_DIR need not
        os.makedirs(top, exist_ok=True)
        base = _private_dir(profile_dir(target.state_dir, target.manifest["profile"], root), top)
        opener = _Opener(target)
        return {h: _write_service(base / h, obj, opener) for h, obj in sorted(wanted.items())}
    except CorruptState as e:
        raise MaterializeFailed(e.subject, e.reason) from None
    except OSError as e:
        raise MaterializeFailed(f"run directory {e.filename or root}", f"cannot write pinned files: "
                                f"{e.strerror or e}") from None


class _Opener:
    """The value of a pinned object; the key is read once, on the first secret."""

    def __init__(self, target: Compiled):
        self.target = target
        self.key: bytes | None = None

    def value(self, kind: str, h: str) -> bytes:
        where = f"object {h}"
        if kind == "config":
            return formats.config_object(decode(self.target.materials[h]), where)["data"]
        if self.key is None:
            self.key = secret_key(Path(self.target.state_dir))
        obj = formats.secret_object(decode(self.target.materials[h]), where)
        return unseal(self.key, obj, where, key_path(Path(self.target.state_dir))[0])


def _write_service(directory: Path, obj: dict, opener: _Opener) -> dict[str, str]:
    paths = {}
    refs = [(f"secret:{r['name']}", "secret", directory / "secrets" / r["name"], r) for r in obj["secrets"]
            if "object" in r]
    refs += [(f"config:{i}", "config", directory / "configs" / str(i), r) for i, r in enumerate(obj.get("configs", ()))]
    for key, kind, path, ref in refs:
        _private_dir(path.parent, directory.parent)
        _write_file(path, opener.value(kind, ref["object"]), ref["uid"], ref["gid"], ref["mode"])
        paths[key] = str(path)
    return paths


def _write_file(path: Path, data: bytes, uid: int, gid: int, mode: int) -> None:
    """Atomically, unless it is already there as wanted: a running container's bind mount holds the
    file it was started with, so a file that is right is never replaced."""
    try:
        st = path.lstat()
        if (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (uid, gid, mode) and path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    temp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        if (uid, gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(temp, path)


def _private_dir(path: Path, top: Path) -> Path:
    """`path` and its parents up to `top` as directories of ours, mode 0700; refused when one exists
    as someone else's or open to others (/dev/shm is world-writable: anyone may have made it first)."""
    below = path.relative_to(top)
    for directory in [*(p for p in reversed(below.parents) if p != Path(".")), below]:
        full = top / directory
        try:
            full.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            pass
        st = full.lstat()
        if not full.is_dir() or full.is_symlink() or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise MaterializeFailed(f"run directory {full}", f"is not a private directory of uid {os.geteuid()} "
                                    "(mode 0700); refusing to put secrets there: remove it, or set "
                                    f"{RUN_DIR_ENV}")
    return path


def with_paths(obj: dict, paths: dict[str, str]) -> dict:
    """The service object as the engine mounts it: each pinned file with the host path of its copy."""
    if not paths:
        return obj
    secrets = [{**r, "path": paths[f"secret:{r['name']}"]} if "object" in r else r for r in obj["secrets"]]
    configs = [{**r, "path": paths[f"config:{i}"]} for i, r in enumerate(obj.get("configs", ()))]
    return {**obj, "secrets": secrets, "configs": configs}


# -- removing --------------------------------------------------------------------------------------
def remove_stale(target: Compiled) -> list[str]:
    """After the commit: remove the directories of services the target does not run (their containers
    are gone), and the profile's own once it is empty. Returns what could not be removed."""
    if target.state_dir is None or not (Path(target.state_dir) / ID_FILE).exists():
        return []           # nothing was ever materialised for this state directory (and nothing is made here)
    if not os.environ.get(RUN_DIR_ENV) and not any((Path(top) / _run_name()).exists() for top in ("/run", "/dev/shm")):
        return []           # no run directory at all: spare the parse of /proc/self/mountinfo (every switch)
    base = profile_dir(target.state_dir, target.manifest["profile"])
    keep = {h for h, _ in target.services.values()}
    try:
        stale = [entry for entry in os.scandir(base) if entry.name not in keep]
    except (FileNotFoundError, NotADirectoryError):
        return []
    problems = []
    for entry in stale:
        try:
            shutil.rmtree(entry.path)
        except OSError as e:
            problems.append(f"{e.filename or entry.path}: {e.strerror or e}")
    if not keep:
        try:
            base.rmdir()
        except OSError:
            pass
    return problems
