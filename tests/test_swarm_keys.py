"""The spec keys a Swarm acts on (issue 13): placement (constraints, max_replicas_per_node), endpoint_mode and
a port's mode, in both spellings (gen.toml and Compose), their mapping to a Swarm ServiceSpec, and replicas
publishing one host port: refused on one engine at switch time (exit 1, nothing touched), run one task per
node on a Swarm (the lab test at the end). The rest is pure: no Docker engine."""
from __future__ import annotations

import json
import textwrap

import pytest

from gen.engine.swarmspec import Refs, check_service, service_spec
from gen.errors import SpecError
from gen.model import formats
from gen.model.compile import compile_spec
from gen.spec import parse_spec
from gen.spec.compose import parse_compose
from tests.conftest import sleeper
from tests.test_swarm import cluster, wait_for  # noqa: F401  (the lab's per-test profile fixture)

IMAGE_ID = "sha256:" + "ab" * 32


def toml(lines: str) -> dict:
    return parse_spec('[services.web]\nimage = "web:1"\n' + textwrap.dedent(lines), "gen.toml").services["web"]


def yml(lines: str) -> dict:
    text = "services:\n  web:\n" + textwrap.indent("image: web:1\n" + textwrap.dedent(lines), "    ")
    return parse_compose(text, "compose.yaml", "/base", {}).services["web"]


def compiled(service: dict) -> tuple[str, dict]:
    spec = parse_spec('[services.x]\nimage = "x"\n')
    spec.services["web"] = service
    h, obj = compile_spec(spec, "shop", lambda _: IMAGE_ID).services["web"]
    return h, obj


PORT = {"host_ip": "", "host_port": 8080, "container_port": 80, "protocol": "tcp"}
# (gen.toml lines, Compose lines, field of web, expected; "-" = absent)
BOTH = [
    ('placement = { constraints = ["node.role==worker", "node.hostname != n1"], max_replicas_per_node = 1 }',
     "deploy: {placement: {constraints: [node.role==worker, node.hostname != n1], max_replicas_per_node: 1}}",
     "placement", {"constraints": ["node.role==worker", "node.hostname != n1"], "max_replicas_per_node": 1}),
    ('placement = { constraints = ["node.labels.zone==a"] }', "deploy: {placement: {constraints: [node.labels.zone==a]}}",
     "placement", {"constraints": ["node.labels.zone==a"]}),
    ("placement = { max_replicas_per_node = 2 }", "deploy: {placement: {max_replicas_per_node: 2}}",
     "placement", {"max_replicas_per_node": 2}),
    ("placement = { constraints = [] }", "deploy: {placement: {constraints: []}}", "placement", "-"),
    ('endpoint_mode = "dnsrr"', "deploy: {endpoint_mode: dnsrr}", "endpoint_mode", "dnsrr"),
    ('endpoint_mode = "vip"', "deploy: {endpoint_mode: vip}", "endpoint_mode", "-"),     # the default: left out
    ('ports = [{ target = 80, published = 8080, mode = "host" }]',
     "ports: [{target: 80, published: 8080, mode: host}]", "ports", [{**PORT, "mode": "host"}]),
    ('ports = [{ target = 80, published = "8080", mode = "ingress" }]',     # what `docker compose config` writes
     "ports: [{target: 80, published: '8080', protocol: tcp, mode: ingress}]", "ports", [PORT]),
    ('ports = ["8080:80"]', "ports: ['8080:80']", "ports", [PORT]),
    ('ports = [{ target = 53, host_ip = "0:0::1", protocol = "udp", mode = "host" }]',
     "ports: [{target: 53, host_ip: '0:0::1', protocol: udp, mode: host}]", "ports",
     [{"host_ip": "::1", "host_port": 0, "container_port": 53, "protocol": "udp", "mode": "host"}]),
    ('ports = ["8080:80"]\nreplicas = 3', "ports: ['8080:80']\ndeploy: {replicas: 3}", "replicas", 3),  # one engine: at switch
]


