"""One Docker engine behind gen's Engine interface (gen.engine.base): the only module that imports `docker`.

It speaks gen's vocabulary (Observed containers, ContainerDetails, service objects) and translates
every Docker error into gen's own errors at this boundary, so a second backend (Swarm, a fleet of
remote engines) is a new module beside this one, not a rewrite of the transaction.
"""
from __future__ import annotations

import functools
import re
import time

import docker
import docker.errors
import requests.exceptions
from docker.types import Mount

from gen.errors import EngineError, EngineUnavailable, ImageMissing, NotOwned
from gen.engine.base import DEFAULT_HEALTH_TIMEOUT_MS, ContainerDetails
from gen.model import formats
from gen.model.naming import LABEL_HASH, LABEL_PROFILE, LABEL_REPLICA, LABEL_SERVICE, container_labels
from gen.model.plan import Observed

API_VERSION = "1.41"   # Docker 20.10; newer engines still serve it, and fixing it saves a round trip
_EXITED = re.compile(r"Exited \((-?\d+)\)")
_NS_PER_MS = 1_000_000


def _translated(subject_of):
    """Decorator: run a Docker call, turning Docker's exceptions into gen's errors about `subject`."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(self, *args, **kwargs):
            subject = subject_of(*args) if callable(subject_of) else subject_of
            try:
                return fn(self, *args, **kwargs)
            except (requests.exceptions.RequestException, docker.errors.DockerException) as e:
                raise _translate(subject, e) from None
        return inner
    return wrap


def _translate(subject: str, e: Exception) -> Exception:
    if isinstance(e, requests.exceptions.Timeout):
        return EngineUnavailable("docker engine", f"did not answer in time ({_short(e)}); is dockerd hung?")
    if isinstance(e, requests.exceptions.ConnectionError) or "Connection aborted" in str(e) \
            or "No such file or directory" in str(e) and "sock" in str(e):
        return EngineUnavailable("docker engine", f"not reachable ({_short(e)}); is dockerd running?")
    if isinstance(e, docker.errors.APIError):
        return EngineError(subject, e.explanation or str(e))
    return EngineError(subject, _short(e))


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


class DockerEngine:
    """A connection to one Docker engine (implements gen.engine.base.Engine)."""

    def __init__(self, client: docker.APIClient):
        self.api = client

    @classmethod
    def from_env(cls, timeout: float = 120) -> "DockerEngine":
        try:
            kwargs = docker.utils.kwargs_from_env()
            client = docker.APIClient(version=API_VERSION, timeout=timeout, max_pool_size=32, **kwargs)
            client.ping()
        except (requests.exceptions.RequestException, docker.errors.DockerException) as e:
            raise EngineUnavailable("docker engine", f"not reachable ({_short(e)}); is dockerd running?") from None
        return cls(client)

    # -- images ---------------------------------------------------------------------------------
    def image_id(self, ref: str, subject: str) -> str:
        """The engine's ID for an image reference; ImageMissing when absent (nothing is pulled)."""
        try:
            return self.api.inspect_image(ref)["Id"]
        except docker.errors.ImageNotFound:
            raise ImageMissing(subject, ref) from None
        except docker.errors.NotFound:
            raise ImageMissing(subject, ref) from None
        except (requests.exceptions.RequestException, docker.errors.DockerException) as e:
            raise _translate(subject, e) from None

    # -- image pins: gen-owned tags that keep kept generations' images out of `docker image prune` --
    @_translated(lambda image_id, repo, tag: f"image pin {repo}:{tag}")
    def pin_image(self, image_id: str, repo: str, tag: str) -> None:
        """Tag image_id as repo:tag (idempotent; moves the tag if it named another image)."""
        try:
            if not self.api.tag(image_id, repo, tag, force=True):
                raise docker.errors.DockerException(f"the engine refused to tag {image_id}")
        except docker.errors.NotFound:
            raise ImageMissing(f"image pin {repo}:{tag}", image_id) from None

    @_translated(lambda ref: f"image pin {ref}")
    def unpin_image(self, ref: str) -> bool:
        """Remove the tag `ref` (never forced, so a tag a container relies on stays). Docker has no
        untag-only call: when `ref` was the image's last reference and no container uses the image,
        the engine deletes the image too. Returns True in that case; an absent tag is not an error."""
        try:
            records = self.api.remove_image(ref, force=False, noprune=True)
        except docker.errors.NotFound:
            return False
        return any("Deleted" in r for r in records or [])

    @_translated("docker engine")
    def pinned_images(self, repo_prefix: str) -> list[tuple[str, str]]:
        """(ref, image id) for every tag whose repository starts with repo_prefix, sorted by ref."""
        return sorted((ref, row["Id"]) for row in self.api.images()
                      for ref in row.get("RepoTags") or [] if ref.startswith(repo_prefix))

    # -- observation ----------------------------------------------------------------------------
    @_translated("docker engine")
    def observe(self, profile: str) -> list[Observed]:
        """Every container labelled with this profile, in one engine call."""
        rows = self.api.containers(all=True, filters={"label": [f"{LABEL_PROFILE}={profile}"]})
        return [_observed(r) for r in rows]

    @_translated(lambda cid: f"container {cid[:12]}")
    def inspect(self, cid: str) -> ContainerDetails:
        return container_details(self.api.inspect_container(cid))

    @_translated(lambda cid, *_: f"container {cid[:12]}")
    def logs(self, cid: str, tail: int = 10) -> str:
        return self.api.logs(cid, stdout=True, stderr=True, tail=tail).decode("utf-8", "replace")

    # -- networks and volumes -------------------------------------------------------------------
    @_translated(lambda name, *_: f"network {name}")
    def ensure_network(self, name: str, labels: dict[str, str]) -> bool:
        found = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
        if found:
            _check_owner("network", name, found[0].get("Labels"), labels)
            return False
        try:
            self.api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
        except docker.errors.APIError as e:
            if e.status_code != 409:     # created concurrently by another process of this profile: fine
                raise
            return False
        return True

    @_translated(lambda name, *_: f"volume {name}")
    def ensure_volume(self, name: str, labels: dict[str, str], external: bool = False) -> None:
        try:
            found = self.api.inspect_volume(name)
        except docker.errors.NotFound:
            if external:
                raise EngineError(f"volume {name}", "is declared external but does not exist "
                                  f"(create it first: docker volume create {name})") from None
            self.api.create_volume(name, labels=labels)
            return
        if not external:
            _check_owner("volume", name, found.get("Labels"), labels)

    @_translated(lambda name: f"network {name}")
    def remove_network(self, name: str) -> None:
        for n in self.api.networks(names=[name]):
            if n["Name"] == name:
                self.api.remove_network(n["Id"])

    # -- containers -----------------------------------------------------------------------------
    @_translated(lambda *a: f"service {a[1]}")
    def create(self, profile: str, service: str, obj: dict, h: str, manifest: str, replica: int,
               name: str, network: str, volumes: dict[str, str]) -> str:
        """Create (not start) a container for one replica of a service object; returns its id."""
        host_config = self.api.create_host_config(
            port_bindings=_port_bindings(obj["ports"]),
            mounts=[_mount(v, volumes) for v in obj["volumes"]] + _file_mounts(service, obj),
            restart_policy=_restart_policy(obj["restart"]),
            network_mode=network,
        )
        networking = self.api.create_networking_config(
            {network: self.api.create_endpoint_config(aliases=[service])})
        created = self.api.create_container(
            image=obj["image_id"], name=name, command=obj["command"], entrypoint=obj["entrypoint"],
            environment=obj["env"], labels={**obj["labels"], **container_labels(profile, service, h, manifest, replica)},
            user=obj["user"], working_dir=obj["working_dir"],
            ports=[(p["container_port"], p["protocol"]) for p in obj["ports"]],
            healthcheck=_healthcheck(obj["healthcheck"]), host_config=host_config,
            networking_config=networking, stop_timeout=_grace_seconds(obj["stop_grace_ms"]), detach=True)
        return created["Id"]

    @_translated(lambda cid: f"container {cid[:12]}")
    def start(self, cid: str) -> None:
        try:
            self.api.start(cid)
        except docker.errors.APIError as e:
            # `docker pause`d behind gen's back: Docker refuses a start (409) and wants an unpause.
            if e.status_code != 409 or "paused" not in str(e.explanation):
                raise
            self.api.unpause(cid)

    @_translated(lambda cid, *_: f"container {cid[:12]}")
    def stop(self, cid: str, grace_ms: int | None) -> None:
        """Stop with a grace period; None uses the container's own (the stop_grace it was created with)."""
        try:
            self.api.stop(cid, timeout=None if grace_ms is None else _grace_seconds(grace_ms))
        except docker.errors.NotFound:
            pass

    @_translated(lambda cid: f"container {cid[:12]}")
    def remove(self, cid: str) -> None:
        """Remove a container. v=False: anonymous volumes are data too, never deleted by gen."""
        try:
            self.api.remove_container(cid, force=True, v=False)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if e.status_code != 409 or "already in progress" not in str(e.explanation):
                raise
            self._wait_gone(cid)   # a removal asked for by an earlier (killed) gen is still running

    # -- early health probes (see gen.deploy.health.Probe) -------------------------------------------
    @_translated(lambda cid, *_: f"container {cid[:12]}")
    def probe_start(self, cid: str, argv: list[str], user: str) -> str:
        """Start argv inside the container, detached, as Docker runs a healthcheck; returns the exec id."""
        exec_id = self.api.exec_create(cid, argv, stdout=False, stderr=False, user=user)["Id"]
        self.api.exec_start(exec_id, detach=True)
        return exec_id

    @_translated(lambda exec_id: f"health probe {exec_id[:12]}")
    def probe_result(self, exec_id: str) -> int | None:
        """The probe's exit code, or None while it runs."""
        info = self.api.exec_inspect(exec_id)
        return None if info["Running"] or info["ExitCode"] is None else info["ExitCode"]

    def _wait_gone(self, cid: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.api.inspect_container(cid)
            except docker.errors.NotFound:
                return
            time.sleep(0.1)
        raise EngineError(f"container {cid[:12]}", f"still being removed after {timeout_s:g}s")


def _check_owner(kind: str, name: str, found: dict | None, wanted: dict[str, str]) -> None:
    owner = (found or {}).get(LABEL_PROFILE)
    if owner != wanted[LABEL_PROFILE]:
        raise NotOwned(kind, name, owner, wanted[LABEL_PROFILE])


def _observed(row: dict) -> Observed:
    labels = row.get("Labels") or {}
    status = row.get("Status") or ""
    exited = _EXITED.search(status)
    return Observed(
        id=row["Id"], name=(row.get("Names") or ["/?"])[0].lstrip("/"),
        service=labels.get(LABEL_SERVICE, ""), hash=labels.get(LABEL_HASH, ""),
        replica=int(labels.get(LABEL_REPLICA, "1") or 1),
        state=row.get("State", ""), health=_health(status),
        exit_code=int(exited.group(1)) if exited else None, image_id=row.get("ImageID", ""),
        host_ports=frozenset((p.get("IP", ""), p["PublicPort"], p.get("Type", "tcp"))
                             for p in row.get("Ports") or [] if p.get("PublicPort")),
    )


def container_details(info: dict) -> ContainerDetails:
    """Docker's inspect document, reduced to what the health gate reads."""
    state = info.get("State") or {}
    config = info.get("Config") or {}
    check = config.get("Healthcheck") or {}
    last = ((state.get("Health") or {}).get("Log") or [{}])[-1]
    return ContainerDetails(
        id=info.get("Id", ""), running=bool(state.get("Running")), restarting=bool(state.get("Restarting")),
        exit_code=state.get("ExitCode"), restart_count=info.get("RestartCount") or 0, user=config.get("User") or "",
        health_test=tuple(check.get("Test") or ()),
        health_timeout_ms=(check.get("Timeout") or DEFAULT_HEALTH_TIMEOUT_MS * _NS_PER_MS) // _NS_PER_MS,
        last_check_exit=last.get("ExitCode"), last_check_output=last.get("Output") or "")


def _health(status: str) -> str | None:
    if "(healthy)" in status:
        return "healthy"
    if "(unhealthy)" in status:
        return "unhealthy"
    if "(health: starting)" in status:
        return "starting"
    return None


def _port_bindings(ports: list[dict]) -> dict:
    bindings: dict[str, list] = {}
    for p in ports:
        target = (p["host_ip"], p["host_port"]) if p["host_ip"] else p["host_port"]
        bindings.setdefault(f"{p['container_port']}/{p['protocol']}", []).append(target)
    return bindings


def _mount(v: dict, volumes: dict[str, str]) -> Mount:
    source = volumes[v["source"]] if v["type"] == "volume" else v["source"]
    return Mount(target=v["target"], source=source, type=v["type"], read_only=v["read_only"])


def _file_mounts(service: str, obj: dict) -> list[Mount]:
    """Secrets and config files, read-only: a pinned one from the copy gen.deploy.materialize wrote, a
    format 1 secret from its own file, as the gen that wrote the object did (formats.file_mounts)."""
    try:
        return [Mount(target=target, source=source, type="bind", read_only=True)
                for target, source in formats.file_mounts(obj)]
    except ValueError as e:
        raise EngineError(f"service {service}", str(e)) from None


def _restart_policy(restart: str) -> dict:
    name, _, count = restart.partition(":")
    policy = {"Name": name}
    if count:
        policy["MaximumRetryCount"] = int(count)
    return policy


def _healthcheck(hc: dict | None) -> dict | None:
    if hc is None:
        return None
    return {"test": hc["test"], "interval": hc["interval_ms"] * _NS_PER_MS,
            "timeout": hc["timeout_ms"] * _NS_PER_MS, "retries": hc["retries"],
            "start_period": hc["start_period_ms"] * _NS_PER_MS}


def _grace_seconds(ms: int) -> int:
    # Docker's stop timeout is whole seconds; round up so a grace period is never cut short.
    return -(-ms // 1000)
