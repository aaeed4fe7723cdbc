"""Warm rollback on the real engine (gen.state.warm): the containers a switch replaces are kept stopped,
a rollback starts them again (the same container, not a new one), gc removes them with their
generations, status expects them, recovery treats them like any other container."""
from __future__ import annotations

import json

from tests.conftest import app, free_port, http_get, sleeper

FAST = ("--stable-for", "0.2")


def states(d) -> dict[str, tuple[str, str]]:
    """container id -> (its gen.hash, its status), of the deployment's profile."""
    return {c.id: (c.labels["gen.hash"], c.status) for c in d.containers()}


def switch(d, body: str) -> None:
    run = d.gen("switch", d.spec(body), *FAST)
    assert run.code == 0, run.err


def web_on_back(port: int, page: str, networks: str) -> str:
    """busybox httpd serving `page` on a host port, joined to the network `back` as `networks` says."""
    return f"""
[services.web]
image = "{{image}}"
command = ["sh", "-c", "mkdir -p /w && echo {page} > /w/index.html && exec httpd -f -p 8080 -h /w"]
ports = ["127.0.0.1:{port}:8080"]
stop_grace = "0s"
networks = {networks}

[networks.back]
"""


def app_id(d, status: str) -> str:
    ids = [c.id for c in d.containers() if c.labels["gen.service"] == "app" and c.status == status]
    assert len(ids) == 1, f"{status} app containers: {ids}"
    return ids[0]


def test_a_switch_keeps_the_replaced_container_stopped_and_rollback_starts_it(warm_deployment):
    d = warm_deployment
    switch(d, app("1"))
    first = app_id(d, "running")
    db = {c.id for c in d.containers() if c.labels["gen.service"] == "db"}
    switch(d, app("2"))
    assert app_id(d, "exited") == first, "the replaced container is kept, stopped"
    status = json.loads(d.gen("status", "-p", d.profile, "--json").out)
    assert status["ok"] and [c["id"] for c in status["warm"]] == [first[:12]]
    assert d.gen("status", "-p", d.profile).code == 0
    second = app_id(d, "running")

    rolled = d.gen("rollback", "-p", d.profile, *FAST)
    assert rolled.code == 0, rolled.err
    assert app_id(d, "running") == first, "the rollback started the kept container instead of creating one"
    assert second not in states(d), "generation 2 is above the current one: not warm, removed"
    assert {c.id for c in d.containers() if c.labels["gen.service"] == "db"} == db, "unchanged service untouched"
    assert d.gen("status", "-p", d.profile).code == 0


def test_warm_zero_removes_replaced_containers(warm_deployment):
    d = warm_deployment
    run = d.gen("warm", "-p", d.profile, "0")      # set before the first switch, as `gen closure on`
    assert run.code == 0 and "off" in run.out
    assert d.gen("warm", "-p", d.profile, "-1").code != 0
    switch(d, app("1"))
    first = app_id(d, "running")
    switch(d, app("2"))
    assert first not in states(d)
    assert json.loads(d.gen("warm", "-p", d.profile, "--json").out)["warm"] == 0
    assert d.gen("rollback", "-p", d.profile, *FAST).code == 0
    assert app_id(d, "running") != first, "cold: a new container"


def test_warm_keeps_n_generations_back_and_no_more(warm_deployment):
    d = warm_deployment
    switch(d, app("1"))
    assert d.gen("warm", "-p", d.profile, "2").code == 0
    switch(d, app("2"))
    switch(d, app("3"))
    hashes = {h for h, status in states(d).values() if status == "exited"}
    assert len(hashes) == 2, "app of generations 1 and 2 kept"
    switch(d, app("4"))
    exited = [h for h, status in states(d).values() if status == "exited"]
    assert len(exited) == 2 and len(set(exited)) == 2, "generation 1's container removed: only 2 and 3 stay"
    assert d.gen("rollback", "-p", d.profile, "--to", "2", *FAST).code == 0
    assert d.gen("status", "-p", d.profile).code == 0


