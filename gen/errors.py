"""gen's own errors. The CLI catches GenError once and prints "subject: reason".

Each error carries the exit code the CLI should use:
0 ok, 1 bad input / refused, 2 activation failed and rolled back, 3 drift or interrupted activation.
"""
from __future__ import annotations


class GenError(Exception):
    exit_code = 1

    def __init__(self, subject: str, reason: str):
        super().__init__(subject, reason)
        self.subject = subject
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


class SpecError(GenError):
    """A spec is malformed. `subject` is the key path, e.g. services.web.ports[0]."""


class EngineError(GenError):
    """The Docker engine refused or failed an operation (translated at the engine boundary)."""


class EngineUnavailable(EngineError):
    """The engine does not answer."""


class ImageMissing(EngineError):
    def __init__(self, subject: str, image: str, detail: str = ""):
        super().__init__(subject, f"image {image!r} is not present on the engine" + (f" ({detail})" if detail else ""))
        self.image = image


class BuildFailed(EngineError):
    """An image build (`build:` of a service) failed: exit 1, naming the service and the failing step."""

    def __init__(self, subject: str, step: str, reason: str):
        super().__init__(subject, f"build failed at {step}: {reason}" if step else f"build failed: {reason}")
        self.step = step


class StateTooFull(GenError):
    """The state directory's disk has too little free space to commit: refused before anything is touched."""

    def __init__(self, path: str, free: int, needed: int):
        super().__init__(f"state directory {path}", f"only {free // 1024} KiB free, at least {needed // 1024} KiB "
                         "are needed to commit; free some space (nothing was changed)")
        self.free = free
        self.needed = needed


class NotOwned(GenError):
    """An engine object gen would use carries another owner (or none): refused, never adopted."""

    def __init__(self, kind: str, name: str, owner: str | None, profile: str):
        whose = f"belongs to profile {owner!r}" if owner else "exists but was not made by gen (by hand, or by Compose?)"
        super().__init__(f"{kind} {name}", f"{whose}, not to profile {profile!r}; rename it in the spec, or "
                         f"declare it `external` to use it as it is (gen then never creates or removes it)")
        self.kind = kind
        self.name = name
        self.owner = owner


class ProfileError(GenError):
    """Unknown profile, no such generation, nothing older to roll back to, ..."""


class LockBusy(GenError):
    def __init__(self, profile: str, holder_pid: int | None, waited_s: float):
        who = f"pid {holder_pid}" if holder_pid else "another process"
        super().__init__(f"profile {profile}", f"an activation is in progress ({who}); waited {waited_s:g}s")
        self.holder_pid = holder_pid


class ActivationFailed(GenError):
    """The new generation did not become healthy; the previous one was restored."""
    exit_code = 2

    def __init__(self, subject: str, reason: str, *, service: str | None = None, state: str | None = None,
                 exit_status: int | None = None, logs: str = "", restored: bool = True):
        super().__init__(subject, reason)
        self.service = service
        self.state = state
        self.exit_status = exit_status
        self.logs = logs
        self.restored = restored

    @classmethod
    def wrap(cls, error: BaseException) -> "ActivationFailed":
        """A failure while preparing or starting (engine refused, image gone, or an exception that is
        not gen's own: a read timeout from a hung engine, a bug) becomes an activation failure."""
        if isinstance(error, cls):
            return error
        if hasattr(error, "subject") and hasattr(error, "reason"):
            return cls(error.subject, error.reason)
        return cls("activation", f"unexpected {type(error).__name__}: {error}")

    def mark_not_restored(self, problem: str) -> None:
        self.restored = False
        self.exit_code = 3
        self.reason += f"; restoring the previous generation ALSO failed ({problem})"


class Interrupted(GenError):
    """An earlier activation was interrupted and the engine does not match `current`."""
    exit_code = 3


class CorruptState(GenError, ValueError):
    """A file or store object of the state directory is damaged, foreign, or of a format this gen does
    not know. Raised on read, before anything is changed; `path` names the file (or `object <hash>`).

    Also a ValueError: it is a bad value read from disk, so callers that guard their reads of state
    with `except ValueError` (gen verify lists such problems) keep catching it."""

    def __init__(self, path: str, reason: str, *, exit_code: int = 1):
        super().__init__(str(path), reason)
        self.path = str(path)
        self.exit_code = exit_code


class UnknownFormat(CorruptState):
    """An object or file written in a format this gen cannot read (a newer gen's, or a foreign one)."""

    def __init__(self, path: str, kind: str, found: object, known: tuple[int, ...], *, exit_code: int = 1):
        versions = ", ".join(map(str, known))
        super().__init__(path, f"{kind} has format {found!r}, but this gen reads format {versions} only "
                         "(written by a newer gen?); nothing was changed", exit_code=exit_code)
        self.kind = kind
        self.found = found
        self.known = known
