"""gen on a real Docker Swarm: the project's 3-node lab (tests/swarm_lab.py, scripts/swarm-lab), gen run with
DOCKER_HOST naming its manager. A deployment across the nodes, a change of one service (the other keeps its
tasks), a failing healthcheck undone, rollback (and --to), a placement that cannot be satisfied, gen killed
mid-switch then `gen recover`, a worker's dockerd killed mid-switch, images pushed to the lab registry,
secrets and configs by content, and `docker stack deploy` of the same Compose file for comparison.

Host-mode published ports are read from this (the root) namespace at the node that runs the task; the lab
has no IPVS, so nothing here relies on the routing mesh or a service VIP."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import IMAGE, ROOT, Run
from tests.swarm_lab import wait_for

WEB_CHECK = ('[services.web.healthcheck]\ntest = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]\n'
             'interval = "500ms"\ntimeout = "2s"\nretries = 3\n')
BROKEN_CHECK = WEB_CHECK.replace("8080/", "9999/").replace("retries = 3", "retries = 1")
SPEC = """name = "{profile}"

[services.web]
image = "{image}"
command = ["sh", "-c", "mkdir -p /www && {page} > /www/index.html && exec httpd -f -p 8080 -h /www"]
ports = [{{ target = 8080, published = {port}, mode = "host" }}]    # no IPVS in the lab: no ingress
stop_grace = "0s"
{web}
[services.worker]
image = "{worker_image}"
command = ["sleep", "3600"]
replicas = 3
stop_grace = "0s"
{worker}
"""


class Cluster:
    """One test's profile on the lab and its state directory; gen talks to the lab's manager."""

    def __init__(self, lab, tmp_path: Path, capsys):
        self.lab = lab
        self.profile = f"s{uuid.uuid4().hex[:9]}"
        self.state = tmp_path / "state"
        self.dir = tmp_path
        self.port = random.randint(20000, 29999)
        self._capsys = capsys
        self._n = 0

    # -- driving gen ---------------------------------------------------------------------------------
    def spec(self, version: str, web: str = WEB_CHECK, worker: str = "", page: str = "", image: str = IMAGE,
             worker_image: str = IMAGE, profile: str | None = None) -> Path:
        self._n += 1
        path = self.dir / f"spec{self._n}.toml"
        path.write_text(SPEC.format(profile=profile or self.profile, image=image, worker_image=worker_image,
                                    port=self.port, web=web, worker=worker, page=page or f"echo {version}"))
        return path

    def gen(self, *args) -> Run:
        from gen.cli.app import main
        self._capsys.readouterr()
        code = main([*map(str, args), "--state-dir", str(self.state)])
        captured = self._capsys.readouterr()
        return Run(code, captured.out, captured.err)

    def gen_process(self, *args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self._argv(*args), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**self.lab.env(), **(env or {})})

    def popen(self, *args) -> subprocess.Popen:
        return subprocess.Popen(self._argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT, env=self.lab.env())

    def _argv(self, *args) -> list[str]:
        return [sys.executable, "-m", "gen", *map(str, args), "--state-dir", str(self.state)]

    def must(self, *args) -> Run:
        r = self.gen(*args)
        assert r.code == 0, f"gen {' '.join(map(str, args))} exited {r.code}: {r.err}"
        return r

    def current(self) -> int | None:
        return next((g["generation"] for g in json.loads(self.must("list", "-p", self.profile, "--json").out)
                     if g["current"]), None)

    # -- looking at the cluster --------------------------------------------------------------------------
    @property
    def client(self):
        return self.lab.client()

    def service(self, name: str):
        return self.client.services.get(f"{self.profile}_{name}")

    def tasks(self, name: str) -> dict[str, dict]:
        """The service's running tasks of its current definition: task ID -> task."""
        return {t["ID"]: t for t in self.service(name).tasks(filters={"desired-state": "running"})
                if t["Status"]["State"] == "running"}

    def answers(self, port: int | None = None) -> dict[str, str]:
        """node name -> what the host-mode port answers there (nodes where nothing listens left out)."""
        out = {}
        for node in self.lab.nodes:
            try:
                out[node.name] = self.lab.http_get(node, port or self.port, timeout=2)
            except OSError:
                continue
        return out

    def cleanup(self) -> None:
        label = {"label": f"gen.profile={self.profile}"}
        for s in self.client.services.list(filters=label):
            s.remove()
        for kind in (self.client.secrets, self.client.configs):
            for item in kind.list(filters=label):
                item.remove()
        for net in self.client.networks.list(filters=label):
            wait_for(lambda: _removed(net), f"network {net.name} to be removable", timeout=30)


