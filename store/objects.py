"""A content-addressed object store: root/objects/<h[:2]>/<h>.

An object is a read-only file (mode 0444) of canonical msgpack bytes named by their
blake3 hash. Objects are immutable: an existing name is rewritten only when its bytes are damaged
(a put compares them, so putting a value again repairs it). Every read rehashes the bytes, so
on-disk damage is reported instead of silently deployed. The store creates nothing on disk until
the first write.

Garbage collection (Nix's GC lock): root/gc.lock is held shared by writers, from their first put
until what they wrote is reachable from a root the collector reads, and exclusive by the collector
while it decides what is reachable and deletes the rest (see `lock`). The store knows no roots
itself: what is reachable is its user's business.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from store.canonical import decode, digest, encode, ensure_canonical
from store.errors import AmbiguousPrefix, CorruptObject, InvalidHash, MissingObject, StoreError
from store.fsutil import FileLock, atomic_write, atomic_write_many, ensure_dir, unlink_if_present

HASH_RE = re.compile(r"[0-9a-f]{64}")
MIN_PREFIX = 4
PREFIX_RE = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},64}}")
OBJECT_MODE = 0o444
GC_LOCK = "gc.lock"


@dataclass
class VerifyReport:
    ok: int = 0
    corrupt: list[str] = field(default_factory=list)  # hashes whose bytes no longer match
    stray: list[Path] = field(default_factory=list)  # not objects: crash leftovers, foreign files
    size_bytes: int = 0  # total size of all objects, intact or not

    @property
    def healthy(self) -> bool:
        return not self.corrupt


class Store:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.objects_dir = self.root / "objects"

    def path_of(self, hash: str) -> Path:
        check_hash(hash)
        return self._path(hash)

    def has(self, hash: str) -> bool:
        return self.path_of(hash).is_file()

    def put(self, value: object) -> str:
        """Store `value`'s canonical encoding; return its hash."""
        return self._put_canonical(encode(value))

    def put_many(self, values: list[object]) -> list[str]:
        """put() for many values with two filesystem syncs in all (see fsutil.atomic_write_many)."""
        return self.put_many_encoded([encode(v) for v in values])

    def put_many_encoded(self, encoded: list[bytes]) -> list[str]:
        """put_many() for values already encoded by canonical.encode (for callers that needed the
        bytes to hash them anyway). Not re-checked for canonical form: that would cost a decode and
        an encode each. Each object is still named by the hash of exactly the bytes written."""
        hashes = [digest(data) for data in encoded]
        missing = {h: data for h, data in zip(hashes, encoded) if not self._holds(h, data)}
        if missing:
            ensure_dir(self.objects_dir)
        for fanout in {self._path(h).parent for h in missing}:
            # No fsync per directory here: the syncfs in atomic_write_many covers them all.
            with contextlib.suppress(FileExistsError):
                os.mkdir(fanout, 0o700)
        atomic_write_many([(self._path(h), data) for h, data in missing.items()], mode=OBJECT_MODE)
        return hashes

    def put_bytes(self, data: bytes) -> str:
        """Store bytes that must already be a canonical encoding (checked)."""
        ensure_canonical(data)
        return self._put_canonical(data)

    def get(self, hash: str) -> object:
        return decode(self.get_bytes(hash))

    def get_bytes(self, hash: str) -> bytes:
        path = self.path_of(hash)
        data = _read(hash, path)
        if data is None:
            raise MissingObject(hash)
        actual = digest(data)
        if actual != hash:
            raise CorruptObject(hash, path, actual)
        return data

    def size_of(self, hash: str) -> int:
        try:
            return self.path_of(hash).stat().st_size
        except FileNotFoundError:
            raise MissingObject(hash) from None

    def delete(self, hash: str) -> None:
        """Remove an object (for gc); deleting an absent object is not an error.

        No directory fsync: if a crash undoes the deletion, an unreferenced object comes
        back and the next gc removes it again. Fan-out directories are kept, since removing
        one could race with a concurrent put that has just created it.
        """
        unlink_if_present(self.path_of(hash))

    def iter_hashes(self) -> Iterator[str]:
        """Every object's hash, in sorted order. Temp and foreign files are skipped."""
        for fanout, entry in self._files():
            if _is_object(fanout, entry.name):
                yield entry.name

    def resolve_prefix(self, prefix: str) -> str:
        """The one object hash starting with `prefix` (at least MIN_PREFIX hex digits)."""
        if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix.lower()):
            raise InvalidHash(prefix, f"not a hash prefix: expected {MIN_PREFIX} to 64 hex digits")
        wanted = prefix.lower()
        matches = [
            entry.name for entry in scan_sorted(self.objects_dir / wanted[:2])
            if entry.name.startswith(wanted) and HASH_RE.fullmatch(entry.name)
        ]
        if not matches:
            raise MissingObject(wanted)
        if len(matches) > 1:
            raise AmbiguousPrefix(wanted, matches)
        return matches[0]

    def verify(self) -> VerifyReport:
        """Rehash every object. Files that are not objects are listed as stray, not checked."""
        report = VerifyReport()
        for fanout, entry in self._files():
            path = Path(entry.path)
            if not _is_object(fanout, entry.name):
                report.stray.append(path)
                continue
            data = _read(entry.name, path)
            if data is None:  # deleted (e.g. by gc) since it was listed
                continue
            report.size_bytes += len(data)
            if digest(data) == entry.name:
                report.ok += 1
            else:
                report.corrupt.append(entry.name)
        return report

    def lock(self, shared: bool) -> FileLock:
        """The store-wide gc lock, not yet held. Writers take it shared (`writing`) before their first
        put and keep it until their objects are reachable from a root; the collector takes it
        exclusive while it decides and deletes. So gc never deletes an object that a writer has put,
        or found already present, but not yet rooted; and no put runs between gc's look at an
        object and its deletion."""
        ensure_dir(self.root)
        return FileLock(self.root / GC_LOCK, shared=shared)

    @contextlib.contextmanager
    def writing(self, timeout: float) -> Iterator[Store]:
        """Hold the gc lock shared for a batch of puts (LockTimeout after `timeout` seconds of gc)."""
        with self.lock(shared=True).held(timeout):
            yield self

    def _put_canonical(self, data: bytes) -> str:
        hash = digest(data)
        path = self._path(hash)
        if self._holds(hash, data):
            return hash
        ensure_dir(path.parent)
        atomic_write(path, data, mode=OBJECT_MODE)
        return hash

    def _holds(self, hash: str, data: bytes) -> bool:
        """Is `hash` stored with exactly `data`? A present object is compared, not trusted: a damaged
        copy (bit rot, a write lost in a crash) is then rewritten whole, atomically, by the put. The
        cost is one read and no write."""
        return _read(hash, self._path(hash)) == data

    def _path(self, hash: str) -> Path:
        return self.objects_dir / hash[:2] / hash

    def _files(self) -> Iterator[tuple[str, os.DirEntry]]:
        """(fan-out directory name, entry) for every file under objects/, sorted."""
        for fanout in scan_sorted(self.objects_dir):
            if fanout.is_dir(follow_symlinks=False):
                for entry in scan_sorted(fanout.path):
                    yield fanout.name, entry
            else:
                yield "", fanout


def check_hash(hash: object) -> None:
    # fullmatch, not match with "$": "$" would also accept a trailing newline.
    if not isinstance(hash, str) or not HASH_RE.fullmatch(hash):
        raise InvalidHash(hash, "not an object hash: expected 64 lowercase hex digits")


def _is_object(fanout: str, name: str) -> bool:
    return fanout == name[:2] and HASH_RE.fullmatch(name) is not None


def _read(hash: str, path: Path) -> bytes | None:
    """The file's bytes, or None if it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"object {hash}", f"cannot read {path}: {exc.strerror}") from exc


def scan_sorted(directory: Path | str) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
