"""`gen import FILE`: a generation's closure, exported by `gen export` (format: gen.state.bundle), added
to a state directory, all or nothing.

The file is read once, as a stream (a pipe will do). Objects are held in memory (each at most
bundle.MAX_OBJECT) and image archives staged as temporary files in the state directory, each rehashed
as it arrives: one that does not hash to its name is refused, naming it. Only once the whole file
has arrived and checked out (every listed member there, the objects a whole generation of formats
this gen reads, each archive holding the image it is listed for) does anything reach the store:
objects (manifest last) and archives, under the store's gc lock, then the archives' closure index
entries and the profile's import root (gen.state.roots), which keeps all of it from gc until the
next import of that profile; a switch of the manifest then makes it a generation. A truncated,
damaged or altered file leaves the state directory exactly as it was (exit 1).
"""
from __future__ import annotations

import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gen.errors import GenError
from gen.model.compile import Compiled
from gen.state import bundle
from gen.state.archives import ArchiveIndex
from gen.state.closure import ByteProgress, archived, image_ids
from gen.state.manifests import load_compiled
from gen.state.roots import record_import, writing
from store import BlobStore, Store, decode, digest, ensure_canonical
from store.errors import EncodingError, MissingObject, StoreError
from store.fsutil import TEMP_PREFIX


@dataclass
class Imported:
    profile: str
    generation: int | None                  # its number where it was exported
    manifest: str
    objects: int
    images: list[dict] = field(default_factory=list)      # {"id", "blob", "size"}
    bytes: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Received:
    header: dict
    objects: dict[str, bytes] = field(default_factory=dict)
    archives: dict[str, Path] = field(default_factory=dict)     # blob hash -> staged file


def import_(state_dir: Path, store: Store, in_stream: BinaryIO, progress: ByteProgress | None = None,
            lock_timeout: float = 30.0, name: str = "import") -> Imported:
    """Add the export read from `in_stream` (`name` names it in messages); see the module's docstring."""
    state_dir = Path(state_dir)
    made = [d for d in [state_dir, *state_dir.parents] if not d.exists()]     # removed again on failure
    staging = state_dir / f"{TEMP_PREFIX}import-{os.getpid()}-{os.urandom(4).hex()}"
    blobs = BlobStore(store.root)
    reader = _Reader(in_stream, progress)
    try:
        got = _receive(reader, staging, blobs, name)
        compiled = _check(got, state_dir, name)
        result = _commit(got, compiled, state_dir, store, blobs, lock_timeout)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in made:
            _remove_empty(directory)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    result.bytes, result.notes = reader.done, _key_notes(got.header, state_dir)
    return result


# -- reading: every member rehashed as it arrives ----------------------------------------------------
def _receive(reader: "_Reader", staging: Path, blobs: BlobStore, name: str) -> _Received:
    got: _Received | None = None
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                if got is None:
                    got = _Received(_header(tar, member, name))
                    reader.total = sum(s for _, s in got.header["by_hash"].values()) + \
                        sum(s for _, s in got.header["by_blob"].values())
                else:
                    _take(tar, member, got, staging, blobs)
    except (tarfile.TarError, EOFError) as e:
        raise GenError(name, f"is truncated or damaged ({e}); nothing was imported") from None
    if got is None:
        raise GenError(name, "is empty, or not a gen export; nothing was imported")
    lacking = [f"objects/{h}" for h in got.header["by_hash"] if h not in got.objects] + \
              [f"images/{b}" for b in got.header["by_blob"] if b not in got.archives]
    if lacking:
        raise GenError(name, f"is truncated: {len(lacking)} listed member(s) never came (first: {lacking[0]}); "
                       "nothing was imported")
    return got


def _header(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str) -> dict:
    if member.name != bundle.HEADER or not member.isfile() or member.size > bundle.MAX_HEADER:
        raise GenError(name, "is not a gen export (it does not start with gen-export.json)")
    return bundle.read_header(tar.extractfile(member).read(), name)


def _take(tar: tarfile.TarFile, member: tarfile.TarInfo, got: _Received, staging: Path, blobs: BlobStore) -> None:
    parsed = bundle.parse_member(member.name)
    if parsed is None or not member.isfile():
        raise GenError(f"member {member.name}", "is not part of a gen export; nothing was imported")
    folder, h = parsed
    listed, seen = (got.header["by_hash"], got.objects) if folder == "objects" else (got.header["by_blob"], got.archives)
    if h not in listed or h in seen or member.size != listed[h][1]:
        raise GenError(f"member {member.name}", "is not listed in the export's header as it is (name, size), or "
                       "appears twice; nothing was imported")
    data = tar.extractfile(member)
    if folder == "objects":
        if member.size > bundle.MAX_OBJECT:
            raise GenError(f"object {h}", "is larger than any gen object; nothing was imported")
        _take_object(h, data.read(), got)
        return
    temp, actual, _ = blobs.stage(iter(lambda: data.read(1 << 20), b""), staging)
    got.archives[h] = temp
    if actual != h:
        raise GenError(f"image archive {h} (image {listed[h][0]})", f"content hashes to {actual}: the export was "
                       "altered or damaged; nothing was imported")


