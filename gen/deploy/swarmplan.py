"""The plan of a Swarm activation: a pure function from (desired services, observed Swarm services) to
a gen.model.plan.Plan, so `--dry-run`, the progress table and `--json` show it as they show a plan
for one engine.

Per service: `keep` (its gen.hash label is the desired hash: never touched, its tasks keep running),
`create` (no service of the profile by that name), `update` (another hash: its definition is
replaced in place, Swarm's service keeps its name, ID and DNS), `remove` (not in the generation:
removed after the commit). Each step has the reason, and the update order gen gives Swarm.
"""
from __future__ import annotations

from gen.engine.swarmspec import swarm_name, update_order
from gen.engine.swarmstate import ObservedService
from gen.model.graph import start_order
from gen.model.plan import Plan, Step


def plan_swarm(profile: str, services: dict[str, tuple[str, dict]], observed: list[ObservedService],
               known: dict[str, dict] | None = None) -> Plan:
    """services: name -> (object hash, service object); observed: the profile's Swarm services;
    known: service objects by hash, where the store has them (only used to explain an update)."""
    levels = tuple(tuple(level) for level in start_order({n: obj for n, (_, obj) in services.items()}))
    level_of = {name: i for i, level in enumerate(levels) for name in level}
    by_service: dict[str, list[ObservedService]] = {}
    for s in observed:
        by_service.setdefault(s.service, []).append(s)
    for name, found in by_service.items():      # the one under gen's own name first
        found.sort(key=lambda s: (s.name != swarm_name(profile, name), s.name))
    steps = [_step(name, h, obj, by_service.get(name, []), level_of[name], known or {})
             for name, (h, obj) in sorted(services.items())]
    steps += [Step(name, "remove", "not in the generation", remove_after=tuple(s.id for s in found))
              for name, found in sorted(by_service.items()) if name not in services]
    return Plan(profile=profile, steps=tuple(steps), levels=levels)


def _step(name: str, h: str, obj: dict, found: list[ObservedService], level: int, known: dict[str, dict]) -> Step:
    order, why = update_order(obj)
    note = f"; {why}" if why else ""
    if not found:
        return Step(name, "create", "missing", level, strategy=order)
    current = found[0]
    extra = tuple(s.id for s in found[1:])       # by hand: two services labelled as one (removed after commit)
    if current.hash == h:
        if extra:
            return Step(name, "update", "duplicate services labelled as this one", level, strategy=order,
                        kept=(current.id,), remove_after=extra)
        return Step(name, "keep", "unchanged", level, kept=(current.id,))
    return Step(name, "update", _why(known.get(current.hash), obj) + note, level, strategy=order,
                stop_before=(current.id,), remove_after=extra)


def _why(old: dict | None, new: dict) -> str:
    if old is None:
        return "changed"
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return "image changed" if "image_id" in keys else f"{', '.join(keys) or 'definition'} changed"


def updated_service(step: Step) -> str | None:
    """The ID of the Swarm service an update step replaces the definition of (None: a create or keep)."""
    return step.stop_before[0] if step.action == "update" and step.stop_before else None
