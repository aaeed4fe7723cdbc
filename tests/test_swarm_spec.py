"""A gen service object as a Swarm ServiceSpec (gen.engine.swarmspec): pure table tests, no Docker.
Objects come from real specs through the real compiler, so the mapping is tested on what gen writes."""
from __future__ import annotations

import pytest

from gen.engine.swarmspec import (Refs, check_service, file_name, network_definition, service_spec, swarm_name,
                                  update_order)
from gen.errors import SpecError
from gen.model.compile import compile_spec
from gen.spec import parse_spec

IMAGE_ID = "sha256:" + "ab" * 32
DIGEST = "10.0.0.1:5000/shop/web@sha256:" + "cd" * 32


def obj_of(body: str, service: str = "web", digest: str | None = None) -> tuple[str, dict]:
    """(hash, service object) of one service of a TOML spec body, compiled as gen compiles it."""
    from gen.model.compile import ResolvedImage
    spec = parse_spec('name = "shop"\n' + body)
    compiled = compile_spec(spec, "shop", lambda request: ResolvedImage(IMAGE_ID, digest))
    return compiled.services[service]


def mapped(body: str, service: str = "web", refs: Refs | None = None, **kw) -> dict:
    h, obj = obj_of(body, service, **kw)
    refs = refs or Refs(image=obj.get("image_digest") or IMAGE_ID, networks={"default": "shop_default"})
    return service_spec("shop", service, h, "m" * 64, obj, refs)


WEB = '[services.web]\nimage = "shop/web:1"\n'


def test_names_labels_and_the_pinned_image():
    h, obj = obj_of(WEB + 'labels = { team = "a" }\n')
    spec = service_spec("shop", "web", h, "m" * 64, obj, Refs(image=IMAGE_ID, networks={"default": "shop_default"}))
    assert spec["Name"] == "shop_web" == swarm_name("shop", "web")
    assert spec["Labels"] == {"gen.profile": "shop", "gen.service": "web", "gen.hash": h, "gen.manifest": "m" * 64}
    container = spec["TaskTemplate"]["ContainerSpec"]
    # the task's labels carry the definition's hash, never the manifest: a task template is a function of
    # the object alone, so mapping an old object again matches the tasks made from it
    assert container["Labels"] == {"team": "a", "gen.profile": "shop", "gen.service": "web", "gen.hash": h}
    assert container["Image"] == IMAGE_ID
    assert spec["TaskTemplate"]["Networks"] == [{"Target": "shop_default"}]
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}


def test_a_registry_digest_is_what_the_nodes_run():
    assert mapped(WEB, digest=DIGEST)["TaskTemplate"]["ContainerSpec"]["Image"] == DIGEST


def test_the_task_template_depends_on_the_object_and_refs_alone():
    h, obj = obj_of(WEB)
    refs = Refs(image=IMAGE_ID, networks={"default": "shop_default"})
    a = service_spec("shop", "web", h, "1" * 64, obj, refs)
    b = service_spec("shop", "web", h, "2" * 64, obj, refs)
    assert a["TaskTemplate"] == b["TaskTemplate"] and a["Labels"] != b["Labels"]


