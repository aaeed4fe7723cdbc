"""Closures: a generation together with the images it needs, kept in the store, so that a rollback
works after `docker image prune -a` and a generation can move to a host without a registry (Nix's
closure). Each image is kept once, as a `docker save` archive in the store's blobs, named in the
closure index by its image ID (gen.state.archives); gc keeps the archives of kept generations.

The contract (the activation and the CLI call these; nothing else is needed):

    enable(state_dir, profile)            the profile keeps its generations' images from now on
    disable(state_dir, profile)           it stops (archives already made stay until gc frees them)
    enabled(state_dir, profile, flag)     should this activation archive? `flag` is the switch's
                                          own choice (`--closure` True, `--no-closure` False, None:
                                          the profile's setting)
    archive_images(state_dir, store, engine, compiled, progress)
        saves every image of `compiled` not archived yet (streamed into a blob); idempotent. The
        activation calls it in its prepare step, after the images are present, when `enabled`.
    restore_missing(state_dir, store, engine, compiled, progress) -> {image ID: why not restored}
        loads onto the engine every image of `compiled` that it lacks and the closure has, each
        archive rehashed whole before it is streamed into `docker load` (a damaged one is never
        loaded). The activation calls it in its prepare step before it pulls anything by digest,
        whatever the setting: an archive present is used. What it returns is still missing.

The setting is a file, profiles/<name>/closure ("images"), written atomically; `enable` before a
profile's first switch creates the profile's directory. Progress (ByteProgress) is called as bytes
move: (what, bytes so far, total or 0 when unknown).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gen.engine.base import Engine
from gen.errors import CorruptState, EngineError, EngineUnavailable
from gen.model.compile import Compiled
from gen.state.archives import ArchiveIndex
from gen.state.profile import Profile
from gen.state.roots import writing
from store import BlobStore, Store
from store.errors import CorruptObject, MissingObject, StoreError
from store.fsutil import atomic_write, ensure_dir, fsync_dir

SETTING_FILE = "closure"
SETTING = b"images\n"
ByteProgress = Callable[[str, int, int], None]      # (what, bytes so far, total bytes or 0 when unknown)


@dataclass(frozen=True)
class Archived:
    image: str
    blob: str
    size: int


# -- the opt-in ------------------------------------------------------------------------------------
def enable(state_dir: Path, profile: str) -> None:
    prof = Profile(state_dir, profile)          # checks the name
    atomic_write(ensure_dir(prof.path) / SETTING_FILE, SETTING, mode=0o600)


def disable(state_dir: Path, profile: str) -> None:
    prof = Profile(state_dir, profile)
    try:
        os.unlink(prof.path / SETTING_FILE)
    except FileNotFoundError:
        return
    fsync_dir(prof.path)


def enabled(state_dir: Path, profile: str, flag: bool | None = None) -> bool:
    """The switch's own flag when it gives one, else the profile's setting. CorruptState for a
    setting file that says anything else (never guessed)."""
    if flag is not None:
        return flag
    path = Profile(state_dir, profile).path / SETTING_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as e:
        raise CorruptState(path, f"cannot be read ({e.strerror})") from None
    if data != SETTING:
        raise CorruptState(path, 'is not a closure setting ("images" expected); delete it or run '
                           "the closure opt-in again")
    return True


# -- the images of a generation --------------------------------------------------------------------
def image_ids(compiled: Compiled) -> list[str]:
    """Every image the generation's services run, sorted, each once."""
    return sorted({obj["image_id"] for _, obj in compiled.services.values()})


def archive_images(state_dir: Path, store: Store, engine: Engine, compiled: Compiled,
                   progress: ByteProgress | None = None, lock_timeout: float = 30.0) -> list[Archived]:
    """Save every image of `compiled` that the closure lacks; returns what it archived. Each archive
    streams from the engine into a staged blob (temporary, never in memory), is installed and
    named in the index under the store's gc lock, held only for that moment."""
    blobs, index = BlobStore(store.root), ArchiveIndex(state_dir)
    done = []
    for image in image_ids(compiled):
        if archived(index, blobs, image):
            continue
        temp, blob, size = blobs.stage(counted(engine.save_image(image), f"image {image[:19]}", 0, progress),
                                       blobs.blobs_dir)
        with writing(store, lock_timeout):
            blobs.install(temp, blob)
            index.record(image, blob)
        done.append(Archived(image, blob, size))
    return done


def archived(index: ArchiveIndex, blobs: BlobStore, image: str) -> str | None:
    """The blob holding the image's archive, when the index names one that is present (not rehashed
    here: `gen verify` rehashes them, restore_missing before it loads one)."""
    try:
        blob = index.get(image)
    except CorruptState:
        return None                     # archived again over the damaged entry
    return blob if blob and blobs.has(blob) else None


def restore_missing(state_dir: Path, store: Store, engine: Engine, compiled: Compiled,
                    progress: ByteProgress | None = None) -> dict[str, str]:
    """Load every image of `compiled` that the engine lacks from the closure; returns {image ID: why
    it is still missing} for those it could not (not archived, archive missing or damaged, refused
    by the engine). An engine that does not answer raises EngineUnavailable."""
    blobs, index = BlobStore(store.root), ArchiveIndex(state_dir)
    missing = {}
    for image in image_ids(compiled):
        if not engine.has_image(image):
            why = restore(index, blobs, engine, image, progress)
            if why:
                missing[image] = why
    return missing


def restore(index: ArchiveIndex, blobs: BlobStore, engine: Engine, image: str,
            progress: ByteProgress | None = None) -> str | None:
    """Load one image from its archive; None when it is now on the engine, else why not."""
    try:
        blob = index.get(image)
    except CorruptState as e:
        return f"its closure index entry is damaged ({e.reason})"
    if blob is None:
        return "it is not in the closure"
    try:
        blobs.check(blob)               # the whole archive rehashed before a byte reaches the engine
        loaded = engine.load_image(counted(blobs.chunks(blob), f"image {image[:19]}", blobs.size_of(blob), progress))
    except MissingObject:
        return f"its archive (blob {blob[:12]}) is missing from the store"
    except CorruptObject:
        return f"its archive (blob {blob[:12]}) is damaged (fails its hash): not loaded"
    except EngineUnavailable:
        raise
    except (EngineError, StoreError) as e:
        return f"loading its archive (blob {blob[:12]}) failed: {e}"
    if image not in loaded:
        return f"its archive (blob {blob[:12]}) holds {', '.join(i[:19] for i in loaded) or 'no image'}, not it"
    return None


def counted(chunks: Iterable[bytes], what: str, total: int, progress: ByteProgress | None) -> Iterator[bytes]:
    """The chunks, passed on as they come, with progress told after each."""
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if progress:
            progress(what, done, total)
