"""Roots and references of the store (issue 10, "the store and gc"), on the real engine.

gc follows only the references objects declare (a manifest's service objects; a generation record's
manifest and source; a journal's and a build root's manifest), never a string that merely looks
like a hash. A damaged object that is only needed to explain a plan never blocks a switch or a
recovery; `gen verify --repair` re-puts what a build makes again, removes nothing and says what it
could not repair. Every test removes the containers, networks and pins it made.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from store import Store
from tests.conftest import app, sleeper



def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


def age_store(state: Path, seconds: float = 3600) -> None:
    """Date every object back, as if written long before gc runs (the grace margin keeps fresh ones)."""
    t = time.time() - seconds
    for path in (state / "store" / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (t, t))


def damage(state: Path, h: str) -> None:
    """Bit rot: the object's file no longer holds the bytes its name promises."""
    path = Store(state / "store").path_of(h)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\xff")
    path.chmod(0o444)


def files(state: Path) -> dict[str, bytes]:
    """Every regular file of the state directory but the locks (what "changes nothing" is checked on)."""
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*"))
            if p.is_file() and not p.is_symlink() and not p.name.endswith("lock")}


def generation(d, n: int) -> dict:
    return json.loads(ok(d.gen("show", "-p", d.profile, str(n), "--json")).out)


# -- item 2: only declared references are followed ------------------------------------------------------
def test_gc_of_a_profile_with_secrets_warns_of_nothing(deployment):
    d = deployment
    (d.dir / "token.txt").write_text("s3cr3t")
    ok(d.gen("switch", d.spec('[secrets.token]\nfile = "token.txt"\n' + sleeper("app", 'secrets = ["token"]')), "-q"))
    report = json.loads(ok(d.gen("gc", "--json")).out)
    assert report["warnings"] == [], "a secret's digest (64 hex digits) is not a reference"
    assert report["objects_deleted"] == 0 and ok(d.gen("verify")).code == 0


def test_gc_follows_only_declared_references(deployment):
    """A value that happens to name an object keeps nothing alive: gc over-approximates nowhere."""
    d = deployment
    store = Store(d.state / "store")
    junk = store.put({"kind": "junk"})
    ok(d.gen("switch", d.spec(app(junk)), "-q"))
    age_store(d.state)
    report = json.loads(ok(d.gen("gc", "--json")).out)
    assert not store.has(junk) and report["objects_deleted"] == 1 and report["warnings"] == []
    assert ok(d.gen("verify", "--json")).code == 0


# -- build roots -----------------------------------------------------------------------------------------
def test_a_build_is_a_root_until_the_next_build_of_its_profile(deployment):
    d = deployment
    store = Store(d.state / "store")
    first = json.loads(ok(d.gen("build", d.spec(app("v1")), "--json")).out)
    other = json.loads(ok(d.gen("build", d.spec(app("v3")), "-p", f"{d.profile}-other", "--json")).out)
    second = json.loads(ok(d.gen("build", d.spec(app("v2")), "--json")).out)
    age_store(d.state)
    report = json.loads(ok(d.gen("gc", "--json")).out)
    assert not store.has(first["hash"]) and not store.has(first["services"]["app"])     # replaced: like Nix's result
    assert all(store.has(h) for b in (second, other) for h in [b["hash"], *b["services"].values()])
    assert report["objects_deleted"] == 2 and report["warnings"] == []
    assert (d.state / "roots" / "builds" / d.profile).read_text() == second["hash"] + "\n"


def test_an_unreadable_build_root_aborts_gc_and_names_it(deployment):
    d = deployment
    built = json.loads(ok(d.gen("build", d.spec(app("v1")), "--json")).out)
    root = d.state / "roots" / "builds" / d.profile
    root.write_text("not a hash\n")
    age_store(d.state)
    before = files(d.state)
    r = d.gen("gc")
    assert r.code == 1 and str(root) in r.err and "build root" in r.err and "Traceback" not in r.err
    assert files(d.state) == before and Store(d.state / "store").has(built["hash"])


