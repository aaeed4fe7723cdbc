"""Issue 12's spec features, in both spellings (gen.toml and Compose): build, pull_policy,
container_name, networks and network_mode, depends_on conditions and jobs, anonymous volumes and
mount options, port ranges and ephemeral ports, healthcheck.start_interval, profiles, extends,
include, and reading `docker compose config` output. Pure: no Docker engine (the last group runs
the pinned Docker Compose binary to normalise files, skipped where it is absent)."""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from gen.errors import SpecError
from gen.model.ports import host_ports, ports_clash
from gen.spec import load_spec, parse_spec
from gen.spec.compose import parse_compose

ROOT = Path(__file__).resolve().parent.parent
ENV = {"HOME": "/home/u", "FROM_ENV": "shell"}
DB_TOML = '[services.db]\nimage = "db"\nhealthcheck = { test = ["CMD", "true"] }\n'
DB_YAML = "  db:\n    image: db\n    healthcheck: {test: [CMD, 'true']}\n"


def toml(service: str = "", top: str = "", base_dir: str = "/base", profiles=()):
    """A gen.toml with a `web` service (plus `service` lines), a `db` with a healthcheck, a volume."""
    service = textwrap.dedent(service)
    text = ('[services.web]\n' + ('' if re.search(r"^(image|build) =", service, re.M) else 'image = "web:1"\n')
            + service + "\n" + DB_TOML + "[volumes.data]\n" + textwrap.dedent(top))
    return parse_spec(text, "gen.toml", base_dir, profiles)


def yml(service: str = "", top: str = "", base_dir: str = "/base", environ: dict | None = None, profiles=(),
        services: str = ""):
    """The same in Compose (`services`: more services, as lines indented under `services:`)."""
    service = textwrap.dedent(service)
    head = "" if re.search(r"^(image|build):", service, re.M) else "image: web:1\n"
    text = ("services:\n  web:\n" + textwrap.indent(head + service, "    ") + "\n" + DB_YAML + services
            + "volumes:\n  data:\n" + textwrap.dedent(top))
    return parse_compose(text, "compose.yaml", base_dir, ENV if environ is None else environ, profiles)


BUILT = {"context": "/base/app", "dockerfile": "Dockerfile", "args": {}, "target": None, "labels": {}}

