"""The `gen` command: parse arguments, call gen.api, render. No logic of its own.

Exit codes: 0 ok, 1 bad input or refused, 2 activation failed and rolled back, 3 drift or an
interrupted activation that could not be repaired.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from gen.errors import ActivationFailed, GenError
from store.errors import StoreError

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Nix-style immutable generations for Docker: build, switch, rollback, list.")

ProfileOpt = typer.Option(None, "-p", "--profile", help="Profile name (default: the spec's `name`, or the only profile).")
StateDirOpt = typer.Option(None, "--state-dir", envvar="GEN_STATE_DIR",
                           help="State directory (default: $XDG_STATE_HOME/gen).")
TimeoutOpt = typer.Option(60.0, "--timeout", help="Seconds the new generation may take to become healthy.")
LockTimeoutOpt = typer.Option(30.0, "--lock-timeout", help="Seconds to wait for another activation of the profile.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Print only the result.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output.")


def _gen(state_dir: Optional[Path], timeout: float = 60.0, lock_timeout: float = 30.0, quiet: bool = True):
    from gen.activate import Options
    from gen.api import Gen
    return Gen(state_dir, options=Options(timeout_s=timeout), lock_timeout=lock_timeout,
               progress=_no_output if quiet else _print_progress,
               on_plan=None if quiet else lambda plan: print(_render_plan(plan), file=sys.stderr, flush=True))


def _print_progress(service: str, phase: str, detail: str = "") -> None:
    who = f"{service:<16}" if service else ""
    # One write per line: progress comes from several threads at once.
    sys.stderr.write(f"  {who}{phase:<10} {detail}".rstrip() + "\n")
    sys.stderr.flush()


def _no_output(service: str, phase: str, detail: str = "") -> None:
    pass


@app.command()
def build(spec: Path = typer.Argument(..., help="Spec file (TOML)."), profile: Optional[str] = ProfileOpt,
          state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """Compile SPEC into the store; print the manifest hash (the generation's identity).

    Example: gen build examples/shop/gen.toml
    """
    compiled = _gen(state_dir).build(spec, profile)
    if as_json:
        print(json.dumps({"profile": compiled.manifest["profile"], "hash": compiled.manifest_hash,
                          "services": {n: h for n, (h, _) in compiled.services.items()}}))
        return
    print(f"profile {compiled.manifest['profile']}: {len(compiled.services)} service(s)", file=sys.stderr)
    print(compiled.manifest_hash)


@app.command()
def switch(target: str = typer.Argument(..., help="Spec file, or a manifest hash (or unique prefix)."),
           profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt,
           timeout: float = TimeoutOpt, lock_timeout: float = LockTimeoutOpt,
           dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
           quiet: bool = QuietOpt):
    """Build if needed, then activate as one transaction: all healthy, or the previous generation restored.

    Example: gen switch examples/shop/gen.toml --timeout 120
    """
    result = _gen(state_dir, timeout, lock_timeout, quiet).switch(target, profile, dry_run=dry_run)
    _render_result(result, dry_run, quiet)


@app.command()
def rollback(profile: Optional[str] = ProfileOpt, to: Optional[int] = typer.Option(None, "--to", help="Generation number."),
             state_dir: Optional[Path] = StateDirOpt, timeout: float = TimeoutOpt,
             lock_timeout: float = LockTimeoutOpt,
             dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
             quiet: bool = QuietOpt):
    """Activate the previous generation (or --to N). Moves `current`; creates no generation.

    Example: gen rollback -p shop --to 3
    """
    result = _gen(state_dir, timeout, lock_timeout, quiet).rollback(profile, to, dry_run=dry_run)
    _render_result(result, dry_run, quiet)


@app.command()
def recover(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt,
            timeout: float = TimeoutOpt, lock_timeout: float = LockTimeoutOpt, quiet: bool = QuietOpt):
    """Converge the engine on the current generation (after a crash, kill -9 or a daemon restart).

    Example: gen recover -p shop
    """
    result = _gen(state_dir, timeout, lock_timeout, quiet).recover(profile)
    _render_result(result, False, quiet)


@app.command()
def status(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """Compare the engine with the current generation. Exit 0 when they match, 3 otherwise.

    Example: gen status -p shop --json
    """
    report = _gen(state_dir).status(profile)
    if as_json:
        print(json.dumps(report.to_json()))
    else:
        print(_render_status(report))
    if not report.ok:
        raise typer.Exit(3)


def _render_status(report) -> str:
    head = f"profile {report.profile}: " + (f"generation {report.generation} ({report.manifest[:12]})"
                                             if report.generation else "no current generation")
    rows = [head]
    for s in report.services:
        states = ", ".join(c["state"] for c in s.containers) or "no containers"
        rows.append(f"  {'ok ' if s.ok else 'BAD'} {s.service:<16} {s.hash[:12]}  {states}"
                    + (f"  -- {s.problem}" if s.problem else ""))
    for c in report.extra:
        rows.append(f"  BAD {c['service']:<16} {c['hash'][:12]}  {c['state']}  -- extra container {c['name']}")
    if report.activation:
        a = report.activation
        rows.append(f"  activation {a['state']}: {a['kind']} by pid {a['pid']} (from generation {a['from']}); "
                    + ("wait for it" if a["state"] == "in progress" else "`gen recover` repairs it"))
    rows.append("the engine matches the current generation" if report.ok else "DRIFT: the engine does not match the current generation")
    return "\n".join(rows)


@app.command("list")
def list_(profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt):
    """List the profile's generations, the current one marked.

    Example: gen list -p shop --json
    """
    prof, gens, current = _gen(state_dir).generations(profile)
    if as_json:
        print(json.dumps([g.to_json(g.number == current) for g in gens]))
        return
    lines = [f"{g.number:>5}   {g.created.replace('T', ' ').rstrip('Z')}   {g.services:>3} service(s)   "
             f"{g.manifest[:12]}{'   (current)' if g.number == current else ''}" for g in gens]
    print("\n".join(lines))


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
    print(json.dumps(report.to_json()) if as_json else report.render())


def _render_result(result, dry_run: bool, quiet: bool) -> None:
    if dry_run and result.plan is not None:
        print(_render_plan(result.plan))
    print(result.message + ("" if dry_run else f" ({result.manifest[:12]})"))


def _render_plan(plan) -> str:
    rows = [f"plan for profile {plan.profile}:"]
    order = {name: i for i, level in enumerate(plan.levels) for name in level}
    for s in sorted(plan.steps, key=lambda s: (order.get(s.service, 1 << 30), s.service)):
        how = f" [{s.strategy}]" if s.strategy else ""
        level = f"level {s.level}" if s.level is not None else "after commit"
        rows.append(f"  {s.action:<8} {s.service:<16} {level:<12} {s.reason}{how}")
    return "\n".join(rows)


def _render_error(e: Exception) -> None:
    print(f"error: {e}", file=sys.stderr)
    if isinstance(e, ActivationFailed):
        if e.logs:
            print("last log lines:", file=sys.stderr)
            for line in e.logs.splitlines()[-10:]:
                print(f"  | {line}", file=sys.stderr)
        print("the previous generation was restored; `current` is unchanged" if e.restored else
              "the engine does NOT match `current`: run `gen recover`", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="gen", standalone_mode=False)
        if isinstance(code, int):      # typer.Exit(n) comes back as a return value here
            return code
    except (GenError, StoreError) as e:
        _render_error(e)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as e:
        if hasattr(e, "show") and hasattr(e, "exit_code"):    # typer's (click's) usage errors
            e.show()
            return 1          # bad input is 1, never 2 (2 means "activation failed and rolled back")
        raise
    return 0

