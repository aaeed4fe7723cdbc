"""`just bench`: time gen against Docker Compose v2 and a Docker SDK floor on the local engine, and (when
asked: --swarm, or --cases swarm) against `docker stack deploy` on the bench's own 3-node Swarm lab.

    python -m bench.run [--reps N] [--reps-200 N] [--cases cold10,change,...] [--quick] [--swarm]
    python -m bench.run --profile CASE[,CASE] [--profile-tool gen0|gen]

Tools alternate within every repetition (the order rotates), each run gets fresh projects and a
fresh gen state dir, and everything a run made on the engine is removed after each repetition and
at exit, even on an error, Ctrl-C or SIGTERM (bench.cleanup; what a killed run left is removed by the next
one). gen runs twice per deploy case: as users get it (`gen`, 1 s stability window) and at Compose's
guarantee (`gen0`, --stable-for 0), on which issue 15's speed targets are judged. The N=200 case defaults to
3 repetitions (fewer with --reps below 3, or --reps-200); the Swarm cases bring a lab up on a free slot
(scripts/swarm-lab), take it down at the end and default to 3 repetitions. A case needing a gen verb the gen
under test lacks (`gen warm`, `gen --version`) is reported n/a. Exits non-zero when a case cannot run, never
because of a time.

--profile runs, for each named case (a metric such as change50, noop200, status200, rollback50_cold,
list5, or a case name for all its metrics), the case's setup and then gen's measured command once under
pyinstrument, writes results/profiles/<metric>.txt (and .flat.txt) and prints the top lines; it writes
no results and times nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path

import docker

from bench import cases as C
from bench import cleanup, profiling, report, specs, swarmlab, targets, tools
from bench.tools import (
    TOOLS,
    DeployFailed,
    ToolMissing,
    client,
    compose_binary,
    compose_version,
    gen_binary,
)

RESULTS = Path(__file__).resolve().parent / "results"
ALIASES = {"rollback": "change,rollback-cold", "cold": "cold10,cold50", "swarm": "swarm-change",
           "swarm-rollback": "swarm-change", "scale": "n200"}
UNPROFILED = {"store_objects", "store_bytes"}       # counted, not timed


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="just bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions per case (default 5; 3 with --quick and for the Swarm cases)")
    p.add_argument("--reps-200", type=int, default=None,
                   help=f"repetitions of the N=200 case (default {C.SLOW_REPS}, or --reps when smaller)")
    p.add_argument("--cases", default="", help="comma-separated case names (cold10, cold50, noop, change, "
                   "rollback-cold, healthy, startup, build, list, store, n200, swarm-change) or metric names "
                   "(e.g. change50, status200); aliases: rollback, cold, scale, swarm. Default: all but the Swarm ones")
    p.add_argument("--swarm", action="store_true",
                   help="add the Swarm cases (swarm-change, swarm-rollback) on a lab of the bench's own")
    p.add_argument("--quick", action="store_true",
                   help="reps=3, N=10, no cold50 and no N=200 case (unless --cases names them), for iteration")
    p.add_argument("--profile", default="", metavar="CASE[,CASE]",
                   help="profile gen's measured command of these cases (metric or case names) with pyinstrument")
    p.add_argument("--profile-tool", choices=("gen0", "gen"), default="gen0",
                   help="which gen line to profile (default gen0: --stable-for 0, the targets' line)")
    p.add_argument("--gen", type=Path, default=None,
                   help="gen CLI to measure (default: this venv's; e.g. one installed from a commit)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    args = p.parse_args(argv)
    args.reps_given = args.reps is not None
    args.reps = args.reps or (3 if args.quick else 5)
    if args.reps < 1 or (args.reps_200 is not None and args.reps_200 < 1):
        p.error("--reps and --reps-200 must be at least 1")
    return args


def select(args) -> list[C.Case]:
    n = 10 if args.quick else 50
    available = C.all_cases(n) + C.swarm_cases()
    names = args.profile or args.cases
    if not names:
        return [c for c in available if not c.swarm and not (args.quick and c.full)] + \
            [c for c in available if c.swarm and args.swarm]
    wanted = {w for name in names.split(",") if name.strip()
              for w in ALIASES.get(name.strip(), name.strip()).split(",")}
    known = {c.name for c in available} | {m for c in available for m in c.metrics}
    if wanted - known:
        sys.exit(f"bench: unknown case(s) {', '.join(sorted(wanted - known))}; known: {', '.join(sorted(known))}")
    chosen = [c for c in available if c.name in wanted or wanted & set(c.metrics) or (c.swarm and args.swarm)]
    if args.profile:
        args.profiled = {m for c in chosen for m in c.metrics if c.name in wanted or m in wanted} - UNPROFILED
        if any(c.swarm for c in chosen) or not args.profiled:
            sys.exit("bench: --profile takes the engine-local timed cases (not swarm, not store)")
    return chosen


def preflight(api, selected: list[C.Case], profiling_run: bool) -> str:
    """Fail early, with a clear message, when a tool or the image is missing."""
    gen_binary()
    version = "-"
    if not profiling_run and any(not c.swarm and c.tools != ("gen",) for c in selected):
        compose_binary()
        version = compose_version()
        if not version.startswith("2."):
            raise ToolMissing(f"expected Docker Compose v2, found {version!r}")
    if any(c.swarm for c in selected) and not shutil.which("docker"):
        raise ToolMissing("the docker CLI is missing: the Swarm cases run `docker stack deploy`")
    if profiling_run and (why := profiling.available(gen_binary())):
        raise ToolMissing(why)
    try:
        api.inspect_image(specs.IMAGE)
    except docker.errors.ImageNotFound:
        raise ToolMissing(f"image {specs.IMAGE} is missing: run scripts/ensure-images (never pulled)") from None
    return version


def case_reps(case: C.Case, args) -> int:
    if case.once or args.profile:
        return 1
    if case.swarm:
        return args.reps if args.reps_given else case.reps
    if case.slow:
        return args.reps_200 or min(args.reps, C.SLOW_REPS)
    return args.reps


def case_tools(case: C.Case, args) -> tuple[str, ...]:
    """Every tool of the case; when profiling, the one gen line asked for (or the case's only gen)."""
    if not args.profile:
        return case.tools
    return (args.profile_tool,) if args.profile_tool in case.tools else tuple(t for t in case.tools if t == "gen")


def measure(selected: list[C.Case], ctx: C.Ctx, args) -> tuple[dict, list[str]]:
    samples: dict[str, dict[str, list[float]]] = {}
    errors: list[str] = []
    broken: set[str] = set()
    limit = {c.name: case_reps(c, args) for c in selected}
    for rep in range(max(limit.values(), default=0)):
        for case in selected:
            if case.name in broken or rep >= limit[case.name]:
                continue
            order = case_tools(case, args)
            k = rep % len(order)
            for name in order[k:] + order[:k]:          # alternate who goes first
                got = run_one(case, name, rep, ctx, errors)
                if got is None:
                    broken.add(case.name)
                    break
                for metric, value in got.items():
                    samples.setdefault(metric, {}).setdefault(name, []).append(value)
                    shown = report.Stat.of([value]).show(metric)
                    print(f"  rep {rep + 1}/{limit[case.name]}  {metric:<16} {name:<8} {shown.split(' (')[0]}"
                          + ("  (under pyinstrument)" if metric in ctx.profile else ""), flush=True)
    return samples, errors


def run_one(case: C.Case, name: str, rep: int, ctx: C.Ctx, errors: list[str]) -> dict | None:
    """One tool through one case, torn down whatever happens; None (and the error recorded) on failure."""
    project = f"{ctx.prefix}{case.name}-{name}-r{rep + 1}"
    tool = case.make(name, project, ctx) if case.make else TOOLS[name](project, ctx.work, ctx.api)
    got = None
    try:
        got = case.fn(tool, ctx)
    except (DeployFailed, ToolMissing, RuntimeError, OSError, docker.errors.DockerException) as e:
        errors.append(f"{case.name} [{name}, rep {rep + 1}]: {e}")
        print(f"  FAILED  {errors[-1]}", file=sys.stderr, flush=True)
    finally:
        try:
            tool.teardown()
        except (docker.errors.DockerException, RuntimeError, DeployFailed) as e:
            errors.append(f"{case.name} [{name}, rep {rep + 1}]: cleanup failed: {e}")
            got = None
    return got


def start_lab(ctx: C.Ctx) -> None:
    print("bench: bringing the Swarm lab up (scripts/swarm-lab up)", flush=True)
    ctx.lab = swarmlab.up()
    ctx.swarm_api = ctx.lab.client()
    print(f"bench: Swarm lab up on slot {ctx.lab.slot} in {ctx.lab.bringup_s:.1f} s (the script's count; "
          f"{ctx.lab.wall_s:.1f} s waited); manager {ctx.lab.manager_host}", flush=True)


def stop_lab(ctx: C.Ctx) -> None:
    if ctx.lab is None:
        return
    if ctx.swarm_api is not None:
        ctx.swarm_api.close()
    trouble = ctx.lab.down()
    print(f"bench: {trouble}" if trouble else f"bench: Swarm lab (slot {ctx.lab.slot}) down", file=sys.stderr)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.profiled, args.load_start = set(), round(os.getloadavg()[0], 2)
    selected = select(args)
    if args.gen:
        tools.GEN_BIN = args.gen.absolute()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    api = client()
    try:
        version = preflight(api, selected, bool(args.profile))
        features = tools.gen_features()
        stale = cleanup.sweep_stale(api)
    except (ToolMissing, DeployFailed, docker.errors.DockerException) as e:
        print(f"bench: cannot run: {e}", file=sys.stderr)
        return 1
    if stale:
        print(f"bench: removed {stale} container(s) left by an earlier bench run that was killed", file=sys.stderr)
    na = {m: why for c in selected for m, why in C.unavailable(c, features).items()}
    runnable = [c for c in selected if not (c.needs and not features.get(c.needs))]
    work = Path(tempfile.mkdtemp(prefix="gen-bench-"))
    ctx = C.Ctx(work=work, prefix=f"gb{os.getpid()}-", api=api, n=10 if args.quick else 50, features=features,
                profile=frozenset(args.profiled))
    planned = ", ".join(f"{c.name} x{case_reps(c, args)}" for c in runnable)
    print(f"bench: {planned} (repetitions); work dir {work}", flush=True)
    for metric, why in sorted(na.items()):
        print(f"bench: {metric}: n/a ({why})", flush=True)
    try:
        if any(c.swarm for c in runnable):
            start_lab(ctx)
        samples, errors = measure(runnable, ctx, args)
        if args.profile:
            errors += show_profiles(ctx, args, na)
    except swarmlab.LabUnavailable as e:
        print(f"bench: cannot run the Swarm cases: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; cleaning up", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        clean_up(api, ctx)
    if not args.profile:
        write_results(args, ctx, selected, samples, errors, na, version, features)
    if errors:
        print(f"bench: {len(errors)} case(s) could not run:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def clean_up(api, ctx: C.Ctx) -> None:
    """Remove everything of this run (containers, networks, its volumes; the work dir) and the Swarm lab.
    A second Ctrl-C or SIGTERM is ignored meanwhile: stopping the cleanup half-way would leave what it is removing."""
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOPPING}
    try:
        removed = cleanup.sweep_until_clean(api, ctx.prefix)
        if removed:
            print(f"bench: removed {removed} leftover container(s)", file=sys.stderr)
        if cleanup.LEFT:
            print(f"bench: {len(cleanup.LEFT)} empty network(s) left, dockerd refusing to remove them (a stale "
                  f"endpoint count, reset by a dockerd restart; a bench run an hour on retries them): "
                  f"{', '.join(sorted(cleanup.LEFT.values()))}", file=sys.stderr)
    except docker.errors.DockerException as e:
        print(f"bench: cleanup failed, remove what is labelled {ctx.prefix}* by hand: {e}", file=sys.stderr)
    finally:
        shutil.rmtree(ctx.work, ignore_errors=True)
        stop_lab(ctx)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def show_profiles(ctx: C.Ctx, args, na: dict[str, str]) -> list[str]:
    """Render each profiled metric's session to results/profiles/ and print its top lines."""
    errors = []
    for metric in sorted(args.profiled):
        tool, session = ctx.profiled.get(metric, ("", None))
        if metric in na:
            print(f"\n== {metric}: n/a ({na[metric]})")
        elif session is None or not session.is_file():
            errors.append(f"{metric}: not profiled (its case failed, or no gen command of it ran)")
        else:
            path, top = profiling.render(session, args.out / "profiles", metric)
            print(f"\n== {metric} ({tool}): {path} (functions by own time: {path.with_suffix('.flat.txt').name})")
            print("\n".join(top))
    return errors


def write_results(args, ctx: C.Ctx, selected: list[C.Case], samples: dict, errors: list[str], na: dict,
                  version: str, features: dict) -> None:
    st = report.stats(samples)
    tgt = targets.targets(st, ctx.n, na, features)
    order = [m for c in selected if not c.swarm for m in c.metrics]
    print()
    print(report.console(st, tgt, order, na))
    meta = {**report.machine(version), "gen_cli": str(tools.GEN_BIN), "gen_is_repo": not args.gen,
            "gen_features": features, "loadavg_start": args.load_start}
    if ctx.lab is not None:
        meta["swarm_lab"] = {"slot": ctx.lab.slot, "bringup_s": ctx.lab.bringup_s,
                             "up_wall_s": round(ctx.lab.wall_s, 2)}
    slow = [c for c in selected if c.slow]
    options = {"reps": args.reps, "reps_200": case_reps(slow[0], args) if slow else None, "quick": args.quick,
               "cases": [c.name for c in selected]}
    swarm_reps = [c.reps for c in selected if c.swarm]
    if swarm_reps:
        options["swarm_reps"] = args.reps if args.reps_given else swarm_reps[0]
    stem = "latest-swarm" if all(c.swarm for c in selected) else "latest"
    report.write(args.out, meta, options, st, tgt, errors, order, na, stem)
    print(f"\nresults: {args.out / (stem + '.json')}, {args.out / (stem + '.md')}")


if __name__ == "__main__":
    sys.exit(main())
