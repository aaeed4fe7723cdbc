"""Issue 11, exactness: config files are pinned by content. Compose's top-level `configs:` (file:) with a
service's `configs:` (short and long syntax), gen.toml's `[configs.NAME]`, and read-only bind mounts
of regular files from the spec's folder are stored in the generation and mounted read-only from a
materialised copy: editing the file changes nothing until the next switch, and a rollback restores it.
Everything else from the host (writable binds, directories) stays host state, and `gen show` says so."""
from __future__ import annotations

import os
import textwrap

import pytest

from gen.errors import SpecError
from gen.model.compile import compile_spec
from gen.spec import load_spec, parse_spec
from gen.spec.compose import parse_compose
from gen.state.secrets import file_pinner
from store import decode, hash_value

IMAGE_ID = "sha256:" + "ab" * 32


def compose_spec(tmp_path, text: str):
    return parse_compose(textwrap.dedent(text), "compose.yaml", str(tmp_path), {})


# -- reading -------------------------------------------------------------------------------------------
def test_compose_configs_short_and_long_syntax(tmp_path):
    spec = compose_spec(tmp_path, """
        configs:
          app: {file: ./app.conf}
        services:
          web:
            image: web
            configs:
              - app
              - {source: app, target: /etc/app.conf, uid: "101", gid: 102, mode: 0440}
    """)
    assert spec.configs == {"app": {"file": f"{tmp_path}/app.conf"}}
    assert spec.services["web"]["configs"] == [
        {"source": "app", "target": "/app", "uid": 0, "gid": 0, "mode": 0o444},
        {"source": "app", "target": "/etc/app.conf", "uid": 101, "gid": 102, "mode": 0o440}]


def test_toml_configs_read_as_compose_ones(tmp_path):
    toml = parse_spec(textwrap.dedent("""
        [configs.app]
        file = "app.conf"
        [services.web]
        image = "web"
        restart = "no"
        update = "stop-first"
        configs = ["app", { source = "app", target = "/etc/app.conf", uid = 101, gid = "102", mode = "0440" }]
    """), "gen.toml", str(tmp_path))
    yml = compose_spec(tmp_path, """
        configs: {app: {file: app.conf}}
        services:
          web:
            image: web
            configs: [app, {source: app, target: /etc/app.conf, uid: "101", gid: "102", mode: 0o440}]
    """)
    assert toml == yml


@pytest.mark.parametrize("service, subject, fragment", [
    ("configs: [nope]", "services.web.configs[0]", "config 'nope' is not declared in [configs]"),
    ("configs: [{target: /x}]", "services.web.configs[0].source", "missing required key"),
    ("configs: [{source: app, mode: 999}]", "services.web.configs[0].mode", "must be permission bits"),
    ("configs: [{source: app, uid: -1}]", "services.web.configs[0].uid", "must be a numeric id"),
    ("configs: [{source: app, target: rel}]", "services.web.configs[0].target", "must be an absolute path"),
    ("configs: [{source: app, nope: 1}]", "services.web.configs[0].nope", "unknown key"),
    ("configs: [app, {source: app, target: /app}]", "services.web.configs[1]", "target /app is already used"),
    ("configs: [{source: app, target: /d}]\n    volumes: ['/srv:/d']", "services.web.configs[0]",
     "already mounted by services.web.volumes[0]"),
])
def test_bad_configs_name_their_key(tmp_path, service, subject, fragment):
    with pytest.raises(SpecError) as e:
        compose_spec(tmp_path, "configs: {app: {file: a.conf}}\nservices:\n  web:\n    image: web\n    " + service)
    assert e.value.subject == subject and fragment in e.value.reason and "\n" not in str(e.value)


def test_read_only_files_from_the_spec_folder_are_pinned_the_rest_is_host_state(tmp_path):
    (tmp_path / "nginx.conf").write_text("conf")
    (tmp_path / "html").mkdir()
    spec = compose_spec(tmp_path, """
        volumes: {data: }
        services:
          web:
            image: web
            volumes:
              - ./nginx.conf:/etc/nginx/nginx.conf:ro
              - ./nginx.conf:/etc/writable.conf
              - ./html:/srv/html:ro
              - /etc/hostname:/etc/host-name:ro
              - data:/data
    """)
    web = spec.services["web"]
    assert web["configs"] == [{"source": "./nginx.conf", "target": "/etc/nginx/nginx.conf", "uid": None,
                               "gid": None, "mode": None}]
    assert [m["target"] for m in web["volumes"]] == ["/etc/writable.conf", "/srv/html", "/etc/host-name", "/data"]
    assert spec.configs == {"./nginx.conf": {"file": f"{tmp_path}/nginx.conf", "key": "services.web.volumes[0]"}}


