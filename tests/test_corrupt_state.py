"""Corrupt or foreign state never gives a traceback (issue 10). Each damage is made by hand in a state
directory with two real generations, then every verb that reads the damaged file is run through the
CLI: one line naming the file, exit 1 (bad or foreign state) or 3 (an activation may have been
interrupted), no file deleted or changed, no container touched."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import sleeper


def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


def files(state: Path) -> dict[str, bytes | str]:
    """Every file of the state directory but the store and the build roots (a refused switch may
    still have built) and the lock: symlinks by target, files by content."""
    out = {}
    for path in sorted(state.rglob("*")):
        rel = str(path.relative_to(state))
        if rel.startswith(("store", "roots")) or path.name == "lock":
            continue
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


@pytest.fixture
def two_generations(deployment):
    d = deployment
    d.v1, d.v2 = d.spec(sleeper("app")), d.spec(sleeper("app", 'env = { V = "2" }'))
    ok(d.gen("switch", d.v1))
    ok(d.gen("switch", d.v2))
    d.prof_dir = d.state / "profiles" / d.profile
    return d


def refused(d, damaged: Path, exit_code: int, verbs: list[tuple[str, ...]]) -> None:
    """Each verb fails in one line naming `damaged`, changes no file and touches no container."""
    before, ids = files(d.state), {c.id: c.status for c in d.containers()}
    for args in verbs:
        r = d.gen(*args)
        lines = r.err.strip().splitlines()
        assert (r.code, len(lines)) == (exit_code, 1), f"{args}: exit {r.code}\n{r.err}"
        assert lines[0].startswith(f"error: {damaged}: ") and "Traceback" not in r.err, f"{args}: {r.err}"
        assert files(d.state) == before, f"{args} changed the state directory"
        assert {c.id: c.status for c in d.containers()} == ids, f"{args} touched a container"


def every_reader(d) -> list[tuple[str, ...]]:
    p = ("-p", d.profile)
    return [("list", *p), ("show", *p), ("status", *p), ("switch", d.v1), ("rollback", *p), ("gc", *p, "--keep", "1")]


@pytest.mark.parametrize("target", ["generations/zz!.json", "/etc/passwd", "generations/9.json"])
def test_a_current_link_pointing_anywhere_else_is_refused(two_generations, target):
    d = two_generations
    current = d.prof_dir / "current"
    current.unlink()
    current.symlink_to(target)
    verbs = every_reader(d)
    if target == "generations/9.json":
        verbs = [v for v in verbs if v[0] not in ("list", "gc")]    # they need only the number, and it is sound
    refused(d, current, 1, verbs)
    assert "ln -sfn generations/<N>.json" in d.gen("show", "-p", d.profile).err
    r = d.gen("verify")
    assert r.code == 1 and "Traceback" not in r.err and "`current`" in r.out


@pytest.mark.parametrize("content", [b"", os.urandom(48), b"[1, 2]", b'{"generation": 2}',
                                     b'{"format": 3, "generation": 2, "manifest": "x"}'])
def test_a_damaged_generation_record_is_refused(two_generations, content):
    d = two_generations
    record = d.prof_dir / "generations" / "2.json"       # the current generation's
    record.write_bytes(content)
    refused(d, record, 1, [v for v in every_reader(d) if v[0] != "gc"])
    r = d.gen("gc", "-p", d.profile, "--keep", "1")
    assert r.code == 1 and "gc changed nothing" in r.err and str(record) in r.err and "Traceback" not in r.err
    r = d.gen("verify")
    assert r.code == 1 and "generation record 2 cannot be read" in r.out and "Traceback" not in r.err


@pytest.mark.parametrize("content", [b"[1,2]", b"", b"\xff\xfe garbage", b'{"pid": 1}', b'{"kind": 7}'])
def test_a_damaged_journal_is_refused_by_every_verb_that_reads_it(two_generations, content):
    d = two_generations
    journal = d.prof_dir / "journal.json"
    journal.write_bytes(content)
    p = ("-p", d.profile)
    refused(d, journal, 3, [("status", *p), ("switch", d.v1), ("rollback", *p), ("gc", *p)])
    assert "run `gen recover -p" in d.gen("status", *p).err
    ok(d.gen("list", *p))            # verbs that do not read the journal are not concerned
    ok(d.gen("show", *p))
    r = ok(d.gen("recover", *p))     # what the message says to do: it converges despite the damage
    assert "damaged" in r.out + r.err
    assert not journal.exists()
    ok(d.gen("status", *p))


SECRET = '''
[secrets.pw]
file = "{file}"
'''


@pytest.fixture
def with_secret(deployment, tmp_path):
    d = deployment
    value = tmp_path / "pw.txt"
    value.write_text("s3cret")
    d.v1 = d.spec(sleeper("app", 'secrets = ["pw"]') + sleeper("plain") + SECRET.format(file=value))
    ok(d.gen("switch", d.v1))
    d.key = d.state / "secret.key"
    return d


def test_show_of_a_generation_that_uses_secrets(with_secret):
    d = with_secret
    text = ok(d.gen("show", "-p", d.profile)).out
    assert "secrets      pw (sealed " in text and "s3cret" not in text
    info = json.loads(ok(d.gen("show", "-p", d.profile, "--json")).out)
    assert [s["name"] for s in info["services"]["app"]["secrets"]] == ["pw"]


@pytest.mark.parametrize("content", [b"", b"short", os.urandom(33)])
def test_a_damaged_secret_key_is_refused_not_replaced(with_secret, content):
    d = with_secret
    d.key.write_bytes(content)
    refused(d, d.key, 1, [("switch", d.v1), ("build", d.v1), ("diff", "-p", d.profile, str(d.v1))])
    assert d.key.read_bytes() == content, "the key file is left as it was"
    assert "head -c 32 /dev/urandom" in d.gen("build", d.v1).err


def test_a_deleted_secret_key_is_refused_while_generations_use_secrets(with_secret):
    d = with_secret
    d.key.unlink()
    refused(d, d.key, 1, [("switch", d.v1), ("build", d.v1)])
    r = d.gen("switch", d.v1)
    assert "is missing, but generation(s) 1 of profile" in r.err and not d.key.exists()

    # Starting over knowingly, as the message says: a new key, so the service with the secret is replaced.
    ids = {c.labels["gen.service"]: c.id for c in d.containers()}
    d.key.write_bytes(os.urandom(32))
    d.key.chmod(0o600)
    ok(d.gen("switch", d.v1))
    after = {c.labels["gen.service"]: c.id for c in d.containers()}
    assert after["plain"] == ids["plain"] and after["app"] != ids["app"]


def test_the_first_secret_creates_the_key(deployment, tmp_path):
    d = deployment
    value = tmp_path / "pw.txt"
    value.write_text("s3cret")
    ok(d.gen("switch", d.spec(sleeper("plain"))))        # generations without secrets: the key is not needed
    assert not (d.state / "secret.key").exists()
    ok(d.gen("switch", d.spec(sleeper("app", 'secrets = ["pw"]') + SECRET.format(file=value))))
    key = d.state / "secret.key"
    assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o777 == 0o600


# -- without an engine: read verbs over damaged files ---------------------------------------------------
def cli(capsys, state: Path, *args: str):
    from gen.cli.app import main
    capsys.readouterr()
    code = main([*args, "--state-dir", str(state)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_damaged_activation_log_is_read_around(tmp_path, capsys):
    from gen.state.profile import Profile
    prof = Profile(tmp_path, "p")
    prof.log_activation({"kind": "switch", "from": None, "to": 1, "outcome": "ok", "started": 1.0})
    with open(prof.path / "activations.log", "ab") as f:
        f.write(os.urandom(64) + b"\n[1, 2]\n")
    code, out, err = cli(capsys, tmp_path, "log", "-p", "p", "--json")
    assert code == 0 and [e["kind"] for e in json.loads(out)] == ["switch"], err


def test_a_file_in_place_of_the_generations_directory_is_refused(tmp_path, capsys):
    generations = tmp_path / "profiles" / "p" / "generations"
    generations.parent.mkdir(parents=True)
    generations.write_text("not a directory")
    code, out, err = cli(capsys, tmp_path, "verify")
    assert code == 1 and err.startswith(f"error: {generations}: cannot be listed") and "Traceback" not in err
    code, out, err = cli(capsys, tmp_path, "list", "-p", "p")
    assert code == 1 and err.strip() == "error: profile p: has no generations"
