"""Blobs: large content-addressed files (image archives), streamed in and out, never held in memory.

A blob lives at root/blobs/<h[:2]>/<h>, named by the blake3 hash of its bytes, read-only (0444), like
an object (store.objects) but not msgpack: its content is opaque to the store (a `docker save`
archive, say). Writes stream through a temporary file that is hashed as it is written, flushed to
disk and renamed into place, so a name always holds durable, complete content: a crash or a broken
stream leaves at most a temporary file, which `verify` lists as stray. Reads rehash the content as
it streams (`chunks`), so damage on disk is reported instead of handed on. The gc lock of
store.objects covers blobs too: blobs live under the same root.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from store.errors import CorruptObject, MissingObject, StateUnwritable, StoreError
from store.fsutil import TEMP_PREFIX, ensure_dir, fsync_dir, unlink_if_present
from store.objects import HASH_RE, OBJECT_MODE, VerifyReport, check_hash, scan_sorted

CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"

    def path_of(self, hash: str) -> Path:
        check_hash(hash)
        return self.blobs_dir / hash[:2] / hash

    def has(self, hash: str) -> bool:
        return self.path_of(hash).is_file()

    def size_of(self, hash: str) -> int:
        try:
            return self.path_of(hash).stat().st_size
        except FileNotFoundError:
            raise MissingObject(hash) from None

    def put_stream(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store the concatenated chunks; returns (hash, size). Nothing is named until all of it is
        on disk; a failure of the stream (raised as it is) or of the disk (StateUnwritable) leaves
        nothing behind."""
        temp, hash, size = self.stage(chunks, self.blobs_dir)
        self.install(temp, hash)
        return hash, size

    def stage(self, chunks: Iterable[bytes], directory: Path | str) -> tuple[Path, str, int]:
        """Write the chunks to a new temporary file in `directory` (on the store's file system: the
        caller's staging area), hashed and flushed as they come; returns (its path, hash, size). Named
        nothing: the caller installs it (`install`) once it trusts the whole of what it received, or
        deletes it. A failure of the stream or the disk leaves no file."""
        import blake3
        directory = ensure_dir(directory)
        temp = Path(directory) / f"{TEMP_PREFIX}blob-{os.getpid()}-{os.urandom(4).hex()}"
        hasher, size = blake3.blake3(), 0
        try:
            with _disk(temp):
                file = open(temp, "xb")
            with file:
                for chunk in chunks:        # the stream's own errors pass through unchanged
                    hasher.update(chunk)
                    size += len(chunk)
                    with _disk(temp):
                        file.write(chunk)
                with _disk(temp):
                    file.flush()
                    os.fsync(file.fileno())
                    os.fchmod(file.fileno(), OBJECT_MODE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return temp, hasher.hexdigest(), size

    def install(self, temp: Path | str, hash: str) -> None:
        """Name a file made by `stage` (with the hash it returned) as blob `hash`, durably; the file is
        moved, or deleted when an intact blob of that name exists already."""
        path = self.path_of(hash)
        try:
            if self._intact(hash, path):
                os.unlink(temp)
                return
            with _disk(path):
                ensure_dir(path.parent)
                os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        fsync_dir(path.parent)

    def chunks(self, hash: str, size: int = CHUNK) -> Iterator[bytes]:
        """The blob's content in chunks, rehashed as it goes: CorruptObject after the last chunk when
        it does not hash to its name (a reader that must not act on damaged content calls check first)."""
        import blake3
        path = self.path_of(hash)
        hasher = blake3.blake3()
        try:
            file = open(path, "rb")
        except FileNotFoundError:
            raise MissingObject(hash) from None
        except OSError as exc:
            raise StoreError(f"blob {hash}", f"cannot read {path}: {exc.strerror}") from exc
        with file:
            while chunk := file.read(size):
                hasher.update(chunk)
                yield chunk
        if hasher.hexdigest() != hash:
            raise CorruptObject(hash, path, hasher.hexdigest())

    def check(self, hash: str) -> None:
        """Rehash the whole blob (streamed): MissingObject or CorruptObject when it is not intact."""
        for _ in self.chunks(hash):
            pass

    def delete(self, hash: str) -> None:
        """Remove a blob (for gc); an absent one is not an error."""
        unlink_if_present(self.path_of(hash))

    def iter_hashes(self) -> Iterator[str]:
        for fanout in scan_sorted(self.blobs_dir):
            if fanout.is_dir(follow_symlinks=False):
                for entry in scan_sorted(fanout.path):
                    if entry.name[:2] == fanout.name and HASH_RE.fullmatch(entry.name):
                        yield entry.name

    def verify(self) -> VerifyReport:
        """Rehash every blob, streamed; temporary and foreign files are listed as stray."""
        report = VerifyReport()
        for fanout in scan_sorted(self.blobs_dir):
            entries = scan_sorted(fanout.path) if fanout.is_dir(follow_symlinks=False) else [fanout]
            for entry in entries:
                if not (entry.name[:2] == fanout.name and HASH_RE.fullmatch(entry.name)):
                    report.stray.append(Path(entry.path))
                    continue
                try:
                    report.size_bytes += os.stat(entry.path).st_size
                    self.check(entry.name)
                    report.ok += 1
                except MissingObject:
                    continue        # deleted (by gc) since it was listed
                except CorruptObject:
                    report.corrupt.append(entry.name)
        return report

    def _intact(self, hash: str, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            self.check(hash)
            return True
        except CorruptObject:
            return False     # damaged: the put rewrites it whole


@contextlib.contextmanager
def _disk(path: Path):
    """A file-system failure at `path` becomes the store's StateUnwritable."""
    try:
        yield
    except StateUnwritable:
        raise
    except OSError as exc:
        raise StateUnwritable.from_os_error(path, exc) from exc
