"""An Engine (gen.engine.base) held in memory: a small, faithful simulation of one Docker engine, for
unit tests of the transaction without Docker (in the spirit of dulwich's MemoryObjectStore).

It keeps Docker's rules that the transaction relies on: container names are unique (a second create
with a taken name is a 409-like EngineError); a host port is bound only while its container runs, and
starting a container whose port another running container holds fails ("port is already allocated");
stop and remove of an absent container are not errors; remove never removes a volume; a network with
running containers on it cannot be removed; a manual start resets the restart count; an exit under a
restart policy that restarts it shows as "restarting"; a paused container (pause(), done behind gen's
back) cannot be started; create() makes a missing named volume, as Docker does; a container joins
every network of its wiring (each must exist), `network_mode: container:X` needs X (running, to
start); a bind with create_host_path False needs its source; rename() keeps names unique. Images,
pulls, pushes and builds: gen.engine.memoryimages.

Time does not pass by itself. A container changes only when gen calls it, and once on the first
observe() after each start, when its scripted behaviour plays out: by default it keeps running, and
a container with a healthcheck turns "healthy". Script other behaviours per service name, image
reference or image ID (the first that matches, in that order, wins):

    engine = MemoryEngine({"app:1": "sha256:...", "app:2": "sha256:..."})
    engine.script("app:2", exit_code=1, logs="boom")    # every container of image app:2 exits with code 1
    engine.script("db", health="unhealthy")              # its healthcheck fails
    engine.script("web", health="starting")              # hangs in "starting" (until the timeout)
    engine.script("web", fail_create="disk full")        # create() raises EngineError("service web", ...)
    engine.script("web", fail_start="oci runtime error") # start() raises EngineError

Script by image to break only a new version: a service-name script would also break its old
containers when the transaction restores them. `calls` logs every call as (verb, args), in order.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass, field

from gen.engine.base import DEFAULT_HEALTH_TIMEOUT_MS, ContainerDetails, Wiring
from gen.engine.memoryimages import MemoryImages, logged
from gen.engine.memoryprobes import MemoryProbes
from gen.engine.memorywatch import Watching
from gen.errors import EngineError, NotOwned
from gen.model import formats
from gen.model.naming import LABEL_HASH, LABEL_PROFILE, LABEL_REPLICA, LABEL_SERVICE, container_labels
from gen.model.plan import Observed
from gen.model.types import ServiceObject

_ANY_IP = ("", "0.0.0.0", "::")
_RESTARTS = ("always", "unless-stopped")


@dataclass
class Script:
    """What a container does once started (see the module docstring)."""
    exit_code: int | None = None      # exits with this code on the first observe() after a start
    health: str = "healthy"           # its healthcheck then reports: healthy | unhealthy | starting (hangs)
    probe: int | str | None = None    # gen's early probes: an exit code, "hang", or None (0 iff health is healthy)
    fail_create: str | None = None    # create() raises EngineError with this reason
    fail_start: str | None = None     # start() raises EngineError with this reason
    fail_build: str | None = None     # keyed by tag: build_image() fails at the first RUN step with this reason
    logs: str = ""                    # what the container prints each time it starts


@dataclass
class Container:
    id: str
    name: str
    labels: dict[str, str]
    obj: ServiceObject
    networks: dict[str, list[str]]      # engine network name -> aliases
    network_mode: str | None
    volumes: dict[str, str]             # spec volume name -> engine volume name
    state: str = "created"              # created | running | restarting | paused | exited | dead
    health: str | None = None           # while running with a healthcheck: starting | healthy | unhealthy
    exit_code: int = 0
    restart_count: int = 0
    host_ports: frozenset = frozenset()  # {(ip, port, protocol)} bound, only while running
    log: list[str] = field(default_factory=list)
    last_check: int | None = None
    fresh: bool = False                 # started and not yet observed: its script has not played out

    @property
    def checked(self) -> bool:
        hc = self.obj["healthcheck"]
        return bool(hc) and hc["test"] != ["NONE"]

    def publishes(self) -> frozenset:
        return frozenset((p["host_ip"] or "0.0.0.0", p["host_port"], p["protocol"])     # host mode: Docker ignores them
                         for p in self.obj["ports"] if self.network_mode != "host")


def _clash(a: tuple, b: tuple) -> bool:
    """Two bindings of one host port (port 0: an ephemeral port the engine picks, which never clashes)."""
    return a[1] != 0 and a[1:] == b[1:] and (a[0] == b[0] or a[0] in _ANY_IP or b[0] in _ANY_IP)


class MemoryEngine(MemoryImages, MemoryProbes, Watching):
    """One simulated engine (implements gen.engine.base.Engine). Its state is public for tests:
    images (id set), tags (ref -> id) and the rest of MemoryImages, containers (id -> Container),
    networks and volumes (name -> labels), network_defs (name -> the definition it was created with)."""
    calls_outlive_caller = False    # every call returns done: nothing of a killed caller lands later

    def __init__(self, images: dict[str, str] | None = None):
        super().__init__(images)
        self.containers: dict[str, Container] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.network_defs: dict[str, dict] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, tuple]] = []
        self.scripts: dict[str, Script] = {}
        self._probes: dict[str, int | None] = {}     # probe id -> its exit code (gen.engine.memoryprobes)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()     # the transaction calls from a thread pool

    def script(self, key: str, **behaviour) -> Script:
        """Script the containers of a service name, image reference or image ID (see Script)."""
        self.scripts[key] = Script(**behaviour)
        return self.scripts[key]

    def _script(self, c: Container) -> Script:
        return self._script_for(c.labels.get(LABEL_SERVICE, ""), c.obj)

    def _script_for(self, service: str, obj: ServiceObject) -> Script:
        return next((self.scripts[k] for k in (service, obj["image"], obj["image_id"]) if k in self.scripts), Script())

    def _get(self, cid: str) -> Container:
        if cid not in self.containers:
            raise EngineError(f"container {cid[:12]}", f"No such container: {cid}")
        return self.containers[cid]

    # -- observation ----------------------------------------------------------------------------
    @logged
    def observe(self, profile: str, ids: Collection[str] | None = None) -> list[Observed]:
        """Every container labelled with this profile (or only `ids` of them), newest first; fresh ones
        play out their script."""
        for c in self.containers.values():
            if c.fresh:
                self._play(c)
        return [Observed(id=c.id, name=c.name, service=c.labels.get(LABEL_SERVICE, ""),
                         hash=c.labels.get(LABEL_HASH, ""), replica=int(c.labels.get(LABEL_REPLICA, "1")),
                         state=c.state, health=c.health if c.state == "running" else None,
                         exit_code=c.exit_code if c.state == "exited" else None,
                         image_id=c.obj["image_id"], host_ports=c.host_ports)
                for c in reversed(self.containers.values())
                if c.labels.get(LABEL_PROFILE) == profile and (ids is None or c.id in ids)]

    def _play(self, c: Container) -> None:
        c.fresh = False
        s = self._script(c)
        if s.exit_code is not None:
            c.exit_code, c.host_ports, c.health = s.exit_code, frozenset(), None
            policy = c.obj["restart"].partition(":")[0]
            if policy in _RESTARTS or policy == "on-failure" and s.exit_code != 0:
                c.state, c.restart_count = "restarting", c.restart_count + 1
            else:
                c.state = "exited"
        elif c.checked and s.health != "starting":
            c.health, c.last_check = s.health, 0 if s.health == "healthy" else 1

    @logged
    def inspect(self, cid: str) -> ContainerDetails:
        c = self._get(cid)
        hc = c.obj["healthcheck"] or {}
        return ContainerDetails(
            id=c.id, running=c.state == "running", restarting=c.state == "restarting", exit_code=c.exit_code,
            restart_count=c.restart_count, user=c.obj["user"] or "", health_test=tuple(hc.get("test") or ()),
            health_timeout_ms=hc.get("timeout_ms", DEFAULT_HEALTH_TIMEOUT_MS), last_check_exit=c.last_check)

    @logged
    def logs(self, cid: str, tail: int = 10) -> str:
        return "".join(line + "\n" for line in self._get(cid).log[-tail:])

    # -- networks and volumes -------------------------------------------------------------------
    @logged
    def ensure_network(self, name: str, labels: dict[str, str], definition: dict | None = None,
                       external: bool = False) -> bool:
        if name in self.networks:
            if not external:
                _check_owner("network", name, self.networks[name], labels)
            return False
        if external:
            raise EngineError(f"network {name}", "is declared external but does not exist "
                              f"(create it first: docker network create {name})")
        self.networks[name] = {**(definition or {}).get("labels", {}), **labels}
        self.network_defs[name] = dict(definition or {})
        return True

    @logged
    def ensure_volume(self, name: str, labels: dict[str, str], external: bool = False) -> None:
        if name not in self.volumes:
            if external:
                raise EngineError(f"volume {name}", "is declared external but does not exist")
            self.volumes[name] = dict(labels)
        elif not external:
            _check_owner("volume", name, self.volumes[name], labels)

    @logged
    def remove_network(self, name: str) -> None:
        users = [c.name for c in self.containers.values() if name in c.networks and c.state == "running"]
        if users:
            raise EngineError(f"network {name}", f"error while removing network: network {name} has active endpoints")
        self.networks.pop(name, None)

    def profile_networks(self, profile: str) -> list[str]:
        return sorted(n for n, labels in self.networks.items() if labels.get(LABEL_PROFILE) == profile)

    # -- containers -----------------------------------------------------------------------------
    @logged
    def create(self, profile: str, service: str, obj: ServiceObject, h: str, manifest: str, replica: int,
               name: str, wiring: Wiring) -> str:
        subject, s = f"service {service}", self._script_for(service, obj)
        if s.fail_create:
            raise EngineError(subject, s.fail_create)
        if obj["image_id"] not in self.images:
            raise EngineError(subject, f"No such image: {obj['image_id']}")
        self._check_wiring(subject, wiring)
        self._check_name(subject, name)
        for m in obj["volumes"]:
            self._check_mount(subject, m, wiring)
        try:
            for _, source in formats.file_mounts(obj):
                if not os.path.isfile(source):          # as Docker: a bind's source must exist
                    raise EngineError(subject, f"invalid mount config for type \"bind\": bind source path "
                                               f"does not exist: {source}")
        except ValueError as e:
            raise EngineError(subject, str(e)) from None
        cid = hashlib.sha256(f"{next(self._ids)}:{name}".encode()).hexdigest()
        labels = {**obj["labels"], **container_labels(profile, service, h, manifest, replica)}
        networks = {} if wiring.network_mode else {n: list(a) for n, a in wiring.networks.items()}
        self.containers[cid] = Container(cid, name, labels, obj, networks, wiring.network_mode, dict(wiring.volumes))
        return cid

    def _check_wiring(self, subject: str, wiring: Wiring) -> None:
        mode = wiring.network_mode or ""
        if mode.startswith("container:") and self._find(mode.partition(":")[2]) is None:
            raise EngineError(subject, f"No such container: {mode.partition(':')[2]}")
        for network in [] if mode else wiring.networks:
            if network not in self.networks:
                raise EngineError(subject, f"network {network} not found")

    def _check_name(self, subject: str, name: str) -> None:
        taken = self._find(name)
        if taken:
            raise EngineError(subject, f'Conflict. The container name "/{name}" is already in use by container '
                                       f'"{taken.id}". You have to remove (or rename) that container to be able '
                                       'to reuse that name.')

    def _check_mount(self, subject: str, m: dict, wiring: Wiring) -> None:
        if m["type"] == "volume":               # Docker creates a missing volume, named or anonymous
            volume = wiring.volumes.get(m["source"]) if m["source"] else wiring.anonymous.get(m["target"])
            if not volume:
                raise EngineError(subject, f"volume for {m['target']} is not wired to an engine volume")
            self.volumes.setdefault(volume, {})
        elif m["type"] == "bind" and m.get("create_host_path") is False and not os.path.exists(m["source"]):
            raise EngineError(subject, f"invalid mount config for type \"bind\": bind source path does not "
                                       f"exist: {m['source']}")

    def _find(self, name_or_id: str) -> Container | None:
        return next((c for c in self.containers.values() if name_or_id in (c.name, c.id)), None)

    @logged
    def rename(self, cid: str, name: str) -> None:
        c = self._get(cid)
        if c.name == name:
            raise EngineError(f"container {name}", "Renaming a container with the same name as its current name")
        self._check_name(f"container {name}", name)
        c.name = name

    @logged
    def start(self, cid: str) -> None:
        c = self._get(cid)
        if c.state == "running":
            return                                  # Docker: 304 not modified
        if c.state == "paused":
            c.state = "running"                     # the contract: start() of a paused container unpauses it
            return
        s = self._script(c)
        if s.fail_start:
            raise EngineError(f"container {cid[:12]}", s.fail_start)
        missing = [n for n in c.networks if n not in self.networks]
        if missing:
            raise EngineError(f"container {cid[:12]}", f"network {missing[0]} not found")
        owner = (c.network_mode or "").partition("container:")[2]
        if owner and getattr(self._find(owner), "state", None) != "running":
            raise EngineError(f"container {cid[:12]}", f"cannot join network of a non running container: {owner}")
        wanted = c.publishes()
        for other in self.containers.values():
            held = [p for p in other.host_ports for w in wanted if _clash(p, w)] if other is not c else []
            if held:
                ip, port, proto = held[0]
                raise EngineError(f"container {cid[:12]}", f"driver failed programming external connectivity on "
                                  f"endpoint {c.name}: Bind for {ip}:{port}/{proto} failed: port is already allocated")
        c.state, c.host_ports, c.restart_count, c.fresh = "running", wanted, 0, True
        c.health = "starting" if c.checked else None
        c.log.extend(s.logs.splitlines())

    @logged
    def stop(self, cid: str, grace_ms: int | None) -> None:
        c = self.containers.get(cid)
        if c is not None and c.state in ("running", "restarting", "paused"):
            c.state, c.exit_code, c.host_ports, c.health, c.fresh = "exited", 0, frozenset(), None, False

    @logged
    def remove(self, cid: str) -> None:
        """Forced, like DockerEngine.remove: a running container is killed first. Volumes stay."""
        self.containers.pop(cid, None)

    def pause(self, cid: str) -> None:
        """`docker pause`, done behind gen's back (not part of the Engine interface): ports stay bound."""
        c = self._get(cid)
        if c.state == "running":
            c.state = "paused"


def _check_owner(kind: str, name: str, found: dict[str, str], wanted: dict[str, str]) -> None:
    owner = found.get(LABEL_PROFILE)
    if owner != wanted[LABEL_PROFILE]:
        raise NotOwned(kind, name, owner, wanted[LABEL_PROFILE])
