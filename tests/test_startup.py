"""Start-up (issue 15): `gen --version`, and verbs that import only what they use.

Each check runs the CLI in a fresh interpreter and reads which modules it loaded: no timings here
(`just bench` measures them), only what must not be paid for. `gen --version` and `gen list` never
touch the engine, so they load neither the Docker SDK nor its HTTP stack; an engine verb loads the SDK
but does not run paramiko (for the SDK's ssh:// transport, deferred by gen.engine.lazyimport), which
still runs for an SDK client that connects with it (gen's own ssh:// hosts shell out to `ssh`: the
copy over a loopback sshd is in tests/test_transfer.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import gen
from gen.api import Gen, Options
from gen.engine.memory import MemoryEngine
from tests.conftest import sleeper

ROOT = Path(__file__).resolve().parent.parent
ENGINE_STACK = ("docker", "requests", "urllib3", "paramiko", "gen.engine.docker")
NOT_FOR_READING = ("gen.deploy.activation", "gen.deploy.transaction", "gen.spec", "yaml", "cryptography", "rich")

RUN_MAIN = """
import json, sys
from gen.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    json.dump(sorted(sys.modules), f)
sys.exit(code)
"""


def run_cli(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """gen ARGV in a fresh interpreter: the process, and every module it had loaded when main() returned."""
    dump = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", RUN_MAIN, str(dump), *argv], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    return proc, set(json.loads(dump.read_text()))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Those of `names` (packages with their submodules) among `modules`."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def ran(modules: set[str], package: str) -> bool:
    """Whether the package's code ran: a deferred paramiko sits in sys.modules unexecuted, its submodules absent."""
    return any(m.startswith(package + ".") for m in modules)


def test_version_constant_is_the_packages_version():
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert gen.__version__ == tomllib.load(f)["project"]["version"]


def test_version_prints_and_imports_no_library(tmp_path):
    proc, modules = run_cli(tmp_path, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"gen {gen.__version__}\n", "")
    assert loaded(modules, ENGINE_STACK + NOT_FOR_READING + ("gen.api", "gen.state", "gen.engine", "store")) == []


def test_list_reads_the_state_without_the_engine(tmp_path):
    state = tmp_path / "state"
    g = Gen(state, engine=MemoryEngine({"app:1": "sha256:" + "a" * 64}),
            options=Options(timeout_s=2.0, stability_s=0, poll_s=0.001))
    for value in ("1", "2"):
        spec = tmp_path / f"v{value}.toml"
        spec.write_text(f'name = "p"\n[services.app]\nimage = "app:1"\ncommand = ["sleep", "9"]\nenv = {{ V = "{value}" }}\n')
        g.switch(str(spec))
    proc, modules = run_cli(tmp_path, "list", "-p", "p", "--state-dir", str(state))
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ["1", "2"] and "(current)" in proc.stdout
    assert "gen.state.profile" in modules, "the check reads the process that listed"
    assert loaded(modules, ENGINE_STACK + NOT_FOR_READING) == []


def test_an_engine_verb_loads_the_sdk_but_not_paramiko(deployment, tmp_path):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("app"))).code == 0
    proc, modules = run_cli(tmp_path, "status", "-p", d.profile, "--state-dir", str(d.state))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "docker" in modules and "gen.engine.docker" in modules, "the check reads a process that used the engine"
    assert not ran(modules, "paramiko") and loaded(modules, ("invoke", "nacl")) == []


SSH_CLIENT = """
import json, sys
import gen.engine.docker
import docker
before = any(m.startswith("paramiko.") for m in sys.modules)
try:
    docker.APIClient(base_url="ssh://nobody@127.0.0.1:9", timeout=2, version="1.41")
    failure = None
except Exception as e:       # nothing listens on port 9: paramiko itself must say so
    failure = type(e).__module__
print(json.dumps([before, failure]))
"""


def test_an_ssh_host_still_gets_paramiko(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SSH_CLIENT], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    before, failure = json.loads(proc.stdout)
    assert before is False, "importing the engine ran paramiko"
    assert failure is not None and failure.startswith("paramiko."), f"the ssh:// transport failed in {failure}"
