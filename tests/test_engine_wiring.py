"""The engine boundary's create, on the real engine: container options, networks and aliases, network
modes, anonymous volumes, binds (created or refused), rename, networks gen creates or finds (external).
The pure translation (gen.engine.dockerconfig) and the memory engine's rules get table tests."""
from __future__ import annotations

import pytest

from gen.engine.base import Wiring
from gen.engine.dockerconfig import container_args, device, healthcheck, volume_args
from gen.engine.memory import MemoryEngine
from gen.errors import EngineError, NotOwned

MiB = 1024 * 1024


def service(image: str, **fields) -> dict:
    """A service object (format 3 keys only when given), running `sleep` by default."""
    obj = {"kind": "service", "name": "x", "image": image, "image_id": image, "command": ["sleep", "3600"],
           "entrypoint": None, "env": {}, "ports": [], "volumes": [], "depends_on": [], "replicas": 1,
           "update": "stop-first", "stop_grace_ms": 0, "restart": "no", "healthcheck": None, "labels": {},
           "user": None, "working_dir": None, "secrets": []}
    obj.update(fields)
    return obj


@pytest.fixture
def engine(docker_client):
    from gen.engine.docker import DockerEngine
    return DockerEngine.from_env()


@pytest.fixture
def make(engine, deployment):
    """make(name, obj, wiring, start=False) -> container id, labelled with the test's profile."""
    def create(name: str, obj: dict, wiring: Wiring, start: bool = False) -> str:
        cid = engine.create(deployment.profile, obj["name"], obj, "h" * 64, "m" * 64, 1,
                            f"{deployment.profile}-{name}", wiring)
        if start:
            engine.start(cid)
        return cid
    return create


def network(engine, deployment, suffix: str, definition: dict | None = None) -> str:
    name = f"{deployment.profile}_{suffix}"
    engine.ensure_network(name, {"gen.profile": deployment.profile}, definition)
    return name


def run(docker_client, cid: str, *argv: str) -> tuple[int, str]:
    code, out = docker_client.containers.get(cid).exec_run(list(argv))
    return code, out.decode().strip()


OPTIONS = {
    "cap_add": ["NET_ADMIN"], "sysctls": {"net.core.somaxconn": "1024"}, "ulimits": {"nofile": [1024, 2048]},
    "tmpfs": {"/scratch": "size=1m"}, "extra_hosts": ["foo:10.0.0.1"], "hostname": "myhost",
    "domainname": "example.org", "init": True, "mem_limit": 64 * MiB, "nano_cpus": 500_000_000,
    "stop_signal": "SIGINT", "read_only": True, "logging": {"driver": "json-file", "options": {"max-size": "1m"}},
    "expose": ["8080/tcp", "7000/udp"], "dns": ["10.0.0.53"], "dns_search": ["example.com"],
    "security_opt": ["no-new-privileges:true"], "pids_limit": 100, "shm_size": 32 * MiB, "group_add": ["100"],
    "cpu_shares": 512, "ipc": "shareable", "cgroup": "private", "tty": True, "stdin_open": True,
    "devices": ["/dev/null:/dev/mynull:rwm"], "oom_score_adj": 100, "platform": "linux/amd64",
}


