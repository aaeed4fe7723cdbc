"""How many engine requests gen's hot paths make (issue 15): counted through wrappers of the engine, never
timed. The health gate and the job wait list only the containers they wait for (the engine narrows the
list by id); a build inspects each distinct image once (its ID and digests from one inspect); making a
Docker engine sends nothing (no ping: the first real call is the first contact, and an engine that does
not answer fails it with the same clear EngineUnavailable).
"""
from __future__ import annotations

import time
import uuid

import pytest
import requests

from gen.deploy.health import wait_healthy
from gen.deploy.jobs import wait_completed
from gen.deploy.options import Options
from gen.engine.base import ImageInfo
from gen.engine.docker import DockerEngine
from gen.engine.memory import Container, MemoryEngine
from gen.errors import ActivationFailed, EngineUnavailable, ImageMissing
from tests.cleanup import remove_profile
from tests.conftest import IMAGE, sleeper

NO_ENGINE = "unix:///nonexistent/gen-test-docker.sock"
QUICK = Options(poll_s=0.05, safety_poll_s=0.05, stability_s=0)


class Counting:
    """An engine with a record of every call made to it: (verb, args, kwargs)."""

    def __init__(self, engine):
        self.engine, self.log = engine, []

    def __getattr__(self, name):
        method = getattr(self.engine, name)
        if name == "watch":         # the watch is no request of the gate's looks
            return method

        def counted(*args, **kwargs):
            self.log.append((name, args, kwargs))
            return method(*args, **kwargs)
        return counted

    def calls(self, verb: str) -> list[tuple[tuple, dict]]:
        return [(args, kwargs) for name, args, kwargs in self.log if name == verb]

    def verbs(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, _, _ in self.log:
            counts[name] = counts.get(name, 0) + 1
        return counts


@pytest.fixture
def profile(docker_client):
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    remove_profile(docker_client, name)


def container(docker_client, profile: str, command: str = "exec sleep 3600", start: bool = True) -> str:
    api = docker_client.api
    cid = api.create_container(IMAGE, ["sh", "-c", command], labels={"gen.profile": profile, "gen.service": "web"},
                               host_config=api.create_host_config(restart_policy={"Name": "no"}))["Id"]
    if start:
        api.start(cid)
    return cid


# -- 1. the health gate lists only what it waits for ------------------------------------------------
def test_the_docker_engine_lists_only_the_ids_asked_for(docker_client, profile):
    engine = DockerEngine.from_env()
    a, b = container(docker_client, profile), container(docker_client, profile, start=False)
    assert {c.id for c in engine.observe(profile)} == {a, b}, "without ids: every container of the profile"
    assert [c.id for c in engine.observe(profile, ids=[a])] == [a]
    assert [(c.id, c.state) for c in engine.observe(profile, ids=[b])] == [(b, "created")]
    assert engine.observe(profile, ids=[]) == [], "no ids: nothing (an empty filter must not mean all)"
    assert engine.observe(f"{profile}x", ids=[a]) == [], "still only the profile's own"


def test_the_health_gate_and_the_job_wait_list_only_what_they_wait_for(docker_client, profile):
    engine = Counting(DockerEngine.from_env())
    waited, other = container(docker_client, profile), container(docker_client, profile)
    job = container(docker_client, profile, "exit 0")
    wait_healthy(engine, profile, {waited: False}, {waited: "web"}, time.monotonic() + 30, QUICK)
    wait_completed(engine, profile, {job: "migrate"}, time.monotonic() + 30, QUICK)
    listed = engine.calls("observe")
    assert len(listed) >= 2
    assert all(kwargs.get("ids") in ([waited], [job]) for _, kwargs in listed), listed
    assert other not in str(listed)


def test_a_container_missing_from_the_narrowed_list_disappeared(docker_client, profile):
    engine = DockerEngine.from_env()
    gone = container(docker_client, profile)
    container(docker_client, profile)       # another one of the profile is still listed without ids
    docker_client.api.remove_container(gone, force=True)
    with pytest.raises(ActivationFailed, match="disappeared from the engine"):
        wait_healthy(engine, profile, {gone: False}, {gone: "web"}, time.monotonic() + 30, QUICK)
    with pytest.raises(ActivationFailed, match="disappeared from the engine"):
        wait_completed(engine, profile, {gone: "migrate"}, time.monotonic() + 30, QUICK)


def test_the_memory_engine_honours_ids_too():
    engine = MemoryEngine()
    for cid, profile in (("a", "p"), ("b", "p"), ("c", "q")):
        engine.containers[cid] = Container(cid, cid, {"gen.profile": profile}, {"image_id": "i"}, {}, None, {})
    assert [c.id for c in engine.observe("p")] == ["b", "a"]
    assert [c.id for c in engine.observe("p", ids=["a", "c"])] == ["a"]
    assert engine.observe("p", ids=[]) == []


# -- 2. one image inspect per distinct image at build --------------------------------------------
def test_a_build_inspects_each_distinct_image_once(docker_client, tmp_path):
    from gen.api import Gen
    spec = tmp_path / "gen.toml"
    spec.write_text('name = "calls"\n' + "".join(sleeper(f"s{i}") for i in range(5)).replace("{image}", IMAGE))
    engine = Counting(DockerEngine.from_env())
    Gen(tmp_path / "state", engine=engine).compile(spec)
    assert engine.verbs() == {"image_info": 1}, "its ID and its digests from one inspect"


def test_image_info_is_the_id_and_the_digests(docker_client):
    engine = DockerEngine.from_env()
    info = engine.image_info(IMAGE, "services.a.image")
    assert info == ImageInfo(engine.image_id(IMAGE, "t"), tuple(engine.image_digests(info.id)))
    with pytest.raises(ImageMissing, match="services.a.image"):
        engine.image_info("gen-test/absent:1", "services.a.image")
    memory = MemoryEngine({"app:1": "sha256:" + "1" * 64})
    assert memory.image_info("app:1", "t") == ImageInfo("sha256:" + "1" * 64, ())


# -- 3. no ping: making an engine sends nothing ---------------------------------------------------
def test_making_a_docker_engine_sends_no_request(docker_client, profile, monkeypatch):
    sent = []
    send = requests.Session.send
    monkeypatch.setattr(requests.Session, "send", lambda self, request, **kw: sent.append(request.path_url)
                        or send(self, request, **kw))
    engine = DockerEngine.from_env()
    assert sent == [], "no ping"
    assert engine.observe(profile) == []
    assert len(sent) == 1 and "/containers/json" in sent[0]


def test_an_engine_that_does_not_answer_fails_its_first_call_clearly(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    engine = DockerEngine.from_env()        # nothing asked yet
    with pytest.raises(EngineUnavailable) as raised:
        engine.observe("p")
    assert str(raised.value).startswith("docker engine: not reachable (") and "is dockerd running?" in str(raised.value)
    with pytest.raises(EngineUnavailable, match=f"^docker engine {NO_ENGINE}: not reachable"):
        DockerEngine.from_env(host=NO_ENGINE).image_info(IMAGE, "services.a.image")
    with pytest.raises(EngineUnavailable, match="^docker engine: not reachable"):
        list(DockerEngine.from_env().save_image("sha256:" + "0" * 64))


def test_status_without_an_engine_prints_one_clear_line(deployment):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("a"))).code == 0
    r = d.gen_process("status", "-p", d.profile, env={"DOCKER_HOST": NO_ENGINE})
    assert r.code == 1, r.err
    assert r.err.startswith("error: docker engine: not reachable (") and len(r.err.strip().splitlines()) == 1, r.err
