"""Shared fixtures. Tests that touch containers use the real Docker engine; with CI=true a missing
engine is a failure, never a skip. Every test gets its own profile and cleans up every container,
network and volume labelled with it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cleanup import remove_profile
from tests.registry import registry  # noqa: F401  (the loopback registry fixture)
from tests.swarm_lab import swarm_lab  # noqa: F401  (the 3-node Swarm lab fixture: scripts/swarm-lab)

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("GEN_TEST_IMAGE", "gen-test/busybox:1")


@pytest.fixture(scope="session", autouse=True)
def run_dir():
    """Secrets and config files are materialised on tmpfs (gen.deploy.materialize): during the tests,
    in a directory of their own, removed at the end, so no test leaves a file in /dev/shm or /run."""
    import shutil
    import tempfile
    if os.environ.get("GEN_RUN_DIR"):
        yield Path(os.environ["GEN_RUN_DIR"])
        return
    path = Path(tempfile.mkdtemp(prefix="gen-test-run-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    os.environ["GEN_RUN_DIR"] = str(path)
    try:
        yield path
    finally:
        os.environ.pop("GEN_RUN_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_client():
    import docker
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:    # noqa: BLE001 - any failure to reach the engine means "no engine"
        message = f"no Docker engine answers ({e}); run scripts/ensure-engine"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        subprocess.run([str(ROOT / "scripts" / "ensure-images")], check=True)
    return client


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        return self.out.strip().splitlines()[-1] if self.out.strip() else ""


class Deployment:
    """One test's profile, state directory and helpers for driving `gen` and looking at the engine."""

    def __init__(self, docker_client, tmp_path: Path, capsys, warm: int | None = 0):
        """warm: the profile's `gen warm` setting (None: gen's default). Most engine tests count the
        containers a switch leaves, so they run with warm rollback off; tests/test_warm.py, the crash
        replay and the fault proof run gen's default. It is set once the profile exists (after the
        command that made it: a first activation keeps nothing anyway), so a test that checks that a
        refused command writes nothing sees only what gen wrote."""
        self.docker = docker_client
        self.profile = f"t{uuid.uuid4().hex[:10]}"
        self.state = tmp_path / "state"
        self.dir = tmp_path
        self.image = IMAGE
        self._capsys = capsys
        self._n = 0
        self._warm = warm

    def _set_warm(self) -> None:
        if self._warm is not None and (self.state / "profiles" / self.profile).is_dir():
            from gen.state.warm import set_setting
            set_setting(self.state, self.profile, self._warm)
            self._warm = None

    def spec(self, body: str, name: str | None = None) -> Path:
        """Write a spec; `body` may use {image} and {profile} (replaced literally, not str.format)."""
        self._n += 1
        path = self.dir / f"spec{self._n}.toml"
        path.write_text(f'name = "{name or self.profile}"\n' + body.replace("{image}", self.image).replace("{profile}", self.profile))
        return path

    def gen(self, *args: str) -> Run:
        """Run the CLI in this process (fast), with this deployment's state directory."""
        from gen.cli.app import main
        self._capsys.readouterr()
        code = main([*map(str, args), "--state-dir", str(self.state)])
        captured = self._capsys.readouterr()
        self._set_warm()
        return Run(code, captured.out, captured.err)

    def gen_process(self, *args: str, env: dict | None = None, timeout: float = 180) -> Run:
        """Run the CLI as a separate process, the way a user does."""
        proc = subprocess.run([sys.executable, "-m", "gen", *map(str, args), "--state-dir", str(self.state)],
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **(env or {})})
        self._set_warm()
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def containers(self, all: bool = True) -> list:
        return self.docker.containers.list(all=all, filters={"label": f"gen.profile={self.profile}"})

    def ids_by_service(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for c in self.containers():
            out.setdefault(c.labels["gen.service"], set()).add(c.id)
        return out

    def cleanup(self) -> None:
        remove_profile(self.docker, self.profile)


@pytest.fixture
def deployment(docker_client, tmp_path, capsys):
    d = Deployment(docker_client, tmp_path, capsys)
    yield d
    d.cleanup()


@pytest.fixture
def warm_deployment(docker_client, tmp_path, capsys):
    """A deployment with gen's default warm rollback (the replaced containers of 1 generation kept)."""
    d = Deployment(docker_client, tmp_path, capsys, warm=None)
    yield d
    d.cleanup()


SLEEPER = """
[services.{name}]
image = "{{image}}"
command = ["sleep", "3600"]
stop_grace = "0s"
{extra}
"""


def sleeper(name: str, extra: str = "") -> str:
    """A service that just runs: the smallest spec body for engine tests."""
    return SLEEPER.format(name=name, extra=extra)


def app(value: str) -> str:
    """Two sleepers, app and db; only app's env V changes with `value` (a one-service change)."""
    return sleeper("app", f'env = {{ V = "{value}" }}') + sleeper("db")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, path: str = "/", timeout: float = 5) -> str:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode().strip()