# (gen.toml lines for web, Compose lines for web, field of web, expected value); "-" means absent
SERVICE_CASES = [
    # build, image, pull_policy
    ('build = "app"', "build: app", "build", BUILT),
    ('build = "app"', "build: app", "image", ""),
    ('build = { context = "app", dockerfile = "docker/Dockerfile.prod", args = { A = "1", FROM_ENV = "shell" }, '
     'target = "prod", labels = { a = "b" } }',
     "build: {context: ./app, dockerfile: docker/Dockerfile.prod, args: [A=1, FROM_ENV, UNSET_VAR], target: prod, "
     "labels: [a=b], cache_from: [x], no_cache: true}", "build",
     {**BUILT, "dockerfile": "docker/Dockerfile.prod", "args": {"A": "1", "FROM_ENV": "shell"}, "target": "prod",
      "labels": {"a": "b"}}),
    ('build = { context = "app", args = { N = "1", B = "true" } }', "build: {context: app, args: {N: 1, B: true}}",
     "build", {**BUILT, "args": {"N": "1", "B": "true"}}),
    ('build = { context = "app", dockerfile = "/base/app/sub/Dockerfile" }',
     "build: {context: app, dockerfile: /base/app/sub/Dockerfile}", "build", {**BUILT, "dockerfile": "sub/Dockerfile"}),
    ('image = "web:2"\nbuild = "."', "image: web:2\nbuild: .", "image", "web:2"),
    ('pull_policy = "always"', "pull_policy: always", "pull_policy", "always"),
    ('pull_policy = "missing"', "pull_policy: if_not_present", "pull_policy", "-"),
    ('pull_policy = "always"', "pull_policy: daily", "pull_policy", "always"),
    ('pull_policy = "always"', "pull_policy: every_12h", "pull_policy", "always"),
    ('pull_policy = "never"', "pull_policy: never", "pull_policy", "never"),
    ('build = "."\npull_policy = "build"', "build: .\npull_policy: build", "pull_policy", "build"),
    # container_name
    ('container_name = "my-web.1"', "container_name: my-web.1", "container_name", "my-web.1"),
    ("", "", "container_name", "-"),
    ('container_name = "web"', "container_name: web", "update", "stop-first"),   # one container: never two
    # networks (declared in `top` below), network_mode
    ('networks = ["front"]', "networks: [front]", "networks", {"front": {}}),
    ('networks = ["default"]', "networks: [default]", "networks", "-"),
    ('networks = { default = {} }', "networks: {default: }", "networks", "-"),
    ('networks = ["default", "front"]', "networks: {default: , front: }", "networks", {"default": {}, "front": {}}),
    ('networks = { front = { aliases = ["w2", "w1", "w2"] } }', "networks: {front: {aliases: [w2, w1], priority: 5}}",
     "networks", {"front": {"aliases": ["w1", "w2"]}}),
    ('networks = { fixed = { ipv4_address = "172.28.0.5" } }', "networks: {fixed: {ipv4_address: 172.28.0.5}}",
     "networks", {"fixed": {"ipv4_address": "172.28.0.5"}}),
    ('networks = { ext = { ipv4_address = "10.1.2.3" } }', "networks: {ext: {ipv4_address: 10.1.2.3}}",
     "networks", {"ext": {"ipv4_address": "10.1.2.3"}}),
    ('network_mode = "host"', "network_mode: host", "network_mode", "host"),
    ('network_mode = "none"', "network_mode: none", "networks", "-"),
    ('network_mode = "service:db"', "network_mode: service:db", "depends_on", ["db"]),
    ('network_mode = "container:vpn"', "network_mode: container:vpn", "network_mode", "container:vpn"),
    # depends_on: conditions, jobs
    ('depends_on = ["db"]', "depends_on: [db]", "conditions", "-"),
    ('depends_on = { db = "started" }', "depends_on: {db: {condition: service_started}}", "conditions", "-"),
    ('depends_on = { db = "healthy" }', "depends_on: {db: {condition: service_healthy}}", "conditions", {"db": "healthy"}),
    ('depends_on = { db = "service_healthy" }', "depends_on: {db: {condition: service_healthy, restart: true}}",
     "conditions", {"db": "healthy"}),
    ('depends_on = { db = "completed" }', "depends_on: {db: {condition: service_completed_successfully}}",
     "conditions", {"db": "completed"}),
    ('depends_on = { db = { condition = "healthy", required = true } }', "depends_on: {db: {condition: service_healthy}}",
     "depends_on", ["db"]),
    ('depends_on = { gone = { condition = "started", required = false }, db = "started" }',
     "depends_on: {gone: {required: false}, db: }", "depends_on", ["db"]),
    ('job = true', None, "job", True),      # Compose: a job only when something waits for it (below)
    ('job = true\nrestart = "on-failure:3"', None, "restart", "on-failure:3"),
    ('job = true', "restart: 'no'", "restart", "no"),
    ("", "", "job", "-"),
    # volumes: anonymous, tmpfs, options
    ('volumes = ["/data"]', "volumes: [/data]", "volumes",
     [{"type": "volume", "source": "", "target": "/data", "read_only": False}]),
    ('volumes = [{ type = "volume", target = "/data" }]', "volumes: [{type: volume, target: /data/, volume: {}}]",
     "volumes", [{"type": "volume", "source": "", "target": "/data", "read_only": False}]),
    ('volumes = [{ type = "tmpfs", target = "/t", tmpfs_size = "64m", tmpfs_mode = 0o1777 }]',
     "volumes: [{type: tmpfs, target: /t, tmpfs: {size: 64m, mode: 01777}}]", "volumes",
     [{"type": "tmpfs", "source": "", "target": "/t", "read_only": False, "tmpfs_size": 64 << 20, "tmpfs_mode": 0o1777}]),
    ('volumes = [{ type = "tmpfs", target = "/t", tmpfs_size = 1073741824 }]',
     "volumes: [{type: tmpfs, target: /t, tmpfs: {size: '1073741824'}}]", "volumes",
     [{"type": "tmpfs", "source": "", "target": "/t", "read_only": False, "tmpfs_size": 1 << 30}]),
    ('volumes = ["data:/d:ro,nocopy"]', "volumes: [{type: volume, source: data, target: /d, read_only: true, "
     "volume: {nocopy: true}}]", "volumes",
     [{"type": "volume", "source": "data", "target": "/d", "read_only": True, "nocopy": True}]),
    ('volumes = ["/srv:/srv:rshared"]', "volumes: [{type: bind, source: /srv, target: /srv, "
     "bind: {propagation: rshared, create_host_path: true}}]", "volumes",
     [{"type": "bind", "source": "/srv", "target": "/srv", "read_only": False, "propagation": "rshared"}]),
    ('volumes = ["/srv:/srv:rprivate"]', "volumes: [{type: bind, source: /srv, target: /srv, consistency: cached}]",
     "volumes", [{"type": "bind", "source": "/srv", "target": "/srv", "read_only": False}]),
    ('volumes = [{ type = "bind", source = "/tmp", target = "/t", create_host_path = false }]',
     "volumes: [{type: bind, source: /tmp, target: /t, bind: {}}]", "volumes",
     [{"type": "bind", "source": "/tmp", "target": "/t", "read_only": False, "create_host_path": False}]),
    ('volumes = [{ type = "bind", source = "/nowhere/x", target = "/t", create_host_path = true }]',
     "volumes: [{type: bind, source: /nowhere/x, target: /t}]", "volumes",
     [{"type": "bind", "source": "/nowhere/x", "target": "/t", "read_only": False}]),
    ('volumes = ["/tmp:/t", { type = "tmpfs", target = "/r" }]', "volumes: [/tmp:/t, {type: tmpfs, target: /r}]",
     "update", "stop-first"),
    # ports: ranges, ephemeral, long syntax
    ('ports = ["8000-8001:9000-9001"]', "ports: ['8000-8001:9000-9001']", "ports",
     [{"host_ip": "", "host_port": 8000, "container_port": 9000, "protocol": "tcp"},
      {"host_ip": "", "host_port": 8001, "container_port": 9001, "protocol": "tcp"}]),
    ('ports = ["127.0.0.1:8000-8001:80-81/udp"]', "ports: ['127.0.0.1:8000-8001:80-81/udp']", "ports",
     [{"host_ip": "127.0.0.1", "host_port": 8000, "container_port": 80, "protocol": "udp"},
      {"host_ip": "127.0.0.1", "host_port": 8001, "container_port": 81, "protocol": "udp"}]),
    ('ports = ["3000"]', "ports: [3000]", "ports", [{"host_ip": "", "host_port": 0, "container_port": 3000, "protocol": "tcp"}]),
    ('ports = ["3000/udp"]', "ports: [{target: 3000, protocol: udp, mode: ingress, name: dns, app_protocol: dns}]",
     "ports", [{"host_ip": "", "host_port": 0, "container_port": 3000, "protocol": "udp"}]),
    ('ports = ["127.0.0.1::80"]', "ports: [{target: 80, host_ip: 127.0.0.1}]", "ports",
     [{"host_ip": "127.0.0.1", "host_port": 0, "container_port": 80, "protocol": "tcp"}]),
    ('ports = ["[::1]::80"]', "ports: ['[::1]::80']", "ports",
     [{"host_ip": "::1", "host_port": 0, "container_port": 80, "protocol": "tcp"}]),
    ('ports = ["3000-3001"]', "ports: ['3000-3001']", "ports",
     [{"host_ip": "", "host_port": 0, "container_port": p, "protocol": "tcp"} for p in (3000, 3001)]),
    ('ports = ["8080:80"]', "ports: [{target: 80, published: '8080', mode: ingress}]", "ports",
     [{"host_ip": "", "host_port": 8080, "container_port": 80, "protocol": "tcp"}]),
    ('ports = ["3000"]\nreplicas = 3', "ports: ['3000']\ndeploy: {replicas: 3}", "replicas", 3),
    ('replicas = 2', "scale: 2", "replicas", 2),
    # healthcheck.start_interval
    ('healthcheck = { test = ["CMD", "x"], start_interval = "500ms" }',
     "healthcheck: {test: [CMD, x], start_interval: 500ms}", "healthcheck",
     {"test": ["CMD", "x"], "interval_ms": 2000, "timeout_ms": 5000, "retries": 3, "start_period_ms": 0,
      "start_interval_ms": 500}),
]
TOP_TOML = """
[networks.front]
[networks.fixed]
ipam = { config = [{ subnet = "172.28.0.0/16" }] }
[networks.ext]
external = true
"""
TOP_YAML = "networks:\n  front:\n  fixed: {ipam: {config: [{subnet: 172.28.0.0/16}]}}\n  ext: {external: true}\n"


@pytest.mark.parametrize("toml_lines, yaml_lines, field, expected", SERVICE_CASES,
                         ids=[f"s{i}-{c[2]}" for i, c in enumerate(SERVICE_CASES)])
