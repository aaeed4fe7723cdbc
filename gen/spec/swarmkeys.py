"""The service keys that only a Docker Swarm acts on: `placement` (constraints, max_replicas_per_node) and
`endpoint_mode` (vip | dnsrr); a port's `mode` is gen.spec.ports'.

They are part of the service, not of the target: the same generation must activate on one engine or on a
Swarm (the target is not in its hash), so one engine accepts them, and they do not apply there (one engine
has no nodes to place on and no virtual IP: its containers are always on it, reached by their names). Each
is left out of the normal form when it is its default (gen.model.types: format 3), so a service that sets
none keeps its hash.
"""
from __future__ import annotations

import re

from gen.errors import SpecError
from gen.spec.messages import shown
from gen.spec.validate import check_keys, checked_string, checked_string_list, checked_table, int_in, one_of

# Swarm's constraint syntax: node.role==worker, node.hostname != x, node.labels.zone==a, engine.labels.os==linux
CONSTRAINT_RE = re.compile(r" *(?:node|engine)\.[A-Za-z0-9_.-]+ *(?:==|!=) *[^\s=!]+ *")
CONSTRAINT_RULE = "expected <attribute> == <value> or <attribute> != <value> (node.role==worker, node.labels.zone!=a)"
MAX_REPLICAS_PER_NODE = 1000
ENDPOINT_MODES = ("vip", "dnsrr")


def parse_placement(value, path, ctx=None) -> dict | None:
    """{constraints = [...], max_replicas_per_node = N} -> only what is set (None when nothing is)."""
    table = checked_table(value, path)
    check_keys(table, ("constraints", "max_replicas_per_node"), path)
    out = {}
    constraints = checked_string_list(table.get("constraints", []), f"{path}.constraints")
    for i, constraint in enumerate(constraints):
        if not CONSTRAINT_RE.fullmatch(constraint):
            raise SpecError(f"{path}.constraints[{i}]", f"{shown(constraint)}: {CONSTRAINT_RULE}")
    if constraints:
        out["constraints"] = constraints
    if "max_replicas_per_node" in table:
        out["max_replicas_per_node"] = int_in(1, MAX_REPLICAS_PER_NODE)(table["max_replicas_per_node"],
                                                                          f"{path}.max_replicas_per_node")
    return out or None


def parse_endpoint_mode(value, path, ctx=None) -> str | None:
    """vip (Swarm's default: left out) | dnsrr."""
    return None if one_of(*ENDPOINT_MODES)(value, path) == "vip" else checked_string(value, path)
