"""Container options (issue 12): every option key in both spellings (gen.toml and Compose), its normal
form (gen.model.types.ContainerOptions), and bad input naming the key the user wrote. Pure: no Docker."""
from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from gen.errors import SpecError
from gen.model.types import ContainerOptions
from gen.spec import parse_spec
from gen.spec.compose import parse_compose
from gen.spec.compose.options import COMPOSE_OPTION_KEYS
from gen.spec.compose.resources import compose_cpus
from gen.spec.document import build_spec
from gen.spec.options import OPTION_KEYS, check_network_mode
from gen.spec.quantities import cpus_text, parse_cpus, parse_size

GiB, MiB = 2 ** 30, 2 ** 20


def toml_service(lines: str) -> dict:
    text = '[services.web]\nimage = "web:1"\n' + textwrap.dedent(lines)
    return parse_spec(text, "gen.toml", "/base").services["web"]


def compose_service(lines: str) -> dict:
    body = textwrap.indent("image: web:1\n" + textwrap.dedent(lines), "    ")
    return parse_compose("services:\n  web:\n" + body, "compose.yaml", "/base", {"CPUS": "0.5"}).services["web"]


# ---------------------------------------------------------------- both spellings, one normal form

# (gen.toml lines, Compose lines, the options they normalise to)
GOOD = [
    ('expose = [80, "81/udp", "8000-8002", "80/tcp"]', "expose: [80, 81/udp, 8000-8002, '80']",
     {"expose": ["80/tcp", "81/udp", "8000/tcp", "8001/tcp", "8002/tcp"]}),
    ('stop_signal = "SIGINT"', "stop_signal: SIGINT", {"stop_signal": "SIGINT"}),
    ('cap_add = ["SYS_TIME", "NET_ADMIN", "SYS_TIME"]', "cap_add: [SYS_TIME, NET_ADMIN, SYS_TIME]",
     {"cap_add": ["NET_ADMIN", "SYS_TIME"]}),
    ('cap_drop = ["ALL"]', "cap_drop: [ALL]", {"cap_drop": ["ALL"]}),
    ("privileged = true", "privileged: true", {"privileged": True}),
    ('devices = ["/dev/null", "/dev/zero:/dev/z", "/dev/fuse:/dev/fuse:r"]',
     "devices: [/dev/null, {source: /dev/zero, target: /dev/z}, {source: /dev/fuse, permissions: r}]",
     {"devices": ["/dev/null:/dev/null:rwm", "/dev/zero:/dev/z:rwm", "/dev/fuse:/dev/fuse:r"]}),
    ('device_cgroup_rules = ["c 1:3 mr", "a *:* rwm"]', "device_cgroup_rules: ['c 1:3 mr', 'a *:* rwm']",
     {"device_cgroup_rules": ["c 1:3 mr", "a *:* rwm"]}),
    ('sysctls = { "net.core.somaxconn" = "1024", "net.ipv4.ip_forward" = "1" }',
     "sysctls: [net.ipv4.ip_forward=1, net.core.somaxconn=1024]",
     {"sysctls": {"net.core.somaxconn": "1024", "net.ipv4.ip_forward": "1"}}),
    ('sysctls = { "net.core.somaxconn" = "1024" }', "sysctls: {net.core.somaxconn: 1024}",
     {"sysctls": {"net.core.somaxconn": "1024"}}),
    ("ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 65535, core = -1 }",
     "ulimits: {nofile: {soft: 1024, hard: '2048'}, nproc: '65535', core: -1}",
     {"ulimits": {"core": [-1, -1], "nofile": [1024, 2048], "nproc": [65535, 65535]}}),
    ('shm_size = "64m"', "shm_size: 64m", {"shm_size": 64 * MiB}),
    ("shm_size = 1048576", "shm_size: 1048576", {"shm_size": MiB}),
    ('tmpfs = ["/run:size=10m,mode=1777", "/tmp/"]', "tmpfs: ['/run:size=10m,mode=1777', /tmp/]",
     {"tmpfs": {"/run": "size=10m,mode=1777", "/tmp": ""}}),
    ('tmpfs = ["/run"]', "tmpfs: /run", {"tmpfs": {"/run": ""}}),
    ('extra_hosts = ["db:10.0.0.2", "api=::1", "api:[0:0::2]", "gw:host-gateway"]',
     "extra_hosts: ['db:10.0.0.2', 'api=::1', 'api:[0:0::2]', 'gw:host-gateway']",
     {"extra_hosts": ["api:::1", "api:::2", "db:10.0.0.2", "gw:host-gateway"]}),
    ('extra_hosts = { db = "10.0.0.2", api = ["::1", "::2"] }', "extra_hosts: {db: 10.0.0.2, api: ['::1', '::2']}",
     {"extra_hosts": ["api:::1", "api:::2", "db:10.0.0.2"]}),
    ('dns = ["8.8.8.8", "1.1.1.1"]', "dns: [8.8.8.8, 1.1.1.1]", {"dns": ["8.8.8.8", "1.1.1.1"]}),
    ('dns = ["8.8.8.8"]', "dns: 8.8.8.8", {"dns": ["8.8.8.8"]}),
    ('dns_search = ["b.example", "a.example"]', "dns_search: [b.example, a.example]",
     {"dns_search": ["b.example", "a.example"]}),
    ('dns_search = ["example.com"]', "dns_search: example.com", {"dns_search": ["example.com"]}),
    ('dns_opt = ["use-vc", "ndots:2"]', "dns_opt: [use-vc, 'ndots:2']", {"dns_opt": ["use-vc", "ndots:2"]}),
    ('hostname = "web-1"', "hostname: web-1", {"hostname": "web-1"}),
    ('domainname = "example.com"', "domainname: example.com", {"domainname": "example.com"}),
    ('mac_address = "02:42:ac:11:00:02"', "mac_address: '02:42:ac:11:00:02'", {"mac_address": "02:42:ac:11:00:02"}),
    ("init = true", "init: true", {"init": True}),
    ("init = false", "init: 'false'", {"init": False}),
    ('logging = { driver = "json-file", options = { max-size = "1m", max-file = "3" } }',
     "logging: {driver: json-file, options: {max-size: 1m, max-file: 3}}",
     {"logging": {"driver": "json-file", "options": {"max-file": "3", "max-size": "1m"}}}),
    ('logging = { options = { max-size = "1m" } }', "logging: {options: {max-size: 1m}}",
     {"logging": {"driver": "", "options": {"max-size": "1m"}}}),
    ('mem_limit = "512m"', "mem_limit: 512m", {"mem_limit": 512 * MiB}),
    ("mem_limit = 1073741824", "mem_limit: 1073741824", {"mem_limit": GiB}),
    ('mem_limit = "1g"\nmemswap_limit = "2g"', "mem_limit: 1g\nmemswap_limit: 2g",
     {"mem_limit": GiB, "memswap_limit": 2 * GiB}),
    ("memswap_limit = -1", "memswap_limit: -1", {"memswap_limit": -1}),
    ('mem_reservation = "256MiB"', "mem_reservation: 256MiB", {"mem_reservation": 256 * MiB}),
    ("mem_swappiness = 10", "mem_swappiness: '10'", {"mem_swappiness": 10}),
    ("cpus = 0.5", "cpus: 0.5", {"nano_cpus": 500_000_000}),
    ('cpus = "1.5"', "cpus: '1.5'", {"nano_cpus": 1_500_000_000}),
    ("cpus = 2", "cpus: 2", {"nano_cpus": 2_000_000_000}),
    ("cpus = 0.5", "cpus: $CPUS", {"nano_cpus": 500_000_000}),
    ("cpu_shares = 512", "cpu_shares: '512'", {"cpu_shares": 512}),
    ("cpu_quota = 50000\ncpu_period = 100000", "cpu_quota: 50000\ncpu_period: 100000",
     {"cpu_quota": 50000, "cpu_period": 100000}),
    ('cpuset = "0-3,5"', "cpuset: 0-3,5", {"cpuset": "0-3,5"}),
    ("pids_limit = 100", "pids_limit: 100", {"pids_limit": 100}),
    ("pids_limit = -1", "pids_limit: '-1'", {"pids_limit": -1}),
    ("oom_score_adj = -500", "oom_score_adj: -500", {"oom_score_adj": -500}),
    ("oom_kill_disable = true", "oom_kill_disable: true", {"oom_kill_disable": True}),
    ('security_opt = ["no-new-privileges:true", "label=disable", "seccomp=unconfined"]',
     "security_opt: ['no-new-privileges:true', label=disable, seccomp=unconfined]",
     {"security_opt": ["no-new-privileges:true", "label=disable", "seccomp=unconfined"]}),
    ("read_only = true", "read_only: 'yes'", {"read_only": True}),
    ('pid = "host"', "pid: host", {"pid": "host"}),
    ('pid = "container:other"', "pid: container:other", {"pid": "container:other"}),
    ('ipc = "shareable"', "ipc: shareable", {"ipc": "shareable"}),
    ('ipc = "container:db-1"', "ipc: container:db-1", {"ipc": "container:db-1"}),
    ('uts = "host"', "uts: host", {"uts": "host"}),
    ('userns_mode = "host"', "userns_mode: host", {"userns_mode": "host"}),
    ('cgroup = "private"', "cgroup: private", {"cgroup": "private"}),
    ('cgroup_parent = "my.slice"', "cgroup_parent: my.slice", {"cgroup_parent": "my.slice"}),
    ('group_add = ["mail", 1000, "mail"]', "group_add: [mail, 1000, mail]", {"group_add": ["1000", "mail"]}),
    ("tty = true", "tty: true", {"tty": True}),
    ("stdin_open = true", "stdin_open: on", {"stdin_open": True}),
    ('platform = "linux/amd64"', "platform: linux/amd64", {"platform": "linux/amd64"}),
    ('runtime = "runc"', "runtime: runc", {"runtime": "runc"}),
    ('storage_opt = { size = "20G" }', "storage_opt: {size: 20G}", {"storage_opt": {"size": "20G"}}),
]


