"""`gen verify`'s second half: the closure's archives rehashed (streamed), and, for every recorded
generation of every profile, whether it could be rolled back to today, image by image, without the
network:

    present    the engine has the image
    archived   it does not, but the closure has an intact archive: activation loads it
    pull       neither, but the generation pinned a registry digest: activation pulls exactly it
               (whether the registry still has it is not asked: no network)
    missing    none of these: the generation cannot be rolled back to (a failure of verify)

A generation that needs a missing image is named, with the images. An engine that does not answer is
a note, not a failure (the store's half of verify stands on its own); the caller says whether to ask.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gen.engine.base import Engine
from gen.errors import CorruptState, EngineUnavailable, GenError
from gen.state.archives import ArchiveIndex
from gen.state.profile import Profile, list_profiles
from store import BlobStore, Store
from store.errors import StoreError


@dataclass
class ArchiveCheck:
    ok: int = 0
    corrupt: list[str] = field(default_factory=list)      # blob hashes that fail their hash
    size_bytes: int = 0
    problems: list[str] = field(default_factory=list)     # damaged index entries

    def to_json(self) -> dict:
        return {"ok": self.ok, "corrupt": self.corrupt, "size_bytes": self.size_bytes, "problems": self.problems}


@dataclass
class ImageCheck:
    checked: bool = False
    note: str = ""                                         # why the images were not checked
    images: dict[str, dict] = field(default_factory=dict)  # image ID -> {"state", "detail", "needed_by"}

    @property
    def unrestorable(self) -> list[dict]:
        """{"profile", "generation", "images"} of every generation that cannot be rolled back to today."""
        found: dict[tuple[str, int], list[str]] = {}
        for image, info in sorted(self.images.items()):
            if info["state"] == "missing":
                for who in info["needed_by"]:
                    found.setdefault((who["profile"], who["generation"]), []).append(image)
        return [{"profile": p, "generation": n, "images": images} for (p, n), images in sorted(found.items())]

    def to_json(self) -> dict:
        return {"checked": self.checked, "note": self.note,
                "images": [{"id": i, **info} for i, info in sorted(self.images.items())],
                "unrestorable": self.unrestorable}


def check_archives(state_dir: Path, store: Store) -> ArchiveCheck:
    report = BlobStore(store.root).verify()
    check = ArchiveCheck(report.ok, sorted(report.corrupt), report.size_bytes)
    try:
        ArchiveIndex(state_dir).entries()
    except CorruptState as e:
        check.problems.append(str(e))
    return check


def check_images(state_dir: Path, store: Store, engine: Callable[[], Engine], archives: ArchiveCheck) -> ImageCheck:
    """Where each image of each recorded generation would come from at its activation (see above)."""
    result = ImageCheck()
    wanted = _images_needed(state_dir, store)
    if not wanted:
        result.checked = True
        return result
    try:
        eng = engine()
        present = {image for image in wanted if eng.has_image(image)}
    except EngineUnavailable as e:
        result.note = f"images not checked: {e}"
        return result
    index, blobs = ArchiveIndex(state_dir), BlobStore(store.root)
    for image, (digest, needed_by) in sorted(wanted.items()):
        state, detail = "present", ""
        if image not in present:
            state, detail = _elsewhere(index, blobs, image, digest, set(archives.corrupt))
        result.images[image] = {"state": state, "detail": detail, "needed_by": needed_by}
    result.checked = True
    return result


def _elsewhere(index: ArchiveIndex, blobs: BlobStore, image: str, digest: str | None,
               corrupt: set[str]) -> tuple[str, str]:
    """(state, detail) of an image the engine lacks."""
    try:
        blob = index.get(image)
    except CorruptState as e:
        blob, why = None, f"its closure index entry is damaged ({e.reason})"
    else:
        why = "not in the closure"
    if blob and blobs.has(blob) and blob not in corrupt:
        return "archived", f"blob {blob}"
    if blob:
        why = f"its archive (blob {blob[:12]}) is {'damaged' if blob in corrupt else 'missing'}"
    if digest:
        return "pull", f"{why}; would be pulled as {digest}"
    return "missing", f"not on the engine, {why}, and no registry digest was pinned"


def _images_needed(state_dir: Path, store: Store) -> dict[str, tuple[str | None, list[dict]]]:
    """image ID -> (a registry digest pinned for it, if any; the generations that need it). Generations
    whose objects cannot be read are left to the store's half of verify, which names them."""
    wanted: dict[str, tuple[str | None, list[dict]]] = {}
    by_manifest: dict[str, list[tuple[str, str | None]]] = {}
    for name in list_profiles(state_dir):
        prof = Profile(state_dir, name)
        for n in prof.numbers():
            try:
                manifest = prof.get(n).manifest
                if manifest not in by_manifest:
                    by_manifest[manifest] = _images_of(store, manifest)
            except (GenError, StoreError, ValueError, KeyError, TypeError, AttributeError):
                continue
            for image, digest in by_manifest[manifest]:
                known, needed_by = wanted.setdefault(image, (digest, []))
                needed_by.append({"profile": name, "generation": n})
                if digest and not known:
                    wanted[image] = (digest, needed_by)
    return wanted


def _images_of(store: Store, manifest_hash: str) -> list[tuple[str, str | None]]:
    manifest = store.get(manifest_hash)
    out = []
    for h in sorted(set((manifest.get("services") or {}).values())):
        obj = store.get(h)
        out.append((obj["image_id"], obj.get("image_digest") or None))
    return out
