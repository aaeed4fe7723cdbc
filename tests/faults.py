"""Fault injection on the real engine: kill gen at every step boundary of a real switch, of the undo of
a failed switch, of `gen recover` itself, of a rollback and of gc; kill switches at random times;
restart dockerd under one; race four switches; fuzz the CLI with malformed specs. After every fault,
`gen recover` must leave exactly one whole generation running and healthy (the old or the new one, as
the position of the kill decides), `current` agreeing, no orphan containers, the named volume's data
intact, and every generation record that existed before still there and whole (`gen verify`).

Used by tests/test_faults.py (the normal suite: a representative subset) and, with every boundary of
every scenario and bigger numbers, by `just faults`:
    python -m tests.faults --random 20 --fuzz 5000 --daemon-restart
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests.cleanup import remove_profile

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("GEN_TEST_IMAGE", "gen-test/busybox:1")

# Four services covering every activation path: stop-first with a published port (front),
# start-first without healthcheck (api), replicas (pool), healthcheck + named volume (db).
SPEC = """
name = "{profile}"
[volumes.data]
[services.db]
image = "{image}"
command = ["sh", "-c", "[ -f /data/seed ] || echo seed > /data/seed; echo {version} >> /data/boots; exec sleep 3600"]
env = {{ V = "{version}" }}
volumes = ["data:/data"]
stop_grace = "0s"
[services.db.healthcheck]
test = ["CMD-SHELL", "test -s /data/seed"]
interval = "200ms"
[services.api]
image = "{image}"
command = ["sleep", "3600"]
env = {{ V = "{version}" }}
depends_on = ["db"]
stop_grace = "0s"
[services.pool]
image = "{image}"
command = ["sleep", "3600"]
env = {{ V = "{version}" }}
replicas = 2
depends_on = ["db"]
stop_grace = "0s"
[services.front]
image = "{image}"
command = ["sh", "-c", "mkdir -p /www && echo {version} > /www/index.html && exec httpd -f -p 8080 -h /www"]
env = {{ V = "{version}" }}
ports = ["127.0.0.1:{port}:8080"]
update = "stop-first"
depends_on = ["api"]
stop_grace = "0s"
[services.front.healthcheck]
test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:{check_port}/"]
interval = "200ms"
"""
BROKEN = "bad"        # a version whose front never passes its healthcheck (it asks a port nothing serves)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """One profile with two built generations (v1, v2) of the four-service spec."""
    work: Path
    profile: str = field(default_factory=lambda: f"f{uuid.uuid4().hex[:10]}")
    port: int = field(default_factory=free_port)
    manifests: dict[str, dict] = field(default_factory=dict)     # version -> build --json output
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # written into the named volume once

    def __post_init__(self):
        self.state = self.work / "state"
        self.docker = docker.from_env(timeout=120)

    def spec(self, version: str) -> Path:
        path = self.work / f"{self.profile}-{version}.toml"
        path.write_text(SPEC.format(profile=self.profile, image=IMAGE, version=version, port=self.port,
                                    check_port=8081 if version == BROKEN else 8080))
        return path

    def gen(self, *args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gen", *map(str, args), "--state-dir", str(self.state)],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **(env or {})})

    def popen(self, *args, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "gen", *map(str, args), "--state-dir", str(self.state)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env={**os.environ, **(env or {})})

    def build(self, version: str) -> dict:
        built = self.gen("build", self.spec(version), "--json")
        assert built.returncode == 0, built.stderr
        self.manifests[version] = json.loads(built.stdout)
        return self.manifests[version]

    def setup(self) -> None:
        for version in ("v1", "v2"):
            self.build(version)
        self.must("switch", self.spec("v1"))
        [db] = self.docker.containers.list(filters={"label": [f"gen.profile={self.profile}", "gen.service=db"]})
        wrote = db.exec_run(["sh", "-c", f"echo {self.token} > /data/keep"])      # data no generation makes
        assert wrote.exit_code == 0, wrote.output

    def must(self, *args, **kw) -> subprocess.CompletedProcess:
        r = self.gen(*args, **kw)
        if r.returncode != 0:
            raise AssertionError(f"gen {' '.join(map(str, args))} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def reset_to_v1(self) -> None:
        """Back to generation 1 (v1) running, whatever happened before."""
        self.must("recover", "-p", self.profile)
        if self.current()[1] != self.manifests["v1"]["hash"]:
            self.must("rollback", "-p", self.profile, "--to", "1")

    def back_to_v1(self, version: str) -> None:
        """Back to generation 1 (v1) from a state just checked whole (check()) running `version`."""
        if version != "v1" or self.current()[0] != 1:
            self.must("rollback", "-p", self.profile, "--to", "1")

    @property
    def journal(self) -> Path:
        return self.state / "profiles" / self.profile / "journal.json"

    def listing(self) -> list[dict]:
        return json.loads(self.must("list", "-p", self.profile, "--json").stdout)

    def generations(self, listing: list[dict] | None = None) -> dict[int, str]:
        """Every recorded generation: number -> manifest hash."""
        return {g["generation"]: g["hash"] for g in listing or self.listing()}

    def current(self, listing: list[dict] | None = None) -> tuple[int, str]:
        g = next(g for g in listing or self.listing() if g["current"])
        return g["generation"], g["hash"]

    def check(self, listing: list[dict] | None = None) -> str:
        """Raise AssertionError unless the engine runs exactly the current generation, healthy."""
        status = self.gen("status", "-p", self.profile, "--json")
        report = json.loads(status.stdout)
        assert status.returncode == 0 and report["ok"], f"status not ok: {status.stdout}"
        _, manifest = self.current(listing)
        version = next((v for v, m in self.manifests.items() if m["hash"] == manifest), None)
        assert version and version != BROKEN, f"current manifest {manifest[:12]} is none of {sorted(self.manifests)}"
        expected = self.manifests[version]["services"]
        every = self.docker.containers.list(all=True, filters={"label": f"gen.profile={self.profile}"})
        warm = self.warm_pairs(listing)
        kept = [c for c in every if c.status != "running" and (c.labels["gen.service"], c.labels["gen.hash"]) in warm
                and expected.get(c.labels["gen.service"]) != c.labels["gen.hash"]]
        containers = [c for c in every if c not in kept]
        seen = sorted((c.labels["gen.service"], c.labels["gen.hash"]) for c in containers)
        replicas = {"pool": 2}
        want = sorted((s, h) for s, h in expected.items() for _ in range(replicas.get(s, 1)))
        assert seen == want, f"containers {seen} != generation {version} {want} (kept warm: {len(kept)})"
        for c in kept:
            assert c.status == "exited", f"kept warm container {c.name} is {c.status}"
        for c in containers:
            assert c.status == "running", f"{c.name} is {c.status}"
            health = c.attrs["State"].get("Health", {}).get("Status")
            assert health in (None, "healthy"), f"{c.name} health {health}"
        db = next(c for c in containers if c.labels["gen.service"] == "db")      # it mounts the named volume
        kept = db.exec_run(["cat", "/data/keep"])
        assert (kept.exit_code, kept.output.decode().strip()) == (0, self.token), "volume data lost"
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
            assert r.read().decode().strip() == version, "front serves another generation"
        return version

    def warm_pairs(self, listing: list[dict] | None = None) -> set[tuple[str, str]]:
        """(service, hash) of the generation just below the current one: the one gen keeps warm (its
        default, gen.state.warm), whose stopped containers may stay."""
        number, _ = self.current(listing)
        below = [n for n in self.generations(listing) if n < number]
        if not below:
            return set()
        manifest = self.generations(listing)[max(below)]
        version = next((v for v, m in self.manifests.items() if m["hash"] == manifest), None)
        return set(self.manifests[version]["services"].items()) if version else set()

    def check_records(self, before: dict[int, str], may_go: set[int] = frozenset(),
                      listing: list[dict] | None = None) -> None:
        """Nothing lost: every generation recorded before the fault (but those gc was told to delete)
        is still recorded with the same manifest, and every recorded generation is whole in the store."""
        after = self.generations(listing)
        lost = {n: h[:12] for n, h in before.items() if n not in may_go and after.get(n) != h}
        assert not lost, f"generation records lost or changed: {lost} (now {sorted(after)})"
        from gen.state.verify import verify           # what `gen verify` checks, without a process per check
        from store import Store
        verified = verify(self.state, Store(self.state / "store"))
        assert verified.ok, f"gen verify: {json.dumps(verified.to_json())}"

    def cleanup(self) -> None:
        remove_profile(self.docker, self.profile)


# -- the machinery: trace a command's boundaries, kill it at one, recover, check ------------------------
def trace(lab: Lab, *args, expect: int = 0) -> list[str]:
    """The step boundaries `gen ARGS` passes, as the code itself numbers them."""
    path = lab.work / f"trace-{uuid.uuid4().hex[:8]}.txt"
    run = lab.gen(*args, env={"GEN_FAULT_TRACE": str(path)})
    assert run.returncode == expect, f"gen {args[0]} exited {run.returncode}, not {expect}: {run.stderr.strip()}"
    labels = [line.split(" ", 1)[1] for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return labels


def kill(lab: Lab, k: int, *args) -> None:
    """Run `gen ARGS` and SIGKILL it at its k-th step boundary."""
    killed = lab.gen(*args, env={"GEN_FAULT_KILL_AT": str(k)})
    assert killed.returncode == -signal.SIGKILL, \
        f"gen {args[0]} killed at step {k}: expected SIGKILL, got {killed.returncode}: {killed.stderr.strip()}"


def recover_and_check(lab: Lab, before: dict[int, str], may_go: set[int] = frozenset()) -> str:
    """`gen recover`, then: one whole generation runs, `current` agrees, nothing lost. Returns its version."""
    recovered = lab.gen("recover", "-p", lab.profile)
    assert recovered.returncode == 0, f"recover exited {recovered.returncode}: {recovered.stderr.strip()}"
    assert not lab.journal.exists(), "recover left the journal behind"
    listing = lab.listing()
    version = lab.check(listing)
    lab.check_records(before, may_go, listing)
    return version


def before_and_after_flip(labels: list[str], k: int, old: str, new: str) -> str:
    """The generation a kill at boundary k must leave: `old` before `current` flips, `new` after. The flip
    is right before the "committed" boundary, which is the first to find `current` moved."""
    return old if k < labels.index("committed") + 1 else new


def expect(version: str, wanted: str, where: str) -> str:
    assert version == wanted, f"{where}: {version} runs, expected {wanted}"
    return version


# -- a switch, killed at every step ----------------------------------------------------------------------
def step_labels(lab: Lab) -> list[str]:
    """The step boundaries of a real v1 -> v2 switch, as the code itself numbers them."""
    labels = trace(lab, "switch", lab.spec("v2"))
    lab.reset_to_v1()
    return labels


def kill_at(lab: Lab, k: int, labels: list[str] | None = None) -> tuple[str, str]:
    """SIGKILL gen at step k of a v1 -> v2 switch, recover, check. Returns (outcome, version); with the
    switch's labels, also checks that the version is v1 before the flip and v2 after it."""
    before = lab.generations()
    kill(lab, k, "switch", lab.spec("v2"))
    version = recover_and_check(lab, before)
    if labels:
        expect(version, before_and_after_flip(labels, k, "v1", "v2"), f"switch killed at step {k} ({labels[k - 1]})")
    return "ok", version


# -- the undo of a failed switch, killed at every step -----------------------------------------------------
def undo_labels(lab: Lab) -> list[str]:
    """The boundaries of a v1 -> bad switch: its front never gets healthy, so it fails (exit 2) and is undone."""
    labels = trace(lab, "switch", lab.spec(BROKEN), expect=2)
    assert any(label.startswith("undo: ") for label in labels), f"no undo boundary: {labels}"
    assert lab.check() == "v1"
    return labels


def first_undo_step(labels: list[str]) -> int:
    """The position (1-based) of the undo's first boundary."""
    return next(i for i, label in enumerate(labels, 1) if label.startswith("undo: "))


def kill_in_undo(lab: Lab, k: int) -> str:
    """SIGKILL a failing v1 -> bad switch at its k-th boundary (one of its undo), recover: v1 runs."""
    before = lab.generations()
    kill(lab, k, "switch", lab.spec(BROKEN))
    return expect(recover_and_check(lab, before), "v1", f"undo killed at step {k}")


# -- `gen recover` itself, killed at every step (then recovered again) -------------------------------------
def recover_labels(lab: Lab, interrupt_at: int) -> list[str]:
    """The boundaries of the `gen recover` that repairs a v1 -> v2 switch killed at its step interrupt_at."""
    kill(lab, interrupt_at, "switch", lab.spec("v2"))
    labels = trace(lab, "recover", "-p", lab.profile)
    lab.check()
    lab.reset_to_v1()
    return labels


