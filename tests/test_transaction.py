"""The activation transaction (gen.deploy.activation) against an engine held in memory
(gen.engine.memory): no Docker, no store, no sleeping. Specs are parsed, compiled with a fake image
resolver and planned as `gen switch` does; each test asserts on what the engine holds afterwards
(observe(), its networks and volumes), and on the order of calls only where the order is the point."""
from __future__ import annotations

import re

import pytest

from gen.deploy.activation import Activation
from gen.deploy.commit import Commit
from gen.deploy.options import Options
from gen.engine.base import Wiring
from gen.engine.memory import MemoryEngine
from gen.errors import ActivationFailed, GenError, Interrupted, ProfileError
from gen.model.compile import ResolvedImage, compile_spec
from gen.model.naming import network_name, volume_name
from gen.model.plan import plan
from gen.spec import parse_spec
from store.errors import StateUnwritable, StoreError

P = "shop"
IMAGES = {"app:1": "sha256:" + "1" * 64, "app:2": "sha256:" + "2" * 64, "app:bad": "sha256:" + "b" * 64}
FAST = Options(timeout_s=2.0, stability_s=0, poll_s=0.001, workers=4)
CHECK = '\n[services.{name}.healthcheck]\ntest = ["CMD", "true"]\ninterval = "1s"'


def svc(name, image="app:1", *, deps=(), ports=(), update="start-first", health=False, volumes=(), env="",
        restart=None) -> str:
    lines = [f"[services.{name}]", f'image = "{image}"', f"env = {{ {env} }}",
             f"depends_on = {list(deps)!r}".replace("'", '"'),
             f"ports = {[f'127.0.0.1:{p}:80' for p in ports]!r}".replace("'", '"'),
             f"volumes = {list(volumes)!r}".replace("'", '"')]
    if update:                                  # None: the spec's default
        lines.append(f'update = "{update}"')
    if restart:
        lines.append(f'restart = "{restart}"')
    return "\n".join(lines) + (CHECK.format(name=name) if health else "")


def spec(*services: str, volumes=()) -> str:
    return "\n".join([f'name = "{P}"'] + [f"[volumes.{v}]" for v in volumes] + list(services))


def switch(engine: MemoryEngine, text: str, options: Options = FAST, commit=None) -> list[str]:
    """Plan against what the engine holds and run the transaction, as `gen switch` does; returns the
    manifest hashes the default commit recorded (one per call of it)."""
    target = compile_spec(parse_spec(text), P, lambda req: IMAGES[req.ref])
    observed = engine.observe(P)
    known = {c.hash: engine.containers[c.id].obj for c in observed}      # what the store would know
    commits: list[str] = []

    def default_commit():
        commits.append(target.manifest_hash)
    Activation(engine, target, plan(P, target.services, observed, known), options).run(commit or default_commit)
    return commits


def view(engine: MemoryEngine) -> dict[str, tuple]:
    """service -> (container id, image id, state, health): the whole deployment as the engine reports it."""
    seen = engine.observe(P)
    assert len({c.service for c in seen}) == len(seen), f"more than one container per service: {seen}"
    return {c.service: (c.id, c.image_id, c.state, c.health) for c in seen}


def calls_since(engine: MemoryEngine, mark: int, *verbs: str) -> list[tuple[str, tuple]]:
    return [(verb, args) for verb, args in engine.calls[mark:] if not verbs or verb in verbs]


def index(engine: MemoryEngine, verb: str, cid: str) -> int:
    """Where the first call `verb` on container `cid` is in the engine's call log."""
    return next(i for i, (v, args) in enumerate(engine.calls) if v == verb and args[0] == cid)


@pytest.fixture
def engine() -> MemoryEngine:
    return MemoryEngine(IMAGES)


# -- success ----------------------------------------------------------------------------------------
CHAIN = spec(svc("db", health=True, volumes=["data:/data"]), svc("cache"), svc("api", deps=["db", "cache"]),
             svc("web", deps=["api"], ports=[8080], health=True), volumes=["data"])


def test_first_deploy_creates_then_starts_every_service_in_dependency_order(engine):
    assert len(switch(engine, CHAIN)) == 1
    now = view(engine)
    assert {s: (state, health) for s, (_, _, state, health) in now.items()} == {
        "db": ("running", "healthy"), "cache": ("running", None), "api": ("running", None),
        "web": ("running", "healthy")}
    assert network_name(P) in engine.networks and volume_name(P, "data") in engine.volumes
    service_of = {cid: s for s, (cid, *_) in now.items()}
    verbs = [(v, service_of.get(args[0])) for v, args in engine.calls if v in ("create", "start")]
    assert {v for v, _ in verbs[:4]} == {"create"}, "every container is created before anything starts"
    started = [s for v, s in verbs if v == "start"]
    assert sorted(started[:2]) == ["cache", "db"] and started[2:] == ["api", "web"]


def test_commit_runs_once_and_a_noop_switch_touches_nothing(engine):
    commits: list[int] = []
    switch(engine, CHAIN, commit=lambda: commits.append(1))
    assert commits == [1]
    before, mark = view(engine), len(engine.calls)
    switch(engine, CHAIN, commit=lambda: commits.append(2))
    assert commits == [1, 2] and view(engine) == before
    assert calls_since(engine, mark, "create", "start", "stop", "remove") == []


@pytest.mark.parametrize("second, services, new", [
    (spec(svc("db", health=True), svc("web", deps=["db"], env='A = "2"')), {"db", "web"}, {"web"}),
    (spec(svc("db", health=True), svc("web", "app:2", deps=["db"])), {"db", "web"}, {"web"}),
    (spec(svc("db", health=True), svc("web", deps=["db"], update="stop-first", env='A = "2"')), {"db", "web"}, {"web"}),
    (spec(svc("db", health=True), svc("web", deps=["db"]), svc("extra", deps=["db"])),
     {"db", "web", "extra"}, {"extra"}),
    (spec(svc("db", health=True)), {"db"}, set()),
], ids=["env", "image", "stop-first", "added", "removed"])
def test_an_unchanged_service_is_never_touched(engine, second, services, new):
    switch(engine, spec(svc("db", health=True), svc("web", deps=["db"])))
    first, mark = view(engine), len(engine.calls)
    switch(engine, second)
    after = view(engine)
    assert after["db"] == first["db"]
    assert [c for c in calls_since(engine, mark) if first["db"][0] in c[1]] == [], "a call named db's container"
    assert after.keys() == services and all(state == "running" for _, _, state, _ in after.values())
    assert {name for name, (cid, *_) in after.items() if cid != first.get(name, ("",))[0]} == new


@pytest.mark.parametrize("update, ports, first, old_at_commit", [
    ("start-first", (), "start new", "running"),
    ("stop-first", (), "stop old", "exited"),
    ("start-first", (8080,), "stop old", "exited"),       # the shared host port forces stop-first
    ("stop-first", (8080,), "stop old", "exited"),
])
def test_replacement_order(engine, update, ports, first, old_at_commit):
    switch(engine, spec(svc("web", ports=ports, update=update)))
    [(old, *_)] = view(engine).values()
    seen_at_commit: list[dict] = []
    switch(engine, spec(svc("web", "app:2", ports=ports, update=update)),
           commit=lambda: seen_at_commit.append({c.id: c.state for c in engine.observe(P)}))
    [(new, image, state, _)] = view(engine).values()
    assert (image, state) == (IMAGES["app:2"], "running") and new != old
    assert seen_at_commit == [{old: old_at_commit, new: "running"}]
    order = "start new" if index(engine, "start", new) < index(engine, "stop", old) else "stop old"
    assert order == first
    assert index(engine, "start", new) < index(engine, "remove", old)
    if ports:
        assert engine.observe(P)[0].host_ports == {("127.0.0.1", 8080, "tcp")}


# -- failure and undo -------------------------------------------------------------------------------
BEFORE = spec(svc("db", update="stop-first", health=True), svc("web", deps=["db"], ports=[8080], restart="no"))


def test_a_service_that_exits_fails_the_switch_and_everything_is_undone(engine):
    switch(engine, BEFORE)
    before = view(engine)
    engine.script("app:bad", exit_code=3, logs="listening\npanic: no config")
    commits: list[int] = []
    with pytest.raises(ActivationFailed) as failed:
        switch(engine, spec(svc("db", "app:2", update="stop-first", health=True),
                            svc("web", "app:bad", deps=["db"], ports=[8080], restart="no")),
               commit=lambda: commits.append(1))
    e = failed.value
    assert (e.service, e.exit_status, e.restored, commits) == ("web", 3, True, [])
    assert "web" in str(e) and "exited with code 3" in str(e) and "panic: no config" in e.logs
    assert view(engine) == before, "new containers removed, the stopped old db runs (and is healthy) again"


@pytest.mark.parametrize("restart, reason", [
    (None, "crash-looping (restarting)"),           # the default, unless-stopped: Docker restarts it
    ("on-failure:3", "crash-looping (restarting)"),
    ("no", "exited with code 1"),
])
def test_exit_reason_follows_the_restart_policy(engine, restart, reason):
    switch(engine, spec(svc("web", restart=restart)))
    before = view(engine)
    engine.script("app:bad", exit_code=1)
    with pytest.raises(ActivationFailed, match=re.escape(reason)):
        switch(engine, spec(svc("web", "app:bad", restart=restart)))
    assert view(engine) == before


@pytest.mark.parametrize("health, reason", [
    ("unhealthy", "healthcheck failed (unhealthy)"),
    ("starting", "not healthy within the timeout (state: starting)"),
])
@pytest.mark.parametrize("update", ["start-first", "stop-first"])
def test_an_unhealthy_service_fails_and_the_old_one_is_healthy_again(engine, health, reason, update):
    switch(engine, spec(svc("web", update=update, health=True)))
    before = view(engine)
    engine.script("app:bad", health=health)
    with pytest.raises(ActivationFailed, match=re.escape(reason)) as failed:
        switch(engine, spec(svc("web", "app:bad", update=update, health=True)),
               Options(timeout_s=0.1, stability_s=0, poll_s=0.001))
    assert failed.value.service == "web" and failed.value.restored
    assert view(engine) == before and before["web"][2:] == ("running", "healthy")


PAIR = spec(svc("db", update="stop-first"), svc("web", deps=["db"], update="stop-first"))
PAIR_2 = spec(svc("db", "app:2", update="stop-first"), svc("web", "app:2", deps=["db"], update="stop-first"))


def occupy_name(engine):
    """A container of another profile already holds the name web's new container needs."""
    target = compile_spec(parse_spec(PAIR_2), P, lambda req: IMAGES[req.ref])
    [step] = [s for s in plan(P, target.services, engine.observe(P)).steps if s.service == "web"]
    engine.create("other", "web", target.services["web"][1], "h", "m", 1, step.create[0].name,
                  Wiring(networks={network_name(P): ["web"]}))


@pytest.mark.parametrize("break_it, message", [
    (lambda e: e.script("web", fail_create="no space left on device"), "no space left on device"),
    (lambda e: (e.images.discard(IMAGES["app:2"]), e.tags.pop("app:2")), "is not present on the engine"),
    (occupy_name, "is already in use by container"),
], ids=["refused", "image-missing", "name-taken"])
def test_a_failure_in_prepare_touches_nothing_running(engine, break_it, message):
    switch(engine, PAIR)
    before, mark = view(engine), len(engine.calls)
    break_it(engine)
    with pytest.raises(ActivationFailed, match=message):
        switch(engine, PAIR_2)
    assert view(engine) == before
    assert calls_since(engine, mark, "stop", "start") == [], "nothing running was touched"


def stranger_on_port_9090(engine):
    """Another profile's running container publishes 0.0.0.0:9090, which web's new version wants."""
    obj = dict(next(iter(engine.containers.values())).obj,
               ports=[{"host_ip": "", "host_port": 9090, "container_port": 80, "protocol": "tcp"}])
    engine.start(engine.create("other", "x", obj, "h", "m", 1, "other-x", Wiring(networks={network_name(P): ["x"]})))


@pytest.mark.parametrize("break_it", [
    lambda e: e.script("app:2", fail_start="OCI runtime create failed"),
    stranger_on_port_9090,
], ids=["start-refused", "port-held-by-a-stranger"])
def test_a_start_failure_undoes(engine, break_it):
    switch(engine, spec(svc("db", update="stop-first"), svc("web", deps=["db"])))
    before = view(engine)
    break_it(engine)
    with pytest.raises(ActivationFailed, match="OCI runtime|port is already allocated"):
        switch(engine, spec(svc("db", "app:2", update="stop-first"), svc("web", "app:2", deps=["db"], ports=[9090])))
    assert view(engine) == before


def test_undo_stops_again_what_the_switch_restarted(engine):
    switch(engine, spec(svc("db"), svc("api", deps=["db"])))
    db = view(engine)["db"][0]
    engine.stop(db, None)                                  # stopped outside gen: the plan repairs it
    engine.script("app:bad", exit_code=1)
    with pytest.raises(ActivationFailed, match="service api"):
        switch(engine, spec(svc("db"), svc("api", "app:bad", deps=["db"])))
    assert any(v == "start" and args == (db,) for v, args in engine.calls), "the repair did start db"
    assert view(engine)["db"][:3] == (db, IMAGES["app:1"], "exited"), "the undo leaves db as it found it"
    assert view(engine)["api"][1:3] == (IMAGES["app:1"], "running")


@pytest.mark.parametrize("error", [
    StoreError("object abc", "no such object in the store"),
    StateUnwritable("/state/profiles/shop", "no space left on device"),
    ProfileError("profile shop", "generation 3 vanished"),
    GenError("image pin gen-pin/shop:1", "the engine refused to tag"),
], ids=lambda e: type(e).__name__)
def test_a_failing_commit_undoes_like_any_failure(engine, error):
    switch(engine, BEFORE)
    before = view(engine)

    def commit():
        raise error
    with pytest.raises(ActivationFailed, match=re.escape(error.reason)) as failed:
        switch(engine, spec(svc("db", "app:2", update="stop-first", health=True),
                            svc("web", "app:2", deps=["db"], ports=[8080], restart="no")), commit=commit)
    assert failed.value.restored and view(engine) == before


def test_when_the_old_generation_cannot_come_back_the_failure_says_so(engine):
    switch(engine, spec(svc("web", update="stop-first", restart="no")))
    engine.script("web", exit_code=2)              # by service name: the old container fails on restart too
    with pytest.raises(ActivationFailed) as failed:
        switch(engine, spec(svc("web", "app:2", update="stop-first", restart="no")))
    e = failed.value
    assert (e.restored, e.exit_code, e.service) == (False, 3, "web") and "ALSO failed" in str(e)
    assert [(c.image_id, c.state, c.exit_code) for c in engine.observe(P)] == [(IMAGES["app:1"], "exited", 2)]


def test_a_cleanup_failure_after_the_commit_is_reported_not_undone(engine, monkeypatch):
    switch(engine, spec(svc("web")))
    [(old, *_)] = view(engine).values()

    def refuse(cid):
        raise GenError(f"container {cid[:12]}", "removal of container is already in progress")
    monkeypatch.setattr(engine, "remove", refuse)
    commits: list[int] = []
    with pytest.raises(Interrupted, match="gen recover"):
        switch(engine, spec(svc("web", "app:2")), commit=lambda: commits.append(1))
    assert commits == [1]
    assert sorted((c.image_id, c.state) for c in engine.observe(P)) == [
        (IMAGES["app:1"], "exited"), (IMAGES["app:2"], "running")]
    assert old in {c.id for c in engine.observe(P)}, "left for `gen recover` to remove"


@pytest.mark.parametrize("probe, early, ok", [
    (0, True, True),            # gen's own probe passes while Docker still says "starting"
    (1, True, False),           # failed probes count for nothing: the timeout decides
    ("hang", True, False),
    (0, False, False),          # without early probes only Docker's check counts, and it never ends
])
def test_early_probes_pass_a_service_docker_has_not_checked_yet(engine, probe, early, ok):
    engine.script("app:1", health="starting", probe=probe)
    options = Options(timeout_s=0.1, stability_s=0, poll_s=0.001, early_probes=early)
    if ok:
        switch(engine, spec(svc("web", health=True)), options)
    else:
        with pytest.raises(ActivationFailed, match=re.escape("not healthy within the timeout (state: starting)")):
            switch(engine, spec(svc("web", health=True)), options)
    assert [(c.state, c.health) for c in engine.observe(P)] == ([("running", "starting")] if ok else [])
    assert any(verb == "probe_start" for verb, _ in engine.calls) == early


