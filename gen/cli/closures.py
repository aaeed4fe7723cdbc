"""The closure verbs of `gen`: keep a profile's images in the store, export a generation to a file,
import one, copy a generation's images to another engine; and `gen warm`, what a rollback keeps ready. Thin, as gen.cli.app: parse, call gen.api,
render. Progress in bytes goes to stderr, results to stdout (or --json)."""
from __future__ import annotations

import json
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from gen.cli.options import JsonOpt, LockTimeoutOpt, ProfileOpt, QuietOpt, StateDirOpt

GenerationArg = typer.Argument(None, help="Generation number (default: the current one).")


class Setting(str, Enum):
    on = "on"
    off = "off"


def register(app: typer.Typer) -> None:
    app.command()(closure)
    app.command()(export)
    app.command("import")(import_)
    app.command()(copy)
    app.command()(warm)


def closure(setting: Setting = typer.Argument(..., help="on: keep the images of every generation activated from "
                                                        "now on as archives in the store; off: stop."),
            profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt):
    """Keep the profile's images in the store, so a rollback needs no registry and survives `docker image prune -a`.

    Each image is archived once (`docker save` format), shared by every generation that uses it; gc frees the
    archives no kept generation uses. `gen switch --closure` does it for one switch.

    Example: gen closure on -p shop
    """
    name = _gen(state_dir).closure(profile, setting is Setting.on)
    print(f"profile {name}: image closure {setting.value}", file=sys.stderr)


def warm(generations: Optional[int] = typer.Argument(None, min=0, help="How many generations back (0: off). "
                                                                         "Without it: print the setting."),
         profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt, as_json: bool = JsonOpt,
         dry_run: bool = typer.Option(False, "--dry-run", help="Change nothing; say what would be removed.")):
    """Keep the containers a switch replaces, stopped, for a rollback to start instead of create (default: 1).

    After each activation the containers of the N generations just below the current one (the ones
    `gen rollback` goes back to) are kept stopped; older ones are removed. A lower N applies at once: the
    stopped containers it no longer keeps go now, with the networks only they joined. gc removes kept
    containers with their generations. Volumes are never removed either way.

    Example: gen warm -p shop 2
    """
    result = _gen(state_dir).warm(profile, generations, dry_run)
    if as_json:
        print(json.dumps(result.to_json()))
        return
    would = "would remove" if result.dry_run else "removed"
    for what, names in (("container", result.containers), ("network", result.networks)):
        if names:
            print(f"{would} {len(names)} kept {what}(s): {', '.join(names)}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    setting, name = result.setting, result.profile
    if result.dry_run:
        print(f"dry run: nothing was changed; profile {name} keeps {setting} generation(s) warm")
    else:
        print(f"profile {name}: keeps {setting} generation(s) warm" if setting else f"profile {name}: warm rollback off")


def export(number: Optional[int] = GenerationArg,
           output: Path = typer.Option(..., "-o", "--output", help="The file to write (- for stdout)."),
           images: bool = typer.Option(False, "--images", help="Include the image archives (no registry needed "
                                                               "where it is imported)."),
           profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt,
           quiet: bool = QuietOpt, as_json: bool = JsonOpt):
    """Write a generation's closure to one file (with --images: its images too).

    The file holds its manifest, service objects, spec source, sealed secrets and configs, and with --images
    its image archives. Secrets stay encrypted: only a state directory with the same key opens them.

    Example: gen export -p shop -o shop.gen --images
    """
    result = _gen(state_dir).export(output, profile, number, images, _bytes_progress(quiet))
    summary = {"profile": result.profile, "generation": result.generation, "hash": result.manifest,
               "objects": result.objects, "images": result.images, "bytes": result.bytes, "notes": result.notes}
    if as_json:
        print(json.dumps(summary))
        return
    origins = ", ".join(f"{i['id'][7:19]} from the {i['from']}" for i in result.images) or "no images"
    print(f"exported {result.profile} generation {result.generation} ({result.manifest[:12]}): {result.objects} "
          f"object(s), {origins}, {_size(result.bytes)}", file=sys.stderr)
    _notes(result.notes)


def import_(source: Path = typer.Argument(..., help="A file written by `gen export` (- for stdin)."),
            state_dir: Optional[Path] = StateDirOpt, lock_timeout: float = LockTimeoutOpt,
            quiet: bool = QuietOpt, as_json: bool = JsonOpt):
    """Add an exported generation to this state directory; print its manifest hash.

    Every object and archive is rehashed first: a damaged or truncated file adds nothing. `gen switch HASH`
    then deploys it.

    Example: gen import shop.gen && gen switch $(gen import shop.gen)
    """
    result = _gen(state_dir, lock_timeout).import_(source, _bytes_progress(quiet))
    if as_json:
        print(json.dumps({"profile": result.profile, "generation": result.generation, "hash": result.manifest,
                          "objects": result.objects, "images": result.images, "bytes": result.bytes,
                          "notes": result.notes}))
        return
    print(f"imported {result.profile} ({result.objects} object(s), {len(result.images)} image archive(s), "
          f"{_size(result.bytes)})", file=sys.stderr)
    _notes(result.notes)
    print(result.manifest)


def copy(number: Optional[int] = GenerationArg,
         to: str = typer.Option(..., "--to", help="The other engine: unix://, tcp://HOST:PORT or ssh://USER@HOST."),
         profile: Optional[str] = ProfileOpt, state_dir: Optional[Path] = StateDirOpt,
         quiet: bool = QuietOpt, as_json: bool = JsonOpt):
    """Load a generation's images onto another engine (only those it lacks).

    They come from the closure, or from this engine: a switch there then finds them without a registry.

    Example: gen copy -p shop --to ssh://root@edge-1
    """
    result = _gen(state_dir).copy(to, profile, number, _bytes_progress(quiet))
    if as_json:
        print(json.dumps({"profile": result.profile, "generation": result.generation, "copied": result.copied,
                          "skipped": result.skipped}))
        return
    moved = sum(c["bytes"] for c in result.copied)
    print(f"copied {len(result.copied)} image(s) ({_size(moved)}) to {to}; {len(result.skipped)} already there",
          file=sys.stderr)


def _gen(state_dir: Optional[Path], lock_timeout: float = 30.0):
    from gen.api import Gen
    return Gen(state_dir, lock_timeout=lock_timeout)


def _bytes_progress(quiet: bool):
    """(what, done, total) -> a line on stderr at most every half second per item (and at its end)."""
    if quiet:
        return None
    shown: dict[str, float] = {}

    def progress(what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total and done < total and now - shown.get(what, 0) < 0.5:
            return
        shown[what] = now
        of = f" of {_size(total)}" if total else ""
        print(f"  {what}: {_size(done)}{of}", file=sys.stderr)
    return progress


def _notes(notes: list[str]) -> None:
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
