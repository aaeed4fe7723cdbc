"""Tests for the store package: canonical encoding, object store, atomic files, locks."""
from __future__ import annotations

import errno
import multiprocessing
import os
import random
import signal
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import (
    AmbiguousPrefix,
    CorruptObject,
    EncodingError,
    FileLock,
    InvalidHash,
    LockTimeout,
    MissingObject,
    StateUnwritable,
    Store,
    StoreError,
    atomic_symlink,
    atomic_write,
    decode,
    encode,
    ensure_canonical,
    ensure_dir,
    hash_value,
    read_link,
)
from store.canonical import INT_MAX, INT_MIN

REPO = Path(__file__).resolve().parent.parent
# fork: children start in milliseconds, and every child here runs module-level functions.
MP = multiprocessing.get_context("fork")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- strategies and helpers ---------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | st.text(max_size=12)
    | st.binary(max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def tagged(value):
    """A type-strict view of a value: True and 1 differ; tuples and lists are both arrays."""
    if isinstance(value, dict):
        return ("map", sorted((key, tagged(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return ("array", [tagged(item) for item in value])
    return (type(value).__name__, value)


def reinsert(value, rng: random.Random):
    """The same value with every dict rebuilt in a shuffled insertion order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: reinsert(item, rng) for key, item in items}
    if isinstance(value, list):
        return [reinsert(item, rng) for item in value]
    if isinstance(value, tuple):
        return tuple(reinsert(item, rng) for item in value)
    return value


def assert_maps_sorted(value):
    if isinstance(value, dict):
        keys = [key.encode() for key in value]
        assert keys == sorted(keys)
        for item in value.values():
            assert_maps_sorted(item)
    elif isinstance(value, list):
        for item in value:
            assert_maps_sorted(item)


steps = st.lists(
    st.text(max_size=4).map(lambda key: ("key", key)) | st.integers(0, 3).map(lambda i: ("index", i)),
    max_size=5,
)


def bury(leaf, path_steps):
    """Nest `leaf` under `path_steps`; return the value and the subject naming the leaf."""
    value = leaf
    for kind, step in reversed(path_steps):
        value = {step: value} if kind == "key" else [None] * step + [value]
    subject = "value" + "".join(f".{s}" if kind == "key" else f"[{s}]" for kind, s in path_steps)
    return value, subject


# --- canonical encoding -------------------------------------------------------------------

@given(values)
def test_round_trip_is_type_exact(value):
    decoded = decode(encode(value))
    assert tagged(decoded) == tagged(value)
    assert_maps_sorted(decoded)


@given(values)
def test_fast_walk_equals_the_careful_walk(value):
    """encode() takes a one-pass path for plain values; it must give exactly the careful walk's bytes."""
    import msgpack
    from store.canonical import _normalise
    assert encode(value) == msgpack.packb(_normalise(value), use_bin_type=True)


@given(values, st.randoms(use_true_random=False))
def test_encoding_ignores_dict_insertion_order(value, rng):
    shuffled = reinsert(value, rng)
    assert encode(shuffled) == encode(value)
    assert hash_value(shuffled) == hash_value(value)


@given(st.data())
def test_hash_equal_iff_encoding_equal_iff_values_equal(data):
    a = data.draw(values)
    b = data.draw(st.just(a) | values | st.randoms(use_true_random=False).map(lambda rng: reinsert(a, rng)))
    same_bytes = encode(a) == encode(b)
    assert (hash_value(a) == hash_value(b)) == same_bytes
    assert same_bytes == (tagged(a) == tagged(b))
    assert len(hash_value(a)) == 64


@given(values)
def test_canonical_bytes_pass_ensure_canonical(value):
    assert tagged(ensure_canonical(encode(value))) == tagged(decode(encode(value)))


GOLDEN = [
    # fixmap(2), "a" -> fixarray(3)[true, nil, "x"], "b" -> 1: keys sorted although "b" came first
    ({"b": 1, "a": [True, None, "x"]}, "82 a161 93 c3 c0 a178 a162 01"),
    # byte order, not insertion or length order: "a" < "ab" < "b"
    ({"b": 3, "ab": 1, "a": 2}, "83 a161 02 a26162 01 a162 03"),
    # UTF-8 order (= code point order): "z" < "é" < U+FFFF < U+10000, which UTF-16 order breaks
    ({"\U00010000": 1, "\uffff": 0, "é": 3, "z": 2}, "84 a17a 02 a2c3a9 03 a3efbfbf 00 a4f0908080 01"),
    ({}, "80"), ([], "90"), ((1, 2), "92 01 02"), (None, "c0"), (False, "c2"), ("", "a0"),
    (b"\x00\xff", "c4 02 00ff"),  # bin 8, not str
    (127, "7f"), (128, "cc 80"), (256, "cd 0100"), (-1, "ff"), (-32, "e0"), (-33, "d0 df"),
    (INT_MAX, "cf" + "ff" * 8), (INT_MIN, "d3 80" + "00" * 7),
    ("a" * 31, "bf" + "61" * 31), ("a" * 32, "d9 20" + "61" * 32),  # smallest str header
]


@pytest.mark.parametrize(("value", "expected"), GOLDEN)
def test_golden_bytes(value, expected):
    assert encode(value).hex() == expected.replace(" ", "")


@given(st.floats(allow_nan=True) | st.sampled_from([0.0, -0.0, 1.0]), steps)
def test_floats_rejected_anywhere_with_their_path(number, path_steps):
    value, subject = bury(number, path_steps)
    with pytest.raises(EncodingError) as raised:
        encode(value)
    assert raised.value.subject == subject
    assert "float" in raised.value.reason


@pytest.mark.parametrize("bad_map", [{1: "x"}, {True: "x"}, {None: "x"}, {b"k": "x"}, {(1,): "x"}, {"ok": 1, 2: 2}])
@given(path_steps=steps)
def test_non_str_keys_rejected(bad_map, path_steps):
    value, subject = bury(bad_map, path_steps)
    with pytest.raises(EncodingError) as raised:
        encode(value)
    assert raised.value.subject == subject
    assert "keys must be strings" in raised.value.reason


@given(st.integers(max_value=INT_MIN - 1) | st.integers(min_value=INT_MAX + 1), steps)
def test_out_of_range_ints_rejected(number, path_steps):
    value, subject = bury(number, path_steps)
    with pytest.raises(EncodingError) as raised:
        encode(value)
    assert raised.value.subject == subject


@pytest.mark.parametrize("unsupported", [{1, 2}, frozenset(), bytearray(b"x"), Decimal(1), object(), "\ud800"])
def test_unsupported_values_rejected(unsupported):
    with pytest.raises(EncodingError):
        encode({"x": [unsupported]})


def test_error_renders_subject_and_reason():
    with pytest.raises(EncodingError) as raised:
        encode({"services": {"web": {"x": 1.5}}})
    assert str(raised.value).startswith("value.services.web.x: float 1.5")
    assert raised.value.exit_code == 1


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\x01\x02", b"\x81\x01\x02", b"\xa1\xff"])
def test_malformed_bytes_rejected(data):
    with pytest.raises(EncodingError):
        decode(data)


@pytest.mark.parametrize("data", [
    b"\xcc\x01",  # 1 in a uint 8: valid msgpack, not the smallest form
    b"\x82\xa1b\x01\xa1a\x02",  # map keys out of order
    b"\xca\x3f\x80\x00\x00",  # float 32
    b"\xd4\x01\x00",  # ext type
])
def test_non_canonical_bytes_rejected(data, tmp_path):
    with pytest.raises(EncodingError):
        ensure_canonical(data)
    with pytest.raises(EncodingError):
        Store(tmp_path / "s").put_bytes(data)
    assert not (tmp_path / "s").exists()


def test_store_package_does_not_import_gen():
    code = "import sys, store; sys.exit(any(m == 'gen' or m.startswith('gen.') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# --- object store -------------------------------------------------------------------------

SPEC = {"services": {"web": {"image": "sha256:ab", "ports": [8080, 80], "env": {"A": "1"}}}}


def test_put_get_round_trip(tmp_path):
    store = Store(tmp_path / "state")
    digest = store.put(SPEC)
    assert digest == hash_value(SPEC)
    assert store.get(digest) == SPEC
    assert store.get_bytes(digest) == encode(SPEC)
    assert store.has(digest)
    assert store.size_of(digest) == len(encode(SPEC))
    assert store.path_of(digest) == tmp_path / "state" / "objects" / digest[:2] / digest


def test_objects_read_only_and_dirs_private(tmp_path):
    store = Store(tmp_path / "state")
    digest = store.put(SPEC)
    assert mode_of(store.path_of(digest)) == 0o444
    for directory in (store.root, store.objects_dir, store.path_of(digest).parent):
        assert mode_of(directory) == 0o700


def test_put_is_idempotent_and_does_not_rewrite(tmp_path, monkeypatch):
    store = Store(tmp_path)
    digest = store.put(SPEC)

    def no_writes(*args, **kwargs):
        raise AssertionError("an existing object was rewritten")

    monkeypatch.setattr("store.objects.atomic_write", no_writes)
    assert store.put(SPEC) == digest
    assert store.put_bytes(encode(SPEC)) == digest
    assert list(store.iter_hashes()) == [digest]


def test_reads_of_absent_store_create_nothing(tmp_path):
    root = tmp_path / "absent"
    store = Store(root)
    digest = hash_value(SPEC)
    assert not store.has(digest)
    with pytest.raises(MissingObject):
        store.get(digest)
    with pytest.raises(MissingObject):
        store.resolve_prefix(digest[:6])
    assert list(store.iter_hashes()) == []
    assert store.verify().ok == 0
    store.delete(digest)
    assert not root.exists()


@pytest.mark.parametrize("damage", ["modify", "truncate", "empty"])
def test_damaged_object_detected_on_read_and_verify(tmp_path, damage):
    store = Store(tmp_path)
    digest = store.put(SPEC)
    other = store.put(["intact"])
    path = store.path_of(digest)
    data = path.read_bytes()
    damaged = {"modify": data.replace(b"sha256:ab", b"sha256:cd"), "truncate": data[:-1], "empty": b""}[damage]
    assert damaged != data
    os.chmod(path, 0o644)
    path.write_bytes(damaged)

    with pytest.raises(CorruptObject) as raised:
        store.get(digest)
    assert raised.value.hash == digest
    assert digest in str(raised.value)
    assert "checksum mismatch" in raised.value.reason
    report = store.verify()
    assert (report.ok, report.corrupt, report.healthy) == (1, [digest], False)
    assert report.size_bytes == len(damaged) + store.size_of(other)


def test_missing_object(tmp_path):
    store = Store(tmp_path)
    store.put(SPEC)
    absent = hash_value("absent")
    with pytest.raises(MissingObject) as raised:
        store.get(absent)
    assert raised.value.hash == absent
    with pytest.raises(MissingObject):
        store.size_of(absent)


@pytest.mark.parametrize("bad", [
    "../../etc/passwd", "", "a" * 63, "a" * 65, "A" * 64, "g" * 64, "a" * 64 + "\n",
    "../" + "a" * 61, "aa/" + "a" * 61, None, b"a" * 64,
])
def test_malformed_hashes_rejected_before_any_path_is_built(tmp_path, bad):
    store = Store(tmp_path)
    for operation in (store.get, store.get_bytes, store.has, store.path_of, store.delete, store.size_of):
        with pytest.raises(InvalidHash) as raised:
            operation(bad)
        assert isinstance(raised.value, MissingObject)
    assert list(tmp_path.iterdir()) == []


def test_delete_is_idempotent(tmp_path):
    store = Store(tmp_path)
    digest = store.put(SPEC)
    kept = store.put("kept")
    store.delete(digest)
    store.delete(digest)
    assert not store.has(digest)
    assert list(store.iter_hashes()) == [kept]


def test_temp_and_foreign_files_are_not_objects(tmp_path):
    store = Store(tmp_path)
    digests = sorted(store.put(i) for i in range(5))
    fanout = store.path_of(digests[0]).parent
    leftover = fanout / f".tmp-{digests[0]}-123-abcd"  # what a crash mid-write leaves
    leftover.write_bytes(b"partial")
    misplaced = store.objects_dir / "zz" / digests[1]
    misplaced.parent.mkdir()
    misplaced.write_bytes(encode(1))
    top_level = store.objects_dir / "README"
    top_level.write_text("hi")

    assert list(store.iter_hashes()) == digests
    report = store.verify()
    assert (report.ok, report.corrupt) == (5, [])
    assert sorted(report.stray) == sorted([leftover, misplaced, top_level])


def find_shared_prefix_pair() -> tuple[str, str, str]:
    """Two hashes sharing their first 4 hex digits, plus one sharing no 4 digits with them."""
    seen: dict[str, int] = {}
    for i in range(100_000):
        prefix = hash_value(i)[:4]
        if prefix in seen:
            lonely = next(j for j in range(10) if hash_value(j)[:4] != prefix)
            return seen[prefix], i, lonely
        seen[prefix] = i
    raise AssertionError("no collision found")


def test_resolve_prefix(tmp_path):
    store = Store(tmp_path)
    first, second, lonely = (store.put(v) for v in find_shared_prefix_pair())
    assert first[:4] == second[:4] and lonely[:4] != first[:4]

    assert store.resolve_prefix(lonely[:4]) == lonely
    assert store.resolve_prefix(lonely[:4].upper()) == lonely
    assert store.resolve_prefix(lonely) == lonely

    with pytest.raises(AmbiguousPrefix) as raised:
        store.resolve_prefix(first[:4])
    assert raised.value.matches == sorted([first, second])
    differ = next(i for i in range(64) if first[i] != second[i])
    assert store.resolve_prefix(first[: differ + 1]) == first

    absent = next(p for p in (f"{n:04x}" for n in range(65536)) if p not in {first[:4], lonely[:4]})
    with pytest.raises(MissingObject):
        store.resolve_prefix(absent)
    for bad in ("abc", "", "zzzz", "../a", "a" * 65, None):
        with pytest.raises(InvalidHash):
            store.resolve_prefix(bad)


# --- concurrency ----------------------------------------------------------------------------

@pytest.fixture
def children():
    """Start child processes; any still alive when the test ends are killed."""
    started = []

    def start(target, *args):
        process = MP.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(5)


def worker_values(worker: int) -> list:
    shared = [{"shared": i} for i in range(40)]
    own = [{"worker": worker, "i": i} for i in range(15)]
    return shared + own


def put_values(root: Path, worker: int, barrier) -> None:
    store = Store(root)
    mine = worker_values(worker)
    random.Random(worker).shuffle(mine)
    barrier.wait(10)
    for value in mine:
        assert store.get(store.put(value)) == value


def test_concurrent_puts(tmp_path, children):
    root = tmp_path / "state"  # absent: the workers also race to create the directories
    workers = 4
    barrier = MP.Barrier(workers)
    processes = [children(put_values, root, n, barrier) for n in range(workers)]
    for process in processes:
        process.join(20)
        assert process.exitcode == 0

    expected = {hash_value(v) for n in range(workers) for v in worker_values(n)}
    store = Store(root)
    assert set(store.iter_hashes()) == expected
    report = store.verify()
    assert (report.ok, report.corrupt, report.stray) == (len(expected), [], [])


def hold_lock(path: Path, ready, release) -> None:
    lock = FileLock(path)
    lock.acquire(timeout=5)
    ready.set()
    release.wait(10)
    lock.release()


def test_lock_timeout_names_holder_and_release_hands_over(tmp_path, children):
    path = tmp_path / "lock"
    ready, release = MP.Event(), MP.Event()
    holder = children(hold_lock, path, ready, release)
    assert ready.wait(5)

    lock = FileLock(path)
    with pytest.raises(LockTimeout) as raised:
        lock.acquire(timeout=0.2)
    assert raised.value.holder_pid == holder.pid
    assert raised.value.waited_s >= 0.2
    assert f"pid {holder.pid}" in str(raised.value)
    assert not lock.is_held

    release.set()
    lock.acquire(timeout=5)  # waits for the holder's release
    assert lock.holder_pid() == os.getpid()
    lock.release()


def test_killed_holder_releases_lock(tmp_path, children):
    path = tmp_path / "lock"
    ready, never = MP.Event(), MP.Event()
    holder = children(hold_lock, path, ready, never)
    assert ready.wait(5)
    lock = FileLock(path)
    assert not lock.try_acquire()

    os.kill(holder.pid, signal.SIGKILL)
    holder.join(5)
    assert lock.try_acquire()  # immediately: the kernel dropped the dead holder's lock
    lock.release()


def test_lock_in_one_process(tmp_path):
    path = tmp_path / "lock"
    lock, rival = FileLock(path), FileLock(path)
    with lock.held(timeout=1):
        assert lock.is_held
        assert mode_of(path) == 0o600
        assert lock.holder_pid() == os.getpid()
        assert not rival.try_acquire()  # flock is per open file, so this conflicts too
        with pytest.raises(StoreError):
            lock.try_acquire()
    assert not lock.is_held
    assert lock.holder_pid() is None  # cleared on release: no stale name in messages
    assert rival.try_acquire()
    rival.release()
    rival.release()  # releasing twice is harmless


def test_lock_in_missing_directory_is_unwritable(tmp_path):
    with pytest.raises(StateUnwritable):
        FileLock(tmp_path / "nope" / "lock").acquire(timeout=0)


# --- atomic files ---------------------------------------------------------------------------

def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f"
    atomic_write(target, b"one")
    atomic_write(target, b"two", mode=0o600)  # over a read-only file
    assert target.read_bytes() == b"two"
    assert mode_of(target) == 0o600
    assert os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize(("failing", "error", "cause"), [
    ("replace", PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    ("fsync", OSError(errno.ENOSPC, "No space left on device"), "disk full"),
])
def test_atomic_write_failure_cleans_up(tmp_path, monkeypatch, failing, error, cause):
    def fail(*args):
        raise error

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(StateUnwritable) as raised:
        atomic_write(tmp_path / "f", b"data")
    monkeypatch.undo()
    assert cause in raised.value.reason
    assert raised.value.path == tmp_path / "f"
    assert os.listdir(tmp_path) == []


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "f"
    atomic_write(target, b"old")

    def fail(*args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StateUnwritable):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_interrupted_cleans_up(tmp_path, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "f", b"data")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("refused", ["create", "rename"])
def test_atomic_write_into_a_directory_that_refuses_writes(tmp_path, monkeypatch, refused):
    """A directory that refuses writes: a clear error naming the file, nothing left in it. The refusal is
    the kernel's EACCES, injected where the syscall happens (creating the temp file, or renaming it into
    place), so the promise is tested as any user: root ignores directory permissions."""
    locked = tmp_path / "ro"
    locked.mkdir()
    denied: list[str] = []

    def deny(path) -> None:
        denied.append(str(path))
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    real_open, real_replace = os.open, os.replace

    def open_(path, flags, *args, **kwargs):
        if refused == "create" and Path(path).parent == locked and flags & os.O_CREAT:
            deny(path)
        return real_open(path, flags, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        if refused == "rename" and Path(dst).parent == locked:
            deny(dst)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(StateUnwritable) as raised:
        atomic_write(locked / "f", b"data")
    monkeypatch.undo()
    assert len(denied) == 1, "the write was refused where it happens, once"
    assert raised.value.reason == "cannot write: permission denied (EACCES)"
    assert raised.value.path == locked / "f"
    assert os.listdir(locked) == [], "no file and no temp file left behind"


def test_atomic_symlink_replaces_link_not_its_target(tmp_path):
    link = tmp_path / "current"
    (tmp_path / "gen-1").mkdir()
    atomic_symlink("gen-1", link)
    assert read_link(link) == "gen-1"
    atomic_symlink("gen-2", link)  # over a link to a directory: must not descend into it
    assert read_link(link) == "gen-2"
    assert list((tmp_path / "gen-1").iterdir()) == []
    assert sorted(os.listdir(tmp_path)) == ["current", "gen-1"]


def test_atomic_symlink_failure_keeps_old_link(tmp_path, monkeypatch):
    link = tmp_path / "current"
    atomic_symlink("gen-1", link)

    def fail(*args):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StateUnwritable):
        atomic_symlink("gen-2", link)
    monkeypatch.undo()
    assert read_link(link) == "gen-1"
    assert os.listdir(tmp_path) == ["current"]


def test_read_link_absent_and_not_a_link(tmp_path):
    assert read_link(tmp_path / "absent") is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError):
        read_link(tmp_path / "file")


def test_ensure_dir(tmp_path):
    old_umask = os.umask(0o077)
    try:
        made = ensure_dir(tmp_path / "a" / "b" / "c", mode=0o750)
    finally:
        os.umask(old_umask)
    assert made.is_dir()
    assert [mode_of(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o750] * 3

    (tmp_path / "a").chmod(0o755)
    ensure_dir(tmp_path / "a")
    assert mode_of(tmp_path / "a") == 0o755  # existing directories are left alone

    (tmp_path / "file").write_text("x")
    with pytest.raises(StateUnwritable):
        ensure_dir(tmp_path / "file" / "sub")


def test_put_many_writes_every_missing_object_read_only_and_returns_hashes_in_order(tmp_path):
    from store import Store, hash_value
    store = Store(tmp_path / "s")
    values = [{"n": i} for i in range(50)] + [{"n": 3}]
    existing = store.put({"n": 7})
    hashes = store.put_many(values)
    assert hashes == [hash_value(v) for v in values]
    assert existing in hashes and sorted(store.iter_hashes()) == sorted(set(hashes))
    for h, v in zip(hashes, values):
        assert store.get(h) == v
        assert stat.S_IMODE(store.path_of(h).stat().st_mode) == 0o444
    assert not [p for p in (tmp_path / "s").rglob(".tmp-*")], "no temp files left"
    assert store.put_many([]) == []


# --- durability: syncfs errors (issue 10) ---------------------------------------------------------

class FailingLibc:
    """Stands in for libc: its syncfs fails the way the kernel reports it (-1 and errno)."""

    def __init__(self, error: int):
        self.error = error
        self.calls = 0

    def syncfs(self, fd: int) -> int:
        import ctypes
        self.calls += 1
        ctypes.set_errno(self.error)        # what CDLL(use_errno=True) hands to ctypes.get_errno()
        return -1


@pytest.fixture
def sync_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "sync", lambda: calls.append("sync"))
    return calls


@pytest.mark.parametrize("error, cause", [(errno.EIO, "I/O error (EIO)"), (errno.ENOSPC, "disk full (ENOSPC)")])
def test_a_failed_syncfs_raises_naming_the_directory(tmp_path, monkeypatch, sync_calls, error, cause):
    store = Store(tmp_path / "s")
    libc = FailingLibc(error)
    monkeypatch.setattr("store.fsutil._libc", lambda: libc)
    values = [{"n": 1}, {"n": 2}]
    with pytest.raises(StateUnwritable) as raised:
        store.put_many(values)
    assert libc.calls == 1 and sync_calls == [], "the failure is reported, not papered over with sync()"
    assert raised.value.path == store.path_of(hash_value(values[0])).parent
    assert raised.value.reason == f"cannot flush to disk: {cause}"
    assert str(raised.value.path) in str(raised.value)
    monkeypatch.undo()
    assert list(store.iter_hashes()) == [] and not list((tmp_path / "s").rglob(".tmp-*")), "no object, no temp"


@pytest.mark.parametrize("libc", [None, FailingLibc(errno.ENOSYS), FailingLibc(errno.EPERM)],
                         ids=["no-symbol", "ENOSYS", "EPERM-seccomp"])
def test_only_a_missing_syncfs_falls_back_to_sync(tmp_path, monkeypatch, sync_calls, libc):
    monkeypatch.setattr("store.fsutil._libc", lambda: libc)
    store = Store(tmp_path / "s")
    hashes = store.put_many([{"n": 1}, {"n": 2}])
    assert sync_calls == ["sync", "sync"]           # one per syncfs: data, then the renames
    assert [store.get(h) for h in hashes] == [{"n": 1}, {"n": 2}]


# --- a put verifies what is already there (issue 10) ----------------------------------------------

def damage(store: Store, digest: str, data: bytes = b"\x00garbage") -> None:
    path = store.path_of(digest)
    path.chmod(0o644)
    path.write_bytes(data)
    path.chmod(0o444)


@pytest.mark.parametrize("how", ["put", "put_bytes", "put_many", "put_many_encoded"])
@pytest.mark.parametrize("harm", ["garbage", "truncated", "empty"])
def test_putting_a_damaged_object_again_repairs_it(tmp_path, how, harm):
    store = Store(tmp_path)
    digest = store.put(SPEC)
    other = store.put(["intact"])
    damage(store, digest, {"garbage": b"\x00garbage", "truncated": encode(SPEC)[:-3], "empty": b""}[harm])
    with pytest.raises(CorruptObject):
        store.get(digest)
    put = {"put": lambda: store.put(SPEC), "put_bytes": lambda: store.put_bytes(encode(SPEC)),
           "put_many": lambda: store.put_many([SPEC, ["intact"]])[0],
           "put_many_encoded": lambda: store.put_many_encoded([encode(SPEC)])[0]}[how]
    assert put() == digest
    assert store.get(digest) == SPEC and store.get(other) == ["intact"]
    assert mode_of(store.path_of(digest)) == 0o444
    report = store.verify()
    assert (report.ok, report.corrupt, report.stray) == (2, [], [])


def test_an_intact_object_is_compared_not_rewritten(tmp_path, monkeypatch):
    store = Store(tmp_path)
    digest = store.put(SPEC)
    before = store.path_of(digest).stat()

    def no_writes(*args, **kwargs):
        raise AssertionError("an intact object was rewritten")

    monkeypatch.setattr("store.objects.atomic_write", no_writes)
    monkeypatch.setattr("store.objects.atomic_write_many", lambda items, mode: items and no_writes())
    assert store.put(SPEC) == digest and store.put_many([SPEC]) == [digest]
    after = store.path_of(digest).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


# --- the gc lock (issue 10) -----------------------------------------------------------------------

def test_gc_lock_is_shared_by_writers_and_exclusive_for_the_collector(tmp_path):
    store = Store(tmp_path / "s")
    writer1, writer2 = store.lock(shared=True), store.lock(shared=True)
    collector = store.lock(shared=False)
    assert writer1.try_acquire() and writer2.try_acquire(), "writers hold it together"
    assert not collector.try_acquire(), "gc waits for every writer"
    writer1.release()
    assert not collector.try_acquire()
    writer2.release()
    assert collector.try_acquire()
    assert collector.holder_pid() == os.getpid()
    assert not store.lock(shared=True).try_acquire(), "a writer waits while gc decides and sweeps"
    with pytest.raises(LockTimeout) as raised:
        with store.writing(timeout=0):
            pass
    assert raised.value.holder_pid == os.getpid()
    collector.release()
    with store.writing(timeout=0):
        assert not store.lock(shared=False).try_acquire()
    assert (tmp_path / "s" / "gc.lock").is_file() and list(store.iter_hashes()) == []