def test_gc_removes_warm_containers_with_their_generations_never_volumes(warm_deployment):
    d = warm_deployment
    body = lambda v: app(v).replace('command = ["sleep", "3600"]\nstop_grace = "0s"\nenv',
                                    'command = ["sleep", "3600"]\nstop_grace = "0s"\nvolumes = ["data:/data"]\nenv', 1) \
        + "\n[volumes.data]\n"
    switch(d, body("1"))
    switch(d, body("2"))
    kept = app_id(d, "exited")
    dry = json.loads(d.gen("gc", "-p", d.profile, "--keep", "1", "--dry-run", "--json").out)
    assert len(dry["containers_removed"]) == 1 and kept in states(d), "a dry run removes nothing"
    run = d.gen("gc", "-p", d.profile, "--keep", "1")
    assert run.code == 0 and "removed 1 stopped container(s)" in run.out, run.out
    assert kept not in states(d)
    assert d.docker.volumes.get(f"{d.profile}_data"), "the volume stays"
    assert d.gen("status", "-p", d.profile).code == 0


def test_a_warm_container_started_by_hand_is_drift_and_recover_stops_it(warm_deployment):
    d = warm_deployment
    switch(d, app("1"))
    switch(d, app("2"))
    kept = app_id(d, "exited")
    d.docker.containers.get(kept).start()
    status = json.loads(d.gen("status", "-p", d.profile, "--json").out)
    assert not status["ok"] and [c["id"] for c in status["extra"]] == [kept[:12]]
    assert d.gen("status", "-p", d.profile).code == 3
    assert d.gen("recover", "-p", d.profile, *FAST).code == 0
    assert states(d)[kept][1] == "exited", "stopped again and kept, not removed"
    assert d.gen("status", "-p", d.profile).code == 0


def test_host_port_and_a_network_the_next_generation_does_not_use(warm_deployment):
    """The kept container holds no port while stopped; its network stays while it is kept (Docker cannot
    start a container again on a network made anew: it knows the network by the old one's id)."""
    d = warm_deployment
    port = free_port()
    web = lambda v: web_on_back(port, v, '["back"]')
    switch(d, web("one"))
    switch(d, web("two"))
    assert http_get(port) == "two"
    assert d.gen("switch", d.spec(sleeper("other")), *FAST).code == 0     # generation 3 does not use `back`
    assert d.docker.networks.list(names=[f"{d.profile}_back"]), "kept: generation 2 is warm"
    assert d.gen("rollback", "-p", d.profile, *FAST).code == 0
    assert http_get(port) == "two", "the kept container started again, on its network"
    assert d.gen("switch", d.spec(sleeper("other")), *FAST).code == 0    # generation 3 again; 2 is warm
    assert d.gen("switch", d.spec(sleeper("other2")), *FAST).code == 0   # generation 4; 3 is warm, 2 is not
    assert not [c for c in d.containers() if c.labels["gen.service"] == "web"]
    assert not d.docker.networks.list(names=[f"{d.profile}_back"]), "retired once no kept container uses it"


def test_a_jobs_container_is_not_kept(warm_deployment):
    d = warm_deployment
    job = lambda v: f"""
[services.migrate]
image = "{{image}}"
command = ["sh", "-c", "echo {v}"]
job = true
""" + sleeper("app", 'depends_on = { migrate = "completed" }')
    switch(d, job("1"))
    switch(d, job("2"))
    jobs = [c for c in d.containers() if c.labels["gen.service"] == "migrate"]
    assert len(jobs) == 1, "the old job's container is removed: a rollback runs the old job again"


def test_container_name_and_a_shared_network_stack_roll_back_warm(warm_deployment):
    """The kept container takes its user name back (the current holder is stopped and moved aside) and the
    container sharing its network stack (same definition, so not kept: it joined the newer peer) is
    created again inside it."""
    d = warm_deployment
    body = f"""
[services.vpn]
image = "{{image}}"
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/etc"]
stop_grace = "0s"
container_name = "{d.profile}-vpn"
env = {{ V = "%s" }}

[services.app]
image = "{{image}}"
command = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:8080/hostname >/dev/null && exec sleep 3600; sleep 0.2; done; exit 1"]
network_mode = "service:vpn"
restart = "no"
stop_grace = "0s"
"""
    switch(d, body % "1")
    first = {c.labels["gen.service"]: c.id for c in d.containers() if c.status == "running"}
    switch(d, body % "2")
    assert {c.id for c in d.containers() if c.status == "exited"} == {first["vpn"]}
    assert d.gen("rollback", "-p", d.profile, *FAST).code == 0
    now = {c.labels["gen.service"]: c for c in d.containers() if c.status == "running"}
    assert now["vpn"].id == first["vpn"], "the kept container started again"
    assert now["vpn"].name == f"{d.profile}-vpn"
    assert now["app"].attrs["HostConfig"]["NetworkMode"] == f"container:{first['vpn']}"
    assert now["app"].exec_run(["wget", "-q", "-O-", "http://127.0.0.1:8080/hostname"]).exit_code == 0
    assert d.gen("status", "-p", d.profile).code == 0
    switch(d, body % "3")        # forward again: the names move as in any switch
    assert d.gen("status", "-p", d.profile).code == 0