@pytest.mark.parametrize("toml_lines, yaml_lines, field, expected", BOTH, ids=[f"k{i}-{c[2]}" for i, c in enumerate(BOTH)])
def test_swarm_keys_in_both_spellings(toml_lines, yaml_lines, field, expected):
    for web in (toml(toml_lines), yml(yaml_lines)):
        assert web.get(field, "-") == expected


BAD = [
    ('placement = { constraints = ["role=worker"] }', "deploy: {placement: {constraints: ['role=worker']}}",
     "services.web.placement.constraints[0]", "expected <attribute> == <value>"),
    ('placement = { constraints = ["node.role=="] }', "deploy: {placement: {constraints: ['node.role==']}}",
     "services.web.placement.constraints[0]", "expected <attribute>"),
    ('placement = { constraints = "node.role==worker" }', "deploy: {placement: {constraints: node.role==worker}}",
     "services.web.placement.constraints", "must be a list of strings"),
    ("placement = { max_replicas_per_node = 0 }", "deploy: {placement: {max_replicas_per_node: 0}}",
     "services.web.placement.max_replicas_per_node", "out of range"),
    ('placement = { max_replicas_per_node = "1" }', "deploy: {placement: {max_replicas_per_node: '1'}}",
     "services.web.placement.max_replicas_per_node", "must be an integer"),
    ('placement = { spread = "x" }', "deploy: {placement: {preferences: [{spread: node.labels.zone}]}}",
     "services.web.placement.", None),
    ('endpoint_mode = "rr"', "deploy: {endpoint_mode: rr}", "services.web.endpoint_mode", "must be one of: vip, dnsrr"),
    ('ports = [{ target = 80, mode = "global" }]', "ports: [{target: 80, mode: global}]",
     "services.web.ports[0].mode", "must be host or ingress"),
    ('ports = [{ published = 80 }]', "ports: [{published: 80}]", "services.web.ports[0].target", "missing required key"),
    ('ports = [{ target = 80, published = "80-81" }]', "ports: [{target: 80, published: 80-81}]",
     "services.web.ports[0].published", "port range"),
    ('ports = [{ target = 80, protocol = "sctp" }]', None, "services.web.ports[0].protocol", "must be tcp or udp"),
    ('ports = [{ target = 80, name = "web" }]', None, "services.web.ports[0].name", "unknown key"),
]


@pytest.mark.parametrize("toml_lines, yaml_lines, subject, fragment", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_swarm_keys_name_the_key(toml_lines, yaml_lines, subject, fragment):
    for parse, lines in ((toml, toml_lines), (yml, yaml_lines)):
        if lines is None:
            continue
        with pytest.raises(SpecError) as info:
            parse(lines)
        compose_subject = subject.replace("services.web.placement", "services.web.deploy.placement").replace(
            "services.web.endpoint_mode", "services.web.deploy.endpoint_mode")
        assert info.value.subject.startswith(subject if parse is toml else compose_subject), info.value.subject
        assert fragment is None or fragment in info.value.reason, info.value.reason


def test_keys_are_absent_at_their_default_so_hashes_stay():
    """A service that sets none of them (or their defaults) hashes as before: format 1, no new key."""
    plain, _ = compiled(toml('ports = ["8080:80"]\n'))
    spelled, obj = compiled(toml('ports = [{ target = 80, published = 8080, mode = "ingress" }]\n'
                                 'endpoint_mode = "vip"\nplacement = {}\n'))
    assert plain == spelled and "format" not in obj
    h, obj = compiled(toml('ports = [{ target = 80, published = 8080, mode = "host" }]\n'))
    assert h != plain and obj["format"] == 3
    for body in ('endpoint_mode = "dnsrr"\n', 'placement = { constraints = ["node.role==worker"] }\n'):
        h, obj = compiled(toml(body))
        assert obj["format"] == 3, body


def test_a_format_3_object_with_the_keys_reads_back():
    """A rollback reads them from the store; a shape gen could not have written is refused."""
    _, obj = compiled(toml('ports = [{ target = 80, published = 8080, mode = "host" }]\nendpoint_mode = "dnsrr"\n'
                           'placement = { constraints = ["node.role==worker"], max_replicas_per_node = 1 }\n'))
    assert formats.service_object(obj, "o") == obj
    from gen.errors import CorruptState
    for bad in ({"endpoint_mode": "vip"}, {"placement": {"constraints": "x"}}, {"placement": {"max_replicas_per_node": 0}},
                {"ports": [{**PORT, "mode": "ingress"}]}):
        with pytest.raises(CorruptState):
            formats.service_object({**obj, **bad}, "o")


def mapped(lines: str) -> dict:
    h, obj = compiled(toml(lines))
    return service_spec("shop", "web", h, "m" * 64, obj, Refs(image=IMAGE_ID, networks={"default": "shop_default"}))


def test_the_mapping_to_a_swarm_service():
    spec = mapped('replicas = 2\nendpoint_mode = "dnsrr"\n'
                  'placement = { constraints = ["node.role==worker"], max_replicas_per_node = 1 }\n'
                  'ports = [{ target = 80, published = 8080, mode = "host" }]\n')
    assert spec["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==worker"], "MaxReplicas": 1}
    assert spec["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host", "PublishedPort": 8080}]}
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
    plain = mapped('ports = ["8080:80"]\n')     # Compose's default: the routing mesh, through the service's VIP
    assert plain["EndpointSpec"] == {"Mode": "vip", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080}]}
    assert plain["TaskTemplate"]["Placement"] == {}


