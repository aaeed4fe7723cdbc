"""Networks (issue 12): declared networks with aliases, external ones, network_mode, and the default
network as before. On the memory engine (what each container is wired to, what is created and
removed) and on the real engine (who can reach whom)."""
from __future__ import annotations

import pytest

from gen.deploy.activation import Activation
from gen.engine.memory import MemoryEngine
from gen.errors import ActivationFailed
from gen.model.compile import compile_spec
from gen.model.naming import network_name
from gen.model.plan import plan
from gen.spec import parse_spec
from tests.test_transaction import FAST, IMAGES, P, spec, svc, switch

NETS = """
[networks.front]
[networks.back]
internal = true
"""


def on(name: str, networks: str, image: str = "app:1", deps=()) -> str:
    return svc(name, image, deps=deps) + f"\nnetworks = {networks}"


@pytest.fixture
def engine() -> MemoryEngine:
    return MemoryEngine(IMAGES)


def wired(engine) -> dict[str, dict]:
    return {c.labels["gen.service"]: c.networks for c in engine.containers.values()}


def compiled(text: str):
    return compile_spec(parse_spec(text), P, lambda req: IMAGES[req.ref])


def test_services_join_their_networks_with_their_name_and_aliases(engine):
    switch(engine, spec(NETS, on("web", '["front"]'), on("api", '{ front = {}, back = { aliases = ["app"] } }'),
                        on("db", '{ back = { aliases = ["database", "pg"] } }')))
    assert wired(engine) == {"web": {"shop_front": ["web"]},
                             "api": {"shop_back": ["api", "app"], "shop_front": ["api"]},
                             "db": {"shop_back": ["db", "database", "pg"]}}
    assert engine.network_defs["shop_back"] == {"internal": True}
    assert engine.networks["shop_back"] == {"gen.profile": P}
    assert network_name(P) not in engine.networks, "no service is on the default network: it is not made"


def test_the_default_network_stays_as_it_was():
    text = spec(svc("web"))
    target = compiled(text)
    assert target.manifest["networks"] == {"default": {}} and target.manifest["format"] == 1
    assert compiled(spec(NETS, on("web", '["front", "default"]'), on("db", '["back"]'))).manifest["networks"] == {
        "back": {"internal": True}, "default": {}, "front": {}}


def test_an_external_network_is_used_never_created_nor_removed(engine):
    text = spec('[networks.outside]\nexternal = true\nname = "proxy"', on("web", '["outside"]'))
    with pytest.raises(ActivationFailed, match="network proxy: is declared external but does not exist"):
        switch(engine, text)
    engine.networks["proxy"] = {}                          # the user's own, unlabelled
    switch(engine, text)
    assert wired(engine) == {"web": {"proxy": ["web"]}}
    switch(engine, spec())
    assert engine.networks == {"proxy": {}}, "never removed"


def test_a_network_no_generation_uses_any_more_is_removed_after_the_commit(engine):
    first = spec(NETS, on("web", '["front"]'), on("db", '["back"]'))
    switch(engine, first)
    second = compiled(spec(NETS, on("web", '["front"]')))        # back is declared, but nobody joins it
    Activation(engine, second, plan(P, second.services, engine.observe(P)), FAST).run(lambda: None)
    assert set(engine.networks) == {"shop_front"}


def test_a_failed_first_switch_removes_the_networks_it_made(engine):
    engine.script("app:bad", exit_code=1)
    with pytest.raises(ActivationFailed):
        switch(engine, spec(NETS, on("web", '["front", "back"]', "app:bad")))
    assert engine.networks == {} and engine.containers == {}


def sharing(image="app:1", vpn_image="app:1") -> str:
    return spec(svc("vpn", vpn_image), svc("app", image) + '\nnetwork_mode = "service:vpn"')


def test_network_mode_service_joins_the_new_container_of_its_peer_by_id(engine):
    switch(engine, sharing())
    ids = {c.labels["gen.service"]: c.id for c in engine.containers.values()}
    app = engine.containers[ids["app"]]
    assert app.network_mode == f"container:{ids['vpn']}" and app.networks == {}
    switch(engine, sharing(image="app:2"))                      # the app alone: the same vpn
    assert {c.labels["gen.service"]: c.id for c in engine.containers.values()}["vpn"] == ids["vpn"]
    switch(engine, sharing(image="app:2", vpn_image="app:2"))   # a new vpn: the app follows it
    now = {c.labels["gen.service"]: c.id for c in engine.containers.values()}
    assert now["vpn"] != ids["vpn"] and now["app"] != ids["app"]
    assert engine.containers[now["app"]].network_mode == f"container:{now['vpn']}"
    assert all(c.state == "running" for c in engine.containers.values()) and len(engine.containers) == 2


