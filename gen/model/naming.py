"""Names and labels gen gives to engine objects. Pure; shared by the planner and the engine."""
from __future__ import annotations

import re

import store        # its hashing is loaded on first use (store's lazy exports)

# Profile, service, volume and secret names: usable in container, network and volume names.
NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,62}\Z")

LABEL_PROFILE = "gen.profile"
LABEL_SERVICE = "gen.service"
LABEL_HASH = "gen.hash"
LABEL_MANIFEST = "gen.manifest"
LABEL_REPLICA = "gen.replica"

DEFAULT_NETWORK = "default"
ASIDE_MARK = "-gen-old-"       # a container renamed aside to free its name (container_name, see gen.model.plan)
SWAP_MARK = "-gen-new-"        # a container created under a temporary name while its own is still held


def container_name(profile: str, service: str, service_hash: str, replica: int, replicas: int,
                   network_peer: str = "") -> str:
    """The hash is in the name so that old and new containers of a service can coexist (start-first).
    network_peer: the naming key of the service whose network stack this one shares (network_mode
    service:NAME, see gen.model.plan.naming_keys), so that a container joined to an older NAME has
    another name than one joined to the new NAME."""
    base = f"{profile}-{service}-{service_hash[:12]}" + (f"-{network_peer[:12]}" if network_peer else "")
    return base if replicas == 1 else f"{base}-{replica}"


def aside_name(name: str, cid: str) -> str:
    """Where a container holding `name` goes while another takes the name (unique: by its id)."""
    return f"{name}{ASIDE_MARK}{cid[:12]}"


def network_name(profile: str) -> str:
    return f"{profile}_default"


def engine_network_name(profile: str, network: str, definition: dict) -> str:
    """The engine's name of a network of the manifest: its `name` when given (an external network
    always has one), "<profile>_<network>" otherwise ("default" -> network_name, as before format 3)."""
    return definition.get("name") or f"{profile}_{network}"


def volume_name(profile: str, volume: str) -> str:
    return f"{profile}_{volume}"


def anonymous_volume_name(profile: str, service: str, replica: int, target: str) -> str:
    """An anonymous volume (a mount without a source) belongs to one replica of a service and its
    target, not to a container: a replaced container gets the same volume, so its data survives
    the replace (as Compose keeps it) and a rollback finds it too."""
    return f"{profile}_{service}_{replica}_anon_{store.digest(target.encode())[:12]}"


def container_labels(profile: str, service: str, service_hash: str, manifest: str, replica: int) -> dict[str, str]:
    return {LABEL_PROFILE: profile, LABEL_SERVICE: service, LABEL_HASH: service_hash,
            LABEL_MANIFEST: manifest, LABEL_REPLICA: str(replica)}