# -- volumes are data ---------------------------------------------------------------------------------
WITH_DATA = spec(svc("db", volumes=["data:/var/lib/db"], update="stop-first"), svc("web", deps=["db"]),
                 volumes=["data"])


@pytest.mark.parametrize("second, fails", [
    (spec(), False),                                                         # the deployment is deleted
    (spec(svc("web")), False),                                               # the volume's user is dropped
    (spec(svc("db", "app:2", volumes=["data:/var/lib/db"]), svc("web", deps=["db"]), volumes=["data"]), False),
    (spec(svc("db", "app:bad", volumes=["data:/var/lib/db"]), svc("web", deps=["db"]), volumes=["data"]), True),
], ids=["empty", "dropped", "replaced", "failed"])
def test_named_volumes_are_never_removed(engine, second, fails):
    engine.script("app:bad", exit_code=1)
    switch(engine, WITH_DATA)
    labels = engine.volumes[volume_name(P, "data")]
    assert labels == {"gen.profile": P}
    if fails:
        with pytest.raises(ActivationFailed):
            switch(engine, second)
    else:
        switch(engine, second)
    assert engine.volumes == {volume_name(P, "data"): labels}
    if second == spec():
        assert engine.observe(P) == [] and network_name(P) not in engine.networks


# -- the edges of issue 10, and no two writers on one volume (issue 11) -----------------------------
@pytest.mark.parametrize("where, error", [
    ("commit", OSError(28, "No space left on device")),
    ("commit", KeyError("services")),
    ("engine", TimeoutError("read timed out")),         # e.g. requests' ReadTimeout from a hung dockerd
], ids=["commit-OSError", "commit-KeyError", "engine-timeout"])
def test_any_exception_undoes(engine, monkeypatch, where, error):
    switch(engine, BEFORE)
    before = view(engine)

    def fail(*args):
        raise error
    if where == "engine":
        start = engine.start
        def start_except_new_web(cid):
            c = engine.containers[cid]
            return fail() if (c.labels["gen.service"], c.obj["image"]) == ("web", "app:2") else start(cid)
        monkeypatch.setattr(engine, "start", start_except_new_web)
    with pytest.raises((ActivationFailed, type(error))):      # whichever the fix chooses to raise
        switch(engine, spec(svc("db", "app:2", update="stop-first", health=True),
                            svc("web", "app:2", deps=["db"], ports=[8080], restart="no")),
               commit=fail if where == "commit" else None)
    assert {c.id: c.state for c in engine.observe(P)} == {cid: state for cid, _, state, _ in before.values()}


def test_a_paused_container_runs_again_after_a_switch(engine):
    switch(engine, spec(svc("db"), svc("web", deps=["db"])))
    db = view(engine)["db"][0]
    engine.pause(db)
    switch(engine, spec(svc("db"), svc("web", "app:2", deps=["db"])))
    assert view(engine)["db"][:3] == (db, IMAGES["app:1"], "running")


def test_two_writers_never_share_a_volume(engine):
    shared = spec(svc("db", volumes=["data:/var/lib/db"], update=None), volumes=["data"])
    switch(engine, shared)
    [(old, *_)] = view(engine).values()
    at_commit: list[dict] = []
    switch(engine, shared.replace('"app:1"', '"app:2"'),
           commit=lambda: at_commit.append({c.id: c.state for c in engine.observe(P)}))
    assert at_commit[0][old] == "exited", "the old writer still ran when the new one started"


def test_a_refused_start_names_its_service(engine):
    switch(engine, spec(svc("web")))
    engine.script("app:2", fail_start="OCI runtime create failed")
    with pytest.raises(ActivationFailed) as failed:
        switch(engine, spec(svc("web", "app:2")))
    assert failed.value.service == "web" and "web" in str(failed.value)


# -- the two-phase commit: what may be undone, then the flip; a flip that happened is never undone ----
class FakePointer:
    """`current` and the records of a profile, as the commit sees them; each phase can be made to fail."""

    def __init__(self, fail: str | None = None):
        self.current, self.records, self.fail = "old", ["old"], fail

    def commit(self) -> Commit:

        def prepare():
            self.records.append("new")
            if self.fail == "prepare":
                raise OSError(5, "Input/output error")

        def flip():
            if self.fail == "rename":                  # the rename itself failed: nothing moved
                raise StateUnwritable.from_os_error("current", OSError(28, "No space left on device"))
            self.current = "new"
            if self.fail == "fsync":                   # the rename returned; the directory fsync did not
                raise StateUnwritable.from_os_error("profiles/shop", OSError(5, "Input/output error"))
            return 7

        return Commit(prepare=prepare, flip=flip, flipped=lambda: self.current == "new",
                      abandon=lambda: self.records.remove("new"))


@pytest.mark.parametrize("fail", ["prepare", "rename"])
def test_a_commit_that_fails_before_the_flip_is_undone_and_abandoned(engine, fail):
    switch(engine, BEFORE)
    before = {cid: state for cid, _, state, _ in view(engine).values()}
    pointer = FakePointer(fail)
    with pytest.raises(ActivationFailed) as failed:
        switch(engine, spec(svc("db", "app:2", update="stop-first"), svc("web", "app:2", deps=["db"], ports=[8080])),
               commit=pointer.commit())
    assert failed.value.restored and failed.value.exit_code == 2
    assert {c.id: c.state for c in engine.observe(P)} == before
    assert (pointer.current, pointer.records) == ("old", ["old"])


def test_a_failure_after_the_flip_finishes_forward_and_is_never_undone(engine):
    switch(engine, BEFORE)
    old = {cid for cid, *_ in view(engine).values()}
    pointer = FakePointer("fsync")
    with pytest.raises(Interrupted) as interrupted:
        switch(engine, spec(svc("db", "app:2", update="stop-first"), svc("web", "app:2", deps=["db"], ports=[8080])),
               commit=pointer.commit())
    assert interrupted.value.exit_code == 3 and "gen recover" in str(interrupted.value)
    assert pointer.current == "new" and pointer.records == ["old", "new"]
    running = view(engine)
    assert {image for _, image, state, _ in running.values() if state == "running"} == {IMAGES["app:2"]}
    assert old.isdisjoint(cid for cid, *_ in running.values()), "the old generation's containers were removed"


def test_run_returns_what_the_flip_returned(engine):
    assert Activation(engine, compile_spec(parse_spec(BEFORE), P, lambda req: IMAGES[req.ref]),
                      plan(P, compile_spec(parse_spec(BEFORE), P, lambda req: IMAGES[req.ref]).services, [], {}),
                      FAST).run(FakePointer().commit()) == 7


# -- a failing undo: the restore itself fails (exit 3, the journal kept for `gen recover`) ---------------
WEB1 = spec(svc("web", update="stop-first", restart="no"))
WEB_BAD = spec(svc("web", "app:bad", update="stop-first", restart="no"))     # exits at once: the switch fails


def failing_once(engine, monkeypatch, verb: str, error: BaseException, which) -> list[str]:
    """Make the engine's `verb` raise `error` the first time it is called on a container `which` accepts;
    returns the containers it failed on."""
    real, failed = getattr(engine, verb), []

    def call(cid, *args):
        if not failed and which(engine.containers.get(cid)):
            failed.append(cid)
            raise error
        return real(cid, *args)
    monkeypatch.setattr(engine, verb, call)
    return failed


@pytest.fixture
def bad_exits(engine):
    engine.script("app:bad", exit_code=1, logs="boom")


def old_web(c) -> bool:
    return c is not None and c.obj["image"] == "app:1"


def new_web(c) -> bool:
    return c is not None and c.obj["image"] == "app:bad"


@pytest.mark.parametrize("verb, which, error", [
    ("start", old_web, GenError("container web", "engine refused the restart")),
    ("start", old_web, KeyError("State")),                   # not gen's own: still reported, never raw
    ("remove", new_web, GenError("container web", "removal of container is already in progress")),
    ("remove", new_web, TimeoutError("read timed out")),     # a hung engine during the undo
], ids=["restart-GenError", "restart-KeyError", "remove-GenError", "remove-timeout"])
def test_an_undo_that_fails_says_the_old_generation_is_not_restored(engine, bad_exits, monkeypatch, verb, which,
                                                                    error):
    switch(engine, WEB1)
    failed_on = failing_once(engine, monkeypatch, verb, error, which)
    with pytest.raises(ActivationFailed) as raised:
        switch(engine, WEB_BAD)
    e = raised.value
    assert failed_on, f"the undo's {verb} was never called"
    assert (e.restored, e.exit_code, e.service) == (False, 3, "web")
    assert "ALSO failed" in str(e) and (getattr(error, "reason", None) or type(error).__name__) in str(e)


def test_an_abandon_that_fails_after_a_restore_only_warns(engine):
    switch(engine, BEFORE)
    before = {cid: state for cid, _, state, _ in view(engine).values()}
    pointer = FakePointer("rename")
    commit = pointer.commit()

    def abandon():
        raise OSError(5, "Input/output error")
    commit.abandon = abandon
    warnings: list[str] = []
    target = compile_spec(parse_spec(spec(svc("db", "app:2", update="stop-first"),
                                          svc("web", "app:2", deps=["db"], ports=[8080]))), P, lambda req: IMAGES[req.ref])
    observed = engine.observe(P)
    with pytest.raises(ActivationFailed) as failed:
        Activation(engine, target, plan(P, target.services, observed, {}), FAST,
                   lambda service, state, detail: warnings.append(detail) if state == "warning" else None).run(commit)
    assert failed.value.restored and failed.value.exit_code == 2, "the old generation is back: exit 2"
    assert {c.id: c.state for c in engine.observe(P)} == before
    assert any("could not be taken back" in w for w in warnings), warnings


@pytest.fixture
def deployer(engine, tmp_path):
    """The whole transaction as `gen switch` runs it (journal, commit, activation log), on the memory engine
    and a real state directory."""
    from gen.deploy.transaction import Deployer
    from gen.state.profile import Profile
    from store import Store
    return Deployer(Store(tmp_path / "store"), engine, FAST), Profile(tmp_path, P)


def deploy(deployer, text: str):
    d, prof = deployer
    compiled = compile_spec(parse_spec(text), P, lambda req: IMAGES[req.ref])
    with prof.locked(5):                                 # as gen.api does
        return d.activate(prof, compiled, "switch", d.commit_switch(prof, compiled))


def test_a_failing_undo_keeps_the_journal_and_recover_restores_the_old_generation(engine, bad_exits, deployer,
                                                                                    monkeypatch):
    from gen.deploy.recovery import recover
    d, prof = deployer
    assert deploy(deployer, WEB1).generation == 1
    [(old, *_)] = view(engine).values()
    failing_once(engine, monkeypatch, "start", GenError("container web", "engine hiccup"), old_web)
    with pytest.raises(ActivationFailed) as failed:
        deploy(deployer, WEB_BAD)
    assert (failed.value.restored, failed.value.exit_code) == (False, 3)
    journal = prof.journal()
    assert journal and journal["kind"] == "switch", "the journal stays: the engine matches no generation"
    assert prof.current_number() == 1 and [g.number for g in prof.generations()] == [1]
    assert [(c.id, c.state) for c in engine.observe(P)] == [(old, "exited")], "the old web is down"
    assert prof.activations()[-1]["outcome"].startswith("failed"), "the failure is logged"
    monkeypatch.undo()                                   # the engine is healthy again
    with prof.locked(5):
        result = recover(d, prof)
    assert "recovered an interrupted switch" in result.message
    assert prof.journal() is None and prof.current_number() == 1
    assert [(c.id, c.image_id, c.state) for c in engine.observe(P)] == [(old, IMAGES["app:1"], "running")]