def test_service_feature_in_both_spellings(toml_lines, yaml_lines, field, expected):
    specs = [toml(toml_lines, TOP_TOML)] + ([] if yaml_lines is None else [yml(yaml_lines, TOP_YAML)])
    for spec in specs:
        web = spec.services["web"]
        if field == "healthcheck" and spec.source == "compose.yaml":
            expected = {**expected, "interval_ms": 30000, "timeout_ms": 30000}   # Compose's defaults
        assert web.get(field, "-") == expected, spec.source


def test_both_spellings_normalise_identically():
    """The same service both ways, fields where gen.toml's defaults differ from Compose's spelled out."""
    t = toml('''
        build = { context = "app", args = { A = "1" } }
        container_name = "web"
        networks = { front = { aliases = ["w"] }, default = {} }
        depends_on = { db = "healthy" }
        volumes = ["/cache", { type = "tmpfs", target = "/run/x" }]
        ports = ["3000", "127.0.0.1:8000-8001:80-81"]
        restart = "no"
        update = "stop-first"
    ''', TOP_TOML)
    y = yml('''
        build: {context: app, args: {A: 1}}
        container_name: web
        networks: {front: {aliases: [w]}, default: }
        depends_on: {db: {condition: service_healthy}}
        volumes: [/cache, {type: tmpfs, target: /run/x}]
        ports: ["3000", "127.0.0.1:8000-8001:80-81"]
    ''', TOP_YAML)
    assert t.services["web"] == y.services["web"]
    assert t.networks == y.networks


def test_a_completed_dependency_becomes_a_job_with_compose_restart_rules():
    spec = yml("depends_on: {db: {condition: service_completed_successfully}}")
    assert spec.services["db"]["job"] is True and spec.services["db"]["restart"] == "no"
    assert "job" not in spec.services["web"]
    toml_spec = toml('depends_on = { db = "completed" }')
    assert toml_spec.services["db"]["job"] is True and toml_spec.services["db"]["restart"] == "no"
    assert toml("").services["db"]["restart"] == "unless-stopped"     # not a job: gen.toml's default


# ---------------------------------------------------------------- networks (top level)

NETWORK_CASES = [
    ("[networks.front]", "networks: {front: }", {"front": {}}),
    ('[networks.front]\ndriver = "bridge"\ninternal = false', "networks: {front: {driver: bridge, internal: false}}",
     {"front": {}}),
    ('[networks.front]\ninternal = true\nattachable = true\nenable_ipv6 = true\nlabels = { a = "b" }\n'
     'driver_opts = { "com.docker.network.bridge.name" = "br-x" }',
     "networks: {front: {internal: true, attachable: true, enable_ipv6: true, labels: [a=b], "
     "driver_opts: {com.docker.network.bridge.name: br-x}}}",
     {"front": {"internal": True, "attachable": True, "enable_ipv6": True, "labels": {"a": "b"},
                "driver_opts": {"com.docker.network.bridge.name": "br-x"}}}),
    ('[networks.front]\nipam = { driver = "default", config = [{ subnet = "172.28.1.9/24", gateway = "172.28.1.1", '
     'ip_range = "172.28.1.128/25", aux_addresses = { host1 = "172.28.1.5" } }] }',
     "networks: {front: {ipam: {driver: default, config: [{subnet: 172.28.1.9/24, gateway: 172.28.1.1, "
     "ip_range: 172.28.1.128/25, aux_addresses: {host1: 172.28.1.5}}]}}}",
     {"front": {"ipam": {"config": [{"subnet": "172.28.1.0/24", "ip_range": "172.28.1.128/25",
                                     "gateway": "172.28.1.1", "aux_addresses": {"host1": "172.28.1.5"}}]}}}),
    ('[networks.front]\nname = "shared-front"', "networks: {front: {name: shared-front}}",
     {"front": {"name": "shared-front"}}),
    ('[networks.ext]\nexternal = true', "networks: {ext: {external: true}}", {"ext": {"external": True, "name": "ext"}}),
    ('[networks.ext]\nexternal = true\nname = "proxy"', "networks: {ext: {external: {name: proxy}}}",
     {"ext": {"external": True, "name": "proxy"}}),
    ("[networks.default]", "networks: {default: }", {}),
    ("[networks.default]", "name: shop\nnetworks: {default: {name: shop_default}}", {}),   # docker compose config
    ('name = "shop"\n[networks.front]\nname = "other_front"', "name: shop\nnetworks: {front: {name: other_front}}",
     {"front": {"name": "other_front"}}),
    ('[networks.default]\nexternal = true\nname = "proxy"', "networks: {default: {external: true, name: proxy}}",
     {"default": {"external": True, "name": "proxy"}}),
]


@pytest.mark.parametrize("toml_top, yaml_top, expected", NETWORK_CASES, ids=[f"n{i}" for i in range(len(NETWORK_CASES))])
def test_declared_networks_in_both_spellings(toml_top, yaml_top, expected):
    name_line = ""
    if toml_top.startswith("name"):
        name_line, toml_top = toml_top.split("\n", 1)
    joined = re.findall(r"^\[networks\.(\w+)\]", toml_top, re.M)      # web joins them all: unused ones are left out
    t = parse_spec(f'{name_line}\n{toml_top}\n[services.web]\nimage = "web"\nnetworks = {joined!r}\n'.replace("'", '"'),
                   "gen.toml", "/base")
    y = parse_compose(f"{yaml_top}\nservices:\n  web: {{image: web, networks: {joined}}}\n", "compose.yaml", "/base", {})
    assert t.networks == y.networks == expected


def test_networks_no_service_joins_are_left_out():
    spec = parse_compose("services:\n  a: {image: a, networks: [one]}\n  b: {image: b, network_mode: host}\n"
                         "networks: {one: , two: {internal: true}, default: {name: x}}\n", environ={})
    assert spec.networks == {"one": {}}


def test_compose_config_names_of_volumes_are_gens_own():
    spec = parse_compose("name: shop\nservices:\n  web: {image: web, volumes: [data:/d]}\n"
                         "volumes:\n  data: {name: shop_data}\n", "compose.yaml", "/base", {})
    assert spec.volumes == {"data": {}}
    with pytest.raises(SpecError, match=r"^volumes\.data\.name: not supported"):
        parse_compose("name: shop\nservices:\n  web: {image: web}\nvolumes:\n  data: {name: other}\n", environ={})


# ---------------------------------------------------------------- profiles

PROFILED = """
services:
  web: {image: web, depends_on: {debug: {condition: service_started, required: false}}}
  debug: {image: tool, profiles: [debug]}
  both: {image: tool, profiles: [debug, test]}
"""