def test_a_failed_peer_change_restores_both(engine):
    switch(engine, sharing())
    before = {c.id: (c.state, c.network_mode) for c in engine.containers.values()}
    engine.script("app:bad", exit_code=1)
    with pytest.raises(ActivationFailed):
        switch(engine, spec(svc("vpn", "app:bad", update="stop-first", restart="no"),
                            svc("app") + '\nnetwork_mode = "service:vpn"'))
    assert {c.id: (c.state, c.network_mode) for c in engine.containers.values()} == before


def test_host_network_mode_makes_no_network(engine):
    switch(engine, spec(svc("web") + '\nnetwork_mode = "host"'))
    assert engine.networks == {} and [c.network_mode for c in engine.containers.values()] == ["host"]


# -- on the real engine ------------------------------------------------------------------------------
def pinger(name: str, networks: str) -> str:
    return f"""
[services.{name}]
image = "{{image}}"
command = ["sleep", "3600"]
stop_grace = "0s"
networks = {networks}
"""


def reaches(d, source: str, target: str) -> bool:
    c = next(c for c in d.containers() if c.labels["gen.service"] == source)
    return c.exec_run(["ping", "-c", "1", "-W", "2", target]).exit_code == 0


def test_two_networks_with_aliases_on_the_engine(deployment):
    d = deployment
    body = NETS + pinger("a", '["front"]') + pinger("b", '{ front = {}, back = { aliases = ["bee"] } }') \
        + pinger("c", '["back"]')
    r = d.gen("switch", d.spec(body))
    assert r.code == 0, r.err
    assert reaches(d, "a", "b") and reaches(d, "c", "bee") and reaches(d, "b", "c")
    assert not reaches(d, "a", "c"), "a is on front only, c on back only"
    assert not reaches(d, "a", "bee"), "an alias answers on its own network only"
    nets = {n.name: n for n in d.docker.networks.list(filters={"label": f"gen.profile={d.profile}"})}
    assert set(nets) == {f"{d.profile}_front", f"{d.profile}_back"} and nets[f"{d.profile}_back"].attrs["Internal"]

    r = d.gen("switch", d.spec(NETS + pinger("a", '["front"]')))
    assert r.code == 0, r.err
    left = {n.name for n in d.docker.networks.list(filters={"label": f"gen.profile={d.profile}"})}
    assert left == {f"{d.profile}_front"}, "a network no service joins any more is removed"
    assert d.gen("rollback", "-p", d.profile).code == 0
    assert reaches(d, "c", "bee") and not reaches(d, "a", "c")


def test_network_mode_service_shares_the_peer_network_stack_on_the_engine(deployment):
    d = deployment
    body = """
[services.vpn]
image = "{image}"
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/etc"]
stop_grace = "0s"
env = { V = "%s" }

[services.app]
image = "{image}"
command = ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:8080/hostname >/dev/null && exec sleep 3600; sleep 0.2; done; exit 1"]
network_mode = "service:vpn"
restart = "no"
stop_grace = "0s"
"""
    for version in ("1", "2"):       # the second replaces vpn, so app must follow it to its new stack
        r = d.gen("switch", d.spec(body % version))
        assert r.code == 0, r.err
        running = {c.labels["gen.service"]: c for c in d.containers()}
        assert running["app"].attrs["HostConfig"]["NetworkMode"] == f"container:{running['vpn'].id}"
        assert running["app"].exec_run(["wget", "-q", "-O-", "http://127.0.0.1:8080/hostname"]).exit_code == 0


def test_create_only_creates_what_a_first_switch_would_and_starts_nothing(deployment):
    """The helper of the differential test against Docker Compose (gen.deploy.createonly)."""
    from gen.deploy.createonly import create_only, remove_created
    from gen.engine.docker import DockerEngine
    d = deployment
    image_id = d.docker.images.get(d.image).id
    text = f'name = "{d.profile}"\n' + NETS + pinger("a", '["front"]') + pinger("b", '["front", "back"]') \
        + f'container_name = "{d.profile}-bee"\nvolumes = ["/data"]\n' \
        + pinger("c", '["back"]').replace("networks = [\"back\"]", 'network_mode = "service:b"')
    target = compile_spec(parse_spec(text.replace("{image}", d.image)), d.profile, lambda req: image_id)
    engine = DockerEngine.from_env()
    created = create_only(engine, target)
    assert sorted(created) == ["a", "b", "c"] and all(len(ids) == 1 for ids in created.values())
    states = {c.labels["gen.service"]: c.status for c in d.containers()}
    assert states == {"a": "created", "b": "created", "c": "created"}
    b = d.docker.containers.get(f"{d.profile}-bee")
    assert sorted(b.attrs["NetworkSettings"]["Networks"]) == [f"{d.profile}_back", f"{d.profile}_front"]
    assert d.docker.containers.get(created["c"][0]).attrs["HostConfig"]["NetworkMode"] == f"container:{b.id}"
    remove_created(engine, target, created)
    assert d.containers() == []
    assert d.docker.networks.list(filters={"label": f"gen.profile={d.profile}"}) == []