def test_a_restored_failure_removes_the_journal(engine, bad_exits, deployer):
    _, prof = deployer
    deploy(deployer, WEB1)
    with pytest.raises(ActivationFailed) as failed:
        deploy(deployer, WEB_BAD)
    assert (failed.value.restored, failed.value.exit_code) == (True, 2)
    assert prof.journal() is None and prof.current_number() == 1


# -- issue 12: images pulled by digest, depends_on conditions --------------------------------------------
def switch_pinned(engine: MemoryEngine, text: str, digests: dict[str, str]) -> None:
    """switch(), with the image digests a registry gave at build time pinned in the objects."""
    target = compile_spec(parse_spec(text), P, lambda req: ResolvedImage(IMAGES[req.ref], digests.get(req.ref)))
    observed = engine.observe(P)
    Activation(engine, target, plan(P, target.services, observed, {}), FAST).run(lambda: None)


def forget(engine: MemoryEngine, ref: str) -> None:
    """The image is gone from the engine (pruned, another host, an import)."""
    engine.images.discard(IMAGES[ref])
    engine.tags.pop(ref)


def test_a_missing_image_is_pulled_by_its_pinned_digest_before_anything_is_touched(engine):
    digest = engine.publish("registry.local/app:2", IMAGES["app:2"])
    switch(engine, spec(svc("web", update="stop-first")))
    [(old, *_)] = view(engine).values()
    forget(engine, "app:2")
    engine.publish("registry.local/app:2", IMAGES["app:1"])      # the tag moved since: only the digest is right
    switch_pinned(engine, spec(svc("web", "app:2", update="stop-first")), {"app:2": digest})
    [(_, image, state, _)] = view(engine).values()
    assert (image, state) == (IMAGES["app:2"], "running")
    assert [args[0] for verb, args in engine.calls if verb == "pull"] == [digest], "by digest, never by tag"
    assert index(engine, "pull", digest) < index(engine, "stop", old)


@pytest.mark.parametrize("digest, registry_error, message", [
    (True, "connection refused", "cannot pull registry.local/app@sha256:.*: connection refused"),
    (False, None, "is not present on the engine"),
], ids=["registry-down", "no-digest"])
def test_an_image_that_cannot_be_had_fails_the_switch_untouched(engine, digest, registry_error, message):
    pinned = engine.publish("registry.local/app:2", IMAGES["app:2"])
    switch(engine, spec(svc("web", update="stop-first")))
    before, mark = view(engine), len(engine.calls)
    forget(engine, "app:2")
    engine.registry_error = registry_error
    with pytest.raises(ActivationFailed, match=message) as failed:
        switch_pinned(engine, spec(svc("web", "app:2", update="stop-first")), {"app:2": pinned} if digest else {})
    assert failed.value.restored and view(engine) == before
    assert calls_since(engine, mark, "create", "stop", "start") == []


def conditioned(condition: str | None) -> str:
    web = svc("web", deps=["db"])
    if condition:
        web = web.replace('depends_on = ["db"]', f'depends_on = {{ db = "{condition}" }}')
    return spec(svc("db", health=True), web)


@pytest.mark.parametrize("condition, waits_for_healthy", [(None, False), ("started", False), ("healthy", True)])
def test_a_dependent_starts_once_its_dependency_runs_or_is_healthy_as_it_asks(engine, condition, waits_for_healthy):
    """Compose's meaning: a plain dependency only has to run; "healthy" waits for its healthcheck. Either
    way the switch commits only once db is healthy."""
    engine.script("db", health="starting", probe=0)          # healthy only for gen's own probe
    commits = switch(engine, conditioned(condition))
    db, web = view(engine)["db"][0], view(engine)["web"][0]
    probed = index(engine, "probe_start", db)
    assert (probed < index(engine, "start", web)) is waits_for_healthy
    assert commits and probed < len(engine.calls), "db was confirmed healthy before the commit either way"


def test_a_dependency_that_never_becomes_healthy_fails_the_switch_even_if_nobody_waited_for_it(engine):
    engine.script("db", health="unhealthy")
    with pytest.raises(ActivationFailed, match="service db") as failed:
        switch(engine, conditioned(None))
    assert failed.value.service == "db" and engine.observe(P) == []
