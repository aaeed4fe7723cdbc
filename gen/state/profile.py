"""Profiles: a named deployment history on one engine.

On disk, under `<state>/profiles/<name>/`:
  generations/<N>.json   one record per generation: number, manifest hash, creation time (immutable)
  current                symlink to generations/<N>.json; flipping it is the single commit point
  lock                   flock'ed by whoever mutates the profile (holds the holder's pid)
  journal.json           present while an activation is in flight (pid, from, to)
  activations.log        one JSON line per activation: what, from, to, outcome, duration
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gen.errors import LockBusy, ProfileError
from gen.model.naming import NAME_RE
from gen.model.types import GenerationRecord, Journal
from store.errors import LockTimeout
from store.fsutil import FileLock, atomic_symlink, atomic_write, ensure_dir, read_link


def default_state_dir() -> Path:
    env = os.environ.get("GEN_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(xdg) / "gen"


@dataclass(frozen=True)
class Generation:
    number: int
    manifest: str
    created: str            # ISO 8601, UTC
    services: int = 0
    source: str | None = None   # store object holding the spec text it was built from (when known)

    def to_json(self, current: bool) -> dict:
        return {"generation": self.number, "hash": self.manifest, "created": self.created,
                "current": current, "services": self.services}


class Profile:
    def __init__(self, state_dir: Path, name: str):
        if not NAME_RE.fullmatch(name):
            raise ProfileError(f"profile {name!r}", "invalid name (use [a-z0-9][a-z0-9_.-]*, at most 63 characters)")
        self.name = name
        self.path = Path(state_dir) / "profiles" / name
        self._generations = self.path / "generations"
        self._current = self.path / "current"
        self._journal = self.path / "journal.json"
        self._log = self.path / "activations.log"

    def exists(self) -> bool:
        return self._generations.is_dir()

    # -- generations ----------------------------------------------------------------------------
    def numbers(self) -> list[int]:
        try:
            names = os.listdir(self._generations)
        except FileNotFoundError:
            return []
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def get(self, number: int) -> Generation:
        try:
            return self._read(f"{self._generations}/{number}.json")
        except FileNotFoundError:
            raise ProfileError(f"profile {self.name}", f"has no generation {number}") from None

    def generations(self) -> list[Generation]:
        # The hot path of `gen list`: plain string paths, one open and read per record.
        base = str(self._generations)
        return [self._read(f"{base}/{n}.json") for n in self.numbers()]

    @staticmethod
    def _read(path: str) -> Generation:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)     # half the cost of open(): 10,000 of these in a list
        try:
            data = json.loads(os.read(fd, 1 << 16).decode())
        finally:
            os.close(fd)
        return Generation(data["generation"], data["manifest"], data["created"], data.get("services", 0),
                          data.get("source"))

    def newest(self) -> Generation | None:
        numbers = self.numbers()
        return self.get(numbers[-1]) if numbers else None

    def current_number(self) -> int | None:
        target = read_link(self._current)
        return int(Path(target).stem) if target else None

    def current(self) -> Generation | None:
        n = self.current_number()
        return self.get(n) if n is not None else None

    def append(self, manifest: str, services: int, source: str | None = None) -> Generation:
        """Record a new generation (caller holds the lock). Numbers only grow."""
        newest = self.newest()
        gen = Generation((newest.number + 1) if newest else 1, manifest,
                         datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"), services, source)
        ensure_dir(self._generations)
        record: GenerationRecord = {"generation": gen.number, "manifest": gen.manifest, "created": gen.created,
                                    "services": services}
        if source:
            record["source"] = source
        atomic_write(self._generations / f"{gen.number}.json", _dumps(record))
        return gen

    def set_current(self, number: int) -> None:
        """The commit point: an atomic symlink swap."""
        atomic_symlink(f"generations/{number}.json", self._current)

    def delete_generation(self, number: int) -> None:
        if number == self.current_number():
            raise ProfileError(f"profile {self.name}", f"generation {number} is current and cannot be deleted")
        (self._generations / f"{number}.json").unlink(missing_ok=True)

    # -- locking and the activation journal ------------------------------------------------------
    def lock(self) -> FileLock:
        ensure_dir(self.path)
        return FileLock(self.path / "lock")

    def acquire(self, timeout_s: float) -> FileLock:
        """The profile's lock, held; LockBusy naming the holder after timeout_s."""
        lock = self.lock()
        started = time.monotonic()
        try:
            lock.acquire(timeout_s)
        except LockTimeout as e:
            raise LockBusy(self.name, e.holder_pid, round(time.monotonic() - started, 1)) from None
        return lock

    @contextmanager
    def locked(self, timeout_s: float):
        lock = self.acquire(timeout_s)
        try:
            yield
        finally:
            lock.release()

    def begin(self, kind: str, from_gen: int | None, to_manifest: str, to_gen: int | None) -> None:
        record: Journal = {"pid": os.getpid(), "kind": kind, "from": from_gen, "to": to_manifest,
                           "to_generation": to_gen, "started": time.time()}
        atomic_write(self._journal, _dumps(record), mode=0o600)

    def journal(self) -> Journal | None:
        try:
            return json.loads(self._journal.read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            return {"pid": None, "kind": "unknown", "from": None, "to": None, "to_generation": None}

    def end(self) -> None:
        self._journal.unlink(missing_ok=True)

    def log_activation(self, record: dict) -> None:
        """Append one record; `time` (ISO 8601, UTC, when it started) is added from `started` (epoch s)."""
        if "time" not in record and isinstance(record.get("started"), (int, float)):
            record = {**record, "time": iso_time(record["started"])}
        ensure_dir(self.path)
        with open(self._log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def activations(self) -> list[dict]:
        try:
            lines = self._log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [r for r in map(_loads, lines) if isinstance(r, dict)]


def _loads(line: str):
    """One log line; a line torn by a crash mid-write is skipped, not fatal."""
    try:
        return json.loads(line) if line.strip().startswith("{") else None
    except ValueError:
        return None


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def find_profile(state_dir: Path, name: str | None) -> Profile:
    """The named profile, or the only one when no name is given."""
    if name:
        return Profile(state_dir, name)
    names = list_profiles(state_dir)
    if len(names) == 1:
        return Profile(state_dir, names[0])
    raise ProfileError("profile", "none exists yet" if not names else
                       f"several exist ({', '.join(names)}); choose one with -p NAME")


def history(state_dir: Path, name: str | None) -> tuple[Profile, list[Generation], int | None]:
    """A profile's generations and its current number (what `gen list` shows)."""
    prof = find_profile(state_dir, name)
    if not prof.exists():
        raise ProfileError(f"profile {prof.name}", "has no generations")
    return prof, prof.generations(), prof.current_number()


def list_profiles(state_dir: Path) -> list[str]:
    try:
        return sorted(p for p in os.listdir(Path(state_dir) / "profiles") if NAME_RE.fullmatch(p))
    except FileNotFoundError:
        return []


def _dumps(record: dict) -> bytes:
    return (json.dumps(record, sort_keys=True) + "\n").encode()