def kill_in_recover(lab: Lab, interrupt_at: int, k: int, switch_labels: list[str]) -> str:
    """A v1 -> v2 switch killed at interrupt_at, then its `gen recover` killed at k; recover again: the
    generation `current` names runs (v1 if the switch died before its flip, v2 after)."""
    before = lab.generations()
    kill(lab, interrupt_at, "switch", lab.spec("v2"))
    kill(lab, k, "recover", "-p", lab.profile)
    wanted = before_and_after_flip(switch_labels, interrupt_at, "v1", "v2")
    return expect(recover_and_check(lab, before), wanted, f"recover killed at step {k}")


# -- rollback, killed at every step ----------------------------------------------------------------------
def rollback_labels(lab: Lab) -> list[str]:
    """The boundaries of a rollback from v2 (generation 2) to v1 (generation 1)."""
    lab.must("switch", lab.spec("v2"))
    labels = trace(lab, "rollback", "-p", lab.profile, "--to", "1")
    assert lab.check() == "v1"
    return labels


def kill_in_rollback(lab: Lab, k: int, labels: list[str]) -> str:
    """With v2 current, SIGKILL `gen rollback --to 1` at step k, recover: v2 before the flip, v1 after."""
    lab.must("switch", lab.spec("v2"))
    before = lab.generations()
    kill(lab, k, "rollback", "-p", lab.profile, "--to", "1")
    return expect(recover_and_check(lab, before), before_and_after_flip(labels, k, "v2", "v1"),
                  f"rollback killed at step {k} ({labels[k - 1]})")


