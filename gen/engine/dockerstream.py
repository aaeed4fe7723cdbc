"""The event streams of an image pull, push and build, read into what gen shows and keeps: a
progress line per change (not per byte), the result (digest, image ID), the failing step and the
first error. Plain values in (the SDK's decoded events), no `docker` import."""
from __future__ import annotations

import re

from gen.engine.base import Progress

STEP = re.compile(r"^Step \d+/\d+ : ")


class TransferLog:
    """A pull's or push's events: one line when a layer's status changes ("Downloading" once, not
    its every byte), the digest a push reports, and the first error."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.digest: str | None = None
        self.error: str | None = None
        self._status: dict[str, str] = {}       # layer id -> its last status shown

    def read(self, event: dict) -> None:
        if "error" in event or "errorDetail" in event:
            self.error = self.error or error_text(event)
            return
        self.digest = (event.get("aux") or {}).get("Digest") or self.digest
        status, layer = event.get("status"), event.get("id")
        if not status or layer and self._status.get(layer) == status:
            return
        if layer:
            self._status[layer] = status
        if self.progress:
            self.progress(f"{layer}: {status}" if layer else status)


class BuildLog:
    """A build's events: every output line shown, the last "Step N/M : ..." kept (the one that failed
    when an error follows), the image ID the builder reports, and the first error."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.step = ""
        self.image_id: str | None = None
        self.error: str | None = None

    def read(self, event: dict) -> None:
        if "error" in event or "errorDetail" in event:
            self.error = self.error or error_text(event)
            return
        self.image_id = (event.get("aux") or {}).get("ID") or self.image_id
        for line in (event.get("stream") or "").splitlines():
            if not line.strip():
                continue
            if STEP.match(line):
                self.step = line.strip()
            if self.progress:
                self.progress(line.rstrip())


def error_text(event: dict) -> str:
    """The first line of an error event's message."""
    message = (event.get("errorDetail") or {}).get("message") or event.get("error") or "unknown error"
    return str(message).strip().splitlines()[0] if str(message).strip() else "unknown error"


def split_reference(ref: str) -> tuple[str, str | None]:
    """("repo", "tag" | "sha256:...") of "repo:tag" or "repo@sha256:..." (a registry's port is no tag)."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    repo, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, None
    return repo, tag
