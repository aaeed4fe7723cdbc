"""gen gc: generation rules (--keep, --older-than with Nix's rule, current never), store reachability
across profiles, the grace rule, dry runs, and image pins on the real engine (a pinned image survives
`docker image prune`; once released, prune removes it). Every test removes the containers, networks,
volumes, images and tags it made."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from gen.cli.views import render_gc
from gen.state.retention import GcReport, parse_age, select
from gen.state.identity import state_id
from gen.state.pins import is_gen_pin, pin_repo, pin_tag
from gen.errors import GenError
from gen.state.profile import Generation, Profile
from store import Store, atomic_write
from tests.cleanup import remove_pins
from tests.conftest import ROOT

APP = """
[services.app]
image = "{app_image}"
command = ["sleep", "3600"]
env = {{ V = "{value}" }}
stop_grace = "0s"

[services.db]
image = "{{image}}"
command = ["sleep", "3600"]
stop_grace = "0s"
"""


def app(value: str, app_image: str = "{image}") -> str:
    return APP.format(value=value, app_image=app_image)


# -- helpers ----------------------------------------------------------------------------------------
def gc(d, *args: str) -> dict:
    r = d.gen("gc", "-p", d.profile, *args, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def numbers(d, profile: str | None = None) -> list[int]:
    return Profile(d.state, profile or d.profile).numbers()


def closure(d, number: int, profile: str | None = None) -> dict[str, str]:
    """A generation's objects: its manifest, its services' objects and its source object (if recorded)."""
    record = json.loads((d.state / "profiles" / (profile or d.profile) / "generations" / f"{number}.json").read_bytes())
    services = Store(d.state / "store").get(record["manifest"])["services"]
    return {"manifest": record["manifest"], **services, **({"source": record["source"]} if record.get("source") else {})}


def only_in(objects: dict[int, dict[str, str]], gone, kept) -> set[str]:
    """Objects reached by the generations `gone` and by none of `kept`."""
    return {h for n in gone for h in objects[n].values()} - {h for n in kept for h in objects[n].values()}


def age_store(state: Path, seconds: float = 3600) -> None:
    """Date every object back, as if written long before gc runs (the grace rule keeps fresh ones)."""
    t = time.time() - seconds
    for path in (state / "store" / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (t, t))


def rewrite_created(d, when: dict[int, datetime], profile: str | None = None) -> None:
    """Edit generation records' creation times the way gen.profile writes them."""
    gens = d.state / "profiles" / (profile or d.profile) / "generations"
    for n, t in when.items():
        record = json.loads((gens / f"{n}.json").read_bytes())
        record["created"] = t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        atomic_write(gens / f"{n}.json", (json.dumps(record, sort_keys=True) + "\n").encode())


def snapshot(state: Path) -> dict:
    files = {}
    for path in sorted(state.rglob("*")):
        if path.name == "lock":
            continue
        rel = str(path.relative_to(state))
        if path.is_symlink():
            files[rel] = ("link", os.readlink(path))
        elif path.is_file():
            st = path.stat()
            files[rel] = ("file", st.st_size, st.st_mtime_ns, path.read_bytes())
    return files


def pins(docker_client, profile: str, state) -> dict[str, str]:
    prefix = pin_repo(profile, state_id(state)) + ":"
    return {ref: img.id for img in docker_client.images.list() for ref in img.tags if ref.startswith(prefix)}


@pytest.fixture
def d(deployment):
    yield deployment
    remove_pins(deployment.docker, deployment.profile)


def switch_all(d, values) -> None:
    for v in values:
        r = d.gen("switch", d.spec(app(v)), "-q")
        assert r.code == 0, r.err


# -- pure rules -------------------------------------------------------------------------------------
def test_parse_age():
    assert parse_age("30d") == 30 * 86400 and parse_age("12h") == 43200 and parse_age("90m") == 5400
    assert parse_age("1w") == 7 * 86400 and parse_age("1d12h") == 86400 + 43200 and parse_age("45s") == 45
    for bad in ("", "30", "d", "-1d", "30x", "1.5d", "30 d", "1y"):
        with pytest.raises(GenError, match="--older-than"):
            parse_age(bad)


def _gens(*ages_days: float, now: float = 1_000_000_000.0) -> list[Generation]:
    return [Generation(i + 1, "0" * 64, datetime.fromtimestamp(now - a * 86400, timezone.utc)
                       .isoformat(timespec="seconds").replace("+00:00", "Z")) for i, a in enumerate(ages_days)]