@pytest.mark.parametrize("profiles, environ, expected", [
    ((), {}, ["web"]),
    (["debug"], {}, ["both", "debug", "web"]),
    (["test"], {}, ["both", "web"]),
    (["*"], {}, ["both", "debug", "web"]),
    ((), {"COMPOSE_PROFILES": "test, debug"}, ["both", "debug", "web"]),
    (["test"], {"COMPOSE_PROFILES": "debug"}, ["both", "web"]),      # an explicit list wins
])
def test_profiles_select_services(profiles, environ, expected):
    spec = parse_compose(PROFILED, "compose.yaml", "/base", environ, profiles)
    assert sorted(spec.services) == expected
    assert spec.services["web"]["depends_on"] == (["debug"] if "debug" in expected else [])
    assert all("profiles" not in svc for svc in spec.services.values())
    toml_spec = parse_spec('[services.web]\nimage = "web"\ndepends_on = { debug = { required = false } }\n'
                           '[services.debug]\nimage = "tool"\nprofiles = ["debug"]\n'
                           '[services.both]\nimage = "tool"\nprofiles = ["debug", "test"]\n', "gen.toml", "/base",
                           profiles)
    if not environ:
        assert {n: s["depends_on"] for n, s in toml_spec.services.items()} == {
            n: s["depends_on"] for n, s in spec.services.items()}


def test_load_spec_takes_profiles_and_compose_profiles(tmp_path, monkeypatch):
    (tmp_path / "compose.yaml").write_text(PROFILED)
    (tmp_path / "gen.toml").write_text('[services.web]\nimage = "web"\n[services.x]\nimage = "x"\nprofiles = ["p"]\n')
    monkeypatch.setenv("COMPOSE_PROFILES", "debug")
    assert sorted(load_spec(tmp_path / "compose.yaml").services) == ["both", "debug", "web"]
    assert sorted(load_spec(tmp_path / "compose.yaml", ["test"]).services) == ["both", "web"]
    assert sorted(load_spec(tmp_path / "gen.toml").services) == ["web"]            # gen.toml reads no environment
    assert sorted(load_spec(tmp_path / "gen.toml", ["p"]).services) == ["web", "x"]


# ---------------------------------------------------------------- ports: ephemeral ones never clash

def test_ephemeral_ports_never_clash():
    spec = toml('ports = ["3000", "3000"]\nreplicas = 2', '[services.api]\nimage = "api"\nports = ["3000"]\n')
    assert host_ports(spec.services["web"]) == frozenset()
    fixed = frozenset({("", 8080, "tcp")})
    assert not ports_clash(frozenset({("", 0, "tcp")}), frozenset({("", 0, "tcp")}))
    assert ports_clash(fixed, fixed)
    with pytest.raises(SpecError, match=r"^services\.web\.ports\[1\]: host port 8001/tcp is already published by "
                                        r"services\.api\.ports\[0\]"):
        toml('ports = ["3000", "8000-8002:80-82"]', '[services.api]\nimage = "api"\nports = ["8001:80"]\n')


# ---------------------------------------------------------------- bad input: the key path, one line

