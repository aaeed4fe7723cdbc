"""End-to-end scenarios on the real engine: switch, change, failure and undo, rollback, replicas,
volumes, no-op. Each test deploys its own profile and removes everything it made."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port, http_get, sleeper

WEB = """
[services.web]
image = "{{image}}"
command = ["sh", "-c", "mkdir -p /www && echo \\"$GREETING\\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
env = {{ GREETING = "{greeting}" }}
ports = ["127.0.0.1:{port}:8080"]
stop_grace = "0s"
{extra}
[services.web.healthcheck]
test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
interval = "200ms"
retries = 3
"""

def web(port: int, greeting: str = "hello", extra: str = "") -> str:
    return WEB.format(port=port, greeting=greeting, extra=extra)


def three_services(port: int, greeting: str = "hello") -> str:
    return web(port, greeting, 'depends_on = ["db"]') + sleeper("db") + sleeper("worker", 'depends_on = ["web"]')


def generations(d) -> list[dict]:
    r = d.gen("list", "-p", d.profile, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def current(d) -> int:
    return next(g["generation"] for g in generations(d) if g["current"])


def test_first_deploy_runs_every_service_healthy_with_labels_and_names(deployment):
    d, port = deployment, free_port()
    spec = d.spec(three_services(port))
    r = d.gen("switch", spec)
    assert r.code == 0, r.err
    assert http_get(port) == "hello"
    build = d.gen("build", spec)
    manifest = build.last_line
    assert len(manifest) == 64 and r.out.strip().endswith(f"({manifest[:12]})")
    containers = d.containers()
    assert sorted(c.labels["gen.service"] for c in containers) == ["db", "web", "worker"]
    for c in containers:
        assert c.status == "running"
        assert c.name == f"{d.profile}-{c.labels['gen.service']}-{c.labels['gen.hash'][:12]}"
        assert c.labels["gen.manifest"] == manifest
    started = {c.labels["gen.service"]: c.attrs["State"]["StartedAt"] for c in containers}
    assert started["db"] < started["web"] < started["worker"], "dependency order"
    assert generations(d) == [{"generation": 1, "hash": manifest, "created": generations(d)[0]["created"],
                               "current": True, "services": 3}]


def test_changing_one_of_three_services_recreates_only_it(deployment):
    d, port = deployment, free_port()
    assert d.gen("switch", d.spec(three_services(port, "one"))).code == 0
    before = d.ids_by_service()
    r = d.gen("switch", d.spec(three_services(port, "two")))
    assert r.code == 0, r.err
    after = d.ids_by_service()
    assert after["db"] == before["db"] and after["worker"] == before["worker"]
    assert after["web"].isdisjoint(before["web"]) and len(after["web"]) == 1
    assert http_get(port) == "two"
    assert [g["generation"] for g in generations(d)] == [1, 2] and current(d) == 2


def test_unhealthy_generation_is_undone_and_the_old_one_keeps_serving(deployment):
    d, port = deployment, free_port()
    assert d.gen("switch", d.spec(three_services(port, "old"))).code == 0
    before = d.ids_by_service()
    broken = three_services(port, "new").replace('"wget", "-q", "-O-", "http://127.0.0.1:8080/"', '"false"')
    r = d.gen("switch", d.spec(broken), "--timeout", "20")
    assert r.code == 2
    assert "service web" in r.err and "unhealthy" in r.err and "restored" in r.err
    assert "Traceback" not in r.err
    assert http_get(port) == "old"
    assert d.ids_by_service() == before, "no leftover containers, old ones back"
    assert all(c.status == "running" for c in d.containers())
    assert current(d) == 1 and len(generations(d)) == 1


def test_crashing_container_is_reported_with_exit_code_and_logs(deployment):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("app"))).code == 0
    before = d.ids_by_service()
    crash = sleeper("app").replace('["sleep", "3600"]', '["sh", "-c", "echo boom-from-app; exit 3"]') \
        .replace('stop_grace = "0s"', 'stop_grace = "0s"\nrestart = "no"')
    r = d.gen("switch", d.spec(crash), "--timeout", "20")
    assert r.code == 2
    assert "service app" in r.err and "exited with code 3" in r.err and "boom-from-app" in r.err
    assert d.ids_by_service() == before


def test_rollback_and_rollback_to(deployment):
    d, port = deployment, free_port()
    for greeting in ("v1", "v2", "v3"):
        assert d.gen("switch", d.spec(web(port, greeting))).code == 0
    r = d.gen("rollback", "-p", d.profile)
    assert r.code == 0, r.err
    assert http_get(port) == "v2" and current(d) == 2
    assert d.gen("rollback", "-p", d.profile, "--to", "1").code == 0
    assert http_get(port) == "v1" and current(d) == 1
    assert [g["generation"] for g in generations(d)] == [1, 2, 3], "rollback creates no generation"
    r = d.gen("rollback", "-p", d.profile)
    assert r.code == 1 and "no generation older than 1" in r.err
    assert d.gen("rollback", "-p", d.profile, "--to", "7").code == 1
    # Switching to the newest manifest again reuses its number (Nix's rule).
    assert d.gen("switch", d.spec(web(port, "v3"))).code == 0
    assert current(d) == 3 and len(generations(d)) == 3
    assert len(d.containers()) == 1


def test_replicas_get_one_container_each_and_scale(deployment):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("pool", "replicas = 3"))).code == 0
    names = sorted(c.name for c in d.containers())
    assert len(names) == 3 and [n[-2:] for n in names] == ["-1", "-2", "-3"]
    assert d.gen("switch", d.spec(sleeper("pool", "replicas = 2"))).code == 0
    assert len(d.containers()) == 2 and all(c.status == "running" for c in d.containers())


def test_named_volume_data_survives_switch_rollback_switch(deployment):
    d = deployment
    body = """
[services.db]
image = "{{image}}"
command = ["sh", "-c", "echo {tag} >> /data/log && exec sleep 3600"]
volumes = ["data:/data"]
stop_grace = "0s"
[volumes.data]
"""
    for tag in ("a", "b"):
        assert d.gen("switch", d.spec(body.format(tag=tag))).code == 0
    assert d.gen("rollback", "-p", d.profile).code == 0
    assert d.gen("switch", d.spec(body.format(tag="c"))).code == 0
    log = d.docker.containers.run(d.image, ["cat", "/data/log"], remove=True,
                                  volumes={f"{d.profile}_data": {"bind": "/data", "mode": "ro"}})
    assert log.decode().split() == ["a", "b", "a", "c"]


def test_noop_switch_touches_nothing(deployment):
    d, port = deployment, free_port()
    spec = d.spec(three_services(port))
    assert d.gen("switch", spec).code == 0
    before = {c.id: c.attrs["State"]["StartedAt"] for c in d.containers()}
    r = d.gen("switch", spec)
    assert r.code == 0 and "already current" in r.out
    assert {c.id: c.attrs["State"]["StartedAt"] for c in d.containers()} == before
    assert len(generations(d)) == 1


def test_empty_spec_removes_containers_keeps_volumes_and_rollback_restores(deployment):
    d = deployment
    body = sleeper("db", 'volumes = ["data:/data"]') + "\n[volumes.data]\n"
    assert d.gen("switch", d.spec(body)).code == 0
    assert d.gen("switch", d.spec("")).code == 0
    assert d.containers() == []
    assert d.docker.volumes.get(f"{d.profile}_data")
    assert d.gen("rollback", "-p", d.profile).code == 0
    assert [c.status for c in d.containers()] == ["running"]


def test_shared_host_port_forces_stop_first_and_port_moves_between_services(deployment):
    d, port = deployment, free_port()
    assert d.gen("switch", d.spec(web(port, "first"))).code == 0
    plan = d.gen("switch", d.spec(web(port, "second")), "--dry-run")
    assert plan.code == 0 and "stop-first" in plan.out
    assert d.gen("switch", d.spec(web(port, "second"))).code == 0
    assert http_get(port) == "second"
    moved = web(port, "third").replace("[services.web]", "[services.front]") \
        .replace("[services.web.healthcheck]", "[services.front.healthcheck]")
    r = d.gen("switch", d.spec(moved))
    assert r.code == 0, r.err
    assert http_get(port) == "third"
    assert [c.labels["gen.service"] for c in d.containers()] == ["front"]


def test_start_first_keeps_the_old_container_until_the_new_one_is_healthy(deployment):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("app", 'env = { V = "1" }'))).code == 0
    r = d.gen("switch", d.spec(sleeper("app", 'env = { V = "2" }')))
    assert r.code == 0
    # The progress lines show the new container started before the old one was removed.
    phases = [line.split()[1] for line in r.err.splitlines() if line.strip().startswith("app ")]
    assert phases.index("starting") < phases.index("removing")
    assert "stopping" not in phases


def test_a_missing_bind_source_is_created_as_compose_does(deployment):
    d = deployment
    source = d.dir / "made-by-the-engine"
    r = d.gen("switch", d.spec(sleeper("app", f'volumes = ["{source}:/x"]')))
    assert r.code == 0, r.err
    assert source.is_dir(), "a short-syntax bind creates its missing source (create_host_path)"


def test_missing_bind_source_fails_in_prepare_and_changes_nothing(deployment):
    """create_host_path = false: a missing source is refused at build (exit 1), and when it disappears
    between build and switch, in prepare, before anything running is touched (exit 2)."""
    d = deployment
    assert d.gen("switch", d.spec(sleeper("app"))).code == 0
    before = d.ids_by_service()
    source = d.dir / "does-not-exist"
    bad = sleeper("app", f'volumes = [{{ type = "bind", source = "{source}", target = "/x", '
                         'create_host_path = false }]')
    r = d.gen("switch", d.spec(bad))
    assert r.code == 1 and "does-not-exist" in r.err and "create_host_path" in r.err, r.err
    assert d.ids_by_service() == before and current(d) == 1
    source.mkdir()
    built = d.gen("build", d.spec(bad))
    assert built.code == 0, built.err
    source.rmdir()
    r = d.gen("switch", built.out.strip(), "-p", d.profile)
    assert r.code == 2 and "does-not-exist" in r.err, r.err
    assert d.ids_by_service() == before and current(d) == 1 and not source.exists()


def test_dry_run_prints_the_plan_and_changes_nothing(deployment):
    d, port = deployment, free_port()
    assert d.gen("switch", d.spec(three_services(port, "one"))).code == 0
    before_ids = d.ids_by_service()
    objects = sorted(p.name for p in (d.state / "store").rglob("*") if p.is_file())
    r = d.gen("switch", d.spec(three_services(port, "two")), "--dry-run")
    assert r.code == 0 and "dry run" in r.out
    rows = {line.split()[1]: line.split()[0] for line in r.out.splitlines() if line.startswith("  ")}
    assert rows == {"db": "keep", "web": "replace", "worker": "keep"}
    assert "env changed" in r.out and "stop-first" in r.out
    assert d.ids_by_service() == before_ids
    assert sorted(p.name for p in (d.state / "store").rglob("*") if p.is_file()) == objects
    assert len(generations(d)) == 1 and http_get(port) == "one"
    assert d.gen("rollback", "-p", d.profile, "--dry-run").code == 1, "nothing older to roll back to"


def test_stability_window_catches_a_crash_soon_after_start(deployment):
    d = deployment
    late_crash = sleeper("app").replace('["sleep", "3600"]', '["sh", "-c", "sleep 0.5; exit 4"]') \
        .replace('stop_grace = "0s"', 'stop_grace = "0s"\nrestart = "no"')
    r = d.gen("switch", d.spec(late_crash))
    assert r.code == 2 and "exited with code 4" in r.err, "the default 1 s window sees it die"
    assert d.containers() == []
    r = d.gen("switch", d.spec(late_crash), "--stable-for", "0")
    assert r.code == 0, "with no window, running once is enough (and it dies later)"


def test_unwritable_state_directory_fails_before_any_container_is_touched(deployment):
    """chattr +i makes the profile directory unwritable even for root (as a full or read-only disk would)."""
    import subprocess
    d, port = deployment, free_port()
    assert d.gen("switch", d.spec(web(port, "old"))).code == 0
    before = d.ids_by_service()
    profile_dir = d.state / "profiles" / d.profile
    subprocess.run(["chattr", "+i", str(profile_dir)], check=True)
    try:
        r = d.gen("switch", d.spec(web(port, "new")))
    finally:
        subprocess.run(["chattr", "-i", str(profile_dir)], check=True)
    assert r.code == 1 and "Traceback" not in r.err
    assert str(profile_dir) in r.err and "not permitted" in r.err.lower()
    assert d.ids_by_service() == before and http_get(port) == "old"
    assert current(d) == 1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_a_switch_undoes_it(deployment, signum):
    d, port = deployment, free_port()
    assert d.gen("switch", d.spec(web(port, "old"))).code == 0
    before = d.ids_by_service()
    never_healthy = web(port, "new").replace('"wget", "-q", "-O-", "http://127.0.0.1:8080/"', '"sleep", "30"')
    proc = subprocess.Popen([sys.executable, "-m", "gen", "switch", str(d.spec(never_healthy)), "--timeout", "60",
                             "--state-dir", str(d.state)], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in proc.stderr:        # interrupt while it waits for the new generation's health
        if "waiting" in line:
            break
    proc.send_signal(signum)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 2, err
    assert "interrupted" in err and "restored" in err
    assert d.ids_by_service() == before and http_get(port) == "old"
    assert d.gen("status", "-p", d.profile).code == 0, "no journal left, engine matches current"


def test_dependents_start_while_the_window_runs_and_a_late_crash_still_fails_the_switch(deployment):
    """A dependency without a healthcheck only needs to be running before its dependents start; its
    stability window is checked before the commit, so dying 0.5 s in still undoes everything."""
    d = deployment
    late_crash = sleeper("db").replace('["sleep", "3600"]', '["sh", "-c", "sleep 0.5; exit 4"]') \
        .replace('stop_grace = "0s"', 'stop_grace = "0s"\nrestart = "no"')
    r = d.gen("switch", d.spec(late_crash + sleeper("web", 'depends_on = ["db"]')))
    assert r.code == 2 and "service db" in r.err and "exited with code 4" in r.err, r.err
    phases = [line.split()[:2] for line in r.err.splitlines() if line.startswith("  ")]
    assert ["web", "starting"] in phases, "web started before db's window was over"
    assert d.containers() == []
    listed = d.gen("list", "-p", d.profile)
    assert listed.code == 1 and "has no generations" in listed.err
