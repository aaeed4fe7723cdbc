"""The `gen` command: parse arguments, call the library, render. No logic of its own.

Exit codes: 0 ok, 1 bad input or refused, 2 activation failed and rolled back, 3 drift or an
interrupted activation that could not be repaired. Errors go to stderr as "error: subject: reason";
`--json` output (stdout) is only printed on success. Colour only when stdout is a terminal.
"""
# No `from __future__ import annotations`: typer reads every verb's annotations at each start (string ones cost 2 ms more).

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

from gen.cli.closures import register as register_closure_verbs
from gen.cli.options import (ClosureOpt, ComposeProfileOpt, DryRunOpt, JsonOpt, LockTimeoutOpt, ProfileOpt, Pull, PullOpt, QuietOpt,
                             PushToOpt, RebuildOpt, StableForOpt, StateDirOpt, TargetKind, TargetOpt, TimeoutOpt,
                             gen_options)

EXAMPLES = """Examples:

  gen switch examples/hello/gen.toml     all healthy, or nothing changed

  gen diff -p hello examples/hello/gen.toml   what that switch would change

  gen rollback -p hello                  back to the previous generation

  gen list -p hello; gen show -p hello 2; gen log -p hello

  gen verify                             rehash the store, check generations

Verbs take -p/--profile NAME, --state-dir DIR and (for scripts) --json."""

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Nix-style immutable generations for Docker: build, switch, rollback, diff, show, log.",
                  epilog=EXAMPLES, callback=gen_options)     # gen_options: --version


def _gen(state_dir: Optional[Path], timeout: float = 60.0, lock_timeout: float = 30.0, quiet: bool = True,
         reporter=None, stable_for: float = 1.0, pull: Optional[Pull] = None, rebuild: bool = False,
         compose_profiles: list[str] | None = None, closure: bool | None = None, target=None, push_to=None):
    from gen.api import Gen, Options
    from gen.cli.progress import Quiet
    reporter = reporter or Quiet()
    return Gen(state_dir, options=Options(timeout_s=timeout, stability_s=stable_for, closure=closure),
               lock_timeout=lock_timeout,
               progress=reporter.progress, on_plan=reporter.on_plan, pull=Pull(pull).value if pull else None,
               rebuild=rebuild, compose_profiles=compose_profiles or (), target=TargetKind(target).value if target else None,
               push_to=push_to)


def _reporter(quiet: bool):
    from gen.cli.progress import reporter
    return reporter(quiet)


# -- output helpers ------------------------------------------------------------------------------
def _emit(lines: list[tuple[str, str]]) -> None:
    from gen.cli.views import emit
    emit(lines)


def _json(value) -> None:
    print(json.dumps(value, sort_keys=False))


def _render_plan(plan) -> str:
    from gen.cli.progress import render_plan
    return render_plan(plan)


# -- build, switch, rollback, recover ---------------------------------------------------------------
@app.command()
def build(spec: Path = typer.Argument(..., help="Spec file (TOML, or a Compose YAML file)."),
          profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt,
          pull: Optional[Pull] = PullOpt, rebuild: bool = RebuildOpt, compose_profile: list[str] = ComposeProfileOpt,
          quiet: bool = QuietOpt):
    """Compile SPEC into the store; print the manifest hash (the generation's identity). Touches no container.

    Images are pinned by ID: absent ones are pulled (see --pull), `build` services built (reused while their
    inputs are unchanged); progress goes to stderr.

    Example: gen build examples/shop/gen.toml --pull always
    """
    with _reporter(quiet) as rep:
        g = _gen(state_dir, reporter=rep, pull=pull, rebuild=rebuild, compose_profiles=compose_profile)
        compiled = g.build(spec, profile)
    if as_json:
        _json({"profile": compiled.manifest["profile"], "hash": compiled.manifest_hash,
               "services": {n: h for n, (h, _) in compiled.services.items()},
               "source": g.source_of(compiled.manifest_hash)})
        return
    print(f"profile {compiled.manifest['profile']}: {len(compiled.services)} service(s)", file=sys.stderr)
    print(compiled.manifest_hash)


