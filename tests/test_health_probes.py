"""Early health probes (gen.health.Probe): gen runs a service's healthcheck itself while Docker still
says "starting", so a ready service does not wait out Docker's first `interval`. Each engine test gives
its healthcheck a 60 s interval: Docker's own first check would come long after the switch's timeout,
so only gen's probes can let the switch through, and only by running the test the way Docker does."""
from __future__ import annotations

import pytest

from gen.deploy.health import Probe
from gen.engine.docker import container_details
from tests.conftest import sleeper

SLOW_DOCKER_CHECK = """
[services.app.healthcheck]
test = {test}
interval = "60s"
timeout = "5s"
retries = 3
"""


def checked_app(test: str, extra: str = "") -> str:
    return sleeper("app", extra) + SLOW_DOCKER_CHECK.format(test=test)


@pytest.mark.parametrize("test, user, argv", [
    (["CMD", "wget", "-q", "http://x/"], "", ["wget", "-q", "http://x/"]),
    (["CMD-SHELL", "test -f /ready && echo ok"], "1000:1000", ["/bin/sh", "-c", "test -f /ready && echo ok"]),
])
def test_probe_runs_the_healthcheck_command_as_docker_would(test, user, argv):
    probe = Probe.of({"test": test, "timeout_ms": 1500}, user)
    assert (probe.argv, probe.user, probe.timeout_s) == (argv, user, 1.5)


@pytest.mark.parametrize("config, argv", [
    ({"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Timeout": 2_000_000_000}, "User": "app"}, ["/bin/sh", "-c", "true"]),
    ({"Healthcheck": {"Test": ["CMD", "true"]}, "User": ""}, ["true"]),     # Docker's default timeout: 30 s
    ({"Healthcheck": {"Test": ["NONE"]}}, None),
    ({"User": "app"}, None),
])
def test_probe_of_a_restored_container_reads_its_own_healthcheck(config, argv):
    probe = Probe.of_container(container_details({"Config": config}))
    assert (probe.argv if probe else None) == argv
    if probe:
        assert probe.user == config["User"] and probe.timeout_s == config["Healthcheck"].get("Timeout", 30e9) / 1e9


def test_a_ready_service_is_healthy_long_before_dockers_first_check(deployment):
    d = deployment
    r = d.gen("switch", d.spec(checked_app('["CMD", "true"]')), "--timeout", "15")
    assert r.code == 0, r.err
    [c] = d.containers()
    assert c.attrs["State"]["Health"]["Status"] == "starting", "Docker has not checked yet: gen's probe passed"


def test_probe_runs_as_the_containers_user_with_its_environment(deployment):
    d = deployment
    test = '"[ \\"$(id -u)\\" = 4321 ] && [ \\"$GREETING\\" = salut ]"'
    r = d.gen("switch", d.spec(checked_app(test, 'user = "4321"\nenv = { GREETING = "salut" }')), "--timeout", "15")
    assert r.code == 0, r.err


def test_failed_probes_count_for_nothing_until_one_passes(deployment):
    d = deployment
    spec = checked_app('"test -f /tmp/ready"').replace(
        '["sleep", "3600"]', '["sh", "-c", "sleep 1.5; touch /tmp/ready; exec sleep 3600"]')
    r = d.gen("switch", d.spec(spec), "--timeout", "15")
    assert r.code == 0, r.err


def test_a_check_that_never_passes_is_not_healthy_when_the_timeout_ends(deployment):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("app"))).code == 0
    before = d.ids_by_service()
    r = d.gen("switch", d.spec(checked_app('["CMD", "false"]')), "--timeout", "3")
    assert r.code == 2
    assert "not healthy within the timeout (state: starting)" in r.err and "restored" in r.err
    assert d.ids_by_service() == before


def test_undo_probes_the_restored_containers_too(deployment):
    """A stop-first service whose new version fails: the old container is started again, and its own
    healthcheck (read from the container) is probed, so the restore does not wait for Docker's 60 s."""
    d = deployment
    old = checked_app('["CMD", "true"]', 'update = "stop-first"\nenv = { V = "1" }')
    assert d.gen("switch", d.spec(old), "--timeout", "15").code == 0
    before = d.ids_by_service()
    broken = checked_app('["CMD", "false"]', 'update = "stop-first"\nenv = { V = "2" }')
    r = d.gen("switch", d.spec(broken), "--timeout", "4")
    assert r.code == 2, r.err
    assert "not healthy within the timeout" in r.err and "the previous generation was restored" in r.err
    assert d.ids_by_service() == before
    [c] = d.containers()
    assert c.status == "running"


def test_a_probe_past_its_timeout_is_the_last_one(deployment):
    """A hung probe cannot be killed through the API: gen starts no more of them (they would pile
    up in the container) and leaves the verdict to Docker's own checks."""
    d = deployment
    seen = d.dir / "probes"
    seen.mkdir()
    hung = checked_app('"echo probe >> /seen/log; sleep 30"', f'volumes = ["{seen}:/seen"]').replace(
        'timeout = "5s"', 'timeout = "1s"')
    r = d.gen("switch", d.spec(hung), "--timeout", "5")
    assert r.code == 2 and "not healthy within the timeout" in r.err
    assert (seen / "log").read_text().splitlines() == ["probe"]


def test_probe_starts_are_rationed_most_overdue_first():
    from gen.deploy.health import PROBE_STARTS_PER_POLL, probes_to_advance
    probes = {f"c{i}": Probe(["true"], "", 1.0, next_at=float(i)) for i in range(6)}
    probes["c5"].exec_id = "in-flight"
    picked = probes_to_advance(probes, sorted(probes), now=4.0)
    assert picked == ["c5"] + ["c0", "c1", "c2", "c3", "c4"][:PROBE_STARTS_PER_POLL]
    assert probes_to_advance(probes, ["c4"], now=3.0) == [], "not due yet"


def test_many_replicas_all_get_probed(deployment):
    d = deployment
    r = d.gen("switch", d.spec(checked_app('["CMD", "true"]', "replicas = 8")), "--timeout", "20")
    assert r.code == 0, r.err
    assert len(d.containers()) == 8
