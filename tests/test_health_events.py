"""The health gate wakes on the engine's events (Engine.watch), not on a poll.

The real-engine tests give the gate a poll interval and a safety-net poll of 30 s and a deadline of
20 s: a gate that only polled would sleep until its deadline. Each records every wake of the gate's
watch (the timeout it asked for, and whether an event ended it) and checks that the wake which led to
the verdict was an event. A stream that cannot be opened, breaks, or hangs must leave the gate
correct: it then polls every poll_s (0.05 s there), as it did before there were events.
"""
from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid

import pytest

from gen.deploy.health import Probe, wait_healthy
from gen.deploy.jobs import wait_completed
from gen.deploy.options import Options
from gen.engine.docker import API_VERSION, DockerEngine
from gen.engine.dockerevents import EventWatch
from gen.engine.memory import MemoryEngine
from gen.errors import ActivationFailed
from tests.cleanup import remove_profile
from tests.conftest import IMAGE

ONLY_EVENTS = Options(poll_s=30, safety_poll_s=30, stability_s=60)    # no timer wakes the gate before the deadline
EVENTS_OR_POLL = Options(poll_s=0.05, safety_poll_s=30, stability_s=60)
DEADLINE_S = 20


class Recorded:
    """An engine whose watches record each wake: (timeout asked for, woken by an event)."""

    def __init__(self, engine):
        self.engine, self.wakes, self.live_seen = engine, [], False

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def watch(self, profile: str) -> "RecordedWatch":
        return RecordedWatch(self, self.engine.watch(profile))


class RecordedWatch:
    def __init__(self, recorded: Recorded, watch):
        self.recorded, self.watch = recorded, watch

    @property
    def live(self) -> bool:
        self.recorded.live_seen |= self.watch.live
        return self.watch.live

    def wait(self, timeout_s: float, probes=()) -> bool:
        woken = self.watch.wait(timeout_s, probes)
        self.recorded.wakes.append((timeout_s, woken))
        return woken

    def close(self) -> None:
        self.watch.close()

    def __enter__(self):
        self.watch.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.watch.__exit__(*exc)


def event_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gen-events-")]


@pytest.fixture
def profile(docker_client):
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    remove_profile(docker_client, name)


@pytest.fixture
def engine(docker_client):
    return DockerEngine.from_env()


def container(docker_client, profile: str, command: str, healthcheck: dict | None = None, start: bool = True) -> str:
    """A container as gen labels them (the gate finds it by its profile), running `sh -c command`."""
    api = docker_client.api
    cid = api.create_container(IMAGE, ["sh", "-c", command], labels={"gen.profile": profile, "gen.service": "web"},
                               healthcheck=healthcheck, host_config=api.create_host_config(restart_policy={"Name": "no"}))["Id"]
    if start:
        api.start(cid)
    return cid


def check(test: list[str], interval_s: float) -> dict:
    return {"test": test, "interval": int(interval_s * 1e9), "timeout": int(5e9), "retries": 100}


READY_AFTER_HALF_A_SECOND = "sleep 0.5; touch /tmp/ready; exec sleep 3600"
READY_CHECK = check(["CMD", "test", "-f", "/tmp/ready"], 0.1)


# -- the watch itself ------------------------------------------------------------------------------
def test_the_watch_wakes_on_the_start_the_health_and_the_death_of_a_real_container(docker_client, engine, profile):
    api = docker_client.api
    cid = container(docker_client, profile, READY_AFTER_HALF_A_SECOND, READY_CHECK, start=False)
    with engine.watch(profile) as watch:
        while not watch.live:
            assert not watch.wait(0.01) or True
        watch.wait(0)           # whatever the replay brought
        api.start(cid)
        assert watch.wait(30), "the start woke the watch"
        assert api.inspect_container(cid)["State"]["Running"]
        assert watch.wait(30), "the healthcheck's verdict woke the watch (Docker's own check runs are no wake)"
        assert api.inspect_container(cid)["State"]["Health"]["Status"] == "healthy"
        api.kill(cid)
        for _ in range(3):       # kill, then die
            assert watch.wait(30), "the kill and the death woke the watch"
            if not api.inspect_container(cid)["State"]["Running"]:
                break
        assert not api.inspect_container(cid)["State"]["Running"]
    assert not event_threads(), "closing the watch ended its reader"