@app.command()
def switch(target: str = typer.Argument(..., help="Spec file, or a manifest hash (or unique prefix)."),
           profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt,
           timeout: float = TimeoutOpt, lock_timeout: float = LockTimeoutOpt, dry_run: bool = DryRunOpt,
           quiet: bool = QuietOpt, as_json: bool = JsonOpt, stable_for: float = StableForOpt,
           pull: Optional[Pull] = PullOpt, rebuild: bool = RebuildOpt, compose_profile: list[str] = ComposeProfileOpt,
           closure: Optional[bool] = ClosureOpt, runs_on: Optional[TargetKind] = TargetOpt, push_to: Optional[str] = PushToOpt):
    """Build if needed, then activate as one transaction: all healthy, or the previous generation restored.

    Example: gen switch examples/shop/gen.toml --timeout 120
    """
    with _reporter(quiet or dry_run) as rep:
        result = _gen(state_dir, timeout, lock_timeout, reporter=rep, stable_for=stable_for, pull=pull,
                      rebuild=rebuild, compose_profiles=compose_profile, closure=closure, target=runs_on, push_to=push_to).switch(
            target, profile, dry_run=dry_run)
    _render_result(result, dry_run, as_json)


@app.command()
def rollback(profile: Optional[str] = ProfileOpt, to: Optional[int] = typer.Option(None, "--to", help="Generation number."),
             state_dir: Optional[Path] = StateDirOpt, timeout: float = TimeoutOpt,
             lock_timeout: float = LockTimeoutOpt, dry_run: bool = DryRunOpt,
             quiet: bool = QuietOpt, as_json: bool = JsonOpt, stable_for: float = StableForOpt,
             closure: Optional[bool] = ClosureOpt):
    """Activate the previous generation (or --to N). Moves `current`; creates no generation.

    Example: gen rollback -p shop --to 3
    """
    with _reporter(quiet or dry_run) as rep:
        result = _gen(state_dir, timeout, lock_timeout, reporter=rep, stable_for=stable_for, closure=closure).rollback(
            profile, to, dry_run=dry_run)
    _render_result(result, dry_run, as_json)


@app.command()
def recover(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt,
            timeout: float = TimeoutOpt, lock_timeout: float = LockTimeoutOpt, quiet: bool = QuietOpt,
            as_json: bool = JsonOpt, stable_for: float = StableForOpt):
    """Converge the engine on the current generation (after a crash, kill -9 or a daemon restart).

    Example: gen recover -p shop
    """
    with _reporter(quiet) as rep:
        result = _gen(state_dir, timeout, lock_timeout, reporter=rep, stable_for=stable_for).recover(profile)
    _render_result(result, False, as_json)


def _render_result(result, dry_run: bool, as_json: bool) -> None:
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if as_json:
        from gen.cli.progress import plan_json
        _json({"profile": result.profile, "generation": result.generation, "hash": result.manifest,
               "changed": result.changed, "message": result.message, "duration_s": round(result.duration_s, 3),
               "plan": plan_json(result.plan) if result.plan is not None else [],
               "notes": list(result.plan.notes) if result.plan is not None else [],
               "warnings": list(result.warnings)})
        return
    if dry_run and result.plan is not None:
        print(_render_plan(result.plan))
    print(result.message + ("" if dry_run else f" ({result.manifest[:12]})"))


