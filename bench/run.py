"""`just bench`: time gen against Docker Compose v2 and a Docker SDK floor on the local engine.

    python -m bench.run [--reps N] [--cases cold10,change,...] [--quick]

Tools alternate within every repetition (the order rotates), each run gets fresh projects and a
fresh gen state dir, and everything a run made on the engine is removed after each repetition and
at exit, even on an error or Ctrl-C. Exits non-zero when a case cannot run, never because of a time.
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
from bench import report, specs, tools
from bench.tools import TOOLS, DeployFailed, ToolMissing, client, compose_binary, compose_version, gen_binary, sweep

RESULTS = Path(__file__).resolve().parent / "results"
ALIASES = {"rollback": "change", "cold": "cold10,cold50"}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="just bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=None, help="repetitions per case (default 5; 3 with --quick)")
    p.add_argument("--cases", default="", help="comma-separated: cold10,cold50,noop,change,rollback,healthy,"
                                               "build,list,store (default: all)")
    p.add_argument("--quick", action="store_true", help="reps=3 and N=10 only, for iteration")
    p.add_argument("--gen", type=Path, default=None,
                   help="gen CLI to measure (default: this venv's; e.g. one installed from a commit)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    args = p.parse_args(argv)
    args.reps = args.reps or (3 if args.quick else 5)
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def select(args) -> list[C.Case]:
    n = 10 if args.quick else 50
    available = C.all_cases(n, args.quick)
    if not args.cases:
        return available
    wanted = {w for name in args.cases.split(",") if name.strip()
              for w in ALIASES.get(name.strip(), name.strip()).split(",")}
    known = {c.name for c in C.all_cases(n, False)}
    if wanted - known:
        sys.exit(f"bench: unknown case(s) {', '.join(sorted(wanted - known))}; known: {', '.join(sorted(known))}")
    return [c for c in available if c.name in wanted]


def preflight(api) -> str:
    """Fail early, with a clear message, when a tool or the image is missing."""
    gen_binary()
    compose_binary()
    version = compose_version()
    if not version.startswith("2."):
        raise ToolMissing(f"expected Docker Compose v2, found {version!r}")
    try:
        api.inspect_image(specs.IMAGE)
    except docker.errors.ImageNotFound:
        raise ToolMissing(f"image {specs.IMAGE} is missing: run scripts/ensure-images (never pulled)") from None
    return version


def measure(selected: list[C.Case], ctx: C.Ctx, reps: int) -> tuple[dict, list[str]]:
    samples: dict[str, dict[str, list[float]]] = {}
    errors: list[str] = []
    broken: set[str] = set()
    for rep in range(reps):
        for case in selected:
            if case.name in broken or (case.once and rep > 0):
                continue
            k = rep % len(case.tools)
            for name in case.tools[k:] + case.tools[:k]:          # alternate who goes first
                tool = TOOLS[name](f"{ctx.prefix}{case.name}-{name}-r{rep + 1}", ctx.work, ctx.api)
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
                    except docker.errors.DockerException as e:
                        errors.append(f"{case.name} [{name}, rep {rep + 1}]: cleanup failed: {e}")
                        broken.add(case.name)
                for metric, value in got.items():
                    samples.setdefault(metric, {}).setdefault(name, []).append(value)
                    shown = report.Stat.of([value]).show(metric)
                    print(f"  rep {rep + 1}/{reps}  {metric:<16} {name:<8} {shown.split(' (')[0]}", flush=True)
    return samples, errors


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
        version = preflight(api)
    except (ToolMissing, DeployFailed, docker.errors.DockerException) as e:
        print(f"bench: cannot run: {e}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="gen-bench-"))
    ctx = C.Ctx(work=work, prefix=f"gb{os.getpid()}-", api=api, n=10 if args.quick else 50)
    print(f"bench: {args.reps} repetition(s) of {', '.join(c.name for c in selected)}; work dir {work}",
          flush=True)
    try:
        samples, errors = measure(selected, ctx, args.reps)
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
    st = report.stats(samples)
    tgt = report.targets(st, ctx.n)
    print()
    print(report.console(st, tgt))
    meta = {**report.machine(version), "gen_cli": str(tools.GEN_BIN), "gen_is_repo": not args.gen}
    report.write(args.out, meta, {"reps": args.reps, "quick": args.quick,
                                  "cases": [c.name for c in selected]}, samples, st, tgt, errors)
    print(f"\nresults: {args.out / 'latest.json'}, {args.out / 'latest.md'}")
    if errors:
        print(f"bench: {len(errors)} case(s) could not run:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
