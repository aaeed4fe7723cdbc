"""The planner: a pure function from (desired manifest, observed containers) to a Plan.

No Docker, no I/O. Every step carries the reason it exists, so `--dry-run` and error messages can
explain themselves, and the table tests in tests/test_plan.py pin the behaviour down.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from gen.model.containers import Claim, creation_name, final_name, gen_names, naming_keys, network_peer, pick
from gen.model.graph import start_order
from gen.model.hostcontrol import host_control_notes
from gen.model.ports import host_ports, ports_clash

RUNNING_STATES = frozenset({"running"})


@dataclass(frozen=True)
class Observed:
    """One gen-labelled container as the engine's list call reports it (Engine.observe).

    What every backend must report, as Docker's list call does: `health` only while running (None
    when the container has no healthcheck); `exit_code` only once it has exited (None while it is
    restarting); `host_ports` only while running (a port published on every address as "0.0.0.0").
    """
    id: str
    name: str
    service: str
    hash: str
    replica: int
    state: str                      # created | running | restarting | paused | exited | dead | removing
    health: str | None = None       # healthy | unhealthy | starting | None (no healthcheck)
    exit_code: int | None = None
    image_id: str = ""
    host_ports: frozenset = frozenset()   # {(ip, port, protocol)} currently bound (running containers only)

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES


@dataclass(frozen=True)
class NewContainer:
    name: str
    service: str
    hash: str
    replica: int


@dataclass(frozen=True)
class Step:
    """What happens to one service. Ids refer to observed containers."""
    service: str
    action: str                     # keep | create | replace | repair | remove
    reason: str
    level: int | None = None        # dependency level; None for removed services
    strategy: str | None = None     # start-first | stop-first, when something new starts
    create: tuple[NewContainer, ...] = ()
    start: tuple[str, ...] = ()         # stopped containers of the desired hash, started again
    stop_before: tuple[str, ...] = ()   # old containers stopped before the new ones start
    quiesce: tuple[str, ...] = ()       # leftovers (not running, not exited) stopped first, never restarted by an undo
    remove_after: tuple[str, ...] = ()  # old containers removed once the generation is committed
    retire_after: tuple[str, ...] = ()  # old containers of a warm generation: stopped once committed, kept
    claims: tuple[Claim, ...] = ()      # names to take (container_name, or a name a recreated container needs)
    kept: tuple[str, ...] = ()          # its containers that stay (the desired hash), by replica


@dataclass(frozen=True)
class Plan:
    profile: str
    steps: tuple[Step, ...]
    levels: tuple[tuple[str, ...], ...] = field(default=())
    grace_ms: dict[str, int] = field(default_factory=dict)   # observed container id -> its stop grace, when known
    notes: tuple[str, ...] = ()     # what a reader of the plan must know, each on its own line

    @property
    def is_noop(self) -> bool:
        return all(s.action == "keep" for s in self.steps)

    def step(self, service: str) -> Step:
        return next(s for s in self.steps if s.service == service)

    def by_level(self) -> list[list[Step]]:
        """Steps that start or rename something, grouped by dependency level (empty levels dropped)."""
        groups: list[list[Step]] = []
        for level in self.levels:
            group = [step for name in level if (step := self.step(name)).create or step.start or step.claims]
            if group:
                groups.append(group)
        return groups

    @property
    def to_remove(self) -> tuple[str, ...]:
        return tuple(cid for s in self.steps for cid in s.remove_after)

    @property
    def to_retire(self) -> tuple[str, ...]:
        return tuple(cid for s in self.steps for cid in s.retire_after)


@dataclass(frozen=True)
class _Context:
    """What one service's step needs to know beyond its own containers."""
    profile: str
    keys: dict[str, str]                # naming keys (gen.model.containers)
    by_name: dict[str, Observed]        # every container of the profile, by its name
    known: dict[str, dict]
    warm: frozenset[tuple[str, str]]    # (service, hash) of the warm generations (gen.state.warm)
    peer: Step | None                   # the step of the service whose network stack it shares
    peer_named: bool                    # a service with container_name shares this one's network stack


