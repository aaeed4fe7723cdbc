"""gen touches only what it owns (issue 11): volumes and networks carry the owner's label, one owned by
another profile or by nobody is refused (exit 1, naming it and its owner) unless the spec declares it
`external`, and a failed first switch leaves no network behind."""
from __future__ import annotations

import textwrap

import pytest

from gen.deploy.activation import Activation
from gen.deploy.options import Options
from gen.engine.memory import MemoryEngine
from gen.errors import NotOwned, SpecError
from gen.model.compile import compile_spec
from gen.model.plan import plan
from gen.spec import parse_spec
from gen.spec.compose import parse_compose
from tests.conftest import sleeper

FAST = Options(timeout_s=2.0, stability_s=0, poll_s=0.001, workers=2)
IMAGES = {"app:1": "sha256:" + "1" * 64}


# -- the spec ------------------------------------------------------------------------------------
@pytest.mark.parametrize("toml, volumes", [
    ("[volumes.data]", {"data": {}}),
    ("[volumes.data]\nexternal = true", {"data": {"external": True, "name": "data"}}),
    ('[volumes.data]\nexternal = true\nname = "pg-data.2"', {"data": {"external": True, "name": "pg-data.2"}}),
])
def test_a_volume_is_the_deployments_own_or_external(toml, volumes):
    assert parse_spec(toml).volumes == volumes


@pytest.mark.parametrize("toml, subject, fragment", [
    ('[volumes.data]\nname = "x"', "volumes.data.name", "only for an external volume"),
    ("[volumes.data]\nexternal = 1", "volumes.data.external", "true or false"),
    ('[volumes.data]\nexternal = true\nname = "-x"', "volumes.data.name", "not a Docker volume name"),
    ('[volumes.data]\ndriver = "nfs"', "volumes.data.driver", "unknown key"),
])
def test_bad_volume_declarations_name_the_key(toml, subject, fragment):
    with pytest.raises(SpecError) as e:
        parse_spec(toml)
    assert e.value.subject == subject and fragment in e.value.reason


def test_compose_external_volumes_mean_the_same():
    yml = parse_compose(textwrap.dedent("""
        volumes:
          own:
          theirs: {external: true}
          named: {external: true, name: pg-data}
    """), "compose.yaml", "/base", {})
    assert yml.volumes == {"own": {}, "theirs": {"external": True, "name": "theirs"},
                           "named": {"external": True, "name": "pg-data"}}


# -- the transaction, in memory --------------------------------------------------------------------
def switch(engine: MemoryEngine, text: str):
    target = compile_spec(parse_spec(text), "shop", lambda req: IMAGES[req.ref])
    observed = engine.observe("shop")
    Activation(engine, target, plan("shop", target.services, observed, {}), FAST).run(lambda: None)


SPEC = 'name = "shop"\n[volumes.data]\n[services.db]\nimage = "app:1"\nvolumes = ["data:/data"]\n'


@pytest.mark.parametrize("owner", [{"gen.profile": "shop_db"}, {}])
def test_a_volume_of_another_owner_is_refused_and_nothing_is_left_behind(owner):
    engine = MemoryEngine(IMAGES)
    engine.volumes["shop_data"] = dict(owner)
    with pytest.raises(NotOwned) as refused:
        switch(engine, SPEC)
    assert refused.value.exit_code == 1 and refused.value.subject == "volume shop_data"
    assert (refused.value.owner or "") == owner.get("gen.profile", "")
    assert engine.observe("shop") == [] and engine.networks == {}, "a failed first switch leaves nothing"
    assert engine.volumes == {"shop_data": owner}, "the foreign volume is untouched"


def test_an_external_volume_is_used_as_it_is_and_must_exist():
    engine = MemoryEngine(IMAGES)
    external = SPEC.replace("[volumes.data]", '[volumes.data]\nexternal = true\nname = "pg"')
    with pytest.raises(Exception) as missing:
        switch(engine, external)
    assert "volume pg" in str(missing.value) and "does not exist" in str(missing.value)
    engine.volumes["pg"] = {"made.by": "hand"}
    switch(engine, external)
    [c] = engine.containers.values()
    assert c.volumes == {"data": "pg"} and engine.volumes == {"pg": {"made.by": "hand"}}


# -- on the engine ----------------------------------------------------------------------------------
def test_two_profiles_never_share_a_volume_by_name(deployment, docker_client):
    d = deployment
    first = d.spec("[volumes.db_data]\n" + sleeper("db", 'volumes = ["db_data:/data"]'))
    assert d.gen("switch", first).code == 0                          # volume <profile>_db_data
    other = d.spec("[volumes.data]\n" + sleeper("db", 'volumes = ["data:/data"]'), name=f"{d.profile}_db")
    try:
        r = d.gen("switch", other)                                   # would be <profile>_db + _data: the same name
        assert r.code == 1, r.err
        assert f"volume {d.profile}_db_data: belongs to profile '{d.profile}'" in r.err
        assert not docker_client.containers.list(all=True, filters={"label": f"gen.profile={d.profile}_db"})
        assert not docker_client.networks.list(names=[f"{d.profile}_db_default"]), "no network left behind"
    finally:
        from tests.cleanup import remove_profile
        remove_profile(docker_client, f"{d.profile}_db")


def test_a_volume_made_by_hand_is_refused_unless_external(deployment, docker_client):
    d = deployment
    name = f"{d.profile}_data"
    docker_client.volumes.create(name)                                # made by hand: no owner label
    try:
        spec = "[volumes.data]\n" + sleeper("db", 'volumes = ["data:/data"]')
        r = d.gen("switch", d.spec(spec))
        assert r.code == 1 and f"volume {name}: exists but was not made by gen" in r.err, r.err
        r = d.gen("switch", d.spec(spec.replace("[volumes.data]", f'[volumes.data]\nexternal = true\nname = "{name}"')))
        assert r.code == 0, r.err
        assert d.gen("switch", d.spec("")).code == 0                  # the deployment goes; the volume stays
        assert docker_client.volumes.get(name).name == name
    finally:
        docker_client.volumes.get(name).remove()