def test_an_ingress_port_beside_dnsrr_is_refused_on_a_swarm():
    _, obj = compiled(toml('endpoint_mode = "dnsrr"\nports = ["8080:80"]\n'))
    with pytest.raises(SpecError) as info:
        check_service("web", obj)
    assert info.value.subject == "services.web.ports[0]" and "mode host" in info.value.reason


# -- one engine: replicas cannot share a host port (real engine) ---------------------------------------------
def test_replicas_with_one_host_port_are_refused_on_one_engine_at_switch(deployment):
    first = deployment.spec(sleeper("db"))
    assert deployment.gen("switch", first, "-q").code == 0
    before = {c.id for c in deployment.containers()}
    body = sleeper("db") + sleeper("web", 'replicas = 2\nports = [{ target = 80, published = 18080, mode = "host" }]')
    r = deployment.gen("switch", deployment.spec(body))
    assert r.code == 1, r.err
    assert "services.web.replicas" in r.err and "cannot all publish host port 18080/tcp on one engine" in r.err
    assert {c.id for c in deployment.containers()} == before, "nothing was touched"
    assert [g["generation"] for g in json.loads(deployment.gen("list", "-p", deployment.profile, "--json").out)] == [1]
    assert deployment.gen("switch", deployment.spec(body), "--dry-run").code == 1


# -- a Swarm: one task per node on the host port (the lab) -------------------------------------------------
PLACED = """name = "{profile}"

[services.web]
image = "gen-test/busybox:1"
command = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
replicas = 2
ports = [{{ target = 8080, published = {port}, mode = "host" }}]
placement = {{ constraints = ["node.role==worker"], max_replicas_per_node = 1 }}
endpoint_mode = "dnsrr"
stop_grace = "0s"
"""


def test_replicas_on_one_host_port_land_one_per_worker(cluster):
    c = cluster
    spec = c.dir / "placed.toml"
    spec.write_text(PLACED.format(profile=c.profile, port=c.port))
    c.must("switch", spec, "--target", "swarm", "-q")
    tasks = c.tasks("web")
    workers = {n.id: n for n in c.lab.workers}
    assert len(tasks) == 2 and {t["NodeID"] for t in tasks.values()} == set(workers), "one task on each worker"
    answers = {node.name: c.lab.http_get(node, c.port) for node in workers.values()}
    assert len(set(answers.values())) == 2, f"each worker's host port answers from its own task: {answers}"
    assert c.lab.manager.name not in c.answers(), "the manager runs no task (node.role==worker)"
    endpoint = c.service("web").attrs["Spec"]["EndpointSpec"]
    assert endpoint["Mode"] == "dnsrr" and endpoint["Ports"][0]["PublishMode"] == "host"
    assert c.gen("status", "-p", c.profile).code == 0
