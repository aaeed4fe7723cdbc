"""A compiled generation in the store: its service objects and its manifest, written and read back."""
from __future__ import annotations

from gen.errors import SpecError
from gen.model.compile import Compiled
from store import Store, encode


def store_compiled(store: Store, compiled: Compiled) -> str:
    """Services first (durably, in one batch), manifest last: a manifest in the store always has its
    whole closure."""
    entries = list(compiled.services.values())
    blobs = [compiled.encoded.get(h) or encode(obj) for h, obj in entries]
    if store.put_many_encoded(blobs) != [h for h, _ in entries]:
        raise AssertionError("service object hash changed between compile and write")
    return store.put(compiled.manifest)


def load_compiled(store: Store, manifest_hash: str) -> Compiled:
    """Read a manifest and its services back from the store (each verified against its hash)."""
    manifest = store.get(manifest_hash)
    if not isinstance(manifest, dict) or manifest.get("kind") != "manifest":
        raise SpecError(manifest_hash[:12], "store object is not a manifest")
    services = {name: (h, store.get(h)) for name, h in manifest["services"].items()}
    return Compiled(manifest_hash, manifest, services)
