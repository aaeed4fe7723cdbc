"""The benchmark cases. A container case runs one tool through a scenario and returns the timed
metrics; a gen-only case (build, list, store) runs the gen CLI alone; a Swarm case (bench.swarm) runs on
the bench's own Swarm lab, only when asked for. Seconds unless said otherwise.
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

    def spec(self, key: str, make: Callable[[], list[specs.Service]]) -> Path:
        if key not in self.dirs:
            self.dirs[key] = specs.write(self.work / "specs" / key, "bench", make())
        return self.dirs[key]


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


# -- container cases: same scenario for every tool ------------------------------------------------
def cold(n: int):
    def case(tool: Tool, ctx: Ctx) -> dict[str, float]:
        return {f"cold{n}": timed(tool.deploy, ctx.spec(f"n{n}", lambda: specs.services(n)))}
    return case


def noop(tool: Tool, ctx: Ctx) -> dict[str, float]:
    spec = ctx.spec(f"n{ctx.n}", lambda: specs.services(ctx.n))
    tool.deploy(spec)
    return {f"noop{ctx.n}": timed(tool.deploy, spec)}


def change(tool: Tool, ctx: Ctx) -> dict[str, float]:
    v1 = ctx.spec(f"n{ctx.n}", lambda: specs.services(ctx.n))
    v2 = ctx.spec(f"n{ctx.n}-changed", lambda: specs.services(ctx.n, changed=ctx.n // 2))
    tool.deploy(v1)
    return {f"change{ctx.n}": timed(tool.deploy, v2), f"rollback{ctx.n}": timed(tool.rollback, v1)}


def healthy(tool: Tool, ctx: Ctx) -> dict[str, float]:
    return {"healthy1": timed(tool.deploy, ctx.spec("healthy1", specs.healthy_single))}


# -- gen-only cases ------------------------------------------------------------------------------
def build(gen: Gen, ctx: Ctx) -> dict[str, float]:
    spec = ctx.spec(f"n{BIG}", lambda: specs.services(BIG)) / "gen.toml"
    argv = gen.cmd("build", spec, "-p", gen.project)
    first = timed(run, argv, "gen build")            # empty store: writes 1,001 objects
    again = timed(run, argv, "gen build")            # every object already present
    return {f"build{BIG}": first, f"build{BIG}_warm": again}


def listing(gen: Gen, ctx: Ctx) -> dict[str, float]:
    state = ctx.cache.get("list_state")
    if state is None:
        state = ctx.cache["list_state"] = _many_generations(gen, ctx)
    argv = [gen.bin, "list", "-p", "many", "--state-dir", str(state)]
    return {f"list{GENERATIONS}": timed(run, argv, "gen list")}


def _many_generations(gen: Gen, ctx: Ctx) -> Path:
    """A profile with GENERATIONS records written directly, in gen/profile.py's format, all naming
    one real manifest built by `gen build`; `current` points at the newest."""
    state = ctx.work / "state-list"
    spec = ctx.spec("n10", lambda: specs.services(10)) / "gen.toml"
    built = json.loads(run([gen.bin, "build", str(spec), "-p", "many", "--state-dir", str(state), "--json"],
                           "gen build"))
    gens = state / "profiles" / "many" / "generations"
    gens.mkdir(parents=True, exist_ok=True)
    for number in range(1, GENERATIONS + 1):
        record = {"generation": number, "manifest": built["hash"], "created": "2025-01-01T00:00:00Z",
                  "services": len(built["services"])}
        (gens / f"{number}.json").write_text(json.dumps(record, sort_keys=True) + "\n")
    os.symlink(f"generations/{GENERATIONS}.json", state / "profiles" / "many" / "current")
    listed = json.loads(run([gen.bin, "list", "-p", "many", "--state-dir", str(state), "--json"], "gen list"))
    if len(listed) != GENERATIONS or not listed[-1]["current"]:
        raise RuntimeError(f"gen list read {len(listed)} generation(s) back, expected {GENERATIONS}: "
                           "has gen/profile.py's record format changed?")
    return state


def store_growth(gen: Gen, ctx: Ctx) -> dict[str, float]:
    v1 = ctx.spec(f"n{BIG}", lambda: specs.services(BIG)) / "gen.toml"
    v2 = ctx.spec(f"n{BIG}-changed", lambda: specs.services(BIG, changed=BIG // 2)) / "gen.toml"
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
    tools: tuple[str, ...] = ("gen", "compose", "floor")
    once: bool = False          # deterministic: one repetition is enough
    make: Callable | None = None    # (tool name, project, ctx) -> Tool; None: bench.tools.TOOLS on the local engine
    reps: int | None = None     # repetitions unless --reps says otherwise (None: the run's default)
    swarm: bool = False         # runs on the Swarm lab, brought up for it; not in the default set


WINDOWED = ("gen", "gen0", "compose", "floor")     # cases where gen's stability window matters
SWARM_REPS = 3


def swarm_cases() -> list[Case]:
    return [Case("swarm-change", swarm.change, ("gen0", "gen", "stack"), make=swarm.make_tool, reps=SWARM_REPS,
                 swarm=True)]


def all_cases(n: int, quick: bool) -> list[Case]:
    cases = [Case("cold10", cold(10), WINDOWED)]
    if not quick:
        cases.append(Case("cold50", cold(50), WINDOWED))
    return cases + [Case("noop", noop), Case("change", change, WINDOWED), Case("healthy", healthy),
                    Case("build", build, ("gen",)), Case("list", listing, ("gen",)),
                    Case("store", store_growth, ("gen",), once=True)]