@pytest.mark.parametrize("toml, compose, expected", GOOD, ids=[f"good{i}" for i in range(len(GOOD))])
def test_both_spellings_give_the_normal_form(toml, compose, expected):
    assert toml_service(toml)["options"] == expected
    assert compose_service(compose)["options"] == expected


def test_every_option_key_is_covered_in_both_spellings():
    def keys(lines: str) -> set[str]:
        return {line.partition(" ")[0].rstrip(":") for line in lines.splitlines()}
    assert set().union(*(keys(toml) for toml, _, _ in GOOD)) == OPTION_KEYS
    assert set().union(*(keys(compose) for _, compose, _ in GOOD)) == COMPOSE_OPTION_KEYS
    produced = set().union(*(expected for _, _, expected in GOOD))
    assert produced == set(ContainerOptions.__annotations__)


@pytest.mark.parametrize("toml, compose", [
    ("privileged = false\nread_only = false\ntty = false\nstdin_open = false\noom_kill_disable = false",
     "privileged: false\nread_only: 'no'\ntty: false\nstdin_open: false\noom_kill_disable: false"),
    ('cpus = 0\nmem_limit = 0\nshm_size = "0"\npids_limit = 0\noom_score_adj = 0\ncpu_shares = 0',
     "cpus: 0\nmem_limit: 0\nshm_size: '0'\npids_limit: 0\noom_score_adj: 0\ncpu_shares: 0"),
    ('cap_add = []\nsysctls = {}\nhostname = ""\nmem_swappiness = -1\nlogging = {}',
     "cap_add: []\nsysctls: {}\nhostname: ''\nmem_swappiness: 0\nlogging: {}"),
    ("", "deploy: {resources: {limits: {memory: '0', cpus: 0, pids: 0}, reservations: {memory: '0'}}}"),
])
def test_docker_defaults_are_left_out_so_no_hash_changes(toml, compose):
    assert "options" not in toml_service(toml)
    assert "options" not in compose_service(compose)


