"""Fault injection on the real engine: kill gen at every step boundary of a real activation, at
random times, restart dockerd under it, race four switches, and fuzz it with malformed specs.
After every fault, `gen recover` must leave exactly the old or exactly the new generation running
and healthy, `current` agreeing, no orphan containers, and the named volume's data intact.

Used by tests/test_faults.py (the normal suite) and, with bigger numbers, by `just faults`:
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
test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
interval = "200ms"
"""


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

    def __post_init__(self):
        self.state = self.work / "state"
        self.docker = docker.from_env(timeout=120)

    def spec(self, version: str) -> Path:
        path = self.work / f"{self.profile}-{version}.toml"
        path.write_text(SPEC.format(profile=self.profile, image=IMAGE, version=version, port=self.port))
        return path

    def gen(self, *args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gen", *map(str, args), "--state-dir", str(self.state)],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **(env or {})})

    def popen(self, *args, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "gen", *map(str, args), "--state-dir", str(self.state)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env={**os.environ, **(env or {})})

    def setup(self) -> None:
        for version in ("v1", "v2"):
            built = self.gen("build", self.spec(version), "--json")
            assert built.returncode == 0, built.stderr
            self.manifests[version] = json.loads(built.stdout)
        self.must("switch", self.spec("v1"))

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

    def current(self) -> tuple[int, str]:
        gens = json.loads(self.must("list", "-p", self.profile, "--json").stdout)
        g = next(g for g in gens if g["current"])
        return g["generation"], g["hash"]

    def check(self) -> str:
        """Raise AssertionError unless the engine runs exactly the current generation, healthy."""
        status = self.gen("status", "-p", self.profile, "--json")
        report = json.loads(status.stdout)
        assert status.returncode == 0 and report["ok"], f"status not ok: {status.stdout}"
        _, manifest = self.current()
        version = next((v for v, m in self.manifests.items() if m["hash"] == manifest), None)
        assert version, f"current manifest {manifest[:12]} is neither v1 nor v2"
        expected = self.manifests[version]["services"]
        containers = self.docker.containers.list(all=True, filters={"label": f"gen.profile={self.profile}"})
        seen = sorted((c.labels["gen.service"], c.labels["gen.hash"]) for c in containers)
        replicas = {"pool": 2}
        want = sorted((s, h) for s, h in expected.items() for _ in range(replicas.get(s, 1)))
        assert seen == want, f"containers {seen} != generation {version} {want}"
        for c in containers:
            assert c.status == "running", f"{c.name} is {c.status}"
            health = c.attrs["State"].get("Health", {}).get("Status")
            assert health in (None, "healthy"), f"{c.name} health {health}"
        seed = self.docker.containers.run(IMAGE, ["cat", "/data/seed"], remove=True,
                                          volumes={f"{self.profile}_data": {"bind": "/data", "mode": "ro"}})
        assert seed.decode().strip() == "seed", "volume data lost"
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
            assert r.read().decode().strip() == version, "front serves another generation"
        return version

    def cleanup(self) -> None:
        remove_profile(self.docker, self.profile)


# -- the faults --------------------------------------------------------------------------------------
def step_labels(lab: Lab) -> list[str]:
    """The step boundaries of a real v1 -> v2 switch, as the code itself numbers them."""
    trace = lab.work / "trace.txt"
    trace.unlink(missing_ok=True)
    lab.must("switch", lab.spec("v2"), env={"GEN_FAULT_TRACE": str(trace)})
    labels = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    lab.reset_to_v1()
    return labels


def kill_at(lab: Lab, k: int) -> tuple[str, str]:
    """SIGKILL gen at step k of a v1 -> v2 switch, recover, check. Returns (outcome, version)."""
    killed = lab.gen("switch", lab.spec("v2"), env={"GEN_FAULT_KILL_AT": str(k)})
    assert killed.returncode == -signal.SIGKILL, f"step {k}: expected SIGKILL, got {killed.returncode}"
    recovered = lab.gen("recover", "-p", lab.profile)
    assert recovered.returncode == 0, f"step {k}: recover exited {recovered.returncode}: {recovered.stderr}"
    return "ok", lab.check()


def kill_randomly(lab: Lab, rng: random.Random, span_s: float) -> str:
    proc = lab.popen("switch", lab.spec("v2"))
    time.sleep(rng.uniform(0, span_s))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recovered = lab.gen("recover", "-p", lab.profile)
    assert recovered.returncode == 0, f"recover exited {recovered.returncode}: {recovered.stderr}"
    return lab.check()


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
    """n different specs switched to one profile at the same time."""
    specs = []
    for i in range(n):
        specs.append(lab.spec(f"c{i}-{uuid.uuid4().hex[:4]}"))
    before = [g["generation"] for g in json.loads(lab.must("list", "-p", lab.profile, "--json").stdout)]
    procs = [lab.popen("switch", spec, "--lock-timeout", "240") for spec in specs]
    codes = [p.wait(timeout=300) for p in procs]
    assert all(c in (0, 1, 2) for c in codes), f"exit codes {codes}"
    assert codes.count(0) >= 1, f"no switch committed: {codes} {[p.stderr.read() for p in procs]}"
    gens = [g["generation"] for g in json.loads(lab.must("list", "-p", lab.profile, "--json").stdout)]
    assert gens == list(range(1, len(gens) + 1)), f"generation numbers have gaps or duplicates: {gens}"
    assert len(gens) == len(before) + codes.count(0), f"{len(gens) - len(before)} new generations for {codes}"
    status = lab.gen("status", "-p", lab.profile, "--json")
    assert status.returncode == 0, status.stdout
    return f"{codes.count(0)}/{n} committed"


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
            labels = step_labels(lab)
            ok = 0
            for k in range(1, len(labels) + 1):
                try:
                    kill_at(lab, k)
                    ok += 1
                except AssertionError as e:
                    print(f"  kill point {k} ({labels[k - 1]}): {e}", file=sys.stderr)
                lab.reset_to_v1()
            tally.append(f"kill points {ok}/{len(labels)} consistent")
            failed |= ok != len(labels)
            span = _switch_duration(lab)
            rng, ok = random.Random(args.seed), 0
            for i in range(args.random):
                try:
                    kill_randomly(lab, rng, span)
                    ok += 1
                except AssertionError as e:
                    print(f"  random kill {i}: {e}", file=sys.stderr)
                lab.reset_to_v1()
            tally.append(f"random kills {ok}/{args.random}")
            failed |= ok != args.random
            if args.daemon_restart:
                tally.append(_attempt("daemon restart", lambda: restart_daemon_mid_switch(lab)))
                failed |= not tally[-1].endswith("ok")
                lab.reset_to_v1()
            tally.append(_attempt("concurrent", lambda: concurrent_switches(lab)))
            failed |= not tally[-1].endswith("ok")
        finally:
            lab.cleanup()
    from tests.fuzz import fuzz_cli
    clean, total = fuzz_cli(args.fuzz)
    tally.append(f"fuzz {clean}/{total} clean")
    failed |= clean != total
    print(", ".join(tally))
    return 1 if failed else 0


def _attempt(name: str, fn) -> str:
    try:
        fn()
        return f"{name} ok"
    except AssertionError as e:
        print(f"  {name}: {e}", file=sys.stderr)
        return f"{name} FAILED"


def _switch_duration(lab: Lab) -> float:
    started = time.monotonic()
    lab.must("switch", lab.spec("v2"))
    span = time.monotonic() - started
    lab.reset_to_v1()
    return span


if __name__ == "__main__":
    sys.exit(main())
