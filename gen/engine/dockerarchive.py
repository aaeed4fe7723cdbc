"""Image archives on the wire, for gen.engine.docker's save_image / load_image: what `docker load`
answers, read into image IDs, and the guard that keeps an archive's own source errors apart from the
engine's. Plain values in, no `docker` import.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from gen.engine.dockerstream import error_text

ARCHIVE_CHUNK = 1 << 20         # bytes per chunk of a `docker save` stream
_LOADED_ID = re.compile(r"Loaded image ID: (sha256:[0-9a-f]{64})")
_LOADED_REF = re.compile(r"Loaded image: (\S+)")


class LoadLog:
    """`docker load`'s events: the images it loaded (IDs, or the "repo:tag" it names a tagged one
    by) and the first error (a damaged archive: "unexpected EOF", "invalid diffID ...")."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.refs: list[str] = []
        self.error: str | None = None

    def read(self, event: dict) -> None:
        if "error" in event or "errorDetail" in event:
            self.error = self.error or error_text(event)
            return
        for line in str(event.get("stream") or "").splitlines():
            if m := _LOADED_ID.search(line):
                self.ids.append(m.group(1))
            elif m := _LOADED_REF.search(line):
                self.refs.append(m.group(1))


class Relay:
    """The chunks of an archive on their way into `docker load`, with the source's own failure kept
    aside: an archive that fails its rehash (a damaged blob) or an engine that stops saving mid-stream
    breaks the upload, and the caller must raise that failure, not the broken connection it causes."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks
        self.failure: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except BaseException as e:     # handed back to the caller by raise_failure
            self.failure = e
            raise

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure
