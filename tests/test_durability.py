"""Durability (issue 10): the fsync claims, tested by replaying every crash prefix of a real switch and a
real gc (tests/crash_replay.py, the approach of ALICE and CrashMonkey). SIGKILL keeps the page cache, so
the kill-point proof (tests/faults.py) never loses a write; a power cut does.

A first switch (-> v1), a switch v1 -> v2, a rollback and a gc run through `Gen` with an in-memory engine
(gen.engine.memory) and a real state directory; every file-system operation under it is recorded, with
the engine's state before and after each and at each step boundary (gen's fault checkpoints). For every
prefix of the log, each disk a power cut could leave (all of it persisted; only what was made durable;
ALICE's reorderings) is written to a fresh directory, the engine is put back as it was at that moment,
and then: `gen recover` succeeds; the engine runs exactly `current`'s manifest, healthy, and `gen status`
is clean; every generation `gen list` shows has its whole closure in the store, every object verifies,
every build root's closure is there; a switch whose flip of `current` had returned is not lost; and a
rollback to the generation before `current` succeeds and runs it whole. Any exception is a violation.
Besides: every file gen fsynced is durable, name and bytes, once the verb returns. And the replay can fail:
a gen with one fsync taken out does not survive it.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import pytest

import gen.deploy.recovery  # noqa: F401  (gen.api loads them lazily; their checkpoints are hooked)
import gen.deploy.transaction  # noqa: F401
import gen.state.gc  # noqa: F401
import gen.state.profile
import store.fsutil
from gen.api import Gen
from gen.deploy.options import Options
from gen.engine.memory import MemoryEngine
from gen.errors import GenError
from gen.model.compile import compile_empty
from gen.state.manifests import load_compiled
from gen.state.roots import build_roots
from store.errors import StoreError
from tests.crash_replay import Crash, Op, Replay, Trace
from tests.crash_trace import Tracer

P = "shop"
IMAGES = {"base:1": "sha256:" + "b" * 64, **{f"app:{v}": "sha256:" + str(v) * 64 for v in (1, 2, 3)}}
FAST = Options(timeout_s=2.0, stability_s=0, poll_s=0.001, workers=4)
ENGINE_STATE = ("tags", "images", "containers", "networks", "volumes")


def spec(v: int) -> str:
    """Four services: a stop-first one with a healthcheck and a named volume, one publishing a port
    whose image changes, two replicas, and one that never changes."""
    return f'''name = "{P}"
[volumes.data]
[services.db]
image = "base:1"
volumes = ["data:/data"]
update = "stop-first"
env = {{ V = "{v}" }}
[services.db.healthcheck]
test = ["CMD", "true"]
interval = "1s"
[services.web]
image = "app:{v}"
ports = ["127.0.0.1:8080:80"]
depends_on = ["db"]
[services.worker]
image = "base:1"
replicas = 2
env = {{ V = "{v}" }}
[services.cache]
image = "base:1"
'''


def snapshot(engine: MemoryEngine) -> dict:
    with engine._lock:
        return copy.deepcopy({name: getattr(engine, name) for name in ENGINE_STATE})


def restore(snap: dict) -> MemoryEngine:
    engine = MemoryEngine()
    for name, value in copy.deepcopy(snap).items():
        setattr(engine, name, value)
    engine._ids = itertools.count(10**6)        # container ids never collide with the snapshot's
    return engine


@contextlib.contextmanager
def unflushed():
    """Recovering a crash state needs no durability: fsync and syncfs are skipped (they cost seconds)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(os, "fsync", lambda fd: None)
        m.setattr(store.fsutil, "_syncfs", lambda directory: None)
        yield


def checkpoints() -> list[tuple[object, object]]:
    """(module, checkpoint) for every loaded gen module that names the fault-injection checkpoint. The
    modules gen imports only when an activation runs are loaded first, so they are hooked too."""
    import gen.deploy.activation, gen.deploy.recovery  # noqa: F401, E401
    return [(m, m.checkpoint) for name, m in list(sys.modules.items()) if name.startswith("gen.")
            and getattr(getattr(m, "checkpoint", None), "__module__", "").endswith(".faults")]


def traced(tmp: Path, versions: list[int], verb) -> Trace:
    """Switch through `versions` untraced, then trace `verb(gen, tmp)` on that state directory."""
    tmp.mkdir(parents=True, exist_ok=True)
    for v in (1, 2, 3):
        (tmp / f"v{v}.toml").write_text(spec(v))
    (tmp / "state").mkdir()
    engine = MemoryEngine(IMAGES)
    with unflushed():           # the fsyncs are logged, not done: the model decides what a crash keeps
        g = Gen(tmp / "state", engine=engine, options=FAST, lock_timeout=5)
        for v in versions:
            g.switch(str(tmp / f"v{v}.toml"))
        old = time.time() - 3600                # past gc's grace period: unreachable objects go
        for path in (tmp / "state" / "store" / "objects").rglob("*"):
            os.utime(path, (old, old), follow_symlinks=False)
        tracer = Tracer(tmp / "state", lambda: snapshot(engine), syncs=[(store.fsutil, "_syncfs")])
        with pytest.MonkeyPatch.context() as m, tracer:
            for module, real in checkpoints():
                m.setattr(module, "checkpoint", lambda label, real=real: (tracer.mark(label), real(label)))
            verb(Gen(tmp / "state", engine=engine, options=FAST, lock_timeout=5), tmp)
    trace = tracer.trace()
    trace.check_complete()
    assert trace.marks, "gen's fault checkpoints were not hooked: no step boundary was seen"
    return trace


