"""Crash replay: the disks a power cut could leave behind a run of gen, after ALICE (Pillai et al.,
OSDI 2014) and CrashMonkey (Mohan et al., OSDI 2018). SIGKILL keeps the page cache; only this tests
the fsyncs.

    with Tracer(state_dir, snapshot=copy_engine, syncs=[(store.fsutil, "_syncfs")]) as tracer:
        gen.switch(...)                  # runs for real; each file-system operation under state_dir
    trace = tracer.trace()               # is logged in order, with the engine's state around it
    for crash in Replay(trace).states(k):
        crash.image.materialize(fresh)   # a disk a crash after the first k operations may leave

While entered, the tracer wraps os.open, os.fdopen and open (a write reaches the kernel through a
FileIO subclass, so it is logged with its offset), os.write, os.pwrite, os.ftruncate, os.fsync,
os.fdatasync, os.sync, the given whole-file-system syncs, os.replace, os.rename, os.symlink,
os.unlink, os.remove, os.mkdir and os.rmdir; each keeps its real effect. Trace.check_complete replays
the log and compares it with the real directory, so an operation that escaped fails loudly.

The persistence model, as conservative as ALICE's: data written to a file is on disk once the file is
fsynced (or the file system synced) after it; a directory entry (creat, mkdir, symlink, rename,
unlink, rmdir) once its directory is fsynced (or the file system synced) after it. A symlink's target
persists with its entry.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ENTRY = frozenset({"creat", "mkdir", "symlink", "rename", "unlink", "rmdir"})
DATA = frozenset({"write", "trunc"})
_TEMP = re.compile(r"\.tmp-(.+?)-\d+-[0-9a-f]{8}")


def short(path: str) -> str:
    """A path with the pid and random part of store.fsutil's temp names elided."""
    return _TEMP.sub(r".tmp-\1-*", path)


def parent(path: str) -> str:
    return path.rpartition("/")[0]


@dataclass(frozen=True)
class Op:
    kind: str               # one of ENTRY or DATA, fsync, sync
    path: str = ""          # relative to the root: the name made, moved or removed; the file written or synced
    dest: str = ""          # rename: the new name; symlink: the link's target
    inode: int = 0          # the model inode made (creat, mkdir, symlink), written or synced
    offset: int = 0         # write: where; trunc: the new size
    data: bytes = b""

    def __str__(self) -> str:
        where = short(self.path) or "."
        text = {"rename": f"rename {where} -> {short(self.dest)}", "symlink": f"symlink {where} -> {self.dest}",
                "write": f"write of {len(self.data)} bytes to {where} at {self.offset}",
                "trunc": f"truncate {where} to {self.offset}", "sync": "syncfs"}
        return text.get(self.kind, f"{self.kind} {where}")


@dataclass(frozen=True)
class Node:
    kind: str               # file | dir | link
    data: bytes = b""       # a file's bytes, a link's target


