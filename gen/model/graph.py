"""The dependency graph of a deployment's services: start order by levels, cycles named. Pure."""
from __future__ import annotations

from gen.errors import SpecError


def start_order(services: dict[str, dict]) -> list[list[str]]:
    """Dependency levels: level 0 depends on nothing; each later level only on earlier ones.

    Dependencies outside `services` count as satisfied, so a planner may order a subset.
    A cycle is a SpecError on `services` naming it.
    """
    placed: set[str] = set()
    remaining = sorted(services)
    levels = []
    while remaining:
        level = [n for n in remaining if _deps(services, n) <= placed]
        if not level:
            cycle = _find_cycle(services, remaining)
            raise SpecError("services", "dependency cycle: " + " -> ".join(cycle))
        levels.append(level)
        placed.update(level)
        remaining = [n for n in remaining if n not in placed]
    return levels


def _deps(services: dict[str, dict], name: str) -> set[str]:
    return {dep for dep in services[name].get("depends_on", ()) if dep in services}


def _find_cycle(services: dict[str, dict], candidates: list[str]) -> list[str]:
    """The shortest cycle through the smallest name that lies on one (deterministic)."""
    for start in sorted(candidates):
        parent: dict[str, str] = {}
        queue = [start]
        for node in queue:  # breadth-first; the list grows while we walk it
            for dep in sorted(_deps(services, node)):
                if dep == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(parent[chain[-1]])
                    return chain[::-1] + [start]
                if dep not in parent:
                    parent[dep] = node
                    queue.append(dep)
    raise AssertionError("no cycle among services that cannot be ordered")