# -- the invariant, on one crash state -----------------------------------------------------------------
def whole(g: Gen, engine: MemoryEngine, what: str) -> list[str]:
    """Exactly `current`'s manifest runs (nothing before a first generation), healthy, beside only the stopped
    containers of the warm generation; `gen status` is clean."""
    current = g.profile(P).current()
    compiled = load_compiled(g.store, current.manifest) if current else compile_empty(P)
    wanted = Counter({(name, h): obj["replicas"] for name, (h, obj) in compiled.services.items()})
    seen = engine.observe(P)
    running = Counter((c.service, c.hash) for c in seen if c.state == "running" and c.health in (None, "healthy"))
    problems = []
    warm = warm_pairs(g, current.number) if current else set()
    kept = [c for c in seen if (c.service, c.hash) in warm and (c.service, c.hash) not in wanted]
    if any(c.state != "exited" for c in kept):
        problems.append(f"{what}: a kept (warm) container is not stopped: {[(c.name, c.state) for c in kept]}")
    if running != wanted or len(seen) - len(kept) != sum(wanted.values()):
        others = sorted((c.service, c.hash[:12], c.state) for c in seen if (c.service, c.hash) not in wanted)
        problems.append(f"{what}: the engine does not run generation {current and current.number} whole: "
                        f"missing {sorted((s, h[:12]) for s, h in wanted - running)}, others {others}")
    status = g.status(P)
    if not status.ok:
        problems.append(f"{what}: gen status is not clean: {status.to_json()}")
    return problems


def warm_pairs(g: Gen, number: int) -> set[tuple[str, str]]:
    """(service, hash) of the generation just below `number`: gen keeps its replaced containers, stopped
    (the default of gen.state.warm), so they may stay."""
    below = [n for n in g.profile(P).numbers() if n < number]
    if not below:
        return set()
    compiled = load_compiled(g.store, g.profile(P).get(max(below)).manifest)
    return {(name, h) for name, (h, _) in compiled.services.items()}


def stored(g: Gen) -> list[str]:
    """Every generation `gen list` shows is whole in the store; every object verifies; build roots are whole."""
    problems = []
    for generation in g.generations(P)[1] if g.profile(P).exists() else []:
        try:
            load_compiled(g.store, generation.manifest)
        except (GenError, StoreError) as e:
            problems.append(f"generation {generation.number} is listed, but its closure is not in the store: {e}")
    corrupt = g.store.verify().corrupt
    if corrupt:
        problems.append(f"objects under their final name fail their hash: {[h[:12] for h in corrupt]}")
    for name, manifest in build_roots(g.state_dir).items():
        try:
            load_compiled(g.store, manifest)
        except (GenError, StoreError) as e:
            problems.append(f"the build root of profile {name} names an incomplete closure: {e}")
    return problems


def check(crash: Crash, snap: dict, trace: Trace, work: Path, committed: int | None) -> list[str]:
    """Recover the crash state, then look: the problems found (none: it recovered to a whole generation)."""
    state = work / "state"
    crash.image.materialize(state)
    engine = restore(snap)
    g = Gen(state, engine=engine, options=FAST, lock_timeout=5)
    try:
        g.recover(P)
        problems = whole(g, engine, "after gen recover") + stored(g)
        current = g.profile(P).current_number()
        if committed is not None and trace.reached("committed", crash.prefix) and current != committed:
            problems.append(f"the activation had committed generation {committed} (its flip of `current` "
                            f"had returned), but after the crash `current` names {current}: a committed "
                            "activation was lost")
        if current is not None and any(n < current for n in g.profile(P).numbers()):
            result = g.rollback(P)
            problems += whole(g, engine, f"after gen rollback to generation {result.generation}")
    except Exception as e:                      # a traceback, or a GenError the design does not expect here
        frame = traceback.extract_tb(e.__traceback__)[-1]
        problems = [f"{type(e).__name__}: {e} (raised at {Path(frame.filename).name}:{frame.lineno})"]
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return problems


def quiet(op: Op) -> bool:
    """Lock files hold only their holder's pid: what a crash does to them explains nothing."""
    return op.path.rpartition("/")[2] in ("lock", "gc.lock")


