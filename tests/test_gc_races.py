"""Builds, switches and gc at the same time (issue 10, "the store and gc").

A build is a root (its profile's build root, gen.state.roots) and writers hold the store's gc lock
shared from their first object write until their objects are rooted, while gc holds it exclusive
from its first look at the roots to the end of its sweep. The thread tests force each interleaving
with a pause inside the real code path (never a sleep): a build paused between its first write and
its root while gc starts, and a gc paused between its decision and its sweep while a build starts.
Each waits until the other side is either finished or refused by the lock, so on code without the
lock they show the loss deterministically. The process test runs real `gen` processes together.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import gen.state.gc as gc_module
from gen.api import Gen
from store import FileLock, Store
from tests.conftest import ROOT, app

HANG_GUARD_S = 120          # only against a hung test: no assertion depends on how long anything takes



def age_store(state: Path, seconds: float = 3600) -> None:
    """Date every object back, as if written long before (the grace margin covers only the last second)."""
    t = time.time() - seconds
    for path in (state / "store" / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (t, t))


def unrooted_leftovers(d, spec: Path) -> None:
    """The spec's objects are in the store, old and named by no root: what a build finds already present."""
    Gen(d.state).build(spec)
    age_store(d.state)
    shutil.rmtree(d.state / "roots", ignore_errors=True)


def closure_is_whole(state: Path, compiled) -> bool:
    store = Store(state / "store")
    hashes = [compiled.manifest_hash, *(h for h, _ in compiled.services.values())]
    try:
        return all(store.get(h) is not None for h in hashes)      # present and rehashed
    except Exception:                                             # noqa: BLE001 - missing or corrupt: not whole
        return False


class Worker(threading.Thread):
    """Runs fn in a named thread; keeps its result or error; sets `moved` when it ends."""

    def __init__(self, name: str, fn, moved: threading.Event):
        super().__init__(name=name, daemon=True)
        self.fn, self.moved = fn, moved
        self.result = self.error = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as e:      # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.moved.set()

    def outcome(self):
        self.join(HANG_GUARD_S)
        assert not self.is_alive(), f"{self.name} hung"
        if self.error is not None:
            raise self.error
        return self.result


def refused_by_gc_lock(monkeypatch, moved: threading.Event) -> None:
    """Set `moved` whenever someone finds the store's gc lock taken (and goes on waiting for it)."""
    original = FileLock.try_acquire

    def try_acquire(self):
        got = original(self)
        if not got and self.path.name == "gc.lock":
            moved.set()
        return got
    monkeypatch.setattr(FileLock, "try_acquire", try_acquire)


def pause(monkeypatch, cls, method: str, thread: str, reached: threading.Event, resume: threading.Event) -> None:
    """The first call of cls.method in `thread` signals `reached` once it returns, then waits for `resume`."""
    original = getattr(cls, method)

    def paused(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if threading.current_thread().name == thread and not reached.is_set():
            reached.set()
            assert resume.wait(HANG_GUARD_S), "never resumed"
        return out
    monkeypatch.setattr(cls, method, paused)


@pytest.fixture
def gen_for(deployment):
    return lambda: Gen(deployment.state, lock_timeout=HANG_GUARD_S)


# -- sequential: the case the issue reports --------------------------------------------------------------
def test_build_then_gc_then_switch_by_hash(deployment):
    d = deployment
    spec = d.spec(app("v1"))
    first = d.gen("build", spec, "--json")
    assert first.code == 0, first.err
    built = json.loads(first.out)
    age_store(d.state)                          # built long before: the grace margin does not apply
    again = d.gen("build", spec)                # found present, not rewritten: still old
    assert again.code == 0 and again.last_line == built["hash"]
    r = d.gen("gc", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["objects_deleted"] == 0 and json.loads(r.out)["warnings"] == []
    store = Store(d.state / "store")
    assert all(store.has(h) for h in [built["hash"], *built["services"].values()])
    r = d.gen("switch", built["hash"][:12], "-p", d.profile, "-q")
    assert r.code == 0, r.err


# -- threads: each interleaving forced -------------------------------------------------------------------
@pytest.mark.parametrize("objects", ["already-present", "fresh-without-grace"])
def test_gc_waits_for_a_build_between_its_first_write_and_its_root(deployment, gen_for, monkeypatch, objects):
    d = deployment
    spec = d.spec(app("v1"))
    if objects == "already-present":
        unrooted_leftovers(d, spec)             # the build finds them: nothing re-dates them
    else:
        monkeypatch.setattr(gc_module, "GRACE_S", -math.inf)    # no margin: the lock alone must keep them
    moved, written, resume = threading.Event(), threading.Event(), threading.Event()
    refused_by_gc_lock(monkeypatch, moved)
    pause(monkeypatch, Store, "put_many_encoded", "build", written, resume)    # services written, no root yet

    build = Worker("build", lambda: gen_for().build(spec), written)          # `written` also if it fails
    build.start()
    assert written.wait(HANG_GUARD_S) and build.error is None, build.error
    collector = Worker("gc", lambda: gen_for().gc(), moved)
    collector.start()
    assert moved.wait(HANG_GUARD_S)             # gc either finished or waits for the build's lock
    resume.set()
    compiled, report = build.outcome(), collector.outcome()

    assert closure_is_whole(d.state, compiled), f"gc deleted a build in flight ({report.objects_deleted} objects)"
    assert report.objects_deleted == 0 and report.warnings == []
    r = d.gen("switch", compiled.manifest_hash, "-p", d.profile, "-q")
    assert r.code == 0, r.err


def test_a_build_waits_for_a_gc_between_its_decision_and_its_sweep(deployment, gen_for, monkeypatch):
    d = deployment
    spec = d.spec(app("v1"))
    unrooted_leftovers(d, spec)                 # what gc has decided to delete, and the build will find
    moved, decided, resume = threading.Event(), threading.Event(), threading.Event()
    refused_by_gc_lock(monkeypatch, moved)
    pause(monkeypatch, Store, "iter_hashes", "gc", decided, resume)   # reachability decided, sweep not begun

    collector = Worker("gc", lambda: gen_for().gc(), decided)                 # `decided` also if it fails
    collector.start()
    assert decided.wait(HANG_GUARD_S) and collector.error is None, collector.error
    build = Worker("build", lambda: gen_for().build(spec), moved)
    build.start()
    assert moved.wait(HANG_GUARD_S)             # the build either finished or waits for gc's lock
    resume.set()
    report, compiled = collector.outcome(), build.outcome()

    assert report.objects_deleted == 3          # the leftovers, swept before the build could find them
    assert closure_is_whole(d.state, compiled), "gc swept objects a build had found and printed"
    r = d.gen("switch", compiled.manifest_hash, "-p", d.profile, "-q")
    assert r.code == 0, r.err


# -- processes: builds, switches and gcs together --------------------------------------------------------
def start(d, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gen", *args, "--state-dir", str(d.state)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_builds_switches_and_gcs_in_parallel_processes(deployment):
    """Each round: every object is old, then three builds (one per profile), two gcs and a switch run
    at once. Every hash a build printed must still be whole afterwards, and every generation too. (The
    switch builds for its own profile: a build root is its profile's *last* build, as Nix's `result`.)"""
    d = deployment
    profiles = [f"{d.profile}-{x}" for x in "abc"]
    specs = [d.spec(app(f"v{i}")) for i in range(3)]
    first = d.gen("switch", specs[0], "-q")     # the profile exists, so gc takes its lock (see the report)
    assert first.code == 0, first.err
    for round_ in range(3):
        age_store(d.state)                      # only roots and the lock keep anything now
        procs = [start(d, "build", str(spec), "-p", profile) for spec, profile in zip(specs, profiles)]
        procs += [start(d, "gc", "--all-profiles", "--keep", "1") for _ in range(2)]
        procs.append(start(d, "switch", str(specs[(round_ + 1) % 3]), "-q"))
        outs = [(p.args[3], *p.communicate(timeout=HANG_GUARD_S), p.returncode) for p in procs]
        assert [(verb, code) for verb, _, _, code in outs] == [(verb, 0) for verb, _, _, _ in outs], outs
        store = Store(d.state / "store")
        for profile, (_, out, _, _) in zip(profiles, outs):
            manifest = store.get(out.strip())   # present and rehashed, as are its services
            assert manifest["profile"] == profile and all(store.get(h) for h in manifest["services"].values())
            r = d.gen("switch", out.strip(), "-p", profile, "--dry-run")
            assert r.code == 0, r.err
        verify = d.gen("verify", "--json")
        assert verify.code == 0 and json.loads(verify.out)["ok"], verify.out   # every generation whole
