"""What keeps store objects alive, besides the generation records: build roots, and the references
each kind of object declares. Nix's model: permanent roots (generations), a root per build (its
`result` link) and a GC lock.

    <state>/roots/builds/<profile>    the manifest hash of the profile's last `gen build` (one line)
    <state>/roots/imports/<profile>   the profile's last `gen import`: its manifest hash, then the hash
                                      of the spec source it carried, if any (one line each)

A build root protects what `gen build` (or the build step of `gen switch SPEC`) wrote until the
next build of the same profile replaces it, so `gen build; gen gc; gen switch HASH` works. Like
Nix's `result` link it is not removed by a switch or by gc: it costs at most one deployment's
objects per profile, usually those of a kept generation anyway. An import root does the same for
what `gen import` (gen.state.transfer) added, until the next import of that profile; it also keeps
the imported spec source, which no manifest names, so a switch of the manifest can still record it
(`imported_source`).

Writers hold the store's gc lock shared from their first object write until their objects are
rooted (`writing`): the build root written, or the generation recorded. gc holds it exclusive while
it reads the roots, decides what is reachable and sweeps (gen.state.gc), so it never deletes an
object a writer has put, or found already present, and not yet rooted.

References are explicit: a manifest refers to its service objects; a service object to the secret
and config objects it pins; a generation record to its manifest and its source; a build root and a
journal to a manifest. Nothing else inside an object is followed, however much it looks like a hash
(a format 1 secret's keyed digest is 64 hex digits too).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from gen.errors import CorruptState, GenError
from gen.model import formats
from gen.model.naming import NAME_RE
from store import Store
from store.errors import LockTimeout
from store.fsutil import TEMP_PREFIX, atomic_write, ensure_dir
from store.objects import HASH_RE

BUILDS_DIR = Path("roots") / "builds"
IMPORTS_DIR = Path("roots") / "imports"


# -- the gc lock, as writers hold it ---------------------------------------------------------------
@contextlib.contextmanager
def writing(store: Store, timeout_s: float) -> Iterator[Store]:
    """The store's gc lock, shared: hold it from the first put until what was put is rooted."""
    try:
        lock = store.lock(shared=True)
        lock.acquire(timeout_s)
    except LockTimeout as e:
        who = f"pid {e.holder_pid}" if e.holder_pid else "another process"
        raise GenError("store", f"garbage collection is running ({who}); gave up after {e.waited_s:.1f}s, "
                       "nothing was written (try again once it is done)") from None
    try:
        yield store
    finally:
        lock.release()


# -- build roots -----------------------------------------------------------------------------------
def build_root_path(state_dir: Path, profile: str) -> Path:
    return Path(state_dir) / BUILDS_DIR / profile


def record_build(state_dir: Path, profile: str, manifest: str) -> None:
    """Make `manifest` the profile's last build (durably: a build printed is a build kept). The caller
    holds the gc lock shared (`writing`) and has written the manifest's closure."""
    if not NAME_RE.fullmatch(profile) or not HASH_RE.fullmatch(manifest):
        raise ValueError(f"not a profile and a manifest hash: {profile!r}, {manifest!r}")
    directory = ensure_dir(Path(state_dir) / BUILDS_DIR)
    data = f"{manifest}\n".encode("ascii")
    try:
        if (directory / profile).read_bytes() == data:
            return          # already the last build (a switch records it again under its lock): no fsync twice
    except OSError:
        pass
    atomic_write(directory / profile, data, mode=0o600)


def build_source(spec_path: str | os.PathLike) -> dict:
    """The source object a build of `spec_path` makes: where the spec was and its text, kept apart from
    the manifest, so comments and key order never change a generation's identity."""
    path = os.path.abspath(spec_path)
    return {"kind": "source", "path": path, "text": Path(path).read_bytes().decode("utf-8-sig", "replace")}


def build_roots(state_dir: Path) -> dict[str, str]:
    """profile -> the manifest hash of its last build. A root that cannot be read raises CorruptState
    naming its file: gc must not guess what it protected."""
    return {name: hashes[0] for name, hashes in _read_roots(Path(state_dir) / BUILDS_DIR, "build", 1).items()}


def record_import(state_dir: Path, profile: str, manifest: str, source: str | None) -> None:
    """Make `manifest` (and the spec source imported with it) the profile's last import, durably. The
    caller holds the gc lock shared (`writing`) and has written both with the manifest's closure."""
    hashes = [manifest] + ([source] if source else [])
    if not NAME_RE.fullmatch(profile) or not all(HASH_RE.fullmatch(h) for h in hashes):
        raise ValueError(f"not a profile and object hashes: {profile!r}, {hashes!r}")
    directory = ensure_dir(Path(state_dir) / IMPORTS_DIR)
    atomic_write(directory / profile, "".join(f"{h}\n" for h in hashes).encode("ascii"), mode=0o600)


def import_roots(state_dir: Path) -> dict[str, tuple[str, str | None]]:
    """profile -> (manifest, source or None) of its last import; CorruptState as for build roots."""
    roots = _read_roots(Path(state_dir) / IMPORTS_DIR, "import", 2)
    return {name: (hashes[0], hashes[1] if len(hashes) > 1 else None) for name, hashes in roots.items()}


def imported_source(state_dir: Path, manifest: str) -> str | None:
    """The source object imported with `manifest` (for the generation a switch of it records), if any."""
    return next((source for m, source in import_roots(state_dir).values() if m == manifest and source), None)


def _read_roots(directory: Path, what: str, most: int) -> dict[str, list[str]]:
    """name -> the hashes (1 to `most`, one a line) of every root file in `directory`."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return {}
    roots = {}
    for name in names:
        if name.startswith(TEMP_PREFIX) or not NAME_RE.fullmatch(name):
            continue                    # a crash mid-write leaves a temp file; it protects nothing
        path = directory / name
        try:
            hashes = path.read_bytes().decode("ascii").split()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise CorruptState(str(path), f"{what} root cannot be read ({e}); delete it or {what} profile "
                               f"{name} again") from None
        if not 1 <= len(hashes) <= most or not all(HASH_RE.fullmatch(h) for h in hashes):
            raise CorruptState(str(path), f"is not a {what} root ({'one manifest hash' if most == 1 else 'object hashes'} "
                               f"expected); delete it or {what} profile {name} again")
        roots[name] = hashes
    return roots


# -- references ------------------------------------------------------------------------------------
def record_references(record: dict) -> list[tuple[str, str]]:
    """(hash, key) of what a generation record names: its manifest and, if recorded, its source."""
    return [(record[key], key) for key in ("manifest", "source")
            if isinstance(record.get(key), str) and HASH_RE.fullmatch(record[key])]


def references(obj: object, where: str) -> list[str]:
    """The objects `obj` refers to, as its kind declares them: a manifest, its service objects; a
    service object, the secret and config objects it pins (format 2; a format 1 secret's digest is
    not a reference). Formats are checked: a newer one may declare more, so it is refused rather than
    half followed. A spec source, a secret or a config object: none."""
    if isinstance(obj, dict) and obj.get("kind") == "manifest":
        return sorted(set(formats.manifest(obj, where)["services"].values()))
    if isinstance(obj, dict) and obj.get("kind") == "service" and formats.check_format(obj, "service", where) == 2:
        # Only the references are read: a service object damaged elsewhere still keeps what it names.
        refs = [*(obj.get("secrets") or ()), *(obj.get("configs") or ())]
        return sorted({r["object"] for r in refs if isinstance(r, dict) and HASH_RE.fullmatch(str(r.get("object")))})
    return []
