"""How switch, rollback and recover show their progress on stderr.

The library reports through two callbacks: `on_plan(plan)` just before a plan is executed, and
`progress(service, phase, detail)` from the activation's worker threads (phases: creating,
starting, stopping, waiting, running (in its stability window), healthy, removing, restoring;
service "" for profile-wide events such as recovering an interrupted activation), and from the
build before it (IMAGE_PHASES: pulling, pulled, building, built, reused; one line each). A Reporter
turns them into output:

- LiveTable: stderr is a terminal: a rich Live table, one row per service (phase, detail, elapsed
  time since the service's first event, frozen once it is healthy or failed);
- Lines: stderr is not a terminal: the plan, then one plain line per event;
- Quiet: --quiet: nothing.

Use a reporter as a context manager around the call; leaving it with an ActivationFailed marks the
failing service `failed`.
"""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO

from gen.api import ActivationFailed

IMAGE_PHASES = frozenset({"pulling", "pulled", "building", "built", "reused"})   # gen.state.images, at build time
PHASE_LABELS = {"waiting": "waiting for health", "running": "stability window"}
DONE_PHASES = frozenset({"healthy", "completed", "failed", "unchanged", "removed", "restored", "undone"})
PHASE_STYLES = {"healthy": "green", "completed": "green", "started": "cyan", "failed": "bold red",
                "unchanged": "dim", "pending": "dim", "removed": "dim", "restored": "yellow", "undone": "yellow",
                "restoring": "yellow", "removing": "magenta", "stopping": "magenta", "waiting for health": "cyan",
                "stability window": "cyan"}


def render_plan(plan) -> str:
    rows = [f"plan for profile {plan.profile}:"]
    order = {name: i for i, level in enumerate(plan.levels) for name in level}
    for s in sorted(plan.steps, key=lambda s: (order.get(s.service, 1 << 30), s.service)):
        how = f" [{s.strategy}]" if s.strategy else ""
        level = f"level {s.level}" if s.level is not None else "after commit"
        rows.append(f"  {s.action:<8} {s.service:<16} {level:<12} {s.reason}{how}")
    rows.extend(f"  note: {note}" for note in plan.notes)
    return "\n".join(rows)


def plan_json(plan) -> list[dict]:
    order = {name: i for i, level in enumerate(plan.levels) for name in level}
    return [{"service": s.service, "action": s.action, "reason": s.reason, "strategy": s.strategy, "level": s.level}
            for s in sorted(plan.steps, key=lambda s: (order.get(s.service, 1 << 30), s.service))]


class Reporter:
    def progress(self, service: str, phase: str, detail: str = "") -> None:
        pass

    def on_plan(self, plan) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        return None


class Quiet(Reporter):
    """No progress; but profile-wide events (an interrupted activation found and repaired) are
    always said, whatever the verbosity."""

    def progress(self, service: str, phase: str, detail: str = "") -> None:
        if not service:
            sys.stderr.write(f"{phase}: {detail}\n")


