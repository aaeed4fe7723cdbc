"""Formats and upgrades (issue 10): every kind is versioned, known older shapes are read (upgraded in
memory, never rewritten, hashes unchanged), unknown formats are refused before any engine call.

Old objects are written into the store directly, in the shapes older gens wrote (from the history of
gen/compile.py and the spec's fields), so the tests do not depend on an old gen being installed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gen.errors import CorruptState, UnknownFormat
from gen.model import formats
from gen.model.compile import compile_spec
from gen.spec import load_spec
from gen.state.manifests import load_compiled, store_compiled
from gen.state import roots
from gen.state.profile import Profile
from store import Store, hash_value
from store.errors import MissingObject
from tests.conftest import sleeper

IMAGE_ID = "sha256:" + "ab" * 32


def old_service(name: str, image: str = "gen-test/busybox:1", image_id: str = IMAGE_ID, **extra) -> dict:
    """A service object as the first gen wrote it (e6b78e9..25a8b54): no secrets, labels, user, working_dir."""
    return {"kind": "service", "name": name, "image": image, "image_id": image_id, "command": ["sleep", "3600"],
            "entrypoint": None, "env": {"WHO": name}, "ports": [], "volumes": [], "depends_on": [], "replicas": 1,
            "update": "start-first", "stop_grace_ms": 0, "restart": "unless-stopped", "healthcheck": None, **extra}


def old_manifest(profile: str, services: dict[str, str], **extra) -> dict:
    return {"kind": "manifest", "format": 1, "profile": profile, "services": services, "volumes": {},
            "networks": {"default": {}}, **extra}


def write_record(prof: Profile, number: int, manifest: str, services: int, **extra) -> None:
    """A generation record as gen wrote it before records were versioned (no `format`)."""
    prof.path.joinpath("generations").mkdir(parents=True, exist_ok=True)
    record = {"generation": number, "manifest": manifest, "created": "2026-11-26T12:00:00Z", "services": services,
              **extra}
    (prof.path / "generations" / f"{number}.json").write_text(json.dumps(record, sort_keys=True) + "\n")


def object_files(store: Store) -> dict[str, tuple[bytes, int]]:
    return {h: (store.path_of(h).read_bytes(), store.path_of(h).stat().st_mtime_ns) for h in store.iter_hashes()}


# -- pure: the kinds and their formats ---------------------------------------------------------------
HISTORY = {
    "first (no secrets, labels, user, working_dir)": old_service("a"),
    "secrets as names (25a8b54)": old_service("a", secrets=["pw"]),
    "secrets as references, no labels (efbdaad)": old_service(
        "a", secrets=[{"name": "pw", "file": "/run/pw", "digest": "d" * 64}]),
}


@pytest.mark.parametrize("shape", sorted(HISTORY))
def test_older_service_objects_are_upgraded_in_memory_keeping_their_hash(tmp_path, shape):
    store = Store(tmp_path / "store")
    raw = HISTORY[shape]
    h = store.put(raw)
    m = store.put(old_manifest("p", {"a": h}))
    before = object_files(store)

    compiled = load_compiled(store, m)
    (got_hash, obj) = compiled.services["a"]
    assert got_hash == h and compiled.manifest_hash == m, "an upgrade never renames an object"
    assert (obj["labels"], obj["user"], obj["working_dir"]) == ({}, None, None)
    expected_secrets = raw["secrets"] if raw.get("secrets") and isinstance(raw["secrets"][0], dict) else []
    assert obj["secrets"] == expected_secrets, "names-only secrets were never mounted by the gen that wrote them"
    assert {k: obj[k] for k in raw if k != "secrets"} == {k: v for k, v in raw.items() if k != "secrets"}

    # A switch re-writes the closure it activates: the stored bytes stay exactly as they were.
    assert store_compiled(store, compiled) == m
    assert object_files(store) == before


def test_objects_written_today_read_back_unchanged_and_services_carry_no_format_key(tmp_path):
    spec_file = tmp_path / "gen.toml"
    body = sleeper("app", 'labels = { team = "x" }\nuser = "1000"').replace("{image}", "gen-test/busybox:1")
    spec_file.write_text('name = "p"\n' + body)
    compiled = compile_spec(load_spec(spec_file), "p", lambda req: IMAGE_ID)
    (h, obj), = compiled.services.values()
    assert "format" not in obj, "a format key on service objects would change every service hash"
    assert compiled.manifest["format"] == 1
    store = Store(tmp_path / "store")
    store_compiled(store, compiled)
    loaded = load_compiled(store, compiled.manifest_hash)
    assert loaded.services == compiled.services and hash_value(loaded.services["app"][1]) == h


@pytest.mark.parametrize("kind", ["manifest", "service"])
@pytest.mark.parametrize("found", ["newer", "1", None, True])
def test_unknown_formats_are_refused_naming_the_object(tmp_path, kind, found):
    if found == "newer":
        found = formats.KNOWN[kind][-1] + 1
    store = Store(tmp_path / "store")
    h = store.put({**old_service("a"), **({"format": found} if kind == "service" else {})})
    m = store.put(old_manifest("p", {"a": h}, **({"format": found} if kind == "manifest" else {})))
    with pytest.raises(UnknownFormat) as e:
        load_compiled(store, m)
    assert e.value.path == f"object {m if kind == 'manifest' else h}" and e.value.exit_code == 1
    assert f"{kind} has format {found!r}" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", [
    {"image_id": 7}, {"replicas": 0}, {"ports": [{"host_port": 80}]}, {"secrets": [3]}, {"labels": "x"},
    {"healthcheck": {"test": ["CMD", "true"]}}, {"kind": "manifest"}])
def test_service_objects_gen_could_not_have_written_are_refused(tmp_path, damage):
    store = Store(tmp_path / "store")
    h = store.put({**old_service("a"), **damage})
    with pytest.raises(CorruptState) as e:
        load_compiled(store, store.put(old_manifest("p", {"a": h})))
    assert e.value.path == f"object {h}"


def test_a_service_object_listed_under_another_name_is_refused(tmp_path):
    store = Store(tmp_path / "store")
    h = store.put(old_service("a"))
    with pytest.raises(CorruptState, match="named 'a', but manifest .* lists it as 'b'"):
        load_compiled(store, store.put(old_manifest("p", {"b": h})))


def test_records_and_journals_are_versioned_and_older_ones_read(tmp_path):
    prof = Profile(tmp_path, "p")
    write_record(prof, 1, "a" * 64, 2)                         # the previous format: no `format`
    write_record(prof, 2, "b" * 64, 1, source="c" * 64)
    assert [(g.number, g.manifest, g.services, g.source) for g in prof.generations()] == [
        (1, "a" * 64, 2, None), (2, "b" * 64, 1, "c" * 64)]
    new = prof.append("d" * 64, 3)
    assert json.loads((prof.path / "generations" / f"{new.number}.json").read_text())["format"] == 1

    old_journal = {"pid": 1, "kind": "switch", "from": 1, "to": "b" * 64, "to_generation": None, "started": 1.5}
    (prof.path / "journal.json").write_text(json.dumps(old_journal))
    assert prof.journal() == old_journal
    prof.begin("rollback", 2, "a" * 64, None)
    assert json.loads((prof.path / "journal.json").read_text())["format"] == 1 and prof.journal()["kind"] == "rollback"


def test_unknown_record_and_journal_formats_are_refused_naming_the_file(tmp_path):
    prof = Profile(tmp_path, "p")
    write_record(prof, 1, "a" * 64, 1, format=2)
    with pytest.raises(UnknownFormat, match="generation record has format 2") as e:
        prof.generations()
    assert e.value.path.endswith("profiles/p/generations/1.json") and e.value.exit_code == 1
    (prof.path / "journal.json").write_text(json.dumps({"format": 9, "kind": "two-phase", "hosts": 3}))
    with pytest.raises(UnknownFormat, match="journal has format 9") as e:
        prof.journal()
    assert e.value.path.endswith("profiles/p/journal.json") and e.value.exit_code == 3
    assert (prof.path / "journal.json").exists(), "nothing is deleted"


def test_a_record_whose_number_disagrees_with_its_file_name_is_refused(tmp_path):
    prof = Profile(tmp_path, "p")
    write_record(prof, 1, "a" * 64, 1)
    (prof.path / "generations" / "1.json").rename(prof.path / "generations" / "4.json")
    with pytest.raises(CorruptState, match="says it is generation 1, but its file name says 4"):
        prof.get(4)


def test_known_formats_cover_every_kind():
    assert set(formats.KNOWN) == {"manifest", "service", "source", "secret", "config", "generation record", "journal"}
    newest = {"service": 3, "manifest": 2}
    assert all(versions == tuple(range(1, newest.get(kind, 1) + 1)) for kind, versions in formats.KNOWN.items())
    assert formats.source({"kind": "source", "text": "x"}, "object s")["path"] is None


# -- format 2: pinned secrets and config files (issue 11) ---------------------------------------------
PINNED = {"name": "pw", "target": "/run/secrets/pw", "object": "c" * 64, "uid": 0, "gid": 0, "mode": 0o444}


def pinned_service(**extra) -> dict:
    return {**old_service("a"), "labels": {}, "user": None, "working_dir": None, "format": 2,
            "secrets": [PINNED], "configs": [{**PINNED, "name": "app", "target": "/app", "object": "d" * 64}], **extra}


def test_format_2_service_objects_are_read_as_written_and_declare_their_pinned_objects(tmp_path):
    store = Store(tmp_path / "store")
    secret = store.put({"kind": "secret", "format": 1, "cipher": "AES-256-GCM-SIV", "nonce": bytes(12),
                        "sealed": b"x" * 20})
    config = store.put({"kind": "config", "format": 1, "data": b"conf"})
    raw = pinned_service(secrets=[{**PINNED, "object": secret}],
                         configs=[{**PINNED, "name": "app", "target": "/app", "object": config}])
    h = store.put(raw)
    compiled = load_compiled(store, store.put(old_manifest("p", {"a": h})))
    assert compiled.services["a"] == (h, raw) and set(compiled.materials) == {secret, config}
    assert roots.references(raw, "o") == sorted([secret, config])
    assert roots.references(old_service("a", secrets=[{"name": "pw", "file": "/f", "digest": "e" * 64}]), "o") == []
    store.delete(config)
    with pytest.raises(MissingObject):      # found when the generation is read, before anything runs
        load_compiled(store, compiled.manifest_hash)


def test_an_old_secret_shape_still_reads_as_a_bind_from_its_file():
    obj = formats.service_object(old_service("a", secrets=[{"name": "pw", "file": "/f", "digest": "e" * 64}]), "o")
    assert formats.pinned_files(obj) == [] and formats.file_mounts(obj) == [("/run/secrets/pw", "/f")]
    with pytest.raises(ValueError, match="pw was not materialised"):
        formats.file_mounts(pinned_service())


@pytest.mark.parametrize("shape", [
    {**old_service("a"), "secrets": [PINNED]},                               # format 1 with a pinned secret
    {**old_service("a"), "configs": []},                                     # format 1 with configs
    pinned_service(secrets=[{"name": "pw", "file": "/f", "digest": "e" * 64}]),   # format 2 with a file secret
    {k: v for k, v in pinned_service().items() if k != "configs"},           # format 2 without configs
    pinned_service(configs=[{**PINNED, "mode": 0o10000}]),
])
def test_mixed_secret_shapes_are_refused(shape):
    with pytest.raises(CorruptState):
        formats.service_object(shape, "object x")


@pytest.mark.parametrize("reader, value", [
    (formats.secret_object, {"kind": "secret", "format": 2, "cipher": "c", "nonce": b"", "sealed": b""}),
    (formats.secret_object, {"kind": "config", "format": 1, "data": b""}),
    (formats.secret_object, {"kind": "secret", "format": 1, "cipher": "c", "nonce": "not bytes", "sealed": b""}),
    (formats.config_object, {"kind": "config", "format": 1, "data": "text, not bytes"}),
])
def test_secret_and_config_objects_are_checked(reader, value):
    with pytest.raises(CorruptState):
        reader(value, "object x")


# -- on the real engine ---------------------------------------------------------------------------------
def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


def seed_old_generation(d, secret: Path) -> dict[str, str]:
    """Generation 1 as older gens wrote it: three service objects of three historical shapes, the
    manifest, and a record without `format`. Returns service name -> object hash, plus the manifest."""
    store = Store(d.state / "store")
    image_id = d.docker.images.get(d.image).id
    services = {
        "first": store.put(old_service("first", d.image, image_id)),
        "named": store.put(old_service("named", d.image, image_id, secrets=["pw"])),
        "mounted": store.put(old_service("mounted", d.image, image_id,
                                         secrets=[{"name": "pw", "file": str(secret), "digest": "e" * 64}])),
    }
    manifest = store.put(old_manifest(d.profile, services))
    prof = Profile(d.state, d.profile)
    write_record(prof, 1, manifest, len(services))
    prof.set_current(1)
    return {**services, "manifest": manifest}


def test_generations_written_by_the_previous_format_still_roll_back(deployment, tmp_path):
    d = deployment
    secret = tmp_path / "pw.txt"
    secret.write_text("s3cret")
    old = seed_old_generation(d, secret)
    store = Store(d.state / "store")
    before = object_files(store)

    ok(d.gen("switch", d.spec(sleeper("first", 'labels = { team = "new" }'))))       # generation 2, today's format
    r = ok(d.gen("rollback", "-p", d.profile))
    assert "generation 1 is now current" in r.out
    running = {c.labels["gen.service"]: c for c in d.containers()}
    assert {s: c.labels["gen.hash"] for s, c in running.items()} == {s: old[s] for s in ("first", "named", "mounted")}
    assert all(c.status == "running" for c in running.values())
    assert "team" not in running["first"].labels and running["first"].attrs["Config"]["User"] == ""
    assert running["mounted"].exec_run(["cat", "/run/secrets/pw"]).output == b"s3cret"
    assert running["named"].exec_run(["ls", "/run/secrets"]).exit_code != 0, "the old gen mounted no secret"
    ok(d.gen("status", "-p", d.profile))
    assert "first" in ok(d.gen("show", "-p", d.profile, "1")).out

    # The next switch to the same generation touches nothing: its hashes are the old ones.
    ids = {c.id for c in d.containers()}
    assert "already current" in ok(d.gen("switch", old["manifest"][:16], "-p", d.profile)).out
    assert {c.id for c in d.containers()} == ids
    # A switch by hash re-writes the old closure under the lock: the bytes on disk stay the old ones.
    ok(d.gen("rollback", "-p", d.profile, "--to", "2"))
    ok(d.gen("switch", old["manifest"][:16], "-p", d.profile))
    assert {h: v for h, v in object_files(store).items() if h in before} == before, "no stored object is rewritten"


def test_unknown_formats_are_refused_before_any_engine_call(deployment):
    d = deployment
    store = Store(d.state / "store")
    image_id = d.docker.images.get(d.image).id
    newer = store.put(old_manifest(d.profile, {"first": store.put(old_service("first", d.image, image_id))},
                                   format=3, placement={"hosts": 3}))
    write_record(Profile(d.state, d.profile), 1, newer, 1)
    ok(d.gen("switch", d.spec(sleeper("app"))))                        # generation 2
    ids = {c.id for c in d.containers()}

    r = d.gen("rollback", "-p", d.profile)
    assert r.code == 1 and "Traceback" not in r.err
    assert r.err.strip() == (f"error: object {newer}: manifest has format 3, but this gen reads format 1, 2 only "
                             "(written by a newer gen?); nothing was changed")
    assert {c.id for c in d.containers()} == ids and all(c.status == "running" for c in d.containers())
    assert Profile(d.state, d.profile).current_number() == 2 and Profile(d.state, d.profile).journal() is None
    r = d.gen("show", "-p", d.profile, "1")
    assert r.code == 1 and f"object {newer}: manifest has format 3" in r.err


def test_journals_of_the_previous_format_recover_and_unknown_ones_are_refused(deployment):
    d = deployment
    v1 = d.spec(sleeper("app"))
    ok(d.gen("switch", v1))
    prof = Profile(d.state, d.profile)
    journal = prof.path / "journal.json"
    journal.write_text(json.dumps({"pid": 999999, "kind": "switch", "from": 1, "to": "f" * 64,
                                   "to_generation": None, "started": 1.0}))
    assert "recovered an interrupted switch (pid 999999)" in ok(d.gen("recover", "-p", d.profile)).out
    assert not journal.exists()

    ids = {c.id for c in d.containers()}
    journal.write_text(json.dumps({"format": 7, "kind": "switch", "phase": "prepared"}))
    for args in (("switch", v1), ("status", "-p", d.profile), ("recover", "-p", d.profile)):
        r = d.gen(*args)
        assert r.code == 3 and "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, (args, r)
        assert f"error: {journal}: journal has format 7" in r.err and "remove the file" in r.err
    assert journal.exists() and {c.id for c in d.containers()} == ids


# -- format 3 service objects and format 2 manifests (issue 12) ----------------------------------------
def service_3(**extra) -> dict:
    return {**pinned_service(secrets=[], configs=[]), "format": 3, **extra}


FORMAT_3 = {
    "options": {"cap_add": ["NET_ADMIN"], "ulimits": {"nofile": [1024, 2048]}, "logging": {"driver": "local"},
                "mem_limit": 1 << 30, "oom_score_adj": -500},
    "container_name": "db", "networks": {"back": {"aliases": ["pg"]}}, "network_mode": "service:vpn",
    "conditions": {"db": "healthy", "migrate": "completed"}, "job": True, "image_digest": "r/a@sha256:" + "0" * 64,
    "volumes": [{"type": "volume", "source": "", "target": "/data", "read_only": False, "nocopy": True},
                {"type": "tmpfs", "source": "", "target": "/run", "read_only": False, "tmpfs_size": 1 << 20}],
    "healthcheck": {"test": ["CMD", "true"], "interval_ms": 1000, "timeout_ms": 1000, "retries": 3,
                    "start_period_ms": 0, "start_interval_ms": 100},
}


def test_format_3_service_objects_are_read_as_written():
    obj = service_3(**FORMAT_3)
    assert formats.service_object(obj, "object x") == obj


@pytest.mark.parametrize("damage", [
    {"placement": {"hosts": 3}},                                       # a key a newer gen added
    {"options": {"gpus": "all"}},                                      # an option this gen does not know
    {"options": {"cap_add": "NET_ADMIN"}},
    {"networks": {"back": {"priority": 5}}},
    {"conditions": {"db": "started"}},                                  # the default is never written
    {"job": False},
    {"volumes": [{"type": "npipe", "source": "", "target": "/x", "read_only": False}]},
    {"volumes": [{"type": "bind", "source": "/x", "target": "/x", "read_only": False, "bind": {}}]},
    {"healthcheck": {**FORMAT_3["healthcheck"], "start_interval_ms": "1s"}},
], ids=lambda d: next(iter(d)))
def test_format_3_keys_are_checked_and_unknown_ones_refused(damage):
    with pytest.raises(CorruptState, match="service object has"):
        formats.service_object(service_3(**damage), "object x")


def test_manifest_format_2_holds_the_declared_networks_and_nothing_unknown():
    manifest = {**old_manifest("p", {}), "format": 2,
                "networks": {"default": {}, "back": {"internal": True, "ipam": {"config": [{"subnet": "10.9.0.0/24"}]}},
                             "proxy": {"external": True, "name": "proxy"}}}
    assert formats.manifest(manifest, "object m") == manifest
    for damage in ({"placement": {}}, {"networks": {"back": {"driver_options": {}}}}):
        with pytest.raises(CorruptState):
            formats.manifest({**manifest, **damage}, "object m")


TOML = 'name = "p"\n[services.app]\nimage = "img"\n'


@pytest.mark.parametrize("extra, service_format, manifest_format", [
    ("", None, 1),                                                    # nothing new: the hash of before
    ('networks = ["default"]', None, 1),                              # the default written out is the default
    ('container_name = "app"', 3, 1),
    ('volumes = ["/data"]', 3, 1),                                     # an anonymous volume
    ('[services.app.healthcheck]\ntest = ["CMD", "true"]\nstart_interval = "100ms"', 3, 1),
    ('networks = ["back"]\n[networks.back]', 3, 2),
    ('network_mode = "host"', 3, 1),
], ids=["plain", "default-network", "container_name", "anonymous", "start_interval", "network", "host"])
def test_compile_writes_the_lowest_format_that_holds_an_object(tmp_path, extra, service_format, manifest_format):
    from gen.spec import parse_spec
    compiled = compile_spec(parse_spec(TOML + extra), "p", lambda req: IMAGE_ID)
    (_, obj), = compiled.services.values()
    assert obj.get("format") == service_format and compiled.manifest["format"] == manifest_format
    assert formats.service_object(obj, "o") == obj and formats.manifest(compiled.manifest, "m") == compiled.manifest
    if manifest_format == 1:
        assert compiled.manifest["networks"] == {"default": {}}


def test_a_spec_using_nothing_new_keeps_its_hashes():
    """The hashes of a plain spec, as the gen before format 3 wrote them: upgrading replaces nothing."""
    from gen.spec import parse_spec
    compiled = compile_spec(parse_spec(TOML), "p", lambda req: IMAGE_ID)
    (h, obj), = compiled.services.values()
    assert set(obj) == {"kind", "name", "image", "image_id", "command", "entrypoint", "env", "ports", "volumes",
                        "depends_on", "replicas", "update", "stop_grace_ms", "restart", "healthcheck", "secrets",
                        "labels", "user", "working_dir"}
    assert set(compiled.manifest) == {"kind", "format", "profile", "services", "volumes", "networks"}