def test_container_options_reach_docker_and_apply(engine, make, deployment, docker_client):
    net = network(engine, deployment, "default")
    obj = service(deployment.image, options=OPTIONS,
                  ports=[{"host_ip": "127.0.0.1", "host_port": 0, "container_port": 80, "protocol": "tcp"}])
    cid = make("opts", obj, Wiring(networks={net: ["x"]}), start=True)
    info = docker_client.api.inspect_container(cid)
    host, config = info["HostConfig"], info["Config"]
    assert host["CapAdd"] in (["NET_ADMIN"], ["CAP_NET_ADMIN"])
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Tmpfs"] == {"/scratch": "size=1m"} and host["ExtraHosts"] == ["foo:10.0.0.1"]
    assert host["Init"] is True and host["ReadonlyRootfs"] is True
    assert (host["Memory"], host["NanoCpus"], host["ShmSize"], host["PidsLimit"]) == (64 * MiB, 500_000_000, 32 * MiB, 100)
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert (host["Dns"], host["DnsSearch"], host["SecurityOpt"]) == (["10.0.0.53"], ["example.com"], ["no-new-privileges:true"])
    assert (host["GroupAdd"], host["CpuShares"], host["IpcMode"], host["CgroupnsMode"]) == (["100"], 512, "shareable", "private")
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"}]
    assert host["OomScoreAdj"] == 100
    assert (config["Hostname"], config["Domainname"], config["StopSignal"]) == ("myhost", "example.org", "SIGINT")
    assert (config["Tty"], config["OpenStdin"]) == (True, True)
    assert set(config["ExposedPorts"]) == {"8080/tcp", "7000/udp", "80/tcp"}
    # ... and they are in force, not only written down:
    assert run(docker_client, cid, "cat", "/proc/sys/net/core/somaxconn") == (0, "1024")
    # The container's own process (pid 1) carries the limits. An exec'd shell's `ulimit -n` is not a
    # stable witness: once in CI it showed the hard limit, and that could not be reproduced.
    code, limits = run(docker_client, cid, "cat", "/proc/1/limits")
    assert code == 0 and ["1024", "2048"] in [line.split()[3:5] for line in limits.splitlines()
                                             if line.startswith("Max open files")], limits
    assert run(docker_client, cid, "hostname") == (0, "myhost")
    assert run(docker_client, cid, "touch", "/written")[0] != 0, "read_only: the root filesystem refuses writes"
    assert run(docker_client, cid, "touch", "/scratch/ok")[0] == 0, "the tmpfs is writable"
    assert "10.0.0.1\tfoo" in run(docker_client, cid, "cat", "/etc/hosts")[1]


def test_two_networks_each_with_its_aliases_before_start(engine, make, deployment, docker_client):
    front, back = network(engine, deployment, "front"), network(engine, deployment, "back")
    a = make("a", service(deployment.image), Wiring(networks={front: ["a", "alpha"], back: ["a", "beta"]}))
    joined = docker_client.api.inspect_container(a)["NetworkSettings"]["Networks"]
    assert set(joined) == {front, back}, "every network is joined when create returns, before any start"
    assert {"a", "alpha"} <= set(joined[front]["Aliases"]) and {"a", "beta"} <= set(joined[back]["Aliases"])
    engine.start(a)
    b = make("b", service(deployment.image), Wiring(networks={back: ["b"]}), start=True)
    assert run(docker_client, b, "ping", "-c1", "-W5", "beta")[0] == 0, "the alias on the second network resolves"
    assert run(docker_client, b, "ping", "-c1", "-W5", "a")[0] == 0
    assert run(docker_client, b, "nslookup", "alpha")[0] != 0, "alpha is an alias on the other network only"


def test_fixed_address_on_a_network_with_ipam(engine, make, deployment, docker_client):
    net = network(engine, deployment, "fixed", {"ipam": {"config": [{"subnet": "172.31.251.0/24"}]}})
    cid = make("fixed", service(deployment.image), Wiring(networks={net: ["fixed"]}, ipv4={net: "172.31.251.10"}),
               start=True)
    assert docker_client.api.inspect_container(cid)["NetworkSettings"]["Networks"][net]["IPAddress"] == "172.31.251.10"


def test_network_modes_none_and_another_containers(engine, make, deployment, docker_client):
    net = network(engine, deployment, "default")
    published = [{"host_ip": "", "host_port": 0, "container_port": 80, "protocol": "tcp"}]
    on_host = make("host", service(deployment.image, ports=published), Wiring(network_mode="host"), start=True)
    assert docker_client.api.inspect_container(on_host)["HostConfig"]["NetworkMode"] == "host", \
        "ports beside network_mode host are sent as Compose sends them, and Docker ignores them"
    alone = make("alone", service(deployment.image), Wiring(network_mode="none"), start=True)
    info = docker_client.api.inspect_container(alone)
    assert info["HostConfig"]["NetworkMode"] == "none" and set(info["NetworkSettings"]["Networks"]) == {"none"}
    web = make("web", service(deployment.image, command=["httpd", "-f", "-p", "8080", "-h", "/etc"]),
               Wiring(networks={net: ["web"]}), start=True)
    side = make("side", service(deployment.image), Wiring(network_mode=f"container:{deployment.profile}-web"), start=True)
    assert docker_client.api.inspect_container(side)["HostConfig"]["NetworkMode"].startswith("container:")
    code, out = run(docker_client, side, "wget", "-qO-", "http://127.0.0.1:8080/hostname")
    assert code == 0 and out == docker_client.api.inspect_container(web)["Config"]["Hostname"], \
        "the sidecar shares the web container's network namespace"