# -- gc, killed at every step ----------------------------------------------------------------------------
@dataclass
class GcRound:
    """The state one gc finds: generation 1 (v1) current; `doomed`, generations gc --keep 1 deletes (one of
    them, x, names a manifest nothing else names: its objects are swept); the newest (v2) is kept."""
    before: dict[int, str]
    doomed: set[int]
    kept: set[int]
    swept: set[str]             # the objects of x: unreachable once it is deleted


GC = ("--keep", "1")


def gc_round(lab: Lab) -> GcRound:
    """Make the state of one gc round (see GcRound). Generation 1 must be current, and the last round's gc
    must have finished (so each round deletes the same number of generations and sweeps the same number
    of objects: see gc_labels)."""
    from gen.state.profile import Profile
    from store import Store
    x = lab.build(f"x{uuid.uuid4().hex[:6]}")
    lab.build("v1")                                       # the profile's build root names v1 again, not x
    prof = Profile(lab.state, lab.profile)
    with prof.locked(30):                                 # as a switch records a generation
        prof.append(x["hash"], len(x["services"]))
        newest = prof.append(lab.manifests["v2"]["hash"], len(lab.manifests["v2"]["services"]))
    store = Store(lab.state / "store")
    aged = time.time() - 3600                             # older than gc's grace for fresh objects
    for h in store.iter_hashes():
        os.utime(store.path_of(h), (aged, aged))
    before = lab.generations()
    assert lab.current()[0] == 1, "gc rounds need generation 1 current"
    return GcRound(before, set(before) - {1, newest.number}, {1, newest.number},
                   {x["hash"], *x["services"].values()})


def gc_finished(lab: Lab, r: GcRound) -> None:
    """What a whole gc leaves: only the kept generations, x's objects gone, the store whole."""
    from store import Store
    assert set(lab.generations()) == r.kept, f"generations {sorted(lab.generations())}, expected {sorted(r.kept)}"
    store = Store(lab.state / "store")
    assert not [h for h in r.swept if store.has(h)], "gc left unreachable objects"
    lab.check_records(r.before, r.doomed)


def gc_labels(lab: Lab) -> list[str]:
    """The boundaries of `gen gc --keep 1` in a gc round, after a first round that leaves only what every
    round leaves (generation 1 and a newest v2 recorded without a source)."""
    lab.reset_to_v1()
    gc_round(lab)
    lab.must("gc", "-p", lab.profile, *GC)
    r = gc_round(lab)
    labels = trace(lab, "gc", "-p", lab.profile, *GC)
    gc_finished(lab, r)
    assert lab.check() == "v1"
    return labels


def kill_in_gc(lab: Lab, k: int) -> str:
    """SIGKILL gc at step k of a gc round, recover, check (no kept record lost, every record whole),
    then gc again: it finishes the job."""
    r = gc_round(lab)
    kill(lab, k, "gc", "-p", lab.profile, *GC)
    version = expect(recover_and_check(lab, r.before, r.doomed), "v1", f"gc killed at step {k}")
    lab.must("gc", "-p", lab.profile, *GC)
    gc_finished(lab, r)
    return version


