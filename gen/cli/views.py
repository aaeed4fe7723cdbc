"""Text views of what the library returns: status, log, verify, gc. Each returns text or (style, text)
lines; emit() prints such lines, in colour only when stdout is a terminal."""
from __future__ import annotations

import sys

from gen.api import ActivationFailed

STYLES = {"header": "bold", "added": "green", "removed": "red", "changed": "yellow", "dim": "dim", "": ""}


def emit(lines: list[tuple[str, str]]) -> None:
    """Styled lines: colour (rich) only when stdout is a terminal, plain text otherwise."""
    if stdout_is_tty():
        from rich.console import Console
        from rich.text import Text
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        for style, text in lines:
            console.print(Text(text, style=STYLES.get(style, "")))
    else:
        sys.stdout.write("".join(text + "\n" for _, text in lines))


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def render_status(report) -> str:
    """`gen status` (a gen.deploy.status.Status) as text."""
    head = f"profile {report.profile}: " + (f"generation {report.generation} ({report.manifest[:12]})"
                                             if report.generation else "no current generation")
    rows = [head]
    for s in report.services:
        states = ", ".join(c["state"] for c in s.containers) or "no containers"
        rows.append(f"  {'ok ' if s.ok else 'BAD'} {s.service:<16} {s.hash[:12]}  {states}"
                    + (f"  -- {s.problem}" if s.problem else ""))
    for c in report.extra:
        rows.append(f"  BAD {c['service']:<16} {c['hash'][:12]}  {c['state']}  -- extra container {c['name']}")
    if report.warm:
        rows.append(f"  kept warm for a rollback (stopped): {len(report.warm)} container(s)")
    if report.activation:
        a = report.activation
        rows.append(f"  activation {a['state']}: {a.get('kind')} by pid {a.get('pid')} (from generation {a.get('from')}); "
                    + ("wait for it" if a["state"] == "in progress" else "`gen recover` repairs it"))
    if report.busy:
        rows.append("ACTIVATION IN PROGRESS: nothing was judged; run `gen status` again once it is done")
    else:
        rows.append("the engine matches the current generation" if report.ok
                    else "DRIFT: the engine does not match the current generation")
    return "\n".join(rows)


def render_log(profile: str, entries: list[dict]) -> list[tuple[str, str]]:
    """`gen log`: one line per activation."""
    if not entries:
        return [("dim", f"profile {profile}: no activations yet")]
    out = []
    for e in entries:
        when = (e["time"] or "?").replace("T", " ").rstrip("Z")
        src = "-" if e["from"] is None else str(e["from"])
        dst = str(e["to"]) if e["to"] is not None else (e["to_hash"] or "-")
        took = f"{e['duration_s']:.1f}s" if isinstance(e["duration_s"], (int, float)) else "?"
        line = f"{when:<23}  {e['kind'] or '?':<8}  {src:>4} -> {dst:<12}  {e['outcome']:<6}  {took:>7}"
        if e["error"]:
            line += f"  {e['error']}"
        out.append(("added" if e["outcome"] == "ok" else "removed", line))
    return out


def render_verify(result) -> list[tuple[str, str]]:
    """`gen verify` (a gen.state.verify.VerifyResult) as lines."""
    out = []
    for h, needed in sorted(result.corrupt.items()):
        out.append(("removed", f"corrupt  {h}" + (f"  needed by {_who(needed)}" if needed else "  (unreferenced)")))
    for h, info in sorted(result.missing.items()):
        what = info["kind"] + (f" {info['service']}" if info.get("service") else "")
        out.append(("removed", f"missing  {h}  {what}, needed by {_who(info['needed_by'])}"))
    for p in result.problems:
        out.append(("removed", f"problem  {p}"))
    for path in result.stray:
        out.append(("dim", f"stray    {path} (not an object; safe to delete)"))
    for fix in result.repaired:
        out.append(("added", f"repaired {fix['hash']}  rebuilt from {fix['from']}"))
    for note in result.repair_notes:
        out.append(("dim", f"note     {note}"))
    for blob in result.archives.corrupt:
        out.append(("removed", f"corrupt  image archive {blob}"))
    for p in result.archives.problems:
        out.append(("removed", f"problem  {p}"))
    for gen in result.images.unrestorable:
        out.append(("removed", f"cannot roll back: profile {gen['profile']} generation {gen['generation']}: image "
                               f"{', '.join(i[7:19] for i in gen['images'])} is not on the engine, not archived, "
                               "and has no registry digest"))
    if result.images.note:
        out.append(("dim", f"note     {result.images.note}"))
    for name, n in sorted(result.profiles.items()):
        out.append(("", f"profile {name}: {n} generation(s) checked"))
    if result.images.checked:
        states: dict[str, int] = {}
        for info in result.images.images.values():
            states[info["state"]] = states.get(info["state"], 0) + 1
        out.append(("", "images: " + (", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none")
                    + (f"; archives: {result.archives.ok} ok, {_size(result.archives.size_bytes)}"
                       if result.archives.ok or result.archives.corrupt else "")))
    out.append(("header" if result.ok else "removed",
                f"objects: {result.objects_ok} ok, {len(result.corrupt)} corrupt, {len(result.missing)} missing"
                + (f", {len(result.stray)} stray" if result.stray else "")
                + (f", {len(result.repaired)} repaired" if result.repaired else "")
                + ("; the store is intact" if result.ok else "; PROBLEMS FOUND")))
    return out