def replay(trace: Trace, work: Path, variants: str, committed: int | None = None) -> tuple[Counter, list[str]]:
    """Check every crash state of every prefix: the tally and the violations."""
    if committed is not None:
        assert trace.reached("committed", len(trace.ops)), "the activation never reached its 'committed' boundary"
    r, seen, violations, tally = Replay(trace), set(), [], Counter()
    work.mkdir(exist_ok=True)
    for k in range(len(trace.ops) + 1):
        tally["prefixes"] += 1
        for crash in r.states(k, variants):
            digest = crash.image.digest()
            for e, when in trace.engines_at(k):
                tally["states"] += 1
                key = (digest, e, trace.reached("committed", k))
                if key in seen:
                    continue
                seen.add(key)
                tally["checked"] += 1
                with unflushed():
                    problems = check(crash, trace.engines[e], trace, work, committed)
                if problems:
                    last = f"op {k - 1} {trace.ops[k - 1]}" if k else "none"
                    violations.append("\n    ".join(
                        [f"crash after {k} of {len(trace.ops)} ops (the last: {last}), {crash.variant} state, "
                         f"the engine as {when}:", *problems, "lost on the disk:", *r.explain(crash, quiet)]))
    tally["violations"] = len(violations)
    return tally, violations


# -- the scenarios -----------------------------------------------------------------------------------
# name: (generations switched to before the trace, the verb traced, the generation its commit makes)
SCENARIOS = {
    "first switch": ([], lambda g, tmp: g.switch(str(tmp / "v1.toml")), 1),
    "switch": ([1], lambda g, tmp: g.switch(str(tmp / "v2.toml")), 2),
    "rollback": ([1, 2], lambda g, tmp: g.rollback(P), 1),
    "gc": ([1, 2, 3], lambda g, tmp: g.gc(P, keep=2), None),
}



@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Trace]:
    out = {}
    for name, (versions, verb, _) in SCENARIOS.items():
        out[name] = traced(tmp_path_factory.mktemp(name.replace(" ", "-")), versions, verb)
    return out


@pytest.fixture
def work(tmp_path):
    """Where crash states are recovered: a tmpfs when there is one (each is a few dozen directories)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path / "work"
        return
    directory = Path(tempfile.mkdtemp(prefix="gen-durability-", dir=shm))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def report(capsys, what: str, trace: Trace, tally: Counter) -> None:
    with capsys.disabled():
        print(f"\ndurability, {what}: {len(trace.ops)} ops, {tally['prefixes']} crash prefixes, {tally['states']} "
              f"crash states, {tally['checked']} distinct checked, {tally['violations']} violations")


@pytest.mark.parametrize("scenario, variants", [
    ("first switch", "bounds"), ("first switch", "reorder"), ("switch", "bounds"), ("switch", "reorder"),
    ("rollback", "bounds"), ("rollback", "reorder"), ("gc", "bounds"),
    ("gc", "reorder"),
])
def test_every_crash_recovers_to_one_whole_generation(traces, scenario, variants, work, capsys):
    trace = traces[scenario]
    tally, violations = replay(trace, work, variants, SCENARIOS[scenario][2])
    report(capsys, f"{scenario} ({variants})", trace, tally)
    assert not violations, f"{len(violations)} crash states do not recover:\n" + "\n".join(violations[:10])



@pytest.mark.parametrize("scenario", [
    "first switch",
    "switch", "rollback", "gc"])
def test_every_file_gen_fsynced_is_durable_once_it_returns(traces, scenario):
    """fsync promises the file's bytes; they survive only if its name does too (the directory fsynced)."""
    assert Replay(traces[scenario]).unsynced_at_end() == []


# -- the replay can fail: gen with one fsync taken out ---------------------------------------------------
def symlink_without_directory_fsync(monkeypatch) -> None:
    real = store.fsutil.atomic_symlink

    def atomic_symlink(target, link):
        with pytest.MonkeyPatch.context() as m:
            m.setattr(store.fsutil, "fsync_dir", lambda path: None)
            real(target, link)
    monkeypatch.setattr(gen.state.profile, "atomic_symlink", atomic_symlink)


def write_without_file_fsync(monkeypatch) -> None:
    def write_unsynced(fd: int, data: bytes, mode: int) -> None:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            os.fchmod(file.fileno(), mode)
    monkeypatch.setattr(store.fsutil, "_write_synced", write_unsynced)


@pytest.mark.parametrize("mutant, found", [
    (symlink_without_directory_fsync, ["a committed activation was lost",
                                       "rename profiles/shop/.tmp-current-* -> profiles/shop/current: never made"]),
    (write_without_file_fsync, ["to profiles/shop/generations/.tmp-2.json-* at 0: never made durable"]),
], ids=["atomic_symlink-without-directory-fsync", "atomic_write-without-file-fsync"])
def test_the_replay_finds_a_missing_fsync(tmp_path, work, monkeypatch, capsys, mutant, found):
    """Proof that the replay can fail: a switch by a gen with one fsync taken out does not survive it."""
    mutant(monkeypatch)
    trace = traced(tmp_path / "run", [1], SCENARIOS["switch"][1])
    monkeypatch.undo()
    tally, violations = replay(trace, work, "bounds", committed=2)
    report(capsys, f"switch by a gen with {mutant.__name__.replace('_', ' ')}", trace, tally)
    for text in found:
        assert any(text in v for v in violations), f"no violation mentions {text!r}"
