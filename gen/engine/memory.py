"""An Engine (gen.engine.base) held in memory: a small, faithful simulation of one Docker engine, for
unit tests of the transaction without Docker (in the spirit of dulwich's MemoryObjectStore).

It keeps Docker's rules that the transaction relies on: container names are unique (a second create
with a taken name is a 409-like EngineError); a host port is bound only while its container runs, and
starting a container whose port another running container holds fails ("port is already allocated");
stop and remove of an absent container are not errors; remove never removes a volume; a network with
running containers on it cannot be removed; a manual start resets the restart count; an exit under a
restart policy that restarts it shows as "restarting"; a paused container (pause(), done behind gen's
back) cannot be started; create() makes a missing named volume, as Docker does.

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

import functools
import hashlib
import itertools
import os
import threading
from dataclasses import dataclass, field

from gen.engine.base import DEFAULT_HEALTH_TIMEOUT_MS, ContainerDetails
from gen.errors import EngineError, ImageMissing, NotOwned
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
    logs: str = ""                    # what the container prints each time it starts


@dataclass
class Container:
    id: str
    name: str
    labels: dict[str, str]
    obj: ServiceObject
    network: str
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
        return frozenset((p["host_ip"] or "0.0.0.0", p["host_port"], p["protocol"]) for p in self.obj["ports"])


def _clash(a: tuple, b: tuple) -> bool:
    return a[1:] == b[1:] and (a[0] == b[0] or a[0] in _ANY_IP or b[0] in _ANY_IP)


def _logged(fn):
    """Log the call as (verb, args) and hold the engine's lock while it runs."""
    @functools.wraps(fn)
    def inner(self, *args, **kwargs):
        with self._lock:
            self.calls.append((fn.__name__, args + tuple(kwargs.values())))
            return fn(self, *args, **kwargs)
    return inner


