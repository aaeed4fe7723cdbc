"""Compose service keys that are container options, converted into the TOML spelling that
gen.spec.options validates (deploy.resources becomes mem_limit, cpus, ...)."""
from __future__ import annotations

from gen.spec.compose.shape import Origins

# Compose service keys handled here (accepted by the converter, no longer refused).
COMPOSE_OPTION_KEYS: frozenset[str] = frozenset()


def convert_options(svc: dict, path: str, origins: Origins) -> dict:
    """The container options of a Compose service, as TOML keys (only those the file sets)."""
    return {}


def convert_resources(resources, path: str, origins: Origins) -> dict:
    """deploy.resources (limits, reservations) as TOML keys (mem_limit, cpus, mem_reservation, ...)."""
    return {}