# -- random kills, dockerd restarts, racing switches -------------------------------------------------------
def activation_span(lab: Lab) -> float:
    """How long a v1 -> v2 switch runs with its journal written: the window random kills aim at."""
    proc = lab.popen("switch", lab.spec("v2"))
    while not lab.journal.exists() and proc.poll() is None:
        time.sleep(0.005)
    started = time.monotonic()
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    span = time.monotonic() - started
    lab.reset_to_v1()
    return span


def kill_randomly(lab: Lab, rng: random.Random, span_s: float, draws: int = 10) -> tuple[str, str]:
    """SIGKILL a v1 -> v2 switch at a random time while its activation runs, recover, check. A kill counts
    only if it landed mid-activation: the process had not exited (it died of the signal), it had written
    its journal (the boundary "journal written" was passed) and not yet removed it (the journal is still
    there, "journal removed" not passed). Otherwise the sample is drawn again. Returns (version, the last
    boundary the switch had passed)."""
    for _ in range(draws):
        path = lab.work / f"random-{uuid.uuid4().hex[:8]}.txt"
        before = lab.generations()
        proc = lab.popen("switch", lab.spec("v2"), env={"GEN_FAULT_TRACE": str(path)})
        while not lab.journal.exists() and proc.poll() is None:        # aim inside the activation
            time.sleep(0.005)
        time.sleep(rng.uniform(0, span_s))
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        passed = [line.split(" ", 1)[1] for line in path.read_text().splitlines()] if path.exists() else []
        path.unlink(missing_ok=True)
        landed = (code == -signal.SIGKILL and "journal written" in passed and "journal removed" not in passed
                  and lab.journal.exists())
        if not landed:
            lab.reset_to_v1()                              # did not land mid-activation: does not count
            continue
        return recover_and_check(lab, before), passed[-1]
    raise AssertionError(f"no kill landed mid-activation in {draws} draws (window {span_s:.2f} s)")


def restart_daemon_mid_switch(lab: Lab, delay_s: float = 1.0) -> str:
    """Stop dockerd while a switch runs, start it again, recover."""
    proc = lab.popen("switch", lab.spec("v2"), "--timeout", "30")
    time.sleep(delay_s)
    subprocess.run(["pkill", "-TERM", "-x", "dockerd"], check=False)
    for _ in range(200):
        if subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True).returncode != 0:
            break
        time.sleep(0.1)
    subprocess.run([str(ROOT / "scripts" / "ensure-engine")], check=True)
    proc.wait(timeout=120)
    lab.docker = docker.from_env(timeout=120)
    recovered = lab.gen("recover", "-p", lab.profile)
    assert recovered.returncode == 0, f"recover exited {recovered.returncode}: {recovered.stderr}"
    return lab.check()


def concurrent_switches(lab: Lab, n: int = 4) -> str:
    """n different valid specs switched to one profile at the same time: every one commits (they serialise
    on the profile's lock), each records exactly one generation, numbers without gaps or duplicates, and
    the last to commit is current and runs."""
    versions = [f"c{i}-{uuid.uuid4().hex[:4]}" for i in range(n)]
    hashes = {lab.build(v)["hash"]: v for v in versions}
    before = lab.generations()
    procs = [lab.popen("switch", lab.spec(v), "--lock-timeout", "240") for v in versions]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0] * n, f"a valid switch did not commit: exit codes {codes}: {[p.stderr.read() for p in procs]}"
    after = lab.generations()
    new = {num: h for num, h in after.items() if num not in before}
    first = max(before) + 1
    assert sorted(new) == list(range(first, first + n)), f"new generation numbers have gaps or duplicates: {sorted(new)}"
    assert sorted(hashes.get(h, h[:12]) for h in new.values()) == sorted(versions), \
        f"new generations {new} are not one per switch {versions}"
    assert lab.current()[0] == max(after), "the last switch to commit is current"
    version = lab.check()
    assert version in versions
    lab.check_records(before)
    return f"{n}/{n} committed"


