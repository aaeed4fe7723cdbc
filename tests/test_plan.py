"""The planner is pure: table cases, no Docker."""
from __future__ import annotations

import pytest

from gen.model.containers import Claim, naming_keys
from gen.model.naming import container_name
from gen.model.plan import Observed, plan

P = "shop"


def svc(name, *, image="sha256:a", env=None, replicas=1, update="start-first", ports=(), depends_on=()):
    return {"name": name, "image": "img", "image_id": image, "command": None, "entrypoint": None,
            "env": env or {}, "ports": [{"host_ip": "127.0.0.1", "host_port": p, "container_port": 80,
                                         "protocol": "tcp"} for p in ports],
            "volumes": [], "depends_on": list(depends_on), "replicas": replicas, "update": update,
            "stop_grace_ms": 0, "restart": "no", "healthcheck": None}


def desired(*objs):
    # Distinct hashes per distinct definition, like the real compile step.
    return {o["name"]: (f"h-{o['name']}-{o['image_id']}-{sorted(o['env'].items())}-{o['replicas']}-{o['ports']}", o)
            for o in objs}


def running(services, name, *, state="running", replica=None, ports=(), cid=None, image=None):
    h, obj = services[name]
    replica = replica or 1
    peer = obj.get("network_mode", ":").partition(":")[2]
    key = naming_keys(services)[peer] if peer in services else ""
    return Observed(id=cid or f"id-{name}-{replica}", name=container_name(P, name, h, replica, obj["replicas"], key),
                    service=name, hash=h, replica=replica, state=state, image_id=image or obj["image_id"],
                    host_ports=frozenset(("127.0.0.1", p, "tcp") for p in ports))


def old(name, h="old", *, state="running", ports=(), cid=None):
    return Observed(id=cid or f"old-{name}", name=f"{P}-{name}-{h[:12]}", service=name, hash=h, replica=1,
                    state=state, host_ports=frozenset(("127.0.0.1", p, "tcp") for p in ports))


def actions(p):
    return {s.service: (s.action, s.reason) for s in p.steps}


ONE = desired(svc("web"))
TWO = desired(svc("db"), svc("web", depends_on=["db"]))


@pytest.mark.parametrize("services, observed, expected", [
    (ONE, [], {"web": ("create", "missing")}),
    (ONE, [running(ONE, "web")], {"web": ("keep", "unchanged")}),
    (ONE, [running(ONE, "web", state="exited")], {"web": ("repair", "1 container(s) not running")}),
    (ONE, [old("web")], {"web": ("replace", "changed")}),
    (ONE, [running(ONE, "web"), old("gone")], {"web": ("keep", "unchanged"), "gone": ("remove", "not in the generation")}),
    (ONE, [running(ONE, "web", image="sha256:other")], {"web": ("repair", "container changed outside gen, 1 of 1 container(s) missing")}),
    ({}, [old("web")], {"web": ("remove", "not in the generation")}),
    ({}, [], {}),
], ids=["first", "unchanged", "exited", "changed", "extra", "tampered", "empty-spec", "nothing"])
def test_actions_and_reasons(services, observed, expected):
    assert actions(plan(P, services, observed)) == expected


def test_reason_names_the_changed_fields_when_the_old_object_is_known():
    new = desired(svc("web", env={"A": "2"}))
    p = plan(P, new, [old("web", "h-old")], known={"h-old": svc("web", env={"A": "1"})})
    assert p.step("web").reason == "env changed"
    p = plan(P, new, [old("web", "h-old")], known={"h-old": svc("web", image="sha256:b", env={"A": "2"})})
    assert p.step("web").reason == "image changed"


def test_noop_only_when_everything_is_kept():
    assert plan(P, ONE, [running(ONE, "web")]).is_noop
    assert not plan(P, ONE, []).is_noop
    assert not plan(P, ONE, [running(ONE, "web"), old("gone")]).is_noop


def test_levels_follow_dependencies_and_only_changed_services_start():
    p = plan(P, TWO, [running(TWO, "db")])
    assert p.levels == (("db",), ("web",))
    assert [[s.service for s in level] for level in p.by_level()] == [["web"]]


def test_replicas_create_one_container_each_with_distinct_names():
    s = desired(svc("pool", replicas=3))
    p = plan(P, s, [running(s, "pool", replica=2)])
    step = p.step("pool")
    assert step.action == "repair" and [c.replica for c in step.create] == [1, 3]
    assert len({c.name for c in step.create}) == 2


def test_stop_first_stops_the_old_containers_before_starting():
    s = desired(svc("web", update="stop-first"))
    step = plan(P, s, [old("web")]).step("web")
    assert step.stop_before == ("old-web",) and step.remove_after == ("old-web",)


def test_start_first_leaves_old_running_until_commit():
    step = plan(P, ONE, [old("web")]).step("web")
    assert step.strategy == "start-first" and step.stop_before == () and step.remove_after == ("old-web",)