def test_a_service_without_options_has_no_options_key():
    assert "options" not in toml_service("")
    assert "options" not in compose_service("")


def test_compose_mem_swappiness_zero_is_the_engine_default_as_in_compose():
    """compose sets MemorySwappiness only when it is not 0; gen.toml's 0 is a real 0."""
    assert "options" not in compose_service("mem_swappiness: 0")
    assert toml_service("mem_swappiness = 0")["options"] == {"mem_swappiness": 0}


# `docker compose config` (v2.40.3) of the file below: gen reads Compose's normalised output the same
NORMALISED = """
    cap_add:
      - NET_ADMIN
    cpus: 0.1
    deploy:
      resources:
        limits:
          cpus: 0.1
          memory: "1073741824"
          pids: 100
        reservations:
          cpus: 0.25
          memory: "536870912"
    devices:
      - source: /dev/null
        target: /dev/mynull
        permissions: r
    expose:
      - "80"
      - 8000-8001
    extra_hosts:
      - other=10.0.0.1
      - v6=::1
    init: false
    logging:
      driver: json-file
      options:
        max-file: "3"
    mem_limit: "1073741824"
    memswap_limit: "2147483648"
    read_only: true
    shm_size: "67108864"
    sysctls:
      net.core.somaxconn: "1024"
    tmpfs:
      - /run:size=10m
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
      nproc: 65535
"""
WRITTEN = """
    cap_add: [NET_ADMIN]
    cpus: 0.1
    deploy:
      resources:
        limits: {cpus: '0.1', memory: 1g, pids: 100}
        reservations: {cpus: '0.25', memory: 512M}
    devices: ['/dev/null:/dev/mynull:r']
    expose: [80, 8000-8001]
    extra_hosts: ['other:10.0.0.1', 'v6:::1']
    init: false
    logging: {driver: json-file, options: {max-file: 3}}
    mem_limit: 1g
    memswap_limit: 2g
    read_only: true
    shm_size: 64m
    sysctls: [net.core.somaxconn=1024]
    tmpfs: /run:size=10m
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 65535}
"""