def _removed(net) -> bool:
    import docker
    try:
        net.remove()
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


@pytest.fixture
def cluster(swarm_lab, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", swarm_lab.manager_host)
    c = Cluster(swarm_lab, tmp_path, capsys)
    yield c
    c.cleanup()


def first_switch(c: Cluster, *args) -> Run:
    return c.must("switch", c.spec("v1"), "--target", "swarm", "-q", *args)


# -- the tests ------------------------------------------------------------------------------------------
def test_first_deploy_across_the_nodes_then_a_change_of_one_service(cluster):
    c = cluster
    first_switch(c)
    workers = c.tasks("worker")
    nodes = {t["NodeID"] for t in workers.values()}
    assert len(workers) == 3 and nodes == {n.id for n in c.lab.nodes}, "the replicas are spread over the 3 nodes"
    assert list(c.answers().values()) == ["v1"], "web answers on its node's host-mode port"
    assert c.service("web").attrs["Spec"]["Labels"]["gen.profile"] == c.profile
    assert json.loads((c.state / "profiles" / c.profile / "target.json").read_text())["target"] == "swarm"
    assert c.gen("status", "-p", c.profile).code == 0

    r = c.must("switch", c.spec("v2"), "--json")
    plan = {s["service"]: s["action"] for s in json.loads(r.out)["plan"]}
    assert plan == {"web": "update", "worker": "keep"}
    assert list(c.answers().values()) == ["v2"]
    assert c.tasks("worker").keys() == workers.keys(), "the unchanged service keeps its tasks"
    assert c.current() == 2 and c.gen("status", "-p", c.profile).code == 0


def test_the_manifest_does_not_depend_on_the_target(cluster, monkeypatch):
    """The same spec built against the machine's own engine (another state directory) is the very
    generation the Swarm profile activates: the target is no part of a generation's identity."""
    spec = cluster.spec("v1")
    activated = json.loads(cluster.must("switch", spec, "--target", "swarm", "--json").out)["hash"]
    monkeypatch.delenv("DOCKER_HOST")
    from gen.cli.app import main
    cluster._capsys.readouterr()
    assert main(["build", str(spec), "--state-dir", str(cluster.dir / "elsewhere")]) == 0
    assert cluster._capsys.readouterr().out.strip() == activated


def test_a_failing_healthcheck_is_undone(cluster):
    c = cluster
    first_switch(c)
    workers = c.tasks("worker")
    r = c.gen("switch", c.spec("v3", web=BROKEN_CHECK, worker='env = { V = "3" }'), "-q")
    assert r.code == 2, r.err
    assert "service web" in r.err and "unhealthy container" in r.err, r.err
    assert list(c.answers().values()) == ["v1"], "the old version answers on its host port again"
    # the worker, updated in the same level, runs its old definition again, mapped from the store
    old_hash = {t["Spec"]["ContainerSpec"]["Labels"]["gen.hash"] for t in workers.values()}
    assert {t["Spec"]["ContainerSpec"]["Labels"]["gen.hash"] for t in c.tasks("worker").values()} == old_hash
    assert len(c.tasks("worker")) == 3 and c.service("worker").attrs["Spec"]["Labels"]["gen.hash"] in old_hash
    assert c.current() == 1 and c.gen("status", "-p", c.profile).code == 0
    assert not (c.state / "profiles" / c.profile / "journal.json").exists()


def test_rollback_and_rollback_to(cluster):
    c = cluster
    first_switch(c)
    c.must("switch", c.spec("v2"), "-q")
    assert list(c.answers().values()) == ["v2"]
    c.must("rollback", "-p", c.profile, "-q")
    assert list(c.answers().values()) == ["v1"] and c.current() == 1
    c.must("rollback", "-p", c.profile, "--to", "2", "-q")       # forward again: any generation, not one step back
    assert list(c.answers().values()) == ["v2"] and c.current() == 2
    assert c.gen("status", "-p", c.profile).code == 0


def test_a_placement_that_cannot_be_satisfied_fails_at_the_deadline_and_is_undone(cluster):
    c = cluster
    first_switch(c)
    workers = c.tasks("worker")
    r = c.gen("switch", c.spec("v1", worker='mem_reservation = "100000g"'), "--timeout", "4", "-q")
    assert r.code == 2
    assert "service worker" in r.err and "not healthy within 4 s" in r.err and "no suitable node" in r.err, r.err
    assert c.tasks("worker").keys() == workers.keys() and list(c.answers().values()) == ["v1"]
    assert c.current() == 1 and c.gen("status", "-p", c.profile).code == 0


def test_a_first_switch_that_cannot_be_placed_leaves_nothing(cluster):
    c = cluster
    # A deadline long enough for web to become healthy on a loaded machine, so the one failure at the
    # deadline is the worker's: its tasks can be placed nowhere.
    r = c.gen("switch", c.spec("v1", worker='mem_reservation = "100000g"'), "--target", "swarm", "--timeout", "10")
    assert r.code == 2 and "no suitable node" in r.err, r.err
    label = {"label": f"gen.profile={c.profile}"}
    assert c.client.services.list(filters=label) == []
    wait_for(lambda: c.client.networks.list(filters=label) == [], "the removed network to leave the manager's list")


# The boundaries of a switch that updates web: 1 journal written, 2 prepared service web, 3 updated service web,
# 4 level healthy, 5 commit: images pinned, 6 generation recorded, 7 committed, 8 journal removed.
@pytest.mark.parametrize("k, label, runs, current", [(3, "updated service web", "v1", 1), (7, "committed", "v2", 2)])
def test_gen_killed_mid_switch_then_recover(cluster, k, label, runs, current):
    c = cluster
    first_switch(c)
    trace = c.dir / "trace"
    killed = c.gen_process("switch", c.spec("v2"), "-q", env={"GEN_FAULT_KILL_AT": str(k), "GEN_FAULT_TRACE": str(trace)})
    assert killed.returncode == -9 and trace.read_text().splitlines()[-1] == f"{k} {label}"
    assert (c.state / "profiles" / c.profile / "journal.json").exists()
    status = c.gen("status", "-p", c.profile)
    assert status.code == 3 and "interrupted" in status.out
    r = c.must("recover", "-p", c.profile)
    assert "recovered an interrupted switch" in r.out
    assert list(c.answers().values()) == [runs] and c.current() == current, "the old generation, or the new committed one"
    assert c.gen("status", "-p", c.profile).code == 0


def test_a_worker_dockerd_killed_mid_switch_ends_in_one_of_the_two_verdicts(cluster):
    c = cluster
    first_switch(c)
    victim = c.lab.workers[0]
    switch = c.popen("switch", c.spec("v2", worker='env = { V = "2" }'), "--timeout", "20", "-q")
    try:
        time.sleep(0.5)
        c.lab.kill_dockerd(victim)
        out, err = switch.communicate(timeout=180)     # never a hang: the deadline decides
    finally:
        if switch.poll() is None:
            switch.kill()
        c.lab.restart_dockerd(victim)
    assert switch.returncode in (0, 2), err
    if switch.returncode == 0:
        assert c.current() == 2
    else:
        assert "service " in err and c.current() == 1
    assert not (c.state / "profiles" / c.profile / "journal.json").exists()
    wait_for(lambda: c.gen("status", "-p", c.profile).code == 0, "the services to run as the current generation")


def test_images_pushed_to_the_cluster_registry(cluster):
    c = cluster
    by_digest = c.lab.push(IMAGE)           # the worker names its image by the registry's digest
    c.must("switch", c.spec("v1", worker_image=by_digest), "--target", "swarm", "--push-to", c.lab.registry, "-q")
    web = c.service("web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert web.startswith(f"{c.lab.registry}/gen-test/busybox@sha256:"), "pushed from the manager, run by digest"
    assert c.service("worker").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == by_digest
    assert list(c.answers().values()) == ["v1"] and len(c.tasks("worker")) == 3
    assert json.loads((c.state / "profiles" / c.profile / "target.json").read_text())["registry"] == c.lab.registry


def test_secrets_and_configs_by_content_and_back_on_rollback(cluster):
    c = cluster
    (c.dir / "key.txt").write_text("one")
    (c.dir / "motd").write_text("hello")
    files = ('secrets = ["key"]\nconfigs = [{ source = "motd", target = "/etc/motd" }]\n' + WEB_CHECK)
    head = '[secrets.key]\nfile = "key.txt"\n[configs.motd]\nfile = "motd"\n'
    page = "cat /run/secrets/key /etc/motd | tr -d '\\\\n'"
    spec = c.spec("v1", web=files, page=page)
    spec.write_text(spec.read_text().replace("[services.web]", head + "[services.web]", 1))
    c.must("switch", spec, "--target", "swarm", "-q")
    assert list(c.answers().values()) == ["onehello"]
    (c.dir / "key.txt").write_text("two")
    c.must("switch", spec, "-q")
    assert list(c.answers().values()) == ["twohello"]
    names = {s.name for s in c.client.secrets.list(filters={"label": f"gen.profile={c.profile}"})}
    assert len(names) == 1 and all(n.startswith(f"{c.profile}_key_") for n in names), "the old value's secret is gone"
    c.must("rollback", "-p", c.profile, "-q")
    assert list(c.answers().values()) == ["onehello"], "the rollback made the old secret again, from the store"


COMPOSE = """version: "3.8"
services:
  a:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo a-{version} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{target: 8080, published: {pa}, mode: host}}]
    stop_grace_period: 0s
    restart: always
  b:
    image: {image}
    command: ["sh", "-c", "mkdir -p /www && echo b-{version} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{{target: 8080, published: {pb}, mode: host}}]
    stop_grace_period: 0s
    restart: always
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:{check}/"]
      interval: 500ms
      timeout: 2s
      retries: 1
"""


def test_docker_stack_deploy_of_the_same_compose_file_for_comparison(cluster):
    """What gen adds to Swarm: a stack deploy of a change where one service fails exits 0 and leaves the stack
    half-updated; gen's switch of the same file exits 2 with both services back on the old version."""
    c = cluster
    stack, pa, pb = f"k{c.profile}", c.port, c.port + 1

    def compose(version: str, check: int, name: str) -> Path:
        path = c.dir / f"{name}-{version}.yaml"
        path.write_text(f"name: {c.profile}\n" * (name == "gen") + COMPOSE.format(
            image=IMAGE, version=version, pa=pa, pb=pb, check=check))
        return path

    def docker(*args) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], capture_output=True, text=True, env=c.lab.env(), timeout=120)

    def answers() -> set[str]:
        return set(c.answers(pa).values()) | set(c.answers(pb).values())

    try:
        assert docker("stack", "deploy", "--resolve-image", "never", "-c", compose("v1", 8080, "stack"), stack).returncode == 0
        wait_for(lambda: answers() == {"a-v1", "b-v1"}, "the stack's first version")
        deployed = docker("stack", "deploy", "--resolve-image", "never", "-c", compose("v2", 9999, "stack"), stack)
        assert deployed.returncode == 0, "Swarm's CLI reports success whatever happens next"
        wait_for(lambda: "a-v2" in answers() and "b-v1" not in answers(), "the stack to be half-updated")
        b = c.client.services.get(f"{stack}_b")
        wait_for(lambda: (b.reload() or b.attrs.get("UpdateStatus", {}).get("State")) == "paused", "b's update to pause")
        assert "a-v2" in answers() and "b-v1" not in answers(), "a runs the new version, b neither old nor healthy"
    finally:
        docker("stack", "rm", stack)
        wait_for(lambda: not c.client.services.list(filters={"label": f"com.docker.stack.namespace={stack}"}),
                 "the stack to go")

    wait_for(lambda: not answers(), "the stack's tasks to release their ports")
    c.must("switch", compose("v1", 8080, "gen"), "--target", "swarm", "-q")
    assert answers() == {"a-v1", "b-v1"}
    r = c.gen("switch", compose("v2", 9999, "gen"), "-q")
    assert r.code == 2 and "service b" in r.err
    assert answers() == {"a-v1", "b-v1"}, "all or nothing: a is back on v1 too"
    c.must("rollback", "-p", c.profile, "--to", "1", "-q")       # and any generation is one command away


def test_gen_on_the_local_engine_is_unchanged_by_targets(cluster, monkeypatch):
    """DOCKER_HOST names the manager here, so a profile without --target runs containers on it."""
    c = cluster
    c.must("switch", c.spec("v1", web=""), "-q")
    assert c.client.services.list(filters={"label": f"gen.profile={c.profile}"}) == []
    containers = c.client.containers.list(filters={"label": f"gen.profile={c.profile}"})
    assert len(containers) == 4 and not (c.state / "profiles" / c.profile / "target.json").exists()
    for x in containers:
        x.remove(force=True)
    for net in c.client.networks.list(filters={"label": f"gen.profile={c.profile}"}):
        net.remove()
    assert os.environ["DOCKER_HOST"] == c.lab.manager_host