def plan(profile: str, services: dict[str, tuple[str, dict]], observed: list[Observed],
         known: dict[str, dict] | None = None, warm: frozenset[tuple[str, str]] = frozenset()) -> Plan:
    """services: service name -> (object hash, service object); observed: the profile's containers;
    known: service objects by hash for old containers, used to explain what changed (and to tell a
    job's); warm: (service, hash) pairs of the warm generations, whose old containers are kept stopped
    instead of removed (a job's never: a rollback runs it again, as a created one would)."""
    levels = tuple(tuple(level) for level in start_order(_with_peers_as_dependencies(services)))
    level_of = {name: i for i, level in enumerate(levels) for name in level}
    by_service: dict[str, list[Observed]] = {}
    for c in observed:
        by_service.setdefault(c.service, []).append(c)
    keys = naming_keys(services)
    by_name = {c.name: c for c in observed}
    shared_by_named = {network_peer(obj) for _, obj in services.values() if obj.get("container_name")}
    made: dict[str, Step] = {}
    for name in (name for level in levels for name in level):     # a peer's step before its dependents'
        h, obj = services[name]
        ctx = _Context(profile, keys, by_name, known or {}, warm, made.get(network_peer(obj) or ""),
                       name in shared_by_named)
        made[name] = _service_step(name, h, obj, by_service.get(name, []), level_of[name], ctx)
    steps = [made[name] for name in sorted(made)]
    ctx = _Context(profile, keys, by_name, known or {}, warm, None, False)
    steps += [step for name, cs in sorted(by_service.items())
              if name not in services and (step := _removal_step(name, cs, ctx)) is not None]
    steps = _stop_conflicting_old(steps, services, observed)
    grace = {c.id: known[c.hash]["stop_grace_ms"] for c in observed if known and c.hash in known}
    starting = {s.service for s in steps if s.create or s.start}
    notes = tuple(note for name in sorted(starting) for note in host_control_notes(name, services[name][1]))
    return Plan(profile=profile, steps=tuple(steps), levels=levels, grace_ms=grace, notes=notes)


def _with_peers_as_dependencies(services: dict[str, tuple[str, dict]]) -> dict[str, dict]:
    """Services as the start order sees them: one sharing NAME's network stack starts after NAME."""
    return {name: {**obj, "depends_on": [*obj["depends_on"], *([peer] if (peer := network_peer(obj)) else [])]}
            for name, (_, obj) in services.items()}


def _service_step(name: str, h: str, obj: dict, existing: list[Observed], level: int, ctx: _Context) -> Step:
    own = gen_names(ctx.profile, name, h, obj, ctx.keys)
    chosen = {i: c for i, n in own.items() if (c := pick(existing, h, obj, i, n)) is not None}
    chosen, restart, peer_note = _follow_peer(chosen, ctx.peer)
    peer_note = peer_note if existing else ""
    job = bool(obj.get("job"))
    done = {c.id for c in chosen.values() if job and c.state == "exited" and c.exit_code == 0}
    # A job runs to its end: one not done (failed, never started, or still running) is started and waited for.
    to_start = [c for c in chosen.values() if c.id not in done and (job or not c.running)]
    stale = [c for c in existing if c not in chosen.values()]
    kept_warm = [c for c in stale if _is_warm(c, name, h, ctx)]
    retiring = [c for c in kept_warm if c.running]
    stale = [c for c in stale if c not in kept_warm]
    create, claims = [], []
    for i in sorted(own.keys() - chosen.keys()):
        final = final_name(obj, own[i])
        create.append(NewContainer(creation_name(own[i], final, ctx.by_name.keys()), name, h, i))
        if create[-1].name != final:
            claims.append(Claim(final, create[-1].name, create[-1].name, _holder(ctx.by_name, final)))
    claims += [Claim(final, c.id, c.name, _holder(ctx.by_name, final)) for i, c in sorted(chosen.items())
               if c.name != (final := final_name(obj, own[i]))]
    kept = tuple(c.id for _, c in sorted(chosen.items()))
    leftovers = _leftovers([*stale, *kept_warm])
    if not create and not to_start and not stale and not claims and not restart and not retiring and not leftovers:
        return Step(name, "keep", "completed" if done else "unchanged", level, kept=kept)
    strategy = "stop-first" if obj.get("container_name") or ctx.peer_named else obj["update"]
    holders = [c for c in ctx.by_name.values() if c.id in {claim.holder for claim in claims}] if claims else []
    old = [*stale, *kept_warm]
    stopping = [] if job else [c for c in old if c.running and strategy == "stop-first"]
    replaced = any(c.hash != h for c in old) or bool(peer_note and old)
    action = "create" if not existing else ("replace" if replaced else "repair")
    reason = (peer_note or _why(existing, h, obj, create, to_start, old, ctx.known)) \
        + _warm_note(to_start, old, h) + _claims_note(claims) + _order_note(obj, old, strategy, ctx.peer_named)
    stop_before = {c.id for c in [*stopping, *holders] if c.running} | set(restart)
    return Step(name, action, reason, level, strategy=strategy, create=tuple(create),
                start=tuple(sorted({c.id for c in to_start} | set(restart))),
                stop_before=tuple(sorted(stop_before)),
                quiesce=_leftovers([*old, *holders]), remove_after=tuple(sorted(c.id for c in stale)),
                retire_after=tuple(sorted(c.id for c in retiring if c.id not in stop_before)),
                claims=tuple(claims), kept=kept)


