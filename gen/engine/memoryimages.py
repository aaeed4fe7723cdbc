"""The images of gen.engine.memory's simulated engine, and the registry it pulls from and pushes to.

Docker's rules kept: an image is known by ID, by tag and, once pulled or pushed, by repository digest
("repo@sha256:..."); a pull fetches only what the registry holds ("manifest unknown" otherwise) and
tags the image unless it was asked for by digest; a push needs a local tag and returns the digest;
a build needs its FROM image present, runs nothing, and gives the same inputs the same image ID (as
Docker's layer cache does); `RUN false` or `RUN exit N` fails that step. Tests publish to the
registry with publish(), make it unreachable with `registry_error`, and script a build failure per
tag with engine.script(tag, fail_build="reason"). An image archive (save_image / load_image) is a
small JSON document of the image's ID and labels, streamed in two chunks; a load of anything else is
refused as Docker refuses a damaged archive.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator

from gen.engine.base import ImageInfo, Progress
from gen.engine.dockerstream import split_reference
from gen.errors import BuildFailed, EngineError, ImageMissing

_FAILING_RUN = re.compile(r"RUN\s+(false|exit\s+([1-9]\d*))\s*$", re.IGNORECASE)


def logged(fn):
    """Log the call as (verb, args) and hold the engine's lock while it runs."""
    @functools.wraps(fn)
    def inner(self, *args, **kwargs):
        with self._lock:
            self.calls.append((fn.__name__, args + tuple(kwargs.values())))
            return fn(self, *args, **kwargs)
    return inner


def digest_of(image_id: str) -> str:
    """The registry's manifest digest of an image: the same image has the same digest in every repository."""
    return "sha256:" + hashlib.sha256(f"manifest:{image_id}".encode()).hexdigest()


