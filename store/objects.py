"""A content-addressed object store: root/objects/<h[:2]>/<h>.

An object is a read-only file (mode 0444) of canonical msgpack bytes named by their
blake3 hash. Objects are immutable, so an existing name never needs rewriting, and every
read rehashes the bytes, so on-disk damage is reported instead of silently deployed.
The store creates nothing on disk until the first write.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from store.canonical import decode, digest, encode, ensure_canonical
from store.errors import AmbiguousPrefix, CorruptObject, InvalidHash, MissingObject, StateUnwritable, StoreError
from store.fsutil import atomic_write, atomic_write_many, ensure_dir

HASH_RE = re.compile(r"[0-9a-f]{64}")
MIN_PREFIX = 4
PREFIX_RE = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},64}}")
OBJECT_MODE = 0o444


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
        _check_hash(hash)
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
        missing = {h: data for h, data in zip(hashes, encoded) if not self._path(h).exists()}
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
        path = self.path_of(hash)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StateUnwritable.from_os_error(path, exc) from exc

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
            entry.name for entry in _scan(self.objects_dir / wanted[:2])
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

    def _put_canonical(self, data: bytes) -> str:
        hash = digest(data)
        path = self._path(hash)
        # Same name means same bytes, so an existing object costs one stat and no write.
        if path.exists():
            return hash
        ensure_dir(path.parent)
        atomic_write(path, data, mode=OBJECT_MODE)
        return hash

    def _path(self, hash: str) -> Path:
        return self.objects_dir / hash[:2] / hash

    def _files(self) -> Iterator[tuple[str, os.DirEntry]]:
        """(fan-out directory name, entry) for every file under objects/, sorted."""
        for fanout in _scan(self.objects_dir):
            if fanout.is_dir(follow_symlinks=False):
                for entry in _scan(fanout.path):
                    yield fanout.name, entry
            else:
                yield "", fanout


def _check_hash(hash: object) -> None:
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


def _scan(directory: Path | str) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