def test_compose_config_output_reads_as_the_file_it_came_from():
    assert compose_service(NORMALISED) == compose_service(WRITTEN)
    assert compose_service(WRITTEN)["options"]["nano_cpus"] == 100_000_000   # NanoCpus of compose's container


# ---------------------------------------------------------------- deploy.resources (Compose)

@pytest.mark.parametrize("deploy, expected", [
    ("limits: {memory: 1g, cpus: '0.5', pids: 100}", {"mem_limit": GiB, "nano_cpus": 500_000_000, "pids_limit": 100}),
    ("limits: {cpus: 2}", {"nano_cpus": 2_000_000_000}),
    ("reservations: {memory: 512m}", {"mem_reservation": 512 * MiB}),
    ("limits: {pids: -1}", None),                                     # compose applies pids > 0 only
    ("reservations: {cpus: '0.25', generic_resources: [{discrete_resource_spec: {kind: gpu, value: 2}}]}", None),
    ("limits: {memory: 1g}\n    reservations: {memory: 256m, cpus: '2'}", {"mem_limit": GiB, "mem_reservation": 256 * MiB}),
])
def test_deploy_resources_apply_as_compose_applies_them(deploy, expected):
    service = compose_service(f"deploy:\n  resources:\n    {deploy}")
    assert service.get("options") == expected


def test_deploy_resources_and_service_keys_may_agree():
    agree = "mem_limit: 1073741824\ncpus: 0.5\npids_limit: 7\nmem_reservation: 64m\n" \
            "deploy: {resources: {limits: {memory: 1g, cpus: '0.50', pids: 7}, reservations: {memory: 64m}}}"
    assert compose_service(agree)["options"] == {"mem_limit": GiB, "nano_cpus": 500_000_000, "pids_limit": 7,
                                                 "mem_reservation": 64 * MiB}


def test_compose_cpus_go_through_a_float32_as_in_docker_compose():
    """docker compose v2.40.3 creates cpus: 0.13 with NanoCpus 129999992 (checked on the engine); gen.toml
    is exact, as `docker run --cpus` is."""
    assert compose_service("cpus: 0.13")["options"] == {"nano_cpus": 129_999_992}
    assert compose_service("deploy: {resources: {limits: {cpus: '0.016'}}}")["options"] == {"nano_cpus": 16_000_001}
    assert toml_service("cpus = 0.13")["options"] == {"nano_cpus": 130_000_000}


# ---------------------------------------------------------------- units

