"""Blobs (store.blobs): streamed in and out, named by content, complete or absent, damage found."""
from __future__ import annotations

import os

import blake3
import pytest

from store import BlobStore
from store.errors import CorruptObject, MissingObject, StateUnwritable


def chunks_of(data: bytes, size: int = 7):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_a_streamed_blob_is_named_by_its_content_and_read_back(tmp_path):
    blobs = BlobStore(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 5)
    h, size = blobs.put_stream(chunks_of(data, 65536))
    assert h == blake3.blake3(data).hexdigest() and size == len(data)
    assert b"".join(blobs.chunks(h)) == data
    assert oct(blobs.path_of(h).stat().st_mode & 0o777) == "0o444"
    assert blobs.put_stream([data]) == (h, size)          # idempotent
    assert list(blobs.iter_hashes()) == [h] and blobs.size_of(h) == len(data)


def test_a_stream_that_breaks_leaves_nothing_behind(tmp_path):
    blobs = BlobStore(tmp_path)

    def broken():
        yield b"x" * 1000
        raise ConnectionError("engine went away")
    with pytest.raises(ConnectionError):
        blobs.put_stream(broken())
    assert list(blobs.iter_hashes()) == []
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_a_failing_disk_write_is_a_store_error_and_leaves_nothing(tmp_path, monkeypatch):
    blobs = BlobStore(tmp_path)
    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StateUnwritable):
        blobs.put_stream([b"data"])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert list(blobs.iter_hashes()) == []
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_damage_is_found_by_check_by_verify_and_repaired_by_a_put(tmp_path):
    blobs = BlobStore(tmp_path)
    data = b"archive" * 1000
    h, _ = blobs.put_stream([data])
    path = blobs.path_of(h)
    os.chmod(path, 0o644)
    path.write_bytes(data[:-1] + b"X")
    with pytest.raises(CorruptObject) as err:
        blobs.check(h)
    assert h in str(err.value)
    report = blobs.verify()
    assert report.corrupt == [h] and report.ok == 0
    blobs.put_stream([data])                # a put of the right content rewrites the damaged copy
    blobs.check(h)
    assert blobs.verify().corrupt == []


def test_missing_blobs_and_stray_files(tmp_path):
    blobs = BlobStore(tmp_path)
    with pytest.raises(MissingObject):
        blobs.check("a" * 64)
    h, _ = blobs.put_stream([b"one"])
    (tmp_path / "blobs" / ".tmp-blob-leftover").write_bytes(b"half")
    report = blobs.verify()
    assert report.ok == 1 and [p.name for p in report.stray] == [".tmp-blob-leftover"]
    blobs.delete(h)
    blobs.delete(h)
    assert not blobs.has(h)
