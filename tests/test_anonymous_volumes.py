"""Anonymous volumes (issue 12: `- /data`): a volume of the profile per service, replica and target, so
a replaced container (or a rollback) finds its data, as Compose keeps it; never removed by gen."""
from __future__ import annotations

import pytest

from gen.engine.memory import MemoryEngine
from gen.errors import ActivationFailed
from gen.model.naming import anonymous_volume_name
from tests.test_transaction import IMAGES, P, spec, svc, switch


@pytest.fixture
def engine() -> MemoryEngine:
    return MemoryEngine(IMAGES)


def wirings(engine) -> list:
    return [args[-1].anonymous for verb, args in engine.calls if verb == "create"]


def test_an_anonymous_volume_is_the_same_across_replaces_and_never_removed(engine):
    engine.script("app:bad", exit_code=1)
    data = anonymous_volume_name(P, "db", 1, "/data")
    switch(engine, spec(svc("db", volumes=["/data"])))
    assert engine.volumes == {data: {"gen.profile": P}}
    switch(engine, spec(svc("db", "app:2", volumes=["/data"])))
    with pytest.raises(ActivationFailed):
        switch(engine, spec(svc("db", "app:bad", volumes=["/data"])))
    switch(engine, spec())
    assert wirings(engine) == [{"/data": data}] * 3, "every container of db got the same volume"
    assert engine.volumes == {data: {"gen.profile": P}}, "never removed, not even with the deployment"


def test_anonymous_volumes_are_per_replica_and_target():
    names = {anonymous_volume_name(P, s, r, t) for s in ("a", "b") for r in (1, 2) for t in ("/data", "/cache")}
    assert len(names) == 8 and all(n.startswith(f"{P}_") for n in names)


# -- on the real engine ------------------------------------------------------------------------------
def keeper(value: str) -> str:
    return f"""
[services.store]
image = "{{image}}"
command = ["sleep", "3600"]
volumes = ["/data"]
env = {{ V = "{value}" }}
stop_grace = "0s"
"""


def test_anonymous_volume_data_survives_a_replace_and_a_rollback(deployment):
    d = deployment
    assert d.gen("switch", d.spec(keeper("1"))).code == 0
    (first,) = d.containers()
    assert first.exec_run(["sh", "-c", "echo kept > /data/file"]).exit_code == 0
    assert d.gen("switch", d.spec(keeper("2"))).code == 0
    (second,) = d.containers()
    assert second.id != first.id
    assert second.exec_run(["cat", "/data/file"]).output.decode().strip() == "kept"
    name = anonymous_volume_name(d.profile, "store", 1, "/data")
    assert [m["Name"] for m in second.attrs["Mounts"] if m["Destination"] == "/data"] == [name]
    assert d.docker.volumes.get(name).attrs["Labels"] == {"gen.profile": d.profile}
    assert d.gen("rollback", "-p", d.profile).code == 0
    (third,) = d.containers()
    assert third.exec_run(["cat", "/data/file"]).output.decode().strip() == "kept"
