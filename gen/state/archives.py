"""The closure's image archives on disk: one `docker save` archive per image ID, kept as a blob of the
store (store.blobs: content-addressed, streamed, rehashed on read), and an index that names it:

    <state>/closure/images/<64 hex of the image ID>     "<image ID> <blob hash>\\n", written atomically

One archive per image ID, shared by every generation of any profile whose services use that image,
so a thousand generations of one image cost one archive. An ID that is not "sha256:<64 hex>" (a
test engine's) is filed under the blake3 hash of the ID; the line names the ID either way.

gc (gen.state.gc) keeps the archives of the images that the objects it keeps use and frees the rest
(`sweep`): the index entry first, then the blob, each under the same rules as store objects: writers
hold the store's gc lock shared from the blob's install until its entry is written
(gen.state.roots.writing), gc holds it exclusive while it sweeps, and an entry or blob modified less
than the grace period before gc started is left for the next run.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from gen.errors import CorruptState
from gen.state.retention import GcReport
from store import BlobStore, digest
from store.fsutil import TEMP_PREFIX, atomic_write, ensure_dir
from store.objects import HASH_RE

INDEX_DIR = Path("closure") / "images"
_DOCKER_ID = re.compile(r"sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Entry:
    image: str          # the image ID
    blob: str           # the blake3 hash of its archive in the store's blobs
    path: Path          # the index file


class ArchiveIndex:
    def __init__(self, state_dir: Path | str):
        self.dir = Path(state_dir) / INDEX_DIR

    def path_of(self, image_id: str) -> Path:
        m = _DOCKER_ID.fullmatch(image_id)
        return self.dir / (m.group(1) if m else digest(image_id.encode()))

    def get(self, image_id: str) -> str | None:
        """The blob holding the image's archive (None: not archived); CorruptState for a damaged entry."""
        entry = self._read(self.path_of(image_id))
        if entry is not None and entry.image != image_id:
            raise CorruptState(entry.path, f"names image {entry.image}, not {image_id}")
        return entry.blob if entry else None

    def record(self, image_id: str, blob: str) -> None:
        """Name `blob` as the image's archive, durably (the caller holds the store's gc lock shared)."""
        if not HASH_RE.fullmatch(blob) or any(c.isspace() for c in image_id) or not image_id:
            raise ValueError(f"not an image ID and a blob hash: {image_id!r}, {blob!r}")
        ensure_dir(self.dir)
        atomic_write(self.path_of(image_id), f"{image_id} {blob}\n".encode(), mode=0o600)

    def remove(self, image_id: str) -> None:
        try:
            os.unlink(self.path_of(image_id))
        except FileNotFoundError:
            pass

    def entries(self) -> list[Entry]:
        """Every entry, sorted by file name; CorruptState naming the first damaged one (gc must not
        guess which archive it protected)."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        found = [self._read(self.dir / name) for name in names if not name.startswith(TEMP_PREFIX)]
        return [e for e in found if e is not None]

    @staticmethod
    def _read(path: Path) -> Entry | None:
        try:
            text = path.read_bytes().decode("ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            raise CorruptState(path, f"closure index entry cannot be read ({e})") from None
        parts = text.split()
        if len(parts) != 2 or not HASH_RE.fullmatch(parts[1]) or not text.endswith("\n"):
            raise CorruptState(path, "is not a closure index entry (\"<image ID> <blob hash>\" expected); "
                               "delete it, and archive the image again")
        return Entry(parts[0], parts[1], path)


def sweep(state_dir: Path, blobs: BlobStore, live_images: set[str] | None, grace_until: float,
          report: GcReport) -> None:
    """Free the archives of images no kept object uses: their index entries, then every blob no
    remaining entry names (a crash between a blob's install and its entry leaves such an orphan).
    live_images None: which images are used is unknown (a kept service object is damaged): nothing
    is freed. The report counts archives (blobs) and their bytes; a dry run deletes nothing."""
    if live_images is None:
        report.warnings.append("image archives left as they are (a kept service object is damaged)")
        return
    index = ArchiveIndex(state_dir)
    kept: set[str] = set()
    for entry in index.entries():
        if entry.image in live_images or _recent(entry.path, grace_until):
            kept.add(entry.blob)
        elif not report.dry_run:
            index.remove(entry.image)
    for h in blobs.iter_hashes():
        try:
            st = blobs.path_of(h).stat()
        except FileNotFoundError:
            continue                    # removed meanwhile
        if h in kept:
            report.archives_live += 1
        elif st.st_mtime >= grace_until:
            report.archives_recent += 1
        else:
            if not report.dry_run:
                blobs.delete(h)
            report.archives_deleted += 1
            report.archive_bytes_freed += st.st_size


def _recent(path: Path, grace_until: float) -> bool:
    try:
        return path.stat().st_mtime >= grace_until
    except FileNotFoundError:
        return False
