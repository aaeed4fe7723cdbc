"""The promise at the edges of one transaction, on the real engine (issue 10): a failure after the flip
of `current` is never undone; exceptions that are not gen's own undo too; bookkeeping never changes an
outcome; a paused container is brought back; a full disk fails before anything running is touched;
`gen status` never calls a switch in progress drift. Faults are injected where they happen: the
directory fsync after the rename, the SDK call of a hung engine, a log file that cannot be opened, a
tmpfs that is full."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest
import requests

from tests.conftest import sleeper

V1 = sleeper("web", 'env = { V = "1" }')
V2 = sleeper("web", 'env = { V = "2" }')


def running_env(d) -> list[str]:
    """The V of every running container of the profile (which generation runs)."""
    return sorted(next(e[2:] for e in c.attrs["Config"]["Env"] if e.startswith("V="))
                  for c in d.containers() if c.status == "running")


def current_of(d) -> int | None:
    link = d.state / "profiles" / d.profile / "current"
    return int(os.readlink(link).split("/")[-1][:-5]) if link.is_symlink() else None


def test_an_fsync_failure_after_the_rename_is_never_undone(deployment, monkeypatch):
    d = deployment
    assert d.gen("switch", d.spec(V1)).code == 0
    link = d.state / "profiles" / d.profile / "current"
    real_fsync = os.fsync

    def fsync(fd):
        # The fault where it happens: the profile directory's fsync once `current` names generation 2.
        if os.readlink(f"/proc/self/fd/{fd}") == str(link.parent) and os.readlink(link).endswith("/2.json"):
            raise OSError(5, "Input/output error")
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    r = d.gen("switch", d.spec(V2))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert r.code == 3, r.err
    assert "gen recover" in r.err and "restored" not in r.err
    assert current_of(d) == 2 and running_env(d) == ["2"], "the committed generation runs; nothing was undone"
    assert (d.state / "profiles" / d.profile / "journal.json").exists(), "the journal stays for recovery"
    r = d.gen("recover", "-p", d.profile)
    assert r.code == 0, r.err
    assert current_of(d) == 2 and running_env(d) == ["2"]
    assert d.gen("status", "-p", d.profile).code == 0


def test_a_hung_engine_during_start_undoes_the_switch(deployment, monkeypatch):
    import docker
    d = deployment
    assert d.gen("switch", d.spec(V1)).code == 0
    old = {c.id for c in d.containers()}
    real_start = docker.APIClient.start

    def start(self, container, *args, **kwargs):
        if container not in old:      # the new container: the engine stops answering (requests' read timeout)
            raise requests.exceptions.ReadTimeout("UnixHTTPConnectionPool: Read timed out. (read timeout=120)")
        return real_start(self, container, *args, **kwargs)
    monkeypatch.setattr(docker.APIClient, "start", start)
    r = d.gen("switch", d.spec(V2))
    monkeypatch.setattr(docker.APIClient, "start", real_start)
    assert r.code == 2, r.err
    assert "service web" in r.err and "did not answer" in r.err and "Traceback" not in r.err
    assert current_of(d) == 1 and running_env(d) == ["1"] and {c.id for c in d.containers()} == old


@pytest.mark.parametrize("outcome", ["committed", "failed"])
def test_a_broken_activation_log_changes_no_outcome(deployment, outcome):
    d = deployment
    assert d.gen("switch", d.spec(V1)).code == 0
    log = d.state / "profiles" / d.profile / "activations.log"
    log.unlink()
    log.mkdir()                    # open(..., "a") now fails with IsADirectoryError
    bad = V2.replace('["sleep", "3600"]', '["sh", "-c", "exit 7"]') + 'restart = "no"\n'
    assert bad != V2
    r = d.gen("switch", d.spec(V2 if outcome == "committed" else bad))
    assert r.code == (0 if outcome == "committed" else 2), r.err
    assert "warning: writing the activation log failed" in r.err or outcome == "failed"
    assert running_env(d) == (["2"] if outcome == "committed" else ["1"])
    assert current_of(d) == (2 if outcome == "committed" else 1)
    assert not (d.state / "profiles" / d.profile / "journal.json").exists()


def test_a_paused_container_is_brought_back_by_recover(deployment):
    d = deployment
    assert d.gen("switch", d.spec(V1)).code == 0
    [c] = d.containers()
    c.pause()
    assert d.gen("status", "-p", d.profile).code == 3
    r = d.gen("recover", "-p", d.profile)
    assert r.code == 0, r.err
    c.reload()
    assert c.status == "running"
    assert d.gen("status", "-p", d.profile).code == 0


@pytest.fixture
def tiny_state(deployment):
    """A 2 MiB tmpfs as the state directory: a real disk that can be filled."""
    d = deployment
    d.state.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(d.state)], check=True)
    yield d
    subprocess.run(["umount", "-l", str(d.state)], check=False)


@pytest.mark.parametrize("blocks, says", [(64, "disk full"),             # the build's own writes fail
                                          (24, "KiB are needed to commit")])  # room to build, not to commit
def test_a_full_disk_fails_before_anything_running_is_touched(tiny_state, blocks, says):
    d = tiny_state
    spec = d.spec(sleeper("web", 'env = { V = "1" }\nports = ["127.0.0.1:0:80"]'.replace(":0:", ":18793:")))
    assert d.gen("switch", spec).code == 0
    [c] = d.containers()
    started = c.attrs["State"]["StartedAt"]
    filler = d.state / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", f"count={blocks}"], capture_output=True)
    r = d.gen("switch", d.spec(sleeper("web", 'env = { V = "2" }\nports = ["127.0.0.1:18793:80"]')))
    assert r.code == 1, r.err
    assert says in r.err and r.err.count("\n") == 1, r.err
    c.reload()
    assert c.status == "running" and c.attrs["State"]["StartedAt"] == started, "the old container was never stopped"
    assert [x.id for x in d.containers()] == [c.id]
    filler.unlink()
    assert d.gen("switch", d.spec(sleeper("web", 'env = { V = "2" }\nports = ["127.0.0.1:18793:80"]'))).code == 0


def test_status_during_a_switch_says_in_progress_never_drift(deployment):
    d = deployment
    assert d.gen("switch", d.spec(sleeper("web", 'env = { V = "1" }'))).code == 0
    slow = sleeper("web", 'env = { V = "2" }') + '[services.web.healthcheck]\ntest = ["CMD-SHELL", "sleep 1"]\n' \
        'interval = "1s"\ntimeout = "5s"\n'
    spec = d.spec(slow)
    switch = threading.Thread(target=lambda: d.gen_process("switch", spec, "--quiet"))
    switch.start()
    codes: list[int] = []
    while switch.is_alive():
        r = d.gen_process("status", "-p", d.profile, "--json")
        codes.append(r.code)
        if r.code == 4:
            assert json.loads(r.out)["activation"]["state"] == "in progress"
        time.sleep(0.05)
    switch.join()
    assert 3 not in codes, f"status called a switch in progress drift: {codes}"
    assert 4 in codes, f"status never saw the switch in progress: {codes}"
    assert d.gen("status", "-p", d.profile).code == 0


def test_an_unexpected_error_is_one_line_and_names_recover(deployment, monkeypatch):
    from gen.api import Gen
    d = deployment

    def broken(self, *args, **kwargs):
        raise KeyError("services")
    monkeypatch.setattr(Gen, "status", broken)
    r = d.gen("status", "-p", d.profile)
    assert r.code == 70
    assert r.err.count("\n") == 1 and "KeyError" in r.err and "gen recover" in r.err and "Traceback" not in r.err
