"""Networks: the deployment's own (`[networks.NAME]`, Spec.networks), how a service joins them
(`networks`), or its `network_mode` instead.

- `[networks.NAME]`: a bridge network of the deployment, created as <profile>_NAME (or `name`), owned
  by the profile: driver ("bridge", the one driver of a single engine), internal, attachable,
  enable_ipv6, labels, driver_opts, ipam = { driver, options, config = [{ subnet, gateway, ip_range,
  aux_addresses }] }. `external = true` (with `name`, default NAME): the user's network, which must
  exist; gen never creates, changes or removes it. Only what is not a default is kept (NetworkDef).
  "default" is every service's network unless it says otherwise; declaring it configures it. As in
  Compose, a network no service joins is left out (never created).
- A service's `networks`: a list of names, or a table NAME -> { aliases, ipv4_address, ipv6_address }.
  Absent means ["default"], and that is also left out of the normal form.
- `network_mode`: "host", "none", "service:NAME" (NAME's network stack: NAME starts first) or
  "container:NAME" (a container gen does not manage). It excludes `networks` and published ports
  (Docker refuses ports there, or drops them with host networking).
"""
from __future__ import annotations

import ipaddress
import re

from gen.errors import SpecError
from gen.spec.fields import parse_labels
from gen.spec.messages import key_path, shown
from gen.spec.validate import MAX_SHORT, check_keys, checked_names, checked_string, checked_table

DEFAULT = "default"
ENGINE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")   # Docker's rule for network names
_KEYS = ("external", "name", "driver", "internal", "attachable", "enable_ipv6", "labels", "driver_opts", "ipam")
_FLAGS = ("internal", "attachable", "enable_ipv6")
_IPAM_CONFIG_KEYS = ("subnet", "gateway", "ip_range", "aux_addresses")


# -- [networks.NAME] -----------------------------------------------------------------------------------
def declared_networks(value: object) -> dict[str, dict]:
    table = checked_table(value, "networks")
    out = {}
    for name in checked_names(table, "networks"):
        definition = _network(checked_table(table[name], f"networks.{name}"), name, f"networks.{name}")
        if definition or name != DEFAULT:   # an unconfigured default is the implicit one
            out[name] = definition
    return out


def _network(table: dict, name: str, path: str) -> dict:
    check_keys(table, _KEYS, path)
    if _flag(table, "external", path):
        extra = sorted(set(table) - {"external", "name"})
        if extra:
            raise SpecError(key_path(path, extra[0]), "an external network is used as it is: only name may be given")
        return {"external": True, "name": engine_name(table.get("name", name), f"{path}.name")}
    out: dict = {}
    if "name" in table:
        out["name"] = engine_name(table["name"], f"{path}.name")
    driver = checked_string(table.get("driver", "bridge"), f"{path}.driver")
    if driver != "bridge":
        why = "needs a Swarm" if driver == "overlay" else "is not one gen creates"
        raise SpecError(f"{path}.driver", f"{shown(driver)} {why}: gen runs on one engine and creates "
                                          "bridge networks only (or declare the network external)")
    out.update({key: True for key in _FLAGS if _flag(table, key, path)})
    if table.get("labels"):
        out["labels"] = parse_labels(table["labels"], f"{path}.labels")
    if table.get("driver_opts"):
        out["driver_opts"] = string_map(table["driver_opts"], f"{path}.driver_opts")
    ipam = _ipam(table["ipam"], f"{path}.ipam") if "ipam" in table else {}
    if ipam:
        out["ipam"] = ipam
    return out


def used_networks(networks: dict[str, dict], services: dict[str, dict]) -> dict[str, dict]:
    """The declared networks some service joins: as in Compose, one no service joins is not created."""
    used = {name for svc in services.values() if "network_mode" not in svc
            for name in svc.get("networks", {DEFAULT: {}})}
    return {name: definition for name, definition in networks.items() if name in used}