# (gen.toml lines for web, or None; Compose lines for web, or None; subject (for both); reason fragment)
BAD = [
    # build, image, pull_policy
    ('command = ["x"]\nbuild = { dockerfile = "D" }', None, "services.web.build.context", "missing required key"),
    (None, "build: {context: ., secrets: [x]}", "services.web.build.secrets", "without build secrets"),
    (None, "build: {context: ., dockerfile_inline: FROM x}", "services.web.build.dockerfile_inline", "write the Dockerfile"),
    (None, "build: {context: ., platforms: [linux/arm64]}", "services.web.build.platforms", "one image"),
    ('build = "https://github.com/x/y.git"', "build: https://github.com/x/y.git", "services.web.build.context",
     "local directory"),
    ('build = { context = ".", args = { "1A" = "x" } }', "build: {context: ., args: ['1A=x']}",
     ("services.web.build.args.1A", "services.web.build.args[0]"), "invalid build argument name"),
    ('build = { context = ".", args = { A = 1 } }', None, "services.web.build.args.A", "must be a string"),
    (None, "build: {context: ., args: A=1}", "services.web.build.args", "list of NAME=value"),
    ('build = { context = ".", dockerfile = "/base" }', None, "services.web.build.dockerfile", "is a directory"),
    ('build = { context = ".", labels = { "gen.x" = "y" } }', "build: {context: ., labels: [gen.x=y]}",
     ("services.web.build.labels.gen.x", "services.web.build.labels[0]"), "reserved"),
    ('pull_policy = "daily"', "pull_policy: sometimes", "services.web.pull_policy", "must be one of"),
    ('pull_policy = "build"', "pull_policy: build", "services.web.pull_policy", "needs a build section"),
    # container_name
    ('container_name = "a"', "container_name: a", "services.web.container_name", "is not a container name"),
    ('container_name = "web"\nreplicas = 2', "container_name: web\ndeploy: {replicas: 2}",
     "services.web.container_name", "2 replicas cannot share one container name"),
    ('container_name = "web"\nupdate = "start-first"', "container_name: web\ndeploy: {update_config: {order: start-first}}",
     ("services.web.update", "services.web.deploy.update_config.order"), "start-first needs old and new side by side"),
    # networks, network_mode
    ('networks = ["back"]', "networks: [back]", "services.web.networks[0]", "network 'back' is not declared"),
    ('networks = ["front", "front"]', "networks: [front, front]", "services.web.networks[1]", "duplicate network"),
    ('networks = { front = { aliases = "w" } }', "networks: {front: {aliases: w}}", "services.web.networks.front.aliases",
     "must be a list"),
    ('networks = { front = { ipv4_address = "172.28.0.5" } }', "networks: {front: {ipv4_address: 172.28.0.5}}",
     "services.web.networks.front.ipv4_address", "declared IPv4 ipam subnet"),
    ('networks = { fixed = { ipv4_address = "10.0.0.5" } }', "networks: {fixed: {ipv4_address: 10.0.0.5}}",
     "services.web.networks.fixed.ipv4_address", "not inside the network's subnet"),
    ('networks = { fixed = { ipv4_address = "::1" } }', "networks: {fixed: {ipv4_address: '::1'}}",
     "services.web.networks.fixed.ipv4_address", "not an IPv4 address"),
    ('networks = { front = { mac = "x" } }', "networks: {front: {link_local_ips: [169.254.0.1]}}",
     ("services.web.networks.front.mac", "services.web.networks.front.link_local_ips"),
     ("unknown key", "gives no link-local addresses")),
    (None, "networks: {front: {priority: high}}", "services.web.networks.front.priority", "must be an integer"),
    (None, "networks: {front: {mac_address: 02:42:ac:11:00:02}}", "services.web.networks.front.mac_address",
     "API 1.41"),
    ('network_mode = "bridge"', "network_mode: bridge", "services.web.network_mode", "not supported"),
    ('network_mode = "service:"', "network_mode: 'service:'", "services.web.network_mode", "invalid network mode"),
    ('network_mode = "service:web"', "network_mode: service:web", "services.web.network_mode", "its own network"),
    ('network_mode = "service:nope"', "network_mode: service:nope", "services.web.network_mode", "unknown service"),
    ('network_mode = "host"\nnetworks = ["front"]', "network_mode: host\nnetworks: [front]",
     "services.web.network_mode", "cannot be combined with networks"),
    ('network_mode = "host"\nports = ["80:80"]', "network_mode: host\nports: ['80:80']", "services.web.ports",
     "cannot publish ports"),
    # depends_on, jobs
    ('depends_on = { nope = "started" }', "depends_on: {nope: }", "services.web.depends_on.nope", "unknown service"),
    ('depends_on = { db = "soon" }', "depends_on: {db: {condition: soon}}", None, "must be started, healthy or completed"),
    ('depends_on = { db = { required = "no" } }', "depends_on: {db: {required: 'no'}}",
     "services.web.depends_on.db.required", "must be true or false"),
    ('depends_on = ["db", "db"]', "depends_on: [db, db]", "services.web.depends_on[1]", "duplicate dependency"),
    ('depends_on = 1', "depends_on: 1", "services.web.depends_on", "must be a list of service names"),
    ('job = "yes"', None, "services.web.job", "must be true or false"),
    ('job = true\nrestart = "always"', None, "services.web.restart", "a job runs to completion once"),
    ('job = true\nreplicas = 2', None, "services.web.replicas", "a job runs once"),
    # volumes
    ('volumes = ["/data:ro"]', "volumes: ['/data:ro']", "services.web.volumes[0]", "target 'ro' must be an absolute path"),
    ('volumes = ["data:/d:ro,rw"]', "volumes: ['data:/d:ro,rw']", "services.web.volumes[0]", "contradict"),
    ('volumes = ["data:/d:rshared"]', "volumes: ['data:/d:rshared']", "services.web.volumes[0]",
     "invalid option 'rshared' for a volume"),
    ('volumes = ["/srv:/d:nocopy"]', "volumes: ['/srv:/d:nocopy']", "services.web.volumes[0]",
     "invalid option 'nocopy' for a bind"),
    ('volumes = [{ type = "bind", source = "/nowhere/x", target = "/d", create_host_path = false }]',
     "volumes: [{type: bind, source: /nowhere/x, target: /d, bind: {propagation: rslave}}]",
     "services.web.volumes[0].source", "does not exist (create_host_path is false"),
    ('volumes = [{ type = "bind", source = "/srv", target = "/d", propagation = "sideways" }]',
     "volumes: [{type: bind, source: /srv, target: /d, bind: {propagation: sideways}}]",
     ("services.web.volumes[0].propagation", "services.web.volumes[0].bind.propagation"), "must be one of"),
    ('volumes = [{ type = "volume", source = "data", target = "/d", propagation = "rshared" }]',
     "volumes: [{type: volume, source: data, target: /d, bind: {propagation: rshared}}]", None, "is only for a bind"),
    ('volumes = [{ type = "tmpfs", target = "/t", tmpfs_size = "lots" }]',
     "volumes: [{type: tmpfs, target: /t, tmpfs: {size: lots}}]",
     ("services.web.volumes[0].tmpfs_size", "services.web.volumes[0].tmpfs.size"), "invalid size"),
    ('volumes = [{ type = "tmpfs", target = "/t", tmpfs_mode = 0o17777 }]',
     "volumes: [{type: tmpfs, target: /t, tmpfs: {mode: 017777}}]",
     ("services.web.volumes[0].tmpfs_mode", "services.web.volumes[0].tmpfs.mode"), "permission bits"),
    ('volumes = [{ type = "volume", target = "/d", nocopy = "yes" }]',
     "volumes: [{type: volume, target: /d, volume: {nocopy: yes}}]", None, "must be true or false"),
    ('volumes = [{ type = "image", target = "/d" }]', "volumes: [{type: image, target: /d}]",
     "services.web.volumes[0].type", ("must be one of: volume, bind, tmpfs", "'image' is not supported")),
    ('volumes = [{ target = "/d" }]', "volumes: [{target: /d}]", "services.web.volumes[0].type", "missing required key"),
    ('volumes = ["/a", { type = "tmpfs", target = "/a" }]', "volumes: [/a, {type: tmpfs, target: /a}]",
     "services.web.volumes[1]", "already mounted"),
    # ports
    ('ports = ["3000-3001:80"]', "ports: ['3000-3001:80']", "services.web.ports[0]", "host port range for one container port"),
    ('ports = ["80-x:80-81"]', "ports: ['80-x:80-81']", "services.web.ports[0]", "malformed port"),
    # healthcheck, profiles
    ('healthcheck = { test = ["CMD", "x"], start_interval = "fast" }',
     "healthcheck: {test: [CMD, x], start_interval: fast}", "services.web.healthcheck.start_interval", "invalid duration"),
    ('profiles = "debug"', "profiles: debug", "services.web.profiles", "must be a list of profile names"),
    ('profiles = ["de bug"]', "profiles: ['de bug']", "services.web.profiles[0]", "invalid profile name"),
    ('depends_on = { db = "soon" }', None, "services.web.depends_on.db", "got 'soon'"),
]
BAD_TOP = [
    ('[networks.front]\ndriver = "macvlan"', "networks: {front: {driver: macvlan}}", "networks.front.driver",
     "creates bridge networks only"),
    ('[networks.front]\nexternal = true\ninternal = true', "networks: {front: {external: true, internal: true}}",
     "networks.front.internal", "used as it is"),
    ('[networks.front]\nipam = { config = [{ subnet = "nope" }] }', "networks: {front: {ipam: {config: [{subnet: nope}]}}}",
     "networks.front.ipam.config[0].subnet", "invalid subnet"),
    ('[networks.front]\nipam = { config = [{ subnet = "10.0.0.0/24", gateway = "10.0.1.1" }] }',
     "networks: {front: {ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.1.1}]}}}",
     "networks.front.ipam.config[0].gateway", "not inside the network's subnet"),
    ('[networks.front]\nipam = { config = [{ gateway = "10.0.1.1" }] }', "networks: {front: {ipam: {config: [{gateway: 10.0.1.1}]}}}",
     "networks.front.ipam.config[0].subnet", "missing required key"),
    ('[networks.front]\nname = "-x"', "networks: {front: {name: -x}}", "networks.front.name", "not a Docker network name"),
    ('[networks.Front]', "networks: {Front: }", "networks.Front", "invalid name"),
    ('[networks.front]\ninternal = "yes"', "networks: {front: {internal: 'yes'}}", "networks.front.internal",
     "must be true or false"),
    ('[networks.front]\nlabels = { "gen.profile" = "x" }', "networks: {front: {labels: [gen.profile=x]}}",
     ("networks.front.labels.gen.profile", "networks.front.labels[0]"), "reserved"),
    (None, "networks: {front: {enable_ipv4: false}}", "networks.front.enable_ipv4", "no such setting"),
    ('[networks.front]\ndrivr = "x"', "networks: {front: {drivr: x}}", "networks.front.drivr", "unknown key"),
]