@pytest.mark.parametrize("text, size", [
    ("512", 512), ("1b", 1), ("1k", 1024), ("1kb", 1024), ("1KiB", 1024), ("1 g", GiB), ("1gb", GiB), ("1GiB", GiB),
    ("1.5g", 3 * GiB // 2), (".5m", MiB // 2), ("5.m", 5 * MiB), ("1e3", 1000), ("1t", 2 ** 40), ("1P", 2 ** 50),
    ("0.5b", 0), ("1.0000000001k", 1024), (0, 0), (7, 7),
])
def test_sizes_read_as_go_units_reads_them(text, size):
    assert parse_size(text, "k") == size


@pytest.mark.parametrize("text", ["1Gi", "1ib", "1.2.3m", " 1m", "1m ", "1  m", "1bb", "-1", "+1", "", "m", "1x",
                                  "1e9999", "9223372036854775808", True, 1.5, None, [], -1])
def test_bad_sizes(text):
    with pytest.raises(SpecError) as info:
        parse_size(text, "services.web.shm_size")
    assert info.value.subject == "services.web.shm_size"


@pytest.mark.parametrize("value, nano", [
    (0.5, 500_000_000), ("0.5", 500_000_000), (1, NANO := 10 ** 9), ("2.", 2 * NANO), (".25", NANO // 4),
    ("0.000000001", 1), (1e-05, 10_000), ("1e1", 10 * NANO), (0, 0), (0.1, 100_000_000), (0.13, 130_000_000),
])
def test_cpus_are_exact(value, nano):
    assert parse_cpus(value, "k") == nano
    assert parse_cpus(cpus_text(nano), "k") == nano


@pytest.mark.parametrize("value", ["0.0000000001", "-1", -0.5, "abc", "", "inf", float("nan"), True, None, "1_0",
                                   "1e999", 10 ** 30])
def test_bad_cpus(value):
    with pytest.raises(SpecError):
        parse_cpus(value, "k")


@pytest.mark.parametrize("value, text", [
    (0.5, "0.5"), (2, "2"), ("1.5", "1.5"), (0.13, "0.129999992"), (0.1, "0.1"), ("0.016", "0.016000001"), (0, None),
])
def test_compose_cpus(value, text):
    assert compose_cpus(value, "k") == text


# ---------------------------------------------------------------- bad input, gen.toml

def toml_error(lines: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        toml_service(lines)
    return info.value


BAD_TOML = [
    ('expose = ["80-70"]', "services.web.expose[0]", "invalid port range"),
    ('expose = ["http"]', "services.web.expose[0]", "invalid port"),
    ('expose = ["80/TCP"]', "services.web.expose[0]", "invalid port"),
    ("expose = 80", "services.web.expose", "must be a list"),
    ('stop_signal = "SIGFOO"', "services.web.stop_signal", "unknown signal"),
    ('cap_add = ["NET_ADMN"]', "services.web.cap_add[0]", "unknown capability 'NET_ADMN'"),
    ('cap_drop = ["a b"]', "services.web.cap_drop[0]", "without spaces"),
    ('privileged = "true"', "services.web.privileged", "must be true or false"),
    ('devices = ["dev/null"]', "services.web.devices[0]", "must be an absolute device path"),
    ('devices = ["/dev/a:/dev/b:rwx"]', "services.web.devices[0]", "invalid permissions 'rwx'"),
    ('devices = ["/a:/b:r:x"]', "services.web.devices[0]", "malformed device"),
    ('device_cgroup_rules = ["c 1:3"]', "services.web.device_cgroup_rules[0]", "invalid device cgroup rule"),
    ('sysctls = { "net.core.somaxconn" = 1024 }', "services.web.sysctls.net.core.somaxconn", "quote it"),
    ('sysctls = { "a b" = "1" }', "services.web.sysctls.'a b'", "invalid kernel parameter name"),
    ("ulimits = { nofiles = 1 }", "services.web.ulimits.nofiles", "unknown ulimit"),
    ("ulimits = { nofile = { soft = 2 } }", "services.web.ulimits.nofile.hard", "missing required key"),
    ("ulimits = { nofile = { soft = 2, hard = 1 } }", "services.web.ulimits.nofile", "above the hard limit"),
    ("ulimits = { nofile = { soft = 1, hard = 2, max = 3 } }", "services.web.ulimits.nofile.max", "unknown key"),
    ('ulimits = { nofile = "1" }', "services.web.ulimits.nofile", "must be an integer"),
    ('shm_size = "1x"', "services.web.shm_size", "invalid size '1x'"),
    ("shm_size = 1.5", "services.web.shm_size", "must be bytes"),
    ('tmpfs = ["run"]', "services.web.tmpfs[0]", "must be an absolute path"),
    ('tmpfs = ["/run", "/run:size=1m"]', "services.web.tmpfs[1]", "already mounted"),
    ('tmpfs = ["/run:size=1m, mode=1"]', "services.web.tmpfs[0]", "malformed options"),
    ('extra_hosts = ["db"]', "services.web.extra_hosts[0]", "has no address"),
    ('extra_hosts = ["db:localhost"]', "services.web.extra_hosts[0]", "invalid IP address 'localhost'"),
    ('extra_hosts = [":1.2.3.4"]', "services.web.extra_hosts[0]", "invalid host name"),
    ('extra_hosts = { db = 1 }', "services.web.extra_hosts.db", "must be a string"),
    ('dns = ["dns.google"]', "services.web.dns[0]", "invalid IP address"),
    ('dns = "8.8.8.8"', "services.web.dns", "must be a list"),
    ('dns_search = ["a b"]', "services.web.dns_search[0]", "without spaces"),
    ('hostname = "a b"', "services.web.hostname", "invalid value"),
    ('hostname = "' + "h" * 65 + '"', "services.web.hostname", "invalid value"),
    ('mac_address = "02:42:ac:11:00"', "services.web.mac_address", "invalid value"),
    ('init = "yes"', "services.web.init", "must be true or false"),
    ('logging = { driver = "json file" }', "services.web.logging.driver", "invalid logging driver name"),
    ('logging = { options = { max-size = 1 } }', "services.web.logging.options.max-size", "quote it"),
    ('logging = { drivr = "x" }', "services.web.logging.drivr", "unknown key"),
    ('mem_limit = "1m"', "services.web.mem_limit", "below Docker's minimum of 6m"),
    ("mem_limit = -5", "services.web.mem_limit", "must not be negative"),
    ('memswap_limit = "1g"', "services.web.memswap_limit", "needs mem_limit"),
    ('mem_limit = "1g"\nmemswap_limit = "512m"', "services.web.memswap_limit", "at least mem_limit"),
    ('mem_limit = "64m"\nmem_reservation = "128m"', "services.web.mem_reservation", "must not be above mem_limit"),
    ("mem_swappiness = 101", "services.web.mem_swappiness", "out of range"),
    ('cpus = "0.0000000001"', "services.web.cpus", "too precise"),
    ("cpus = -1", "services.web.cpus", "must not be negative"),
    ('cpus = "1/2"', "services.web.cpus", "invalid number of CPUs"),
    ("cpus = true", "services.web.cpus", "must be a number of CPUs"),
    ("cpus = 1\ncpu_quota = 50000", "services.web.cpus", "cannot be combined with cpu_quota"),
    ("cpu_shares = 1.5", "services.web.cpu_shares", "must be an integer"),
    ("cpu_quota = 999", "services.web.cpu_quota", "at least 1000"),
    ("cpu_period = 999", "services.web.cpu_period", "at least 1000"),
    ('cpuset = "0-"', "services.web.cpuset", "invalid value"),
    ("pids_limit = -2", "services.web.pids_limit", "out of range"),
    ("oom_score_adj = 1001", "services.web.oom_score_adj", "out of range"),
    ('security_opt = ["seccomp=/etc/profile.json"]', "services.web.security_opt[0]", "seccomp profile file"),
    ('security_opt = ["nonsense"]', "services.web.security_opt[0]", "invalid security option"),
    ('security_opt = ["systempaths=confined"]', "services.web.security_opt[0]", "only systempaths=unconfined"),
    ('pid = "private"', "services.web.pid", "must be one of: host, container:NAME"),
    ('pid = "service:db"', "services.web.pid", "sharing another service's namespace is not supported yet"),
    ('ipc = "service:db"', "services.web.ipc", "not supported yet"),
    ('ipc = "container:"', "services.web.ipc", "must be one of"),
    ('uts = "private"', "services.web.uts", "must be one of: host"),
    ('userns_mode = "container:x"', "services.web.userns_mode", "must be one of: host"),
    ('cgroup = "shared"', "services.web.cgroup", "must be one of: host, private"),
    ('group_add = ["a b"]', "services.web.group_add[0]", "without spaces"),
    ('platform = "linux amd64"', "services.web.platform", "invalid value"),
    ('runtime = "/usr/bin/runc"', "services.web.runtime", "invalid value"),
    ("storage_opt = { size = 20 }", "services.web.storage_opt.size", "quote it"),
    ('tty = "true"', "services.web.tty", "must be true or false"),
]


@pytest.mark.parametrize("lines, subject, fragment", BAD_TOML, ids=[f"bad{i}" for i in range(len(BAD_TOML))])
def test_bad_toml_options_name_the_key(lines, subject, fragment):
    err = toml_error(lines)
    assert (err.subject, fragment in err.reason) == (subject, True), str(err)
    assert len(str(err).splitlines()) == 1


# ---------------------------------------------------------------- bad input, Compose: the Compose key is named

BAD_COMPOSE = [
    ("deploy: {resources: {limits: {memory: 1m}}}", "services.web.deploy.resources.limits.memory", "minimum of 6m"),
    ("deploy: {resources: {limits: {memory: 1073741824}}}", "services.web.deploy.resources.limits.memory",
     "must be a string"),
    ("deploy: {resources: {limits: {memory: lots}}}", "services.web.deploy.resources.limits.memory", "invalid size"),
    ("deploy: {resources: {limits: {cpus: -1}}}", "services.web.deploy.resources.limits.cpus", "must not be negative"),
    ("deploy: {resources: {limits: {cpus: many}}}", "services.web.deploy.resources.limits.cpus",
     "must be a number of CPUs"),
    ("deploy: {resources: {limits: {pids: x}}}", "services.web.deploy.resources.limits.pids", "must be an integer"),
    ("deploy: {resources: {limits: {cpus: 1}}}\ncpu_quota: 50000", "services.web.deploy.resources.limits.cpus",
     "cannot be combined with cpu_quota"),
    ("deploy: {resources: {limits: {memory: 1g}}}\nmemswap_limit: 512m", "services.web.memswap_limit",
     "at least mem_limit"),
    ("deploy: {resources: {reservations: {memory: 2g}, limits: {memory: 1g}}}",
     "services.web.deploy.resources.reservations.memory", "must not be above mem_limit"),
    ("deploy: {resources: {reservations: {devices: [{capabilities: [gpu]}]}}}",
     "services.web.deploy.resources.reservations.devices", "device requests (GPUs)"),
    ("deploy: {resources: {limits: {gpus: 1}}}", "services.web.deploy.resources.limits.gpus", "unknown key"),
    ("deploy: {resources: {limit: {}}}", "services.web.deploy.resources.limit", "unknown key"),
    ("deploy: {resources: []}", "services.web.deploy.resources", "must be a mapping"),
    ("mem_limit: 1g\ndeploy: {resources: {limits: {memory: 2g}}}", "services.web.deploy.resources.limits.memory",
     "but mem_limit is '1g': Compose refuses two different values"),
    ("cpus: 0.5\ndeploy: {resources: {limits: {memory: 1g}}}", "services.web.deploy.resources.limits",
     "has no cpus but cpus is 0.5"),
    ("pids_limit: -1\ndeploy: {resources: {limits: {}}}", "services.web.deploy.resources.limits", "has no pids"),
    ("mem_reservation: 64m\ndeploy: {resources: {reservations: {memory: 65m}}}",
     "services.web.deploy.resources.reservations.memory", "Compose refuses two different values"),
    ("sysctls: [net.core.somaxconn=1024, 'bad key=1']", "services.web.sysctls[1]", "invalid kernel parameter name"),
    ("sysctls: [[1]]", "services.web.sysctls[0]", 'must be a string "name=value"'),
    ("sysctls: 1", "services.web.sysctls", "must be a mapping or a list"),
    ("ulimits: {nofile: {soft: 1}}", "services.web.ulimits.nofile.hard", "missing required key"),
    ("ulimits: {nofile: {soft: x, hard: 1}}", "services.web.ulimits.nofile.soft", "must be an integer"),
    ("ulimits: {nofile: {soft: 1, hard: 2, max: 3}}", "services.web.ulimits.nofile.max", "unknown key"),
    ("tmpfs: run", "services.web.tmpfs", "must be an absolute path"),
    ("dns: [1.1.1.1, dns.google]", "services.web.dns[1]", "invalid IP address"),
    ("dns: dns.google", "services.web.dns", "invalid IP address"),
    ("devices: [{target: /dev/x}]", "services.web.devices[0].source", "missing required key"),
    ("devices: [{source: /dev/x, mode: r}]", "services.web.devices[0].mode", "unknown key"),
    ("devices: [{source: '/dev/x:y'}]", "services.web.devices[0].source", "without ':'"),
    ("devices: [/a/b/c:/d:rw:x]", "services.web.devices[0]", "malformed device"),
    ("extra_hosts: db", "services.web.extra_hosts", "must be a list"),
    ("extra_hosts: {db: null}", "services.web.extra_hosts.db", "must be a string"),
    ("logging: {driver: json-file, options: {a: [1]}}", "services.web.logging.options.a", "must be a string"),
    ("logging: {drivr: x}", "services.web.logging.drivr", "unknown key"),
    ("privileged: maybe", "services.web.privileged", "must be true or false"),
    ("init: 1", "services.web.init", "must be true or false"),
    ("cpu_shares: lots", "services.web.cpu_shares", "must be an integer"),
    ("cpu_shares: 1.5", "services.web.cpu_shares", "must be an integer"),
    ("cpus: [1]", "services.web.cpus", "must be a number of CPUs"),
    ("cpus: 1e40", "services.web.cpus", "too large"),
    ("mem_limit: 1.5", "services.web.mem_limit", "must be bytes"),
    ("shm_size: -1", "services.web.shm_size", "must not be negative"),
    ("pid: service:db", "services.web.pid", "not supported yet"),
    ("ipc: service:db", "services.web.ipc", "not supported yet"),
    ("security_opt: ['seccomp:./profile.json']", "services.web.security_opt[0]", "seccomp profile file"),
    ("cap_add: [NET_ADMN]", "services.web.cap_add[0]", "unknown capability"),
    ("expose: ['80-']", "services.web.expose[0]", "invalid port"),
    ("stop_signal: 15x", "services.web.stop_signal", "unknown signal"),
    ("hostname: 1", "services.web.hostname", "must be a string"),
    ("storage_opt: {size: [1]}", "services.web.storage_opt.size", "must be a string"),
]


@pytest.mark.parametrize("lines, subject, fragment", BAD_COMPOSE, ids=[f"bad{i}" for i in range(len(BAD_COMPOSE))])
def test_bad_compose_options_name_the_compose_key(lines, subject, fragment):
    with pytest.raises(SpecError) as info:
        compose_service(lines)
    err = info.value
    assert (err.subject, fragment in err.reason) == (subject, True), str(err)
    assert len(str(err).splitlines()) == 1


# ---------------------------------------------------------------- fuzzing: only SpecError, never a float

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLAUSIBLE = st.sampled_from([
    "", "0", "-1", "1", "512m", "1.5g", "0.5", "80", "80/udp", "8000-8002", "host", "container:x", "service:x",
    "SIGINT", "NET_ADMIN", "ALL", "/dev/null", "/dev/a:/dev/b:rw", "/run:size=1m", "a=1", "a:1.2.3.4", "::1",
    "json-file", "yes", "true", "c 1:3 mr", "label=disable", "seccomp=x", "soft", "hard", "nofile", "1e999",
    "\x00", "é\u2028x", "limits", "reservations", "memory", "cpus", "pids", "devices", "driver", "options",
])
SCALARS = PLAUSIBLE | st.text(max_size=12) | st.booleans() | st.floats() | st.integers(-2 ** 70, 2 ** 70)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(PLAUSIBLE | st.text(max_size=6), inner, max_size=3), max_leaves=10)
OPTION = st.sampled_from(sorted(OPTION_KEYS))


def _plain(value) -> None:
    assert type(value) in (str, int, bool, list, dict), value
    for item in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        _plain(item)


@FAST
@given(st.dictionaries(OPTION, VALUES, min_size=1, max_size=3))
def test_fuzz_toml_options(table):
    try:
        spec = build_spec({"services": {"web": {"image": "web:1", **table}}})
    except SpecError as err:
        assert len(str(err).splitlines()) == 1 and err.subject.startswith("services.web."), str(err)
    else:
        _plain(spec.services["web"].get("options", {}))


DEPLOY = st.fixed_dictionaries({}, optional={
    "resources": st.fixed_dictionaries({}, optional={"limits": VALUES, "reservations": VALUES}) | VALUES})


@FAST
@given(st.dictionaries(OPTION | st.just("deploy"), VALUES | DEPLOY, min_size=1, max_size=3))
def test_fuzz_compose_options(table):
    text = yaml.safe_dump({"services": {"web": {"image": "web:1", **table}}}, allow_unicode=True)
    try:
        spec = parse_compose(text, "compose.yaml", "/base", {})
    except SpecError as err:
        assert len(str(err).splitlines()) == 1, str(err)
    else:
        _plain(spec.services["web"].get("options", {}))


# ---------------------------------------------------------------- beside network_mode

@pytest.mark.parametrize("options, mode, refused", [
    ({"hostname": "h"}, "container:db-1", "hostname"), ({"dns": ["1.1.1.1"]}, "service:db", "dns"),
    ({"extra_hosts": ["a:1.1.1.1"]}, "container:x", "extra_hosts"), ({"expose": ["80/tcp"]}, "service:db", "expose"),
    ({"mac_address": "02:42:ac:11:00:02"}, "host", "mac_address"), ({"hostname": "h", "dns": ["1.1.1.1"]}, "host", None),
    ({"hostname": "h"}, None, None), ({"sysctls": {"a": "1"}}, "container:x", None),
])
def test_options_docker_refuses_beside_a_borrowed_network(options, mode, refused):
    """Checked on Docker 20.10: `docker create --network container:X --hostname h` is refused
    ("conflicting options: hostname and the network mode"), likewise --dns, --add-host, --expose."""
    if refused is None:
        check_network_mode(options, mode, "services.web")
        return
    with pytest.raises(SpecError) as info:
        check_network_mode(options, mode, "services.web")
    assert info.value.subject == f"services.web.{refused}"
