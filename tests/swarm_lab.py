"""The project's Swarm lab for the tests (scripts/swarm-lab): 3 dockerd processes on this machine, each in a
network namespace of its own (node 1 the manager, nodes 2 and 3 workers), and a registry the nodes pull from.
Brought up once per session by the first test that asks for it, down at the end of the session. A failure to
bring it up is a test failure carrying the script's output; only a machine that cannot run it at all (not
root, a command missing) skips, and with CI=true that too is a failure.

    def test_x(swarm_lab):
        ref = swarm_lab.push("gen-test/busybox:1")      # "10.249.1.1:PORT/gen-test/busybox@sha256:..."
        api = swarm_lab.client()                          # a docker.DockerClient on the manager
        api.services.create(ref, ["httpd", "-f", "-p", "80"], init=True, mode=ServiceMode("replicated", 3),
                            endpoint_spec=EndpointSpec(mode="dnsrr", ports={8080: (80, "tcp", "host")}))
        swarm_lab.http_get(swarm_lab.workers[0], 8080)    # from this (the root) namespace
        swarm_lab.run_in(swarm_lab.workers[0], ["wget", "-qO-", "http://127.0.0.1:8080/"])   # from inside a node
        swarm_lab.kill_dockerd(swarm_lab.workers[1])      # SIGKILL; the manager marks the node Down in ~12 s
        swarm_lab.restart_dockerd(swarm_lab.workers[1])   # it rejoins with its old node ID

No IPVS in this kernel: publish ports in host mode and use endpoint mode dnsrr. The images the nodes have
without a pull: gen-test/busybox:1 (copied in at bring-up); anything else comes from the lab registry.
Concurrent sessions each get a lab of their own (slots 1-9, held by a lock for the session; slot 0 is left
to `just swarm-lab up`). Tests clean up the services, networks, secrets and configs they create.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "swarm-lab"
LAB_ROOT = Path(os.environ.get("GEN_SWARM_LAB_DIR", "/tmp/gen-swarm-lab"))
UNABLE = 3          # the script's exit code for "this machine cannot run a lab"


@dataclass(frozen=True)
class LabNode:
    index: int          # 1 is the manager
    name: str           # its hostname, which is its Swarm node name, and its network namespace
    id: str             # its Swarm node ID
    role: str           # "manager" or "worker"
    host: str           # its DOCKER_HOST: "unix:///tmp/gen-swarm-lab/slot1/n2/docker.sock"
    netns: str
    ip: str             # on the lab network; the root namespace reaches it (host-mode ports: ip:published)

    @property
    def socket(self) -> Path:
        return Path(self.host.removeprefix("unix://"))


@dataclass
class SwarmLab:
    slot: int
    dir: Path
    nodes: list[LabNode]
    registry: str           # the registry as the nodes see it ("10.249.1.1:PORT"): what service images name
    registry_local: str     # the same registry as this namespace sees it ("127.0.0.1:PORT"): where to push
    bringup_s: float
    main: object = field(default=None, repr=False)   # the main engine's DockerClient (whatever DOCKER_HOST says later)
    _clients: dict = field(default_factory=dict, repr=False)

    @property
    def manager(self) -> LabNode:
        return self.nodes[0]

    @property
    def workers(self) -> list[LabNode]:
        return self.nodes[1:]

    @property
    def manager_host(self) -> str:
        """DOCKER_HOST of the manager."""
        return self.manager.host

    @property
    def worker_hosts(self) -> list[str]:
        return [n.host for n in self.workers]

    def node(self, which: LabNode | int | str) -> LabNode:
        """A node by LabNode, index (1-3), name or Swarm node ID."""
        for n in self.nodes:
            if which in (n, n.index, n.name, n.id):
                return n
        raise KeyError(f"no lab node {which!r}")

    def env(self, node: LabNode | int | str = 1) -> dict[str, str]:
        """os.environ with DOCKER_HOST pointing at a node (the manager by default)."""
        return {**os.environ, "DOCKER_HOST": self.node(node).host}

    def client(self, node: LabNode | int | str = 1):
        """A docker.DockerClient on a node (the manager by default), kept for the session."""
        import docker
        n = self.node(node)
        if n.name not in self._clients:
            self._clients[n.name] = docker.DockerClient(base_url=n.host, timeout=60)
        return self._clients[n.name]

    def run_in(self, node: LabNode | int | str, argv: list[str], timeout: float = 30,
               check: bool = False) -> subprocess.CompletedProcess:
        """Run a command of this machine inside a node's network namespace (text output captured)."""
        n = self.node(node)
        return subprocess.run(["nsenter", f"--net=/run/netns/{n.netns}", "--", *argv], capture_output=True,
                              text=True, timeout=timeout, check=check)

    def http_get(self, node: LabNode | int | str, port: int, path: str = "/", timeout: float = 5) -> str:
        """GET a node's host-mode published port from this (the root) namespace."""
        with urllib.request.urlopen(f"http://{self.node(node).ip}:{port}{path}", timeout=timeout) as r:
            return r.read().decode().strip()

    def kill_dockerd(self, node: LabNode | int | str) -> int:
        """SIGKILL a node's dockerd (by its pid, once it is gone); its containers keep running. The pid."""
        n = self.node(node)
        self._drop_client(n)
        return int(self.script("kill", str(n.index)).stdout.split()[-1])

    def restart_dockerd(self, node: LabNode | int | str) -> None:
        """Start a killed node's dockerd again; returns once it has rejoined (same node ID) and is Ready."""
        n = self.node(node)
        self._drop_client(n)
        self.script("start", str(n.index))
        node_id = self.client(n).info()["Swarm"]["NodeID"]
        if node_id != n.id:
            raise RuntimeError(f"{n.name} came back as node {node_id}, not {n.id}")

    def push(self, image: str, repo: str | None = None) -> str:
        """Tag a local image (of the main engine) for the lab registry, push it, drop the tag again, and
        return what a service names to run it: "<registry as the nodes see it>/<repo>@sha256:...".
        `repo` defaults to the image's repository ("gen-test/busybox" for "gen-test/busybox:1")."""
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        target = f"{self.registry_local}/{repo or name}"
        self.main.images.get(image).tag(target, tag)
        try:
            digest = None
            for line in self.main.api.push(target, tag, stream=True, decode=True):
                if "error" in line:
                    raise RuntimeError(f"push of {image} to {target}:{tag} failed: {line['error']}")
                digest = (line.get("aux") or {}).get("Digest", digest)
            if not digest:
                raise RuntimeError(f"push of {image} to {target}:{tag} reported no digest")
        finally:
            self.main.images.remove(f"{target}:{tag}", noprune=True)
        return f"{self.registry}/{repo or name}@{digest}"

    def load(self, image: str) -> None:
        """Copy a local image of the main engine into every node (docker save | docker load), no registry."""
        data = b"".join(self.main.images.get(image).save(named=True))
        for n in self.nodes:
            self.client(n).images.load(data)

    def script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run scripts/swarm-lab on this lab's slot; a failure raises with the script's output."""
        proc = _run_script(self.slot, *args, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"scripts/swarm-lab {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def close_clients(self) -> None:
        for name in list(self._clients):
            self._clients.pop(name).close()

    def _drop_client(self, n: LabNode) -> None:
        client = self._clients.pop(n.name, None)
        if client is not None:
            client.close()

    @classmethod
    def read(cls, slot: int, main=None) -> SwarmLab:
        info = json.loads((LAB_ROOT / f"slot{slot}" / "lab.json").read_text())
        return cls(slot=slot, dir=Path(info["dir"]), nodes=[LabNode(**n) for n in info["nodes"]],
                   registry=info["registry"]["nodes"], registry_local=info["registry"]["local"],
                   bringup_s=float(info["bringup_s"]), main=main)


def wait_for(predicate, what: str, timeout: float = 60, every: float = 0.25):
    """Poll until predicate() is truthy; its last value. The deadline only bounds a hang."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _run_script(slot: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEN_SWARM_LAB_DIR": str(LAB_ROOT), "GEN_SWARM_LAB_SLOT": str(slot)}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def lease_slot():
    """A lab slot (1-9) nobody else uses, and the open lock file that holds it until closed (or until this
    process dies: the lock goes with it, so a killed session's slot is free again, and stale)."""
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    for slot in range(1, 10):
        lease = open(LAB_ROOT / f"slot{slot}.lease", "w")  # noqa: SIM115 - held for the session; not inherited
        try:
            fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lease.close()
            continue
        return slot, lease
    raise RuntimeError(f"all Swarm lab slots are in use (lock files {LAB_ROOT}/slot*.lease)")


