"""`just bench`: time gen against Docker Compose v2 and a Docker SDK floor on the local engine, and (when
asked: --swarm, or --cases swarm) against `docker stack deploy` on the bench's own 3-node Swarm lab.

    python -m bench.run [--reps N] [--cases cold10,change,...] [--quick] [--swarm]

Tools alternate within every repetition (the order rotates), each run gets fresh projects and a
fresh gen state dir, and everything a run made on the engine is removed after each repetition and
at exit, even on an error or Ctrl-C. The Swarm cases bring a lab up on a free slot (scripts/swarm-lab)
and take it down at the end; they default to 3 repetitions. Exits non-zero when a case cannot run, never
because of a time.
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
from bench import report, specs, swarmlab, tools
from bench.tools import TOOLS, DeployFailed, ToolMissing, client, compose_binary, compose_version, gen_binary, sweep

RESULTS = Path(__file__).resolve().parent / "results"
ALIASES = {"rollback": "change", "cold": "cold10,cold50", "swarm": "swarm-change", "swarm-rollback": "swarm-change"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="just bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions per case (default 5; 3 with --quick and for the Swarm cases)")
    p.add_argument("--cases", default="", help="comma-separated: cold10,cold50,noop,change,rollback,healthy,"
                                               "build,list,store,swarm-change,swarm-rollback (default: all but "
                                               "the Swarm ones)")
    p.add_argument("--swarm", action="store_true",
                   help="add the Swarm cases (swarm-change, swarm-rollback) on a lab of the bench's own")
    p.add_argument("--quick", action="store_true", help="reps=3 and N=10 only, for iteration")
    p.add_argument("--gen", type=Path, default=None,
                   help="gen CLI to measure (default: this venv's; e.g. one installed from a commit)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    args = p.parse_args(argv)
    args.reps_given = args.reps is not None
    args.reps = args.reps or (3 if args.quick else 5)
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def select(args) -> list[C.Case]:
    n = 10 if args.quick else 50
    available = C.all_cases(n, args.quick) + C.swarm_cases()
    if not args.cases:
        return [c for c in available if not c.swarm or args.swarm]
    wanted = {w for name in args.cases.split(",") if name.strip()
              for w in ALIASES.get(name.strip(), name.strip()).split(",")}
    known = {c.name for c in C.all_cases(n, False) + C.swarm_cases()}
    if wanted - known:
        sys.exit(f"bench: unknown case(s) {', '.join(sorted(wanted - known))}; known: {', '.join(sorted(known))}")
    return [c for c in available if c.name in wanted or (c.swarm and args.swarm)]


def preflight(api, selected: list[C.Case]) -> str:
    """Fail early, with a clear message, when a tool or the image is missing."""
    gen_binary()
    version = "-"
    if any(not c.swarm and c.tools != ("gen",) for c in selected):
        compose_binary()
        version = compose_version()
        if not version.startswith("2."):
            raise ToolMissing(f"expected Docker Compose v2, found {version!r}")
    if any(c.swarm for c in selected) and not shutil.which("docker"):
        raise ToolMissing("the docker CLI is missing: the Swarm cases run `docker stack deploy`")
    try:
        api.inspect_image(specs.IMAGE)
    except docker.errors.ImageNotFound:
        raise ToolMissing(f"image {specs.IMAGE} is missing: run scripts/ensure-images (never pulled)") from None
    return version


def case_reps(case: C.Case, reps: int, reps_given: bool) -> int:
    return 1 if case.once else reps if reps_given or not case.reps else case.reps


def measure(selected: list[C.Case], ctx: C.Ctx, reps: int, reps_given: bool = True) -> tuple[dict, list[str]]:
    samples: dict[str, dict[str, list[float]]] = {}
    errors: list[str] = []
    broken: set[str] = set()
    limit = {c.name: case_reps(c, reps, reps_given) for c in selected}
    for rep in range(max(limit.values(), default=0)):
        for case in selected:
            if case.name in broken or rep >= limit[case.name]:
                continue
            k = rep % len(case.tools)
            for name in case.tools[k:] + case.tools[:k]:          # alternate who goes first
                project = f"{ctx.prefix}{case.name}-{name}-r{rep + 1}"
                tool = case.make(name, project, ctx) if case.make else TOOLS[name](project, ctx.work, ctx.api)
                try:
                    got = case.fn(tool, ctx)
                except (DeployFailed, ToolMissing, RuntimeError, OSError, docker.errors.DockerException) as e:
                    errors.append(f"{case.name} [{name}, rep {rep + 1}]: {e}")
                    print(f"  FAILED  {errors[-1]}", file=sys.stderr, flush=True)
                    broken.add(case.name)
                    break
                finally:
                    try:
                        tool.teardown()
                    except (docker.errors.DockerException, RuntimeError, DeployFailed) as e:
                        errors.append(f"{case.name} [{name}, rep {rep + 1}]: cleanup failed: {e}")
                        broken.add(case.name)
                for metric, value in got.items():
                    samples.setdefault(metric, {}).setdefault(name, []).append(value)
                    shown = report.Stat.of([value]).show(metric)
                    print(f"  rep {rep + 1}/{limit[case.name]}  {metric:<16} {name:<8} {shown.split(' (')[0]}",
                          flush=True)
    return samples, errors


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
    selected = select(args)
    if args.gen:
        tools.GEN_BIN = args.gen.absolute()
    signal.signal(signal.SIGTERM, _terminate)
    api = client()
    try:
        version = preflight(api, selected)
    except (ToolMissing, DeployFailed, docker.errors.DockerException) as e:
        print(f"bench: cannot run: {e}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gen-bench-"))
    ctx = C.Ctx(work=work, prefix=f"gb{os.getpid()}-", api=api, n=10 if args.quick else 50)
    planned = ", ".join(f"{c.name} x{case_reps(c, args.reps, args.reps_given)}" for c in selected)
    print(f"bench: {planned} (repetitions); work dir {work}", flush=True)
    try:
        if any(c.swarm for c in selected):
            start_lab(ctx)
        samples, errors = measure(selected, ctx, args.reps, args.reps_given)
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
        try:
            removed = sweep(api, ctx.prefix)
            if removed:
                print(f"bench: removed {removed} leftover container(s)", file=sys.stderr)
        except docker.errors.DockerException as e:
            print(f"bench: cleanup failed, remove what is labelled {ctx.prefix}* by hand: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        stop_lab(ctx)
    st = report.stats(samples)
    tgt = report.targets(st, ctx.n)
    print()
    print(report.console(st, tgt))
    meta = {**report.machine(version), "gen_cli": str(tools.GEN_BIN), "gen_is_repo": not args.gen}
    if ctx.lab is not None:
        meta["swarm_lab"] = {"slot": ctx.lab.slot, "bringup_s": ctx.lab.bringup_s, "up_wall_s": round(ctx.lab.wall_s, 2)}
    options = {"reps": args.reps, "quick": args.quick, "cases": [c.name for c in selected]}
    swarm_reps = [c.reps for c in selected if c.swarm]
    if swarm_reps:
        options["swarm_reps"] = args.reps if args.reps_given else swarm_reps[0]
    stem = "latest-swarm" if all(c.swarm for c in selected) else "latest"
    report.write(args.out, meta, options, samples, st, tgt, errors, stem)
    print(f"\nresults: {args.out / (stem + '.json')}, {args.out / (stem + '.md')}")
    if errors:
        print(f"bench: {len(errors)} case(s) could not run:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