def test_an_anonymous_volume_keeps_its_data_across_a_replace(engine, make, deployment, docker_client):
    net = network(engine, deployment, "default")
    volume = f"{deployment.profile}_x_1_data"
    engine.ensure_volume(volume, {"gen.profile": deployment.profile})
    obj = service(deployment.image, volumes=[{"type": "volume", "source": "", "target": "/data", "read_only": False}])
    wiring = Wiring(networks={net: ["x"]}, anonymous={"/data": volume})
    first = make("v1", obj, wiring, start=True)
    assert [(m["Name"], m["Destination"]) for m in docker_client.api.inspect_container(first)["Mounts"]] == [(volume, "/data")]
    assert run(docker_client, first, "sh", "-c", "echo kept > /data/f")[0] == 0
    engine.remove(first)
    second = make("v2", obj, wiring, start=True)
    assert run(docker_client, second, "cat", "/data/f") == (0, "kept")


def test_a_missing_bind_source_is_created_unless_create_host_path_is_false(engine, make, deployment, docker_client, tmp_path):
    net = network(engine, deployment, "default")
    made = tmp_path / "made" / "here"
    bind = {"type": "bind", "source": str(made), "target": "/m", "read_only": False}
    cid = make("bind", service(deployment.image, volumes=[bind]), Wiring(networks={net: ["x"]}), start=True)
    assert docker_client.api.inspect_container(cid)["HostConfig"]["Binds"] == [f"{made}:/m:rw"], "as Compose: Binds"
    assert made.is_dir(), "the daemon created the missing source, as for Compose's short syntax"
    refused = tmp_path / "not" / "there"
    strict = {"type": "bind", "source": str(refused), "target": "/m", "read_only": True, "create_host_path": False}
    with pytest.raises(EngineError) as e:
        make("strict", service(deployment.image, volumes=[strict]), Wiring(networks={net: ["x"]}))
    assert e.value.subject == "service x" and "does not exist" in e.value.reason
    assert not refused.exists()


def test_rename_and_a_taken_name(engine, make, deployment, docker_client):
    net = network(engine, deployment, "default")
    first = make("one", service(deployment.image), Wiring(networks={net: ["x"]}))
    make("two", service(deployment.image), Wiring(networks={net: ["x"]}))
    engine.rename(first, f"{deployment.profile}-aside")
    assert docker_client.api.inspect_container(first)["Name"] == f"/{deployment.profile}-aside"
    with pytest.raises(EngineError, match="already in use"):
        engine.rename(first, f"{deployment.profile}-two")
    with pytest.raises(EngineError, match="already in use"):
        make("two", service(deployment.image), Wiring(networks={net: ["x"]}))


def test_ensure_network_shapes_the_network_and_gens_label_wins(engine, deployment, docker_client):
    name = f"{deployment.profile}_shaped"
    definition = {"internal": True, "attachable": True, "labels": {"team": "shop", "gen.profile": "someone-else"},
                  "driver_opts": {"com.docker.network.bridge.enable_icc": "true"},
                  "ipam": {"config": [{"subnet": "172.31.252.0/24", "gateway": "172.31.252.1"}]}}
    assert engine.ensure_network(name, {"gen.profile": deployment.profile}, definition) is True
    info = docker_client.api.inspect_network(name)
    assert (info["Driver"], info["Internal"], info["Attachable"]) == ("bridge", True, True)
    assert info["Labels"] == {"team": "shop", "gen.profile": deployment.profile}
    assert info["Options"] == {"com.docker.network.bridge.enable_icc": "true"}
    assert info["IPAM"]["Config"] == [{"Subnet": "172.31.252.0/24", "Gateway": "172.31.252.1"}]
    assert engine.ensure_network(name, {"gen.profile": deployment.profile}, definition) is False