@pytest.mark.parametrize("body, field, want", [
    ('command = ["httpd", "-f"]\n', "Args", ["httpd", "-f"]),
    ('entrypoint = ["/bin/sh", "-c"]\n', "Command", ["/bin/sh", "-c"]),
    ('env = { B = "2", A = "1" }\n', "Env", ["A=1", "B=2"]),
    ('user = "1000:1000"\n', "User", "1000:1000"),
    ('working_dir = "/srv"\n', "Dir", "/srv"),
    ('stop_grace = "1500ms"\n', "StopGracePeriod", 1_500_000_000),
    ('init = true\n', "Init", True),
    ('read_only = true\n', "ReadOnly", True),
    ('hostname = "h1"\n', "Hostname", "h1"),
    ('stop_signal = "SIGINT"\n', "StopSignal", "SIGINT"),
    ('cap_add = ["NET_ADMIN"]\n', "CapabilityAdd", ["NET_ADMIN"]),
    ('cap_drop = ["ALL"]\n', "CapabilityDrop", ["ALL"]),
    ('sysctls = { "net.core.somaxconn" = "1024" }\n', "Sysctls", {"net.core.somaxconn": "1024"}),
    ('extra_hosts = ["db:10.0.0.5"]\n', "Hosts", ["10.0.0.5 db"]),
    ('dns = ["10.0.0.2"]\n', "DNSConfig", {"Nameservers": ["10.0.0.2"]}),
    ('ulimits = { nofile = { soft = 1024, hard = 2048 } }\n', "Ulimits", [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
    ('tmpfs = ["/run"]\n', "Mounts", [{"Type": "tmpfs", "Target": "/run"}]),
])
def test_container_fields(body, field, want):
    assert mapped(WEB + body)["TaskTemplate"]["ContainerSpec"][field] == want


def test_no_command_or_entrypoint_keeps_the_images():
    container = mapped(WEB)["TaskTemplate"]["ContainerSpec"]
    assert "Args" not in container and "Command" not in container and "HealthCheck" not in container


def test_healthcheck_in_nanoseconds():
    body = WEB + ('[services.web.healthcheck]\ntest = ["CMD", "true"]\ninterval = "500ms"\ntimeout = "2s"\n'
                  'retries = 4\nstart_period = "3s"\n')
    assert mapped(body)["TaskTemplate"]["ContainerSpec"]["HealthCheck"] == {
        "Test": ["CMD", "true"], "Interval": 500_000_000, "Timeout": 2_000_000_000, "Retries": 4,
        "StartPeriod": 3_000_000_000}


@pytest.mark.parametrize("restart, want", [
    ("no", {"Condition": "none"}),
    ("always", {"Condition": "any"}),
    ("unless-stopped", {"Condition": "any"}),
    ("on-failure", {"Condition": "on-failure"}),
    ("on-failure:3", {"Condition": "on-failure", "MaxAttempts": 3}),
])
def test_restart_policy(restart, want):
    assert mapped(WEB + f'restart = "{restart}"\n')["TaskTemplate"]["RestartPolicy"] == want


def test_resources_limits_and_reservations():
    body = WEB + 'cpus = 0.5\nmem_limit = "256m"\nmem_reservation = "64m"\npids_limit = 100\n'
    assert mapped(body)["TaskTemplate"]["Resources"] == {
        "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 << 20, "Pids": 100},
        "Reservations": {"MemoryBytes": 64 << 20}}


@pytest.mark.parametrize("body, order, forced", [
    ('update = "start-first"\n', "start-first", False),
    ('update = "stop-first"\n', "stop-first", False),
    ('update = "start-first"\nports = [{ target = 80, published = 8080, mode = "host" }]\n', "stop-first",
     True),                                                                     # old and new cannot both bind it
    ('update = "start-first"\nports = ["8080:80"]\n', "start-first", False),     # ingress: the mesh's port
    ('update = "start-first"\nports = ["80"]\n', "start-first", False),         # an ephemeral port: no clash
])
def test_update_order(body, order, forced):
    spec = mapped(WEB + body)
    assert spec["UpdateConfig"]["Order"] == order
    assert spec["UpdateConfig"]["Parallelism"] == 0 and spec["UpdateConfig"]["FailureAction"] == "pause"
    assert bool(update_order(obj_of(WEB + body)[1])[1]) == forced


def test_ports_are_published_in_their_mode():
    """Absent mode is Compose's ingress (the routing mesh); `mode = "host"`: on the task's node."""
    spec = mapped(WEB + 'ports = ["8080:80", { target = 53, published = 53, protocol = "udp", mode = "host" }, '
                        '{ target = 9000, mode = "host" }, "9001"]\n')
    assert spec["EndpointSpec"] == {"Mode": "vip", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 8080},
        {"Protocol": "udp", "TargetPort": 53, "PublishMode": "host", "PublishedPort": 53},
        {"Protocol": "tcp", "TargetPort": 9000, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 9001, "PublishMode": "ingress"}]}


def test_networks_with_aliases():
    body = ('[networks.front]\n[networks.back]\n' + WEB + 'networks = { front = {}, back = { aliases = ["api"] } }\n')
    refs = Refs(image=IMAGE_ID, networks={"front": "shop_front", "back": "shop_back"})
    assert mapped(body, refs=refs)["TaskTemplate"]["Networks"] == [
        {"Target": "shop_back", "Aliases": ["api"]}, {"Target": "shop_front"}]