def _raises(make, subject, fragment, spelling: int = 0):
    """subject and fragment: one for both spellings, or a (gen.toml, Compose) pair."""
    subject, fragment = (v[spelling] if isinstance(v, tuple) else v for v in (subject, fragment))
    with pytest.raises(SpecError) as info:
        make()
    if subject:
        assert info.value.subject == subject
    assert fragment is None or fragment in info.value.reason, info.value.reason
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("toml_lines, yaml_lines, subject, fragment", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_service_input_names_the_key(toml_lines, yaml_lines, subject, fragment):
    if toml_lines is not None:
        _raises(lambda: toml(toml_lines, TOP_TOML), subject, fragment)
    if yaml_lines is not None:
        _raises(lambda: yml(yaml_lines, TOP_YAML), subject, fragment, 1)


@pytest.mark.parametrize("toml_top, yaml_top, subject, fragment", BAD_TOP, ids=[f"top{i}" for i in range(len(BAD_TOP))])
def test_bad_network_definition_names_the_key(toml_top, yaml_top, subject, fragment):
    if toml_top is not None:
        _raises(lambda: parse_spec(toml_top + '\n[services.web]\nimage = "web"\n', "gen.toml", "/base"), subject, fragment)
    if yaml_top is not None:
        _raises(lambda: parse_compose(yaml_top + "\nservices:\n  web: {image: web}\n", environ={}), subject, fragment, 1)


def test_cross_service_errors():
    cases = [
        (toml, 'container_name = "same"', '[services.api]\nimage = "api"\ncontainer_name = "same"\n',
         "services.web.container_name", "is already the name of services.api.container_name"),
        (toml, 'depends_on = { db = "completed" }', '[services.api]\nimage = "api"\ndepends_on = { web = "healthy" }\n',
         "services.api.depends_on.web", "web has no healthcheck"),
        (toml, "", '[services.api]\nimage = "api"\ndepends_on = { db = "completed" }\n[services.db2]\nimage = "x"\n'
                   'network_mode = "service:api"\n', None, None),
        (yml, "depends_on: {db: {condition: service_completed_successfully}}\nrestart: always",
         "  api: {image: api, depends_on: {web: {condition: service_completed_successfully}}}\n",
         "services.web.restart", "a job runs to completion once"),
        (yml, "", "  api: {image: api, depends_on: {gone: {condition: service_started}}}\n",
         "services.api.depends_on.gone", "unknown service 'gone'"),
        (yml, "", "  api: {image: api, depends_on: [dbg]}\n  dbg: {image: x, profiles: [debug]}\n",
         "services.api.depends_on[0]", "is not enabled by the active profiles"),
        (yml, "", "  api: {image: api, network_mode: 'service:dbg'}\n  dbg: {image: x, profiles: [debug]}\n",
         "services.api.network_mode", "unknown service 'dbg'"),
    ]
    for make, service, extra, subject, fragment in cases:
        build = (lambda: toml(service, extra)) if make is toml else (lambda: yml(service, services=extra))
        if subject is None:
            build()     # valid: a job reached through network_mode service:NAME's implicit dependency
            continue
        _raises(build, subject, fragment)


# ---------------------------------------------------------------- extends

def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


BASE_FILE = """
    services:
      base:
        image: app:1
        command: [serve, base]
        environment: [A=1, B=2]
        labels: {l1: a}
        ports: ["80:80", "81:81"]
        volumes: ["./data:/data", "/cache"]
        env_file: base.env
        build: {context: ., args: {X: "1"}}
        healthcheck: {test: [CMD, a], interval: 5s}
        depends_on: [other]
        networks: [n1]
"""


def test_extends_merges_as_compose_does(tmp_path):
    write(tmp_path, {"common/services.yaml": BASE_FILE, "common/base.env": "E=from-base-env\n", "compose.yaml": """
        services:
          web:
            extends: {file: common/services.yaml, service: base}
            command: [serve, web]
            environment: {B: 3, C: 4}
            labels: [l2=b]
            ports: ["80:80", "82:82"]
            volumes: ["./other:/data", /tmp2]
            build: {args: [Y=2]}
            healthcheck: {test: [CMD, b]}
            depends_on: {db: {condition: service_healthy}}
            networks: {n2: {aliases: [x]}}
          worker: {extends: {service: db}, command: [work]}
          db: {image: db, healthcheck: {test: [CMD, ok]}}
          other: {image: other}
        networks: {n1: , n2: }
    """})
    spec = load_spec(tmp_path / "compose.yaml")
    web = spec.services["web"]
    common = tmp_path / "common"
    assert web["command"] == ["serve", "web"]
    assert web["env"] == {"A": "1", "B": "3", "C": "4", "E": "from-base-env"}
    assert web["labels"] == {"l1": "a", "l2": "b"}
    assert [(p["host_port"], p["container_port"]) for p in web["ports"]] == [(80, 80), (81, 81), (82, 82)]
    assert [(m["source"], m["target"]) for m in web["volumes"]] == [
        (str(tmp_path / "other"), "/data"), ("", "/cache"), ("", "/tmp2")]
    assert web["build"] == {"context": str(common), "dockerfile": "Dockerfile", "args": {"X": "1", "Y": "2"},
                            "target": None, "labels": {}}
    assert web["healthcheck"]["test"] == ["CMD", "b"] and web["healthcheck"]["interval_ms"] == 5000
    assert web["depends_on"] == ["db", "other"] and web["conditions"] == {"db": "healthy"}
    assert web["networks"] == {"n1": {}, "n2": {"aliases": ["x"]}}
    assert spec.services["worker"]["image"] == "db" and spec.services["worker"]["command"] == ["work"]


def test_extends_chains_and_string_form():
    spec = parse_compose(textwrap.dedent("""
        services:
          a: {image: a, environment: {A: "1"}}
          b: {extends: a, environment: {B: "2"}}
          c: {extends: {service: b}, image: c}
    """), environ={})
    assert spec.services["c"]["image"] == "c" and spec.services["c"]["env"] == {"A": "1", "B": "2"}
    assert spec.services["b"]["image"] == "a"


@pytest.mark.parametrize("text, subject, fragment", [
    ("services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n", "services.a.extends", "extends cycle"),
    ("services:\n  a: {extends: nope}\n", "services.a.extends.service", "service 'nope' is not defined"),
    ("services:\n  a: {extends: {file: missing.yaml, service: x}}\n", "services.a.extends.file", "cannot read compose file"),
    ("services:\n  a: {extends: {service: b, depth: 1}}\n  b: {image: b}\n", "services.a.extends.depth", "unknown key"),
    ("services:\n  a: {extends: {file: x.yaml}}\n", "services.a.extends.service", "missing required key"),
    ("services:\n  a: {extends: [b]}\n", "services.a.extends", "must be a mapping"),
])
def test_bad_extends(tmp_path, text, subject, fragment):
    with pytest.raises(SpecError) as info:
        parse_compose(text, "compose.yaml", str(tmp_path), {})
    assert (info.value.subject, fragment in info.value.reason) == (subject, True), info.value.reason


# ---------------------------------------------------------------- include

def test_include_brings_in_definitions_with_their_own_paths_and_variables(tmp_path):
    write(tmp_path, {
        "db/compose.yaml": """
            services:
              db:
                image: "db:${TAG}"
                volumes: ["./init:/init:ro", "dbdata:/var/lib/db"]
                build: .
            volumes: {dbdata: }
            networks: {back: }
        """,
        "db/.env": "TAG=from-db-env\nOTHER=x\n",
        "cache/cache.yaml": "services:\n  cache: {image: 'cache:${TAG}', env_file: c.env}\n",
        "cache/c.env": "C=1\n",
        "shared.env": "TAG=from-shared\n",
        "compose.yaml": """
            include:
              - db/compose.yaml
              - {path: cache/cache.yaml, env_file: shared.env}
            services:
              web: {image: web, depends_on: [db, cache], networks: [back]}
        """,
    })
    spec = load_spec(tmp_path / "compose.yaml")
    assert sorted(spec.services) == ["cache", "db", "web"]
    db = spec.services["db"]
    assert db["image"] == "db:from-db-env"
    assert db["build"]["context"] == str(tmp_path / "db")
    assert [m["source"] for m in db["volumes"]] == [str(tmp_path / "db" / "init"), "dbdata"]
    assert spec.volumes == {"dbdata": {}} and spec.networks == {"back": {}}
    assert spec.services["cache"]["image"] == "cache:from-shared"
    assert spec.services["cache"]["env"] == {"C": "1"}
    assert spec.services["web"]["networks"] == {"back": {}}
    with_shell = parse_compose((tmp_path / "compose.yaml").read_text(), "compose.yaml", str(tmp_path), {"TAG": "shell"})
    assert with_shell.services["db"]["image"] == "db:shell"           # the including environment wins


def test_include_project_directory(tmp_path):
    write(tmp_path, {"parts/db.yaml": "services:\n  db: {image: db, volumes: ['./data:/data']}\n",
                     "compose.yaml": "include: [{path: parts/db.yaml, project_directory: .}]\n"})
    db = load_spec(tmp_path / "compose.yaml").services["db"]
    assert db["volumes"][0]["source"] == str(tmp_path / "data")


@pytest.mark.parametrize("files, subject, fragment", [
    ({"a.yaml": "services:\n  web: {image: a}\n",
      "compose.yaml": "include: [a.yaml]\nservices:\n  web: {image: web}\n"}, "services.web", "defined both by"),
    ({"a.yaml": "networks: {n: }\n", "b.yaml": "networks: {n: }\n",
      "compose.yaml": "include: [a.yaml, b.yaml]\n"}, "networks.n", "b.yaml"),
    ({"a.yaml": "include: [compose.yaml]\n", "compose.yaml": "include: [a.yaml]\n"}, "include[0].path", "include cycle"),
    ({"compose.yaml": "include: [{path: a.yaml, project_dir: .}]\n"}, "include[0].project_dir", "unknown key"),
    ({"compose.yaml": "include: [{env_file: x.env}]\n"}, "include[0].path", "missing required key"),
    ({"compose.yaml": "include: a.yaml\n"}, "include", "must be a list"),
    ({"a.yaml": "servics: {}\n", "compose.yaml": "include: [a.yaml]\n"}, "servics", "unknown key"),
])
def test_bad_include(tmp_path, files, subject, fragment):
    write(tmp_path, files)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "compose.yaml")
    assert (info.value.subject, fragment in info.value.reason) == (subject, True), info.value.reason


