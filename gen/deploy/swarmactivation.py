"""A Swarm activation: a Plan of services executed as one bounded transaction, the same contract as
gen.deploy.activation on one engine.

    prepare   every service to create or update mapped (gen.engine.swarmspec) with what it needs on
              the cluster: its image (pushed where asked), overlay networks, secrets and configs
              (gen.deploy.swarmprepare)                       -- nothing running is touched yet
    per dependency level: each service created, or updated in place (its definition replaced; Swarm
              replaces its tasks in the update order gen chose); then gen waits until every service of
              the level is healthy by its own judgement (gen.deploy.swarmhealth), within the deadline
    commit    in two phases (gen.deploy.commit): what may still be undone, then the flip of `current`
    after     the services the generation no longer has removed, then the profile's networks,
              secrets and configs that nothing uses any more

Any failure before the flip undoes everything this transaction did: created services removed, and
every updated service given back its previous definition FROM THE STORE (the object its gen.hash
label named, mapped again: not Swarm's one-deep PreviousSpec), then waited for until healthy again;
networks, secrets and configs it created removed. A failure after the flip finishes forward and
reports exit 3. A crash anywhere is repaired by converging on `current` (gen.deploy.recovery), since
every service carries the hash of the definition it runs.
"""
from __future__ import annotations

import time
from typing import Callable

from gen.deploy.commit import Commit, flip, interrupts_deferred
from gen.deploy.options import Options, Progress, no_progress
from gen.deploy.swarmhealth import Watch, wait_healthy
from gen.deploy.swarmplan import updated_service
from gen.deploy.swarmprepare import Resources, SwarmUndoLog
from gen.engine.swarm import SwarmEngine
from gen.engine.swarmspec import file_name, service_spec, swarm_name
from gen.engine.swarmstate import ObservedService
from gen.errors import ActivationFailed, GenError, Interrupted, NotOwned
from gen.faults import checkpoint
from gen.model.compile import Compiled
from gen.model.plan import Plan, Step
from store import Store
from store.errors import StoreError

RELEASE_S = 10.0        # how long a network may stay attached to the tasks of a removed service
RESTORE_MIN_S = 30.0    # the undo's own deadline at least: a short --timeout must not leave a half-restored cluster


