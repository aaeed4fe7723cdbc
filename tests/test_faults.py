"""Crash safety, proven on the real engine (see tests/faults.py; `just faults` runs more of it).

Every step boundary of a real four-service activation is enumerated by the code itself
(GEN_FAULT_TRACE); gen is SIGKILLed at each one (GEN_FAULT_KILL_AT=k), `gen recover` runs, and the
engine must run exactly the old or exactly the new generation, healthy, with `current` agreeing,
no orphan containers and the volume's data intact."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys

import pytest

from tests.faults import Lab, concurrent_switches, kill_at, kill_randomly, step_labels
from tests.fuzz import fuzz_cli


@pytest.fixture(scope="module")
def lab(docker_client, tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("faults"))
    lab.setup()
    yield lab
    lab.cleanup()


@pytest.fixture(scope="module")
def labels(lab):
    return step_labels(lab)


def test_the_activation_has_step_boundaries_in_every_phase(labels):
    joined = " | ".join(labels)
    for phase in ("journal written", "created", "stopped", "started", "level healthy", "generation recorded",
                  "committed", "removed", "journal removed"):
        assert phase in joined, f"no step boundary for {phase!r}: {joined}"


def test_kill_at_every_step_then_recover_gives_old_or_new(lab, labels):
    outcomes = {}
    for k in range(1, len(labels) + 1):
        _, version = kill_at(lab, k)
        outcomes[k] = version
        lab.reset_to_v1()
    # Before the pointer flips, recovery restores v1; after it, v2 stays.
    flip = labels.index("generation recorded") + 1
    assert all(v == "v1" for k, v in outcomes.items() if k <= flip), outcomes
    assert all(v == "v2" for k, v in outcomes.items() if k > flip), outcomes


def test_random_kills_then_recover(lab):
    rng = random.Random(1234)
    for _ in range(3):
        kill_randomly(lab, rng, span_s=4.0)
        lab.reset_to_v1()


def test_interrupted_activation_is_reported_and_the_next_switch_recovers_first(lab, labels):
    k = labels.index("level healthy") + 2          # in the middle of starting the new generation
    killed = lab.gen("switch", lab.spec("v2"), env={"GEN_FAULT_KILL_AT": str(k)})
    assert killed.returncode == -signal.SIGKILL
    status = lab.gen("status", "-p", lab.profile, "--json")
    assert status.returncode == 3
    assert json.loads(status.stdout)["activation"]["state"] == "interrupted"
    again = lab.gen("switch", lab.spec("v2"))
    assert again.returncode == 0 and "interrupted" in again.stderr
    assert lab.check() == "v2"
    lab.reset_to_v1()


def test_four_simultaneous_switches_serialise_cleanly(lab):
    assert concurrent_switches(lab, 4).startswith(("1/", "2/", "3/", "4/"))
    lab.reset_to_v1()


def test_a_locked_profile_makes_a_switch_wait_then_fail_naming_the_holder_and_a_killed_holder_frees_it(lab):
    lock_path = lab.state / "profiles" / lab.profile / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from store import FileLock; "
         f"FileLock({str(lock_path)!r}).acquire(10); print('locked', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, cwd=lab_root())
    try:
        assert holder.stdout.readline().strip() == "locked"
        blocked = lab.gen("switch", lab.spec("v2"), "--lock-timeout", "0.5")
        assert blocked.returncode == 1 and f"pid {holder.pid}" in blocked.stderr, blocked.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # (checked once the holder is gone: while it holds the lock, `gen status` says "in progress")
    assert lab.check() == "v1", "nothing changed while the profile was locked"
    assert lab.gen("switch", lab.spec("v2"), "--lock-timeout", "0.5").returncode == 0, "no stale lock"
    assert lab.check() == "v2"
    lab.reset_to_v1()


def lab_root():
    from tests.faults import ROOT
    return ROOT


def test_malformed_specs_never_crash_write_or_touch_the_engine():
    clean, run = fuzz_cli(300)
    assert run >= 300 and clean == run


def test_gc_recovers_an_interrupted_activation_first_and_says_so(lab, labels):
    killed = lab.gen("switch", lab.spec("v2"), env={"GEN_FAULT_KILL_AT": str(labels.index("level healthy") + 2)})
    assert killed.returncode == -signal.SIGKILL
    collected = lab.gen("gc", "-p", lab.profile)
    assert collected.returncode == 0, collected.stderr
    assert "interrupted" in collected.stderr
    assert lab.check() == "v1"