class Lines(Reporter):
    """Plain lines, one write per line (events come from several threads at once)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stderr       # looked up late: tests swap sys.stderr

    def progress(self, service: str, phase: str, detail: str = "") -> None:
        who = f"{service:<16}" if service else ""
        self._out.write(f"  {who}{phase:<10} {detail}".rstrip() + "\n")
        self._out.flush()

    def on_plan(self, plan) -> None:
        self._out.write(render_plan(plan) + "\n")
        self._out.flush()


@dataclass
class _Row:
    service: str
    action: str
    reason: str
    phase: str = "pending"
    detail: str = ""
    started: float | None = None
    ended: float | None = None
    events: list[str] = field(default_factory=list)

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        return f"{(self.ended or now) - self.started:.1f}s"


class LiveTable(Reporter):
    """A rich Live table on a terminal. The table is drawn by rich's refresh thread from the rows,
    which the activation's threads update under a lock."""

    def __init__(self, stream: TextIO | None = None, console=None, clock=time.monotonic):
        self.stream = stream
        self._console = console
        self._clock = clock
        self._lock = threading.RLock()   # re-entered when printing above the live table
        self._rows: dict[str, _Row] = {}
        self._profile = ""
        self._live = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console
            self._console = Console(file=self.stream or sys.stderr)
        return self._console

    # -- the callbacks ---------------------------------------------------------------------------
    def on_plan(self, plan) -> None:
        with self._lock:
            if self._rows and self._live is not None:
                self._finish_rows(None)
                self.console.print(self.table())     # an earlier activation (recovery) stays on screen
            self._profile = plan.profile
            order = {name: i for i, level in enumerate(plan.levels) for name in level}
            self._rows = {}
            for s in sorted(plan.steps, key=lambda s: (order.get(s.service, 1 << 30), s.service)):
                keep = s.action == "keep"
                self._rows[s.service] = _Row(s.service, s.action, s.reason, "unchanged" if keep else "pending")
        self._start()

    def progress(self, service: str, phase: str, detail: str = "") -> None:
        if not service:         # profile-wide (recovering an interrupted activation): a line above the table
            self.console.print(f"[bold]{phase}[/bold] {_escape(detail)}")
            return
        if phase in IMAGE_PHASES:     # pulls and builds come before the plan: lines above the table
            self.console.print(f"  {_escape(service)} [bold]{phase}[/bold] {_escape(detail)}", highlight=False)
            return
        now = self._clock()
        with self._lock:
            row = self._rows.setdefault(service, _Row(service, "", ""))
            label = PHASE_LABELS.get(phase, phase)
            row.phase, row.detail = label, ("" if label != phase else detail)
            row.events.append(label)
            if row.started is None:
                row.started = now
            row.ended = now if label in DONE_PHASES else None

    def __exit__(self, exc_type, exc, tb) -> None:
        with self._lock:
            self._finish_rows(exc)
        if self._live is not None:
            self._live.update(self.table(), refresh=True)
            self._live.stop()
            self._live = None
        return None

    # -- drawing ---------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._live is None:
            from rich.live import Live
            self._live = Live(self, console=self.console, refresh_per_second=8, transient=False)
            self._live.start()

    def __rich__(self):
        with self._lock:
            return self.table()

    def table(self):
        from rich.table import Table
        from rich.text import Text
        now = self._clock()
        t = Table(title=f"profile {self._profile}", title_justify="left", expand=False)
        for col in ("service", "action", "phase", "detail", "elapsed"):
            t.add_column(col, justify="right" if col == "elapsed" else "left", no_wrap=col != "detail")
        for row in self._rows.values():
            t.add_row(row.service, row.action, Text(row.phase, style=PHASE_STYLES.get(row.phase, "bold")),
                      Text(row.detail or (row.reason if row.phase in ("pending", "unchanged") else ""), style="dim"),
                      row.elapsed(now))
        return t

    def rows(self) -> dict[str, _Row]:
        with self._lock:
            return dict(self._rows)

    def _finish_rows(self, exc) -> None:
        """Final phases once the activation is over: what succeeded, what failed, what was undone."""
        now = self._clock()
        failed = exc.service if isinstance(exc, ActivationFailed) else None
        for row in self._rows.values():
            if row.phase in DONE_PHASES and row.service != failed:
                continue
            if exc is None:
                row.phase = "removed" if row.action == "remove" else "healthy"
                row.detail = "old container(s) removed" if row.events and row.events[-1] == "removing" \
                    and row.action != "remove" else ""
            elif row.service == failed:
                row.phase, row.detail = "failed", getattr(exc, "reason", str(exc))[:80]
            elif row.phase == "restoring":
                row.phase = "restored" if getattr(exc, "restored", False) else "failed"
            elif row.phase != "pending":
                row.phase = "undone"
            if row.started is not None and row.ended is None:
                row.ended = now


def reporter(quiet: bool, stream: TextIO | None = None) -> Reporter:
    """Quiet, a live table when the stream (default stderr) is a terminal, plain lines otherwise."""
    if quiet:
        return Quiet()
    out = stream or sys.stderr
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return LiveTable(stream) if tty else Lines(stream)


def _escape(text: str) -> str:
    from rich.markup import escape
    return escape(text)
