"""The Swarm plan (gen.deploy.swarmplan) and gen's verdict on a service's tasks (gen.deploy.swarmhealth):
pure table tests, no Docker."""
from __future__ import annotations

import pytest

from gen.deploy.swarmhealth import Watch, judge
from gen.deploy.swarmplan import plan_swarm, updated_service
from gen.engine.swarmstate import ObservedService, Task, observed_service, task

P = "shop"


def svc(name, *, env=None, update="start-first", ports=(), depends_on=(), replicas=1):
    return {"name": name, "image": "img", "image_id": "sha256:a", "command": None, "entrypoint": None,
            "env": env or {}, "ports": [{"host_ip": "", "host_port": p, "container_port": 80, "protocol": "tcp", "mode": "host"}
                                        for p in ports],
            "volumes": [], "depends_on": list(depends_on), "replicas": replicas, "update": update,
            "stop_grace_ms": 0, "restart": "always", "healthcheck": None, "labels": {}, "user": None,
            "working_dir": None, "secrets": []}


def observed(name, h, sid=None, swarm_name=None):
    return ObservedService(id=sid or f"id-{name}", name=swarm_name or f"{P}_{name}", service=name, hash=h,
                           manifest="m", version=7, replicas=1, update_state="")


def test_keep_create_update_remove_each_with_a_reason():
    old, new = svc("web", env={"V": "1"}), svc("web", env={"V": "2"})
    services = {"web": ("h-new", new), "db": ("h-db", svc("db")), "cache": ("h-cache", svc("cache"))}
    p = plan_swarm(P, services, [observed("web", "h-old"), observed("db", "h-db"), observed("gone", "h-gone")],
                   {"h-old": old})
    got = {s.service: (s.action, s.reason) for s in p.steps}
    assert got == {"web": ("update", "env changed"), "db": ("keep", "unchanged"), "cache": ("create", "missing"),
                   "gone": ("remove", "not in the generation")}
    assert updated_service(p.step("web")) == "id-web" and updated_service(p.step("cache")) is None
    assert p.step("gone").remove_after == ("id-gone",) and not p.is_noop


def test_an_unknown_old_definition_is_just_changed():
    p = plan_swarm(P, {"web": ("h2", svc("web"))}, [observed("web", "h1")])
    assert (p.step("web").action, p.step("web").reason) == ("update", "changed")


def test_all_kept_is_a_noop():
    p = plan_swarm(P, {"web": ("h", svc("web"))}, [observed("web", "h")])
    assert p.is_noop and p.step("web").kept == ("id-web",)


def test_levels_follow_dependencies():
    services = {"web": ("h1", svc("web", depends_on=["db"])), "db": ("h2", svc("db"))}
    p = plan_swarm(P, services, [])
    assert p.levels == (("db",), ("web",)) and p.step("web").level == 1


def test_a_host_port_forces_stop_first_and_says_why():
    p = plan_swarm(P, {"web": ("h2", svc("web", ports=[8080]))}, [observed("web", "h1")])
    assert p.step("web").strategy == "stop-first" and "host port" in p.step("web").reason


def test_a_duplicate_labelled_service_goes_after_the_commit():
    p = plan_swarm(P, {"web": ("h", svc("web"))},
                   [observed("web", "h", "a", "byhand_web"), observed("web", "h", "b")])
    step = p.step("web")
    assert step.kept == ("b",) and step.remove_after == ("a",)


# -- the API's dicts ---------------------------------------------------------------------------------
def test_services_and_tasks_read_from_the_api():
    s = observed_service({"ID": "s1", "Version": {"Index": 12}, "Spec": {
        "Name": "shop_web", "Labels": {"gen.profile": P, "gen.service": "web", "gen.hash": "h", "gen.manifest": "m"},
        "Mode": {"Replicated": {"Replicas": 3}}}, "UpdateStatus": {"State": "paused", "Message": "update paused"}})
    assert (s.service, s.hash, s.version, s.replicas, s.update_state) == ("web", "h", 12, 3, "paused")
    t = task({"ID": "t1", "ServiceID": "s1", "Slot": 2, "NodeID": "n1", "DesiredState": "shutdown",
              "Spec": {"ContainerSpec": {"Labels": {"gen.hash": "h"}}},
              "Status": {"State": "failed", "Err": "task: non-zero exit (1)", "ContainerStatus": {"ExitCode": 1}}})
    assert (t.hash, t.state, t.err, t.exit_code, t.active) == ("h", "failed", "task: non-zero exit (1)", 1, False)


# -- the verdict -------------------------------------------------------------------------------------
def t(tid, h="new", state="running", desired="running", err="", node="n1", exit_code=None):
    return Task(tid, "s1", h, 1, node, desired, state, "", err, exit_code, "")


def verdict(tasks, *, replicas=1, before=(), now=10.0, seen=None, stability=1.0):
    w = Watch("web", "s1", "new", replicas, frozenset(before), dict(seen or {}))
    return judge(w, tasks, now, stability, lambda n: f"node-{n}"), w


@pytest.mark.parametrize("tasks, seen, state, detail", [
    ([t("a")], {"a": 8.0}, "healthy", ""),
    ([t("a")], {}, "waiting", "0 of 1 task(s) through the stability window"),   # first seen now
    ([t("a", state="starting")], {}, "waiting", "task a on node-n1 starting"),
    ([t("a", state="pending", node="", err="no suitable node (insufficient resources on 3 nodes)")], {},
     "waiting", "task a pending: no suitable node (insufficient resources on 3 nodes)"),
    ([t("a", state="failed", desired="shutdown", err="task: non-zero exit (1)", exit_code=1), t("b")], {"b": 0},
     "failed", "task a on node-n1 failed: task: non-zero exit (1)"),
    ([t("a", state="rejected", desired="shutdown", err="No such image: x")], {}, "failed",
     "task a on node-n1 rejected: No such image: x"),
    ([t("a", state="complete", desired="shutdown")], {}, "failed",
     "task a on node-n1 exited (code 0), but a service must keep running"),
    ([t("a"), t("o", h="old")], {"a": 0.0}, "waiting", "1 task(s) of the previous definition still running"),
    ([t("a"), t("o", h="old", state="shutdown", desired="shutdown")], {"a": 0.0}, "healthy", ""),
])
def test_judge(tasks, seen, state, detail):
    v, _ = verdict(tasks, seen=seen)
    assert (v.state, v.detail) == (state, detail)


def test_replicas_all_running_and_stable():
    v, _ = verdict([t("a"), t("b", state="starting")], replicas=2, seen={"a": 0.0})
    assert v.state == "waiting"
    v, _ = verdict([t("a"), t("b")], replicas=2, seen={"a": 0.0, "b": 0.0})
    assert v.state == "healthy"


def test_failed_tasks_from_before_do_not_count_and_old_running_ones_do():
    """A restore (or a second attempt at a definition) meets tasks of that definition from earlier: their
    failed history is not a failure now, and those still running count (Swarm keeps them)."""
    history = t("x", state="failed", desired="shutdown", err="task: non-zero exit (1)")
    v, _ = verdict([history, t("a")], before={"x", "a"}, seen={"a": 0.0})
    assert v.state == "healthy"


def test_a_task_is_stable_from_when_gen_first_saw_it_running():
    v, w = verdict([t("a")], now=5.0)
    assert v.state == "waiting" and w.seen == {"a": 5.0}
    assert judge(w, [t("a")], 6.0, 1.0, str).state == "healthy"
