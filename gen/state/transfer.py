"""Moving a generation's closure without a registry: to a file (`export`), from a file (`import_`,
gen.state.importing) and to another engine (`copy`). The file's format: gen.state.bundle.

    export(state_dir, store, profile, generation | None, out, images, engine, progress) -> Exported
        writes ONE tar stream to `out`, sequentially (a pipe will do), never whole in memory: the
        header, the generation's objects, and with images=True its image archives: from the
        closure, or saved from `engine` into a temporary file first when not archived (a tar member
        needs its size before its bytes). The caller writes `out` to a temporary name and renames
        it when this returns: a failed export (a damaged archive found as it streams) raises.
    import_(state_dir, store, in_stream, progress) -> Imported          (see gen.state.importing)
    copy(state_dir, store, profile, generation | None, source, target, progress) -> Copied
        loads the generation's images onto `target`, only those it lacks (has_image), streamed:
        from the closure's archive when there is an intact one, else straight from `source`'s
        `docker save` stream. The loaded images are untagged until a switch there pins them.

Progress (gen.state.closure.ByteProgress) is told the bytes as they move.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

from gen.engine.base import Engine
from gen.errors import EngineError, GenError, ProfileError
from gen.model.compile import Compiled
from gen.state import bundle
from gen.state.archives import ArchiveIndex
from gen.state.closure import ByteProgress, archived, counted, image_ids
from gen.state.importing import Imported, import_
from gen.state.manifests import load_compiled
from gen.state.profile import Generation, Profile
from store import BlobStore, Store, decode
from store.errors import CorruptObject, MissingObject, StoreError
from store.fsutil import TEMP_PREFIX

__all__ = ["Copied", "Exported", "Imported", "copy", "export", "import_"]


@dataclass
class Exported:
    profile: str
    generation: int
    manifest: str
    objects: int
    images: list[dict] = field(default_factory=list)      # {"id", "blob", "size", "from": "closure" | "engine"}
    bytes: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Copied:
    profile: str
    generation: int
    copied: list[dict] = field(default_factory=list)      # {"id", "from": "closure" | "engine", "bytes"}
    skipped: list[str] = field(default_factory=list)      # image IDs the target had already


def generation(state_dir: Path, profile: str, number: int | None) -> Generation:
    """Generation `number` of the profile, or its current one."""
    prof = Profile(state_dir, profile)
    if number is None:
        number = prof.current_number()
        if number is None:
            raise ProfileError(f"profile {profile}", "has no current generation; name one")
    return prof.get(number)


# -- export ----------------------------------------------------------------------------------------
def export(state_dir: Path, store: Store, profile: str, number: int | None, out: BinaryIO, images: bool = False,
           engine: Engine | Callable[[], Engine] | None = None, progress: ByteProgress | None = None) -> Exported:
    gen = generation(state_dir, profile, number)
    compiled = load_compiled(store, gen.manifest, str(state_dir))      # every object rehashed and checked
    result = Exported(profile, gen.number, gen.manifest, 0)
    objects = _objects(store, compiled, gen, result)
    spool = Path(state_dir) / f"{TEMP_PREFIX}export-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        archives = _archives(state_dir, store, compiled, engine, spool, progress) if images else []
        listed = [{"hash": h, "kind": kind, "size": len(data)} for h, kind, data in objects]
        result.images = [{"id": a["id"], "blob": a["blob"], "size": a["size"], "from": a["from"]} for a in archives]
        source = next((h for h, kind, _ in objects if kind == "source"), None)
        head = bundle.header(profile, gen.number, gen.manifest, source, listed,
                             [{k: a[k] for k in ("id", "blob", "size")} for a in archives], bundle.key_id(state_dir))
        total = len(head) + sum(len(d) for _, _, d in objects) + sum(a["size"] for a in archives)
        writer = _Writer(out, total, progress)
        writer.member(bundle.HEADER, len(head), [head])
        for h, kind, data in objects:
            writer.member(bundle.member_name(kind, h), len(data), [data])
        for a in archives:
            writer.member(bundle.member_name("image", a["blob"]), a["size"], a["chunks"]())
        writer.end()
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    result.objects, result.bytes = len(objects), writer.done
    return result


def _objects(store: Store, compiled: Compiled, gen: Generation, result: Exported) -> list[tuple[str, str, bytes]]:
    """(hash, kind, bytes): pinned files, services, the source when it is intact, the manifest last."""
    out = [(h, decode(data)["kind"], data) for h, data in sorted(compiled.materials.items())]
    out += [(h, "service", compiled.encoded[h]) for h, _ in sorted(compiled.services.values())]
    if gen.source:
        try:
            out.append((gen.source, "source", store.get_bytes(gen.source)))
        except StoreError as e:
            result.notes.append(f"the spec source was left out: {e}")
    return out + [(compiled.manifest_hash, "manifest", store.get_bytes(compiled.manifest_hash))]


def _archives(state_dir: Path, store: Store, compiled: Compiled, engine, spool: Path,
              progress: ByteProgress | None) -> list[dict]:
    """{"id", "blob", "size", "from", "chunks"} of each image: the closure's archive, or one saved now."""
    blobs, index = BlobStore(store.root), ArchiveIndex(state_dir)
    out = []
    for image in image_ids(compiled):
        blob = archived(index, blobs, image)
        if blob:
            out.append({"id": image, "blob": blob, "size": blobs.size_of(blob), "from": "closure",
                        "chunks": lambda blob=blob: blobs.chunks(blob)})
            continue
        if engine is None:
            raise GenError(f"image {image[:19]}", "is not in the closure, and no engine was given to save it from")
        source = _connect(engine)
        temp, blob, size = blobs.stage(counted(source.save_image(image), f"saving image {image[:19]}", 0, progress),
                                       spool)
        out.append({"id": image, "blob": blob, "size": size, "from": "engine",
                    "chunks": lambda temp=temp: _read_file(temp)})
    return out