def _unable(message: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def bring_up(slot: int, main) -> SwarmLab:
    """A fresh lab on a leased slot: whatever a killed session left there goes first."""
    down = _run_script(slot, "down")
    if down.returncode == UNABLE:
        _unable(f"the Swarm lab cannot run here: {down.stderr.strip()}")
    up = _run_script(slot, "up", timeout=300)
    if up.returncode == UNABLE:
        _unable(f"the Swarm lab cannot run here: {up.stderr.strip()}")
    if up.returncode != 0 or down.returncode != 0:
        cleanup = _run_script(slot, "down")
        pytest.fail(f"the Swarm lab did not come up (scripts/swarm-lab up, exit {up.returncode}):\n"
                    f"{down.stderr}{up.stderr}{cleanup.stderr}", pytrace=False)
    return SwarmLab.read(slot, main)


@pytest.fixture(scope="session")
def swarm_lab(docker_client):      # docker_client: the main engine answers and has the test image
    slot, lease = lease_slot()
    try:
        lab = bring_up(slot, docker_client)
        try:
            yield lab
        finally:
            lab.close_clients()
            down = _run_script(slot, "down")
            if down.returncode != 0:
                pytest.fail(f"the Swarm lab did not go down cleanly (exit {down.returncode}):\n{down.stderr}",
                            pytrace=False)
    finally:
        lease.close()
