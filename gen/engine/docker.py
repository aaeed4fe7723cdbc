"""One Docker engine behind gen's Engine interface (gen.engine.base): the only module that imports `docker`.

It speaks gen's vocabulary (Observed containers, ContainerDetails, service objects) and translates
every Docker error into gen's own errors at this boundary, so a second backend (Swarm, a fleet of
remote engines) is a new module beside this one, not a rewrite of the transaction.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Collection, Iterable, Iterator

import gen.engine.lazyimport  # noqa: F401  first: paramiko, which the SDK imports for ssh:// alone, loads on first use
import docker.errors  # binds `docker` too
import requests.exceptions
from docker.types import IPAMConfig, IPAMPool

from gen.errors import BuildFailed, EngineError, EngineUnavailable, ImageMissing
from gen.engine.base import ContainerDetails, ImageInfo, Progress, Wiring
from gen.engine.dockerarchive import ARCHIVE_CHUNK, LoadLog, Relay
from gen.engine.dockererrors import check_owner, missing_external, short, translate
from gen.engine.dockerevents import EventWatch, cancellable
from gen.engine.dockernetworks import mend_start
from gen.engine.dockerconfig import container_args, grace_seconds, network_create_args
from gen.engine.dockerinspect import container_details, image_info, list_filters, observed
from gen.engine.dockerstream import BuildLog, TransferLog, split_reference
from gen.model.plan import Observed

API_VERSION = "1.41"   # Docker 20.10; newer engines still serve it, and fixing it saves a round trip
__all__ = ["API_VERSION", "DockerEngine", "container_details"]


def _translated(subject_of):
    """Decorator: run a Docker call, turning Docker's exceptions into gen's errors about `subject`."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(self, *args, **kwargs):
            with _engine_errors(subject_of(*args) if callable(subject_of) else subject_of, self.where):
                return fn(self, *args, **kwargs)
        return inner
    return wrap


@contextlib.contextmanager
def _engine_errors(subject: str, where: str):
    """Docker's errors as gen's; an engine that does not answer is named as `where` (its host, if given)."""
    try:
        yield
    except (requests.exceptions.RequestException, docker.errors.DockerException) as e:
        error = translate(subject, e)
        raise (EngineUnavailable(where, error.reason) if isinstance(error, EngineUnavailable) else error) from None