# -- item 4: damaged objects -----------------------------------------------------------------------------
def test_a_damaged_stale_object_does_not_block_a_switch_and_verify_repair_rewrites_it(deployment):
    d = deployment
    v1, v2 = d.spec(app("v1")), d.spec(app("v2"))
    ok(d.gen("switch", v1, "-q"))
    old_app = generation(d, 1)["services"]["app"]["hash"]
    damage(d.state, old_app)                   # read by the next switch only to explain its plan

    result = json.loads(ok(d.gen("switch", v2, "--json")).out)
    assert [s["reason"] for s in result["plan"] if s["service"] == "app"] == ["changed"], "less precise, not blocked"
    r = d.gen("rollback", "-q")
    assert r.code == 1 and old_app in r.err and "checksum" in r.err       # generation 1 itself needs it

    repaired = d.gen("verify", "--repair", "--json")
    assert repaired.code == 0, repaired.out
    assert json.loads(repaired.out)["repaired"] == [{"hash": old_app, "from": str(v1)}]
    ok(d.gen("rollback", "-q"))
    assert {c.labels["gen.hash"] for c in d.containers()} >= {old_app}


def test_a_damaged_object_of_an_interrupted_switch_does_not_block_recover(deployment):
    d = deployment
    v1, v2 = d.spec(app("v1")), d.spec(app("v2"))
    ok(d.gen("switch", v1, "-q"))
    new_app = json.loads(ok(d.gen("build", v2, "--json")).out)["services"]["app"]
    trace = d.dir / "trace"
    killed = d.gen_process("switch", v2, "-q", env={"GEN_FAULT_TRACE": str(trace), "GEN_FAULT_KILL_AT": "3"})
    assert killed.code == -9 and trace.read_text().splitlines()[-1].startswith(f"3 created {d.profile}-app")
    damage(d.state, new_app)                   # the half-created container's object: stale for recovery

    ok(d.gen("recover", "-p", d.profile))
    assert {c.labels["gen.hash"] for c in d.containers()} == set(generation(d, 1)["services"][s]["hash"]
                                                                  for s in ("app", "db"))
    assert ok(d.gen("status", "-p", d.profile, "--json")).code == 0


def test_verify_repair_removes_nothing_and_says_what_it_cannot_repair(deployment):
    d = deployment
    v1, v2 = d.spec(app("v1")), d.spec(app("v2"))
    ok(d.gen("switch", v1, "-q"))
    h2 = ok(d.gen("build", v2)).last_line
    ok(d.gen("switch", h2, "-p", d.profile, "-q"))          # by hash: generation 2 records no source
    app1, app2 = generation(d, 1)["services"]["app"]["hash"], generation(d, 2)["services"]["app"]["hash"]
    damage(d.state, app1)
    Store(d.state / "store").path_of(app2).unlink()
    before = files(d.state)

    r = d.gen("verify", "--repair", "--json")
    assert r.code == 1
    result = json.loads(r.out)
    assert result["repaired"] == [{"hash": app1, "from": str(v1)}]
    assert result["missing"] == [{"hash": app2, "kind": "service", "service": "app",
                                  "needed_by": [{"profile": d.profile, "generation": 2}]}]
    assert any("generation 2 recorded no readable spec source" in n for n in result["repair_notes"])
    after = files(d.state)
    assert set(after) == set(before) and [k for k in after if after[k] != before[k]] == \
        [str(Store(d.state / "store").path_of(app1).relative_to(d.state))], "only the damaged file was rewritten"
    text = d.gen("verify", "--repair")
    assert text.code == 1 and f"missing  {app2}  service app, needed by profile {d.profile} generation 2" in text.out
    assert "--from" in text.out

    r = d.gen("verify", "--from", str(v2), "--json")                 # the caller provides the spec
    assert r.code == 0 and json.loads(r.out)["repaired"] == [{"hash": app2, "from": str(v2)}]


def test_gc_keeps_a_damaged_service_object_and_refuses_a_damaged_manifest(deployment):
    d = deployment
    ok(d.gen("switch", d.spec(app("v1")), "-q"))
    ok(d.gen("switch", d.spec(app("v2")), "-q"))
    one, two = generation(d, 1), generation(d, 2)
    damage(d.state, one["services"]["app"]["hash"])
    age_store(d.state)
    report = json.loads(ok(d.gen("gc", "--json")).out)
    assert report["objects_deleted"] == 0 and Store(d.state / "store").path_of(one["services"]["app"]["hash"]).exists()
    assert any(one["services"]["app"]["hash"][:12] in w and "damaged" in w for w in report["warnings"])
    assert any("pins left as they are" in w for w in report["warnings"])

    damage(d.state, two["hash"])
    before = files(d.state)
    r = d.gen("gc", "--keep", "1")
    assert r.code == 1 and two["hash"] in r.err and "gc changed nothing" in r.err and "verify --repair" in r.err
    assert files(d.state) == before