@dataclass
class Image:
    """A directory tree in the model: names (paths relative to the root, "" the root) -> inode -> Node."""
    names: dict[str, int]
    nodes: dict[int, Node]

    def copy(self) -> Image:
        return Image(dict(self.names), dict(self.nodes))

    def apply(self, op: Op) -> None:
        """The op's effect; an entry in a directory that is not there (its creation was lost) is not made."""
        if op.kind in ("creat", "mkdir", "symlink") and parent(op.path) in self.names:
            self.names[op.path] = op.inode
            kind = {"creat": "file", "mkdir": "dir", "symlink": "link"}[op.kind]
            self.nodes[op.inode] = Node(kind, op.dest.encode() if kind == "link" else b"")
        elif op.kind == "rename" and op.path in self.names and parent(op.dest) in self.names:
            self._remove(op.dest)
            for name in self._under(op.path):
                self.names[op.dest + name[len(op.path):]] = self.names.pop(name)
        elif op.kind in ("unlink", "rmdir"):
            self._remove(op.path)
        elif op.kind in DATA and op.inode in self.nodes:
            old, end = self.nodes[op.inode].data, op.offset + len(op.data)
            head = old[:op.offset].ljust(op.offset, b"\0")
            self.nodes[op.inode] = Node("file", head + op.data + old[end:] if op.kind == "write" else head)

    def _under(self, path: str) -> list[str]:
        return [n for n in self.names if n == path or n.startswith(path + "/")]

    def _remove(self, path: str) -> None:
        for name in self._under(path):
            del self.names[name]

    def files(self) -> dict[str, tuple[str, bytes]]:
        return {name: (self.nodes[i].kind, self.nodes[i].data) for name, i in self.names.items()}

    def digest(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for name, (kind, data) in sorted(self.files().items()):
            h.update(f"{name}\0{kind}\0{len(data)}\0".encode() + data)
        return h.hexdigest()

    def materialize(self, root: Path | str) -> None:
        """Write the tree at `root`, which must not exist."""
        for name, (kind, data) in sorted(self.files().items()):
            path = os.path.join(root, name) if name else str(root)
            if kind == "dir":
                os.mkdir(path, 0o700)
            elif kind == "link":
                os.symlink(data.decode(), path)
            else:
                Path(path).write_bytes(data)


def scan(root: str, inodes: dict | None = None, ids: Callable[[], int] | None = None) -> Image:
    """The tree at `root`; with `inodes`, each real (st_dev, st_ino) is mapped to its model inode."""
    image, ids = Image({}, {}), ids or itertools.count(1).__next__
    for top, dirs, files in os.walk(root):
        for name in ([""] if top == root else []) + sorted(dirs + files):
            path = os.path.join(top, name) if name else root
            if os.path.islink(path):
                node = Node("link", os.readlink(path).encode())
            else:
                node = Node("dir") if os.path.isdir(path) else Node("file", Path(path).read_bytes())
            iid = image.names[os.path.relpath(path, root) if name else ""] = ids()
            image.nodes[iid] = node
            if inodes is not None:
                st = os.lstat(path)
                inodes[(st.st_dev, st.st_ino)] = iid
    return image


@dataclass
class Trace:
    root: str
    initial: Image
    ops: list[Op]
    marks: list[tuple[int, str]]            # (ops issued before it, label): the step boundaries reached
    engines: list[object]                   # the distinct engine snapshots
    moments: list[tuple[int, int, str]]     # (ops issued, engine snapshot, when it was taken)

    def reached(self, label: str, k: int) -> bool:
        """Had the run passed the step boundary `label` when its first k ops were issued (a mark right
        after op k-1 counts: it follows the op that made its claim durable)?"""
        return any(at <= k and name == label for at, name in self.marks)

    def engines_at(self, k: int) -> list[tuple[int, str]]:
        """The engine states a crash after the first k ops may meet: (snapshot, when it was taken)."""
        seen: dict[int, str] = {}
        for at, e, when in self.moments:
            if at == k:
                seen.setdefault(e, when)
        return list(seen.items())

    def check_complete(self) -> None:
        """The log replayed must give the directory as it is now: nothing escaped the tracer."""
        image = self.initial.copy()
        for op in self.ops:
            image.apply(op)
        real, model = scan(self.root).files(), image.files()
        wrong = sorted(n for n in real.keys() | model.keys() if real.get(n) != model.get(n))
        assert not wrong, f"operations escaped the tracer: the replayed log differs from the disk at {wrong[:5]}"


# -- replay: the crash states of a trace -------------------------------------------------------------
@dataclass(frozen=True)
class Crash:
    prefix: int                 # the first `prefix` ops of the trace were issued, then the power went
    variant: str                # all | durable | drop N (see Replay.states)
    lost: tuple[int, ...]       # the ops issued whose effect is not on the disk
    image: Image


class Replay:
    """The disks a crash after the first k ops of a trace may leave, k = 0 .. len(ops)."""

    def __init__(self, trace: Trace):
        self.trace, self.ops = trace, trace.ops
        self.cover = self._coverage()

    def _coverage(self) -> list[int]:
        """For each op, the index of the fsync or sync that made it durable (len(ops): none did)."""
        cover = [len(self.ops)] * len(self.ops)
        waiting: dict[int, set[int]] = {}       # op -> the inodes still to be fsynced for it to be durable
        image = self.trace.initial.copy()
        for i, op in enumerate(self.ops):
            if op.kind in ENTRY:                # its directory; a rename's two, if they differ
                names = [op.path, op.dest] if op.kind == "rename" else [op.path]
                waiting[i] = {image.names.get(parent(name), -1) for name in names}
            elif op.kind in DATA:
                waiting[i] = {op.inode}
            elif op.kind in ("fsync", "sync"):
                for j, inodes in list(waiting.items()):
                    inodes.discard(op.inode)
                    if op.kind == "sync" or not inodes:
                        cover[j] = i
                        del waiting[j]
            image.apply(op)
        return cover

    def pending(self, k: int) -> list[int]:
        """The ops among the first k that a crash right then may lose: not yet made durable."""
        return [i for i in range(k) if self.ops[i].kind in ENTRY | DATA and self.cover[i] >= k]

    def states(self, k: int, variants: str = "bounds") -> list[Crash]:
        """"bounds": the two bounding states, `all` (every op of the prefix reached the disk) and
        `durable` (only what was made durable did: entries not yet synced are reverted, data not yet
        fsynced is lost, so a file renamed into place before its fsync is empty or short).
        "reorder": ALICE's reorderings, `drop N` for each op N not yet durable: everything reached the
        disk but N and the later ops depending on it (on the same name, later data of the same file),
        so a later op persisted while an earlier one did not."""
        pending = self.pending(k)
        if variants == "bounds":
            return [self.crash(k, "all", ())] + ([self.crash(k, "durable", pending)] if pending else [])
        drops = [(j, self._dependents(j, pending)) for j in pending]
        return [self.crash(k, f"drop {j}", lost) for j, lost in drops if len(lost) < len(pending)]

    def _dependents(self, j: int, pending: list[int]) -> tuple[int, ...]:
        keys, lost = _keys(self.ops[j]), [j]
        for i in pending:
            if i > j and _keys(self.ops[i]) & keys:
                lost.append(i)
                keys |= _keys(self.ops[i])
        return tuple(lost)

    def crash(self, k: int, variant: str, lost) -> Crash:
        image, skip = self.trace.initial.copy(), set(lost)
        for i, op in enumerate(self.ops[:k]):
            if i not in skip:
                image.apply(op)
        return Crash(k, variant, tuple(lost), image)

    def explain(self, crash: Crash, quiet: Callable[[Op], bool] = lambda op: False) -> list[str]:
        """Each lost op (but the `quiet` ones), with the fsync it lacked and whether one ever came."""
        lines = []
        for i in crash.lost:
            op, by = self.ops[i], self.cover[i]
            if quiet(op):
                continue
            synced = (short(parent(op.path)) or "the state directory") if op.kind in ENTRY else short(op.path)
            when = ("never made durable" if by == len(self.ops) else
                    f"made durable by op {by} ({self.ops[by]}), after the crash")
            lines.append(f"op {i} {op}: {when}; it needs an fsync of {synced} (or a syncfs) after it")
        return lines

    def unsynced_at_end(self) -> list[str]:
        """Files fsynced during the run that a crash right after it can still lose or cut short: their
        name or their data is not durable once the last op returned (an fsync that promised nothing)."""
        k, fsynced = len(self.ops), {op.inode for op in self.ops if op.kind == "fsync"}
        pending = self.pending(k)
        everything, durable = self.crash(k, "all", ()).image, self.crash(k, "durable", pending).image.files()
        found = []
        for name, (kind, data) in sorted(everything.files().items()):
            if kind == "file" and everything.names[name] in fsynced and durable.get(name) != (kind, data):
                lost = [f"op {i} {self.ops[i]}" for i in pending if name in (self.ops[i].path, self.ops[i].dest)]
                found.append(f"{name} was fsynced, but a crash after the run can lose it: "
                             f"{'; '.join(lost) or 'its data'} not made durable")
        return found


def _keys(op: Op) -> set[tuple[str, object]]:
    """What later ops depending on `op` share with it: a name, or the inode whose data it wrote."""
    if op.kind in DATA:
        return {("inode", op.inode)}
    names = {("name", op.path)} | ({("name", op.dest)} if op.kind == "rename" else set())
    return names | ({("inode", op.inode)} if op.kind in ("creat", "mkdir", "symlink") else set())
