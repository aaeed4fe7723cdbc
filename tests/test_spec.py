"""Spec parsing, validation and normalisation (no Docker)."""
from __future__ import annotations

import math
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from gen.errors import SpecError
from gen.model.graph import start_order
from gen.spec import NAME_RE, Spec, load_spec, parse_duration, parse_spec

FULL = """
name = "shop"

[services.web]
image = "shop/web:1.4"
command = ["httpd", "-f", "-p", "8080"]
entrypoint = ["/bin/sh", "-c"]
env = { GREETING = "hello", "LOG.LEVEL" = "debug" }
ports = ["127.0.0.1:8080:8080", "[::1]:8443:443/udp", "9000:9000"]
volumes = ["data:/var/lib/web/", "/srv//static/:/static:ro", "/etc/web:/etc/web:rw"]
depends_on = ["db", "cache"]
replicas = 1
update = "stop-first"
stop_grace = "1m30s"
restart = "on-failure:3"
labels = { "com.example.team" = "shop", tier = "" }
user = "1000:www-data"
working_dir = "/srv//www/"

[services.web.healthcheck]
test = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]
interval = "1s"
timeout = "1.5s"
retries = 5
start_period = "200ms"

[services.db]
image = "registry.local:5000/postgres:16@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
healthcheck = { test = "pg_isready" }

[services.cache]
image = "redis"
replicas = 3
healthcheck = { test = ["NONE"] }

[volumes.data]
"""

DEFAULTS = {
    "command": None, "entrypoint": None, "env": {}, "ports": [], "volumes": [], "depends_on": [],
    "replicas": 1, "update": "start-first", "stop_grace_ms": 10000, "restart": "unless-stopped",
    "healthcheck": None, "secrets": [], "configs": [], "labels": {}, "user": None, "working_dir": None,
}