# -- `just faults`: the tally --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=20)
    ap.add_argument("--fuzz", type=int, default=5000)
    ap.add_argument("--daemon-restart", action="store_true")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args(argv)
    tally, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab(Path(tmp))
        try:
            lab.setup()
            tally.append(_sweep_scenario(lab, "kill points", _switch_scenario) + " consistent")
            tally.append(_sweep_scenario(lab, "undo", _undo_scenario))
            tally.append(_sweep_scenario(lab, "recover", _recover_scenario))
            tally.append(_sweep_scenario(lab, "rollback", _rollback_scenario))
            tally.append(_sweep_scenario(lab, "gc", _gc_scenario))
            span = activation_span(lab)
            rng, ok = random.Random(args.seed), 0
            for i in range(args.random):
                try:
                    version, passed = kill_randomly(lab, rng, span)
                    ok += 1
                    lab.back_to_v1(version)
                except AssertionError as e:
                    print(f"  random kill {i}: {e}", file=sys.stderr)
                    _reset(lab, f"random kill {i}")
            tally.append(f"random kills {ok}/{args.random}")
            if args.daemon_restart:
                tally.append(_attempt("daemon restart", lambda: restart_daemon_mid_switch(lab)))
                lab.reset_to_v1()
            tally.append(_attempt("concurrent", lambda: concurrent_switches(lab)))
        finally:
            lab.cleanup()
    from tests.fuzz import fuzz_cli
    clean, total = fuzz_cli(args.fuzz)
    tally.append(f"fuzz {clean}/{total} clean")
    failed = any(_short(t) for t in tally)
    print(", ".join(tally))
    return 1 if failed else 0


def _short(entry: str) -> bool:
    """Did this tally entry fall short (a/b with a < b, or FAILED)?"""
    if entry.endswith("FAILED"):
        return True
    counts = [w for w in entry.split() if "/" in w and w.replace("/", "").isdigit()]
    return any(int(a) != int(b) for a, b in (c.split("/") for c in counts))


def _switch_scenario(lab: Lab):
    labels = step_labels(lab)
    return labels, range(1, len(labels) + 1), lambda k: kill_at(lab, k, labels)[1]


def _undo_scenario(lab: Lab):
    labels = undo_labels(lab)
    return labels, range(first_undo_step(labels), len(labels) + 1), lambda k: kill_in_undo(lab, k)


def _recover_scenario(lab: Lab):
    """Recover killed at each of its boundaries, after a switch killed mid-start (before the flip: recover
    restores v1) and after one killed right after the flip (recover finishes v2 forward)."""
    switch = step_labels(lab)
    points = [switch.index("level healthy") + 2, switch.index("committed") + 1]
    cases = [(at, k) for at in points for k in range(1, len(recover_labels(lab, at)) + 1)]
    labels = [f"after switch step {at}: recover step {k}" for at, k in cases]
    return labels, range(1, len(cases) + 1), lambda i: kill_in_recover(lab, *cases[i - 1], switch)


def _rollback_scenario(lab: Lab):
    labels = rollback_labels(lab)
    return labels, range(1, len(labels) + 1), lambda k: kill_in_rollback(lab, k, labels)


def _gc_scenario(lab: Lab):
    labels = gc_labels(lab)
    return labels, range(1, len(labels) + 1), lambda k: kill_in_gc(lab, k)


def _sweep_scenario(lab: Lab, name: str, scenario) -> str:
    """Trace the scenario's boundaries, kill at each point, recover, check; count the consistent outcomes."""
    try:
        labels, points, run = scenario(lab)
    except AssertionError as e:
        print(f"  {name}: {e}", file=sys.stderr)
        _reset(lab, name)
        return f"{name} FAILED"
    ok = 0
    for k in points:
        try:
            version = run(k)
            ok += 1
        except AssertionError as e:
            print(f"  {name} {k} ({labels[k - 1]}): {e}", file=sys.stderr)
            version = None
        if version:
            lab.back_to_v1(version)
        else:
            _reset(lab, f"{name} {k}")
    return f"{name} {ok}/{len(points)}"


def _reset(lab: Lab, what: str) -> None:
    """Back to v1 after an inconsistent outcome; a recover can fail once more (it is reported), not twice."""
    for attempt in (1, 2):
        try:
            lab.reset_to_v1()
            return
        except AssertionError as e:
            print(f"  {what}: reset to v1, attempt {attempt}: {e}", file=sys.stderr)
    raise AssertionError(f"{what}: could not get back to v1; the remaining scenarios would not be meaningful")


def _attempt(name: str, fn) -> str:
    try:
        fn()
        return f"{name} ok"
    except AssertionError as e:
        print(f"  {name}: {e}", file=sys.stderr)
        return f"{name} FAILED"


if __name__ == "__main__":
    sys.exit(main())
