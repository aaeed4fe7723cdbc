"""The planner's warm containers (gen.state.warm): table cases, no Docker.

An old container of a warm generation is kept instead of removed: stopped after the commit (or before the
new one starts, stop-first), left alone when already stopped, and started again by a plan that wants it."""
from __future__ import annotations

import pytest

from gen.model.plan import plan
from tests.test_plan import P, desired, old, running, svc

ONE = desired(svc("web", env={"V": "2"}))
STOP_FIRST = desired(svc("web", env={"V": "2"}, update="stop-first"))
PORT = desired(svc("web", env={"V": "2"}, ports=[8080]))
WARM = frozenset({("web", "h-old"), ("gone", "h-gone")})


def fields(step):
    return {"stop_before": step.stop_before, "remove_after": step.remove_after, "retire_after": step.retire_after,
            "start": step.start, "create": len(step.create), "quiesce": step.quiesce}


@pytest.mark.parametrize("services, observed, warm, action, expected", [
    # start-first: the old one keeps serving until the commit, then it is stopped and kept
    (ONE, [old("web", "h-old")], WARM, "replace",
     {"stop_before": (), "remove_after": (), "retire_after": ("old-web",), "start": (), "create": 1, "quiesce": ()}),
    # not warm: removed, as before
    (ONE, [old("web", "h-old")], frozenset(), "replace",
     {"stop_before": (), "remove_after": ("old-web",), "retire_after": (), "start": (), "create": 1, "quiesce": ()}),
    # stop-first: stopped before the new one starts (an undo starts it again), nothing after the commit
    (STOP_FIRST, [old("web", "h-old")], WARM, "replace",
     {"stop_before": ("old-web",), "remove_after": (), "retire_after": (), "start": (), "create": 1, "quiesce": ()}),
    # a host port the new container needs: stopped first, not again after the commit
    (PORT, [old("web", "h-old", ports=[8080])], WARM, "replace",
     {"stop_before": ("old-web",), "remove_after": (), "retire_after": (), "start": (), "create": 1, "quiesce": ()}),
    # an older warm container left over while a newer one is replaced: both kept, only the running one stopped
    (ONE, [old("web", "h-old", state="exited", cid="old-a"), old("web", "h-other", cid="old-b")],
     frozenset({("web", "h-old"), ("web", "h-other")}), "replace",
     {"stop_before": (), "remove_after": (), "retire_after": ("old-b",), "start": (), "create": 1, "quiesce": ()}),
    # a paused warm container could run any moment: quiesced first, kept
    (ONE, [old("web", "h-old", state="paused")], WARM, "replace",
     {"stop_before": (), "remove_after": (), "retire_after": (), "start": (), "create": 1, "quiesce": ("old-web",)}),
], ids=["start-first", "not-warm", "stop-first", "host-port", "two-warm", "paused"])
def test_old_containers_of_warm_generations_are_kept(services, observed, warm, action, expected):
    step = plan(P, services, observed, warm=warm).step("web")
    assert step.action == action
    assert fields(step) == expected


def test_a_stopped_warm_container_needs_nothing():
    p = plan(P, ONE, [running(ONE, "web"), old("web", "h-old", state="exited")], warm=WARM)
    assert p.is_noop and p.step("web").reason == "unchanged"
    assert p.to_remove == () and p.to_retire == ()


def test_a_running_warm_container_is_drift_and_is_stopped_not_removed():
    p = plan(P, ONE, [running(ONE, "web"), old("web", "h-old")], warm=WARM)
    assert not p.is_noop
    assert p.to_retire == ("old-web",) and p.to_remove == ()


def test_rollback_starts_the_kept_container_instead_of_creating_one():
    kept = running(ONE, "web", state="exited", cid="kept")
    p = plan(P, ONE, [kept, old("web", "h-new", cid="new")], warm=frozenset())
    step = p.step("web")
    assert step.start == ("kept",) and step.create == () and step.remove_after == ("new",)
    assert "its kept container starts again (warm)" in step.reason


def test_a_removed_service_keeps_its_warm_containers_stopped():
    p = plan(P, ONE, [running(ONE, "web"), old("gone", "h-gone", state="exited")], warm=WARM)
    assert p.is_noop and [s.service for s in p.steps] == ["web"]
    p = plan(P, ONE, [running(ONE, "web"), old("gone", "h-gone")], warm=WARM)
    assert p.step("gone").action == "remove" and p.to_retire == ("old-gone",) and p.to_remove == ()
    p = plan(P, ONE, [running(ONE, "web"), old("gone", "h-other")], warm=WARM)
    assert p.to_remove == ("old-gone",)


def test_a_warm_container_that_never_ran_is_removed_not_kept():
    """Created by an activation killed before its start: kept, it would need a stop that never changes
    its state, so every plan (and `gen status`) would find something to do."""
    p = plan(P, ONE, [running(ONE, "web"), old("web", "h-old", state="created")], warm=WARM)
    assert p.to_remove == ("old-web",) and p.to_retire == ()
    p = plan(P, ONE, [running(ONE, "web")], warm=WARM)
    assert p.is_noop


def test_a_jobs_old_container_is_never_kept():
    """A rollback runs the old job again, as it would with a created container."""
    p = plan(P, ONE, [old("web", "h-old", state="exited")], known={"h-old": {**svc("web"), "job": True}}, warm=WARM)
    assert p.step("web").remove_after == ("old-web",) and p.to_retire == ()


def test_the_desired_hash_is_never_warm():
    """Warm pairs may include the target's own service (a generation with the same service): its
    containers are the target's, chosen as always."""
    h = ONE["web"][0]
    p = plan(P, ONE, [running(ONE, "web")], warm=frozenset({("web", h)}))
    assert p.is_noop