# ---------------------------------------------------------------- fuzzing the new keys: SpecError or a plain Spec

WORDS = st.sampled_from(["front", "default", "ext", "db", "web", ".", "/srv", "/tmp", "./x", "~/y", "data", "3000",
                         "80:80", "8000-8001:80-81", "/data", "data:/d:ro,nocopy", "/srv:/s:rshared", "172.28.0.5",
                         "172.28.0.0/16", "::1", "service:db", "host", "none", "healthy", "completed",
                         "service_completed_successfully", "64m", "01777", "A=1", "B", "", "\x00", "x" * 70])
SCALAR = WORDS | st.integers(-3, 70000) | st.booleans() | st.none() | st.floats(allow_nan=False)


def _maps(keys):
    return st.dictionaries(st.sampled_from(keys), SCALAR | st.lists(WORDS, max_size=3)
                           | st.dictionaries(WORDS, SCALAR, max_size=3), max_size=len(keys))


FEATURES = {
    "build": WORDS | _maps(["context", "dockerfile", "args", "target", "labels", "cache_from", "ssh", "tags"]),
    "networks": st.lists(WORDS, max_size=3) | st.dictionaries(WORDS, st.none() | _maps(
        ["aliases", "ipv4_address", "ipv6_address", "priority", "link_local_ips"]), max_size=3),
    "network_mode": WORDS,
    "container_name": WORDS,
    "pull_policy": WORDS,
    "profiles": st.lists(WORDS, max_size=2) | WORDS,
    "volumes": st.lists(WORDS | _maps(["type", "source", "target", "read_only", "bind", "volume", "tmpfs",
                                       "consistency"]), max_size=3),
    "ports": st.lists(WORDS | st.integers(-1, 70000) | _maps(["target", "published", "host_ip", "protocol", "mode"]),
                      max_size=3),
    "depends_on": st.lists(WORDS, max_size=2) | st.dictionaries(WORDS, st.none() | _maps(
        ["condition", "required", "restart"]), max_size=2),
    "extends": WORDS | _maps(["service", "file"]),
    "healthcheck": _maps(["test", "start_interval", "interval"]),
}
TOP_NETWORKS = st.dictionaries(WORDS, st.none() | _maps(["driver", "internal", "external", "name", "labels", "ipam",
                                                         "attachable", "enable_ipv6", "driver_opts"]), max_size=2)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(FEATURES)), st.none(), min_size=1).flatmap(
    lambda keys: st.fixed_dictionaries({k: FEATURES[k] for k in keys})), TOP_NETWORKS)