def _is_warm(c: Observed, service: str, h: str, ctx: _Context) -> bool:
    """An old container of a warm generation: kept (stopped) for a rollback, unless it is a job's. Never
    one of the desired hash: a duplicate, a container changed outside gen, or one joined to a peer's
    container that is replaced (network_mode service:NAME; kept, it could not tell which generation's
    peer it joined: the rollback creates it again, joined to the peer's kept container), nor one that never
    ran (created by an activation killed before its start: worth nothing kept, and removed at once)."""
    return c.hash != h and c.state != "created" and (service, c.hash) in ctx.warm \
        and not ctx.known.get(c.hash, {}).get("job")


def _warm_note(to_start: list[Observed], old: list[Observed], h: str) -> str:
    """A rollback to a warm generation starts the containers it kept instead of creating them."""
    warm = any(c.hash == h and c.state == "exited" for c in to_start) and any(c.hash != h for c in old)
    return "; its kept container starts again (warm)" if warm else ""


def _follow_peer(chosen: dict[int, Observed], peer: Step | None) -> tuple[dict, tuple[str, ...], str]:
    """A container joins its peer's container by id (network_mode service:NAME): when that container is
    recreated, the joined one is recreated too; when it restarts (a new network namespace), the joined
    one restarts after it. Returns (its containers that stay, ids to restart, why)."""
    if peer is None:
        return chosen, (), ""
    if any(c.replica == 1 for c in peer.create):
        return {}, (), f"shares the network stack of {peer.service}, whose container is new"
    if peer.kept and peer.kept[0] in peer.start:
        running = tuple(sorted(c.id for c in chosen.values() if c.running))
        return chosen, running, f"shares the network stack of {peer.service}, which restarts" if running else ""
    return chosen, (), ""


def _holder(by_name: dict[str, Observed], name: str) -> str:
    return by_name[name].id if name in by_name else ""


def _claims_note(claims: list[Claim]) -> str:
    renamed = [c.name for c in claims if c.claimant != c.was]      # an existing container (not a new one)
    if not renamed:
        return ""
    return f"; container must hold its name {', '.join(renamed)}"


def _leftovers(stale: list[Observed]) -> tuple[str, ...]:
    """Old containers that do not run but could start any moment (created, restarting, paused): a start
    that a killed gen sent is still carried out by Docker, and such a container would take the ports or
    the volume of what is being started. They are stopped first whatever the update order (Docker runs
    the stop after the pending start), and an undo does not start them again: they were not running."""
    return tuple(sorted({c.id for c in stale if not c.running and c.state not in ("exited", "dead")}))