@pytest.mark.parametrize("ages, current, keep, older, kept", [
    ((50, 40, 30, 20, 10), 5, None, None, [1, 2, 3, 4, 5]),          # no rule: nothing deleted
    ((50, 40, 30, 20, 10), 5, 2, None, [4, 5]),
    ((50, 40, 30, 20, 10), 1, 2, None, [1, 4, 5]),                   # current survives, however old
    ((50, 40, 30, 20, 10), 5, 0, None, [5]),
    ((50, 40), 2, 7, None, [1, 2]),                                  # N larger than the history
    ((50, 40, 31, 20, 10), 5, None, 30, [3, 4, 5]),                  # Nix: newest before the cutoff stays
    ((50, 40, 31, 20, 10), 1, None, 30, [1, 3, 4, 5]),
    ((50, 40, 31, 20, 10), 5, None, 100, [1, 2, 3, 4, 5]),           # nothing that old
    ((50, 40, 31, 20, 10), 5, None, 5, [5]),                         # all old: the newest of them is 5
    ((50, 40, 31, 20, 10), 5, 1, 15, [4, 5]),                        # either rule keeps: 4 by Nix's rule
    ((50, 40, 31, 20, 10), 5, 3, 35, [2, 3, 4, 5]),                  # 3,4,5 by both; 2 by Nix's rule
    ((50, 40, 31, 20, 10), 5, None, 45, [1, 2, 3, 4, 5]),            # a single old one is the one kept
])
def test_select(ages, current, keep, older, kept):
    gens = _gens(*ages)
    got_kept, deleted = select(gens, current, keep, older * 86400 if older else None, 1_000_000_000.0)
    assert got_kept == kept
    assert sorted(deleted + got_kept) == [g.number for g in gens]


def test_select_keeps_a_record_whose_time_cannot_be_read():
    gens = [*_gens(50, 40), Generation(3, "0" * 64, "yesterday-ish")]
    assert select(gens, 2, None, 86400, 1_000_000_000.0) == ([2, 3], [1])


def test_pin_names():
    image_id, owner = "sha256:" + "ab" * 32, "0123456789abcdef"
    assert pin_repo("shop", owner) == f"gen-pin/{owner}/shop" and pin_tag(image_id) == "ab" * 32
    assert pin_tag("sha512:abc") is None
    for awkward in ("a-", "a..b", "a_.b", "x--abc"):           # valid profile names, invalid Docker repositories
        repo = pin_repo(awkward, owner)
        assert repo.startswith(f"gen-pin/{owner}/x--") and len(repo) == len(f"gen-pin/{owner}/x--") + 16
    assert len({pin_repo(n, owner) for n in ("a-", "a--", "a.", "x--abc")}) == 4
    assert is_gen_pin(f"gen-pin/{owner}/shop:{'ab' * 32}", image_id)
    assert not is_gen_pin(f"gen-pin/{owner}/shop:{'cd' * 32}", image_id)  # names another image: not ours
    assert not is_gen_pin(f"gen-pin/{owner}/shop:latest", image_id)
    assert not is_gen_pin(f"shop/web:{'ab' * 32}", image_id)
    assert not is_gen_pin(f"gen-pin/shop:{'ab' * 32}", image_id), "the older form: whose state directory?"
    assert not is_gen_pin(f"gen-pin/{owner}/a/b:{'ab' * 32}", image_id)


def test_report_renders_every_number():
    text = render_gc(GcReport(True, objects_deleted=3, bytes_freed=2048, objects_live=5, objects_recent=1,
                              pins_released=["gen-pin/x:" + "a" * 64], warnings=["careful"]))
    assert "dry run: nothing was changed" in text and "would delete 3 object(s), 2.0 KiB" in text
    assert "5 live" in text and "1 unreferenced" in text and "would release 1" in text and "warning: careful" in text


