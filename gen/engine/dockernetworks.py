"""Starts Docker refuses for a reason gen can mend, on a container that exists already (a kept, warm one,
or one stopped behind gen's back). No `import docker`: it is handed the SDK's low-level client.

- paused (`docker pause` behind gen's back): Docker wants an unpause, not a start;
- a network it joined was removed and made again (`docker network prune` removes the networks of
  stopped containers; gen makes them again before it starts them): Docker still looks it up by the old
  network's id and refuses ("network <id> not found"). Leaving and joining it again by name, with the
  same aliases and addresses, is what `docker network disconnect -f; connect` does by hand.
"""
from __future__ import annotations


def mend_start(api, cid: str, error) -> bool:
    """Mend what made Docker refuse to start `cid` and start it; False when it is nothing gen can mend."""
    text = str(getattr(error, "explanation", None) or error)
    status = getattr(error, "status_code", None)
    if status == 409 and "paused" in text:
        api.unpause(cid)
        return True
    if status == 404 and text.startswith("network ") and text.endswith(" not found"):
        rejoin(api, cid)
        api.start(cid)
        return True
    return False


def rejoin(api, cid: str) -> None:
    """Leave and join again, by name, every network the container is configured for."""
    networks = api.inspect_container(cid)["NetworkSettings"]["Networks"] or {}
    for name, endpoint in sorted(networks.items()):
        ipam = endpoint.get("IPAMConfig") or {}
        short_id = cid[:12]
        aliases = [a for a in endpoint.get("Aliases") or [] if a != short_id] or None
        api.disconnect_container_from_network(cid, name, force=True)
        api.connect_container_to_network(cid, name, aliases=aliases, ipv4_address=ipam.get("IPv4Address") or None,
                                         ipv6_address=ipam.get("IPv6Address") or None, links=endpoint.get("Links"))
