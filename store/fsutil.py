"""Crash-safe file primitives: atomic writes, atomic symlink swaps, directory creation, locks.

Every write goes to a uniquely named temp file in the target's directory and is renamed
into place, so a reader sees the old content or the new, never a mix, and concurrent
writers never share a temp file. Temp names start with TEMP_PREFIX so scanners can skip
them. OSErrors from writes surface as StateUnwritable.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from store.errors import LockTimeout, StateUnwritable, StoreError

TEMP_PREFIX = ".tmp-"


def _temp_name(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{path.name}-{os.getpid()}-{os.urandom(4).hex()}")


def atomic_write(path: Path | str, data: bytes, mode: int = 0o444) -> None:
    """Replace `path` with `data`, durably: after return the new content survives a crash."""
    path = Path(path)
    temp = _temp_name(path)
    try:
        # O_EXCL: on a (vanishingly unlikely) name collision, fail instead of sharing a file;
        # and since we did not create it, it is not ours to remove below.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateUnwritable.from_os_error(path, exc) from exc
    try:
        _write_synced(fd, data, mode)
        os.replace(temp, path)
    except BaseException as exc:
        _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise StateUnwritable.from_os_error(path, exc) from exc
        raise
    fsync_dir(path.parent)  # makes the rename itself durable


def _write_synced(fd: int, data: bytes, mode: int) -> None:
    """Write all of `data`, flush it to disk, set `mode`, and close `fd`."""
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
        os.fchmod(file.fileno(), mode)


def unlink_if_present(path: Path) -> None:
    """Remove a file; an absent one is not an error, any other failure is StateUnwritable naming it."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StateUnwritable.from_os_error(path, exc) from exc


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def atomic_write_many(items: list[tuple[Path, bytes]], mode: int = 0o444) -> None:
    """atomic_write for many files at the cost of two filesystem syncs instead of two fsyncs each.

    All temp files are written, then one syncfs makes their data durable, then they are renamed
    into place and a second syncfs makes the renames durable. So a file visible under its final
    name always has durable content, which is the invariant a content-addressed store needs.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in items:
            temp = _temp_name(path)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            temps.append((temp, path))
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                os.fchmod(file.fileno(), mode)
        if temps:
            _syncfs(temps[0][1].parent)
        for temp, path in temps:
            os.replace(temp, path)
        if temps:
            _syncfs(temps[0][1].parent)
    except BaseException as exc:
        for temp, _ in temps:
            _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise StateUnwritable.from_os_error(items[0][0], exc) from exc
        raise


def _syncfs(directory: Path) -> None:
    """Flush the filesystem holding `directory` (syncfs(2)). Only a kernel or libc without syncfs falls
    back to os.sync(); a failed flush (EIO, ENOSPC: the data may never reach the disk) raises
    StateUnwritable naming the directory, since the files written so far are not durable."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise StateUnwritable.from_os_error(directory, exc, "flush to disk") from exc
    try:
        libc = _libc()
        if libc is None:
            os.sync()
        elif libc.syncfs(fd) != 0:
            import ctypes                       # already loaded by _libc
            error = ctypes.get_errno()
            # ENOSYS: the kernel lacks it; EPERM: a seccomp filter forbids it (syncfs itself never
            # fails with EPERM). Either way the call is unavailable, not failed.
            if error not in (errno.ENOSYS, errno.EPERM):
                raise StateUnwritable.from_os_error(directory, OSError(error, os.strerror(error)), "flush to disk")
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _libc():
    # Loaded on first use: ctypes costs every command that merely reads state (gen list) ~5 ms.
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)     # the process's own symbols: libc's, no library search
        return libc if hasattr(libc, "syncfs") else None
    except OSError:
        return None