@pytest.mark.parametrize("old_ports, new_ports, forced", [
    ((8080,), (8080,), True),
    ((8080,), (8081,), False),
    ((), (8080,), False),
])
def test_shared_host_port_forces_stop_first(old_ports, new_ports, forced):
    s = desired(svc("web", ports=new_ports))
    step = plan(P, s, [old("web", ports=old_ports)]).step("web")
    assert (step.strategy == "stop-first") is forced
    assert (step.stop_before == ("old-web",)) is forced


def test_port_moving_to_another_service_stops_its_old_holder_first():
    s = desired(svc("front", ports=[8080]))
    p = plan(P, s, [old("web", ports=(8080,))])
    assert p.step("front").stop_before == ("old-web",)
    assert p.step("web").action == "remove"


def test_stopped_old_container_holds_no_port():
    s = desired(svc("web", ports=[8080]))
    step = plan(P, s, [old("web", state="exited")]).step("web")
    assert step.stop_before == () and step.strategy == "start-first"


def test_plan_is_deterministic_whatever_the_observation_order():
    s = desired(svc("a"), svc("b"), svc("c", depends_on=["a"]))
    obs = [old("a"), old("b"), old("x"), old("y")]
    assert plan(P, s, obs) == plan(P, s, list(reversed(obs)))


RW = {"type": "volume", "source": "data", "target": "/data", "read_only": False}
RO = {**RW, "read_only": True}


@pytest.mark.parametrize("update, volumes, old_state, note", [
    ("stop-first", [RW], "running", "; stop-first: old and new must not both write its volumes"),
    ("start-first", [RW], "running", "; start-first as asked, although old and new both write its volumes for a moment"),
    ("start-first", [RO], "running", ""),            # readers may overlap
    ("start-first", [], "running", ""),
    ("stop-first", [RW], "exited", ""),              # nothing old runs: no overlap to speak of
])
def test_the_plan_says_why_the_update_order_matters_for_data(update, volumes, old_state, note):
    services = desired({**svc("db", update=update), "volumes": volumes})
    p = plan(P, services, [old("db", state=old_state)], {})
    assert p.step("db").reason == "changed" + note
    assert p.step("db").stop_before == (("old-db",) if update == "stop-first" and old_state == "running" else ())


def bind(source, read_only=False):
    return {"type": "bind", "source": source, "target": "/x", "read_only": read_only}


@pytest.mark.parametrize("mounts, notes", [
    ([bind("/var/run/docker.sock")], ["service web mounts /var/run/docker.sock (read-write): it can run any "
                                      "container, and so control this host"]),
    ([bind("/run/docker.sock", True)], ["service web mounts /run/docker.sock (read-only): it can run any "
                                        "container, and so control this host"]),
    ([bind("/", True)], ["service web mounts / (read-only): the host's whole file system"]),
    ([bind("/etc"), bind("/srv/www")], ["service web mounts /etc (read-write): the host's configuration"]),
    ([bind("/srv/www"), bind("/etc/nginx/nginx.conf", True)], []),       # ordinary host files: no note
])
def test_the_plan_says_when_a_container_gets_control_of_the_host(mounts, notes):
    services = desired({**svc("web"), "volumes": mounts})
    assert list(plan(P, services, [], {}).notes) == notes
    unchanged = plan(P, services, [running(services, "web")], {})
    assert unchanged.notes == (), "said when the service starts, not on every plan"


@pytest.mark.parametrize("update", ["start-first", "stop-first"])
@pytest.mark.parametrize("state, stopped_first", [("created", True), ("restarting", True), ("paused", True),
                                                  ("exited", False), ("dead", False)])
def test_a_leftover_that_may_still_start_is_stopped_before_anything_new_starts(update, state, stopped_first):
    """A killed switch may have sent a start Docker still carries out: recovery must not race it for a port."""
    services = desired(svc("front", update=update, ports=[8080]))
    p = plan(P, services, [old("front", h="new-from-killed-switch", state=state)], {})
    assert ("old-front" in p.step("front").quiesce) == stopped_first


# -- jobs (issue 12): run to completion, once per definition ------------------------------------------
def job(name, **kw):
    return {**svc(name, **kw), "job": True}


JOB = desired(job("migrate"), svc("web", depends_on=["migrate"]))


@pytest.mark.parametrize("state, exit_code, expected", [
    ("exited", 0, ("keep", "completed")),
    ("exited", 3, ("repair", "job exited with code 3: it runs again")),
    ("running", None, ("repair", "job still running: waited for")),
    ("created", None, ("repair", "1 container(s) not running")),
])
def test_a_job_of_the_same_definition_runs_again_only_when_it_did_not_complete(state, exit_code, expected):
    c = Observed(**{**running(JOB, "migrate", state=state).__dict__, "exit_code": exit_code})
    p = plan(P, JOB, [c, running(JOB, "web")])
    assert (p.step("migrate").action, p.step("migrate").reason) == expected
    assert p.step("migrate").start == (() if expected[0] == "keep" else (c.id,))
    assert p.step("migrate").remove_after == (), "its own container is never removed"
    assert p.step("web").action == "keep"


