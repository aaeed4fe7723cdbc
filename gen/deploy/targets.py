"""The Deployer of a profile, by its target: the local engine's, or a Swarm's (gen.deploy.swarm).

Kept apart so that the verbs of a local profile (status, a no-op switch) never import the Swarm stack."""
from __future__ import annotations

from typing import Callable

from gen.deploy.options import Options, Progress
from gen.deploy.transaction import Deployer
from gen.engine.base import Engine
from gen.model.plan import Plan
from gen.state.profile import Profile
from gen.state.target import Target, choose_target
from store import Store


def deployer_for(store: Store, engine: Callable[[], Engine], options: Options, progress: Progress,
                 on_plan: Callable[[Plan], None], prof: Profile | None, kind: str | None = None,
                 registry: str | None = None) -> Deployer:
    """The Deployer of `prof` by its target (recorded, or as a switch asks: kind, registry; a different
    kind than a profile's generations were made on is refused, exit 1); the local engine's without one."""
    target = choose_target(prof, kind, registry) if prof is not None else Target()
    if target.kind != "swarm":
        return Deployer(store, engine(), options, progress, on_plan, target)
    from gen.deploy.swarm import SwarmDeployer
    from gen.engine.swarm import SwarmEngine
    docker = engine()
    return SwarmDeployer(store, docker, options, progress, on_plan, target, SwarmEngine.of(docker))
