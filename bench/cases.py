"""The benchmark cases. A container case runs one tool through a scenario and returns the timed
metrics; a gen-only case (startup, build, list, store) runs the gen CLI alone; a Swarm case (bench.swarm) runs
on the bench's own Swarm lab, only when asked for. Seconds unless said otherwise.

Every timed gen command goes through `timed`, which runs it under pyinstrument instead when the run profiles
that metric (`just bench --profile METRIC`): then the figure is not a measurement and is not reported.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench import specs, swarm
from bench.tools import Gen, Tool, run

BIG = 1000               # services in the build and store-growth specs
GENERATIONS = 10_000     # generation records for the list case
FEW = 5                  # generation records for the start-up case's `gen list`
SCALE = 200              # services in the N=200 case


@dataclass
class Ctx:
    work: Path
    prefix: str          # every project name of this run starts with it
    api: object
    n: int               # services in the no-op / change / rollback cases
    lab: object = None   # bench.swarmlab.Lab, up while Swarm cases run
    swarm_api: object = None     # an APIClient on the lab's manager
    ports: int = 0       # host ports handed out to Swarm runs so far
    dirs: dict[str, Path] = field(default_factory=dict)
    cache: dict = field(default_factory=dict)
    features: dict[str, bool] = field(default_factory=dict)    # bench.tools.gen_features()
    profile: frozenset[str] = frozenset()     # metrics whose gen command runs under pyinstrument
    profiled: dict[str, tuple[str, Path]] = field(default_factory=dict)   # metric -> (gen tool, its session)

    def spec(self, key: str, make: Callable[[], list[specs.Service]]) -> Path:
        if key not in self.dirs:
            self.dirs[key] = specs.write(self.work / "specs" / key, "bench", make())
        return self.dirs[key]


def timed(ctx: Ctx, metric: str, tool: Tool, fn, *args) -> float:
    """Seconds `fn(*args)` takes; a gen tool's command runs under pyinstrument when `metric` is profiled."""
    if isinstance(tool, Gen) and metric in ctx.profile:
        tool.profile_to = ctx.work / "profiles" / f"{metric}.pyisession"
        tool.profile_to.parent.mkdir(parents=True, exist_ok=True)
        ctx.profiled[metric] = (tool.name, tool.profile_to)
    try:
        started = time.perf_counter()
        fn(*args)
        return time.perf_counter() - started
    finally:
        if isinstance(tool, Gen):
            tool.profile_to = None