class _Writer:
    """Tar members written in order, with progress in bytes of content."""

    def __init__(self, out: BinaryIO, total: int, progress: ByteProgress | None):
        self.out, self.total, self.progress, self.done = out, total, progress, 0

    def member(self, name: str, size: int, chunks) -> None:
        self.out.write(bundle.member_header(name, size))
        written = 0
        for chunk in chunks:
            self.out.write(chunk)
            written += len(chunk)
            self.done += len(chunk)
            if self.progress:
                self.progress("export", self.done, self.total)
        if written != size:
            raise StoreError(name, f"gave {written} bytes, not the {size} listed; the export is incomplete")
        self.out.write(bundle.padding(size))

    def end(self) -> None:
        self.out.write(bundle.END)
        self.out.flush()


def _read_file(path: Path, size: int = 1 << 20):
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def _connect(engine: Engine | Callable[[], Engine]) -> Engine:
    return engine if hasattr(engine, "save_image") else engine()


# -- copy ------------------------------------------------------------------------------------------
def copy(state_dir: Path, store: Store, profile: str, number: int | None,
         source: Engine | Callable[[], Engine] | None, target: Engine,
         progress: ByteProgress | None = None) -> Copied:
    gen = generation(state_dir, profile, number)
    compiled = load_compiled(store, gen.manifest, str(state_dir))
    blobs, index = BlobStore(store.root), ArchiveIndex(state_dir)
    result = Copied(profile, gen.number)
    for image in image_ids(compiled):
        if target.has_image(image):
            result.skipped.append(image)
            continue
        what = f"image {image[:19]}"
        blob = archived(index, blobs, image)
        if blob and _intact(blobs, blob):
            origin, chunks = "closure", counted(blobs.chunks(blob), what, blobs.size_of(blob), progress)
        elif source is not None:
            origin, chunks = "engine", counted(_connect(source).save_image(image), what, 0, progress)
        else:
            raise GenError(what, "has no intact archive in the closure, and no source engine was given")
        sent = _Count(chunks)
        loaded = target.load_image(sent)
        if image not in loaded:
            raise EngineError(what, f"the target loaded {', '.join(i[:19] for i in loaded) or 'nothing'}, not it")
        result.copied.append({"id": image, "from": origin, "bytes": sent.bytes})
    return result


def _intact(blobs: BlobStore, blob: str) -> bool:
    with contextlib.suppress(CorruptObject, MissingObject):
        blobs.check(blob)
        return True
    return False


class _Count:
    def __init__(self, chunks):
        self.chunks, self.bytes = chunks, 0

    def __iter__(self):
        for chunk in self.chunks:
            self.bytes += len(chunk)
            yield chunk
