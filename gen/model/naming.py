"""Names and labels gen gives to engine objects. Pure; shared by the planner and the engine."""
from __future__ import annotations

import re

# Profile, service, volume and secret names: usable in container, network and volume names.
NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,62}\Z")

LABEL_PROFILE = "gen.profile"
LABEL_SERVICE = "gen.service"
LABEL_HASH = "gen.hash"
LABEL_MANIFEST = "gen.manifest"
LABEL_REPLICA = "gen.replica"


def container_name(profile: str, service: str, service_hash: str, replica: int, replicas: int) -> str:
    # The hash is in the name so that old and new containers of a service can coexist (start-first).
    base = f"{profile}-{service}-{service_hash[:12]}"
    return base if replicas == 1 else f"{base}-{replica}"


def network_name(profile: str) -> str:
    return f"{profile}_default"


def volume_name(profile: str, volume: str) -> str:
    return f"{profile}_{volume}"


def container_labels(profile: str, service: str, service_hash: str, manifest: str, replica: int) -> dict[str, str]:
    return {LABEL_PROFILE: profile, LABEL_SERVICE: service, LABEL_HASH: service_hash,
            LABEL_MANIFEST: manifest, LABEL_REPLICA: str(replica)}