def test_the_watch_of_another_profile_sleeps_through_these_events(docker_client, engine, profile):
    with engine.watch(f"{profile}-other") as watch:
        while not watch.live:
            watch.wait(0.01)
        cid = container(docker_client, profile, "exit 0", start=False)
        docker_client.api.start(cid)
        docker_client.api.wait(cid, timeout=30)
        assert not watch.wait(0.3), "only the profile's containers wake it"
    assert not event_threads()


# -- the gate, woken by events ------------------------------------------------------------------------
def test_a_container_turning_healthy_wakes_the_gate(docker_client, engine, profile):
    cid = container(docker_client, profile, READY_AFTER_HALF_A_SECOND, READY_CHECK)
    recorded = Recorded(engine)
    wait_healthy(recorded, profile, {cid: True}, {cid: "web"}, time.monotonic() + DEADLINE_S, ONLY_EVENTS)
    assert recorded.wakes[-1][1], f"an event woke the gate before its verdict: {recorded.wakes}"
    assert docker_client.api.inspect_container(cid)["State"]["Health"]["Status"] == "healthy"
    assert not event_threads()


def test_a_container_that_dies_fails_the_gate_at_once_with_its_exit_code(docker_client, engine, profile):
    cid = container(docker_client, profile, "sleep 0.5; echo bye; exit 3")
    recorded = Recorded(engine)
    with pytest.raises(ActivationFailed) as failed:
        wait_healthy(recorded, profile, {cid: False}, {cid: "web"}, time.monotonic() + DEADLINE_S, ONLY_EVENTS)
    assert failed.value.reason == f"container {cid[:12]} exited with code 3"
    assert failed.value.logs == "bye"
    assert recorded.wakes[-1][1], f"the death woke the gate, not its deadline: {recorded.wakes}"
    assert not event_threads()


def test_a_probe_that_ends_wakes_the_gate(docker_client, engine, profile):
    cid = container(docker_client, profile, "exec sleep 3600", check(["CMD", "true"], 60))   # Docker checks in 60 s
    probe = Probe.of({"test": ["CMD-SHELL", "sleep 0.3"], "timeout_ms": 5000}, "")
    recorded = Recorded(engine)
    wait_healthy(recorded, profile, {cid: True}, {cid: "web"}, time.monotonic() + DEADLINE_S, ONLY_EVENTS,
                 probes={cid: probe})
    assert recorded.wakes[-1][1], f"the probe's end (exec_die) woke the gate: {recorded.wakes}"
    assert docker_client.api.inspect_container(cid)["State"]["Health"]["Status"] == "starting", "the probe passed"
    assert not event_threads()


def test_a_job_that_exits_wakes_its_wait(docker_client, engine, profile):
    cid = container(docker_client, profile, "sleep 0.5; exit 0")
    recorded = Recorded(engine)
    wait_completed(recorded, profile, {cid: "migrate"}, time.monotonic() + DEADLINE_S, ONLY_EVENTS)
    assert recorded.wakes[-1][1], f"the job's exit woke the wait: {recorded.wakes}"
    assert not event_threads()


# -- streams that fail: the gate polls ----------------------------------------------------------------
def test_a_stream_the_engine_refuses_leaves_the_gate_polling(docker_client, engine, profile, monkeypatch):
    events = engine.api.events
    monkeypatch.setattr(engine.api, "events", lambda **kw: events(**{**kw, "since": "not-a-time"}))   # dockerd: 400
    cid = container(docker_client, profile, READY_AFTER_HALF_A_SECOND, READY_CHECK)
    recorded = Recorded(engine)
    wait_healthy(recorded, profile, {cid: True}, {cid: "web"}, time.monotonic() + DEADLINE_S, EVENTS_OR_POLL)
    assert recorded.wakes[-1][0] <= EVENTS_OR_POLL.poll_s, f"the gate polled, the stream refused: {recorded.wakes}"
    assert docker_client.api.inspect_container(cid)["State"]["Health"]["Status"] == "healthy"
    assert not event_threads()