class MemoryImages:
    """Image state and verbs of MemoryEngine: images (id set), tags (ref -> id), digests (id -> repo
    digests), image_labels (id -> labels), registry (ref or repo digest -> id)."""

    def __init__(self, images: dict[str, str] | None = None):
        self.tags: dict[str, str] = dict(images or {})
        self.images: set[str] = set(self.tags.values())
        self.digests: dict[str, set[str]] = {}
        self.image_labels: dict[str, dict[str, str]] = {}
        self.registry: dict[str, str] = {}
        self.registry_error: str | None = None     # set: every pull and push fails with this reason

    def publish(self, ref: str, image_id: str) -> str:
        """Put an image in the simulated registry as `ref` ("repo:tag"); returns "repo@sha256:..."."""
        repo, _ = split_reference(ref)
        self.registry[ref] = self.registry[f"{repo}@{digest_of(image_id)}"] = image_id
        return f"{repo}@{digest_of(image_id)}"

    @logged
    def image_id(self, ref: str, subject: str) -> str:
        return self._resolve(ref, subject)

    def _resolve(self, ref: str, subject: str) -> str:
        if ref in self.images:
            return ref
        if ref in self.tags:
            return self.tags[ref]
        found = [i for i, refs in self.digests.items() if ref in refs and i in self.images]
        if found:
            return found[0]
        raise ImageMissing(subject, ref)

    @logged
    def image_info(self, ref: str, subject: str) -> ImageInfo:
        image_id = self._resolve(ref, subject)
        return ImageInfo(image_id, tuple(sorted(self.digests.get(image_id, ()))))

    @logged
    def image_digests(self, image_id: str) -> list[str]:
        if image_id not in self.images:
            raise ImageMissing(f"image {image_id[:19]}", image_id)
        return sorted(self.digests.get(image_id, ()))

    @logged
    def pull(self, ref: str, subject: str, progress: Progress | None = None) -> str:
        repo, tag = split_reference(ref)
        ref = ref if tag else f"{repo}:latest"
        if self.registry_error or ref not in self.registry:
            raise EngineError(subject, f"cannot pull {ref}: {self.registry_error or 'manifest unknown'}")
        image = self.registry[ref]
        self.images.add(image)
        self.digests.setdefault(image, set()).add(f"{repo}@{digest_of(image)}")
        if "@" not in ref:
            self.tags[ref] = image
        for line in (f"Pulling from {repo}", f"Digest: {digest_of(image)}", f"Status: Downloaded newer image for {ref}"):
            if progress:
                progress(line)
        return image

    @logged
    def push(self, ref: str, subject: str, progress: Progress | None = None) -> str:
        if ref not in self.tags:
            raise EngineError(subject, f"cannot push {ref}: An image does not exist locally with the tag: {ref}")
        if self.registry_error:
            raise EngineError(subject, f"cannot push {ref}: {self.registry_error}")
        image = self.tags[ref]
        pushed = self.publish(ref, image)
        self.digests.setdefault(image, set()).add(pushed)
        if progress:
            progress(f"{split_reference(ref)[1]}: digest: {digest_of(image)}")
        return pushed

    @logged
    def build_image(self, context: str, dockerfile: str, tag: str, args: dict[str, str], target: str | None,
                    labels: dict[str, str], subject: str, progress: Progress | None = None) -> str:
        path = os.path.join(context, dockerfile)
        if not os.path.isfile(path):
            raise BuildFailed(subject, "", f"Cannot locate specified Dockerfile: {dockerfile}")
        with open(path, encoding="utf-8") as f:
            steps = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        stages: set[str] = set()
        for n, step in enumerate(steps, 1):
            line = f"Step {n}/{len(steps)} : {step}"
            if progress:
                progress(line)
            self._build_step(step, stages, line, tag, subject)
        image = "sha256:" + _inputs_hash(context, dockerfile, args, target, labels)
        self.images.add(image)
        if tag:
            self.tags[tag if ":" in tag.rpartition("/")[2] else f"{tag}:latest"] = image
        self.image_labels[image] = dict(labels)
        return image

    def _build_step(self, step: str, stages: set[str], line: str, tag: str, subject: str) -> None:
        words = step.split()
        script = getattr(self, "scripts", {}).get(tag)
        if words[0].upper() == "FROM":
            base = words[1]
            if base != "scratch" and base not in stages and base not in self.tags and base not in self.images:
                raise BuildFailed(subject, line, f"pull access denied for {base.partition(':')[0]}, repository "
                                                 "does not exist or may require 'docker login'")
            if len(words) == 4 and words[2].upper() == "AS":
                stages.add(words[3])
        failing = _FAILING_RUN.match(step)
        if failing:
            command = step.split(None, 1)[1]
            raise BuildFailed(subject, line, f"The command '/bin/sh -c {command}' returned a non-zero code: "
                                             f"{failing.group(2) or 1}")
        if script is not None and script.fail_build and words[0].upper() == "RUN":
            raise BuildFailed(subject, line, script.fail_build)

    @logged
    def images_labelled(self, key: str, value: str) -> list[str]:
        return sorted(i for i, labels in self.image_labels.items() if labels.get(key) == value and i in self.images)

    @logged
    def has_image(self, image_id: str) -> bool:
        return image_id in self.images

    @logged
    def save_image(self, image_id: str) -> Iterator[bytes]:
        if image_id not in self.images:
            raise ImageMissing(f"image {image_id[:19]}", image_id)
        data = json.dumps({"memory-image": image_id, "labels": self.image_labels.get(image_id, {})}).encode()
        return iter([data[:len(data) // 2], data[len(data) // 2:]])

    @logged
    def load_image(self, chunks: Iterable[bytes]) -> list[str]:
        data = b"".join(chunks)          # what the source raises passes through, and nothing is loaded
        try:
            archive = json.loads(data)
            image = archive["memory-image"]
        except (ValueError, KeyError, TypeError):
            raise EngineError("docker load", "the engine refused the archive: unexpected EOF") from None
        self.images.add(image)
        if archive.get("labels"):
            self.image_labels[image] = dict(archive["labels"])
        return [image]

    @logged
    def pin_image(self, image_id: str, repo: str, tag: str) -> None:
        if image_id not in self.images:
            raise ImageMissing(f"image pin {repo}:{tag}", image_id)
        self.tags[f"{repo}:{tag}"] = image_id

    @logged
    def unpin_image(self, ref: str) -> bool:
        """Drop the tag; like Docker, the image goes with its last tag unless a container uses it."""
        image = self.tags.pop(ref, None)
        if image is None or image in self.tags.values() or any(
                c.obj["image_id"] == image for c in getattr(self, "containers", {}).values()):
            return False
        self.images.discard(image)
        return True

    @logged
    def pinned_images(self, repo_prefix: str) -> list[tuple[str, str]]:
        return sorted((ref, i) for ref, i in self.tags.items() if ref.startswith(repo_prefix))


def _inputs_hash(context: str, dockerfile: str, args: dict, target: str | None, labels: dict) -> str:
    """What Docker's cache keys a build on, roughly: the context's files, the Dockerfile, args, target, labels."""
    h = hashlib.sha256(repr((dockerfile, sorted(args.items()), target, sorted(labels.items()))).encode())
    for root, dirs, files in os.walk(context):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, context).encode() + b"\0")
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()