def test_fuzz_new_keys_give_spec_errors_only(service, networks):
    doc = {"services": {"web": {"image": "web", **service}, "db": {"image": "db"}},
           "networks": networks, "volumes": {"data": None}}
    try:
        parse_compose(yaml.safe_dump(doc, allow_unicode=True), "compose.yaml", "/base", ENV)
    except SpecError as err:
        assert len(str(err).splitlines()) == 1, str(err)
    toml_service = {k: v for k, v in service.items() if k != "extends" and v is not None}
    try:
        toml(toml_lines(toml_service))
    except SpecError as err:
        assert len(str(err).splitlines()) == 1, str(err)


def toml_lines(table: dict) -> str:
    """Inline TOML for generated values (None, which TOML lacks, becomes an empty table)."""
    def value(v):
        if v is None:
            return "{}"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in v) + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{value(k)} = {value(x)}" for k, x in v.items()) + "}"
    return "\n".join(f"{k} = {value(v)}" for k, v in table.items())


# ---------------------------------------------------------------- `docker compose config` output reads the same

COMPOSE = ROOT / ".venv" / "bin" / "docker-compose"
needs_compose = pytest.mark.skipif(not COMPOSE.exists() and not shutil.which("docker-compose"),
                                   reason="Docker Compose v2 is not installed (.venv/bin/docker-compose)")

FEATURES_FILE = """
    services:
      web:
        build: {context: ./app, args: [A=1, FROM_ENV], target: dev, labels: {a: b}}
        image: web:dev
        container_name: features-web
        ports: ["3000", "8000-8001:8000-8001", "127.0.0.1::81", {target: 82, published: 8082, mode: host}]
        volumes:
          - ./src:/src
          - /cache
          - {type: volume, target: /anon}
          - {type: tmpfs, target: /run/t, tmpfs: {size: 64m, mode: 01777}}
          - {type: bind, source: ./src, target: /src2, read_only: true, bind: {propagation: rslave}}
          - data:/data:nocopy
        networks:
          default:
          front: {aliases: [www], priority: 10}
          fixed: {ipv4_address: 172.28.0.10}
        depends_on:
          migrate: {condition: service_completed_successfully}
          db: {condition: service_healthy, restart: true}
          debug: {condition: service_started, required: false}
        healthcheck: {test: wget -q -O- http://127.0.0.1/, start_interval: 1s}
        pull_policy: if_not_present
        x-note: ignored
      migrate: {image: tool, command: migrate, networks: [fixed]}
      db:
        image: db
        healthcheck: {test: [CMD, pg_isready]}
        networks: [fixed]
        volumes: [data:/var/lib/db]
      sidecar: {image: side, network_mode: "service:db"}
      debug: {image: tool, profiles: [debug]}
    volumes: {data: }
    networks:
      front: {labels: [team=web], internal: true}
      fixed: {ipam: {config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1}]}}
      unused: {}
    x-top: {anything: 1}
"""


def compose_config(source: Path, env: dict) -> Path:
    """What `docker compose config` makes of `source`, written beside it."""
    binary = str(COMPOSE) if COMPOSE.exists() else shutil.which("docker-compose")
    result = subprocess.run([binary, "-f", str(source), "config"], capture_output=True, text=True, env=env, timeout=60,
                            cwd=source.parent)
    assert result.returncode == 0, result.stderr
    out = source.with_name("config-" + source.name)
    out.write_text(result.stdout)
    return out


def same_deployment(original, normalised):
    """Compose's config names the project (gen keeps a file's own `name`, or none) and drops volumes no
    service mounts; everything else must be the same."""
    used = {m["source"] for svc in original.services.values() for m in svc["volumes"] if m["type"] == "volume"}
    original = dataclasses.replace(original, name=normalised.name, source=normalised.source,
                                   volumes={n: v for n, v in original.volumes.items() if n in used})
    assert original.services == normalised.services
    assert original == normalised


@needs_compose
@pytest.mark.parametrize("case", ["features", "extends", "include", "compose-app", "trio", "hello-profiles"])
def test_docker_compose_config_output_reads_the_same(tmp_path, monkeypatch, case):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FROM_ENV": "shell"}
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if case == "features":
        write(tmp_path, {"compose.yaml": FEATURES_FILE})
        (tmp_path / "src").mkdir()
    elif case == "extends":
        write(tmp_path, {"common/services.yaml": BASE_FILE.replace("base.env", "./base.env"),
                         "common/base.env": "E=1\n", "compose.yaml": """
            services:
              web: {extends: {file: common/services.yaml, service: base}, environment: {B: 3}, ports: ["82:82"]}
              other: {image: other}
            networks: {n1: }
        """})
    elif case == "include":
        write(tmp_path, {"db/compose.yaml": "services:\n  db: {image: 'db:${TAG}', volumes: ['./init:/init']}\n",
                         "db/.env": "TAG=7\n",
                         "compose.yaml": "include: [db/compose.yaml]\nservices:\n  web: {image: web, depends_on: [db]}\n"})
    elif case == "hello-profiles":
        write(tmp_path, {"compose.yaml": "name: hello\nservices:\n  web: {image: web}\n"
                                         "  tool: {image: tool, profiles: [tools], depends_on: [web]}\n"})
        monkeypatch.setenv("COMPOSE_PROFILES", "tools")
        env["COMPOSE_PROFILES"] = "tools"
    else:
        shutil.copytree(ROOT / "examples" / case, tmp_path, dirs_exist_ok=True)
    source = tmp_path / "compose.yaml"
    same_deployment(load_spec(source), load_spec(compose_config(source, env)))


SERVICE_BODY = st.dictionaries(st.sampled_from(["image", "command", "environment", "labels", "ports", "volumes",
                                                "secrets", "configs", "env_file", "depends_on", "networks", "build",
                                                "healthcheck", "logging", "cap_add", "dns", "extends"]),
                               SCALAR | st.lists(WORDS | _maps(["target", "source", "type", "path"]), max_size=3)
                               | _maps(["test", "driver", "context", "args", "labels", "A", "db", "front"]), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SERVICE_BODY, SERVICE_BODY)
def test_fuzz_extends_gives_spec_errors_only(base, override):
    doc = {"services": {"base": {"image": "b", **base}, "web": {**override, "extends": "base"}, "db": {"image": "db"}}}
    try:
        parse_compose(yaml.safe_dump(doc, allow_unicode=True), "compose.yaml", "/base", ENV)
    except SpecError as err:
        assert len(str(err).splitlines()) == 1, str(err)