def test_a_stream_that_breaks_under_the_gate_leaves_it_polling(docker_client, engine, profile, monkeypatch):
    streams = []
    events = engine.api.events
    monkeypatch.setattr(engine.api, "events", lambda **kw: streams.append(events(**kw)) or streams[-1])
    cid = container(docker_client, profile, "sleep 1.5; touch /tmp/ready; exec sleep 3600", READY_CHECK)

    def break_it() -> None:           # the stream's socket goes away under the reader, before the health event
        while not streams:
            time.sleep(0.005)
        streams[0].close()
    breaker = threading.Thread(target=break_it)
    breaker.start()
    recorded = Recorded(engine)
    wait_healthy(recorded, profile, {cid: True}, {cid: "web"}, time.monotonic() + DEADLINE_S, EVENTS_OR_POLL)
    breaker.join()
    assert docker_client.api.inspect_container(cid)["State"]["Health"]["Status"] == "healthy"
    assert recorded.wakes[-1][0] <= EVENTS_OR_POLL.poll_s, f"the gate polled once the stream broke: {recorded.wakes}"
    assert not event_threads()


def test_an_engine_that_never_answers_the_stream_never_hangs_the_gate(docker_client, profile):
    import docker
    path = os.path.join(tempfile.mkdtemp(), "hung.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    hung = docker.APIClient(base_url=f"unix://{path}", version=API_VERSION, timeout=5)

    class HungEvents(DockerEngine):        # lists on the real engine, subscribes to one that never answers
        def watch(self, profile: str) -> EventWatch:
            return EventWatch(hung, profile)
    cid = container(docker_client, profile, READY_AFTER_HALF_A_SECOND, READY_CHECK)
    recorded = Recorded(HungEvents.from_env())
    try:
        wait_healthy(recorded, profile, {cid: True}, {cid: "web"}, time.monotonic() + DEADLINE_S, EVENTS_OR_POLL)
        assert not recorded.live_seen, "the request was never answered"
        assert docker_client.api.inspect_container(cid)["State"]["Health"]["Status"] == "healthy"
        assert recorded.wakes[-1][0] <= EVENTS_OR_POLL.poll_s, f"the gate polled: {recorded.wakes}"
    finally:
        accepted = server.accept()[0] if event_threads() else None
        server.close()
        if accepted:
            accepted.close()          # the hung engine goes away: the reader left behind ends
    for thread in event_threads():
        thread.join(10)
    assert not event_threads()


# -- in memory: the gate's own timers -------------------------------------------------------------------
def started_in_memory(engine: MemoryEngine, start: bool = True) -> str:
    """One container of a plain service, created (and started) in memory as the transaction would."""
    from gen.engine.base import Wiring
    from gen.model.compile import compile_spec
    from gen.spec import parse_spec
    target = compile_spec(parse_spec('name = "p"\n[services.web]\nimage = "app:1"'), "p", lambda req: MEMORY_IMAGE)
    h, obj = target.services["web"]
    cid = engine.create("p", "web", obj, h, target.manifest_hash, 1, "p-web-1", Wiring())
    if start:
        engine.start(cid)
    return cid


MEMORY_IMAGE = "sha256:" + "1" * 64


def test_in_memory_the_gate_sleeps_until_a_stability_window_ripens():
    engine = MemoryEngine({"app:1": MEMORY_IMAGE})
    cid = started_in_memory(engine)
    recorded = Recorded(engine)
    wait_healthy(recorded, "p", {cid: False}, {cid: "web"}, time.monotonic() + DEADLINE_S,
                 Options(poll_s=30, safety_poll_s=30, stability_s=0.2))
    assert recorded.wakes and all(timeout <= 0.2 for timeout, _ in recorded.wakes), \
        f"the gate slept until the window's end, not for its 30 s poll: {recorded.wakes}"


def test_the_memory_watch_wakes_on_a_change_of_the_profiles_containers():
    engine = MemoryEngine({"app:1": MEMORY_IMAGE})
    cid = started_in_memory(engine, start=False)
    with engine.watch("p") as watch:
        assert watch.live and not watch.wait(0.01)
        engine.start(cid)
        assert watch.wait(5)
        assert not watch.wait(0.01), "nothing changed since"
        engine.stop(cid, 0)
        assert watch.wait(5)
