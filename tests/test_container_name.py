"""container_name (issue 12): a service that runs under the user's own name. Old and new never hold it
at once: stop-first, the old renamed aside, the new renamed to the name; the undo reverses it, and a
kill anywhere leaves a state that recovery turns back into "the current generation's container
holds the name". On the memory engine (every kill point) and on the real engine."""
from __future__ import annotations

import pytest

import gen.deploy.activation
import gen.deploy.renames
import gen.deploy.undo
from gen.deploy.activation import Activation
from gen.engine.base import Wiring
from gen.engine.memory import MemoryEngine
from gen.errors import ActivationFailed, NotOwned
from gen.model.compile import compile_spec
from gen.model.naming import network_name
from gen.model.plan import plan
from gen.spec import parse_spec
from tests.test_transaction import FAST, IMAGES, P, spec, svc, switch

NAME = "shop-db"


def named(image="app:1", extra="") -> str:
    return spec(svc("db", image, update=None, restart="no") + f'\ncontainer_name = "{NAME}"\n{extra}',
                svc("web", deps=["db"]))


@pytest.fixture
def engine() -> MemoryEngine:
    e = MemoryEngine(IMAGES)
    e.script("app:bad", exit_code=1, logs="cannot open database")
    return e


def holder(engine) -> tuple[str, str, str] | None:
    """(image, state, service) of the container holding the name, if any."""
    c = next((c for c in engine.containers.values() if c.name == NAME), None)
    return (c.obj["image"], c.state, c.labels["gen.service"]) if c else None


def test_a_named_service_runs_under_its_name(engine):
    switch(engine, named())
    assert holder(engine) == ("app:1", "running", "db")


def test_a_change_stops_the_old_renames_it_aside_and_gives_the_new_the_name(engine):
    switch(engine, named())
    old = next(c.id for c in engine.containers.values() if c.name == NAME)
    mark = len(engine.calls)
    switch(engine, named("app:2"))
    assert holder(engine) == ("app:2", "running", "db")
    assert old not in engine.containers, "the old container is removed after the commit"
    new = next(c.id for c in engine.containers.values() if c.name == NAME)
    steps = [(verb, args[0], args[1] if verb == "rename" else None) for verb, args in engine.calls[mark:]
             if verb in ("stop", "rename", "start") and args[0] in (old, new)]
    assert steps[:4] == [("stop", old, None), ("rename", old, f"{NAME}-gen-old-{old[:12]}"),
                         ("rename", new, NAME), ("start", new, None)]


def test_a_failed_change_is_undone_and_the_old_container_has_its_name_back(engine):
    switch(engine, named())
    before = {c.id: (c.name, c.state) for c in engine.containers.values()}
    with pytest.raises(ActivationFailed) as failed:
        switch(engine, named("app:bad"))
    assert failed.value.service == "db" and failed.value.restored
    assert {c.id: (c.name, c.state) for c in engine.containers.values()} == before


def test_rolling_back_gives_the_name_to_the_older_generation_again(engine):
    switch(engine, named())
    switch(engine, named("app:2"))
    switch(engine, named())
    assert holder(engine) == ("app:1", "running", "db") and len(engine.containers) == 2


def test_a_name_held_by_a_stranger_is_refused_before_anything_is_touched(engine):
    switch(engine, spec(svc("web")))
    engine.ensure_network(network_name("other"), {"gen.profile": "other"})
    target = compile_spec(parse_spec(named()), P, lambda req: IMAGES[req.ref])
    stranger = engine.create("other", "x", target.services["web"][1], "h", "m", 1, NAME,
                             Wiring(networks={network_name("other"): ["x"]}))
    before = {c.id: (c.name, c.state) for c in engine.containers.values()}
    with pytest.raises(NotOwned) as refused:
        switch(engine, named())
    assert refused.value.exit_code == 1 and f"container {NAME}" in str(refused.value)
    assert {c.id: (c.name, c.state) for c in engine.containers.values()} == before
    assert engine.containers[stranger].name == NAME


# -- a kill at every step: recovery gives the name back to the current generation ----------------------
class Killed(BaseException):
    """The process died here: nothing after it runs, not even the undo."""