def fsync_dir(path: Path | str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateUnwritable.from_os_error(path, exc) from exc


def atomic_symlink(target: str, link: Path | str) -> None:
    """Point `link` at `target` in one rename: readers see the old target or the new one.

    This is the deployer's commit point. rename(2) replaces a symlink itself (it never
    follows it), and the directory fsync makes the switch survive a crash.
    """
    link = Path(link)
    temp = _temp_name(link)
    try:
        os.symlink(target, temp)
        os.replace(temp, link)
    except BaseException as exc:
        _remove_quietly(temp)
        if isinstance(exc, OSError):
            raise StateUnwritable.from_os_error(link, exc) from exc
        raise
    fsync_dir(link.parent)


def read_link(link: Path | str) -> str | None:
    """The target of `link`, or None if it does not exist."""
    try:
        return os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError as exc:  # EINVAL: something other than a symlink sits there
        raise StoreError(str(link), f"cannot read link: {exc.strerror}") from exc


def ensure_dir(path: Path | str, mode: int = 0o700) -> Path:
    """Create `path` and any missing parents with `mode`; existing directories are left alone.

    Each new directory's parent is fsynced: otherwise a crash could lose the directory
    entry, and with it every file already durably written inside.
    """
    path = Path(path)
    missing = []
    for ancestor in [path, *path.parents]:
        if ancestor.is_dir():
            break
        missing.append(ancestor)
    for directory in reversed(missing):
        _make_dir(directory, mode)
    return path


def _make_dir(directory: Path, mode: int) -> None:
    try:
        os.mkdir(directory, mode)
    except FileExistsError:
        if directory.is_dir():  # a concurrent creator won the race: fine
            return
        raise StateUnwritable(directory, "exists but is not a directory") from None
    except OSError as exc:
        raise StateUnwritable.from_os_error(directory, exc) from exc
    os.chmod(directory, mode)  # mkdir's mode is filtered by the umask; we mean it exactly
    fsync_dir(directory.parent)


class FileLock:
    """A flock(2) on a lock file: exclusive, or with shared=True shared (many holders at once, none
    while an exclusive holder has it).

    The kernel lock is the truth: it dies with its holder, so a lock is never stale. The
    pid an exclusive holder writes into the file only names the holder in error messages (shared
    holders write none: several hold it at once). The file is never deleted (deleting it would let
    two processes lock two different files).

    The descriptor is close-on-exec, so exec'd children do not inherit the lock. Use
    `with FileLock(path).held(timeout):` or call acquire()/release() explicitly.
    """

    POLL_S = 0.05

    def __init__(self, path: Path | str, shared: bool = False):
        self.path = Path(path)
        self.shared = shared
        self._fd: int | None = None  # open exactly while the lock is held

    def try_acquire(self) -> bool:
        """Take the lock if free; never waits."""
        if self._fd is not None:
            raise StoreError(f"lock {self.path}", "already held by this FileLock")
        fd = self._open()
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        if not self.shared:
            self._record_pid(fd)
        return True

    def acquire(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the lock; raise LockTimeout naming the holder."""
        started = time.monotonic()
        while not self.try_acquire():
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockTimeout(self.path, self.holder_pid(), waited)
            time.sleep(min(self.POLL_S, timeout - waited))

    def release(self) -> None:
        if self._fd is None:
            return
        # Clear the pid first so nobody blames us for a lock we no longer hold.
        if not self.shared:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = None

    @property
    def is_held(self) -> bool:
        return self._fd is not None

    @contextlib.contextmanager
    def held(self, timeout: float) -> Iterator[FileLock]:
        self.acquire(timeout)
        try:
            yield self
        finally:
            self.release()

    def holder_pid(self) -> int | None:
        """The pid recorded by the current holder, or None if unknown."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateUnwritable.from_os_error(self.path, exc) from exc

    @staticmethod
    def _record_pid(fd: int) -> None:
        # Informational only, so a failed write must not cost us the lock we hold.
        # Raw descriptor writes are unbuffered: readers see the pid as soon as this returns.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
