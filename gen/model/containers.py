"""Which observed container is a service's, and under which name it must run. Pure; the planner's helper.

A container is a service's when it carries the service's hash and its name: the name holds the hash
(gen.model.naming), so old and new coexist. Two things bend that rule:

- network_mode "service:NAME": the container joins the network stack of NAME's container, by its id,
  so it must be recreated whenever NAME's container is. Its name carries NAME's naming key (NAME's
  hash, and its own peer's, recursively): a changed NAME renames, and so replaces, its dependents,
  and after a crash the name still says which NAME a container was joined to.
- container_name: the container runs under the user's name, not its own. Any container of the
  service's hash counts as the service's, whatever its name (preferring the one holding the name):
  a kill may have left it under its own gen name or renamed aside. A Claim then gives it the name,
  moving aside whoever holds it.
"""
from __future__ import annotations

from dataclasses import dataclass

import store        # its hashing is loaded on first use (store's lazy exports)
from gen.model.naming import SWAP_MARK, container_name


@dataclass(frozen=True)
class Claim:
    """A container must hold `name`. `claimant`: an observed container's id, or the name a container its
    step creates is created under; `was`: the claimant's name now; `holder`: the id of the profile's
    container holding `name` now, which is stopped and renamed aside first ("" when none does)."""
    name: str
    claimant: str
    was: str
    holder: str = ""


def network_peer(obj: dict) -> str | None:
    """NAME of network_mode "service:NAME": the service whose network stack this one shares."""
    kind, _, target = obj.get("network_mode", "").partition(":")
    return target if kind == "service" and target else None


def naming_keys(services: dict[str, tuple[str, dict]]) -> dict[str, str]:
    """service -> its naming key: its hash, or, for one sharing NAME's network stack, a digest of its
    hash and NAME's key (a cycle, which the spec refuses, is cut where it closes)."""
    keys: dict[str, str] = {}

    def key(name: str, path: tuple[str, ...]) -> str:
        if name not in keys:
            h, obj = services[name]
            peer = network_peer(obj)
            keys[name] = (store.digest(f"{h}:{key(peer, path + (name,))}".encode())
                          if peer in services and peer not in path + (name,) else h)
        return keys[name]
    for name in services:
        key(name, ())
    return keys


def gen_names(profile: str, name: str, h: str, obj: dict, keys: dict[str, str]) -> dict[int, str]:
    """replica -> the container's own gen name (where it is created, unless that name is taken)."""
    peer = network_peer(obj)
    return {i: container_name(profile, name, h, i, obj["replicas"], keys.get(peer, "") if peer else "")
            for i in range(1, obj["replicas"] + 1)}


def final_name(obj: dict, own: str) -> str:
    """The name the container runs under: the user's container_name, or its own."""
    return obj.get("container_name") or own


def pick(existing: list, h: str, obj: dict, replica: int, own: str) -> object | None:
    """The observed container that is this replica's, if any. Without container_name: the one of the
    hash under its own name. With one: any of the hash (a kill may have left it under its own name or
    aside), preferring the one that holds the user's name, then its own name, then the lowest id."""
    mine = [c for c in existing if c.hash == h and _same_image(c, obj)]
    cn = obj.get("container_name")
    if not cn:
        return next((c for c in mine if c.name == own), None)
    candidates = [c for c in mine if c.replica == replica]
    return min(candidates, key=lambda c: (c.name != cn, c.name != own, c.id), default=None)


def _same_image(c, obj: dict) -> bool:
    # A container whose image differs from what its labels claim was changed behind gen's back.
    return not c.image_id or c.image_id == obj["image_id"]


def creation_name(own: str, final: str, taken) -> str:
    """Where a new container is created: under its final name when no container of the profile holds
    it (a stranger holding it is found by the create itself, before anything running is touched);
    else under its own name, or a temporary one beside it when that is taken too (a container of the
    same hash being recreated). A Claim then moves it to its final name."""
    if final not in taken:
        return final
    if own not in taken:
        return own
    n = 1
    while f"{own}{SWAP_MARK}{n}" in taken:
        n += 1
    return f"{own}{SWAP_MARK}{n}"
