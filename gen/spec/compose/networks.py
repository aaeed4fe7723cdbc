"""Compose networks -> gen.toml's (gen.spec.networks checks what comes out).

Top level: `networks: {NAME: {driver, internal, attachable, enable_ipv6, labels, driver_opts, ipam,
name, external}}`. A service: `networks: [NAME, ...]` or `{NAME: null | {aliases, ipv4_address,
ipv6_address, priority}}`. Compose's `priority` orders how a container is connected to its networks;
gen keeps none of it (every network is joined when the container is created), so it is accepted and
dropped. What one engine cannot honour is refused with the reason: link_local_ips, mac_address and
interface_name (engine API 1.41 has no per-network MAC or interface name), gw_priority.

`docker compose config` writes the name Compose gives each network, "<project>_<NAME>"; with the
project being the file's `name`, that is the name gen gives it too, so such a `name` is dropped.
"""
from __future__ import annotations

from gen.errors import SpecError
from gen.spec.compose.fields import convert_labels
from gen.spec.compose.shape import Origins, check_compose_keys, checked_mapping, scalar_text
from gen.spec.messages import key_path

_NETWORK_KEYS = ("driver", "internal", "attachable", "enable_ipv6", "labels", "driver_opts", "ipam", "name",
                 "external")
_ENGINE_ONLY = "not supported: gen runs on one engine (API 1.41), which has no such setting"
_ATTACHMENT_KEYS = ("aliases", "ipv4_address", "ipv6_address", "priority")
_ATTACHMENT_REFUSED = {"link_local_ips": "not supported: gen gives no link-local addresses",
                       "mac_address": _ENGINE_ONLY, "interface_name": _ENGINE_ONLY, "driver_opts": _ENGINE_ONLY,
                       "gw_priority": _ENGINE_ONLY}


def convert_network(value, path: str, name: str, project: str | None, origins: Origins) -> dict:
    network = checked_mapping({} if value is None else value, path, "must be a mapping (or empty)")
    check_compose_keys(network, path, _NETWORK_KEYS, {"enable_ipv4": _ENGINE_ONLY})
    out = dict(network)
    external = network.get("external")
    if isinstance(external, dict):      # the old `external: {name: x}`
        check_compose_keys(external, f"{path}.external", ("name",))
        out["external"] = True
        if "name" in external:
            out["name"] = external["name"]
            origins.add(f"{path}.name", f"{path}.external.name")
    if "labels" in network:
        out["labels"] = convert_labels(network["labels"], f"{path}.labels", origins)
    if isinstance(network.get("driver_opts"), dict):
        out["driver_opts"] = {k: scalar_text(v, key_path(f"{path}.driver_opts", k))
                              for k, v in network["driver_opts"].items()}
    if project_named(out, name, project):
        del out["name"]
    return out


def project_named(definition: dict, name: str, project: str | None) -> bool:
    """The name `docker compose config` writes for a network or volume of the project: gen's own."""
    return (project is not None and not definition.get("external")
            and definition.get("name") == f"{project}_{name}")


def convert_service_networks(value, path: str) -> list | dict:
    if isinstance(value, list):
        return value
    networks = checked_mapping(value, path, "must be a list of network names or a mapping", keep_null=True)
    out = {}
    for name, item in networks.items():
        sub = key_path(path, name)
        attachment = checked_mapping({} if item is None else item, sub)
        check_compose_keys(attachment, sub, _ATTACHMENT_KEYS, _ATTACHMENT_REFUSED)
        if "priority" in attachment and (isinstance(attachment["priority"], bool)
                                         or not isinstance(attachment["priority"], int)):
            raise SpecError(f"{sub}.priority", "must be an integer")
        out[name] = {key: item for key, item in attachment.items() if key != "priority"}
    return out
