"""A Docker Swarm, through one of its managers: the services, tasks, secrets, configs and overlay
networks of a profile. gen.deploy.swarm runs its transaction on it.

It speaks to the manager with the Docker SDK's low-level client that gen.engine.docker made (the only
module that imports `docker`), and translates every error at this boundary (gen.engine.dockererrors):
an unreachable manager is EngineUnavailable, a refused call an EngineError naming what it was about,
a service, secret or config of the same name that gen does not own NotOwned.
"""
from __future__ import annotations

import contextlib
import os

import requests.exceptions

from gen.engine.docker import DockerEngine
from gen.engine.dockererrors import check_owner, translate
from gen.engine.swarmstate import ObservedService, Task, node_names, observed_service, task
from gen.errors import EngineError
from gen.model.naming import LABEL_PROFILE

FILE_KINDS = ("secret", "config")


@contextlib.contextmanager
def _errors(subject: str):
    try:
        yield
    except requests.exceptions.RequestException as e:       # the SDK's APIError is one
        raise translate(subject, e) from None


def _missing(e: Exception) -> bool:
    return getattr(e, "status_code", None) == 404


class SwarmEngine:
    """A Swarm manager's API (implements what gen.deploy.swarm needs)."""

    def __init__(self, docker: DockerEngine):
        self.docker = docker            # the manager as a Docker engine: images, pins, networks
        self.api = docker.api

    @classmethod
    def of(cls, docker: DockerEngine, where: str = "DOCKER_HOST") -> "SwarmEngine":
        """The Swarm whose manager `docker` is; EngineError (exit 1) when it is no manager."""
        with _errors("docker engine"):
            swarm = docker.api.info().get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            state = swarm.get("LocalNodeState") or "inactive"
            role = "a worker" if state == "active" else f"not in a swarm ({state})"
            raise EngineError(f"docker engine {os.environ.get('DOCKER_HOST') or docker.api.base_url}",
                              f"is {role}: a Swarm target needs {where} to name a Swarm manager")
        return cls(docker)

    # -- services and tasks ------------------------------------------------------------------------
    def services(self, profile: str) -> list[ObservedService]:
        with _errors("docker swarm"):
            rows = self.api.services(filters={"label": f"{LABEL_PROFILE}={profile}"})
        return sorted((observed_service(r) for r in rows), key=lambda s: s.name)

    def owner_of_service(self, name: str) -> tuple[bool, str | None]:
        """(a service of that name exists, its gen.profile label)."""
        with _errors(f"service {name}"):
            rows = [r for r in self.api.services(filters={"name": name}) if r["Spec"]["Name"] == name]
        return bool(rows), (rows[0]["Spec"].get("Labels") or {}).get(LABEL_PROFILE) if rows else None

    def tasks(self, service_ids: list[str]) -> list[Task]:
        if not service_ids:
            return []
        with _errors("docker swarm"):
            return [task(r) for r in self.api.tasks(filters={"service": list(service_ids)})]

    def nodes(self) -> dict[str, str]:
        with _errors("docker swarm"):
            return node_names(self.api.nodes())

    def create_service(self, spec: dict) -> str:
        with _errors(f"service {spec['Name']}"):
            return self.api.create_service(spec["TaskTemplate"], name=spec["Name"], labels=spec["Labels"],
                                           mode=spec["Mode"], update_config=spec["UpdateConfig"],
                                           endpoint_spec=spec["EndpointSpec"])["ID"]

    def update_service(self, service_id: str, spec: dict) -> None:
        """Replace the service's definition; the version is read right before, as Swarm requires."""
        with _errors(f"service {spec['Name']}"):
            version = self.api.inspect_service(service_id)["Version"]["Index"]
            self.api.update_service(service_id, version, task_template=spec["TaskTemplate"], name=spec["Name"],
                                    labels=spec["Labels"], mode=spec["Mode"], update_config=spec["UpdateConfig"],
                                    endpoint_spec=spec["EndpointSpec"])

    def remove_service(self, service_id: str, name: str) -> None:
        with _errors(f"service {name}"):
            try:
                self.api.remove_service(service_id)
            except requests.exceptions.HTTPError as e:
                if not _missing(e):
                    raise

    # -- secrets and configs: immutable, named by content ---------------------------------------------
    def ensure_file(self, kind: str, name: str, data: bytes, labels: dict[str, str]) -> tuple[str, bool]:
        """(its ID, whether it was created now). One of that name is the same content (the name is the
        content's hash), so an existing one of the profile is used as it is; another's is refused."""
        with _errors(f"{kind} {name}"):
            found = [r for r in self._files(kind, {"name": name}) if r["Spec"]["Name"] == name]
            if found:
                check_owner(kind, name, found[0]["Spec"].get("Labels"), labels)
                return found[0]["ID"], False
            create = self.api.create_secret if kind == "secret" else self.api.create_config
            return create(name, data, labels=labels)["ID"], True

    def files(self, kind: str, profile: str) -> list[tuple[str, str]]:
        """(ID, name) of the profile's secrets or configs."""
        with _errors(f"{kind}s"):
            return sorted((r["ID"], r["Spec"]["Name"]) for r in self._files(kind, {"label": f"{LABEL_PROFILE}={profile}"}))

    def remove_file(self, kind: str, file_id: str, name: str) -> None:
        with _errors(f"{kind} {name}"):
            try:
                (self.api.remove_secret if kind == "secret" else self.api.remove_config)(file_id)
            except requests.exceptions.HTTPError as e:
                if not _missing(e):
                    raise

    def _files(self, kind: str, filters: dict) -> list[dict]:
        return (self.api.secrets if kind == "secret" else self.api.configs)(filters=filters)

    # -- overlay networks ---------------------------------------------------------------------------
    def ensure_network(self, name: str, labels: dict[str, str], definition: dict, external: bool = False) -> bool:
        return self.docker.ensure_network(name, labels, definition, external)

    def remove_network(self, name: str) -> None:
        self.docker.remove_network(name)

    def networks(self, profile: str) -> list[str]:
        """Names of the profile's Swarm-scoped networks."""
        with _errors("docker swarm"):
            rows = self.api.networks(filters={"label": f"{LABEL_PROFILE}={profile}", "scope": "swarm"})
        return sorted(r["Name"] for r in rows)

    # -- images ---------------------------------------------------------------------------------------
    def push(self, image_id: str, repository: str, progress=None) -> str:
        """Tag the manager's image `image_id` as REPOSITORY:gen-<id> and push it; the pushed
        reference by digest ("repository@sha256:...")."""
        tag = f"gen-{image_id.removeprefix('sha256:')[:32]}"
        with _errors(f"image {image_id[:19]}"):
            if not self.api.tag(image_id, repository, tag, force=True):
                raise EngineError(f"image {image_id[:19]}", f"the engine refused to tag it as {repository}:{tag}")
        return self.docker.push(f"{repository}:{tag}", f"image {repository}:{tag}", progress)