# -- read-only verbs --------------------------------------------------------------------------------
@app.command()
def status(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """Compare the engine with the current generation. Exit 0 when they match, 3 otherwise.

    Example: gen status -p shop --json
    """
    report = _gen(state_dir).status(profile)
    if as_json:
        _json(report.to_json())
    else:
        from gen.cli.views import render_status
        print(render_status(report))
    if report.busy:
        raise typer.Exit(BUSY_EXIT)
    if not report.ok:
        raise typer.Exit(3)


@app.command("list")
def list_(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """List the profile's generations, the current one marked.

    Example: gen list -p shop --json
    """
    from gen.api import Gen
    prof, gens, current = Gen(state_dir).generations(profile)     # the hot path of `list`: no engine
    if as_json:
        _json([g.to_json(g.number == current) for g in gens])
        return
    lines = [f"{g.number:>5}   {g.created.replace('T', ' ').rstrip('Z')}   {g.services:>3} service(s)   "
             f"{g.manifest[:12]}{'   (current)' if g.number == current else ''}" for g in gens]
    print("\n".join(lines))


@app.command()
def diff(a: Optional[str] = typer.Argument(None, metavar="A", help="Generation number, manifest hash (prefix) or spec file."),
         b: Optional[str] = typer.Argument(None, metavar="B", help="The same; without B, A is compared with the current generation."),
         profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt,
         compose_profile: list[str] = ComposeProfileOpt):
    """Compare two deployments: services added, removed or changed, field by field. Exit 0.

    A and B: generation numbers, manifest hashes (or unique prefixes) or spec files.

    Without B, the current generation is compared with A.

    A changed service lists each changed field: image tag and ID, env keys, ports, volumes, healthcheck...

    A spec file is compiled in memory (images resolved on the engine), never written to the store.

    Example: gen diff -p shop 3 examples/shop/gen-v2.toml
    """
    from gen.cli.diffview import render
    d = _gen(state_dir, compose_profiles=compose_profile).diff(profile, a, b)
    if as_json:
        _json(d.to_json())
    else:
        _emit(render(d))


@app.command()
def show(number: Optional[int] = typer.Argument(None, metavar="N", help="Generation number (default: current)."),
         profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """One generation: number, hash, creation time, each service (hash and key fields) and the spec it was built from.

    Example: gen show -p shop 2
    """
    from gen.cli.diffview import render_show
    info = _gen(state_dir).show(profile, number)
    if as_json:
        _json(info)
    else:
        _emit(render_show(info))


@app.command()
def log(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """Every switch, rollback and recovery of the profile: time, kind, from and to generation, outcome, duration.

    Example: gen log -p shop --json
    """
    from gen.cli.views import render_log
    name, entries = _gen(state_dir).log(profile)
    if as_json:
        _json(entries)
    else:
        _emit(render_log(name, entries))


@app.command()
def verify(state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt, repair: bool = typer.Option(
        False, "--repair", help="Re-put broken objects a build of a recorded (or --from) spec makes; remove nothing."),
        specs: list[Path] = typer.Option([], "--from", help="A spec to rebuild from (repeatable; implies --repair).")):
    """Rehash the store; check every generation's objects exist. Exit 1 on any problem (left).

    Every object is rehashed. Every generation of every profile needs its manifest, its service objects and
    its spec source: what is missing or corrupt is named with the generations that need it.

    Example: gen verify --repair --from examples/shop/gen.toml
    """
    from gen.cli.views import render_verify
    result = _gen(state_dir).verify(repair=repair or bool(specs), specs=specs)
    if as_json:
        _json(result.to_json())
    else:
        _emit(render_verify(result))
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def gc(profile: Optional[str] = ProfileOpt,
       all_profiles: bool = typer.Option(False, "--all-profiles", help="Collect every profile's generations."),
       keep: Optional[int] = typer.Option(None, "--keep", min=0, help="Keep the newest N generations (and current)."),
       older_than: Optional[str] = typer.Option(None, "--older-than", help="Delete generations older than this "
                                                "(30d, 12h, 90m, 1w), keeping the newest of them (as Nix does)."),
       dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go; change nothing."),
       state_dir: Optional[Path] = StateDirOpt, lock_timeout: float = LockTimeoutOpt, as_json: bool = JsonOpt):
    """Delete old generations (never the current one), then store objects and image pins no kept generation uses.

    Example: gen gc -p shop --keep 5 --older-than 30d --dry-run
    """
    report = _gen(state_dir, lock_timeout=lock_timeout).gc(profile, all_profiles=all_profiles, keep=keep,
                                                           older_than=older_than, dry_run=dry_run)
    from gen.cli.views import render_gc
    print(json.dumps(report.to_json()) if as_json else render_gc(report))


register_closure_verbs(app)     # closure, export, import, copy (gen.cli.closures)


def _interrupt(signum, frame):
    raise KeyboardInterrupt    # SIGTERM (systemctl stop, timeout) undoes an activation like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="gen", standalone_mode=False)
        if isinstance(code, int):      # typer.Exit(n) comes back as a return value here
            return code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as e:
        from gen.api import GenError, StoreError       # here, not at the top: `gen --version` imports no gen.api
        if isinstance(e, (GenError, StoreError)):
            from gen.cli.views import render_error
            render_error(e)
            return e.exit_code
        if hasattr(e, "show") and hasattr(e, "exit_code"):    # typer's (click's) usage errors
            e.show()
            return 1          # bad input is 1, never 2 (2 means "activation failed and rolled back")
        from gen.cli.views import render_unexpected
        render_unexpected(e)
        return UNEXPECTED_EXIT
    return 0


BUSY_EXIT = 4            # `gen status` while an activation runs: nothing was judged
UNEXPECTED_EXIT = 70     # sysexits EX_SOFTWARE: an internal error
