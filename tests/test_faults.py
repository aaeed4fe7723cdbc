"""Crash safety, proven on the real engine (see tests/faults.py; `just faults` runs more of it).

Every step boundary of a real four-service activation is enumerated by the code itself
(GEN_FAULT_TRACE); gen is SIGKILLed at each one (GEN_FAULT_KILL_AT=k), `gen recover` runs, and the
engine must run exactly the old or exactly the new generation, healthy, with `current` agreeing,
no orphan containers, the volume's data intact and every generation record still there and whole.
The same for the undo of a failed switch, `gen recover` itself (then recovered again), rollback and gc:
here at a few representative boundaries of each; `python -m tests.faults` (`just faults`) kills at every
boundary of every scenario."""
from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys

import pytest

from tests.faults import (Lab, before_and_after_flip, concurrent_switches, first_undo_step, gc_labels, kill_at,
                          kill_in_gc, kill_in_recover, kill_in_rollback, kill_in_undo, kill_randomly, recover_labels,
                          rollback_labels, step_labels, undo_labels)
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


def kind(label: str) -> str:
    """A boundary's kind: "removed 3f2a…" and "removed 9c1b…" are one kind."""
    return re.sub(r"\S*\d\S*|\b[0-9a-f]{10,}\b", "#", label)


def first(labels: list[str], wanted: str, start: int = 1) -> int:
    """The position (1-based) of the first boundary of kind `wanted` from position `start`."""
    return next(k for k in range(start, len(labels) + 1) if kind(labels[k - 1]) == wanted)


def test_the_activation_has_step_boundaries_in_every_phase(labels):
    joined = " | ".join(labels)
    for phase in ("journal written", "created", "stopped", "started", "level healthy", "commit: images pinned",
                  "generation recorded", "committed", "removed", "journal removed"):
        assert phase in joined, f"no step boundary for {phase!r}: {joined}"
    # The commit's steps, in order: pins, the generation record, the flip (right before "committed").
    pins = labels.index("commit: images pinned")
    assert labels[pins:pins + 3] == ["commit: images pinned", "generation recorded", "committed"], labels


def test_kill_at_every_step_then_recover_gives_old_or_new(lab, labels):
    outcomes = {}
    for k in range(1, len(labels) + 1):
        _, version = kill_at(lab, k)
        outcomes[k] = version
        lab.back_to_v1(version)
    # Before the pointer flips, recovery restores v1; after it, v2 stays.
    flip = labels.index("generation recorded") + 1
    assert all(v == "v1" for k, v in outcomes.items() if k <= flip), outcomes
    assert all(v == "v2" for k, v in outcomes.items() if k > flip), outcomes


# The scenarios below kill at one boundary of each kind that matters; `python -m tests.faults` at every one.
def test_kill_inside_the_undo_of_a_failed_switch_then_recover_gives_the_old(lab):
    labels = undo_labels(lab)            # v1 -> a version whose front never gets healthy: exit 2, undone
    undo = first_undo_step(labels)
    kinds = [kind(label) for label in labels[undo - 1:]]
    assert kinds[-2:] == ["undo: old containers healthy again", "undo: prepared commit abandoned"], kinds
    assert {"undo: removed #", "undo: restarted #"} <= set(kinds), kinds
    for k in (undo, first(labels, "undo: restarted #", undo), labels.index("undo: old containers healthy again") + 1):
        lab.back_to_v1(kill_in_undo(lab, k))


@pytest.mark.parametrize("when", ["before the flip", "after the flip"])
def test_kill_inside_recover_then_recover_again_gives_what_current_names(lab, labels, when):
    interrupt_at = labels.index("level healthy") + 2 if when == "before the flip" else labels.index("committed") + 1
    recovering = recover_labels(lab, interrupt_at)
    assert recovering[-2:] == ["recover: converged on current", "recover: journal removed"], recovering
    wanted = before_and_after_flip(labels, interrupt_at, "v1", "v2")
    assert wanted == ("v1" if when == "before the flip" else "v2")
    # mid-convergence: restarting the old front (before the flip) or stopping the old generation, which
    # stays warm (after)
    points = [first(recovering, "started #" if when == "before the flip" else "stopped warm #")]
    if when == "before the flip":
        points.append(recovering.index("recover: converged on current") + 1)   # converged, journal not yet removed
    for k in points:
        assert kill_in_recover(lab, interrupt_at, k, labels) == wanted
        lab.back_to_v1(wanted)


def test_kill_during_rollback_then_recover_gives_old_or_new(lab):
    labels = rollback_labels(lab)                          # generation 2 (v2) back to 1 (v1)
    flip = labels.index("committed") + 1
    points = [first(labels, "started #"), flip - 1, flip]  # mid-start, the last boundary before the flip, right after it
    assert labels[flip - 2] == "stable", labels
    outcomes = {}
    for k in points:
        outcomes[k] = kill_in_rollback(lab, k, labels)
        lab.back_to_v1(outcomes[k])
    assert [outcomes[k] for k in points] == ["v2", "v2", "v1"], outcomes


def test_kill_during_gc_then_gc_again_loses_nothing(lab):
    labels = gc_labels(lab)
    between = labels.index("gc: generations deleted, objects not yet swept") + 1
    assert [kind(label) for label in labels[:between - 1]] == ["gc: generation # of # deleted"] * (between - 1)
    assert between > 1 and kind(labels[between]) == "gc: object # deleted", labels
    for k in (1, between, between + 1):                 # mid-deletion, between deletion and sweep, mid-sweep
        lab.back_to_v1(kill_in_gc(lab, k))


def test_random_kills_land_mid_activation_then_recover(lab):
    rng = random.Random(1234)
    for _ in range(3):
        version, passed = kill_randomly(lab, rng, span_s=2.0)   # counts only a kill that landed mid-activation
        assert passed != "journal removed"
        lab.back_to_v1(version)


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


def test_four_simultaneous_switches_of_valid_specs_all_commit_one_after_another(lab):
    assert concurrent_switches(lab, 4) == "4/4 committed"
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