class SwarmActivation:
    def __init__(self, swarm: SwarmEngine, store: Store, target: Compiled, plan: Plan, observed: list[ObservedService],
                 known: dict[str, dict], options: Options = Options(), progress: Progress = no_progress,
                 registry: str | None = None, previous: tuple[dict, ...] = ()):
        """observed: the profile's services now; known: service objects by hash from the store (an
        updated service's previous definition, which the undo gives back)."""
        self.swarm, self.target, self.plan, self.options, self.progress = swarm, target, plan, options, progress
        self.profile = plan.profile
        self.by_id = {s.id: s for s in observed}
        self.known = known
        self.log = SwarmUndoLog()
        self.resources = Resources(swarm, self.profile, store, target.state_dir, [target.manifest, *previous],
                                   target.materials, registry, progress, self.log)
        self._specs: dict[str, dict] = {}
        self._nodes: dict[str, str] | None = None

    def run(self, commit: Commit | Callable[[], object]) -> object:
        """Prepare, apply level by level, judge, commit, clean up; returns what commit.flip() returned.
        ActivationFailed after undoing; Interrupted (exit 3) for a failure after the flip."""
        commit = commit if isinstance(commit, Commit) else Commit(flip=commit)
        deadline = time.monotonic() + self.options.timeout_s
        after_flip: BaseException | None = None
        try:
            self.prepare()
            for level in self.plan.levels:
                steps = [s for name in level if (s := self.plan.step(name)).action in ("create", "update")]
                if steps:
                    self._apply_level(steps, deadline)
            commit.prepare()
            with interrupts_deferred():
                outcome, after_flip = flip(commit)
        except KeyboardInterrupt:
            self._undo_and_raise(GenError("activation", "interrupted by a signal before the commit"), commit)
        except Exception as failure:        # any exception before the flip, gen's own or not: undo
            self._undo_and_raise(failure, commit)
        checkpoint("committed")
        self._finish_forward(after_flip)
        return outcome

    # -- prepare ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        for step in self.plan.steps:
            if step.action not in ("create", "update") or (step.action == "update" and not updated_service(step)):
                continue
            h, obj = self.target.services[step.service]
            if step.action == "create":
                self._check_free(step.service)
            self._specs[step.service] = service_spec(self.profile, step.service, h, self.target.manifest_hash, obj,
                                                     self.resources.refs(step.service, obj))
            checkpoint(f"prepared service {step.service}")

    def _check_free(self, service: str) -> None:
        """A service of gen's name that is not the profile's (made by hand, by a stack) is refused untouched."""
        name = swarm_name(self.profile, service)
        exists, owner = self.swarm.owner_of_service(name)
        if exists:
            raise NotOwned("service", name, owner, self.profile)

    # -- per level ----------------------------------------------------------------------------------------
    def _apply_level(self, steps: list[Step], deadline: float) -> None:
        watches = [w for w in map(self._apply, steps) if w is not None]
        for w in watches:
            self.progress(w.service, "waiting for health", "")
        wait_healthy(self.swarm.tasks, watches, deadline, self.options, self._node, self.progress)
        checkpoint("level healthy")

    def _apply(self, step: Step) -> Watch | None:
        name, (h, obj) = step.service, self.target.services[step.service]
        spec = self._specs.get(name)
        if spec is None:
            return None
        if step.action == "create":
            self.progress(name, "creating", spec["Name"])
            sid = self.swarm.create_service(spec)
            self.log.add("created", (name, sid))
            checkpoint(f"created service {name}")
            return Watch(name, sid, h, obj["replicas"])
        sid = updated_service(step)
        before = frozenset(t.id for t in self.swarm.tasks([sid]))
        self.progress(name, "updating", step.strategy or "")
        self.log.add("updated", (name, sid, self._observed(sid, name).hash))   # before the call: it may half-happen
        self.swarm.update_service(sid, spec)
        checkpoint(f"updated service {name}")
        return Watch(name, sid, h, obj["replicas"], before)

    def _observed(self, sid: str, name: str) -> ObservedService:
        if sid not in self.by_id:
            raise GenError(f"service {name}", "was removed by someone else during the activation")
        return self.by_id[sid]

    def _node(self, node_id: str) -> str:
        if self._nodes is None or node_id not in self._nodes:
            try:
                self._nodes = self.swarm.nodes()
            except GenError:
                self._nodes = {}
        return self._nodes.get(node_id, node_id[:12])

    # -- after the flip -------------------------------------------------------------------------------------
    def _finish_forward(self, after_flip: BaseException | None) -> None:
        try:
            for step in self.plan.steps:
                for sid in step.remove_after:
                    self.progress(step.service, "removing", "")
                    self.swarm.remove_service(sid, swarm_name(self.profile, step.service))
                    checkpoint(f"removed service {step.service}")
        except Exception as e:
            raise Interrupted("cleanup", f"the new generation is committed and running, but removing the old "
                              f"services failed ({_describe(e)}); run `gen recover`") from None
        self._remove_unused()
        if after_flip is not None:
            raise Interrupted("commit", f"the new generation is current and running, but the commit may not be "
                              f"durable ({_describe(after_flip)}); run `gen recover` once the disk is healthy") from None

    def _remove_unused(self) -> None:
        """The profile's networks, secrets and configs the target does not use (best effort)."""
        objs = [obj for _, obj in self.target.services.values()]
        nets = {self.resources.network_name(n) for obj in objs for n in (obj.get("networks") or {"default": {}})}
        files = {file_name(self.profile, ref["name"], ref["object"])
                 for obj in objs for ref in [*obj["secrets"], *obj.get("configs", ())] if "object" in ref}
        try:
            unused_nets = [n for n in self.swarm.networks(self.profile) if n not in nets]
            unused_files = [(kind, fid, name) for kind in ("secret", "config")
                            for fid, name in self.swarm.files(kind, self.profile) if name not in files]
        except GenError as e:
            self.progress("", "warning", f"unused networks, secrets and configs were left behind ({e})")
            return
        self._release(unused_nets, unused_files)

    def _release(self, networks: list[str], files: list[tuple[str, str, str]]) -> None:
        """Remove networks and files; a network stays attached to the tasks of a removed service for a
        moment, so removing it is retried for a while; whatever is still in use stays, with a warning."""
        for kind, fid, name in files:
            try:
                self.swarm.remove_file(kind, fid, name)
                checkpoint(f"{kind} {name} removed")
            except GenError as e:
                self.progress("", "warning", f"{kind} {name} was left behind ({e.reason})")
        until = time.monotonic() + RELEASE_S
        for name in networks:
            while True:
                try:
                    self.swarm.remove_network(name)
                    checkpoint(f"network {name} removed")
                    break
                except GenError as e:
                    if time.monotonic() >= until:
                        self.progress("", "warning", f"network {name} was left behind ({e.reason})")
                        break
                    time.sleep(0.2)

    # -- undo -----------------------------------------------------------------------------------------------
    def _undo_and_raise(self, failure: BaseException, commit: Commit) -> None:
        restored, problem = True, ""
        try:
            self._undo()
        except Exception as e:
            restored, problem = False, _describe(e)
        try:
            commit.abandon()
            checkpoint("undo: prepared commit abandoned")
        except Exception as e:
            self.progress("", "warning", f"a prepared generation record could not be taken back ({_describe(e)})")
        if restored and (isinstance(failure, NotOwned) or getattr(failure, "exit_code", 2) == 1):
            raise failure from None         # a refusal (exit 1): nothing that ran was changed
        failed = ActivationFailed.wrap(failure)
        if not restored:
            failed.mark_not_restored(problem)
        raise failed from None

    def _undo(self) -> None:
        for name, sid in reversed(self.log.created):
            self.progress(name, "removing", "")
            self.swarm.remove_service(sid, swarm_name(self.profile, name))
            checkpoint(f"undo: removed service {name}")
        watches = [self._restore(name, sid, old) for name, sid, old in self.log.updated]
        within = max(self.options.timeout_s, RESTORE_MIN_S)
        wait_healthy(self.swarm.tasks, watches, time.monotonic() + within, self.options, self._node, self.progress,
                     phase="restored", within_s=within)
        checkpoint("undo: old services healthy again")
        self._release(list(reversed(self.log.networks)), list(reversed(self.log.files)))

    def _restore(self, name: str, sid: str, old_hash: str) -> Watch:
        """The previous definition of an updated service, from the store, mapped again and applied."""
        obj = self.known.get(old_hash)
        if obj is None:
            raise GenError(f"service {name}", f"its previous definition (object {old_hash[:12]}) is not in the store")
        self.progress(name, "restoring", old_hash[:12])
        spec = service_spec(self.profile, name, old_hash, self._observed(sid, name).manifest, obj,
                            self.resources.refs(name, obj))
        before = frozenset(t.id for t in self.swarm.tasks([sid]))
        self.swarm.update_service(sid, spec)
        checkpoint(f"undo: restored service {name}")
        return Watch(name, sid, old_hash, obj["replicas"], before)


def _describe(e: BaseException) -> str:
    return str(e) if isinstance(e, (GenError, StoreError)) else f"{type(e).__name__}: {e}"