def _take_object(h: str, data: bytes, got: _Received) -> None:
    actual = digest(data)
    if actual != h:
        raise GenError(f"object {h}", f"content hashes to {actual}: the export was altered or damaged; "
                       "nothing was imported")
    try:
        ensure_canonical(data)
    except EncodingError:
        raise GenError(f"object {h}", "is not a canonical gen object; nothing was imported") from None
    got.objects[h] = data


# -- checking: a whole generation, and archives that hold its images ---------------------------------
class _View:
    """The received objects, read as load_compiled reads a store."""

    def __init__(self, objects: dict[str, bytes]):
        self.objects = objects

    def get_bytes(self, h: str) -> bytes:
        try:
            return self.objects[h]
        except KeyError:
            raise MissingObject(h) from None

    def get(self, h: str) -> object:
        return decode(self.get_bytes(h))


def _check(got: _Received, state_dir: Path, name: str) -> Compiled:
    head = got.header
    try:
        compiled = load_compiled(_View(got.objects), head["manifest"], str(state_dir))
        source = decode(got.objects[head["source"]]) if head["source"] else None
    except MissingObject as e:
        raise GenError(name, f"lacks object {e.hash}, which its manifest needs; nothing was imported") from None
    except (GenError, StoreError) as e:
        raise GenError(name, f"holds no generation this gen can use ({e}); nothing was imported") from None
    if compiled.manifest["profile"] != head["profile"] or (source is not None and (
            not isinstance(source, dict) or source.get("kind") != "source")):
        raise GenError(name, "has a header that does not match its objects; nothing was imported")
    closure = {compiled.manifest_hash, *compiled.materials, *(h for h, _ in compiled.services.values())}
    extra = sorted(set(got.objects) - closure - {head["source"]})
    if extra:
        raise GenError(f"object {extra[0]}", "is not part of the exported generation; nothing was imported")
    wanted = set(image_ids(compiled))
    for blob, temp in sorted(got.archives.items()):
        image = head["by_blob"][blob][0]
        if image not in wanted:
            raise GenError(f"image archive {blob}", f"is listed for image {image}, which the generation does not use; "
                           "nothing was imported")
        if image not in bundle.archive_image_ids(temp):
            raise GenError(f"image archive {blob}", f"does not hold image {image} (its content says otherwise); "
                           "nothing was imported")
    return compiled


# -- committing: only now does anything reach the state directory -----------------------------------
def _commit(got: _Received, compiled: Compiled, state_dir: Path, store: Store, blobs: BlobStore,
            lock_timeout: float) -> Imported:
    head = got.header
    index = ArchiveIndex(state_dir)
    others = [data for h, data in sorted(got.objects.items()) if h != compiled.manifest_hash]
    result = Imported(head["profile"], head["generation"], compiled.manifest_hash, len(got.objects))
    with writing(store, lock_timeout):
        store.put_many_encoded(others)
        store.put_many_encoded([got.objects[compiled.manifest_hash]])      # last: a manifest has its closure
        for blob, temp in sorted(got.archives.items()):
            image, size = head["by_blob"][blob]
            if not archived(index, blobs, image):
                blobs.install(temp, blob)
                index.record(image, blob)
            result.images.append({"id": image, "blob": blob, "size": size})
        record_import(state_dir, head["profile"], compiled.manifest_hash, head["source"])
    return result


def _key_notes(head: dict, state_dir: Path) -> list[str]:
    if not head.get("secrets"):
        return []
    mine = bundle.key_id(state_dir)
    if mine is None:
        return [f"it has {head['secrets']} secret(s), sealed with the exporting state directory's key, and this "
                "state directory has no key yet: copy that secret.key here before switching"]
    if head.get("key_id") and head["key_id"] != mine:
        return [f"its {head['secrets']} secret(s) are sealed with another key than this state directory's: a "
                "switch will be refused until the exporting key is used (GEN_SECRET_KEY_FILE)"]
    return []


class _Reader:
    """The input stream, counted for progress."""

    def __init__(self, stream: BinaryIO, progress: ByteProgress | None):
        self.stream, self.progress, self.done, self.total = stream, progress, 0, 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.done += len(data)
        if self.progress and data:
            self.progress("import", self.done, self.total)
        return data


def _remove_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass
