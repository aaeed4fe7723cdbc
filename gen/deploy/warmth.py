"""`gen warm N` takes effect at once: the containers kept for generations that are no longer warm, and the
networks only they joined, are removed now rather than at the next activation. Otherwise `gen status`
would call them drift (exit 3) until then, and nothing would remove the networks of a generation that
stopped being warm.

Only stopped containers go (gen.state.warm.remove_cold, gc's rule); a running one is drift, for
`gen recover`. The networks go by the activation's rule (gen.deploy.wiring.retire_networks). Volumes are
never removed. Each removal is final and harmless on its own: a crash half-way leaves containers and
networks the next activation or `gen warm` removes, never a broken generation."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from gen.deploy.recovery import recover_if_interrupted
from gen.deploy.transaction import Deployer
from gen.deploy.wiring import retire_networks
from gen.engine.base import Engine
from gen.errors import GenError
from gen.state.manifests import load_compiled
from gen.state.profile import Profile
from gen.state.target import read_target
from gen.state.warm import remove_cold, set_setting, setting, warm_manifests
from store import Store
from store.errors import StoreError


@dataclass
class WarmResult:
    profile: str
    setting: int                                          # the setting now (unchanged by a dry run)
    containers: list[str] = field(default_factory=list)   # kept containers removed (dry run: that would be)
    networks: list[str] = field(default_factory=list)     # networks removed with them (dry run: would be)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict:
        return {"profile": self.profile, "warm": self.setting, "containers_removed": self.containers,
                "networks_removed": self.networks, "warnings": self.warnings, "dry_run": self.dry_run}


def read_warm(prof: Profile) -> WarmResult:
    return WarmResult(prof.name, setting(prof.path.parent.parent, prof.name))


def apply_warm(connect: Callable[[], Engine], store: Store, prof: Profile, generations: int,
               dry_run: bool = False, deployer: Callable[[], Deployer] | None = None) -> WarmResult:
    """Set the profile's warm setting and remove what it no longer keeps. Caller holds the profile's lock
    (a dry run needs none). dry_run: change nothing, say what would go. deployer: the profile's, to repair an interrupted
    activation first, as every mutating verb does."""
    state_dir = prof.path.parent.parent
    if not dry_run:
        if deployer is not None and prof.journal():
            recover_if_interrupted(deployer(), prof)
        set_setting(state_dir, prof.name, generations)
    result = WarmResult(prof.name, generations if not dry_run else setting(state_dir, prof.name), dry_run=dry_run)
    current = prof.current()
    if current is None or read_target(prof).kind != "engine":   # nothing kept yet; a Swarm keeps none
        return result
    result.containers = remove_cold(connect, store, prof, current.number, prof.numbers(), dry_run,
                                    result.warnings, generations)
    if result.warnings:         # containers unchecked: their networks may still be joined
        return result
    try:
        result.networks = retire_networks(connect(), prof.name, load_compiled(store, current.manifest),
                                          warm_manifests(store, prof, current.number, generations), dry_run)
    except (GenError, StoreError) as e:       # best effort: the next activation retires what is left
        result.warnings.append(f"profile {prof.name}: networks were not retired: {e}")
    return result
