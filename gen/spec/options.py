"""Container options of a service (gen.model.types.ContainerOptions): the TOML keys that map to one
container's settings on one engine (cap_add, sysctls, mem_limit, ...), validated and normalised
into gen's units. Compose files reach here through gen.spec.compose.options, which renames what
Compose spells differently. Only keys the spec sets appear in the result."""
from __future__ import annotations

# TOML keys of a service that are container options (each normalised by container_options).
OPTION_KEYS: frozenset[str] = frozenset()


def container_options(table: dict, path: str) -> dict:
    """The option keys of one service table (only OPTION_KEYS) -> ContainerOptions (only what is set)."""
    return {}