# -- store only (no engine needed) ----------------------------------------------------------------------
def cli(state: Path, capsys, *args: str):
    from gen.cli.app import main
    capsys.readouterr()
    code = main([*args, "--state-dir", str(state)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unreferenced_objects_respect_the_grace_rule(tmp_path, capsys):
    state = tmp_path / "state"
    store = Store(state / "store")
    h = store.put({"kind": "junk", "n": 1})
    size = store.size_of(h)
    code, out, err = cli(state, capsys, "gc", "--json")        # no profile exists: only the store is collected
    assert code == 0, err
    report = json.loads(out)
    assert report["objects_recent"] == 1 and report["objects_deleted"] == 0 and store.has(h)
    age_store(state, 5)
    code, out, _ = cli(state, capsys, "gc", "--dry-run", "--json")
    assert json.loads(out)["objects_deleted"] == 1 and json.loads(out)["bytes_freed"] == size and store.has(h)
    code, out, _ = cli(state, capsys, "gc")
    assert code == 0 and "deleted 1 object(s)" in out and not store.has(h)
    assert list(store.iter_hashes()) == []


def test_bad_arguments_change_nothing(tmp_path, capsys):
    state = tmp_path / "state"
    h = Store(state / "store").put({"kind": "junk"})
    age_store(state)
    for args, message in ((["--older-than", "soon"], "--older-than"), (["--keep", "-1"], "--keep"),
                          (["-p", "nope"], "profile nope"), (["-p", "a", "--all-profiles"], "not both")):
        code, out, err = cli(state, capsys, "gc", *args)
        assert code == 1 and message in err + out, (args, err)
        assert "Traceback" not in err
    assert Store(state / "store").has(h)


# -- generations on the real engine ------------------------------------------------------------------
def test_keep_deletes_the_oldest_never_the_current_and_collects_their_objects(d):
    switch_all(d, ["v1", "v2", "v3", "v4", "v5"])
    objects = {n: closure(d, n) for n in numbers(d)}
    db = objects[1]["db"]
    assert all(o["db"] == db for o in objects.values())      # shared by every generation
    age_store(d.state)
    store = Store(d.state / "store")
    garbage = only_in(objects, (1, 2, 3), (4, 5))
    assert {objects[n]["app"] for n in (1, 2, 3)} <= garbage and db not in garbage
    sizes = sum(store.size_of(h) for h in garbage)

    report = gc(d, "--keep", "2")
    assert report["profiles"] == [{"profile": d.profile, "current": 5, "kept": [4, 5], "deleted": [1, 2, 3]}]
    assert report["generations_deleted"] == 3 and numbers(d) == [4, 5]
    assert report["objects_deleted"] == len(garbage) and report["bytes_freed"] == sizes
    assert not any(store.has(h) for h in garbage)
    live = {h for n in (4, 5) for h in objects[n].values()}
    for h in live:
        assert store.get(h) is not None                   # present, and re-hashed on read
    assert store.verify().healthy and store.verify().ok == report["objects_live"] == len(live)

    # Current is never collected, even when it is the oldest.
    switch_all(d, ["v6", "v7"])
    assert d.gen("rollback", "-p", d.profile, "--to", "4", "-q").code == 0
    running = d.ids_by_service()
    age_store(d.state)
    report = gc(d, "--keep", "1")
    assert report["profiles"][0]["kept"] == [4, 7] and report["profiles"][0]["deleted"] == [5, 6]
    assert numbers(d) == [4, 7] and d.ids_by_service() == running     # gc never touches containers
    assert d.gen("status", "-p", d.profile).code == 0
    assert d.gen("rollback", "-p", d.profile, "-q").code == 1         # nothing older than 4 remains
    assert d.gen("rollback", "-p", d.profile, "--to", "7", "-q").code == 0
    assert {(c.labels["gen.service"], c.labels["gen.hash"]) for c in d.containers()} == \
        {("app", closure(d, 7)["app"]), ("db", closure(d, 7)["db"])}


def test_older_than_keeps_the_newest_generation_before_the_cutoff(d):
    switch_all(d, ["v1", "v2", "v3", "v4", "v5"])
    now = datetime.now(timezone.utc)
    rewrite_created(d, {1: now - timedelta(days=40), 2: now - timedelta(days=35), 3: now - timedelta(days=31),
                        4: now - timedelta(days=10)})
    assert d.gen("rollback", "-p", d.profile, "--to", "1", "-q").code == 0
    objects = {n: closure(d, n) for n in numbers(d)}
    age_store(d.state)

    report = gc(d, "--older-than", "30d")
    # 1, 2, 3 are older than 30 days: 3 stays (the newest of them), 1 stays (current), 2 goes.
    assert report["profiles"][0]["deleted"] == [2] and numbers(d) == [1, 3, 4, 5]
    store = Store(d.state / "store")
    assert not any(store.has(h) for h in only_in(objects, [2], [1, 3, 4, 5]))
    assert report["objects_deleted"] == len(only_in(objects, [2], [1, 3, 4, 5])) >= 2
    assert all(store.has(h) for n in (1, 3, 4, 5) for h in objects[n].values())

    # Both rules: survive if either keeps. --keep 1 keeps 5; --older-than 7d keeps 5 and 4 (newest old one).
    report = gc(d, "--older-than", "7d", "--keep", "1")
    assert report["profiles"][0]["deleted"] == [3] and numbers(d) == [1, 4, 5]
    assert gc(d, "--older-than", "1w")["generations_deleted"] == 0
    # Neither option: generations stay, only unreachable objects go.
    assert gc(d)["generations_deleted"] == 0 and numbers(d) == [1, 4, 5]
    r = d.gen("gc", "-p", d.profile, "--older-than", "forever")
    assert r.code == 1 and "--older-than" in r.err and numbers(d) == [1, 4, 5]


def test_dry_run_changes_nothing_and_predicts_the_real_run(d):
    switch_all(d, ["v1", "v2", "v3"])
    objects = {n: closure(d, n) for n in numbers(d)}
    age_store(d.state)
    remove_pins(d.docker, d.profile)                   # so that gc would also re-pin
    before, pins_before = snapshot(d.state), pins(d.docker, d.profile, d.state)
    dry = gc(d, "--keep", "1", "--dry-run")
    assert snapshot(d.state) == before and pins(d.docker, d.profile, d.state) == pins_before == {}
    assert dry["dry_run"] and dry["profiles"][0]["deleted"] == [1, 2]
    assert dry["objects_deleted"] == len(only_in(objects, [1, 2], [3])) >= 4
    assert dry["pins_added"] == [f"{pin_repo(d.profile, state_id(d.state))}:{pin_tag(d.docker.images.get(d.image).id)}"]
    text = d.gen("gc", "-p", d.profile, "--keep", "1", "--dry-run")
    assert text.code == 0 and "would delete generation(s) 1, 2" in text.out and snapshot(d.state) == before
    real = gc(d, "--keep", "1")
    assert {**real, "dry_run": True} == dry
    assert numbers(d) == [3] and set(pins(d.docker, d.profile, d.state)) == set(dry["pins_added"])


def test_objects_of_other_profiles_and_source_objects_are_roots(d):
    """gc -p A never deletes what profile B's generations reach; a record's `source` object is a root."""
    other = d.profile + "-b"
    try:
        switch_all(d, ["v1", "v2"])
        built = json.loads(d.gen("build", d.spec(app("b-only"), name=other), "--json").out)
        prof_b = Profile(d.state, other)
        prof_b.append(built["hash"], 2)
        prof_b.set_current(1)
        store = Store(d.state / "store")
        source = store.put({"kind": "source", "text": "the spec as written"})
        record = d.state / "profiles" / d.profile / "generations" / "2.json"
        atomic_write(record, (json.dumps({**json.loads(record.read_bytes()), "source": source}, sort_keys=True)
                              + "\n").encode())
        age_store(d.state)

        r = d.gen("gc", "--keep", "1")
        assert r.code == 1 and "several exist" in r.err and "--all-profiles" in r.err
        report = gc(d, "--keep", "0")
        assert report["profiles"] == [{"profile": d.profile, "current": 2, "kept": [2], "deleted": [1]}]
        assert store.has(built["hash"]) and all(store.has(h) for h in built["services"].values())
        assert store.has(source)

        r = d.gen("gc", "--all-profiles", "--keep", "0", "--json")
        assert r.code == 0, r.err
        report = json.loads(r.out)
        assert [p["profile"] for p in report["profiles"]] == sorted([d.profile, other])
        assert report["generations_deleted"] == 0 and report["objects_deleted"] == 0
        assert pin_repo(other, state_id(d.state)) + ":" + pin_tag(d.docker.images.get(d.image).id) in report["pins_added"]
    finally:
        remove_pins(d.docker, other)


# -- image pins ------------------------------------------------------------------------------------------
def prune(label: str) -> None:
    """`docker image prune -f` (dangling images only), limited to this test's image so that other users
    of the engine are not affected."""
    subprocess.run(["docker", "image", "prune", "-f", "--filter", f"label={label}"], check=True,
                   capture_output=True)


def test_a_pinned_image_survives_prune_until_gc_releases_it(d):
    import docker
    label = f"gen-test-gc={d.profile}"
    user_ref = f"gen-test-gc/{d.profile}:1"
    box = d.docker.containers.create(d.image, ["true"])
    try:
        image = box.commit(repository=f"gen-test-gc/{d.profile}", tag="1", changes=[f"LABEL {label}"])
    finally:
        box.remove(force=True)
    foreign = f"{pin_repo(d.profile, state_id(d.state))}:mine"
    try:
        assert d.gen("switch", d.spec(app("v1", user_ref)), "-q").code == 0
        pin = f"{pin_repo(d.profile, state_id(d.state))}:{pin_tag(image.id)}"
        busybox_pin = f"{pin_repo(d.profile, state_id(d.state))}:{pin_tag(d.docker.images.get(d.image).id)}"
        assert pins(d.docker, d.profile, d.state) == {pin: image.id, busybox_pin: d.docker.images.get(d.image).id}, \
            "pinned at commit time"
        assert d.gen("switch", d.spec(app("v2")), "-q").code == 0    # no container uses the image any more
        d.docker.images.remove(user_ref)                              # the user's tag is gone: only gen's pin holds it
        prune(label)
        assert d.docker.images.get(image.id).tags == [pin], "the pin kept it from `docker image prune`"

        # gc re-pins what a kept generation uses, and leaves alone tags it did not make.
        d.docker.api.remove_image(busybox_pin, noprune=True)
        d.docker.images.get(d.image).tag(foreign.rpartition(":")[0], "mine")
        age_store(d.state)
        report = gc(d, "--keep", "2")
        assert report["generations_deleted"] == 0 and report["pins_added"] == [busybox_pin]
        assert report["pins_released"] == []

        report = gc(d, "--keep", "1")                                  # generation 1, the image's only user, goes
        assert report["profiles"][0]["deleted"] == [1] and report["pins_released"] == [pin]
        assert report["images_dropped"] == [image.id], "Docker drops an unused image with its last tag"
        prune(label)
        with pytest.raises(docker.errors.ImageNotFound):
            d.docker.images.get(image.id)
        assert set(pins(d.docker, d.profile, d.state)) == {busybox_pin, foreign}, "only gen's own stale tag was removed"
        assert d.docker.images.get(d.image).id                        # a pin never removes an image in use
    finally:
        d.cleanup()                                                   # containers first: they hold the image
        try:
            d.docker.api.remove_image(foreign, noprune=True)          # not gen's (tag "mine"): cleanup leaves it
        except docker.errors.NotFound:
            pass
        for ref in (user_ref, image.id):
            try:
                d.docker.images.remove(ref, force=True)
            except docker.errors.NotFound:
                pass


class OpenWatch:
    """inotify on one file: tells when some process opens it (a FileLock opens its file on every try)."""
    IN_OPEN = 0x20

    def __init__(self, path: Path):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, bytes(path), self.IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {path}")

    def wait(self, proc: subprocess.Popen, timeout_s: float) -> None:
        """Until the file is opened (while `proc` runs; at most timeout_s)."""
        import select
        deadline = time.monotonic() + timeout_s
        while not select.select([self.fd], [], [], 0.1)[0]:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        os.read(self.fd, 4096)

    def close(self) -> None:
        os.close(self.fd)


def test_a_switch_rewrites_objects_collected_while_it_waited_for_the_lock(d):
    """`gen switch SPEC` builds before it takes the lock; a gc holding the lock may collect that build.
    The switch writes its closure again under the lock, so the recorded generation is whole."""
    spec = d.spec(app("v1"))
    built = json.loads(d.gen("build", spec, "--json").out)
    objects = d.state / "store" / "objects"
    shutil.rmtree(objects)
    store = Store(d.state / "store")
    lock = Profile(d.state, d.profile).lock()
    lock.acquire(5)                                        # as gc does
    tries = OpenWatch(lock.path)                           # from now on, every open of the lock file is the switch's
    proc = subprocess.Popen([sys.executable, "-m", "gen", "switch", str(spec), "-q", "--state-dir", str(d.state)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tries.wait(proc, 60)                               # the switch tried to take the lock: it has built ...
        assert store.has(built["hash"]) and proc.poll() is None, "built, and waiting for the lock we hold"
        shutil.rmtree(objects)                             # ... and gc collects its unreferenced objects
        assert not store.has(built["hash"])
        assert proc.poll() is None, "still waiting: we hold the lock"
    finally:
        lock.release()
        tries.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert Profile(d.state, d.profile).get(1).manifest == built["hash"]
    assert store.has(built["hash"]) and all(store.has(h) for h in built["services"].values())
    assert store.verify().healthy
