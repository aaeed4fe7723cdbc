"""A stop still being carried out when gen is killed (gen.deploy.inflight), on the real engine.

Docker finishes a stop it was asked for after the process that asked is gone, as late as the container's
stop grace. A recovery that looks before it lands keeps a container that stops a moment later: drift,
with no gen running. The activation notes how late such a stop may land; recovery waits until then,
looks again and converges. Here: a switch is killed while it stops, stop-first, a container whose
program ignores SIGTERM for its 4 s grace; `gen recover` must leave the old generation running for good.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT

GRACE_S = 4


def web(value: str) -> str:
    # Logs TERM and goes on: only the SIGKILL at the end of the grace stops it.
    return f"""
[services.web]
image = "{{image}}"
command = ["sh", "-c", "trap 'echo TERM' TERM; while true; do sleep 0.1; done"]
env = {{ V = "{value}" }}
update = "stop-first"
stop_grace = "{GRACE_S}s"
"""


def test_recovery_waits_for_a_long_stop_the_killed_switch_asked_for(deployment):
    d = deployment
    assert d.gen("switch", d.spec(web("1")), "--stable-for", "0.2").code == 0
    [old] = d.containers()
    switch = subprocess.Popen([sys.executable, "-m", "gen", "switch", str(d.spec(web("2"))), "--stable-for", "0.2",
                               "-q", "--state-dir", str(d.state)], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while b"TERM" not in old.logs() and time.monotonic() < deadline:     # the stop is being carried out
            time.sleep(0.05)
        assert b"TERM" in old.logs(), "the switch never stopped the old container"
    finally:
        os.kill(switch.pid, signal.SIGKILL)
        switch.wait()
    asked = time.monotonic()
    old.reload()
    assert old.status == "running", "still in its grace: the killed switch's stop has not landed yet"

    run = d.gen("recover", "-p", d.profile, "--stable-for", "0.2")
    assert run.code == 0, run.err
    time.sleep(max(0.0, asked + GRACE_S + 1.5 - time.monotonic()))    # past any stop in flight
    old.reload()
    assert old.status == "running", "recovery left the old generation running for good (started again)"
    assert d.gen("status", "-p", d.profile).code == 0, "no drift once the stop has landed"
    assert [c.labels["gen.hash"] for c in d.containers()] == [old.labels["gen.hash"]]


def test_only_stops_that_outlast_recoverys_own_wait_are_noted_once_per_batch():
    from gen.deploy.inflight import IN_FLIGHT_MAX_S, NotedStops, grace_s
    from gen.engine.memory import MemoryEngine
    assert [grace_s(g) for g in (None, 0, 1, 1500, 2000, 2001)] == [10.0, 0.0, 1.0, 2.0, 2.0, 3.0], \
        "Docker's default, then whole seconds rounded up, as Docker waits"
    notes: list[float] = []
    engine = NotedStops(MemoryEngine(), notes.append)
    before = time.time()
    for grace_ms in (0, 1500, int(IN_FLIGHT_MAX_S * 1000)):
        engine.stop("absent", grace_ms)              # a stop of a missing container is no error
    assert notes == [], "within recovery's own wait: nothing to note"
    for _ in range(5):
        engine.stop("absent", 4000)
    assert len(notes) == 1 and before + GRACE_S < notes[0] < time.time() + GRACE_S + 2, "one note for the batch"
    engine.stop("absent", None)
    assert len(notes) == 2 and notes[1] >= before + 10, "a longer one moves it later"
