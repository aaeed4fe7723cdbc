"""Images of the containers an activation creates: present, or pulled by their pinned digest.

A generation pins each image by ID, and, when a registry gave one, by repository digest
("repo@sha256:..."): after a prune, on another host or after an import, the activation pulls exactly
that digest, never a tag, before anything running is touched. An image without a digest stays
missing (ImageMissing: nothing says where it could come from). A pull that fails, or that yields
another image than the pinned ID, fails the switch with the registry's reason; nothing was touched.
"""
from __future__ import annotations

from gen.deploy.options import Progress
from gen.engine.base import Engine
from gen.errors import EngineError, ImageMissing


def ensure_images(engine: Engine, objects: dict[str, dict], progress: Progress) -> None:
    """objects: service -> service object, for the services that create containers."""
    by_image: dict[str, tuple[str, dict]] = {}
    for service, obj in sorted(objects.items()):
        by_image.setdefault(obj["image_id"], (service, obj))
    for image_id, (service, obj) in sorted(by_image.items()):
        try:
            engine.image_id(image_id, f"image {image_id[:19]}")
        except ImageMissing:
            if not obj.get("image_digest"):
                raise
            _pull(engine, service, image_id, obj["image_digest"], progress)


def _pull(engine: Engine, service: str, image_id: str, digest: str, progress: Progress) -> None:
    progress(service, "pulling", digest)
    got = engine.pull(digest, f"service {service}", lambda line: progress(service, "pulling", line))
    if got != image_id:
        raise EngineError(f"service {service}", f"pulled {digest}, which is image {got[:19]}, not the pinned "
                          f"{image_id[:19]}")
