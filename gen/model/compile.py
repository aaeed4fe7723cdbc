"""Compile a validated Spec into store objects: one per service, plus the manifest. Pure: images
and secrets are resolved through the callables it is given; gen.state.manifests writes the result.

The manifest's hash is the generation's identity. Everything here is deterministic: the same spec
(keys in any order) and the same images give byte-identical objects, in any process, on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from gen.errors import SpecError
from gen.model.types import MANIFEST_FORMAT, Manifest, ServiceObject, Spec
from store import digest, encode, hash_value


@dataclass(frozen=True)
class Compiled:
    manifest_hash: str
    manifest: Manifest
    services: dict[str, tuple[str, ServiceObject]]     # name -> (object hash, service object)
    # Service objects' canonical bytes, by hash, kept from hashing for the store write (1,000
    # services would otherwise be encoded twice). Empty for a Compiled loaded from the store.
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


def profile_for(spec: Spec, profile: str | None) -> str:
    if profile:
        return profile
    if spec.name:
        return spec.name
    raise SpecError("name", f"{spec.source} has no `name`; give one in the spec or pass -p NAME")


def compile_spec(spec: Spec, profile: str, resolve_image: Callable[[str, str], str],
                 secret_digest: Callable[[str, str], str] = lambda path, key: "") -> Compiled:
    """resolve_image(ref, key_path) -> image ID, raising when the image is missing;
    secret_digest(file, key_path) -> keyed hash of a secret file's content, raising when unreadable."""
    digests = {name: secret_digest(s["file"], f"secrets.{name}.file")
               for name, s in sorted(spec.secrets.items())
               if any(name in svc["secrets"] for svc in spec.services.values())}
    services, encoded = {}, {}
    for name, svc in sorted(spec.services.items()):
        secrets = [{"name": n, "file": spec.secrets[n]["file"], "digest": digests[n]} for n in svc["secrets"]]
        obj = {"kind": "service", **svc, "secrets": secrets,
               "image_id": resolve_image(svc["image"], f"services.{name}.image")}
        data = encode(obj)
        h = digest(data)
        services[name], encoded[h] = (h, obj), data
    manifest = {
        "kind": "manifest",
        "format": MANIFEST_FORMAT,
        "profile": profile,
        "services": {name: h for name, (h, _) in services.items()},
        "volumes": {name: dict(opts) for name, opts in sorted(spec.volumes.items())},
        "networks": {"default": {}},
    }
    return Compiled(hash_value(manifest), manifest, services, encoded)



def compile_empty(profile: str) -> Compiled:
    """The deployment with no services: what a profile runs before its first generation."""
    return compile_spec(Spec(name=profile, services={}, volumes={}, source="<empty>"), profile, lambda *_: "")