def test_an_external_network_is_used_never_created(engine, deployment, docker_client):
    name = f"{deployment.profile}-theirs"
    with pytest.raises(EngineError) as e:
        engine.ensure_network(name, {"gen.profile": deployment.profile}, external=True)
    assert e.value.subject == f"network {name}" and f"docker network create {name}" in e.value.reason
    assert not docker_client.networks.list(names=[name])
    made = docker_client.networks.create(name)                       # by hand: no owner label
    try:
        assert engine.ensure_network(name, {"gen.profile": deployment.profile}, external=True) is False
        with pytest.raises(NotOwned):
            engine.ensure_network(name, {"gen.profile": deployment.profile})
    finally:
        made.remove()


def test_start_interval_is_left_out_on_an_engine_older_than_api_1_44(engine, make, deployment, docker_client):
    net = network(engine, deployment, "default")
    hc = {"test": ["CMD", "true"], "interval_ms": 5000, "timeout_ms": 2000, "retries": 2, "start_period_ms": 1000,
          "start_interval_ms": 500}
    cid = make("hc", service(deployment.image, healthcheck=hc), Wiring(networks={net: ["x"]}))
    check = docker_client.api.inspect_container(cid)["Config"]["Healthcheck"]
    assert check["Interval"] == 5_000_000_000 and "StartInterval" not in check
    assert healthcheck(hc, "1.44")["StartInterval"] == 500_000_000


# -- pure translation ---------------------------------------------------------------------------
@pytest.mark.parametrize("mount, binds, mounts", [
    ({"type": "bind", "source": "/s", "target": "/t", "read_only": True}, ["/s:/t:ro"], []),
    ({"type": "volume", "source": "data", "target": "/t", "read_only": False}, ["p_data:/t:rw"], []),
    ({"type": "bind", "source": "/s", "target": "/t", "read_only": False, "create_host_path": False}, [],
     [{"Type": "bind", "Source": "/s", "Target": "/t", "BindOptions": {}}]),
    ({"type": "bind", "source": "/s", "target": "/t", "read_only": False, "propagation": "rshared"}, [],
     [{"Type": "bind", "Source": "/s", "Target": "/t", "BindOptions": {"Propagation": "rshared"}}]),
    ({"type": "volume", "source": "data", "target": "/t", "read_only": True, "nocopy": True}, [],
     [{"Type": "volume", "Source": "p_data", "Target": "/t", "ReadOnly": True, "VolumeOptions": {"NoCopy": True}}]),
    ({"type": "volume", "source": "", "target": "/anon", "read_only": False}, [],
     [{"Type": "volume", "Source": "p_x_1_anon", "Target": "/anon", "VolumeOptions": {}}]),
    ({"type": "tmpfs", "source": "", "target": "/t", "read_only": False, "tmpfs_size": 1024, "tmpfs_mode": 0o1777}, [],
     [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o1777}}]),
])
def test_volumes_split_between_binds_and_mounts_as_compose_does(mount, binds, mounts):
    wiring = Wiring(volumes={"data": "p_data"}, anonymous={"/anon": "p_x_1_anon"})
    assert volume_args("x", service("i", volumes=[mount]), wiring) == (binds, mounts)


def test_an_unwired_volume_names_the_service():
    with pytest.raises(EngineError, match="service x"):
        volume_args("x", service("i", volumes=[{"type": "volume", "source": "", "target": "/a", "read_only": False}]),
                    Wiring())


@pytest.mark.parametrize("spec, parsed", [
    ("/dev/a", ("/dev/a", "/dev/a", "rwm")), ("/dev/a:/dev/b", ("/dev/a", "/dev/b", "rwm")),
    ("/dev/a:/dev/b:r", ("/dev/a", "/dev/b", "r")),
])
def test_devices(spec, parsed):
    assert tuple(device(spec).values()) == parsed