def plain(ctx: Ctx, n: int, changed: bool = False) -> Path:
    """The spec of n plain services (`changed`: the one in the middle has another env value)."""
    if changed:
        return ctx.spec(f"n{n}-changed", lambda: specs.services(n, changed=n // 2))
    return ctx.spec(f"n{n}", lambda: specs.services(n))


# -- container cases: same scenario for every tool ------------------------------------------------
def cold(n: int):
    def case(tool: Tool, ctx: Ctx) -> dict[str, float]:
        return {f"cold{n}": timed(ctx, f"cold{n}", tool, tool.deploy, plain(ctx, n))}
    return case


def noop(tool: Tool, ctx: Ctx) -> dict[str, float]:
    spec = plain(ctx, ctx.n)
    tool.deploy(spec)
    return {f"noop{ctx.n}": timed(ctx, f"noop{ctx.n}", tool, tool.deploy, spec)}


def change(tool: Tool, ctx: Ctx) -> dict[str, float]:
    """Deploy n services, change one (timed), roll that change back (timed: `gen rollback`; the others
    deploy the first spec again). gen keeps its default warm setting: a warm rollback once gen has it."""
    return _change_and_back(tool, ctx, f"change{ctx.n}", f"rollback{ctx.n}")


def change_cold(gen: Gen, ctx: Ctx) -> dict[str, float]:
    """The change case with `gen warm -p PROFILE 0` set first: nothing kept, so the rollback creates again."""
    gen.keep_warm(0)
    return _change_and_back(gen, ctx, f"change{ctx.n}_warm0", f"rollback{ctx.n}_cold")


def _change_and_back(tool: Tool, ctx: Ctx, change_metric: str, rollback_metric: str) -> dict[str, float]:
    v1, v2 = plain(ctx, ctx.n), plain(ctx, ctx.n, changed=True)
    tool.deploy(v1)
    return {change_metric: timed(ctx, change_metric, tool, tool.deploy, v2),
            rollback_metric: timed(ctx, rollback_metric, tool, tool.rollback, v1)}


def healthy(tool: Tool, ctx: Ctx) -> dict[str, float]:
    return {"healthy1": timed(ctx, "healthy1", tool, tool.deploy, ctx.spec("healthy1", specs.healthy_single))}


def at_scale(tool: Tool, ctx: Ctx) -> dict[str, float]:
    """SCALE services: cold deploy, no-op redeploy, `gen status` (gen only), change one: one deployment
    serves all four, since the cold deploy is what the others need first anyway (~30 s a tool)."""
    v1, v2 = plain(ctx, SCALE), plain(ctx, SCALE, changed=True)
    got = {f"cold{SCALE}": timed(ctx, f"cold{SCALE}", tool, tool.deploy, v1),
           f"noop{SCALE}": timed(ctx, f"noop{SCALE}", tool, tool.deploy, v1)}
    if isinstance(tool, Gen):
        got[f"status{SCALE}"] = timed(ctx, f"status{SCALE}", tool, tool.status)
    got[f"change{SCALE}"] = timed(ctx, f"change{SCALE}", tool, tool.deploy, v2)
    return got


# -- gen-only cases ------------------------------------------------------------------------------
def startup(gen: Gen, ctx: Ctx) -> dict[str, float]:
    """Whole-process start-up: `gen --version` (when gen has it) and `gen list` of a profile with FEW generations."""
    state = ctx.cache.get("few_state")
    if state is None:
        state = ctx.cache["few_state"] = _generations(gen, ctx, "few", FEW)
    got = {}
    if ctx.features.get("version"):
        got["version"] = timed(ctx, "version", gen, gen.run, [gen.bin, "--version"], "gen --version")
    argv = [gen.bin, "list", "-p", "few", "--state-dir", str(state)]
    got[f"list{FEW}"] = timed(ctx, f"list{FEW}", gen, gen.run, argv, "gen list")
    return got


def build(gen: Gen, ctx: Ctx) -> dict[str, float]:
    spec = plain(ctx, BIG) / "gen.toml"
    argv = gen.cmd("build", spec, "-p", gen.project)
    first = timed(ctx, f"build{BIG}", gen, gen.run, argv, "gen build")        # empty store: 1,001 objects
    again = timed(ctx, f"build{BIG}_warm", gen, gen.run, argv, "gen build")   # every object already present
    return {f"build{BIG}": first, f"build{BIG}_warm": again}


def listing(gen: Gen, ctx: Ctx) -> dict[str, float]:
    state = ctx.cache.get("list_state")
    if state is None:
        state = ctx.cache["list_state"] = _generations(gen, ctx, "many", GENERATIONS)
    argv = [gen.bin, "list", "-p", "many", "--state-dir", str(state)]
    return {f"list{GENERATIONS}": timed(ctx, f"list{GENERATIONS}", gen, gen.run, argv, "gen list")}


def _generations(gen: Gen, ctx: Ctx, profile: str, count: int) -> Path:
    """A profile with `count` records written directly, in gen/state/profile.py's format, all naming
    one real manifest built by `gen build`; `current` points at the newest."""
    state = ctx.work / f"state-list-{profile}"
    spec = plain(ctx, 10) / "gen.toml"
    built = json.loads(run([gen.bin, "build", str(spec), "-p", profile, "--state-dir", str(state), "--json"],
                           "gen build"))
    gens = state / "profiles" / profile / "generations"
    gens.mkdir(parents=True, exist_ok=True)
    for number in range(1, count + 1):
        record = {"generation": number, "manifest": built["hash"], "created": "2025-01-01T00:00:00Z",
                  "services": len(built["services"])}
        (gens / f"{number}.json").write_text(json.dumps(record, sort_keys=True) + "\n")
    os.symlink(f"generations/{count}.json", state / "profiles" / profile / "current")
    listed = json.loads(run([gen.bin, "list", "-p", profile, "--state-dir", str(state), "--json"], "gen list"))
    if len(listed) != count or not listed[-1]["current"]:
        raise RuntimeError(f"gen list read {len(listed)} generation(s) back, expected {count}: "
                           "has gen/state/profile.py's record format changed?")
    return state


def store_growth(gen: Gen, ctx: Ctx) -> dict[str, float]:
    v1, v2 = plain(ctx, BIG) / "gen.toml", plain(ctx, BIG, changed=True) / "gen.toml"
    run(gen.cmd("build", v1, "-p", gen.project), "gen build")
    objects, size = _store_size(gen.state_dir / "store")
    run(gen.cmd("build", v2, "-p", gen.project), "gen build")
    objects2, size2 = _store_size(gen.state_dir / "store")
    shutil.rmtree(gen.state_dir, ignore_errors=True)
    return {"store_objects": objects2 - objects, "store_bytes": size2 - size}


def _store_size(root: Path) -> tuple[int, int]:
    files = [p for p in (root / "objects").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable
    metrics: tuple[str, ...]        # what it reports, in table order
    tools: tuple[str, ...] = ("gen", "gen0", "compose", "floor")
    once: bool = False          # deterministic: one repetition is enough
    make: Callable | None = None    # (tool name, project, ctx) -> Tool; None: bench.tools.TOOLS on the local engine
    reps: int | None = None     # repetitions unless --reps says otherwise (None: the run's default)
    swarm: bool = False         # runs on the Swarm lab, brought up for it; not in the default set
    full: bool = False          # skipped by --quick (unless --cases names it)
    slow: bool = False          # the N=200 case: its own, smaller repetition count (--reps-200)
    needs: str | None = None    # a gen feature (bench.tools.gen_features) without which it is reported n/a


SWARM_REPS = 3
SLOW_REPS = 3
GEN_TOOLS = ("gen", "gen0")
MISSING = {"warm": "gen warm missing", "version": "gen --version missing"}


def swarm_cases() -> list[Case]:
    return [Case("swarm-change", swarm.change, ("swarm_change10", "swarm_rollback10"), ("gen0", "gen", "stack"),
                 make=swarm.make_tool, reps=SWARM_REPS, swarm=True)]


def all_cases(n: int) -> list[Case]:
    return [Case("cold10", cold(10), ("cold10",)),
            Case("cold50", cold(50), ("cold50",), full=True),
            Case("noop", noop, (f"noop{n}",)),
            Case("change", change, (f"change{n}", f"rollback{n}")),
            Case("rollback-cold", change_cold, (f"change{n}_warm0", f"rollback{n}_cold"), GEN_TOOLS,
                 needs="warm"),
            Case("healthy", healthy, ("healthy1",)),
            Case("startup", startup, ("version", f"list{FEW}"), ("gen",)),
            Case("build", build, (f"build{BIG}", f"build{BIG}_warm"), ("gen",)),
            Case("list", listing, (f"list{GENERATIONS}",), ("gen",)),
            Case("store", store_growth, ("store_objects", "store_bytes"), ("gen",), once=True),
            Case("n200", at_scale, (f"cold{SCALE}", f"noop{SCALE}", f"change{SCALE}", f"status{SCALE}"),
                 full=True, slow=True)]


def unavailable(case: Case, features: dict[str, bool]) -> dict[str, str]:
    """{metric: why it is n/a} for what the gen under test cannot run (a missing verb), else {}."""
    if case.needs and not features.get(case.needs):
        return {m: MISSING[case.needs] for m in case.metrics}
    if case.name == "startup" and not features.get("version"):
        return {"version": MISSING["version"]}
    return {}
