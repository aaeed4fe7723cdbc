"""Profiles: a named deployment history on one engine.

On disk, under `<state>/profiles/<name>/`:
  generations/<N>.json   one record per generation: number, manifest hash, creation time (immutable)
  current                symlink to generations/<N>.json; flipping it is the single commit point
  lock                   flock'ed by whoever mutates the profile (holds the holder's pid)
  journal.json           present while an activation is in flight (pid, from, to)
  stopping               while one is in flight: how late a stop it asked of the engine may still land
  activations.log        one JSON line per activation: what, from, to, outcome, duration

Every read checks what it finds (gen.model.formats): a record, journal or `current` link that is
damaged, foreign or of an unknown format raises CorruptState naming the file, and nothing is
changed or guessed. Records and journals of older formats are read as they are.
"""
from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gen.errors import CorruptState, LockBusy, ProfileError, UnknownFormat
from gen.model import formats
from gen.model.naming import NAME_RE
from gen.model.types import JOURNAL_FORMAT, RECORD_FORMAT, GenerationRecord, Journal
from store.errors import LockTimeout, StoreError
from store.fsutil import FileLock, atomic_symlink, atomic_write, ensure_dir, fsync_dir, read_link

STOPPING_FILE = "stopping"
CURRENT_TARGET_RE = re.compile(r"generations/([0-9]+)\.json")    # what set_current writes, and nothing else


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
        except OSError as e:        # a file where the directory should be, no permission
            raise CorruptState(self._generations, f"cannot be listed ({e.strerror})") from None
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def get(self, number: int) -> Generation:
        try:
            return self._read(f"{self._generations}/{number}.json", number)
        except FileNotFoundError:
            raise ProfileError(f"profile {self.name}", f"has no generation {number}") from None

    def generations(self) -> list[Generation]:
        # The hot path of `gen list`: plain string paths, one open and read per record.
        base = str(self._generations)
        return [self._read(f"{base}/{n}.json", n) for n in self.numbers()]

    @staticmethod
    def _read(path: str, number: int) -> Generation:
        """Generation `number` from its record; FileNotFoundError when there is none."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)     # half the cost of open(): 10,000 of these in a list
            try:
                raw = os.read(fd, 1 << 16)
            finally:
                os.close(fd)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise CorruptState(path, f"cannot be read ({e.strerror})") from None
        try:
            data = json.loads(raw.decode())
        except ValueError:          # also UnicodeDecodeError: random bytes
            raise CorruptState(path, "is not a generation record (not valid JSON); nothing was changed: restore "
                               "it from a backup (`gen verify` lists every damaged file)") from None
        record = formats.generation_record(data, path, number)
        return Generation(record["generation"], record["manifest"], record["created"], record["services"],
                          record["source"])

    def newest(self) -> Generation | None:
        numbers = self.numbers()
        return self.get(numbers[-1]) if numbers else None

    def current_number(self) -> int | None:
        """The number `current` points at (None before the first generation); CorruptState when it
        points anywhere but at generations/<N>.json (a foreign link, a hand edit)."""
        try:
            target = read_link(self._current)
        except StoreError as e:     # not a symlink
            raise CorruptState(self._current, f"{e.reason}; it must be a symlink to generations/<N>.json. "
                               f"{self._repair_current}") from None
        if target is None:
            return None
        match = CURRENT_TARGET_RE.fullmatch(target)
        if not match:
            raise CorruptState(self._current, f"points at {target!r}, not at a generation record "
                               f"(generations/<N>.json). {self._repair_current}")
        return int(match.group(1))

    def rollback_target(self, to: int | None = None) -> Generation:
        """Generation `to`, or, by default, the newest one older than `current` (what `gen rollback` activates)."""
        if to is not None:
            return self.get(to)
        current = self.current_number()
        older = [n for n in self.numbers() if current is None or n < current]
        if not older:
            raise ProfileError(f"profile {self.name}",
                               f"no generation older than {current} to roll back to" if current else "has no generations")
        return self.get(older[-1])

    def current(self) -> Generation | None:
        n = self.current_number()
        if n is None:
            return None
        try:
            return self.get(n)
        except ProfileError:
            raise CorruptState(self._current, f"points at generation {n}, which has no record. "
                               f"{self._repair_current}") from None

    @property
    def _repair_current(self) -> str:
        return (f"Nothing was changed; to repair it, point it at a generation that exists "
                f"(ls {self._generations}): ln -sfn generations/<N>.json {self._current}")

    def append(self, manifest: str, services: int, source: str | None = None) -> Generation:
        """Record a new generation (caller holds the lock). Numbers only grow."""
        newest = self.newest()
        gen = Generation((newest.number + 1) if newest else 1, manifest,
                         datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"), services, source)
        ensure_dir(self._generations)
        record: GenerationRecord = {"format": RECORD_FORMAT, "generation": gen.number, "manifest": gen.manifest,
                                    "created": gen.created, "services": services}
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
        record: Journal = {"format": JOURNAL_FORMAT, "pid": os.getpid(), "kind": kind, "from": from_gen,
                           "to": to_manifest, "to_generation": to_gen, "started": time.time()}
        atomic_write(self._journal, _dumps(record), mode=0o600)

    def journal(self) -> Journal | None:
        """The journal of an activation in flight or interrupted (None: there is none). One that cannot
        be read as a journal gen knows (damaged, foreign, a newer gen's) raises CorruptState, exit 3:
        nothing guesses what that activation was doing, and the file stays."""
        try:
            raw = self._journal.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._journal_problem(CorruptState(self._journal, f"cannot be read ({e.strerror})")) from None
        try:
            data = json.loads(raw.decode())
        except ValueError:
            raise self._journal_problem(CorruptState(self._journal, "is not a journal (not valid JSON)")) from None
        try:
            return formats.journal(data, str(self._journal))
        except CorruptState as e:
            raise self._journal_problem(e) from None

    def _journal_problem(self, e: CorruptState) -> CorruptState:
        e.exit_code = 3
        if isinstance(e, UnknownFormat):     # a newer gen's: only that gen knows what it meant
            e.reason += (f"; an activation of profile {self.name} by that gen may be unfinished: finish it with that "
                         f"gen, or, if no gen process is running, remove the file and run `gen recover -p {self.name}`")
        else:
            e.reason += (f"; an activation of profile {self.name} may have been interrupted: run `gen recover -p "
                         f"{self.name}` (it waits for any gen still running, then converges on the current generation)")
        return e

    def end(self) -> None:
        self._journal.unlink(missing_ok=True)
        (self.path / STOPPING_FILE).unlink(missing_ok=True)

    def note_stopping(self, until: float) -> None:
        """Note that a stop this activation asked of the engine may land as late as `until` (epoch s):
        Docker carries it out even if this process is killed, and the recovery that follows must not
        look before. Not fsynced: a killed process's writes stay (the page cache), and a machine crash
        takes the engine's stop with it."""
        (self.path / STOPPING_FILE).write_text(f"{until}\n")

    def stopping_until(self) -> float:
        """What note_stopping said last (0: nothing, or a file that is not a time: no wait on a guess)."""
        try:
            return float((self.path / STOPPING_FILE).read_text())
        except (OSError, ValueError):
            return 0.0

    def log_activation(self, record: dict) -> None:
        """Append one record; `time` (ISO 8601, UTC, when it started) is added from `started` (epoch s)."""
        if "time" not in record and isinstance(record.get("started"), (int, float)):
            record = {**record, "time": iso_time(record["started"])}
        ensure_dir(self.path)
        created = not self._log.exists()
        with open(self._log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if created:
            fsync_dir(self.path)        # the new file's name is durable too, not only its first line

    def activations(self) -> list[dict]:
        try:
            lines = self._log.read_bytes().decode("utf-8", "replace").splitlines()   # a damaged line is skipped below
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
