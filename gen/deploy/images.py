"""Images of the containers an activation creates: present, loaded from the closure, or pulled by
their pinned digest.

With an image closure (gen.state.closure), an image the engine lacks is loaded from its archive in the
store first (no registry, no network: after `docker image prune -a`, after an import); and when the
profile (or the switch) keeps its closure, the generation's images are archived here, before anything
running is touched.

A generation pins each image by ID, and, when a registry gave one, by repository digest
("repo@sha256:..."): after a prune, on another host or after an import, the activation pulls exactly
that digest, never a tag, before anything running is touched. An image without a digest stays
missing (ImageMissing: nothing says where it could come from). A pull that fails, or that yields
another image than the pinned ID, fails the switch with the registry's reason; nothing was touched.
"""
from __future__ import annotations

import time
from pathlib import Path

from gen.deploy.options import Progress
from gen.engine.base import Engine
from gen.errors import EngineError, ImageMissing
from gen.model.compile import Compiled
from gen.state import closure
from gen.state.archives import ArchiveIndex
from store import BlobStore, Store


def prepare_images(engine: Engine, target: Compiled, objects: dict[str, dict], progress: Progress,
                   keep_closure: bool | None = None) -> None:
    """objects: service -> service object, for the services that create containers. keep_closure: the
    switch's --closure/--no-closure (None: the profile's setting). Costs nothing beyond today's image
    check when every image is present and no closure is kept."""
    state = Path(target.state_dir) if target.state_dir is not None else None
    by_image: dict[str, tuple[str, dict]] = {}
    for service, obj in sorted(objects.items()):
        by_image.setdefault(obj["image_id"], (service, obj))
    for image_id, (service, obj) in sorted(by_image.items()):
        try:
            engine.image_id(image_id, f"image {image_id[:19]}")
        except ImageMissing as missing:
            _fetch(engine, state, service, obj, missing, progress)
    if state is not None and closure.enabled(state, target.manifest["profile"], keep_closure):
        for a in closure.archive_images(state, Store(state / "store"), engine, target, _bytes(progress, "archiving")):
            progress(f"image {a.image[:19]}", "archived", f"{a.size / 1048576:.1f} MiB in the store")


def _fetch(engine: Engine, state: Path | None, service: str, obj: dict, missing: ImageMissing,
           progress: Progress) -> None:
    """A missing image: from the closure's archive first (no network), else by its pinned digest."""
    why = "there is no state directory"
    if state is not None:
        store = Store(state / "store")
        why = closure.restore(ArchiveIndex(state), BlobStore(store.root), engine, obj["image_id"],
                              _bytes(progress, "loading"))
        if why is None:
            progress(service, "loaded", f"image {obj['image_id'][:19]} from the closure")
            return
    if not obj.get("image_digest"):
        raise ImageMissing(missing.subject, missing.image, f"no registry digest is pinned, and {why}") from None
    _pull(engine, service, obj["image_id"], obj["image_digest"], progress)


def _bytes(progress: Progress, phase: str):
    """Bytes moving, as a progress line per image at most every half second (a small image says nothing
    until it is done: its caller reports that)."""
    started: dict[str, float] = {}
    shown: dict[str, float] = {}

    def report(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        started.setdefault(what, now)
        if now - started[what] >= 0.5 and now - shown.get(what, 0.0) >= 0.5:
            shown[what] = now
            progress(what, phase, f"{done / 1048576:.1f} MiB" + (f" of {total / 1048576:.1f}" if total else ""))
    return report


def _pull(engine: Engine, service: str, image_id: str, digest: str, progress: Progress) -> None:
    progress(service, "pulling", digest)
    got = engine.pull(digest, f"service {service}", lambda line: progress(service, "pulling", line))
    if got != image_id:
        raise EngineError(f"service {service}", f"pulled {digest}, which is image {got[:19]}, not the pinned "
                          f"{image_id[:19]}")