def test_volumes():
    body = ('[volumes.data]\n[volumes.ext]\nexternal = true\nname = "theirs"\n' + WEB +
            'volumes = ["data:/data", "ext:/ext:ro", "/srv/static:/static:ro", "/cache"]\n')
    refs = Refs(image=IMAGE_ID, networks={"default": "shop_default"}, volumes={"data": "shop_data", "ext": "theirs"})
    assert mapped(body, refs=refs)["TaskTemplate"]["ContainerSpec"]["Mounts"] == [
        {"Type": "volume", "Target": "/data", "ReadOnly": False, "Source": "shop_data",
         "VolumeOptions": {"Labels": {"gen.profile": "shop"}}},
        {"Type": "volume", "Target": "/ext", "ReadOnly": True, "Source": "theirs"},
        {"Type": "bind", "Target": "/static", "ReadOnly": True, "Source": "/srv/static"},
        {"Type": "volume", "Target": "/cache", "ReadOnly": False}]


def test_secrets_and_configs_by_content(tmp_path):
    from gen.model.compile import Pinned
    from gen.spec import load_spec
    (tmp_path / "key.txt").write_text("s3cret")
    (tmp_path / "app.conf").write_text("x=1")
    (tmp_path / "gen.toml").write_text('name = "shop"\n[secrets.key]\nfile = "key.txt"\n[configs.conf]\n'
                                       'file = "app.conf"\n' + WEB + 'user = "1000"\nsecrets = ["key"]\n'
                                       'configs = [{ source = "conf", target = "/etc/app.conf", mode = 0o440 }]\n')
    compiled = compile_spec(load_spec(tmp_path / "gen.toml"), "shop", lambda r: IMAGE_ID,
                            lambda kind, path, key: Pinned(f"{kind[0]}" * 64, b"", 0, 0, 0o644))
    h, obj = compiled.services["web"]
    refs = Refs(image=IMAGE_ID, networks={"default": "shop_default"}, files={"s" * 64: "SID", "c" * 64: "CID"},
                names={"s" * 64: file_name("shop", "key", "s" * 64), "c" * 64: file_name("shop", "conf", "c" * 64)})
    container = service_spec("shop", "web", h, "m" * 64, obj, refs)["TaskTemplate"]["ContainerSpec"]
    assert container["Secrets"] == [{"File": {"Name": "/run/secrets/key", "UID": "1000", "GID": "0", "Mode": 0o400},
                                     "SecretID": "SID", "SecretName": "shop_key_ssssssssssss"}]
    assert container["Configs"] == [{"File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 0o440},
                                     "ConfigID": "CID", "ConfigName": "shop_conf_cccccccccccc"}]


def test_file_names_fit_swarms_limit():
    assert file_name("shop", "key", "ab" * 32) == "shop_key_abababababab"
    assert len(file_name("p" * 63, "key", "ab" * 32)) <= 63


@pytest.mark.parametrize("body, subject", [
    ('container_name = "web1"\n', "services.web.container_name"),
    ('network_mode = "host"\n', "services.web.network_mode"),
    ('job = true\nrestart = "no"\n', "services.web.job"),
    ('ports = ["127.0.0.1:8080:80"]\n', "services.web.ports[0]"),
    ('privileged = true\n', "services.web.privileged"),
    ('cpu_shares = 512\n', "services.web.cpu_shares"),
    ('devices = ["/dev/null:/dev/null"]\n', "services.web.devices"),
    ('security_opt = ["no-new-privileges"]\n', "services.web.security_opt"),
    ('tmpfs = ["/run:size=64k"]\n', "services.web.tmpfs"),
])
def test_what_a_swarm_service_cannot_do_is_refused_naming_the_key(body, subject):
    _, obj = obj_of(WEB + body)
    with pytest.raises(SpecError) as e:
        check_service("web", obj)
    assert e.value.subject == subject and "Swarm" in e.value.reason


def test_fixed_addresses_are_refused():
    _, obj = obj_of('[networks.back]\nipam = { config = [{ subnet = "172.30.0.0/24" }] }\n' + WEB +
                    'networks = { back = { ipv4_address = "172.30.0.5" } }\n')
    with pytest.raises(SpecError, match="assigns addresses") as e:
        check_service("web", obj)
    assert e.value.subject == "services.web.networks.back.ipv4_address"


def test_networks_become_attachable_overlays():
    assert network_definition("back", {"internal": True}) == {"internal": True, "driver": "overlay", "attachable": True}
    with pytest.raises(SpecError) as e:
        network_definition("back", {"driver": "bridge"})
    assert e.value.subject == "networks.back.driver"