def test_a_kept_container_whose_network_was_pruned_starts_again(warm_deployment):
    """`docker network prune` removes the networks of stopped containers. gen makes the network again
    before the rollback starts the kept container, which Docker then refuses ("network <old id> not
    found") until it has left and joined it again: gen does that, so the rollback is never stuck."""
    d = warm_deployment
    port = free_port()
    web = lambda v: web_on_back(port, v, '{ back = { aliases = ["site"] } }')
    switch(d, web("one"))
    kept = app_id_of(d, "web")
    switch(d, sleeper("other"))
    d.docker.networks.get(f"{d.profile}_back").remove()        # what `docker network prune` does
    assert d.gen("rollback", "-p", d.profile, *FAST).code == 0
    assert http_get(port) == "one"
    running = d.docker.containers.get(kept)
    assert running.status == "running", "the kept container itself started again"
    assert "site" in running.attrs["NetworkSettings"]["Networks"][f"{d.profile}_back"]["Aliases"]


def app_id_of(d, service: str) -> str:
    [c] = [c for c in d.containers() if c.labels["gen.service"] == service and c.status == "running"]
    return c.id


def test_lowering_warm_removes_what_it_no_longer_keeps_at_once(warm_deployment):
    """`gen warm 0` after two switches: the kept container and the network only it joined go now (a dry run
    first says so and removes nothing), `gen status` finds no drift, and the current generation runs on."""
    d = warm_deployment
    port = free_port()
    switch(d, web_on_back(port, "one", '["back"]'))
    kept = app_id_of(d, "web")
    switch(d, sleeper("other"))                                 # generation 2 does not use `back`
    assert states(d)[kept][1] == "exited" and d.docker.networks.list(names=[f"{d.profile}_back"])

    dry = d.gen("warm", "-p", d.profile, "0", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    kept_name = d.docker.containers.get(kept).name
    assert json.loads(dry.out) == {"profile": d.profile, "warm": 1, "containers_removed": [kept_name],
                                   "networks_removed": [f"{d.profile}_back"], "warnings": [], "dry_run": True}
    assert kept in states(d) and d.docker.networks.list(names=[f"{d.profile}_back"]), "a dry run removes nothing"
    assert json.loads(d.gen("warm", "-p", d.profile, "--json").out)["warm"] == 1, "nor changes the setting"

    run = d.gen("warm", "-p", d.profile, "0")
    assert run.code == 0 and "removed 1 kept container(s)" in run.err and "warm rollback off" in run.out, run.err
    assert kept not in states(d), "removed now, not at the next switch"
    assert not d.docker.networks.list(names=[f"{d.profile}_back"]), "with the network only it joined"
    assert [s for _, s in states(d).values()] == ["running"]
    assert d.gen("status", "-p", d.profile).code == 0, "nothing left that status would call drift"
    assert d.gen("rollback", "-p", d.profile, *FAST).code == 0, "a cold rollback creates it again"
    assert http_get(port) == "one"


def test_a_network_no_generation_names_any_more_is_retired_by_the_next_switch(warm_deployment):
    """Networks are retired from what the engine has, by label, not from the manifests being left: one
    that no manifest names any more (left by a gen killed before it retired it, or by an older gen) goes
    at the next activation; one the user made, unlabelled, is never touched."""
    d = warm_deployment
    switch(d, sleeper("app"))
    stray = d.docker.networks.create(f"{d.profile}_stray", labels={"gen.profile": d.profile})
    users = d.docker.networks.create(f"{d.profile}_users")
    try:
        switch(d, sleeper("app", 'env = { V = "2" }'))
        assert not d.docker.networks.list(names=[f"{d.profile}_stray"]), "the profile's, unused: retired"
        assert d.docker.networks.list(names=[f"{d.profile}_users"]), "not gen's: left alone"
        assert d.docker.networks.list(names=[f"{d.profile}_default"]), "the current generation's: kept"
    finally:
        for net in (stray, users):
            try:
                net.remove()
            except Exception:       # already retired
                pass