class DockerEngine:
    """A connection to one Docker engine (implements gen.engine.base.Engine)."""

    def __init__(self, client: docker.APIClient, where: str = "docker engine"):
        self.api = client
        self.where = where          # "docker engine [HOST]": the subject when it does not answer

    @classmethod
    def from_env(cls, timeout: float = 120, host: str | None = None) -> "DockerEngine":
        """The engine DOCKER_HOST names, or `host` (tcp://, unix://, ssh://user@host: the `ssh` client
        runs `docker system dial-stdio` there, as the docker CLI does), with the environment's TLS.
        Not pinged: the API version is pinned, so the first call is the first contact, and an engine that
        does not answer fails it with EngineUnavailable "not reachable", as a ping would have."""
        where = f"docker engine {host or ''}".strip()
        try:
            kwargs = docker.utils.kwargs_from_env(environment={**os.environ, **({"DOCKER_HOST": host} if host else {})})
            client = docker.APIClient(version=API_VERSION, timeout=timeout, max_pool_size=32,
                                      use_ssh_client=str(kwargs.get("base_url")).startswith("ssh://"), **kwargs)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as e:
            raise EngineUnavailable(where, f"not reachable ({short(e)}); is dockerd running?") from None
        return cls(client, where)

    # -- images ---------------------------------------------------------------------------------
    def image_id(self, ref: str, subject: str) -> str:
        return self.image_info(ref, subject).id

    def image_digests(self, image_id: str) -> list[str]:
        return list(self.image_info(image_id, f"image {image_id[:19]}").repo_digests)

    @_translated(lambda ref, subject: subject)
    def image_info(self, ref: str, subject: str) -> ImageInfo:
        try:
            return image_info(self.api.inspect_image(ref))
        except docker.errors.NotFound:          # ImageNotFound is one
            raise ImageMissing(subject, ref) from None

    def pull(self, ref: str, subject: str, progress: Progress | None = None) -> str:
        """Pull by tag or digest ("repo@sha256:..."); returns the ID of the image `ref` now names."""
        self._transfer("pull", ref, subject, progress,
                       lambda repo, tag: self.api.pull(repo, tag=tag or "latest", stream=True, decode=True))
        return self.image_id(ref, subject)

    def build_image(self, context: str, dockerfile: str, tag: str, args: dict[str, str], target: str | None,
                    labels: dict[str, str], subject: str, progress: Progress | None = None) -> str:
        """Build with Docker's builder (the SDK tars the context, honouring .dockerignore); BuildFailed
        names the last "Step N/M" line seen, the step that failed."""
        log = BuildLog(progress)
        with _engine_errors(subject, self.where):
            try:
                for event in self.api.build(path=context, dockerfile=dockerfile, tag=tag or None, buildargs=args,
                                            target=target, labels=labels, rm=True, forcerm=True, decode=True):
                    log.read(event)
            except docker.errors.APIError as e:
                raise BuildFailed(subject, log.step, short(e.explanation or e)) from None
            except OSError as e:
                if isinstance(e, requests.exceptions.RequestException):
                    raise
                raise BuildFailed(subject, "", f"cannot read the build context {context}: {e}") from None
            if log.error:
                raise BuildFailed(subject, log.step, log.error)
            if not log.image_id and not tag:
                raise BuildFailed(subject, log.step, "the builder reported no image ID")
            return log.image_id or self.api.inspect_image(tag)["Id"]

    @_translated("docker engine")
    def images_labelled(self, key: str, value: str) -> list[str]:
        return sorted({row["Id"] for row in self.api.images(filters={"label": f"{key}={value}"})})

    def push(self, ref: str, subject: str, progress: Progress | None = None) -> str:
        log = self._transfer("push", ref, subject, progress,
                             lambda repo, tag: self.api.push(repo, tag=tag, stream=True, decode=True))
        if not log.digest:
            raise EngineError(subject, f"cannot push {ref}: the registry reported no digest")
        return f"{split_reference(ref)[0]}@{log.digest}"

    def _transfer(self, verb: str, ref: str, subject: str, progress: Progress | None, call) -> TransferLog:
        """Run a pull or a push (`call(repo, tag)` gives its events); EngineError "cannot <verb> <ref>: why"."""
        log = TransferLog(progress)
        with _engine_errors(subject, self.where):
            try:
                for event in call(*split_reference(ref)):
                    log.read(event)
            except docker.errors.APIError as e:
                log.error = short(e.explanation or e)
        if log.error:
            raise EngineError(subject, f"cannot {verb} {ref}: {log.error}")
        return log

    # -- image archives (gen.state.closure): `docker save` / `docker load`, streamed both ways ------
    def has_image(self, image_id: str) -> bool:
        with contextlib.suppress(ImageMissing):
            return self.image_id(image_id, f"image {image_id[:19]}") == image_id
        return False

    def save_image(self, image_id: str) -> Iterator[bytes]:
        if not self.has_image(image_id):        # asked first: Docker answers a missing ID with a 500
            raise ImageMissing(f"image {image_id[:19]}", image_id)
        with _engine_errors(f"image {image_id[:19]}", self.where):
            yield from self.api.get_image(image_id, chunk_size=ARCHIVE_CHUNK)

    def load_image(self, chunks: Iterable[bytes]) -> list[str]:
        relay, log = Relay(chunks), LoadLog()     # the SDK sends chunks as they come: never held whole
        try:
            with _engine_errors("docker load", self.where):
                for event in self.api.load_image(iter(relay), quiet=True):
                    log.read(event)
        except Exception:
            relay.raise_failure()       # the archive's own failure (a damaged blob), not the broken upload
            raise
        if log.error:
            raise EngineError("docker load", f"the engine refused the archive: {log.error}")
        return sorted({*log.ids, *(self.image_id(ref, "docker load") for ref in log.refs)})

    # -- image pins: gen-owned tags that keep kept generations' images out of `docker image prune` --
    @_translated(lambda image_id, repo, tag: f"image pin {repo}:{tag}")
    def pin_image(self, image_id: str, repo: str, tag: str) -> None:
        try:
            if not self.api.tag(image_id, repo, tag, force=True):
                raise docker.errors.DockerException(f"the engine refused to tag {image_id}")
        except docker.errors.NotFound:
            raise ImageMissing(f"image pin {repo}:{tag}", image_id) from None

    @_translated(lambda ref: f"image pin {ref}")
    def unpin_image(self, ref: str) -> bool:
        """Never forced, so a tag a container relies on stays (see Engine.unpin_image)."""
        try:
            records = self.api.remove_image(ref, force=False, noprune=True)
        except docker.errors.NotFound:
            return False
        return any("Deleted" in r for r in records or [])

    @_translated("docker engine")
    def pinned_images(self, repo_prefix: str) -> list[tuple[str, str]]:
        return sorted((ref, row["Id"]) for row in self.api.images()
                      for ref in row.get("RepoTags") or [] if ref.startswith(repo_prefix))

    # -- observation ----------------------------------------------------------------------------
    @_translated("docker engine")
    def observe(self, profile: str, ids: Collection[str] | None = None) -> list[Observed]:
        filters = list_filters(profile, ids)
        return [observed(r) for r in self.api.containers(all=True, filters=filters)] if filters else []

    @_translated(lambda cid: f"container {cid[:12]}")
    def inspect(self, cid: str) -> ContainerDetails:
        return container_details(self.api.inspect_container(cid))

    @_translated(lambda cid, *_: f"container {cid[:12]}")
    def logs(self, cid: str, tail: int = 10) -> str:
        return self.api.logs(cid, stdout=True, stderr=True, tail=tail).decode("utf-8", "replace")

    def watch(self, profile: str) -> EventWatch:        # one thread reading Docker's events (gen.engine.dockerevents)
        return EventWatch(self.api, profile, enabled=cancellable(self.api.base_url))

    # -- networks and volumes -------------------------------------------------------------------
    @_translated(lambda name, *_, **__: f"network {name}")
    def ensure_network(self, name: str, labels: dict[str, str], definition: dict | None = None,
                       external: bool = False) -> bool:
        found = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
        if external and not found:
            raise missing_external("network", name)
        if found:
            if not external:
                check_owner("network", name, found[0].get("Labels"), labels)
            return False
        kwargs, ipam = network_create_args(labels, definition or {})
        if ipam:
            kwargs["ipam"] = IPAMConfig(driver=ipam["driver"], options=ipam["options"],
                                        pool_configs=[IPAMPool(**pool) for pool in ipam["pools"]])
        try:
            self.api.create_network(name, **kwargs)
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
                raise missing_external("volume", name) from None
            self.api.create_volume(name, labels=labels)
            return
        if not external:
            check_owner("volume", name, found.get("Labels"), labels)

    @_translated(lambda name: f"network {name}")
    def remove_network(self, name: str) -> None:
        for n in self.api.networks(names=[name]):
            if n["Name"] == name:
                self.api.remove_network(n["Id"])

    @_translated(lambda profile: f"the networks of profile {profile}")
    def profile_networks(self, profile: str) -> list[str]:      # by their gen.profile label
        return sorted(n["Name"] for n in self.api.networks(filters=list_filters(profile, None)))

    # -- containers -----------------------------------------------------------------------------
    @_translated(lambda *a: f"service {a[1]}")
    def create(self, profile: str, service: str, obj: dict, h: str, manifest: str, replica: int,
               name: str, wiring: Wiring) -> str:
        """Create (not start) one replica, joined to every network of its wiring before it returns."""
        args = container_args(profile, service, obj, h, manifest, replica, wiring, self.api.api_version)
        host = self.api.create_host_config(**args.host)
        host.update(args.host_fields)
        config = self.api.create_container_config(
            **args.config, host_config=host,
            networking_config=self.api.create_networking_config(args.endpoints) if args.endpoints else None)
        config.update(args.config_fields)
        # What create_container does besides: ~/.docker/config.json's proxies reach the environment.
        config["Env"] = self.api._proxy_configs.inject_proxy_environment(config["Env"]) or None
        cid = self.api.create_container_from_config(config, name, args.platform)["Id"]
        try:
            for network, kwargs in args.connects:
                self.api.connect_container_to_network(cid, network, **kwargs)
        except BaseException:
            with contextlib.suppress(Exception):        # never leave a half-wired container behind
                self.api.remove_container(cid, force=True, v=False)
            raise
        return cid

    @_translated(lambda cid, name: f"container {name}")
    def rename(self, cid: str, name: str) -> None:
        self.api.rename(cid, name)

    @_translated(lambda cid: f"container {cid[:12]}")
    def start(self, cid: str) -> None:
        try:
            self.api.start(cid)
        except docker.errors.APIError as e:
            if not mend_start(self.api, cid, e):     # paused, or a network made anew (gen.engine.dockernetworks)
                raise

    @_translated(lambda cid, *_: f"container {cid[:12]}")
    def stop(self, cid: str, grace_ms: int | None) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.api.stop(cid, timeout=None if grace_ms is None else grace_seconds(grace_ms))

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

