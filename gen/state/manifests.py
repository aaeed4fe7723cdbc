"""A compiled generation in the store: its service objects, the secret and config objects they pin,
and its manifest, written and read back."""
from __future__ import annotations

from gen.errors import CorruptState, SpecError
from gen.model import formats
from gen.model.compile import Compiled
from store import Store, decode, encode


def store_compiled(store: Store, compiled: Compiled) -> str:
    """Pinned files and services first (durably, in one batch), manifest last: a manifest in the store
    always has its whole closure."""
    entries = list(compiled.services.values())
    materials = sorted(compiled.materials.items())
    blobs = [data for _, data in materials] + [compiled.encoded.get(h) or encode(obj) for h, obj in entries]
    if store.put_many_encoded(blobs) != [h for h, _ in materials] + [h for h, _ in entries]:
        raise AssertionError("object hash changed between compile and write")
    if store.put(compiled.manifest) != compiled.manifest_hash:
        raise AssertionError("manifest hash changed between compile and write")
    return compiled.manifest_hash


def load_compiled(store: Store, manifest_hash: str, state_dir: str | None = None) -> Compiled:
    """Read a manifest and its services back from the store, each verified against its hash and
    checked for its format (gen.model.formats): an older format is upgraded in memory, an unknown one
    refused before anything runs. The stored bytes are kept as `encoded`, so writing the closure again
    (a switch re-writes it under its lock) writes exactly those bytes, whatever the upgrade filled in.
    The secret and config objects the services pin are read too (checked, never decrypted here), so a
    missing one stops an activation before anything runs. state_dir: the store's (its parent) by default."""
    value = store.get(manifest_hash)
    if not isinstance(value, dict) or value.get("kind") != "manifest":
        raise SpecError(manifest_hash[:12], "store object is not a manifest")
    manifest = formats.manifest(value, f"object {manifest_hash}")
    services, encoded = {}, {}
    for name, h in manifest["services"].items():
        data = store.get_bytes(h)
        obj = formats.service_object(decode(data), f"object {h}")
        if obj["name"] != name:
            raise CorruptState(f"object {h}", f"service object is named {obj['name']!r}, but manifest "
                               f"{manifest_hash[:12]} lists it as {name!r}")
        services[name], encoded[h] = (h, obj), data
    return Compiled(manifest_hash, manifest, services, encoded, _materials(store, services),
                    str(state_dir) if state_dir else str(store.root.parent))


def _materials(store: Store, services: dict) -> dict[str, bytes]:
    """hash -> stored bytes of every secret and config object the services pin, each checked for its kind."""
    found: dict[str, bytes] = {}
    for _, obj in services.values():
        for kind, refs in (("secret", obj["secrets"]), ("config", obj.get("configs", ()))):
            for h in (ref["object"] for ref in refs if "object" in ref and ref["object"] not in found):
                found[h] = store.get_bytes(h)
                read = formats.secret_object if kind == "secret" else formats.config_object
                read(decode(found[h]), f"object {h}")
    return found
