"""Errors raised by the store. Each renders as "subject: reason", like gen's own errors.

The store never imports gen, so these are a separate hierarchy; gen's CLI catches
StoreError alongside GenError and prints it the same way.
"""
from __future__ import annotations

import errno
from pathlib import Path


class StoreError(Exception):
    exit_code = 1

    def __init__(self, subject: str, reason: str):
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


class CorruptObject(StoreError):
    """An object's bytes no longer hash to its name."""

    def __init__(self, hash: str, path: Path, actual: str):
        super().__init__(
            f"object {hash}",
            f"checksum mismatch: content hashes to {actual}; the object at {path} was modified on disk",
        )
        self.hash = hash
        self.path = path
        self.actual = actual


class MissingObject(StoreError):
    def __init__(self, hash: str):
        super().__init__(f"object {hash}", "no such object in the store")
        self.hash = hash


class InvalidHash(MissingObject):
    """A string that cannot name an object (wrong length, not hex, a path...).

    A subclass of MissingObject because no object can have such a name; callers that
    handle "not found" handle this too. It is rejected before any path is built.
    """

    def __init__(self, value: object, reason: str):
        StoreError.__init__(self, f"object {value!r}", reason)
        self.hash = value


class AmbiguousPrefix(StoreError):
    def __init__(self, prefix: str, matches: list[str]):
        shown = ", ".join(m[:12] for m in matches[:5])
        more = ", ..." if len(matches) > 5 else ""
        super().__init__(
            f"object {prefix}",
            f"prefix matches {len(matches)} objects ({shown}{more}); give more digits",
        )
        self.prefix = prefix
        self.matches = matches


class EncodingError(StoreError):
    """A value has no canonical encoding, or bytes are not a canonical encoding.

    `subject` is where in the value the fault is, e.g. "value.services.web.x".
    """


class LockTimeout(StoreError):
    def __init__(self, path: Path, holder_pid: int | None, waited_s: float):
        who = f"pid {holder_pid}" if holder_pid else "another process"
        super().__init__(f"lock {path}", f"held by {who}; gave up after {waited_s:.1f}s")
        self.path = path
        self.holder_pid = holder_pid
        self.waited_s = waited_s


class StateUnwritable(StoreError):
    def __init__(self, path: Path | str, reason: str):
        super().__init__(str(path), reason)
        self.path = path

    @classmethod
    def from_os_error(cls, path: Path | str, exc: OSError, action: str = "write") -> StateUnwritable:
        return cls(path, _describe(exc, action))


_KNOWN_CAUSES = {
    errno.ENOSPC: "disk full (ENOSPC)",
    errno.EDQUOT: "disk quota exceeded (EDQUOT)",
    errno.EACCES: "permission denied (EACCES)",
    errno.EPERM: "operation not permitted (EPERM)",
    errno.EROFS: "read-only file system (EROFS)",
    errno.EIO: "I/O error (EIO)",
}


def _describe(exc: OSError, action: str) -> str:
    cause = _KNOWN_CAUSES.get(exc.errno) or exc.strerror or str(exc)
    return f"cannot {action}: {cause}"
