"""Compile a validated Spec into store objects: one per service, plus the manifest, plus one per
secret or config file a service uses. Pure: images are resolved and files pinned through the
callables it is given; gen.state.manifests writes the result.

The manifest's hash is the generation's identity. Everything here is deterministic: the same spec
(keys in any order) and the same images give byte-identical objects, in any process, on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from gen.errors import SpecError
from gen.model.naming import DEFAULT_NETWORK
from gen.model.types import MANIFEST_FORMAT, SERVICE_FORMAT, Manifest, ServiceObject, ServiceSpec, Spec
from store import digest, encode, hash_value


@dataclass(frozen=True)
class Compiled:
    manifest_hash: str
    manifest: Manifest
    services: dict[str, tuple[str, ServiceObject]]     # name -> (object hash, service object)
    # Service objects' canonical bytes, by hash, kept from hashing for the store write (1,000
    # services would otherwise be encoded twice). For a Compiled loaded from the store: the stored bytes (an
    # upgraded older object is rewritten with exactly its old bytes, never under a new name).
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    # The secret and config objects its services pin (hash -> canonical bytes): written with it, and
    # materialised from these bytes at activation, so a missing one is found before anything runs.
    materials: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    # The state directory it belongs to (None: none yet): its key decrypts the secrets, and it
    # namespaces the directory they are materialised in (gen.deploy.materialize).
    state_dir: str | None = field(default=None, compare=False)


class Pinned(NamedTuple):
    """A file's value as a store object, made by the caller's PinFile (gen.state.secrets)."""
    object: str         # the object's hash
    data: bytes         # its canonical bytes
    uid: int            # the file's owner and permission bits: a pinned bind mount keeps them
    gid: int
    mode: int


PinFile = Callable[[str, str, str], Pinned]     # (kind "secret" | "config", file, key path) -> Pinned


class ImageRequest(NamedTuple):
    """What a service asks of its image: the caller (gen.state.images) looks it up, pulls or builds it."""
    service: str
    ref: str                        # the image as written; "" for a service that is only built
    key_path: str                   # where the spec names it, for errors
    build: dict | None = None       # BuildSpec
    pull_policy: str = "missing"
    platform: str | None = None


class ResolvedImage(NamedTuple):
    id: str                         # the engine's image ID
    digest: str | None = None       # "repo@sha256:...", when a registry gave one


ResolveImage = Callable[[ImageRequest], "ResolvedImage | str"]   # a bare str is an ID without digest

# Keys of a format 3 service object (and of its mounts); each present only when not its default.
FORMAT_3_KEYS = ("options", "container_name", "networks", "network_mode", "conditions", "job", "image_digest",
                 "placement", "endpoint_mode")
MOUNT_3_KEYS = ("create_host_path", "nocopy", "propagation", "tmpfs_size", "tmpfs_mode")
HEALTHCHECK_3_KEYS = ("start_interval_ms",)
ONLY_DEFAULT = {DEFAULT_NETWORK: {}}     # the networks of a deployment (and of a service) before format 3

SECRETS_DIR = "/run/secrets"        # where a service's secrets appear inside its containers
OWNER_ONLY, EVERYONE = 0o400, 0o444


def _no_pinning(kind: str, file: str, key_path: str) -> Pinned:
    raise SpecError(key_path, f"cannot pin the {kind} file {file} without a state directory (compile with gen.api.Gen)")


def profile_for(spec: Spec, profile: str | None) -> str:
    if profile:
        return profile
    if spec.name:
        return spec.name
    raise SpecError("name", f"{spec.source} has no `name`; give one in the spec or pass -p NAME")


def image_request(name: str, svc: ServiceSpec) -> ImageRequest:
    return ImageRequest(name, svc["image"], f"services.{name}.build" if "build" in svc and not svc["image"]
                        else f"services.{name}.image", svc.get("build"), svc.get("pull_policy", "missing"),
                        svc.get("options", {}).get("platform"))


def compile_spec(spec: Spec, profile: str, resolve_image: ResolveImage,
                 pin_file: PinFile = _no_pinning, state_dir: str | None = None) -> Compiled:
    """resolve_image(ImageRequest) -> ResolvedImage (or a bare image ID), raising when the image is
    missing; pin_file makes the store object of each secret and config file a service uses, raising
    when the file is unreadable."""
    pinned = _pin_used(spec, pin_file)
    services, encoded = {}, {}
    for name, svc in sorted(spec.services.items()):
        obj = service_object(svc, pinned, resolve_image(image_request(name, svc)))
        data = encode(obj)
        h = digest(data)
        services[name], encoded[h] = (h, obj), data
    networks = manifest_networks(spec)
    manifest = {
        "kind": "manifest",
        "format": 1 if networks == ONLY_DEFAULT else MANIFEST_FORMAT,   # see gen.model.types
        "profile": profile,
        "services": {name: h for name, (h, _) in services.items()},
        "volumes": {name: dict(opts) for name, opts in sorted(spec.volumes.items())},
        "networks": networks,
    }
    materials = {p.object: p.data for p in pinned.values()}
    return Compiled(hash_value(manifest), manifest, services, encoded, materials, state_dir)


def manifest_networks(spec: Spec) -> dict[str, dict]:
    """The deployment's networks: {"default": {}} exactly as before format 3 when no network is declared
    and every service is on the default one (so such a manifest keeps its format 1 and its hash);
    otherwise the declared ones, plus "default" when a service is on it."""
    used = {net for svc in spec.services.values() if "network_mode" not in svc
            for net in svc.get("networks", ONLY_DEFAULT)}
    if not spec.networks and used <= {DEFAULT_NETWORK}:
        return {DEFAULT_NETWORK: {}}
    networks = {name: dict(definition) for name, definition in sorted(spec.networks.items())}
    if DEFAULT_NETWORK in used:
        networks.setdefault(DEFAULT_NETWORK, {})
    return dict(sorted(networks.items()))


def _pin_used(spec: Spec, pin_file: PinFile) -> dict[tuple[str, str], Pinned]:
    """("secret" | "config", name) -> Pinned, for every secret and config a service uses (each read once)."""
    secrets = sorted({n for svc in spec.services.values() for n in svc["secrets"]})
    configs = sorted({c["source"] for svc in spec.services.values() for c in svc["configs"]})
    pinned = {("secret", n): pin_file("secret", spec.secrets[n]["file"], f"secrets.{n}.file") for n in secrets}
    for n in configs:
        pinned["config", n] = pin_file("config", spec.configs[n]["file"], spec.configs[n].get("key", f"configs.{n}.file"))
    return pinned


def service_object(svc: ServiceSpec, pinned: dict[tuple[str, str], Pinned],
                   image: "ResolvedImage | str") -> ServiceObject:
    """A service with its image and files pinned. One that pins no file is written exactly as format 1
    (no `format`, no `configs`): see gen.model.types."""
    image = ResolvedImage(image) if isinstance(image, str) else image
    secrets = [_secret_ref(n, pinned["secret", n], svc["user"]) for n in svc["secrets"]]
    configs = [_config_ref(c, pinned["config", c["source"]]) for c in svc["configs"]]
    spec_only = ("build", "pull_policy")
    obj = {"kind": "service", **{k: v for k, v in svc.items() if k not in spec_only},
           "secrets": secrets, "configs": configs, "image_id": image.id}
    if image.digest:
        obj["image_digest"] = image.digest
    for key in FORMAT_3_KEYS:       # a default written out would change the hash of an unchanged object
        if key in obj and obj[key] in (None, "", False, {}, [], ONLY_DEFAULT):
            del obj[key]
    if _needs_format_3(obj):
        obj["format"] = SERVICE_FORMAT
    elif secrets or configs:
        obj["format"] = 2
    else:
        del obj["configs"]
    return obj      # type: ignore[return-value]


def _needs_format_3(obj: dict) -> bool:
    return (any(key in obj for key in FORMAT_3_KEYS)
            or any(key in m for m in obj["volumes"] for key in MOUNT_3_KEYS)
            or any("mode" in p for p in obj["ports"])
            or any(m["type"] == "tmpfs" or m["type"] == "volume" and not m["source"] for m in obj["volumes"])
            or any(key in (obj["healthcheck"] or {}) for key in HEALTHCHECK_3_KEYS))


def _secret_ref(name: str, p: Pinned, user: str | None) -> dict:
    """Owned by the service's numeric user, readable by it alone (0400). Without one (no user, or a name
    only the image knows) root's and 0444, as Docker Swarm does: the container's user must read it, and
    the directory on the host is 0700 anyway."""
    uid, gid = numeric_user(user)
    mode = EVERYONE if uid is None else OWNER_ONLY
    return {"name": name, "target": f"{SECRETS_DIR}/{name}", "object": p.object, "uid": uid or 0, "gid": gid or 0,
            "mode": mode}


def _config_ref(use: dict, p: Pinned) -> dict:
    """A declared config's owner and mode are the spec's (defaults filled by gen.spec); a pinned bind
    mount's None ones are the file's own, as the bind would have shown it."""
    return {"name": use["source"], "target": use["target"], "object": p.object,
            "uid": p.uid if use["uid"] is None else use["uid"], "gid": p.gid if use["gid"] is None else use["gid"],
            "mode": p.mode if use["mode"] is None else use["mode"]}


def numeric_user(user: str | None) -> tuple[int | None, int | None]:
    """uid and gid of "1000" or "1000:1000" ("1000:www-data" -> (1000, None)); (None, None) for a name."""
    name, _, group = (user or "").partition(":")
    uid = int(name) if name.isascii() and name.isdigit() and len(name) <= 10 else None
    gid = int(group) if uid is not None and group.isascii() and group.isdigit() and len(group) <= 10 else None
    valid = [v if v is not None and v < 2 ** 32 else None for v in (uid, gid)]   # Linux ids are 32 bits
    return (valid[0], valid[1]) if valid[0] is not None else (None, None)


def compile_empty(profile: str) -> Compiled:
    """The deployment with no services: what a profile runs before its first generation."""
    return compile_spec(Spec(name=profile, services={}, volumes={}, source="<empty>"), profile, lambda _: "")
