"""What a service needs on a Swarm before it is created or updated, made in the prepare phase (nothing
running is touched yet) and recorded for the undo:

    image     its registry digest ("repo@sha256:..."), which every node can pull (the manager pulls it now
              when it lacks it, so the commit can pin it there); else, with a registry
              to push to (the profile's target, `--push-to`), the manager's image pushed there and
              referenced by the digest the push gave; else its image ID, which runs only on nodes
              that have it (the manager must)
    networks  overlay networks of the profile, attachable (gen.engine.swarmspec.network_definition)
    secrets   Swarm secrets and configs named by content, their values read from the store (a secret
    configs   decrypted with the state directory's key, as gen.deploy.materialize does for one engine)

Each is made once per activation. The undo removes what this activation created (a network or file
still in use by something else stays, with a warning).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from gen.deploy.materialize import MaterializeFailed
from gen.deploy.options import Progress
from gen.engine.swarm import SwarmEngine
from gen.engine.swarmspec import Refs, file_name, network_definition
from gen.errors import CorruptState, ImageMissing
from gen.model import formats
from gen.model.naming import LABEL_PROFILE, engine_network_name
from gen.state.images import repository
from gen.state.secrets import key_path, secret_key, unseal
from store import Store, decode

LABEL_OBJECT = "gen.object"     # a Swarm secret's or config's pinned object


@dataclass
class SwarmUndoLog:
    created: list[tuple[str, str]] = field(default_factory=list)          # (service, Swarm service ID)
    updated: list[tuple[str, str, str]] = field(default_factory=list)     # (service, ID, hash it ran before)
    networks: list[str] = field(default_factory=list)
    files: list[tuple[str, str, str]] = field(default_factory=list)       # (kind, ID, name)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, item) -> None:
        with self._lock:
            getattr(self, kind).append(item)


class Resources:
    """The references services are mapped with (gen.engine.swarmspec.Refs), made on the cluster once."""

    def __init__(self, swarm: SwarmEngine, profile: str, store: Store, state_dir: str | None,
                 manifests: list[dict], materials: dict[str, bytes], registry: str | None, progress: Progress,
                 log: SwarmUndoLog):
        """manifests: the target's first, then those of the generations being left (an old service
        restored by the undo finds its networks and volumes there)."""
        self.swarm, self.profile, self.store, self.state_dir = swarm, profile, store, state_dir
        self.materials, self.registry, self.progress, self.log = materials, registry, progress, log
        self.networks: dict[str, dict] = {}
        self.volumes: dict[str, dict] = {}
        for manifest in reversed(manifests):
            self.networks.update(manifest.get("networks", {}))
            self.volumes.update(manifest.get("volumes", {}))
        self._images: dict[str, str] = {}
        self._nets: dict[str, str] = {}
        self._files: dict[str, tuple[str, str]] = {}
        self._key: bytes | None = None

    def refs(self, service: str, obj: dict) -> Refs:
        nets = {net: self.network(net) for net in (obj.get("networks") or {"default": {}})}
        files = {ref["object"]: self.file(kind, ref) for kind, refs in (("secret", obj["secrets"]),
                                                                         ("config", obj.get("configs", ())))
                 for ref in refs}
        volumes = {name: (opts.get("name") or name) if opts.get("external") else f"{self.profile}_{name}"
                   for name, opts in self.volumes.items()}
        return Refs(self.image(service, obj), nets, volumes, {h: f[0] for h, f in files.items()},
                    {h: f[1] for h, f in files.items()})

    # -- images ---------------------------------------------------------------------------------------
    def image(self, service: str, obj: dict) -> str:
        image_id = obj["image_id"]
        if image_id not in self._images:
            if obj.get("image_digest"):
                self._images[image_id] = self._on_manager(service, obj["image_digest"], image_id)
            else:
                self._images[image_id] = self._pushed(service, obj) if self.registry else self._local(service, image_id)
        return self._images[image_id]

    def _on_manager(self, service: str, digest: str, image_id: str) -> str:
        """The nodes pull the digest themselves; the manager has it too (the commit pins it there, and a
        digest no registry serves is found now, before anything runs)."""
        if not self.swarm.docker.has_image(image_id):
            self.progress(service, "pulling", digest)
            self.swarm.docker.pull(digest, f"service {service}", lambda line: self.progress(service, "pulling", line))
        return digest

    def _pushed(self, service: str, obj: dict) -> str:
        repo = f"{self.registry}/{_path_of(obj['image'] or f'{self.profile}-{service}')}"
        self.progress(service, "pushing", f"{obj['image_id'][7:19]} to {repo}")
        ref = self.swarm.push(obj["image_id"], repo, lambda line: self.progress(service, "pushing", line))
        self.progress(service, "pushed", ref)
        return ref

    def _local(self, service: str, image_id: str) -> str:
        if not self.swarm.docker.has_image(image_id):
            raise ImageMissing(f"service {service}", image_id, "on the Swarm manager; its nodes need it: reference "
                               "the image by registry digest, or push it with --push-to REGISTRY")
        return image_id

    # -- networks -------------------------------------------------------------------------------------
    def network_name(self, net: str) -> str:
        return engine_network_name(self.profile, net, self.networks.get(net, {}))

    def network(self, net: str) -> str:
        if net not in self._nets:
            definition = self.networks.get(net, {})
            name = self.network_name(net)
            if definition.get("external"):
                created = self.swarm.ensure_network(name, {LABEL_PROFILE: self.profile}, {}, external=True)
            else:
                created = self.swarm.ensure_network(name, {LABEL_PROFILE: self.profile},
                                                    network_definition(net, definition))
            if created:
                self.log.add("networks", name)
            self._nets[net] = name
        return self._nets[net]

    # -- secrets and configs ----------------------------------------------------------------------------
    def file(self, kind: str, ref: dict) -> tuple[str, str]:
        h = ref["object"]
        if h not in self._files:
            name = file_name(self.profile, ref["name"], h)
            file_id, created = self.swarm.ensure_file(kind, name, self._value(kind, h),
                                                      {LABEL_PROFILE: self.profile, LABEL_OBJECT: h})
            if created:
                self.log.add("files", (kind, file_id, name))
            self._files[h] = (file_id, name)
        return self._files[h]

    def _value(self, kind: str, h: str) -> bytes:
        where = f"object {h}"
        try:
            data = self.materials.get(h) or self.store.get_bytes(h)
            if kind == "config":
                return formats.config_object(decode(data), where)["data"]
            if self.state_dir is None:
                raise CorruptState("secrets", "this deployment has no state directory to read its secrets from")
            if self._key is None:
                self._key = secret_key(Path(self.state_dir))
            return unseal(self._key, formats.secret_object(decode(data), where), where,
                          key_path(Path(self.state_dir))[0])
        except CorruptState as e:       # a missing or wrong key: refused before anything runs (exit 1)
            raise MaterializeFailed(e.subject, e.reason) from None


def _path_of(image: str) -> str:
    """The repository path of an image reference without its registry host: "reg:5000/a/b:1" -> "a/b"."""
    repo = repository(image)
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        repo = rest
    return repo.lower()