def engine_name(value: object, path: str) -> str:
    name = checked_string(value, path, empty_ok=False)
    if not ENGINE_NAME.fullmatch(name):
        raise SpecError(path, f"{shown(name)} is not a Docker network name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    return name


def _flag(table: dict, key: str, path: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", "must be true or false")
    return value


def string_map(value: object, path: str) -> dict[str, str]:
    table = checked_table(value, path)
    out = {}
    for key in sorted(table):
        sub = key_path(path, key)
        checked_string(key, sub, empty_ok=False)
        out[key] = checked_string(table[key], sub)
    return out


def _ipam(value: object, path: str) -> dict:
    table = checked_table(value, path)
    check_keys(table, ("driver", "options", "config"), path)
    out: dict = {}
    driver = checked_string(table.get("driver", "default"), f"{path}.driver", empty_ok=False)
    if driver != "default":
        out["driver"] = driver
    if table.get("options"):
        out["options"] = string_map(table["options"], f"{path}.options")
    config = table.get("config", [])
    if not isinstance(config, list):
        raise SpecError(f"{path}.config", "must be a list of tables")
    pools = [_pool(checked_table(item, f"{path}.config[{i}]"), f"{path}.config[{i}]") for i, item in enumerate(config)]
    if pools:
        out["config"] = pools
    return out


def _pool(table: dict, path: str) -> dict:
    check_keys(table, _IPAM_CONFIG_KEYS, path)
    if "subnet" not in table:
        raise SpecError(f"{path}.subnet", "missing required key")
    subnet = _subnet(table["subnet"], f"{path}.subnet")
    out = {"subnet": str(subnet)}
    if "ip_range" in table:
        ip_range = _subnet(table["ip_range"], f"{path}.ip_range")
        if ip_range.version != subnet.version or not ip_range.subnet_of(subnet):
            raise SpecError(f"{path}.ip_range", f"{ip_range} is not inside the subnet {subnet}")
        out["ip_range"] = str(ip_range)
    if "gateway" in table:
        out["gateway"] = address_in(table["gateway"], f"{path}.gateway", [subnet])
    if table.get("aux_addresses"):
        aux = string_map(table["aux_addresses"], f"{path}.aux_addresses")
        out["aux_addresses"] = {host: address_in(ip, key_path(f"{path}.aux_addresses", host), [subnet])
                                for host, ip in aux.items()}
    return out


def _subnet(value: object, path: str):
    text = checked_string(value, path, empty_ok=False)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SpecError(path, f"invalid subnet {shown(text)} (expected CIDR such as 172.20.0.0/24)") from None


def address_in(value: object, path: str, subnets: list, version: int | None = None) -> str:
    """An IP address (of `version`, if given), inside one of `subnets` when any are given."""
    text = checked_string(value, path, empty_ok=False)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise SpecError(path, f"invalid IP address {shown(text)}") from None
    if version and ip.version != version:
        raise SpecError(path, f"{shown(text)} is not an IPv{version} address")
    if subnets and not any(ip.version == net.version and ip in net for net in subnets):
        raise SpecError(path, f"{ip} is not inside the network's subnet ({', '.join(map(str, subnets))})")
    return str(ip)


# -- a service's networks and network_mode ------------------------------------------------------------
def parse_service_networks(value, path, ctx) -> dict[str, dict]:
    """A list of names or a table NAME -> { aliases, ipv4_address, ipv6_address } -> name -> ServiceNetwork."""
    if isinstance(value, list):
        names = [checked_string(item, f"{path}[{i}]", MAX_SHORT) for i, item in enumerate(value)]
        entries = {name: ({}, f"{path}[{i}]") for i, name in enumerate(names)}
        if len(entries) < len(names):
            dup = next(i for i, name in enumerate(names) if name in names[:i])
            raise SpecError(f"{path}[{dup}]", f"duplicate network {shown(names[dup])}")
    elif isinstance(value, dict):
        entries = {name: (checked_table(item, key_path(path, name)), key_path(path, name))
                   for name, item in value.items()}
    else:
        raise SpecError(path, "must be a list of network names or a table")
    out = {}
    for name, (options, sub) in sorted(entries.items()):
        if name != DEFAULT and name not in ctx.networks:
            raise SpecError(sub, f"network {shown(name)} is not declared in [networks]")
        out[name] = _attachment(options, sub, ctx.networks.get(name, {}))
    return out


def _attachment(table: dict, path: str, network: dict) -> dict:
    check_keys(table, ("aliases", "ipv4_address", "ipv6_address"), path)
    out: dict = {}
    if "aliases" in table:
        aliases = table["aliases"]
        if not isinstance(aliases, list):
            raise SpecError(f"{path}.aliases", "must be a list of names")
        names = {checked_string(a, f"{path}.aliases[{i}]", 255, empty_ok=False) for i, a in enumerate(aliases)}
        if names:
            out["aliases"] = sorted(names)
    subnets = [ipaddress.ip_network(pool["subnet"]) for pool in network.get("ipam", {}).get("config", [])]
    for key, version in (("ipv4_address", 4), ("ipv6_address", 6)):
        if key in table:
            if not network.get("external") and not any(net.version == version for net in subnets):
                raise SpecError(f"{path}.{key}", f"a fixed address needs a network with a declared IPv{version} "
                                                 "ipam subnet (Docker refuses it otherwise)")
            out[key] = address_in(table[key], f"{path}.{key}", subnets, version)
    return out


NETWORK_MODES = ("host", "none")


def parse_network_mode(value, path, ctx) -> str:
    mode = checked_string(value, path, empty_ok=False)
    kind, colon, target = mode.partition(":")
    if mode in NETWORK_MODES or (colon and kind in ("service", "container") and target):
        return mode
    if mode == "bridge":
        raise SpecError(path, "bridge (Docker's default bridge) is not supported: services join the "
                              "deployment's networks (leave network_mode out)")
    raise SpecError(path, f"invalid network mode {shown(mode)} (use host, none, service:NAME or container:NAME)")