def kill_at(monkeypatch, k: int) -> list[str]:
    seen: list[str] = []

    def checkpoint(label: str) -> None:
        seen.append(label)
        if len(seen) == k:
            raise Killed(label)
    for module in (gen.deploy.activation, gen.deploy.renames, gen.deploy.undo):
        monkeypatch.setattr(module, "checkpoint", checkpoint)
    return seen


def converge(engine, text: str) -> None:
    """`gen recover`: plan the current generation against what the engine holds, and run it."""
    target = compile_spec(parse_spec(text), P, lambda req: IMAGES[req.ref])
    Activation(engine, target, plan(P, target.services, engine.observe(P)), FAST).run(lambda: None)


def boundaries(monkeypatch, second: str) -> int:
    """How many kill points a switch from named() to `second` passes (its undo's too, when it fails)."""
    engine = MemoryEngine(IMAGES)
    engine.script("app:bad", exit_code=1)
    switch(engine, named())
    seen = kill_at(monkeypatch, 0)
    try:
        switch(engine, second)
    except ActivationFailed:
        pass
    monkeypatch.undo()
    return len(seen)


@pytest.mark.parametrize("second", [named("app:2"), named("app:bad")], ids=["change", "failing-change"])
def test_recovery_after_a_kill_anywhere_gives_the_name_to_the_current_generation(monkeypatch, second):
    total = boundaries(monkeypatch, second)
    assert total > 8
    for k in range(1, total + 1):
        engine = MemoryEngine(IMAGES)
        engine.script("app:bad", exit_code=1)
        switch(engine, named())
        committed: list[bool] = []
        seen = kill_at(monkeypatch, k)
        with pytest.raises((Killed, ActivationFailed)):
            switch(engine, second, commit=lambda: committed.append(True))
        monkeypatch.undo()
        current = second if committed else named()
        converge(engine, current)
        image = "app:2" if committed else "app:1"
        assert holder(engine) == (image, "running", "db"), f"killed at {k}: {seen[-1]}"
        assert sorted((c.labels["gen.service"], c.obj["image"], c.state) for c in engine.containers.values()) == [
            ("db", image, "running"), ("web", "app:1", "running")], f"killed at {k}: {seen[-1]}"


# -- on the real engine ------------------------------------------------------------------------------
def real_named(d, value: str, extra: str = "") -> str:
    return f"""
[services.db]
image = "{{image}}"
command = ["sh", "-c", "echo {value} > /tmp/v; exec sleep 3600"]
container_name = "{d.profile}-db"
stop_grace = "0s"
restart = "no"
{extra}
"""


def test_container_name_on_the_engine_deploy_change_failed_change_rollback(deployment):
    d = deployment
    name = f"{d.profile}-db"

    def held() -> tuple[str, str]:
        c = d.docker.containers.get(name)
        return c.status, c.exec_run(["cat", "/tmp/v"]).output.decode().strip()

    assert d.gen("switch", d.spec(real_named(d, "one"))).code == 0
    assert held() == ("running", "one")
    assert d.gen("switch", d.spec(real_named(d, "two"))).code == 0
    assert held() == ("running", "two") and len(d.containers()) == 1
    r = d.gen("switch", d.spec(real_named(d, "three", 'entrypoint = ["/bin/false"]')))
    assert r.code == 2 and "service db" in r.err
    assert held() == ("running", "two") and len(d.containers()) == 1, "the undo gave the name back"
    assert d.gen("rollback", "-p", d.profile).code == 0
    assert held() == ("running", "one") and len(d.containers()) == 1
    assert d.gen("status", "-p", d.profile).code == 0


def test_a_container_name_taken_by_a_stranger_is_refused_on_the_engine(deployment):
    d = deployment
    name = f"{d.profile}-db"
    stranger = d.docker.containers.create(d.image, ["sleep", "3600"], name=name)
    try:
        r = d.gen("switch", d.spec(real_named(d, "one")))
        assert r.code == 1 and f"container {name}" in r.err and "Traceback" not in r.err
        assert d.containers() == [] and d.docker.containers.get(name).id == stranger.id
    finally:
        stranger.remove(force=True)
