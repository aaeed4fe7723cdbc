"""Service profiles, as Compose selects them: a service with no `profiles` is always deployed; one
with `profiles = ["debug", ...]` only when one of its profiles is active ("*" activates every one).
Selection happens before anything else is checked, so a left-out service is as if never written;
a dependency on it is an error unless it says `required = false` (gen.spec.relations).

(Compose's profiles have nothing to do with gen's deployment profile, `-p`: a Compose profile picks
services of one file, gen's profile names a deployment.)
"""
from __future__ import annotations

import re

from gen.errors import SpecError
from gen.spec.messages import shown
from gen.spec.validate import checked_table

PROFILE_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")     # Compose's rule
ALL = "*"


def select_services(table: dict, active) -> tuple[dict, frozenset]:
    """services table -> (the services the active profiles enable, without their `profiles` key;
    the names of those left out)."""
    active = set(active)
    kept, left_out = {}, set()
    for name, value in table.items():
        service = checked_table(value, f"services.{name}")
        profiles = service_profiles(service.get("profiles", []), f"services.{name}.profiles")
        if profiles and ALL not in active and not active & set(profiles):
            left_out.add(name)
            continue
        kept[name] = {key: item for key, item in service.items() if key != "profiles"}
    return kept, frozenset(left_out)


def service_profiles(value, path: str) -> list[str]:
    if not isinstance(value, list):
        raise SpecError(path, "must be a list of profile names")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not PROFILE_RE.fullmatch(name):
            raise SpecError(f"{path}[{i}]", f"invalid profile name {shown(name)} (use [a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    return value


def active_profiles(explicit, environ) -> list[str]:
    """The profiles asked for; none given: Compose's COMPOSE_PROFILES (comma-separated) from `environ`."""
    if explicit:
        return list(explicit)
    return [name.strip() for name in environ.get("COMPOSE_PROFILES", "").split(",") if name.strip()]