def test_network_wiring_first_at_create_the_others_by_connect_and_modes_join_nothing():
    args = container_args("p", "x", service("i"), "h", "m", 1,
                          Wiring(networks={"p_b": ["x", "bee"], "p_a": ["x"]}, ipv4={"p_a": "10.1.0.5"}), "1.41")
    assert args.host["network_mode"] == "p_b" and args.endpoints == {"p_b": {"Aliases": ["x", "bee"]}}
    assert args.connects == [("p_a", {"aliases": ["x"], "ipv4_address": "10.1.0.5", "ipv6_address": None})]
    args = container_args("p", "x", service("i"), "h", "m", 1, Wiring(network_mode="container:db"), "1.41")
    assert (args.host["network_mode"], args.endpoints, args.connects) == ("container:db", {}, [])
    ports = [{"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "protocol": "tcp"},
             {"host_ip": "", "host_port": 0, "container_port": 80, "protocol": "tcp"}]
    args = container_args("p", "x", service("i", ports=ports), "h", "m", 1, Wiring(network_mode="host"), "1.41")
    assert args.host_fields["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"},
                                                           {"HostIp": "", "HostPort": ""}]}


# -- the memory engine keeps the same rules -----------------------------------------------------
def test_memory_engine_wiring_rules(tmp_path):
    engine = MemoryEngine({"i": "sha256:i"})
    obj = service("sha256:i")
    with pytest.raises(EngineError, match="network p_a not found"):
        engine.create("p", "x", obj, "h", "m", 1, "p-x", Wiring(networks={"p_a": ["x"]}))
    engine.ensure_network("p_a", {"gen.profile": "p"}, {"internal": True, "labels": {"gen.profile": "q", "t": "1"}})
    assert engine.networks["p_a"] == {"gen.profile": "p", "t": "1"} and engine.network_defs["p_a"]["internal"]
    with pytest.raises(EngineError, match="docker network create ext"):
        engine.ensure_network("ext", {"gen.profile": "p"}, external=True)
    cid = engine.create("p", "x", obj, "h", "m", 1, "p-x", Wiring(networks={"p_a": ["x", "alias"]}))
    assert engine.containers[cid].networks == {"p_a": ["x", "alias"]}
    with pytest.raises(EngineError, match="already in use"):
        engine.create("p", "x", obj, "h", "m", 1, "p-x", Wiring(networks={"p_a": ["x"]}))
    side = engine.create("p", "y", obj, "h", "m", 1, "p-y", Wiring(network_mode="container:p-x"))
    with pytest.raises(EngineError, match="non running container"):
        engine.start(side)
    engine.start(cid)
    engine.start(side)
    engine.rename(cid, "p-x-old")
    with pytest.raises(EngineError, match="already in use"):
        engine.rename(side, "p-x-old")
    with pytest.raises(EngineError, match="No such container: p-x"):
        engine.create("p", "z", obj, "h", "m", 1, "p-z", Wiring(network_mode="container:p-x"))
    strict = {"type": "bind", "source": str(tmp_path / "no"), "target": "/m", "read_only": False, "create_host_path": False}
    with pytest.raises(EngineError, match="does not exist"):
        engine.create("p", "w", service("sha256:i", volumes=[strict]), "h", "m", 1, "p-w", Wiring(networks={"p_a": []}))
    anon = {"type": "volume", "source": "", "target": "/d", "read_only": False}
    engine.create("p", "v", service("sha256:i", volumes=[anon]), "h", "m", 1, "p-v",
                  Wiring(networks={"p_a": []}, anonymous={"/d": "p_v_1_d"}))
    assert "p_v_1_d" in engine.volumes


def test_systempaths_unconfined_unmasks_proc_as_the_docker_cli_does(engine, make, deployment, docker_client):
    """security_opt systempaths=unconfined is the Docker CLI's, not the daemon's (which refuses it):
    it means no masked and no read-only /proc paths."""
    net = network(engine, deployment, "default")
    opts = {"security_opt": ["no-new-privileges:true", "systempaths=unconfined"]}
    cid = make("unconfined", service(deployment.image, options=opts), Wiring(networks={net: ["x"]}), start=True)
    host = docker_client.api.inspect_container(cid)["HostConfig"]
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["MaskedPaths"] in ([], None) and host["ReadonlyPaths"] in ([], None)
    confined = make("confined", service(deployment.image), Wiring(networks={net: ["y"]}), start=True)
    assert docker_client.api.inspect_container(confined)["HostConfig"]["MaskedPaths"], "Docker masks by default"
