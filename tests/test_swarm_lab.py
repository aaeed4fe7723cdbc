"""The Swarm lab itself (scripts/swarm-lab, tests/swarm_lab.py), on real dockerds: the nodes and their roles,
a service spread over the three nodes running an image pulled from the lab registry and answering on host-mode
ports, a killed worker going Down and rejoining, the main engine left alone, and the script's own promises
(up twice is a no-op, a stale lab is cleaned, down leaves nothing behind)."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from docker.types import EndpointSpec, ServiceMode

from tests.conftest import IMAGE, free_port, http_get
from tests.swarm_lab import LAB_ROOT, SwarmLab, _run_script, bring_up, lease_slot, wait_for


def fresh_image(main) -> str:
    """A new image (the test image with one label on top) that no lab node has: its tag on the main engine."""
    box = main.containers.create(IMAGE, ["true"], labels={"gen.test": "swarm-lab"})
    try:
        tag = f"gen-test/lab-{uuid.uuid4().hex[:8]}:1"
        repo, _, version = tag.rpartition(":")
        box.commit(repository=repo, tag=version, changes=[f"LABEL gen.test.image={uuid.uuid4().hex}"])
    finally:
        box.remove(force=True)
    return tag


def node_state(lab: SwarmLab, node) -> str:
    return lab.client().nodes.get(node.id).attrs["Status"]["State"]


def running_tasks(service) -> list[dict]:
    return [t for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] == "running"]


def test_three_nodes_one_manager_two_workers_all_ready(swarm_lab):
    nodes = {n.attrs["Description"]["Hostname"]: n.attrs for n in swarm_lab.client().nodes.list()}
    assert sorted(nodes) == sorted(n.name for n in swarm_lab.nodes)
    for n in swarm_lab.nodes:
        seen = nodes[n.name]
        assert seen["ID"] == n.id and seen["Status"]["State"] == "ready"
        assert seen["Spec"]["Role"] == n.role
    assert [n.role for n in swarm_lab.nodes] == ["manager", "worker", "worker"]
    assert swarm_lab.manager_host.startswith("unix://") and swarm_lab.manager.socket.is_socket()
    engines = set()
    for n in swarm_lab.nodes:
        info = swarm_lab.client(n).info()
        assert info["Swarm"]["NodeID"] == n.id and info["Swarm"]["LocalNodeState"] == "active"
        assert info["Name"] == n.name
        engines.add(info["ID"])
    assert len(engines) == 3, "every node has its own engine ID (daemon.json deprecated-key-path)"


def test_a_service_spread_over_the_nodes_runs_the_image_pulled_from_the_lab_registry(swarm_lab, docker_client,
                                                                                     monkeypatch):
    tag = fresh_image(docker_client)
    monkeypatch.setenv("DOCKER_HOST", swarm_lab.manager_host)      # as gen's Swarm tests run: push still uses the main engine
    try:
        ref = swarm_lab.push(tag)
    finally:
        docker_client.images.remove(tag, force=True)
    assert ref.startswith(f"{swarm_lab.registry}/gen-test/lab-") and "@sha256:" in ref
    for n in swarm_lab.nodes:
        with pytest.raises(docker.errors.ImageNotFound):
            swarm_lab.client(n).images.get(ref)
    port = free_port()
    service = swarm_lab.client().services.create(
        ref, ["sh", "-c", 'mkdir /www && echo "$NODE" >/www/index.html && exec httpd -f -p 80 -h /www'],
        name=f"lab-{uuid.uuid4().hex[:8]}", env=["NODE={{.Node.Hostname}}"], init=True,
        mode=ServiceMode("replicated", replicas=3), maxreplicas=1,
        endpoint_spec=EndpointSpec(mode="dnsrr", ports={port: (80, "tcp", "host")}))
    try:
        tasks = wait_for(lambda: len(running_tasks(service)) == 3 and running_tasks(service), "3 running tasks")
        assert {t["NodeID"] for t in tasks} == {n.id for n in swarm_lab.nodes}, "one task on every node"
        for n in swarm_lab.nodes:
            assert ref in swarm_lab.client(n).images.get(ref).attrs["RepoDigests"], "pulled from the lab registry"
            assert swarm_lab.http_get(n, port) == n.name, "a host-mode port answers on its own node"
        worker = swarm_lab.workers[0]
        inside = swarm_lab.run_in(worker, ["wget", "-qO-", f"http://127.0.0.1:{port}/"])
        assert (inside.returncode, inside.stdout.strip()) == (0, worker.name), inside.stderr
        across = swarm_lab.run_in(worker, ["wget", "-qO-", f"http://{swarm_lab.manager.ip}:{port}/"])
        assert (across.returncode, across.stdout.strip()) == (0, swarm_lab.manager.name), across.stderr
    finally:
        service.remove()


def test_placement_constraints_pick_the_node(swarm_lab):
    target = swarm_lab.workers[1]
    service = swarm_lab.client().services.create(
        IMAGE, ["sleep", "3600"], name=f"lab-{uuid.uuid4().hex[:8]}", init=True,
        mode=ServiceMode("replicated", replicas=2), constraints=[f"node.hostname=={target.name}"])
    try:
        tasks = wait_for(lambda: len(running_tasks(service)) == 2 and running_tasks(service), "2 running tasks")
        assert {t["NodeID"] for t in tasks} == {target.id}
    finally:
        service.remove()


def test_a_killed_worker_goes_down_and_rejoins_after_a_restart(swarm_lab):
    worker = swarm_lab.workers[-1]
    pid = swarm_lab.kill_dockerd(worker)
    assert not _alive(pid)
    wait_for(lambda: node_state(swarm_lab, worker) == "down", f"{worker.name} Down", timeout=90)
    swarm_lab.restart_dockerd(worker)
    assert node_state(swarm_lab, worker) == "ready"
    assert swarm_lab.client(worker).info()["Swarm"]["LocalNodeState"] == "active"
    assert _run_script(swarm_lab.slot, "status").returncode == 0


def test_the_main_engine_is_left_alone(swarm_lab, docker_client):
    info = docker_client.info()
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["ID"] not in {swarm_lab.client(n).info()["ID"] for n in swarm_lab.nodes}
    port = free_port()
    box = docker_client.containers.run(IMAGE, ["httpd", "-f", "-p", "80", "-h", "/etc"], detach=True, init=True,
                                       ports={"80/tcp": ("127.0.0.1", port)}, labels={"gen.test": "swarm-lab"})
    try:
        assert wait_for(lambda: _get(port, "/hostname"), "the main engine's published port") == box.id[:12]
    finally:
        box.remove(force=True)
    assert not _root_iptables_mentions(f"gsl{swarm_lab.slot}", swarm_lab.manager.ip.rsplit(".", 1)[0] + ".")


def test_up_twice_is_a_no_op_a_stale_lab_is_cleaned_and_down_leaves_nothing(docker_client):
    slot, lease = lease_slot()
    lab_dir = LAB_ROOT / f"slot{slot}"
    before = _main_engine_facts(docker_client)
    try:
        first = bring_up(slot, docker_client)
        again = _run_script(slot, "up")
        assert again.returncode == 0 and "already up" in again.stderr, again.stderr
        assert SwarmLab.read(slot).nodes == first.nodes
        # a session killed while the lab ran a service: its dockerds and registries die, everything else stays
        service = first.client().services.create(IMAGE, ["sleep", "3600"], init=True,
                                                 mode=ServiceMode("replicated", replicas=3), maxreplicas=1)
        wait_for(lambda: len(running_tasks(service)) == 3, "3 running tasks")
        first.close_clients()
        sockets = _shim_sockets(lab_dir)
        assert len(sockets) == 3
        for pidfile in [*lab_dir.glob("n*/dockerd.pid"), *lab_dir.glob("registry/*.pid")]:
            subprocess.run(["kill", "-KILL", pidfile.read_text().strip()], check=True)
        stale = _run_script(slot, "up", timeout=300)
        assert stale.returncode == 0 and "cleaning a stale lab" in stale.stderr, stale.stderr
        second = SwarmLab.read(slot)
        assert {n.id for n in second.nodes}.isdisjoint(n.id for n in first.nodes), "a new swarm"
        assert all(not Path(s).exists() for s in sockets), "the killed shims' sockets are gone"
        down = _run_script(slot, "down")
        assert down.returncode == 0, down.stderr
        assert _left_behind(slot, lab_dir) == {}
        assert _main_engine_facts(docker_client) == before
    finally:
        _run_script(slot, "down")
        lease.close()


# -- helpers ----------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _get(port: int, path: str) -> str:
    try:
        return http_get(port, path)
    except OSError:
        return ""


def _root_iptables_mentions(*needles: str) -> list[str]:
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout.splitlines()
    return [r for r in rules if any(n in r for n in needles)]


def _main_engine_facts(client) -> dict:
    info = client.info()
    return {k: info.get(k) for k in ("ID", "Name", "Driver", "DockerRootDir", "CgroupDriver", "RegistryConfig",
                                     "Plugins", "SecurityOptions", "Runtimes", "DefaultRuntime")} | \
        {"swarm": info["Swarm"]["LocalNodeState"]}


def _shim_sockets(lab_dir: Path) -> list[str]:
    """containerd 1.6 names a shim's socket /run/containerd/s/sha256(address/namespace/id)."""
    import hashlib
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode().split("\0")
        except OSError:
            continue
        if argv[0].endswith("containerd-shim-runc-v2") and len(argv) >= 7 and argv[6].startswith(f"{lab_dir}/"):
            key = f"{argv[6]}/{argv[2]}/{argv[4]}".encode()
            found.append(f"/run/containerd/s/{hashlib.sha256(key).hexdigest()}")
    return found


def _left_behind(slot: int, lab_dir: Path) -> dict:
    prefix = f"gsl{slot}-"
    left = {
        "netns": [n for n in _out("ip", "netns", "list").split() if n.startswith(prefix)],
        "links": [line for line in _out("ip", "-o", "link").splitlines() if f" {prefix}" in line],
        "mounts": [m.split()[4] for m in Path("/proc/self/mountinfo").read_text().splitlines()
                   if m.split()[4].startswith(str(lab_dir))],
        "processes": [p.parent.name for p in Path("/proc").glob("[0-9]*/cmdline") if f"{lab_dir}/".encode() in _read(p)],
        "cgroups": _out("find", "/sys/fs/cgroup", "-maxdepth", "6", "-type", "d", "-name", f"{prefix}n*").split(),
        "dir": [str(lab_dir)] if lab_dir.exists() else [],
        "iptables": _root_iptables_mentions(prefix),
    }
    return {k: v for k, v in left.items() if v}


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
