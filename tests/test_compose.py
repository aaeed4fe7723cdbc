"""Compose import: the same normal form as gen.toml, errors naming the Compose key (no Docker)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from gen.errors import SpecError
from gen.model.compile import compile_spec
from gen.spec import load_spec, parse_spec
from gen.spec.compose import interpolate, load_compose, parse_compose, parse_env_file

ROOT = Path(__file__).resolve().parent.parent
TRIO = ROOT / "examples" / "trio"
ENV = {"HOME": "/home/u", "TAG": "1.4", "EMPTY": "", "FROM_ENV": "shell"}


def pin(request) -> str:
    return "sha256:" + "0" * 64


def compose(service: str = "", top: str = "", environ: dict | None = None, base_dir: str = "/base"):
    """A Compose file with a `web` service (plus `service` lines), a `db`, a volume and a secret."""
    service = textwrap.dedent(service)
    image = "" if service.startswith("image:") else "image: web:1\n"  # a case may bring its own image
    text = ("services:\n  web:\n" + textwrap.indent(image + service, "    ")
            + "\n  db:\n    image: db\nvolumes:\n  data:\nsecrets:\n  key:\n    file: ./key.txt\n"
            + textwrap.dedent(top))
    return parse_compose(text, "compose.yaml", base_dir, ENV if environ is None else environ)


def web(service: str = "", **kwargs) -> dict:
    return compose(service, **kwargs).services["web"]


# ---------------------------------------------------------------- the example, both ways

def test_trio_example_is_the_same_deployment_in_both_formats():
    toml, yml = load_spec(TRIO / "gen.toml"), load_spec(TRIO / "compose.yaml")
    assert yml.source.endswith("compose.yaml") and toml.source.endswith("gen.toml")
    assert toml == yml
    assert toml.name == yml.name == "trio"
    assert sorted(toml.services) == ["db", "web", "worker"]
    assert compile_spec(toml, "trio", pin).manifest_hash == compile_spec(yml, "trio", pin).manifest_hash
    assert load_compose(TRIO / "compose.yaml") == yml


def test_trio_compose_file_uses_compose_features():
    """Guards the example against drifting into a TOML-shaped YAML file."""
    text = (TRIO / "compose.yaml").read_text()
    for feature in ("condition: service_healthy", "stop_grace_period", "deploy:", "$$GREETING", "<<: *busybox"):
        assert feature in text
    web_ = load_spec(TRIO / "compose.yaml").services["web"]
    assert "$GREETING from web" in web_["command"][2]
    assert web_["ports"] == [{"host_ip": "127.0.0.1", "host_port": 18081, "container_port": 8080, "protocol": "tcp"}]


def test_normalised_service_has_every_key():
    assert sorted(web()) == ["command", "configs", "depends_on", "entrypoint", "env", "healthcheck", "image", "labels", "name",
                             "ports", "replicas", "restart", "secrets", "stop_grace_ms", "update", "user", "volumes",
                             "working_dir"]


def test_compose_and_toml_agree_on_a_full_service(tmp_path):
    toml = parse_spec(textwrap.dedent("""
        name = "full"
        [secrets.key]
        file = "key.txt"
        [volumes.data]
        [services.db]
        image = "db"
        restart = "no"
        [services.web]
        image = "web:1.4"
        command = ["httpd", "-f"]
        entrypoint = ["/bin/sh", "-c"]
        env = { A = "1", B = "true", FROM_ENV = "shell" }
        ports = ["127.0.0.1:8080:80", "[::1]:53:53/udp"]
        volumes = ["data:/data:ro", "/srv/static:/static"]
        depends_on = ["db"]
        replicas = 1
        stop_grace = "1m30s"
        restart = "on-failure:3"
        labels = { team = "shop", n = "1" }
        user = "1000:1000"
        working_dir = "/app"
        secrets = ["key"]
        healthcheck = { test = ["CMD", "true"], interval = "30s", timeout = "30s", retries = 3, start_period = "0s" }
    """), "gen.toml", str(tmp_path))
    yml = parse_compose(textwrap.dedent("""
        name: full
        version: "3.9"
        secrets:
          key: {file: ./key.txt}
        volumes:
          data:
        services:
          db:
            image: db
            deploy: {update_config: {order: start-first}}
          web:
            image: web:${TAG}
            command: httpd -f
            entrypoint: [/bin/sh, -c]
            environment: [A=1, B=true, FROM_ENV]
            ports:
              - 127.0.0.1:8080:80
              - {target: 53, published: 53, host_ip: "::1", protocol: udp}
            volumes:
              - {type: volume, source: data, target: /data, read_only: true}
              - /srv/static:/static
            depends_on: [db]
            deploy: {replicas: 1}
            stop_grace_period: 1m30s
            restart: on-failure:3
            labels: {team: shop, n: 1}
            user: "1000:1000"
            working_dir: /app/
            secrets: [{source: key}]
            healthcheck: {test: [CMD, "true"]}
    """), "compose.yaml", str(tmp_path), ENV)
    assert toml == yml
    assert yml.secrets == {"key": {"file": f"{tmp_path}/key.txt"}}


# ---------------------------------------------------------------- syntax variants

HEALTH_DEFAULTS = {"interval_ms": 30000, "timeout_ms": 30000, "retries": 3, "start_period_ms": 0}

VARIANTS = [
    # environment: list and map forms, Compose's conversions, values from the environment
    ("environment: [A=1, B=x=y, C=, FROM_ENV, UNSET_VAR]", "env", {"A": "1", "B": "x=y", "C": "", "FROM_ENV": "shell"}),
    ("environment: {A: 1, B: x=y, C: '', FROM_ENV: null, UNSET_VAR: null}", "env",
     {"A": "1", "B": "x=y", "C": "", "FROM_ENV": "shell"}),
    ("environment: {T: true, F: false, I: 8080, N: -1, R: 1.5, V: 1.0, E: 1e6, S: 0.00001, O: 0o17, X: 0x1f}", "env",
     {"T": "true", "F": "false", "I": "8080", "N": "-1", "R": "1.5", "V": "1", "E": "1e+06", "S": "1e-05",
      "O": "15", "X": "31"}),  # as Compose prints them (Go's fmt.Sprint)
    ("environment: {D: 2024-01-01, Y: yes, Z: on, T: 12:30}", "env", {"D": "2024-01-01", "Y": "yes", "Z": "on", "T": "12:30"}),
    ("labels: [7, a=b]", "labels", {"7": "", "a": "b"}),
    ("environment: {A: $TAG, B: '$${TAG}', C: '${UNSET_VAR:-dflt}'}", "env", {"A": "1.4", "B": "${TAG}", "C": "dflt"}),
    ("environment: {x-kept-out: 1}", "env", {}),
    # ports: short and long syntax
    ('ports: ["127.0.0.1:8080:80"]', "ports",
     [{"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "protocol": "tcp"}]),
    ("ports: [{target: 80, published: 8080, host_ip: 127.0.0.1, protocol: tcp, mode: host}]", "ports",
     [{"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "protocol": "tcp", "mode": "host"}]),
    ("ports: [{target: 80, published: '8080', protocol: tcp, mode: ingress}]", "ports",   # docker compose config's
     [{"host_ip": "", "host_port": 8080, "container_port": 80, "protocol": "tcp"}]),
    ('ports: ["[::1]:53:53/udp"]', "ports", [{"host_ip": "::1", "host_port": 53, "container_port": 53, "protocol": "udp"}]),
    ('ports: [{target: "53", published: "53", host_ip: "0:0::1", protocol: udp}]', "ports",
     [{"host_ip": "::1", "host_port": 53, "container_port": 53, "protocol": "udp"}]),
    ("ports: [22:22]", "ports", [{"host_ip": "", "host_port": 22, "container_port": 22, "protocol": "tcp"}]),  # YAML 1.2
    ("ports: [{target: 80, published: 8080, x-note: hi}]", "ports",
     [{"host_ip": "", "host_port": 8080, "container_port": 80, "protocol": "tcp"}]),
    # volumes: short and long syntax, relative and ~ paths
    ('volumes: ["data:/data:ro"]', "volumes", [{"type": "volume", "source": "data", "target": "/data", "read_only": True}]),
    ("volumes: [{type: volume, source: data, target: /data/, read_only: true}]", "volumes",
     [{"type": "volume", "source": "data", "target": "/data", "read_only": True}]),
    ('volumes: ["./static:/static", "../etc/app:/etc/app:rw", ".:/src", "~/cfg:/cfg:ro"]', "volumes", [
        {"type": "bind", "source": "/base/static", "target": "/static", "read_only": False},
        {"type": "bind", "source": "/etc/app", "target": "/etc/app", "read_only": False},
        {"type": "bind", "source": "/base", "target": "/src", "read_only": False},
        {"type": "bind", "source": "/home/u/cfg", "target": "/cfg", "read_only": True}]),
    ("volumes: [{type: bind, source: ./static, target: /static}, {type: bind, source: /etc/x, target: /x}]",
     "volumes", [{"type": "bind", "source": "/base/static", "target": "/static", "read_only": False},
                 {"type": "bind", "source": "/etc/x", "target": "/x", "read_only": False}]),
    # update order: Compose's meaning (stop-first) unless deploy.update_config.order says otherwise
    ("image: web", "update", "stop-first"),
    ("deploy: {update_config: {order: start-first}}", "update", "start-first"),
    ("deploy: {update_config: {order: stop-first}}", "update", "stop-first"),
    # depends_on: list and map
    ("depends_on: [db]", "depends_on", ["db"]),
    ("depends_on: {db: {condition: service_started}}", "depends_on", ["db"]),
    ("depends_on: {db: {condition: service_started, required: true, restart: false}}", "depends_on", ["db"]),
    ("depends_on: {db: }", "depends_on", ["db"]),
    # entrypoint / command: a string is split like a shell would, a list is kept
    ("entrypoint: /bin/sh -c 'echo \"hi there\"'", "entrypoint", ["/bin/sh", "-c", 'echo "hi there"']),
    ("entrypoint: [/bin/sh, -c, 'echo \"hi there\"']", "entrypoint", ["/bin/sh", "-c", 'echo "hi there"']),
    ("command: httpd -f -p 80", "command", ["httpd", "-f", "-p", "80"]),
    ('command: ["sh", "-c", "echo $$HOME"]', "command", ["sh", "-c", "echo $HOME"]),
    # healthcheck: Compose defaults, string test, disable
    ("healthcheck: {test: curl -f http://x/}", "healthcheck", {"test": ["CMD-SHELL", "curl -f http://x/"], **HEALTH_DEFAULTS}),
    ("healthcheck: {test: [CMD, wget, -q, x], interval: 1m30s, timeout: 1.5s, retries: 5, start_period: 500ms}",
     "healthcheck", {"test": ["CMD", "wget", "-q", "x"], "interval_ms": 90000, "timeout_ms": 1500, "retries": 5,
                     "start_period_ms": 500}),
    ("healthcheck: {disable: true}", "healthcheck", {"test": ["NONE"], **HEALTH_DEFAULTS}),
    ("healthcheck: {test: [NONE], disable: false}", "healthcheck", {"test": ["NONE"], **HEALTH_DEFAULTS}),
    # restart: Compose's default, YAML 1.2 `no`
    ("", "restart", "no"),
    ("restart: no", "restart", "no"),
    ("restart: on-failure:05", "restart", "on-failure:5"),
    ("restart: unless-stopped", "restart", "unless-stopped"),
    # the rest
    ("deploy: {replicas: 3}", "replicas", 3),
    ("stop_grace_period: 1m30s", "stop_grace_ms", 90000),
    ("", "stop_grace_ms", 10000),
    ("labels: [com.example.team=shop, flag, a=b=c]", "labels", {"com.example.team": "shop", "flag": "", "a": "b=c"}),
    ("labels: {com.example.team: shop, flag: null, n: 1, yes: true}", "labels",
     {"com.example.team": "shop", "flag": "", "n": "1", "yes": "true"}),
    ("user: 1000", "user", "1000"),
    ('user: "1000:1000"', "user", "1000:1000"),
    ("working_dir: /app//x/", "working_dir", "/app/x"),
    ("secrets: [key]", "secrets", ["key"]),
    ("secrets: [{source: key}]", "secrets", ["key"]),
    ("secrets: [{source: key, target: /run/secrets/key}]", "secrets", ["key"]),
    ("secrets: [{source: key, target: key}]", "secrets", ["key"]),
    ("x-note: {anything: [goes, here]}\ncommand: [a]", "command", ["a"]),
    ("environment:\ncommand:\nports:", "env", {}),  # null counts as absent
]


@pytest.mark.parametrize("service, field, expected", VARIANTS, ids=[f"v{i}" for i in range(len(VARIANTS))])
def test_syntax_variants(service, field, expected):
    assert web(service)[field] == expected


def test_variant_pairs_normalise_identically():
    pairs = [
        ("environment: [A=1, B=true]", "environment: {A: 1, B: true}"),
        ('ports: ["127.0.0.1:8080:80/udp"]', "ports: [{target: 80, published: 8080, host_ip: 127.0.0.1, protocol: udp}]"),
        ('volumes: ["./x:/x:ro"]', "volumes: [{type: bind, source: ./x, target: /x, read_only: true}]"),
        ("depends_on: [db]", "depends_on: {db: {condition: service_started}}"),
        ("entrypoint: sh -c 'exit 0'", "entrypoint: [sh, -c, exit 0]"),
        ("labels: [a=b]", "labels: {a: b}"),
        ("healthcheck: {disable: true}", "healthcheck: {test: [NONE]}"),
    ]
    for one, other in pairs:
        assert compose(one) == compose(other), (one, other)


def test_yaml_merge_keys_and_anchors():
    spec = parse_compose(textwrap.dedent("""
        x-base: &base
          image: app:1
          environment: {A: "1"}
        services:
          one:
            <<: *base
          two:
            <<: *base
            environment: {A: "2"}
    """), environ={})
    assert spec.services["one"]["env"] == {"A": "1"}
    assert spec.services["two"]["env"] == {"A": "2"}


def test_empty_compose_file_has_no_services():
    assert parse_compose("", environ={}).services == {}
    assert parse_compose("# nothing\n", environ={}).name is None
    assert parse_compose("services:\nvolumes:\n", environ={}).services == {}


# ---------------------------------------------------------------- env files and .env

def test_env_files_and_precedence(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "base.env").write_text(textwrap.dedent("""\
        # comment
        A=from-base
        B=from-base   # inline comment
        export C="double \\"quoted\\" $TAG\\n"
        D='single $TAG # kept'

        FROM_ENV
        UNSET_VAR
        E=${TAG:-x}-$$
    """))
    (tmp_path / "override.env").write_text("B=from-override\nF=\n")
    spec = compose("""
        env_file: [conf/base.env, {path: ./override.env}, {path: missing.env, required: false}]
        environment: {A: from-environment}
    """, base_dir=str(tmp_path))
    assert spec.services["web"]["env"] == {
        "A": "from-environment", "B": "from-override", "C": 'double "quoted" 1.4\n', "D": "single $TAG # kept",
        "FROM_ENV": "shell", "E": "1.4-$", "F": ""}
    assert compose("env_file: override.env", base_dir=str(tmp_path)).services["web"]["env"] == {
        "B": "from-override", "F": ""}


@pytest.mark.parametrize("content, fragment", [
    ("1X=a", "line 1: invalid variable name '1X'"),
    ("\nA='open", "line 2: unterminated ' quote"),
    ('A="x" y', "line 1: text after the closing quote"),
    ("A=${NEED:?please}", "line 1: required variable NEED is missing a value: please"),
])
def test_bad_env_file(tmp_path, content, fragment):
    (tmp_path / "app.env").write_text(content)
    with pytest.raises(SpecError) as info:
        compose("env_file: [app.env]", base_dir=str(tmp_path))
    assert info.value.subject == "services.web.env_file[0]"
    assert fragment in info.value.reason
    assert "app.env" in info.value.reason


def test_missing_env_file_names_the_key(tmp_path):
    with pytest.raises(SpecError) as info:
        compose("env_file: nope.env", base_dir=str(tmp_path))
    assert info.value.subject == "services.web.env_file"
    assert "cannot read env file" in info.value.reason and "nope.env" in info.value.reason


def test_env_file_value_errors_name_the_env_file(tmp_path):
    (tmp_path / "app.env").write_text("OK=1\nBAD=\\u0000\n".replace("\\u0000", "\x00"))
    with pytest.raises(SpecError, match=r"^services\.web\.env_file\[0\]: must not contain NUL"):
        compose("env_file: [app.env]", base_dir=str(tmp_path))


def test_load_compose_reads_dotenv_with_shell_environment_first(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("TAG=from-dotenv\nPORT=8080\nNAME=app\n")
    (tmp_path / "docker-compose.yml").write_text(
        "name: ${NAME}\nservices:\n  web:\n    image: web:${TAG}\n    ports: ['${PORT}:80']\n")
    monkeypatch.setenv("TAG", "from-shell")
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("NAME", raising=False)
    spec = load_spec(tmp_path / "docker-compose.yml")
    assert spec.name == "app"
    assert spec.services["web"]["image"] == "web:from-shell"
    assert spec.services["web"]["ports"][0]["host_port"] == 8080
    assert spec.source == str(tmp_path / "docker-compose.yml")


def test_parse_env_file_directly():
    assert parse_env_file("A=1\nB=$A\n", "f", "k", {}) == {"A": "1", "B": "1"}
    assert parse_env_file("A=1\nB=$A\n", "f", "k", {"A": "env"}) == {"A": "1", "B": "1"}  # the file's own first
    assert parse_env_file("B=$A\nA=1\n", "f", "k", {"A": "env"}) == {"A": "1", "B": "env"}


# ---------------------------------------------------------------- load_spec dispatch

@pytest.mark.parametrize("name", ["compose.yaml", "docker-compose.yml", "app.YAML", "stack.yml"])
def test_load_spec_reads_yaml_as_compose(tmp_path, name):
    path = tmp_path / name
    path.write_text("services:\n  web:\n    image: web\n")
    assert load_spec(path).services["web"]["restart"] == "no"  # Compose's default, so Compose rules applied


def test_load_spec_reads_everything_else_as_toml(tmp_path):
    path = tmp_path / "spec"
    path.write_text('[services.web]\nimage = "web"\n')
    assert load_spec(path).services["web"]["restart"] == "unless-stopped"


def test_toml_users_never_import_yaml(tmp_path):
    path = tmp_path / "gen.toml"
    path.write_text('[services.web]\nimage = "web"\n')
    code = f"import sys, gen.spec; gen.spec.load_spec({str(path)!r}); assert 'yaml' not in sys.modules, 'yaml'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("content", [None, b"\xff\xfe", b"services: [", b"a: 1\na: 2\n", b"- 1\n"])
def test_load_compose_unreadable_or_invalid(tmp_path, content):
    path = tmp_path / "compose.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.subject == str(path)


def test_yaml_error_is_one_line_with_position():
    with pytest.raises(SpecError) as info:
        parse_compose("services:\n  web:\n    image: [web\n", "compose.yaml", environ={})
    assert info.value.subject == "compose.yaml"
    assert info.value.reason.startswith("invalid YAML: ")
    assert "line " in info.value.reason and "\n" not in info.value.reason


# ---------------------------------------------------------------- interpolation

VARS = {"A": "1", "EMPTY": "", "NAME": "web"}

INTERPOLATION = [
    ("plain", "plain"), ("$A", "1"), ("${A}", "1"), ("x$A-y", "x1-y"), ("${A}${A}", "11"), ("$NAME:$A", "web:1"),
    ("$$", "$"), ("$$A", "$A"), ("$${A}", "${A}"), ("a$$$A", "a$1"), ("100$$", "100$"),
    ("$UNSET", ""), ("${UNSET}", ""), ("${EMPTY}", ""),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${A:-d}", "1"),
    ("${UNSET-d}", "d"), ("${EMPTY-d}", ""), ("${A-d}", "1"),
    ("${UNSET:-}", ""), ("${UNSET:-a b:c}", "a b:c"), ("${UNSET:-${NAME}}", "web"), ("${UNSET:-${U2:-$A}}", "1"),
    ("${UNSET:-$$}", "$"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("${A:?must}", "1"), ("${EMPTY?must}", ""),
]


@pytest.mark.parametrize("text, expected", INTERPOLATION)
def test_interpolation(text, expected):
    assert interpolate(text, "k", VARS) == expected


@pytest.mark.parametrize("text, fragment", [
    ("${UNSET:?set UNSET first}", "required variable UNSET is missing a value: set UNSET first"),
    ("${EMPTY:?}", "required variable EMPTY is missing a value"),
    ("${UNSET?oops}", "required variable UNSET is missing a value: oops"),
    ("${UNSET:?${NAME} needs it}", "missing a value: web needs it"),
    ("${UNSET:?multi\nline}", "missing a value: multi line"),
    ("$", "a $ must start $NAME"), ("cost $5", "a $ must start $NAME"), ("a $ b", "a $ must start"),
    ("${A", "unclosed ${"), ("${A:-${B}", "unclosed ${"),
    ("${}", "is not ${NAME}"), ("${1A}", "is not ${NAME}"), ("${A:x}", "is not ${NAME}"), ("${A B}", "is not"),
    ("${" * 40 + "}" * 40, "is not"), ("${U:-" * 40 + "}" * 40, "nested too deeply"),
])
def test_interpolation_errors(text, fragment):
    with pytest.raises(SpecError) as info:
        interpolate(text, "services.web.image", VARS)
    assert info.value.subject == "services.web.image"
    assert fragment in info.value.reason
    assert "\n" not in str(info.value)


def test_interpolation_errors_name_the_compose_key():
    with pytest.raises(SpecError, match=r"^services\.web\.environment\.K: required variable NOPE is missing a "
                                         r"value: set NOPE$"):
        web("environment: {K: '${NOPE:?set NOPE}'}")
    with pytest.raises(SpecError, match=r"^services\.web\.command\[1\]: invalid interpolation"):
        web("command: [echo, cost $5]")
    with pytest.raises(SpecError, match=r"^name: required variable"):
        compose(top="name: ${PROJECT?}")


def test_interpolation_applies_to_values_not_keys_and_skips_x_keys():
    spec = compose("labels: {$TAG: $TAG}\nx-ignored: ${NOPE:?never evaluated}")
    assert spec.services["web"]["labels"] == {"$TAG": "1.4"}


# ---------------------------------------------------------------- unsupported and unknown keys

BAD = [
    ("deploy: {update_config: {order: rolling}}", "", "services.web.deploy.update_config.order", "must be one of"),
    ("deploy: {update_config: {parallelism: 2}}", "", "services.web.deploy.update_config.parallelism",
     "not supported"),
    # top level
    ("", "nmae: x", "nmae", "unknown key (expected one of: configs, name, networks, secrets, services, version, volumes)"),
    ("", "networks: {front: {driver: overlay}}", "networks.front.driver", "needs a Swarm"),
    ("", "configs: {c: {content: x}}", "configs.c.content", "not supported: gen reads configs from files"),
    ("", "include: [other.yaml]", "include[0].path", "cannot read compose file"),
    ("", "name: Shop", "name", "invalid name"),
    ("", "volumes: {data: {driver: local}}", "volumes.data.driver", "not supported"),
    ("", "volumes: {data: {external: false, name: x}}", "volumes.data.name", "not supported"),
    ("", "volumes: {data: {driver: local}}", "volumes.data.driver", "not supported"),
    ("", "volumes: {Data: }", "volumes.Data", "invalid name"),
    ("", "volumes: {data: 1}", "volumes.data", "must be a mapping"),
    ("", "secrets: {key: {environment: KEY}}", "secrets.key.environment", "not supported: gen reads secrets from files"),
    ("", "secrets: {key: {external: true}}", "secrets.key.external", "not supported"),
    ("", "secrets: {key: {}}", "secrets.key.file", "missing required key"),
    ("", "secrets: {key: {fiel: x}}", "secrets.key.fiel", "unknown key (expected one of: file, name)"),
    # service keys
    ("build: {context: ., ssh: [default]}", "", "services.web.build.ssh", "not supported"),
    ("container_name: -web", "", "services.web.container_name", "is not a container name"),
    ("networks: [front]", "", "services.web.networks[0]", "network 'front' is not declared"),
    ("network_mode: bridge", "", "services.web.network_mode", "not supported"),
    ("scale: 2\ndeploy: {replicas: 3}", "", "services.web.scale", "contradicts deploy.replicas"),
    ("imgae: web", "", "services.web.imgae", "unknown key (expected one of: "),
    ("env: {A: b}", "", "services.web.env", "unknown key"),
    ("stop_grace: 1s", "", "services.web.stop_grace", "unknown key"),
    ("replicas: 2", "", "services.web.replicas", "unknown key"),
    ("update: stop-first", "", "services.web.update", "unknown key"),
    # image, command
    ("image: 1", "", "services.web.image", "must be a string"),
    ("image: Web", "", "services.web.image", "invalid image reference"),
    ("command: \"echo 'open\"", "", "services.web.command", "cannot split"),
    ("command: ''", "", "services.web.command", "must not be empty"),
    ("command: [sleep, 10]", "", "services.web.command", "must be a list of strings"),
    ("entrypoint: 1", "", "services.web.entrypoint", "must be a string or a list of strings"),
    # environment
    ("environment: {1X: a}", "", "services.web.environment.1X", "invalid variable name"),
    ("environment: [A=1, 1X=a]", "", "services.web.environment[1]", "invalid variable name"),
    ("environment: [A=1, 2]", "", "services.web.environment[1]", "invalid variable name"),
    ("environment: [A=1, [2]]", "", "services.web.environment[1]", "must be a string"),
    ("environment: {A: [1]}", "", "services.web.environment.A", "must be a string, a number or a boolean"),
    ("environment: A=1", "", "services.web.environment", "must be a list of KEY=value strings or a mapping"),
    ("env_file: [{required: false}]", "", "services.web.env_file[0].path", "missing required key"),
    ("env_file: [{path: x, format: raw}]", "", "services.web.env_file[0].format", "not supported"),
    ("env_file: 1", "", "services.web.env_file", "must be a list"),
    # ports
    ("ports: ['99999:80']", "", "services.web.ports[0]", "port 99999 is out of range"),
    ("ports: ['8000-8005:80']", "", "services.web.ports[0]", "a host port range for one container port"),
    ("ports: ['8000-8001:80-82']", "", "services.web.ports[0]", "differ in length"),
    ("ports: ['::80']", "", "services.web.ports[0]", "invalid IP address"),
    ("ports: ['8002-8000:80-78']", "", "services.web.ports[0]", "ends before it starts"),
    ("ports: ['1-2000']", "", "services.web.ports[0]", "too large"),
    ("ports: [{target: 80, published: 80, mode: swarm}]", "", "services.web.ports[0].mode", "must be host or ingress"),
    ("ports: [{published: 80}]", "", "services.web.ports[0].target", "missing required key"),
    ("ports: [{target: 80, published: 8000-8001}]", "", "services.web.ports[0].published", "port range"),
    ("ports: [{target: 80, published: 80, app_protocl: http}]", "", "services.web.ports[0].app_protocl", "unknown key"),
    ("ports: [{target: 80-81}]", "", "services.web.ports[0].target", "port range"),
    ("ports: [{target: 80, published: 80, host_ip: localhost}]", "", "services.web.ports[0].host_ip",
     "invalid IP address 'localhost'"),
    ("ports: [{target: 80, published: 80, protocol: sctp}]", "", "services.web.ports[0]", "invalid protocol 'sctp'"),
    ("ports: [{target: 80, published: true}]", "", "services.web.ports[0].published", "must be a port number"),
    ("ports: [{target: 80, published: 80, host_ip: 1}]", "", "services.web.ports[0].host_ip", "must be a string"),
    ("ports: '80:80'", "", "services.web.ports", "must be a list"),
    ("ports: [[80]]", "", "services.web.ports[0]", "must be a string"),
    ("ports: ['80:80', '80:80']", "", "services.web.ports[1]", "already published by services.web.ports[0]"),
    # volumes
    ("volumes: [data]", "", "services.web.volumes[0]", "malformed volume"),
    ("volumes: ['dta:/data']", "", "services.web.volumes[0]", "named volume 'dta' is not declared"),
    ("volumes: ['data:/data:z']", "", "services.web.volumes[0]", "SELinux relabelling (z) is not supported"),
    ("volumes: ['~user/x:/x']", "", "services.web.volumes[0]", "not ~user"),
    ("volumes: [{type: npipe, source: x, target: /tmp}]", "", "services.web.volumes[0].type", "'npipe' is not supported"),
    ("volumes: [{source: data, target: /d}]", "", "services.web.volumes[0].type", "missing required key"),
    ("volumes: [{type: volume, target: /d, volume: {subpath: x}}]", "", "services.web.volumes[0].volume.subpath",
     "API 1.45"),
    ("volumes: [{type: volume, source: /srv, target: /d}]", "", "services.web.volumes[0].source",
     "a host path is type bind"),
    ("volumes: [{type: bind, target: /d}]", "", "services.web.volumes[0].source", "missing required key"),
    ("volumes: [{type: bind, source: /a, target: /d, bind: {selinux: z}}]", "",
     "services.web.volumes[0].bind.selinux", "does not relabel"),
    ("volumes: [{type: bind, source: /a, target: /d, read_only: yes}]", "", "services.web.volumes[0].read_only",
     "must be true or false"),
    ("volumes: [{type: tmpfs, source: x, target: /d}]", "", "services.web.volumes[0].source", "has no source"),
    ("volumes: [{type: bind, source: /a, target: d}]", "", "services.web.volumes[0].target", "must be an absolute path"),
    ("volumes: [{type: bind, source: /a, target: 1}]", "", "services.web.volumes[0].target", "must be a string"),
    ("volumes: [1]", "", "services.web.volumes[0]", "must be a string"),
    # depends_on
    ("depends_on: [dbb]", "", "services.web.depends_on[0]", "unknown service 'dbb'"),
    ("depends_on: {dbb: {condition: service_started}}", "", "services.web.depends_on.dbb", "unknown service 'dbb'"),
    ("depends_on: {db: {condition: service_healthy}}", "", "services.web.depends_on.db", "db has no healthcheck"),
    ("depends_on: {db: {condition: sometime}}", "", "services.web.depends_on.db.condition", "must be started, healthy"),
    ("depends_on: {db: {required: maybe}}", "", "services.web.depends_on.db.required", "must be true or false"),
    ("depends_on: {db: {restart: 1}}", "", "services.web.depends_on.db.restart", "must be true or false"),
    ("depends_on: {db: {when: now}}", "", "services.web.depends_on.db.when", "unknown key"),
    ("depends_on: db", "", "services.web.depends_on", "must be a list of service names or a mapping"),
    ("depends_on: [web]", "", "services", "dependency cycle: web -> web"),
    # healthcheck
    ("healthcheck: {interval: 5s}", "", "services.web.healthcheck.test", "gen does not take the image's HEALTHCHECK"),
    ("healthcheck: {test: [CMD, x], start_interval: 0s}", "", "services.web.healthcheck.start_interval", "at least 1ms"),
    ("healthcheck: {test: [CMD, x], disable: true}", "", "services.web.healthcheck.disable", "cannot be combined"),
    ("healthcheck: {disable: yes}", "", "services.web.healthcheck.disable", "must be true or false"),
    ("healthcheck: {test: [CMD, x], interval: 10}", "", "services.web.healthcheck.interval", "must be a duration"),
    ("healthcheck: {test: [CMD, x], timeout: 10us}", "", "services.web.healthcheck.timeout", "invalid duration"),
    ("healthcheck: {test: [wget]}", "", "services.web.healthcheck.test", 'must start with "CMD"'),
    ("healthcheck: true", "", "services.web.healthcheck", "must be a mapping"),
    # restart, deploy, grace, labels, user, working_dir, secrets
    ("restart: sometimes", "", "services.web.restart", "invalid restart policy"),
    ("deploy: {replicas: 0}", "", "services.web.deploy.replicas", "out of range"),
    ("deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}", "",
     "services.web.deploy.resources.reservations.devices", "not supported: device requests (GPUs)"),
    ("deploy: {replicaz: 1}", "", "services.web.deploy.replicaz", "unknown key (expected one of: endpoint_mode, placement, replicas, resources, update_config)"),
    ("stop_grace_period: 10", "", "services.web.stop_grace_period", "must be a duration string"),
    ("stop_grace_period: 25h", "", "services.web.stop_grace_period", "too large"),
    ("labels: {gen.profile: x}", "", "services.web.labels.gen.profile", "reserved"),
    ("labels: [gen.hash=x]", "", "services.web.labels[0]", "reserved"),
    ("labels: [=x]", "", "services.web.labels[0]", "must not be empty"),
    ("labels: {a: [1]}", "", "services.web.labels.a", "must be a string, a number or a boolean"),
    ("labels: a=b", "", "services.web.labels", "must be a list of key=value strings or a mapping"),
    ("user: 'a b'", "", "services.web.user", "invalid user"),
    ("user: [root]", "", "services.web.user", "must be a string"),
    ("working_dir: app", "", "services.web.working_dir", "must be an absolute path"),
    ("secrets: [x]", "", "services.web.secrets[0]", "secret 'x' is not declared in [secrets]"),
    ("secrets: [key, key]", "", "services.web.secrets[1]", "duplicate secret 'key'"),
    ("secrets: [{source: key, target: /etc/key}]", "", "services.web.secrets[0].target", "only the default target"),
    ("secrets: [{source: key, mode: 0400}]", "", "services.web.secrets[0].mode", "not supported"),
    ("secrets: [{target: key}]", "", "services.web.secrets[0].source", "missing required key"),
    ("secrets: [key]\nvolumes: ['data:/run/secrets/key']", "", "services.web.volumes[0]", "collides with secret 'key'"),
    ("secrets: key", "", "services.web.secrets", "must be a list"),
    # YAML itself
    ("image: web\nimage: other", "", "compose.yaml", "found duplicate key 'image'"),
    ("command: [a]\nimage: web", "", "compose.yaml", "found duplicate key 'image'"),
    ("ports: [!!binary aGk=]", "", "services.web.ports[0]", "unsupported YAML value of type bytes"),
    ("1: x", "", "services.web", "key 1 must be a string"),
]


@pytest.mark.parametrize("service, top, subject, fragment", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_compose(service, top, subject, fragment):
    with pytest.raises(SpecError) as info:
        if top:  # top-level cases bring their own volumes/secrets
            parse_compose("services:\n  web:\n    image: web:1\n" + top, "compose.yaml", "/base", ENV)
        else:
            compose(service)
    assert info.value.subject == subject
    assert fragment in info.value.reason
    assert str(info.value) == f"{subject}: {info.value.reason}"
    assert len(str(info.value).splitlines()) == 1


def test_bad_table_is_big_enough():
    assert len(BAD) >= 60


@pytest.mark.parametrize("text, subject", [
    ("services: []", "services"), ("services: {web: }", "services.web"), ("- a", "<string>"),
    ("services: {Web: {image: x}}", "services.Web"), ("services: {web: {command: [x]}}", "services.web.image"),
    ("secrets: {key: }", "secrets.key"), ("version: 3\nservices:\n  web: {image: web}\n  x-tmpl: {build: .}", None),
])
def test_structure(text, subject):
    if subject is None:
        assert list(parse_compose(text, environ={}).services) == ["web"]  # x- key in services: ignored
        return
    with pytest.raises(SpecError) as info:
        parse_compose(text, environ={})
    assert info.value.subject == subject


def test_x_keys_are_ignored_everywhere():
    plain = compose("healthcheck: {test: [CMD, x]}\ndeploy: {replicas: 2}\ndepends_on: {db: {condition: service_started}}")
    extended = compose("""
        x-owner: team-a
        healthcheck: {test: [CMD, x], x-why: slow}
        deploy: {replicas: 2, x-mode: fancy}
        depends_on: {db: {condition: service_started, x-note: 1}}
    """, top="x-shared: &shared {anything: [1, 2]}\nx-more: ${UNSET:?not evaluated}\n")
    assert plain == extended


def test_yaml_aliases_cannot_explode():
    """"Billion laughs": 10 levels of 10 aliases each would be 10**10 values once expanded."""
    lines = ["x-a: &a [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"x-{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]" for p, c in zip("abcdefghi", "bcdefghij")]
    lines += ["services:", "  web:", "    image: web", "    command: *j"]
    with pytest.raises(SpecError, match="^compose.yaml: the document is too large"):
        parse_compose("\n".join(lines), "compose.yaml", environ={})
    with pytest.raises(SpecError, match="nested too deeply"):  # a mapping that contains itself
        parse_compose("services: &s {web: {image: web, labels: *s}}", environ={})


# ---------------------------------------------------------------- fuzzing

def assert_only_spec_errors(text: str, environ: dict | None = None) -> None:
    try:
        spec = parse_compose(text, "compose.yaml", "/base", ENV if environ is None else environ)
    except SpecError as err:
        assert len(str(err).splitlines()) == 1, str(err)
        assert str(err) == f"{err.subject}: {err.reason}"
    else:
        stack = [spec.services, spec.volumes, spec.secrets]
        while stack:
            value = stack.pop()
            assert type(value) in (str, int, bool, type(None), list, dict), value
            stack.extend(value.values() if isinstance(value, dict) else value if isinstance(value, list) else ())


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PLAUSIBLE = st.sampled_from([
    "web", "db", "data", "key", "web:1", "8080:80", "127.0.0.1:80:80/udp", "[::1]:1:2", "80", "data:/d:ro", "./x:/y",
    "/a:/b", "~/c:/c", "5s", "1m30s", "0.5ms", "CMD", "CMD-SHELL", "NONE", "on-failure:3", "no", "service_healthy",
    "service_completed_successfully", "A=1", "K", "$A", "${A:-x}", "${B:?no}", "$$", "$", "${", "", "\x00", "é\u2028x",
    "volume", "bind", "host", "tcp", "x-y", "gen.x", "sh -c 'x'", "'", "3000", "8000-8001:80-81", "/data",
    "service:db", "container:x", "none", "front", "172.20.0.0/24", "tmpfs", "rshared", "ingress", "if_not_present",
    "daily", "other.yaml", ".", "debug", "*",
])
KEYS = st.sampled_from([
    "name", "services", "volumes", "secrets", "version", "networks", "image", "command", "entrypoint", "environment",
    "env_file", "ports", "depends_on", "healthcheck", "restart", "deploy", "replicas", "labels", "stop_grace_period",
    "user", "working_dir", "build", "target", "published", "host_ip", "protocol", "mode", "type", "source",
    "read_only", "condition", "test", "interval", "timeout", "retries", "start_period", "disable", "file", "path",
    "required", "web", "db", "data", "key", "x-ext", "<<", "include", "extends", "service", "project_directory",
    "container_name", "network_mode", "pull_policy", "profiles", "context", "dockerfile", "args", "aliases",
    "ipv4_address", "ipam", "config", "subnet", "external", "driver", "bind", "volume", "tmpfs", "create_host_path",
    "propagation", "nocopy", "size", "start_interval", "scale", "front",
]) | st.text(max_size=8)
SCALARS = (PLAUSIBLE | st.text(max_size=20) | st.booleans() | st.none() | st.floats()
           | st.integers(min_value=-2**70, max_value=2**70) | st.integers(min_value=-5, max_value=70000))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)
SERVICE = st.fixed_dictionaries({"image": st.just("web:1") | SCALARS}, optional={
    key: VALUES | st.lists(PLAUSIBLE | VALUES, max_size=3)
    for key in ["command", "entrypoint", "environment", "env_file", "ports", "volumes", "depends_on", "healthcheck",
                "restart", "deploy", "labels", "stop_grace_period", "user", "working_dir", "secrets", "x-ext",
                "build", "container_name", "networks", "network_mode", "pull_policy", "profiles", "extends", "scale"]})
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "name": PLAUSIBLE | SCALARS,
    "services": st.dictionaries(st.sampled_from(["web", "db", "api"]) | KEYS, SERVICE, max_size=3),
    "volumes": st.dictionaries(PLAUSIBLE | KEYS, st.none() | VALUES, max_size=2),
    "secrets": st.dictionaries(PLAUSIBLE | KEYS, st.fixed_dictionaries({"file": PLAUSIBLE}) | VALUES, max_size=2),
    "networks": st.dictionaries(PLAUSIBLE | KEYS, st.none() | VALUES, max_size=2),
    "include": st.lists(PLAUSIBLE | VALUES, max_size=2),
}) | st.dictionaries(KEYS, VALUES, max_size=4)


@FAST
@given(st.text())
def test_fuzz_arbitrary_text(text):
    assert_only_spec_errors(text)


@FAST
@given(st.text(alphabet=st.sampled_from(list("abx-:{}[]&*!|>'\"#%@`,?\n $01.~<=\t")), max_size=60))
def test_fuzz_yaml_punctuation(text):
    assert_only_spec_errors(text)


@FAST
@given(DOCUMENTS, st.sampled_from([True, False]))
def test_fuzz_generated_documents(doc, flow):
    text = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True)
    assert_only_spec_errors(text)


SERVICE_KEYS = ["image", "command", "entrypoint", "environment", "env_file", "ports", "volumes", "depends_on",
                "healthcheck", "restart", "deploy", "labels", "stop_grace_period", "user", "working_dir", "secrets",
                "build", "container_name", "networks", "network_mode", "pull_policy", "profiles", "extends", "scale"]


@FAST
@given(st.sampled_from(SERVICE_KEYS), VALUES | PLAUSIBLE | st.lists(PLAUSIBLE, max_size=3))
def test_fuzz_one_field_of_a_valid_service(field, value):
    doc = yaml.safe_load((TRIO / "compose.yaml").read_text())
    doc["services"]["web"][field] = value
    assert_only_spec_errors(yaml.safe_dump(doc, allow_unicode=True))
