"""No two writers on one data directory (issue 11), on the real engine: a service that writes a named
volume is replaced stop-first by default, so there is no moment where its old and new containers both
run. Judged from Docker's own event stream (start and die of each container, in the engine's order),
not by polling, which could miss a short overlap."""
from __future__ import annotations

import time

import pytest

from tests.conftest import sleeper

def db(version: int, update: str) -> str:
    return "[volumes.data]\n" + sleeper("db", f'volumes = ["data:/data"]\nenv = {{ V = "{version}" }}\n{update}')


def lifetimes(d, since: float, until: float) -> dict[str, list[tuple[int, str]]]:
    """container id -> [(time in ns, "start" | "die")] for this profile's containers, from Docker's events."""
    events = d.docker.api.events(since=int(since), until=int(until) + 1, decode=True,
                                 filters={"type": "container", "label": f"gen.profile={d.profile}"})
    out: dict[str, list[tuple[int, str]]] = {}
    for e in events:
        if e.get("status") in ("start", "die"):
            out.setdefault(e["id"], []).append((e["timeNano"], e["status"]))
    return out


def overlap(d, since: float, until: float) -> bool:
    """Did two containers of the profile run at the same moment between since and until?"""
    marks = sorted((t, kind, cid) for cid, evs in lifetimes(d, since, until).items() for t, kind in evs)
    first = {}
    for t, kind, cid in marks:
        first.setdefault(cid, kind)
    running = {cid for cid, kind in first.items() if kind == "die"}      # was running when the window opened
    most = len(running)
    for t, kind, cid in marks:
        running.add(cid) if kind == "start" else running.discard(cid)
        most = max(most, len(running))
    return most > 1


@pytest.mark.parametrize("update, overlaps", [("", False), ('update = "start-first"', True)])
def test_a_service_that_writes_a_volume_never_runs_twice_unless_asked(deployment, update, overlaps):
    d = deployment
    assert d.gen("switch", d.spec(db(1, update))).code == 0
    since = time.time() - 1
    r = d.gen("switch", d.spec(db(2, update)), "--dry-run")
    assert ("stop-first: old and new must not both write its volumes" in r.out) != overlaps, r.out
    r = d.gen("switch", d.spec(db(2, update)))
    assert r.code == 0, r.err
    assert overlap(d, since, time.time()) == overlaps


def test_a_mount_that_controls_the_host_is_allowed_and_said_on_its_own_line(deployment):
    d = deployment
    spec = d.spec(sleeper("agent", 'volumes = ["/var/run/docker.sock:/var/run/docker.sock:ro"]'))
    r = d.gen("switch", spec, "--dry-run")
    assert r.code == 0, r.err
    assert "  note: service agent mounts /var/run/docker.sock (read-only): it can run any container" in r.out
    r = d.gen("switch", spec, "--json")
    assert r.code == 0, r.err
    import json
    assert any("docker.sock" in note for note in json.loads(r.out)["notes"])
