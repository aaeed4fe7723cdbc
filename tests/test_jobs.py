"""Jobs (issue 12): a service that runs to completion (a migration) before its dependents start, once
per definition. On the memory engine (order of calls, undo) and on the real engine (a migration that
writes to a volume before its dependent reads it)."""
from __future__ import annotations

import pytest

from gen.deploy.activation import Activation
from gen.deploy.status import status
from gen.engine.memory import MemoryEngine
from gen.errors import ActivationFailed
from gen.model.compile import compile_spec
from gen.model.plan import plan
from gen.spec import parse_spec
from tests.test_transaction import FAST, IMAGES, P, calls_since, index, spec, svc, switch

MIGRATE = svc("migrate", update=None, restart="no") + "\njob = true"
WEB = svc("web", deps=["migrate"]).replace('depends_on = ["migrate"]', 'depends_on = { migrate = "completed" }')
WITH_JOB = spec(MIGRATE, WEB)


@pytest.fixture
def engine() -> MemoryEngine:
    e = MemoryEngine(IMAGES)
    e.script("migrate", exit_code=0, logs="migrating\ndone")
    return e


def containers(engine, service) -> list:
    return [c for c in engine.observe(P) if c.service == service]


def test_a_job_runs_to_completion_before_its_dependent_starts(engine):
    switch(engine, WITH_JOB)
    (job,), (web,) = containers(engine, "migrate"), containers(engine, "web")
    assert (job.state, job.exit_code, web.state) == ("exited", 0, "running")
    exited = next(i for i, (verb, _) in enumerate(engine.calls) if verb == "observe" and i > index(engine, "start", job.id))
    assert index(engine, "start", job.id) < exited < index(engine, "start", web.id), \
        "web started before the job was seen to exit"


def test_a_failing_job_undoes_the_switch_naming_its_exit_code_and_logs(engine):
    switch(engine, spec(svc("web")))
    before = {c.id: c.state for c in engine.observe(P)}
    engine.script("migrate", exit_code=3, logs="applying 0042\nERROR: column exists")
    with pytest.raises(ActivationFailed) as failed:
        switch(engine, WITH_JOB)
    e = failed.value
    assert (e.service, e.exit_status, e.restored) == ("migrate", 3, True)
    assert "exited with code 3" in str(e) and "ERROR: column exists" in e.logs
    assert {c.id: c.state for c in engine.observe(P)} == before, "the job's container was removed by the undo"


def test_a_job_runs_again_only_when_its_definition_changes(engine):
    switch(engine, WITH_JOB)
    (job,) = containers(engine, "migrate")
    mark = len(engine.calls)
    switch(engine, WITH_JOB)
    assert calls_since(engine, mark, "create", "start", "stop", "remove") == [], "a no-op switch runs nothing"
    switch(engine, spec(MIGRATE, WEB.replace("env = {  }", 'env = { A = "2" }')))
    assert [c.id for c in containers(engine, "migrate")] == [job.id], "a changed dependent does not rerun the job"
    assert not any(verb in ("start", "stop") and args[0] == job.id for verb, args in calls_since(engine, mark))
    switch(engine, spec(MIGRATE.replace("env = {  }", 'env = { V = "2" }'), WEB))
    (new,) = containers(engine, "migrate")
    assert new.id != job.id and (new.state, new.exit_code) == ("exited", 0), "the old job's container is removed"


def test_a_completed_job_is_fine_for_status(engine):
    switch(engine, WITH_JOB)
    target = compile_spec(parse_spec(WITH_JOB), P, lambda req: IMAGES[req.ref])
    observed = engine.observe(P)
    s = status(P, 1, target, plan(P, target.services, observed), observed, None)
    assert s.ok, s
    [job] = [svc_status for svc_status in s.services if svc_status.service == "migrate"]
    assert [c["state"] for c in job.containers] == ["completed"]