def test_compile_pins_config_content_and_a_bind_keeps_the_files_owner_and_mode(tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("listen 80;\n")
    conf.chmod(0o640)
    spec = compose_spec(tmp_path, """
        configs: {app: {file: app.conf}}
        services:
          web: {image: web, configs: [app], volumes: ["./app.conf:/etc/bound.conf:ro"]}
    """)
    c = compile_spec(spec, "p", lambda req: IMAGE_ID, file_pinner(tmp_path / "state"))
    obj = c.services["web"][1]
    declared, bound = obj["configs"]
    assert obj["format"] == 2 and declared["object"] == bound["object"], "one content, one object"
    assert (declared["uid"], declared["gid"], declared["mode"]) == (0, 0, 0o444)
    st = conf.stat()
    assert (bound["name"], bound["uid"], bound["gid"], bound["mode"]) == ("./app.conf", st.st_uid, st.st_gid, 0o640)
    assert decode(c.materials[declared["object"]]) == {"kind": "config", "format": 1, "data": b"listen 80;\n"}
    conf.write_text("listen 81;\n")
    again = compile_spec(spec, "p", lambda req: IMAGE_ID, file_pinner(tmp_path / "state"))
    assert again.manifest_hash != c.manifest_hash, "a changed file is a new generation"


# -- on the real engine ---------------------------------------------------------------------------------
COMPOSE = """
name: {profile}
configs:
  app: {{file: ./app.conf}}
volumes:
  data:
services:
  web:
    image: {image}
    command: [sleep, "3600"]
    stop_grace_period: 0s
    configs: [{{source: app, target: /etc/app.conf, mode: 0440}}]
    volumes:
      - ./bound.conf:/etc/bound.conf:ro
      - ./html:/srv/html:ro
      - ./state:/var/state
      - data:/data
"""


def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


def read(d, path: str) -> str:
    (c,) = d.containers()
    code, out = c.exec_run(["cat", path])
    assert code == 0, out
    return out.decode()


def test_an_edited_config_changes_nothing_until_the_next_switch_and_rollback_restores_it(deployment):
    d = deployment
    (d.dir / "app.conf").write_text("app v1")
    (d.dir / "bound.conf").write_text("bound v1")
    for sub in ("html", "state"):
        (d.dir / sub).mkdir(exist_ok=True)
    spec = d.dir / "compose.yaml"
    spec.write_text(COMPOSE.format(profile=d.profile, image=d.image))
    ok(d.gen("switch", spec))
    assert (read(d, "/etc/app.conf"), read(d, "/etc/bound.conf")) == ("app v1", "bound v1")
    (c,) = d.containers()
    code, out = c.exec_run(["stat", "-c", "%a %u", "/etc/app.conf"])
    assert out.decode().split() == ["440", "0"]

    (d.dir / "app.conf").write_text("app v2")
    (d.dir / "bound.conf").write_text("bound v2")
    c.restart(timeout=0)                                     # even a restarted container keeps generation 1's
    assert (read(d, "/etc/app.conf"), read(d, "/etc/bound.conf")) == ("app v1", "bound v1")
    ok(d.gen("status", "-p", d.profile))

    ok(d.gen("switch", spec))
    assert (read(d, "/etc/app.conf"), read(d, "/etc/bound.conf")) == ("app v2", "bound v2")
    os.remove(d.dir / "app.conf")
    ok(d.gen("rollback", "-p", d.profile))
    assert (read(d, "/etc/app.conf"), read(d, "/etc/bound.conf")) == ("app v1", "bound v1")

    show = ok(d.gen("show", "-p", d.profile)).out
    pinned, host = show.split("pinned by this generation")[1].split("from the host (NOT restored by a rollback")
    host = host.split("spec source")[0]
    assert "config  web: app -> /etc/app.conf" in pinned and "config  web: ./bound.conf -> /etc/bound.conf" in pinned
    assert "image   web:" in pinned
    assert f"{d.dir}/html -> /srv/html  (read-only bind)" in host and f"{d.dir}/state -> /var/state  (writable bind)" in host
    assert "data -> /data  (writable named volume)" in host
    assert "app.conf" not in host and "bound.conf" not in host


def test_a_service_whose_objects_pin_nothing_keeps_its_hash(tmp_path):
    """An upgrade must not replace containers that mount no secret or config file: their objects are
    written exactly as the previous gen wrote them (format 1, no `configs` key)."""
    spec_file = tmp_path / "gen.toml"
    spec_file.write_text('name = "p"\n[services.a]\nimage = "x"\nvolumes = ["/srv:/srv:ro"]\n')
    spec = load_spec(spec_file)
    (h, obj), = compile_spec(spec, "p", lambda req: IMAGE_ID).services.values()
    before = {"kind": "service", **{k: v for k, v in spec.services["a"].items() if k != "configs"},
              "secrets": [], "image_id": IMAGE_ID}          # the previous compile's recipe
    assert "format" not in obj and "configs" not in obj and h == hash_value(before)
