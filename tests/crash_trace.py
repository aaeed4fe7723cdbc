"""The recording half of crash replay (tests/crash_replay.py has the model and the replay): while a
Tracer is entered, every file-system operation under the state directory is logged in order, with its
real effect kept, and the engine's state is snapshotted around each one. See crash_replay's docstring
for the operations wrapped and the persistence model."""
from __future__ import annotations

import builtins
import fcntl
import io
import itertools
import os
import threading
from pathlib import Path
from typing import Callable

from tests.crash_replay import Op, Trace, scan


class Tracer:
    """While entered, records every file-system operation under `root` (see the module's docstring)."""

    def __init__(self, root: Path | str, snapshot: Callable[[], object] = lambda: None,
                 syncs: list[tuple[object, str]] = ()):
        self.root = os.path.realpath(root)
        self._prefixes = {self.root, os.path.abspath(root)}
        self._snapshot, self._syncs = snapshot, list(syncs)
        self._lock = threading.RLock()
        self._busy = False                      # inside a wrapped call: what it does itself is not logged
        self._ids = itertools.count(1).__next__
        self._inodes: dict[tuple[int, int], int] = {}
        self._initial = scan(self.root, self._inodes, self._ids)
        self._ops: list[Op] = []
        self._marks: list[tuple[int, str]] = []
        self._engines: list[object] = []
        self._moments: list[tuple[int, int, str]] = []
        self._saved: list[tuple[object, str, object]] = []
        self._moment("before the run")

    def mark(self, label: str) -> None:
        """A step boundary of the run (the engine's state there is a crash point too)."""
        with self._lock:
            self._marks.append((len(self._ops), label))
            self._moment(f"at {label!r}")

    def trace(self) -> Trace:
        self._moment("after the run")
        return Trace(self.root, self._initial, list(self._ops), list(self._marks), list(self._engines),
                     list(self._moments))

    def _moment(self, when: str) -> None:
        snap = self._snapshot()
        if not self._engines or self._engines[-1] != snap:
            self._engines.append(snap)
        self._moments.append((len(self._ops), len(self._engines) - 1, when))

    def __enter__(self) -> Tracer:
        wrappers = {"open": self._open, "fdopen": self._fdopen, "write": self._os_write, "pwrite": self._pwrite,
                    "ftruncate": self._ftruncate, "fsync": self._fsync("fsync"),
                    "fdatasync": self._fsync("fdatasync"), "sync": self._sync, "replace": self._rename,
                    "rename": self._rename, "symlink": self._symlink, "unlink": self._unlink, "remove": self._unlink,
                    "mkdir": self._mkdir, "rmdir": self._rmdir}
        self._real = {name: getattr(os, name) for name in wrappers} | {"builtin_open": builtins.open}
        patches = [(os, name, fn) for name, fn in wrappers.items()] + [(builtins, "open", self._builtin_open)]
        for owner, name, fn in patches + [(m, name, self._syncfs(getattr(m, name))) for m, name in self._syncs]:
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, fn)
        return self

    def __exit__(self, *exc) -> None:
        while self._saved:
            owner, name, value = self._saved.pop()
            setattr(owner, name, value)

    # -- logging one operation ------------------------------------------------------------------------
    def _run(self, call: Callable[[], object], record: Callable[[object], Op | None]):
        """Run `call` for real and log what `record` makes of its result (nothing when it raised)."""
        with self._lock:
            if self._busy:
                return call()
            self._busy = True
            try:
                self._moment(f"before op {len(self._ops)}")
                result = call()
                op = record(result)
                if op is not None:
                    self._ops.append(op)
                    self._moment(f"after op {len(self._ops) - 1}")
                return result
            finally:
                self._busy = False

    def _rel(self, path) -> str | None:
        if isinstance(path, int):
            return None
        p = os.path.abspath(os.fsdecode(os.fspath(path)))
        return next((p[len(pre) + 1:] for pre in self._prefixes if p == pre or p.startswith(pre + "/")), None)

    def _inode(self, fd: int) -> int | None:
        st = os.fstat(fd)
        return self._inodes.get((st.st_dev, st.st_ino))

    def _new(self, st: os.stat_result) -> int:
        iid = self._inodes[(st.st_dev, st.st_ino)] = self._ids()
        return iid

    def _name(self, fd: int) -> str:
        return self._rel(os.readlink(f"/proc/self/fd/{fd}")) or "?"

    # -- the wrappers ---------------------------------------------------------------------------------
    def _open(self, path, flags, mode=0o777, *, dir_fd=None):
        rel = self._rel(path) if dir_fd is None else None
        call = lambda: self._real["open"](path, flags, mode, dir_fd=dir_fd)
        if rel is None or not flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
            return call()
        created = flags & os.O_CREAT and not os.path.lexists(path)
        return self._run(call, lambda fd: self._opened(rel, fd, created, flags & os.O_TRUNC))

    def _opened(self, rel: str, fd: int, created: bool, truncated: bool) -> Op | None:
        if created:
            return Op("creat", rel, inode=self._new(os.fstat(fd)))
        return Op("trunc", rel, inode=self._inode(fd)) if truncated else None

    def _fdopen(self, fd, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True):
        if "r" in mode and "+" not in mode or self._inode(fd) is None:
            return self._real["fdopen"](fd, mode, buffering, encoding, errors, newline, closefd)
        return self._file(fd, mode, buffering, encoding, errors, newline, closefd)

    def _builtin_open(self, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,
                      opener=None):
        args = (mode, buffering, encoding, errors, newline, closefd)
        if isinstance(file, int) and opener is None:
            return self._fdopen(file, *args)
        rel = self._rel(file)
        if rel is None or "r" in mode and "+" not in mode or opener is not None:
            return self._real["builtin_open"](file, *args, opener)
        existed = os.path.lexists(file)
        return self._run(lambda: self._file(file, *args),
                         lambda f: self._opened(rel, f.fileno(), not existed, "w" in mode))

    def _file(self, file, mode, buffering, encoding, errors, newline, closefd):
        """The layers io.open would stack, on a FileIO whose writes are logged."""
        raw = _TracedFile(file, mode.replace("b", "").replace("t", ""), closefd=closefd)
        raw.tracer = self
        if "b" in mode and buffering == 0:
            return raw
        buffered = (io.BufferedRandom if "+" in mode else io.BufferedWriter)(raw)
        return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding, errors, newline, buffering == 1)

    def _write(self, fd: int, data, call: Callable[[], int | None], offset: int | None = None):
        iid = self._inode(fd)
        if iid is None:
            return call()
        data = bytes(data)
        if offset is None:                      # where the kernel will put it
            appending = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
            offset = os.fstat(fd).st_size if appending else os.lseek(fd, 0, os.SEEK_CUR)
        return self._run(call, lambda n: Op("write", self._name(fd), inode=iid, offset=offset, data=data[:n])
                         if n else None)

    def _os_write(self, fd, data):
        return self._write(fd, data, lambda: self._real["write"](fd, data))

    def _pwrite(self, fd, data, offset):
        return self._write(fd, data, lambda: self._real["pwrite"](fd, data, offset), offset)

    def _on_fd(self, fd: int, call: Callable[[], object], kind: str, offset: int = 0):
        iid = self._inode(fd)
        if iid is None:
            return call()
        return self._run(call, lambda _: Op(kind, self._name(fd), inode=iid, offset=offset))

    def _ftruncate(self, fd, length):
        return self._on_fd(fd, lambda: self._real["ftruncate"](fd, length), "trunc", length)

    def _fsync(self, real: str):
        def fsync(fd):
            fd = fd if isinstance(fd, int) else fd.fileno()
            return self._on_fd(fd, lambda: self._real[real](fd), "fsync")
        return fsync

    def _sync(self):
        return self._run(self._real["sync"], lambda _: Op("sync"))

    def _syncfs(self, real):
        def syncfs(directory, *args, **kwargs):
            call, rel = lambda: real(directory, *args, **kwargs), self._rel(directory)
            return call() if rel is None else self._run(call, lambda _: Op("sync", rel))
        return syncfs

    def _entry(self, real: str, path, args, kwargs, make: Callable[[str], Op]):
        rel = self._rel(path) if not kwargs else None      # dir_fd and friends: not logged (check_complete tells)
        call = lambda: self._real[real](*args, **kwargs)
        return call() if rel is None else self._run(call, lambda _: make(rel))

    def _rename(self, src, dst, **kw):
        dest = self._rel(dst)                               # rename and replace: one call on POSIX
        return self._entry("replace", src if dest is not None else -1, (src, dst), kw,
                           lambda rel: Op("rename", rel, dest))

    def _symlink(self, target, link, target_is_directory=False, **kw):
        return self._entry("symlink", link, (target, link, target_is_directory), kw,
                           lambda rel: Op("symlink", rel, os.fsdecode(target), self._new(os.lstat(link))))

    def _unlink(self, path, **kw):
        return self._entry("unlink", path, (path,), kw, lambda rel: Op("unlink", rel))

    def _mkdir(self, path, mode=0o777, **kw):
        return self._entry("mkdir", path, (path, mode), kw,
                           lambda rel: Op("mkdir", rel, inode=self._new(os.lstat(path))))

    def _rmdir(self, path, **kw):
        return self._entry("rmdir", path, (path,), kw, lambda rel: Op("rmdir", rel))


class _TracedFile(io.FileIO):
    """A FileIO whose writes are logged: the buffered layers above it call this write with the real bytes."""
    tracer: Tracer

    def write(self, b):
        return self.tracer._write(self.fileno(), b, lambda: io.FileIO.write(self, b))