def test_a_job_that_never_ends_fails_at_the_timeout(engine):
    engine.script("migrate", exit_code=None)         # runs forever
    with pytest.raises(ActivationFailed, match="did not complete within the timeout"):
        switch(engine, WITH_JOB, FAST.__class__(timeout_s=0.05, stability_s=0, poll_s=0.001))
    assert engine.observe(P) == []


def test_a_job_whose_restart_policy_would_rerun_it_is_created_with_restart_no(engine):
    """The spec refuses one; an object written otherwise (by hand, by another tool) still ends."""
    target = compile_spec(parse_spec(WITH_JOB), P, lambda req: IMAGES[req.ref])
    h, obj = target.services["migrate"]
    target.services["migrate"] = (h, {**obj, "restart": "unless-stopped"})
    Activation(engine, target, plan(P, target.services, []), FAST).run(lambda: None)
    (job,) = containers(engine, "migrate")
    assert engine.containers[job.id].obj["restart"] == "no" and job.state == "exited"


# -- on the real engine ------------------------------------------------------------------------------
JOBS = """
[volumes.data]

[services.migrate]
image = "{image}"
command = ["sh", "-c", "sleep 1; echo run >> /data/runs; echo {version} > /data/schema; echo migrated {version}"]
volumes = ["data:/data"]
job = true
stop_grace = "0s"

[services.app]
image = "{image}"
command = ["sh", "-c", "test -f /data/schema || {{ echo no schema; exit 1; }}; exec sleep 3600"]
volumes = ["data:/data"]
depends_on = {{ migrate = "completed" }}
restart = "no"
stop_grace = "0s"
{app_extra}
"""


def jobs(version: str = "v1", app_extra: str = "") -> str:
    return JOBS.replace("{version}", version).replace("{app_extra}", app_extra).replace("{{", "{").replace("}}", "}")


def by_service(d) -> dict:
    return {c.labels["gen.service"]: c for c in d.containers()}


def runs(d) -> list[str]:
    return by_service(d)["app"].exec_run(["cat", "/data/runs"]).output.decode().split()


def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


def test_a_migration_job_runs_before_its_dependent_and_once_per_definition(deployment):
    d = deployment
    ok(d.gen("switch", d.spec(jobs())))
    first = by_service(d)
    assert first["migrate"].status == "exited" and first["migrate"].attrs["State"]["ExitCode"] == 0
    assert first["app"].status == "running", "the app found the schema the job wrote before it started"
    assert runs(d) == ["run"]
    assert ok(d.gen("status", "-p", d.profile)).code == 0, "an exited-0 job is not drift"

    assert "already current" in ok(d.gen("switch", d.spec(jobs()))).out
    ok(d.gen("switch", d.spec(jobs(app_extra='env = { A = "2" }'))))
    assert runs(d) == ["run"], "a change elsewhere does not rerun the job"
    assert by_service(d)["migrate"].id == first["migrate"].id

    ok(d.gen("switch", d.spec(jobs("v2"))))
    assert runs(d) == ["run", "run"], "a changed job runs again"
    assert len([c for c in d.containers() if c.labels["gen.service"] == "migrate"]) == 1, "the old job's container went"
    ok(d.gen("rollback", "-p", d.profile))
    assert runs(d) == ["run", "run", "run"], "rolling back to the older job definition runs it again"


def test_a_failing_job_is_undone_with_its_exit_code_and_log_lines(deployment):
    d = deployment
    ok(d.gen("switch", d.spec(jobs())))
    before = {c.id: c.status for c in d.containers()}
    failing = jobs("v2").replace("echo migrated v2", "echo applying v2; echo 'ERROR: relation exists' >&2; exit 3")
    r = d.gen("switch", d.spec(failing))
    assert r.code == 2, r.err
    assert "service migrate" in r.err and "exited with code 3" in r.err
    assert "ERROR: relation exists" in r.err and "applying v2" in r.err, "the job's last log lines are shown"
    assert {c.id: c.status for c in d.containers()} == before, "the failed job's container is gone, the app runs"