def test_a_changed_job_runs_anew_and_its_old_container_is_removed_after_the_commit_never_stopped():
    old_job = Observed(**{**old("migrate").__dict__, "state": "exited", "exit_code": 0})
    step = plan(P, desired(job("migrate", update="stop-first")), [old_job]).step("migrate")
    assert step.action == "replace" and len(step.create) == 1
    assert step.stop_before == () and step.quiesce == () and step.remove_after == ("old-migrate",)


def test_a_completed_job_is_no_drift_and_keeps_a_switch_a_noop():
    done = Observed(**{**running(JOB, "migrate", state="exited").__dict__, "exit_code": 0})
    assert plan(P, JOB, [done, running(JOB, "web")]).is_noop


# -- container_name: one name, old and new never side by side ----------------------------------------
def named(name="db", cn="shop-db", **kw):
    return {**svc(name, **kw), "container_name": cn}


NAMED = desired(named())


def test_a_first_named_container_is_created_under_its_name():
    step = plan(P, NAMED, []).step("db")
    assert [c.name for c in step.create] == ["shop-db"] and step.claims == ()


def test_a_named_service_is_replaced_stop_first_with_the_old_renamed_aside():
    holder = Observed(**{**old("db").__dict__, "name": "shop-db"})
    step = plan(P, NAMED, [holder]).step("db")
    (new,) = step.create
    assert new.name == container_name(P, "db", NAMED["db"][0], 1, 1), "created under its own name first"
    assert step.claims == (Claim("shop-db", new.name, new.name, "old-db"),)
    assert step.strategy == "stop-first" and step.stop_before == ("old-db",)
    assert "cannot both be named shop-db" in step.reason


def test_a_running_named_container_holding_its_name_is_kept():
    h = NAMED["db"][0]
    mine = Observed(id="mine", name="shop-db", service="db", hash=h, replica=1, state="running", image_id="sha256:a")
    assert plan(P, NAMED, [mine]).is_noop


@pytest.mark.parametrize("name, holder", [("own", False), ("shop-db-gen-old-abc", True), ("own", True)],
                         ids=["own-name", "aside-while-old-holds-it", "own-name-while-old-holds-it"])
def test_a_named_container_under_another_name_takes_its_name_back(name, holder):
    """Whatever rename state a kill left, the current generation's container ends holding the name."""
    h = NAMED["db"][0]
    mine = Observed(id="mine", name=container_name(P, "db", h, 1, 1) if name == "own" else name, service="db",
                    hash=h, replica=1, state="exited", image_id="sha256:a")
    observed = [mine] + ([Observed(**{**old("db").__dict__, "name": "shop-db"})] if holder else [])
    step = plan(P, NAMED, observed).step("db")
    assert step.action == ("replace" if holder else "repair") and "must hold its name shop-db" in step.reason
    assert step.create == () and step.start == ("mine",)
    assert step.claims == (Claim("shop-db", "mine", mine.name, "old-db" if holder else ""),)
    assert step.stop_before == (("old-db",) if holder else ())


# -- network_mode service:NAME: joined by id, so recreated with NAME ---------------------------------------
def sharing(name="vpnapp", peer="vpn", **kw):
    return {**svc(name, depends_on=[peer], **kw), "network_mode": f"service:{peer}"}


def test_a_service_sharing_a_network_stack_is_replaced_when_its_peer_changes():
    before = desired(svc("vpn"), sharing())
    after = desired(svc("vpn", env={"V": "2"}), sharing())
    assert after["vpnapp"][0] == before["vpnapp"][0], "its own definition did not change"
    p = plan(P, after, [running(before, "vpn"), Observed(id="app1", name=plan(P, before, []).step("vpnapp").create[0].name,
                                                         service="vpnapp", hash=before["vpnapp"][0], replica=1,
                                                         state="running", image_id="sha256:a")])
    assert p.step("vpn").action == "replace"
    step = p.step("vpnapp")
    assert step.action == "replace" and step.reason.startswith("shares the network stack of vpn")
    assert step.create[0].name != plan(P, before, []).step("vpnapp").create[0].name
    assert step.remove_after == ("app1",)
    assert p.levels == (("vpn",), ("vpnapp",))


def test_a_sharing_service_restarts_after_its_peer_restarts():
    services = desired(svc("vpn"), sharing())
    p = plan(P, services, [running(services, "vpn", state="exited"), running(services, "vpnapp")])
    step = p.step("vpnapp")
    assert step.start == ("id-vpnapp-1",) and step.stop_before == ("id-vpnapp-1",)
    assert "which restarts" in step.reason


def test_a_sharing_service_is_unchanged_when_its_peer_is():
    services = desired(svc("vpn"), sharing())
    assert plan(P, services, [running(services, "vpn"), running(services, "vpnapp")]).is_noop