class MemoryEngine:
    """One simulated engine (implements gen.engine.base.Engine). Its state is public for tests:
    images (id set), tags (ref -> id), containers (id -> Container), networks and volumes (name -> labels)."""

    def __init__(self, images: dict[str, str] | None = None):
        self.tags: dict[str, str] = dict(images or {})
        self.images: set[str] = set(self.tags.values())
        self.containers: dict[str, Container] = {}
        self.networks: dict[str, dict[str, str]] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, tuple]] = []
        self.scripts: dict[str, Script] = {}
        self._probes: dict[str, int | None] = {}
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

    # -- images ---------------------------------------------------------------------------------
    @_logged
    def image_id(self, ref: str, subject: str) -> str:
        if ref in self.images:
            return ref
        if ref in self.tags:
            return self.tags[ref]
        raise ImageMissing(subject, ref)

    @_logged
    def pin_image(self, image_id: str, repo: str, tag: str) -> None:
        if image_id not in self.images:
            raise ImageMissing(f"image pin {repo}:{tag}", image_id)
        self.tags[f"{repo}:{tag}"] = image_id

    @_logged
    def unpin_image(self, ref: str) -> bool:
        """Drop the tag; like Docker, the image goes with its last tag unless a container uses it."""
        image = self.tags.pop(ref, None)
        if image is None or image in self.tags.values() or any(
                c.obj["image_id"] == image for c in self.containers.values()):
            return False
        self.images.discard(image)
        return True

    @_logged
    def pinned_images(self, repo_prefix: str) -> list[tuple[str, str]]:
        return sorted((ref, i) for ref, i in self.tags.items() if ref.startswith(repo_prefix))

    # -- observation ----------------------------------------------------------------------------
    @_logged
    def observe(self, profile: str) -> list[Observed]:
        """Every container labelled with this profile, newest first; fresh ones play out their script."""
        for c in self.containers.values():
            if c.fresh:
                self._play(c)
        return [Observed(id=c.id, name=c.name, service=c.labels.get(LABEL_SERVICE, ""),
                         hash=c.labels.get(LABEL_HASH, ""), replica=int(c.labels.get(LABEL_REPLICA, "1")),
                         state=c.state, health=c.health if c.state == "running" else None,
                         exit_code=c.exit_code if c.state == "exited" else None,
                         image_id=c.obj["image_id"], host_ports=c.host_ports)
                for c in reversed(self.containers.values()) if c.labels.get(LABEL_PROFILE) == profile]

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

    @_logged
    def inspect(self, cid: str) -> ContainerDetails:
        c = self._get(cid)
        hc = c.obj["healthcheck"] or {}
        return ContainerDetails(
            id=c.id, running=c.state == "running", restarting=c.state == "restarting", exit_code=c.exit_code,
            restart_count=c.restart_count, user=c.obj["user"] or "", health_test=tuple(hc.get("test") or ()),
            health_timeout_ms=hc.get("timeout_ms", DEFAULT_HEALTH_TIMEOUT_MS), last_check_exit=c.last_check)

    @_logged
    def logs(self, cid: str, tail: int = 10) -> str:
        return "".join(line + "\n" for line in self._get(cid).log[-tail:])

    # -- networks and volumes -------------------------------------------------------------------
    @_logged
    def ensure_network(self, name: str, labels: dict[str, str]) -> bool:
        if name in self.networks:
            _check_owner("network", name, self.networks[name], labels)
            return False
        self.networks[name] = dict(labels)
        return True

    @_logged
    def ensure_volume(self, name: str, labels: dict[str, str], external: bool = False) -> None:
        if name not in self.volumes:
            if external:
                raise EngineError(f"volume {name}", "is declared external but does not exist")
            self.volumes[name] = dict(labels)
        elif not external:
            _check_owner("volume", name, self.volumes[name], labels)

    @_logged
    def remove_network(self, name: str) -> None:
        users = [c.name for c in self.containers.values() if c.network == name and c.state == "running"]
        if users:
            raise EngineError(f"network {name}", f"error while removing network: network {name} has active endpoints")
        self.networks.pop(name, None)

    # -- containers -----------------------------------------------------------------------------
    @_logged
    def create(self, profile: str, service: str, obj: ServiceObject, h: str, manifest: str, replica: int,
               name: str, network: str, volumes: dict[str, str]) -> str:
        subject, s = f"service {service}", self._script_for(service, obj)
        if s.fail_create:
            raise EngineError(subject, s.fail_create)
        if obj["image_id"] not in self.images:
            raise EngineError(subject, f"No such image: {obj['image_id']}")
        if network not in self.networks:
            raise EngineError(subject, f"network {network} not found")
        taken = next((c for c in self.containers.values() if c.name == name), None)
        if taken:
            raise EngineError(subject, f'Conflict. The container name "/{name}" is already in use by container '
                                       f'"{taken.id}". You have to remove (or rename) that container to be able '
                                       'to reuse that name.')
        for m in obj["volumes"]:
            if m["type"] == "volume":
                self.volumes.setdefault(volumes[m["source"]], {})    # Docker creates a missing named volume
        try:
            for _, source in formats.file_mounts(obj):
                if not os.path.isfile(source):          # as Docker: a bind's source must exist
                    raise EngineError(subject, f"invalid mount config for type \"bind\": bind source path "
                                               f"does not exist: {source}")
        except ValueError as e:
            raise EngineError(subject, str(e)) from None
        cid = hashlib.sha256(f"{next(self._ids)}:{name}".encode()).hexdigest()
        labels = {**obj["labels"], **container_labels(profile, service, h, manifest, replica)}
        self.containers[cid] = Container(cid, name, labels, obj, network, dict(volumes))
        return cid

    @_logged
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
        if c.network not in self.networks:
            raise EngineError(f"container {cid[:12]}", f"network {c.network} not found")
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

    @_logged
    def stop(self, cid: str, grace_ms: int | None) -> None:
        c = self.containers.get(cid)
        if c is not None and c.state in ("running", "restarting", "paused"):
            c.state, c.exit_code, c.host_ports, c.health, c.fresh = "exited", 0, frozenset(), None, False

    @_logged
    def remove(self, cid: str) -> None:
        """Forced, like DockerEngine.remove: a running container is killed first. Volumes stay."""
        self.containers.pop(cid, None)

    def pause(self, cid: str) -> None:
        """`docker pause`, done behind gen's back (not part of the Engine interface): ports stay bound."""
        c = self._get(cid)
        if c.state == "running":
            c.state = "paused"

    # -- early health probes --------------------------------------------------------------------
    @_logged
    def probe_start(self, cid: str, argv: list[str], user: str) -> str:
        """Runs nothing: the probe's result is the container's scripted one (see Script.probe)."""
        c = self._get(cid)
        if c.state != "running":
            raise EngineError(f"container {cid[:12]}", f"Container {cid} is not running")
        s = self._script(c)
        code = s.probe if s.probe is not None else 0 if s.health == "healthy" else 1
        probe_id = f"probe-{len(self._probes) + 1}"
        self._probes[probe_id] = None if code == "hang" else code
        return probe_id

    @_logged
    def probe_result(self, probe_id: str) -> int | None:
        if probe_id not in self._probes:
            raise EngineError(f"health probe {probe_id[:12]}", f"No such exec instance: {probe_id}")
        return self._probes[probe_id]


def _check_owner(kind: str, name: str, found: dict[str, str], wanted: dict[str, str]) -> None:
    owner = found.get(LABEL_PROFILE)
    if owner != wanted[LABEL_PROFILE]:
        raise NotOwned(kind, name, owner, wanted[LABEL_PROFILE])
