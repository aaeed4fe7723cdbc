"""Compile a validated Spec into store objects: one per service, plus the manifest.

The manifest's hash is the generation's identity. Everything here is deterministic: the same spec
(keys in any order) and the same images give byte-identical objects, in any process, on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from blake3 import blake3

from gen.errors import SpecError
from gen.spec.document import Spec
from store import Store, digest, encode, hash_value

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Compiled:
    manifest_hash: str
    manifest: dict
    services: dict[str, tuple[str, dict]]     # name -> (object hash, service object)
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


def keyed_secret_digest(key: bytes) -> Callable[[str, str], str]:
    """A digest of a secret's value that changes when the value changes but, keyed with this state
    directory's own random key, reveals nothing about a low-entropy value to a reader of the store."""
    def digest(path: str, key_path: str) -> str:
        try:
            with open(path, "rb") as f:
                return blake3(f.read(), key=key).hexdigest()
        except OSError as e:
            raise SpecError(key_path, f"cannot read secret file {path}: {e.strerror}") from None
    return digest


def write(store: Store, compiled: Compiled) -> str:
    """Services first (durably, in one batch), manifest last: a manifest in the store always has its
    whole closure."""
    entries = list(compiled.services.values())
    blobs = [compiled.encoded.get(h) or encode(obj) for h, obj in entries]
    if store.put_many_encoded(blobs) != [h for h, _ in entries]:
        raise AssertionError("service object hash changed between compile and write")
    return store.put(compiled.manifest)


def load(store: Store, manifest_hash: str) -> Compiled:
    """Read a manifest and its services back from the store (each verified against its hash)."""
    manifest = store.get(manifest_hash)
    if not isinstance(manifest, dict) or manifest.get("kind") != "manifest":
        raise SpecError(manifest_hash[:12], "store object is not a manifest")
    services = {name: (h, store.get(h)) for name, h in manifest["services"].items()}
    return Compiled(manifest_hash, manifest, services)
