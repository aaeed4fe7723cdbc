"""Profiles that target a Docker Swarm (gen.deploy.targets chooses their Deployer by the recorded target).

A SwarmDeployer is a Deployer (gen.deploy.transaction) whose plan and transaction are the Swarm's
(gen.deploy.swarmplan, gen.deploy.swarmactivation): everything else is the Deployer's own, so a switch,
rollback or recovery of a Swarm profile takes the same lock, writes the same journal, commits with the
same two-phase flip of `current` (images pinned on the manager, the generation recorded) and logs the
same activation record as one of the local engine. `gen recover` converges on `current` with it, and
`gen status` reads the profile's services and their tasks (swarm_status).
"""
from __future__ import annotations

from dataclasses import dataclass

from gen.deploy.commit import Commit
from gen.deploy.status import ServiceStatus, Status, activation_state
from gen.deploy.swarmactivation import SwarmActivation
from gen.deploy.swarmplan import plan_swarm
from gen.deploy.transaction import Deployer
from gen.engine.swarm import SwarmEngine
from gen.engine.swarmspec import check_service, network_definition, swarm_name
from gen.engine.swarmstate import ObservedService, Task
from gen.model.compile import Compiled
from gen.model.plan import Plan
from gen.state.profile import Generation, Profile

__all__ = ["SwarmDeployer", "swarm_status"]


@dataclass
class SwarmDeployer(Deployer):
    """Activations of a profile on a Swarm, through a manager (`engine` is the manager's Docker engine:
    image pins and pushes happen there)."""
    swarm: SwarmEngine | None = None

    def plan(self, prof: Profile, compiled: Compiled, observed: list | None = None, number: int | None = None,
             warm: tuple[dict, ...] | None = None) -> Plan:
        """The plan from the profile's services now. What a Swarm service cannot do is refused here,
        before anything is written or touched (a SpecError naming the key, exit 1). A Swarm updates its
        services in place: nothing is kept warm (`number` and `warm` do not matter)."""
        for name, (_, obj) in sorted(compiled.services.items()):
            check_service(name, obj)
        for net, definition in compiled.manifest.get("networks", {}).items():
            if not definition.get("external"):
                network_definition(net, definition)
        observed = self.swarm.services(prof.name) if observed is None else observed
        return plan_swarm(prof.name, compiled.services, observed, self.known(observed))

    def execute(self, compiled: Compiled, p: Plan, previous, commit: Commit,
                warm: tuple[dict, ...] = (), note_stopping=None) -> int | None:     # a Swarm stops no container itself
        observed = self.swarm.services(p.profile)
        return SwarmActivation(self.swarm, self.store, compiled, p, observed, self.known(observed), self.options,
                               self.progress, self.target.registry, previous()).run(commit)

    def refresh(self, compiled: Compiled) -> None:
        """Nothing to write again: Swarm keeps a service's secrets and configs itself."""

    def status(self, prof: Profile, current: Generation | None, compiled: Compiled) -> Status:
        observed = self.swarm.services(prof.name)
        tasks = self.swarm.tasks([s.id for s in observed])
        return swarm_status(prof.name, current.number if current else None, compiled,
                            self.plan(prof, compiled, observed), observed, tasks, prof.journal(), self.swarm.nodes())


# -- gen status -------------------------------------------------------------------------------------------
def swarm_status(profile: str, generation: int | None, compiled: Compiled, plan: Plan,
                 observed: list[ObservedService], tasks: list[Task], journal: dict | None,
                 nodes: dict[str, str]) -> Status:
    """Per service: ok when the plan keeps it and as many tasks of its definition run as it has
    replicas; otherwise what is wrong. Extra: the profile's services `current` does not have."""
    by_service = {s.service: s for s in observed if s.name == swarm_name(profile, s.service)}
    services = []
    for name in sorted(compiled.services):
        h, obj = compiled.services[name]
        found = by_service.get(name)
        mine = [t for t in tasks if found and t.service_id == found.id and t.hash == h and t.desired == "running"]
        step = plan.step(name)
        problem = "" if step.action == "keep" else step.reason
        running = [t for t in mine if t.state == "running"]
        if not problem and len(running) < obj["replicas"]:
            problem = f"{len(running)} of {obj['replicas']} task(s) running"
        services.append(ServiceStatus(name, h, not problem, problem, [_describe(found, t, nodes) for t in mine]))
    extra = [{"name": s.name, "id": s.id[:12], "service": s.service, "hash": s.hash, "state": "service"}
             for s in observed if s.service not in compiled.services or plan.step(s.service).action == "remove"]
    return Status(profile, generation, compiled.manifest_hash if generation else None, services, extra,
                  activation_state(journal))


def _describe(found: ObservedService, t: Task, nodes: dict[str, str]) -> dict:
    state = t.state + (f" on {nodes.get(t.node, t.node[:12])}" if t.node else "") + (f": {t.err}" if t.err else "")
    return {"name": f"{found.name}.{t.slot}", "id": t.id[:12], "service": found.service, "hash": t.hash,
            "state": state}