def _order_note(obj: dict, stale: list[Observed], strategy: str, peer_named: bool) -> str:
    """Why the update order matters here, when an old container runs next to the new: a service that
    writes a volume or a bind is replaced stop-first (two writers on one data directory corrupt it),
    unless the spec asked for start-first, which the plan then says. A container_name cannot be held
    by old and new at once; a service whose network stack a named one shares is replaced stop-first
    too, so that after a kill the named one is never left joined to a container being removed."""
    if not any(c.running for c in stale):
        return ""
    if obj.get("container_name"):
        return f"; stop-first: old and new cannot both be named {obj['container_name']}"
    if peer_named and obj["update"] != "stop-first":
        return "; stop-first: a service with a container_name shares its network stack"
    if not any(not m["read_only"] for m in obj["volumes"]):
        return ""
    if strategy == "stop-first":
        return "; stop-first: old and new must not both write its volumes"
    return "; start-first as asked, although old and new both write its volumes for a moment"


def _why(existing, h, obj, missing, stopped, stale, known) -> str:
    if not existing:
        return "missing"
    failed = [c for c in stopped if obj.get("job") and c.state == "exited" and c.exit_code]
    if failed and not missing and not stale:
        return f"job exited with code {failed[0].exit_code}: it runs again"
    if obj.get("job") and stopped and all(c.running for c in stopped) and not missing and not stale:
        return "job still running: waited for"
    old_hashes = sorted({c.hash for c in stale if c.hash != h})
    if old_hashes:
        old = known.get(old_hashes[0])
        if old is None:
            return "changed"
        keys = sorted(k for k in obj.keys() | old.keys() if obj.get(k) != old.get(k))
        return "image changed" if "image_id" in keys else f"{', '.join(keys) or 'definition'} changed"
    parts = []
    if stale:
        parts.append("container changed outside gen")
    if missing:
        parts.append(f"{len(missing)} of {obj['replicas']} container(s) missing")
    if stopped:
        parts.append(f"{len(stopped)} container(s) not running")
    return ", ".join(parts)


def _removal_step(name: str, containers: list[Observed], ctx: _Context) -> Step | None:
    """A service the generation does not have: its containers go, a warm generation's are kept stopped
    (None: nothing to do, every one is warm and stopped)."""
    kept_warm = [c for c in containers if _is_warm(c, name, "", ctx)]
    gone = [c for c in containers if c not in kept_warm]
    retiring = [c.id for c in kept_warm if c.running]
    leftovers = _leftovers(kept_warm)
    if not gone and not retiring and not leftovers:
        return None
    reason = "not in the generation" + ("; a warm generation's containers are kept stopped" if kept_warm else "")
    return Step(name, "remove", reason, quiesce=leftovers, remove_after=tuple(sorted(c.id for c in gone)),
                retire_after=tuple(sorted(retiring)))


def _stop_conflicting_old(steps: list[Step], services: dict, observed: list[Observed]) -> list[Step]:
    """An old container holding a host port that a new container needs must stop first.

    This is what forces start-first to stop-first when old and new share a host port, and it also
    covers a port that moves from one service to another, or a port held by an aborted activation.
    """
    leaving = {cid for s in steps for cid in (*s.remove_after, *s.retire_after)}
    by_id = {c.id: c for c in observed}
    claimed: set[str] = set()
    for s in steps:
        claimed.update(s.stop_before)
    out = []
    for s in sorted(steps, key=lambda s: (s.level is None, s.level or 0, s.service)):
        if not (s.create or s.start):
            out.append(s)
            continue
        wanted = host_ports(services[s.service][1])
        conflicts = sorted(cid for cid in leaving - claimed
                           if by_id[cid].running and ports_clash(wanted, by_id[cid].host_ports))
        if conflicts:
            claimed.update(conflicts)
            forced = services[s.service][1]["update"] == "start-first"
            s = replace(s, stop_before=tuple(sorted(set(s.stop_before) | set(conflicts))), strategy="stop-first",
                        reason=f"{s.reason}; stop-first: host port in use by old container" if forced else s.reason)
        out.append(s)
    # A warm container stopped first for its port is not stopped again after the commit.
    out = [replace(s, retire_after=tuple(c for c in s.retire_after if c not in claimed))
           if claimed.intersection(s.retire_after) else s for s in out]
    return sorted(out, key=lambda s: (s.action == "remove", s.service))