def _who(needed: list[dict]) -> str:
    by_profile: dict[str, list[int]] = {}
    for w in needed:
        by_profile.setdefault(w["profile"], []).append(w["generation"])
    return "; ".join(f"profile {p} generation{'s' if len(ns) > 1 else ''} {', '.join(map(str, ns))}"
                     for p, ns in sorted(by_profile.items()))


def render_gc(report) -> str:
    """`gen gc` (a gen.state.retention.GcReport) as text."""
    would = "would delete" if report.dry_run else "deleted"
    rows = ["dry run: nothing was changed"] if report.dry_run else []
    for p in report.profiles:
        cur = f" (current {p.current})" if p.current is not None else ""
        done = f"{would} generation(s) {_numbers(p.deleted)}" if p.deleted else "no generation to delete"
        rows.append(f"profile {p.profile}: {done}; kept {_numbers(p.kept) or 'none'}{cur}")
    recent = (f"; {report.objects_recent} unreferenced object(s) newer than this run kept"
              if report.objects_recent else "")
    rows.append(f"store: {would} {report.objects_deleted} object(s), {_size(report.bytes_freed)} "
                f"{'would be ' if report.dry_run else ''}freed; {report.objects_live} live{recent}")
    if report.archives_deleted or report.archives_live or report.archives_recent:
        recent = f"; {report.archives_recent} newer than this run kept" if report.archives_recent else ""
        rows.append(f"image archives: {would} {report.archives_deleted}, {_size(report.archive_bytes_freed)} "
                    f"{'would be ' if report.dry_run else ''}freed; {report.archives_live} kept{recent}")
    if report.pins_added or report.pins_released:
        verb = ("would pin", "would release") if report.dry_run else ("pinned", "released")
        rows.append(f"images: {verb[0]} {len(report.pins_added)}, {verb[1]} {len(report.pins_released)}"
                    + "".join(f"\n  {'+' if r in report.pins_added else '-'} {r}"
                              for r in [*report.pins_added, *report.pins_released]))
    if report.images_dropped:
        rows.append(f"images: the engine removed {len(report.images_dropped)} image(s) whose last tag was "
                    f"gen's pin: {', '.join(i[7:19] for i in report.images_dropped)}")
    if report.containers_removed:
        rows.append(f"containers: {'would remove' if report.dry_run else 'removed'} {len(report.containers_removed)} "
                    f"stopped container(s) of deleted generations: {', '.join(report.containers_removed)}")
    rows.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(rows)

def _numbers(ns: list[int]) -> str:
    return ", ".join(map(str, ns))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 3:
        return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB"
    return f"{n / 1024 ** 3:.2f} GiB"


def render_error(e: Exception) -> None:
    """A GenError or StoreError on stderr: `error: subject: reason`, and for a failed activation its logs."""
    print(f"error: {e}", file=sys.stderr)
    if isinstance(e, ActivationFailed) and e.exit_code != 1:      # exit 1: refused before anything was touched
        if e.logs:
            print("last log lines:", file=sys.stderr)
            for line in e.logs.splitlines()[-10:]:
                print(f"  | {line}", file=sys.stderr)
        print("the previous generation was restored; `current` is unchanged" if e.restored else
              "the engine does NOT match `current`: run `gen recover`", file=sys.stderr)


def render_unexpected(e: Exception) -> None:
    """A bug or a failure gen does not know (not a GenError): one line, no traceback (the CLI exits 70).
    A transaction in flight undid itself before this point; if something still looks wrong, recover."""
    text = " ".join(str(e).split())[:300]
    print(f"error: unexpected {type(e).__name__}{': ' + text if text else ''} (a bug in gen; "
          "if the engine does not match `current`, run `gen recover`)", file=sys.stderr)
