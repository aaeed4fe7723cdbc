"""`gen build`: determinism across processes and key orders, bad input rejected with nothing written,
store objects immutable and verified on read. The engine is real (images are resolved on it)."""
from __future__ import annotations

import os
import re
import stat

import pytest

SPEC_A = """
name = "{profile}"
[volumes.data]
[services.db]
image = "{image}"
command = ["sleep", "3600"]
volumes = ["data:/data"]
[services.web]
image = "{image}"
env = { B = "2", A = "1" }
depends_on = ["db"]
ports = ["127.0.0.1:18999:80"]
[services.web.healthcheck]
test = "wget -q -O- http://127.0.0.1/"
interval = "1s"
"""

# The same deployment: keys and tables in another order, inline tables, explicit defaults.
SPEC_B = """
[services.web]
healthcheck = { interval = "1000ms", test = ["CMD-SHELL", "wget -q -O- http://127.0.0.1/"] }
ports = ["127.0.0.1:18999:80"]
depends_on = ["db"]
env = { A = "1", B = "2" }
image = "{image}"
replicas = 1
[services.db]
volumes = ["data:/data"]
command = ["sleep", "3600"]
image = "{image}"
restart = "unless-stopped"
[volumes]
data = {}
"""


def store_contents(state) -> dict[str, bytes]:
    root = state / "store" / "objects"
    return {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_spec_in_any_key_order_gives_the_same_hash_and_bytes_in_other_processes(deployment, tmp_path):
    d = deployment
    a = d.spec(SPEC_A.replace('name = "{profile}"\n', ""))
    b = d.spec(SPEC_B)
    first = d.gen_process("build", a)
    d.state = tmp_path / "other-state"
    second = d.gen_process("build", b)
    assert first.code == 0 and second.code == 0, first.err + second.err
    assert re.fullmatch(r"[0-9a-f]{64}", first.last_line)
    assert first.last_line == second.last_line
    assert store_contents(tmp_path / "state") == store_contents(tmp_path / "other-state")
    assert len(store_contents(tmp_path / "state")) == 3     # two services + the manifest


def test_a_different_spec_gives_a_different_hash(deployment):
    d = deployment
    one = d.gen("build", d.spec(SPEC_A.replace('name = "{profile}"\n', "")))
    two = d.gen("build", d.spec(SPEC_A.replace('name = "{profile}"\n', "").replace('B = "2"', 'B = "3"')))
    assert one.code == two.code == 0 and one.last_line != two.last_line


def test_objects_are_read_only_files(deployment):
    d = deployment
    assert d.gen("build", d.spec(SPEC_A.replace('name = "{profile}"\n', ""))).code == 0
    for p in (d.state / "store" / "objects").rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o444


BAD = [
    ("[services.web]\nimage = '{image}'\nports = ['127.0.0.1:99999:80']\n", "services.web.ports[0]: port 99999 is out of range"),
    ("[services.web]\nimage = '{image}'\nimgae = 'x'\n", "services.web.imgae: unknown key"),
    ("[services.a]\nimage = '{image}'\ndepends_on = ['b']\n[services.b]\nimage = '{image}'\ndepends_on = ['a']\n", "dependency cycle: a -> b -> a"),
    ("[services.a]\nimage = '{image}'\ndepends_on = ['nope']\n", "services.a.depends_on[0]: unknown service 'nope'"),
    ("[services.a]\nimage = '{image}'\nvolumes = ['data:/data']\n", "named volume 'data' is not declared"),
    ("[services.a]\nimage = '{image}'\nports = ['8080:80']\n[services.b]\nimage = '{image}'\nports = ['8080:80']\n", "host port 8080/tcp is already published"),
    ("[services.a]\nimage = 'gen-test/no-such-image:404'\npull_policy = 'never'\n", "services.a.image: image 'gen-test/no-such-image:404' is not present"),
    ("[services.a\nimage = 1\n", "invalid TOML"),
    ("[services.a]\nimage = '{image}'\nenv = { PORT = 8080 }\n", "services.a.env.PORT: must be a string"),
    ("[services.a]\nimage = '{image}'\nstop_grace = 'soon'\n", "services.a.stop_grace"),
]


@pytest.mark.parametrize("body, message", BAD, ids=[m.split(":")[0] for _, m in BAD])
@pytest.mark.parametrize("verb", ["build", "switch"])
def test_bad_spec_exits_1_with_one_line_and_touches_nothing(deployment, body, message, verb):
    d = deployment
    r = d.gen_process(verb, d.spec(body))
    assert r.code == 1, r.err
    assert message in r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1
    assert not d.state.exists(), "nothing written to the state directory"
    assert d.containers() == [] and not d.docker.volumes.list(filters={"label": f"gen.profile={d.profile}"})


def test_spec_without_a_name_needs_a_profile(deployment):
    d = deployment
    path = d.dir / "anon.toml"
    path.write_text("[services.a]\nimage = 'x'\n")
    r = d.gen("build", path)
    assert r.code == 1 and "-p NAME" in r.err


def test_engine_unreachable_is_a_clear_error(deployment):
    d = deployment
    r = d.gen_process("switch", d.spec(SPEC_A.replace('name = "{profile}"\n', "")),
                      env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert r.code == 1 and "docker engine: not reachable" in r.err and "Traceback" not in r.err


def test_tampered_object_is_refused_with_a_checksum_message(deployment):
    d = deployment
    built = d.gen("build", d.spec("[services.a]\nimage = '{image}'\ncommand = ['sleep', '3600']\n"))
    manifest = built.last_line
    objects = store_contents(d.state)
    service_hash = next(h for h in objects if h != manifest)
    path = next((d.state / "store" / "objects").rglob(service_hash))
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"3600", b"9999"))
    r = d.gen("switch", manifest, "-p", d.profile)
    assert r.code == 1 and service_hash in r.err and "checksum" in r.err
    assert d.containers() == []
