"""Issue 11, exactness: a generation carries its secrets. The value is sealed into the store (AES-GCM-SIV,
keyed by the state directory's key), materialised on tmpfs per service at activation and mounted from
there, so a rollback restores exactly the old value even after the file changed or was deleted.

Pure tests first (sealing, compile, the key file, where the run directory is), then the real engine."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from gen.deploy.materialize import filesystem_of, profile_dir, run_root
from gen.errors import CorruptState, SpecError
from gen.model import formats
from gen.model.compile import compile_spec
from gen.spec import parse_spec
from gen.state import roots
from gen.state.secrets import KEY_FILE_ENV, file_pinner, seal, secret_key, unseal
from store import decode, encode
from tests.conftest import sleeper

IMAGE_ID = "sha256:" + "ab" * 32
KEY = bytes(range(32))


# -- sealing ---------------------------------------------------------------------------------------
def test_a_sealed_secret_opens_with_its_key_only_and_holds_no_plaintext(tmp_path):
    obj = seal(KEY, b"hunter2-plaintext")
    assert obj["kind"] == "secret" and obj["cipher"] == "AES-256-GCM-SIV" and len(obj["nonce"]) == 12
    assert b"hunter2" not in encode(obj)
    assert unseal(KEY, formats.secret_object(decode(encode(obj)), "o"), "o", tmp_path / "k") == b"hunter2-plaintext"
    with pytest.raises(CorruptState) as e:
        unseal(bytes(32), obj, "object abc", tmp_path / "k")
    assert str(e.value).startswith("object abc: secret cannot be decrypted with the key ") and "\n" not in str(e.value)
    tampered = {**obj, "sealed": bytes([obj["sealed"][0] ^ 1]) + obj["sealed"][1:]}
    with pytest.raises(CorruptState):
        unseal(KEY, tampered, "o", tmp_path / "k")


def test_sealing_is_deterministic_so_an_unchanged_secret_keeps_its_object():
    assert encode(seal(KEY, b"v")) == encode(seal(KEY, b"v"))
    others = [seal(KEY, b"w"), seal(bytes(32), b"v")]
    assert all(o["nonce"] != seal(KEY, b"v")["nonce"] and o["sealed"] != seal(KEY, b"v")["sealed"] for o in others)


# -- compile -----------------------------------------------------------------------------------------
SPEC = """
[secrets.pw]
file = "pw.txt"
[services.owned]
image = "x"
user = "1000:1001"
secrets = ["pw"]
[services.named]
image = "x"
user = "nobody"
secrets = ["pw"]
[services.plain]
image = "x"
"""


def compiled(tmp_path, value: bytes = b"s3cret"):
    (tmp_path / "pw.txt").write_bytes(value)
    return compile_spec(parse_spec(SPEC, "gen.toml", str(tmp_path)), "p", lambda req: IMAGE_ID,
                        file_pinner(tmp_path / "state"), str(tmp_path / "state"))


def test_compile_pins_secrets_by_object_and_owner(tmp_path):
    c = compiled(tmp_path)
    owned, named, plain = (c.services[n][1] for n in ("owned", "named", "plain"))
    (ref,) = owned["secrets"]
    assert owned["format"] == 2 and owned["configs"] == []
    assert ref == {"name": "pw", "target": "/run/secrets/pw", "object": ref["object"], "uid": 1000, "gid": 1001,
                   "mode": 0o400}
    assert named["secrets"][0]["object"] == ref["object"]
    assert (named["secrets"][0]["uid"], named["secrets"][0]["mode"]) == (0, 0o444), "a user by name: root, 0444"
    assert "format" not in plain and "configs" not in plain, "a service that pins nothing stays format 1"
    assert set(c.materials) == {ref["object"]} and b"s3cret" not in c.materials[ref["object"]]
    assert roots.references(owned, "o") == [ref["object"]], "gc keeps the secret objects of kept generations"
    assert formats.service_object(decode(c.encoded[c.services["owned"][0]]), "o") == owned
    assert compiled(tmp_path).manifest_hash == c.manifest_hash, "same value, same generation"
    assert compiled(tmp_path, b"other").manifest_hash != c.manifest_hash


def test_an_unreadable_secret_file_names_its_key(tmp_path):
    with pytest.raises(SpecError) as e:
        compile_spec(parse_spec(SPEC, "gen.toml", str(tmp_path)), "p", lambda req: IMAGE_ID,
                     file_pinner(tmp_path / "state"))
    assert e.value.subject == "secrets.pw.file" and "cannot read secret file" in e.value.reason


# -- the key -----------------------------------------------------------------------------------------
def test_a_key_file_named_by_the_user_is_used_and_never_created(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "elsewhere.key"))
    with pytest.raises(CorruptState) as e:
        secret_key(state)
    assert str(e.value).startswith(f"{tmp_path}/elsewhere.key: does not exist ({KEY_FILE_ENV} names it")
    assert "\n" not in str(e.value) and not (tmp_path / "elsewhere.key").exists()
    (tmp_path / "elsewhere.key").write_bytes(KEY)
    assert secret_key(state) == KEY and not (state / "secret.key").exists()


# -- where secrets are materialised ----------------------------------------------------------------------
ROOT_ONLY = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n25 22 0:23 / /dev/shm rw - tmpfs tmpfs rw\n"
RUN_TMPFS = ROOT_ONLY + "26 22 0:24 / /run rw - tmpfs tmpfs rw\n"


def test_the_run_directory_is_on_tmpfs(monkeypatch):
    monkeypatch.delenv("GEN_RUN_DIR")
    assert filesystem_of("/run", ROOT_ONLY) == "ext4" and filesystem_of("/run/x", RUN_TMPFS) == "tmpfs"
    name = "gen" if os.geteuid() == 0 else f"gen-{os.geteuid()}"
    assert run_root(RUN_TMPFS) == (Path("/run") / name, True)
    assert run_root(ROOT_ONLY) == (Path("/dev/shm") / name, True)
    assert run_root("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")[1] is False, "no tmpfs: secrets are refused"
    monkeypatch.setenv("GEN_RUN_DIR", "/somewhere")
    assert run_root(ROOT_ONLY) == (Path("/somewhere"), True)


def test_two_state_directories_never_share_a_run_directory(tmp_path):
    assert profile_dir(str(tmp_path / "a"), "p") != profile_dir(str(tmp_path / "b"), "p")
    assert profile_dir(str(tmp_path / "a"), "p").parent == profile_dir(str(tmp_path / "a"), "q").parent


# -- the transaction, on the in-memory engine ------------------------------------------------------------
def test_prepare_materialises_before_any_engine_call_and_a_wrong_key_touches_nothing(tmp_path):
    from gen.deploy.activation import Activation
    from gen.deploy.materialize import MaterializeFailed
    from gen.deploy.options import Options
    from gen.engine.memory import MemoryEngine
    from gen.model.plan import plan
    target = compiled(tmp_path)
    engine = MemoryEngine({"x": IMAGE_ID})
    base = profile_dir(target.state_dir, "p")
    try:
        Activation(engine, target, plan("p", target.services, []), Options(stability_s=0)).run(lambda: 1)
        (owned,) = [c.obj for c in engine.containers.values() if c.obj["name"] == "owned"]
        path = owned["secrets"][0]["path"]
        assert path.startswith(f"{base}/") and open(path, "rb").read() == b"s3cret"

        (tmp_path / "state" / "secret.key").write_bytes(os.urandom(32))       # another key
        shutil.rmtree(base)
        for cid in list(engine.containers):                  # a reboot: stopped, tmpfs empty
            engine.stop(cid, 0)
        again = plan("p", target.services, engine.observe("p"))
        assert not again.is_noop
        engine.calls.clear()
        with pytest.raises(MaterializeFailed) as e:
            Activation(engine, target, again, Options()).run(lambda: 1)
        assert e.value.exit_code == 1 and e.value.restored and "cannot be decrypted" in e.value.reason
        assert engine.calls == [], "refused before the engine was asked anything"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- on the real engine ---------------------------------------------------------------------------------
def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


BODY = '[secrets.pw]\nfile = "pw.txt"\n' + sleeper("app", 'secrets = ["pw"]\nuser = "1000"') + sleeper("plain")


def read_secret(d) -> str:
    (c,) = [c for c in d.containers() if c.labels["gen.service"] == "app"]
    code, out = c.exec_run(["cat", "/run/secrets/pw"])
    assert code == 0, out
    return out.decode()


def store_bytes(d) -> bytes:
    return b"".join(p.read_bytes() for p in (d.state / "store").rglob("*") if p.is_file())


def test_rollback_restores_the_old_secret_even_after_its_file_changed_or_was_deleted(deployment):
    d = deployment
    value = d.dir / "pw.txt"
    value.write_text("AAAA-first-value")
    spec = d.spec(BODY)
    ok(d.gen("switch", spec))
    value.write_text("BBBB-second-value")
    ok(d.gen("switch", spec))
    assert read_secret(d) == "BBBB-second-value"
    ok(d.gen("rollback", "-p", d.profile))
    assert read_secret(d) == "AAAA-first-value", "generation 1 reads its own value, not the file's"
    ok(d.gen("status", "-p", d.profile))

    value.unlink()
    ok(d.gen("rollback", "-p", d.profile, "--to", "2"))
    assert read_secret(d) == "BBBB-second-value"
    ok(d.gen("rollback", "-p", d.profile))
    assert read_secret(d) == "AAAA-first-value"
    ok(d.gen("gc", "-p", d.profile, "--keep", "2"))          # both generations kept: their secrets too
    ok(d.gen("rollback", "-p", d.profile, "--to", "2"))
    assert read_secret(d) == "BBBB-second-value"

    everything = store_bytes(d)
    assert b"AAAA-first-value" not in everything and b"BBBB-second-value" not in everything
    for args in (("show", "-p", d.profile, "1"), ("show", "-p", d.profile, "--json"), ("diff", "-p", d.profile, "1", "2"),
                 ("diff", "-p", d.profile, "1", "2", "--json")):
        r = ok(d.gen(*args))
        assert "-first-value" not in r.out and "-second-value" not in r.out, args
    info = json.loads(ok(d.gen("show", "-p", d.profile, "--json")).out)
    assert f"pw (sealed {info['services']['app']['secrets'][0]['object'][:12]})" in ok(d.gen("show", "-p", d.profile)).out


def test_secrets_are_materialised_0400_for_the_services_user_and_old_directories_go(deployment):
    d = deployment
    value = d.dir / "pw.txt"
    value.write_text("v1")
    spec = d.spec(BODY)
    ok(d.gen("switch", spec))
    base = profile_dir(str(d.state), d.profile)
    (first,) = [p for p in base.iterdir()]
    file = first / "secrets" / "pw"
    st = file.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o400, 1000)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in (base, base.parent, first, first / "secrets"))
    assert read_secret(d) == "v1", "uid 1000 reads its own 0400 file"
    code, _ = [c for c in d.containers() if c.labels["gen.service"] == "app"][0].exec_run(
        ["sh", "-c", "echo x > /run/secrets/pw"])
    assert code != 0, "mounted read-only"

    value.write_text("v2")
    ok(d.gen("switch", spec))
    assert not first.exists(), "the old service's files go once its container is gone"
    assert len(list(base.iterdir())) == 1
    ok(d.gen("switch", d.spec("")))                           # the empty deployment: nothing left
    assert not base.exists()


def test_after_a_reboot_recover_materialises_the_secrets_again(deployment):
    d = deployment
    (d.dir / "pw.txt").write_text("survives-reboots")
    ok(d.gen("switch", d.spec(BODY)))
    for c in d.containers():
        c.stop(timeout=0)                                     # a reboot: containers down, tmpfs empty
    shutil.rmtree(profile_dir(str(d.state), d.profile))
    assert d.gen("status", "-p", d.profile).code == 3
    ok(d.gen("recover", "-p", d.profile))
    assert read_secret(d) == "survives-reboots"
    ok(d.gen("status", "-p", d.profile))


def test_a_missing_or_wrong_key_is_a_one_line_refusal_that_touches_nothing(deployment, monkeypatch):
    d = deployment
    value = d.dir / "pw.txt"
    value.write_text("one")
    spec = d.spec(BODY)
    ok(d.gen("switch", spec))
    value.write_text("two")
    ok(d.gen("switch", spec))
    ids = {c.id for c in d.containers()}

    monkeypatch.setenv(KEY_FILE_ENV, str(d.dir / "absent.key"))
    r = d.gen("rollback", "-p", d.profile)
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert r.code == 1 and errors == [f"error: {d.dir}/absent.key: does not exist ({KEY_FILE_ENV} names it as the "
                                      f"secret key); mount the disk it is on, or fix {KEY_FILE_ENV}"], r.err

    (d.dir / "wrong.key").write_bytes(os.urandom(32))
    monkeypatch.setenv(KEY_FILE_ENV, str(d.dir / "wrong.key"))
    r = d.gen("rollback", "-p", d.profile)
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert r.code == 1 and len(errors) == 1 and "secret cannot be decrypted with the key" in errors[0], r.err
    assert {c.id for c in d.containers()} == ids and all(c.status == "running" for c in d.containers())
    from gen.state.profile import Profile
    prof = Profile(d.state, d.profile)
    assert prof.current_number() == 2 and prof.journal() is None

    monkeypatch.setenv(KEY_FILE_ENV, str(d.state / "secret.key"))   # the right key, named: works
    ok(d.gen("rollback", "-p", d.profile))
    assert read_secret(d) == "one"


def test_a_state_directory_without_a_tmpfs_or_with_a_foreign_run_directory_is_refused(deployment, monkeypatch):
    d = deployment
    (d.dir / "pw.txt").write_text("x")
    run = d.dir / "run"
    run.mkdir()
    monkeypatch.setenv("GEN_RUN_DIR", str(run))
    ns = profile_dir(str(d.state), d.profile).parent
    ns.mkdir(mode=0o755)
    ns.chmod(0o755)                                           # someone else's, or open to others
    r = d.gen("switch", d.spec(BODY))
    assert r.code == 1 and "is not a private directory" in r.err and not d.containers()


def switched_in_memory(tmp_path):
    """A Gen on the in-memory engine that has switched to one service using secret pw ("s3cret")."""
    from gen.api import Gen, Options
    from gen.engine.memory import MemoryEngine
    spec = tmp_path / "gen.toml"
    (tmp_path / "pw.txt").write_bytes(b"s3cret")
    spec.write_text('name = "p"\n[secrets.pw]\nfile = "pw.txt"\n[services.app]\nimage = "x"\nsecrets = ["pw"]\n')
    g = Gen(tmp_path / "state", engine=MemoryEngine({"x": IMAGE_ID}), options=Options(stability_s=0, poll_s=0.001))
    g.switch(str(spec))
    return g, spec


def test_pinned_files_removed_under_running_containers_are_written_again_by_a_noop_switch(tmp_path):
    """The containers still run, so the plan has nothing to do; their next restart needs the files."""
    g, spec = switched_in_memory(tmp_path)
    (app,) = g.engine.containers.values()
    path = app.obj["secrets"][0]["path"]
    base = profile_dir(compiled(tmp_path).state_dir, "p")
    try:
        shutil.rmtree(base)
        result = g.switch(str(spec))
        assert not result.changed and open(path, "rb").read() == b"s3cret"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_verify_names_a_missing_sealed_secret_and_the_generation_that_needs_it(tmp_path):
    g, spec = switched_in_memory(tmp_path)
    try:
        assert g.verify().ok
        (_, obj), = g.resolve(str(spec), write=False).services.values()
        sealed = obj["secrets"][0]["object"]
        g.store.path_of(sealed).unlink()
        result = g.verify()
        assert not result.ok and result.missing[sealed]["kind"] == "pinned file"
        assert result.missing[sealed]["needed_by"] == [{"profile": "p", "generation": 1}]
    finally:
        shutil.rmtree(profile_dir(compiled(tmp_path).state_dir, "p"), ignore_errors=True)