EXPECTED_WEB = {
    "name": "web",
    "image": "shop/web:1.4",
    "command": ["httpd", "-f", "-p", "8080"],
    "entrypoint": ["/bin/sh", "-c"],
    "env": {"GREETING": "hello", "LOG.LEVEL": "debug"},
    "ports": [
        {"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 8080, "protocol": "tcp"},
        {"host_ip": "::1", "host_port": 8443, "container_port": 443, "protocol": "udp"},
        {"host_ip": "", "host_port": 9000, "container_port": 9000, "protocol": "tcp"},
    ],
    "volumes": [
        {"type": "volume", "source": "data", "target": "/var/lib/web", "read_only": False},
        {"type": "bind", "source": "/srv/static", "target": "/static", "read_only": True},
        {"type": "bind", "source": "/etc/web", "target": "/etc/web", "read_only": False},
    ],
    "depends_on": ["cache", "db"],
    "replicas": 1,
    "update": "stop-first",
    "stop_grace_ms": 90000,
    "restart": "on-failure:3",
    "healthcheck": {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"],
                    "interval_ms": 1000, "timeout_ms": 1500, "retries": 5, "start_period_ms": 200},
    "secrets": [],
    "configs": [],
    "labels": {"com.example.team": "shop", "tier": ""},
    "user": "1000:www-data",
    "working_dir": "/srv/www",
}

EXPECTED_DB = {
    **DEFAULTS, "name": "db",
    "image": "registry.local:5000/postgres:16@sha256:"
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "healthcheck": {"test": ["CMD-SHELL", "pg_isready"], "interval_ms": 2000, "timeout_ms": 5000,
                    "retries": 3, "start_period_ms": 0},
}

EXPECTED_CACHE = {
    **DEFAULTS, "name": "cache", "image": "redis", "replicas": 3,
    "healthcheck": {"test": ["NONE"], "interval_ms": 2000, "timeout_ms": 5000, "retries": 3,
                    "start_period_ms": 0},
}


def test_full_example_normalises_exactly():
    spec = parse_spec(FULL, "gen.toml")
    assert spec == Spec(name="shop", source="gen.toml", volumes={"data": {}},
                        services={"cache": EXPECTED_CACHE, "db": EXPECTED_DB, "web": EXPECTED_WEB})
    assert list(spec.services) == ["cache", "db", "web"]
    assert list(spec.services["web"]) == list(EXPECTED_WEB)  # stable key order too


def _walk(value):
    yield value
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_normalised_values_are_plain_and_float_free():
    spec = parse_spec(FULL)
    for value in _walk(spec.services):
        assert type(value) in (str, int, bool, type(None), list, dict)


def test_key_order_and_inline_tables_do_not_matter():
    sections = """
    [services.web]
    image = "web:1"
    ports = ["80:80"]
    [services.web.healthcheck]
    test = "true"
    retries = 2
    [services.db]
    image = "db:1"
    [volumes.data]
    """
    inline = """
    volumes = { data = {} }
    services = { db = { image = "db:1" }, web = { healthcheck = { retries = 2, test = "true" }, ports = ["80:80"], image = "web:1" } }
    """
    dotted = """
    services.web.ports = ["80:80"]
    services.db.image = "db:1"
    services.web.healthcheck.retries = 2
    volumes.data = {}
    services.web.image = "web:1"
    services.web.healthcheck.test = "true"
    """
    assert parse_spec(sections) == parse_spec(inline) == parse_spec(dotted)


def test_minimal_service_gets_defaults():
    spec = parse_spec('[services.app]\nimage = "app"\n')
    assert spec.name is None
    assert spec.volumes == {}
    assert spec.services == {"app": {**DEFAULTS, "name": "app", "image": "app"}}


@pytest.mark.parametrize("lines, update", [
    ('', "start-first"),
    ('volumes = ["data:/data"]', "stop-first"),                   # writes a named volume
    ('volumes = ["/srv/app:/app"]', "stop-first"),                # writes a bind
    ('volumes = ["data:/data:ro", "/srv/app:/app:ro"]', "start-first"),   # only reads
    ('volumes = ["data:/data"]\nupdate = "start-first"', "start-first"),  # asked for: kept
    ('update = "stop-first"', "stop-first"),
])
def test_a_service_that_writes_data_updates_stop_first_unless_asked_otherwise(lines, update):
    spec = parse_spec(f'[volumes.data]\n[services.app]\nimage = "app"\n{lines}\n')
    assert spec.services["app"]["update"] == update


def test_zero_services_is_valid():
    assert parse_spec('name = "empty"') == Spec("empty", {}, {}, "<string>")
    assert parse_spec("services = {}").services == {}
    assert parse_spec("").services == {}


def test_load_spec_reads_file_and_reports_source(tmp_path):
    path = tmp_path / "gen.toml"
    path.write_bytes(b"\xef\xbb\xbf" + FULL.encode())  # BOM tolerated
    assert load_spec(path).services == parse_spec(FULL).services
    assert load_spec(path).source == str(path)
    path.write_text('[services.web]\nimage = "x"\nport = 1\n')
    with pytest.raises(SpecError, match=r"^services\.web\.port: unknown key"):
        load_spec(path)


@pytest.mark.parametrize("content", [None, b"\xff\xfe bad", b"a = = 1"])
def test_load_spec_unreadable_or_invalid(tmp_path, content):
    path = tmp_path / "gen.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.subject == str(path)


def test_toml_syntax_error_names_source_and_position():
    with pytest.raises(SpecError) as info:
        parse_spec('[services.web]\nimage = "x\n', "gen.toml")
    assert info.value.subject == "gen.toml"
    assert info.value.reason.startswith("invalid TOML: ")
    assert "line 2" in info.value.reason


SECRETS = """
[secrets.db_password]
file = "secrets/db.txt"
[secrets.api-key]
file = "/etc/gen/../gen/api.key"
[services.web]
image = "web"
secrets = ["db_password", "api-key"]
volumes = ["/srv:/run/secrets", "/etc/x:/run/secrets/other"]   # no clash: only used names are reserved
"""


def test_secrets_are_declared_resolved_and_listed_sorted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = parse_spec(SECRETS)
    assert spec.secrets == {"api-key": {"file": "/etc/gen/api.key"},
                            "db_password": {"file": f"{tmp_path}/secrets/db.txt"}}
    assert list(spec.secrets) == ["api-key", "db_password"]
    assert spec.services["web"]["secrets"] == ["api-key", "db_password"]
    assert len(spec.services["web"]) == len(DEFAULTS) + 2 == 18  # + name, image
    # The file's existence is compile's business, never the parser's.
    assert not (tmp_path / "secrets").exists()


def test_secret_files_are_relative_to_the_spec_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "gen.toml"
    path.write_text(SECRETS)
    spec = load_spec(path)
    assert spec.secrets["db_password"] == {"file": f"{tmp_path}/conf/secrets/db.txt"}
    assert parse_spec(SECRETS, base_dir="/opt/app").secrets["db_password"]["file"] == "/opt/app/secrets/db.txt"


def test_spec_without_secrets_keeps_old_constructor_working():
    assert Spec(name="x", services={}, volumes={}, source="s").secrets == {}
    assert parse_spec('[secrets.k]\nfile = "/k"').services == {}


def svc(extra: str = "", image: str = '"web:1"') -> str:
    """A one-service spec plus extra lines in its table (and an `api` and `db` to refer to)."""
    return f'[services.web]\nimage = {image}\n{extra}\n[services.db]\nimage = "db"\n[volumes.data]\n'


SECRET = '[secrets.key]\nfile = "/etc/key"\n'

BAD = [
    # toml / top level
    ('a = = 1', "<string>", "invalid TOML"),
    ('a = ' + '[' * 5000, "<string>", "invalid TOML"),
    ('a = ' + '9' * 5000, "<string>", "invalid TOML"),
    ('nmae = "x"', "nmae", "unknown key (expected one of: configs, name, networks, secrets, services, volumes)"),
    ('name = 1', "name", "must be a string"),
    ('name = "Shop"', "name", "invalid name"),
    ('name = "' + 'a' * 64 + '"', "name", "at most 63 characters"),
    ('services = []', "services", "must be a table"),
    ('services = { web = "x" }', "services.web", "must be a table"),
    # names
    ('[services.Web]\nimage = "x"', "services.Web", "invalid name (use [a-z0-9][a-z0-9_.-]*, at most 63"),
    ('[services._web]\nimage = "x"', "services._web", "invalid name"),
    ('[services."we b"]\nimage = "x"', "services.'we b'", "invalid name"),
    ('[services."a\\nb"]\nimage = "x"', "services.'a\\nb'", "invalid name"),
    ('[volumes."Data"]', "volumes.Data", "invalid name"),
    ('volumes = { data = 1 }', "volumes.data", "must be a table"),
    ('[volumes.data]\ndriver = "local"', "volumes.data.driver", "unknown key"),
    # keys and types
    (svc('imgae = "x"'), "services.web.imgae", "unknown key (did you mean image?)"),
    ('[services.web]\ncommand = ["x"]', "services.web.image", "missing required key"),
    (svc(image='1'), "services.web.image", "must be a string"),
    (svc(image='""'), "services.web.image", "must not be empty"),
    (svc(image='"shop web"'), "services.web.image", "invalid image reference 'shop web'"),
    (svc(image='"Shop/Web"'), "services.web.image", "invalid image reference"),
    (svc(image='"web:"'), "services.web.image", "invalid image reference"),
    (svc(image='"web@sha256:xyz"'), "services.web.image", "invalid image reference"),
    (svc(image='"' + 'a' * 5000 + '"'), "services.web.image", "too long"),
    (svc(image='"web\\u0000"'), "services.web.image", "NUL"),
    (svc('command = "httpd -f"'), "services.web.command", "must be a list of strings"),
    (svc('command = ["httpd", 1]'), "services.web.command", "must be a list of strings"),
    (svc('command = []'), "services.web.command", "must not be empty"),
    (svc('entrypoint = ["sh", "a\\u0000b"]'), "services.web.entrypoint[1]", "NUL"),
    # env
    (svc('env = ["A=1"]'), "services.web.env", "must be a table"),
    (svc('env = { PORT = 8080 }'), "services.web.env.PORT", 'must be a string (quote it: PORT = "8080")'),
    (svc('env = { DEBUG = true }'), "services.web.env.DEBUG", 'quote it: DEBUG = "true"'),
    (svc('env = { X = [1] }'), "services.web.env.X", "must be a string"),
    (svc('env = { "1X" = "a" }'), "services.web.env.1X", "invalid variable name"),
    (svc('env = { "A=B" = "a" }'), "services.web.env.'A=B'", "invalid variable name"),
    (svc('env = { A = "x\\u0000" }'), "services.web.env.A", "NUL"),
    # ports
    (svc('ports = "80:80"'), "services.web.ports", "must be a list of strings"),
    (svc('ports = [8080]'), "services.web.ports[0]", "must be a string"),
    (svc('ports = ["99999:80"]'), "services.web.ports[0]", "port 99999 is out of range"),
    (svc('ports = ["80:0"]'), "services.web.ports[0]", "port 0 is out of range"),
    (svc('ports = ["80:' + '9' * 4000 + '"]'), "services.web.ports[0]", "is out of range"),
    (svc('ports = ["80:"]'), "services.web.ports[0]", "malformed port '80:'"),
    (svc('ports = ["http:80"]'), "services.web.ports[0]", "malformed port"),
    (svc('ports = ["80:80/sctp"]'), "services.web.ports[0]", "invalid protocol 'sctp'"),
    (svc('ports = ["localhost:80:80"]'), "services.web.ports[0]", "invalid IP address 'localhost'"),
    (svc('ports = ["::1:80:80"]'), "services.web.ports[0]", "malformed port"),
    (svc('ports = ["[127.0.0.1]:80:80"]'), "services.web.ports[0]", "brackets are only for IPv6"),
    (svc('ports = ["[::1]80:80"]'), "services.web.ports[0]", "malformed port"),
    (svc('ports = ["80:80", "0.0.0.0:80:81"]'), "services.web.ports[1]",
     "host port 80/tcp is already published by services.web.ports[0]"),
    (svc('ports = ["80:80", "[::1]:80:81"]'), "services.web.ports[1]", "already published"),
    (svc('ports = ["8080:80"]') + '[services.api]\nimage = "api"\nports = ["127.0.0.1:8080:80"]\n',
     "services.web.ports[0]", "host port 8080/tcp is already published by services.api.ports[0]"),
    # volumes
    (svc('volumes = ["dta:/data"]'), "services.web.volumes[0]", "named volume 'dta' is not declared in [volumes]"),
    (svc('volumes = ["./data:/data"]'), "services.web.volumes[0]", "must be an absolute path"),
    (svc('volumes = ["data:data"]'), "services.web.volumes[0]", "target 'data' must be an absolute path"),
    (svc('volumes = ["data:/data:rx"]'), "services.web.volumes[0]", "invalid option 'rx' for a volume"),
    (svc('volumes = ["data"]'), "services.web.volumes[0]", "malformed volume"),
    (svc('volumes = ["data:/"]'), "services.web.volumes[0]", "cannot mount over"),
    (svc('volumes = ["data:/d", "/srv:/d/"]'), "services.web.volumes[1]",
     "target /d is already mounted by services.web.volumes[0]"),
    (svc('volumes = [1]'), "services.web.volumes[0]", "must be a string"),
    # depends_on
    (svc('depends_on = ["dbb"]'), "services.web.depends_on[0]", "unknown service 'dbb'"),
    (svc('depends_on = ["db", "db"]'), "services.web.depends_on[1]", "duplicate dependency 'db'"),
    (svc('depends_on = "db"'), "services.web.depends_on", "must be a list of service names or a table"),
    (svc('depends_on = ["web"]'), "services", "dependency cycle: web -> web"),
    ('[services.c]\nimage="x"\ndepends_on=["a"]\n[services.b]\nimage="x"\ndepends_on=["c"]\n'
     '[services.a]\nimage="x"\ndepends_on=["b"]\n[services.z]\nimage="x"\ndepends_on=["a"]',
     "services", "dependency cycle: a -> b -> c -> a"),
    # scalars
    (svc('replicas = 0'), "services.web.replicas", "0 is out of range (1..100)"),
    (svc('replicas = 101'), "services.web.replicas", "out of range"),
    (svc('replicas = 0x' + 'f' * 3000), "services.web.replicas", "a very large number is out of range"),
    (svc('replicas = true'), "services.web.replicas", "must be an integer"),
    (svc('replicas = 1.0'), "services.web.replicas", "must be an integer"),
    (svc('replicas = "1"'), "services.web.replicas", "must be an integer"),
    (svc('update = "rolling"'), "services.web.update", "must be one of: start-first, stop-first"),
    (svc('restart = "sometimes"'), "services.web.restart", "invalid restart policy"),
    (svc('restart = "on-failure:0"'), "services.web.restart", "out of range"),
    (svc('restart = "on-failure:' + '9' * 4000 + '"'), "services.web.restart", "out of range"),
    (svc('stop_grace = 10'), "services.web.stop_grace", "must be a duration string"),
    (svc('stop_grace = "25h"'), "services.web.stop_grace", "too large"),
    (svc('stop_grace = "-1s"'), "services.web.stop_grace", "must not be negative"),
    # healthcheck
    (svc('healthcheck = true'), "services.web.healthcheck", "must be a table"),
    (svc('healthcheck = { interval = "1s" }'), "services.web.healthcheck.test", "missing required key"),
    (svc('healthcheck = { test = "x", tries = 3 }'), "services.web.healthcheck.tries", "unknown key"),
    (svc('healthcheck = { test = ["wget"] }'), "services.web.healthcheck.test", 'must start with "CMD"'),
    (svc('healthcheck = { test = ["CMD"] }'), "services.web.healthcheck.test", "needs a command"),
    (svc('healthcheck = { test = ["CMD-SHELL", "a", "b"] }'), "services.web.healthcheck.test", "exactly one"),
    (svc('healthcheck = { test = ["NONE", "x"] }'), "services.web.healthcheck.test", "NONE"),
    (svc('healthcheck = { test = [] }'), "services.web.healthcheck.test", 'must start with "CMD"'),
    (svc('healthcheck = { test = "" }'), "services.web.healthcheck.test", "must not be empty"),
    (svc('healthcheck = { test = 1 }'), "services.web.healthcheck.test", "must be a string or a list"),
    (svc('healthcheck = { test = "x", interval = "0s" }'), "services.web.healthcheck.interval", "at least 1ms"),
    (svc('healthcheck = { test = "x", timeout = "5" }'), "services.web.healthcheck.timeout", "invalid duration"),
    (svc('healthcheck = { test = "x", retries = 0 }'), "services.web.healthcheck.retries", "out of range"),
    (svc('healthcheck = { test = "x", retries = 1001 }'), "services.web.healthcheck.retries", "out of range"),
    (svc('healthcheck = { test = "x", start_period = "1.5ms" }'),
     "services.web.healthcheck.start_period", "whole number of milliseconds"),
    # labels, user, working_dir
    (svc('labels = ["a=b"]'), "services.web.labels", "must be a table"),
    (svc('labels = { "gen.profile" = "x" }'), "services.web.labels.gen.profile", "reserved"),
    (svc('labels = { port = 80 }'), "services.web.labels.port", 'quote it: port = "80"'),
    (svc('labels = { "a\\rb" = false }'), "services.web.labels.'a\\rb'", "must be a string"),
    (svc('labels = { "" = "x" }'), "services.web.labels.''", "must not be empty"),
    (svc('labels = { a = "\\u0000" }'), "services.web.labels.a", "NUL"),
    (svc('user = 1000'), "services.web.user", "must be a string"),
    (svc('user = ""'), "services.web.user", "must not be empty"),
    (svc('user = "a b"'), "services.web.user", "invalid user 'a b'"),
    (svc('user = "a:b:c"'), "services.web.user", "invalid user"),
    (svc('working_dir = "srv"'), "services.web.working_dir", "'srv' must be an absolute path"),
    (svc('working_dir = ""'), "services.web.working_dir", "must not be empty"),
    (svc('working_dir = ["/"]'), "services.web.working_dir", "must be a string"),
    # secrets
    ('secrets = []', "secrets", "must be a table"),
    ('secrets = { key = "k.txt" }', "secrets.key", "must be a table"),
    ('[secrets.Key]\nfile = "k"', "secrets.Key", "invalid name"),
    ('[secrets.key]', "secrets.key.file", "missing required key"),
    ('[secrets.key]\nfile = "k"\nmode = "0400"', "secrets.key.mode", "unknown key (expected one of: file)"),
    ('[secrets.key]\nfile = 1', "secrets.key.file", "must be a string"),
    ('[secrets.key]\nfile = ""', "secrets.key.file", "must not be empty"),
    ('[secrets.key]\nfile = "a\\u0000"', "secrets.key.file", "NUL"),
    (svc('secrets = ["x"]'), "services.web.secrets[0]", "secret 'x' is not declared in [secrets]"),
    (svc('secrets = "key"') + SECRET, "services.web.secrets", "must be a list of strings"),
    (svc('secrets = [1]') + SECRET, "services.web.secrets", "must be a list of strings"),
    (svc('secrets = ["key", "key"]') + SECRET, "services.web.secrets[1]", "duplicate secret 'key'"),
    (svc('secrets = ["key"]\nvolumes = ["data:/run/secrets/key"]') + SECRET, "services.web.volumes[0]",
     "target /run/secrets/key collides with secret 'key'"),
    (svc('secrets = ["key"]\nvolumes = ["/srv:/run/secrets/key/x/"]') + SECRET, "services.web.volumes[0]",
     "target /run/secrets/key/x collides with secret 'key'"),
]


@pytest.mark.parametrize("text, subject, fragment", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_spec(text, subject, fragment):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert info.value.subject == subject
    assert fragment in info.value.reason
    assert str(info.value) == f"{subject}: {info.value.reason}"
    assert len(str(info.value).splitlines()) == 1


def test_bad_table_is_big_enough():
    assert len(BAD) >= 40


@pytest.mark.parametrize("text, ms", [
    ("0", 0), ("0s", 0), ("200ms", 200), ("5s", 5000), ("1m", 60000), ("1h", 3600000),
    ("1m30s", 90000), ("1h2m3s4ms", 3723004), ("1.5s", 1500), ("0.25s", 250), ("1.5m", 90000),
    ("0.001s", 1), ("24h", 86400000), ("23h59m59s999ms", 86399999), ("007s", 7000),
])
def test_duration_valid(text, ms):
    assert parse_duration(text, "k") == ms


@pytest.mark.parametrize("text, fragment", [
    ("", "invalid duration"), ("5", "invalid duration"), ("s", "invalid duration"),
    ("5 s", "invalid duration"), ("5sec", "invalid duration"), ("1d", "invalid duration"),
    (".5s", "invalid duration"), ("5.s", "invalid duration"), ("+5s", "invalid duration"),
    ("30s1m", "largest to smallest"), ("1s1s", "largest to smallest"), ("-5s", "must not be negative"),
    ("0.5ms", "whole number of milliseconds"), ("1.0001s", "whole number of milliseconds"),
    ("25h", "too large"), ("24h1ms", "too large"), ("9" * 40 + "h", "too large"),
    ("1" * 100 + "s", "invalid duration"), (5, "must be a duration string"), (1.5, "must be a duration string"),
    ("５s", "invalid duration"),
])
def test_duration_invalid(text, fragment):
    with pytest.raises(SpecError) as info:
        parse_duration(text, "services.web.stop_grace")
    assert info.value.subject == "services.web.stop_grace"
    assert fragment in info.value.reason


def test_start_order_levels():
    graph = {"web": ["api", "cache"], "api": ["db", "cache"], "db": [], "cache": [], "worker": ["db"], "lone": []}
    services = {name: {"depends_on": deps} for name, deps in graph.items()}
    assert start_order(services) == [["cache", "db", "lone"], ["api", "worker"], ["web"]]
    assert start_order({}) == []


def test_start_order_ignores_dependencies_outside_the_subset():
    assert start_order({"web": {"depends_on": ["db"]}}) == [["web"]]


def test_start_order_of_parsed_spec():
    assert start_order(parse_spec(FULL).services) == [["cache", "db"], ["web"]]


def test_cycle_reported_from_smallest_member_only():
    # "a" depends on the cycle but is not on it: the cycle starts at "b".
    services = {"a": {"depends_on": ["b"]}, "b": {"depends_on": ["c"]}, "c": {"depends_on": ["b"]}}
    with pytest.raises(SpecError, match=r"^services: dependency cycle: b -> c -> b$"):
        start_order(services)


@pytest.mark.parametrize("name, ok", [
    ("web", True), ("a", True), ("0", True), ("web-1.v2_x", True), ("a" * 63, True),
    ("a" * 64, False), ("", False), ("Web", False), ("-web", False), (".web", False), ("we b", False),
    ("web\n", False), ("wéb", False),
])
def test_name_re(name, ok):
    assert bool(NAME_RE.match(name)) is ok


@pytest.mark.parametrize("image", [
    "web", "shop/web:1.4", "localhost/web", "localhost:5000/a/b/c:latest", "registry.example.com/x_y/a-b:v1.2-rc_3",
    "ghcr.io/org/app@sha256:" + "0" * 64, "sha256:" + "f" * 64, "[::1]:5000/web", "a__b", "a---b",
])
def test_valid_images(image):
    assert parse_spec(svc(image=f'"{image}"')).services["web"]["image"] == image


def test_port_overlap_rules():
    ok = svc('ports = ["127.0.0.1:80:80", "127.0.0.2:80:80", "80:80/udp", "[::1]:80:81"]')
    assert [p["host_ip"] for p in parse_spec(ok).services["web"]["ports"]] == ["127.0.0.1", "127.0.0.2", "", "::1"]
    canonical = svc('ports = ["[0:0::1]:80:80"]')
    assert parse_spec(canonical).services["web"]["ports"][0]["host_ip"] == "::1"
    with pytest.raises(SpecError, match="already published"):
        parse_spec(svc('ports = ["[::]:80:80", "127.0.0.1:80:80"]'))


# ---------------------------------------------------------------- fuzzing

def toml_value(value) -> str:
    """A tiny TOML serialiser (inline form) for generated documents."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return hex(value) if value >= 0 else str(value)  # hex: no digit limit for big ints
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\U{ord(c):08x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict) -> str:
    return "\n".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in doc.items()) + "\n"


PLAUSIBLE = st.sampled_from([
    "web", "db", "data", "web:1", "8080:80", "127.0.0.1:80:80/udp", "[::1]:1:2", "data:/d:ro", "/a:/b",
    "5s", "1m30s", "0.5ms", "CMD", "CMD-SHELL", "NONE", "on-failure:3", "stop-first", "", "\x00", "é\u2028x",
    "3000", "8000-8001:80-81", "/data", "host", "none", "service:db", "container:x", "healthy", "completed",
    "started", "front", "172.20.0.0/24", "172.20.0.2", "bridge", "volume", "bind", "tmpfs", "rshared", "64m", ".",
])
KEYS = st.sampled_from(["name", "services", "volumes", "secrets", "file", "image", "command", "entrypoint", "env", "ports",
                        "volumes", "depends_on", "replicas", "update", "stop_grace", "restart", "healthcheck",
                        "labels", "user", "working_dir", "test", "interval", "timeout", "retries", "start_period", "web", "db", "data",
                        "networks", "build", "pull_policy", "container_name", "network_mode", "job", "profiles",
                        "context", "dockerfile", "args", "target", "aliases", "ipv4_address", "ipam", "config",
                        "subnet", "external", "condition", "required", "type", "source", "tmpfs_size",
                        "propagation", "create_host_path", "front", "start_interval"]) | st.text(max_size=8)
SCALARS = (PLAUSIBLE | st.text(max_size=20) | st.booleans() | st.floats()
           | st.integers(min_value=-2**70, max_value=2**70) | st.integers(min_value=-5, max_value=70000))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)
SERVICE = st.fixed_dictionaries({"image": st.just("web:1") | SCALARS}, optional={
    key: VALUES for key in ["command", "env", "ports", "volumes", "depends_on", "replicas", "update",
                            "stop_grace", "restart", "healthcheck", "secrets", "labels", "user",
                            "working_dir", "build", "pull_policy", "container_name", "networks", "network_mode",
                            "job", "profiles"]})
DOCUMENTS = st.fixed_dictionaries({}, optional={
    "name": PLAUSIBLE | SCALARS,
    "services": st.dictionaries(st.sampled_from(["web", "db", "api"]) | KEYS, SERVICE, max_size=3),
    "volumes": st.dictionaries(PLAUSIBLE | KEYS, st.just({}) | VALUES, max_size=2),
    "secrets": st.dictionaries(PLAUSIBLE | KEYS, st.fixed_dictionaries({"file": PLAUSIBLE}) | VALUES, max_size=2),
    "networks": st.dictionaries(PLAUSIBLE | KEYS, st.just({}) | VALUES, max_size=2),
}) | st.dictionaries(KEYS, VALUES, max_size=4)


def assert_only_spec_errors(text: str) -> None:
    try:
        spec = parse_spec(text)
    except SpecError as err:
        assert len(str(err).splitlines()) == 1, str(err)
        assert str(err) == f"{err.subject}: {err.reason}"
    else:
        for value in _walk(spec.services):
            assert not isinstance(value, float)


SERVICE_KEYS = ["image", "command", "entrypoint", "env", "ports", "volumes", "depends_on", "replicas",
                "update", "stop_grace", "restart", "healthcheck", "secrets", "labels", "user", "working_dir",
                "build", "pull_policy", "container_name", "networks", "network_mode", "job", "profiles"]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text())
def test_fuzz_arbitrary_text(text):
    assert_only_spec_errors(text)


@FAST
@given(DOCUMENTS)
def test_fuzz_generated_documents(doc):
    text = toml_document(doc)
    assert repr(tomllib.loads(text)) == repr(doc)  # serialiser sanity (repr: nan != nan)
    assert_only_spec_errors(text)


@FAST
@given(st.sampled_from(SERVICE_KEYS), VALUES | PLAUSIBLE | st.lists(PLAUSIBLE, max_size=3))
def test_fuzz_one_field_of_a_valid_service(field, value):
    services = tomllib.loads(FULL)["services"]
    services["web"][field] = value
    assert_only_spec_errors(toml_document({"services": services, "volumes": {"data": {}}}))


@pytest.mark.parametrize("text", [
    "a = " + "{b = " * 3000, "[" + "a." * 3000 + "b]", "services." + "a." * 3000 + "b = 1",
    'name = "\\u0000"', "\x00", "\ufeff", "[services.web]\nimage = \"web\"\nenv = { " + ", ".join(
        f"K{i} = {i}" for i in range(50)) + " }",
], ids=["nested-inline", "long-header", "long-dotted-key", "nul-escape", "nul-raw", "bom-only", "many-env"])
def test_pathological_inputs_raise_spec_error(text):
    with pytest.raises(SpecError):
        parse_spec(text)
