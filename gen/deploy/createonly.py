"""The prepare step of a first switch, alone: what gen would create for a generation, created and not
started. For comparing gen's containers with another tool's (the differential test against Docker
Compose): `docker inspect` them, then remove_created.
"""
from __future__ import annotations

from gen.deploy.activation import Activation
from gen.deploy.wiring import Networks
from gen.engine.base import Engine
from gen.errors import GenError
from gen.model.compile import Compiled
from gen.model.plan import plan


def create_only(engine: Engine, target: Compiled) -> dict[str, list[str]]:
    """Networks, volumes and every container of `target` created, none started, as a first switch's
    prepare does (the profile must have no containers yet). Returns service -> container ids. On a
    failure what it created is removed again (ActivationFailed, or NotOwned, as a switch raises)."""
    activation = Activation(engine, target, plan(target.manifest["profile"], target.services, []))
    try:
        activation.prepare()
    except Exception as failure:
        activation.abort(failure)
    finally:
        activation.close()
    return {s.service: [activation.created[c.name] for c in s.create] for s in activation.plan.steps}


def remove_created(engine: Engine, target: Compiled, created: dict[str, list[str]]) -> None:
    """Undo create_only: its containers and the target's gen-owned networks go; volumes stay (data)."""
    for cid in (cid for ids in created.values() for cid in ids):
        engine.remove(cid)
    nets = Networks(target.manifest["profile"], target.manifest)
    for name in sorted(nets.owned([obj for _, obj in target.services.values()])):
        try:
            engine.remove_network(name)
        except GenError:
            pass
