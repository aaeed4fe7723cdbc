"""Statistics and output: the console table, results/latest.json and results/latest.md (a run of the Swarm
cases alone: results/latest-swarm.json and .md, leaving the engine-local figures in place). The targets are
bench.targets'."""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

TOOLS = ("gen", "gen0", "compose", "floor")
COUNTS = {"store_objects": "objects", "store_bytes": "bytes"}
LABELS = {   # metric pattern ({} = its number of services or generations) -> what the table calls it
    "cold{}": "cold deploy, N={}", "noop{}": "no-op redeploy, N={}", "change{}": "change 1 env var of {}",
    "rollback{}": "roll that change back (gen: its default warm setting), N={}",
    "change{}_warm0": "change 1 of {}, with `gen warm 0`",
    "rollback{}_cold": "roll that change back, cold (`gen warm 0`), N={}",
    "status{}": "gen status, N={}", "healthy{}": "{} service, 200 ms healthcheck", "list{}": "gen list, {} generations",
    "build{}": "gen build, {} services", "build{}_warm": "gen build again (store warm), {} services",
    "swarm_change{}": "Swarm: change 1 env var of {} services", "swarm_rollback{}": "Swarm: roll that change back",
    "version": "gen --version (whole process)", "store_objects": "store growth (objects), 1 change of 1,000",
    "store_bytes": "store growth (bytes), 1 change of 1,000",
}


def label(metric: str) -> str:
    if metric in LABELS:
        return LABELS[metric]
    number = re.search(r"\d+", metric)
    if number:
        pattern = metric[:number.start()] + "{}" + metric[number.end():]
        if pattern in LABELS:
            return LABELS[pattern].replace("{}", f"{int(number.group()):,}")
    return metric


@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float
    samples: tuple

    @classmethod
    def of(cls, samples: list[float]) -> "Stat":
        return cls(statistics.median(samples), min(samples), max(samples), tuple(samples))

    def show(self, metric: str) -> str:
        if metric in COUNTS:
            return f"{self.median:,.0f} {COUNTS[metric]}"
        return f"{self.median:.3f} s ({self.low:.3f}-{self.high:.3f})"


def stats(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Stat]]:
    return {m: {t: Stat.of(v) for t, v in by_tool.items() if v} for m, by_tool in samples.items()}


def ratio(st: dict, metric: str, num: str, den: str, den_metric: str | None = None) -> float | None:
    a, b = st.get(metric, {}).get(num), st.get(den_metric or metric, {}).get(den)
    return a.median / b.median if a and b and b.median else None


RATIOS = (("gen", "compose"), ("gen0", "compose"), ("gen", "floor"), ("gen0", "floor"))


def is_swarm(metric: str) -> bool:
    return metric.startswith("swarm_")


def table_rows(st: dict, order: list[str], na: dict[str, str]) -> list[list[str]]:
    """One row per metric, in `order` (then any other measured one): both gen lines, compose, floor, ratios;
    a metric the gen under test cannot run is a row saying n/a and why."""
    rows = []
    for metric in order + [m for m in st if m not in order]:
        if is_swarm(metric) or (metric not in st and metric not in na):
            continue
        if metric not in st:
            rows.append([label(metric), f"n/a ({na[metric]})"] + ["-"] * (len(HEADER) - 2))
            continue
        by_tool = st[metric]
        rows.append([label(metric)] + [by_tool[t].show(metric) if t in by_tool else "-" for t in TOOLS]
                    + [f"{r:.2f}x" if r else "-" for r in (ratio(st, metric, a, b) for a, b in RATIOS)])
    return rows


HEADER = ["case", "gen (default 1 s window) median (min-max)", "gen --stable-for 0 (same guarantee)",
          "compose up --wait", "SDK floor", "gen/compose", "gen0/compose", "gen/floor", "gen0/floor"]


# The Swarm section: gen with the guarantee `docker stack deploy` + convergence gives (--stable-for 0) first.
SWARM_TOOLS = ("gen0", "gen", "stack")
SWARM_HEADER = ["Swarm case", "gen --stable-for 0 median (min-max)", "gen (1 s window)",
                "docker stack deploy + convergence", "gen --stable-for 0 / stack", "gen / stack"]
SWARM_NOTE = ("Swarm: 10 busybox services on the bench's 3-node lab (scripts/swarm-lab), one with a host-mode "
              "port and a healthcheck; stack = `docker stack deploy --resolve-image never` of the equivalent "
              "Compose file (gen's update config: all tasks at once, start-first/stop-first; monitor 1ms, as "
              "0 means Swarm's 5 s default) plus "
              "polling until UpdateStatus is completed and every task of the new spec runs; its rollback "
              "deploys the previous file (`docker service rollback` goes back one step of one service only).")


def swarm_rows(st: dict) -> list[list[str]]:
    rows = []
    for metric, by_tool in st.items():
        if is_swarm(metric):
            ratios = [ratio(st, metric, t, "stack") for t in ("gen0", "gen")]
            rows.append([label(metric)] + [by_tool[t].show(metric) if t in by_tool else "-" for t in SWARM_TOOLS]
                        + [f"{r:.2f}x" if r else "-" for r in ratios])
    return rows


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def console(st: dict, tgt: list[dict], order: list[str], na: dict[str, str]) -> str:
    rows = table_rows(st, order, na)
    lines = _columns([HEADER] + rows) if rows else []
    if swarm_rows(st):
        lines += ([""] if lines else []) + _columns([SWARM_HEADER] + swarm_rows(st))
    shown = [t for t in tgt if t["verdict"] != "not run"]
    if shown:
        lines += ["", "targets (reported, never enforced; speed judged on the same-guarantee line, gen0):"]
        lines += [f"  {t['verdict']:<7} {t['text']}" for t in shown]
    return "\n".join(lines)


def machine(compose_version: str) -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except OSError:
            return "?"
    mem_kb = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "nproc": out(["nproc"]),
            "memory_gib": round(mem_kb / 2**20, 1), "docker": out(["docker", "version", "--format",
                                                                   "{{.Server.Version}}"]),
            "compose": compose_version, "gen_commit": out(["git", "rev-parse", "--short", "HEAD"])
            + (" + uncommitted changes" if out(["git", "status", "--porcelain", "gen", "store"]) else ""),
            "cpu": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                         if line.startswith("model name")), "?"), "loadavg_end": round(os.getloadavg()[0], 2)}


def write(out_dir: Path, meta: dict, options: dict, st: dict, tgt: list[dict], errors: list[str],
          order: list[str], na: dict[str, str], stem: str = "latest") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "options": options, "errors": errors, "targets": tgt, "not_available": na,
           "metrics": {m: {"label": label(m), **{t: {"median": s.median, "min": s.low, "max": s.high,
                                                     "samples": list(s.samples)} for t, s in by_tool.items()},
                           **{f"{a}/{b}": ratio(st, m, a, b) for a, b in RATIOS},
                           **({"gen0/stack": ratio(st, m, "gen0", "stack"), "gen/stack": ratio(st, m, "gen", "stack")}
                              if is_swarm(m) else {})}
                       for m, by_tool in st.items()}}
    _atomic(out_dir / f"{stem}.json", json.dumps(doc, indent=2) + "\n")
    _atomic(out_dir / f"{stem}.md", "\n".join(markdown(meta, options, st, tgt, errors, order, na)) + "\n")


def markdown(meta: dict, options: dict, st: dict, tgt: list[dict], errors: list[str], order: list[str],
             na: dict[str, str]) -> list[str]:
    rows = table_rows(st, order, na)
    count = options["reps"] if rows else options.get("swarm_reps")
    reps = f"{count} repetition{'s' if count != 1 else ''} per case" + (
        f" ({options['reps_200']} for the N=200 case)" if rows and options.get("reps_200") else "")
    load = (f" Load average (1 min) {meta['loadavg_start']:.2f} at the start, {meta['loadavg_end']:.2f} at the end."
            if "loadavg_start" in meta else "")
    md = [f"# gen benchmark, {meta['date']}", "",
          f"Machine: {meta['nproc']} CPU(s) ({meta['cpu']}), {meta['memory_gib']} GiB memory, Docker "
          f"{meta['docker']}, Docker Compose {meta['compose']}, gen: {meta['gen_cli']}"
          f"{'' if meta.get('gen_is_repo', True) else ' (a frozen build, not the work tree)'}, repo at "
          f"{meta['gen_commit']}. {reps}, tools alternated; times are whole processes (a deploy: until the tool "
          f"says it is done), medians with min-max.{load}", ""]
    if rows:
        md += [LINES_NOTE, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
    if swarm_rows(st):
        lab = meta.get("swarm_lab") or {}
        md += ["", (f"{SWARM_NOTE} {options.get('swarm_reps', options['reps'])} repetitions; the lab came up in "
                    f"{lab.get('bringup_s', '?')} s."), "",
               "| " + " | ".join(SWARM_HEADER) + " |", "|" + "---|" * len(SWARM_HEADER)]
        md += ["| " + " | ".join(r) + " |" for r in swarm_rows(st)]
    shown = [t for t in tgt if t["verdict"] != "not run"]
    if shown:
        md += ["", ("Targets (issue 15), reported, never enforced; the speed targets are judged on the "
                    "same-guarantee line (gen --stable-for 0), the default window's figure given for reading. The "
                    "SDK floor's own: the same measure with the floor in gen0's place (for the default window: the "
                    "floor's change plus the 1 s window), what the engine itself allows here; the floor's rollback "
                    "creates the old containers again (it keeps none warm):"), "",
               "| target | line | measured | bound | SDK floor's own | |", "|---|---|---|---|---|---|"]
        md += [f"| {t['target']} | {t['line']} | {t['measured']} | <= {_bound(t)} | {t.get('floor_text', '-')} | "
               f"{t['verdict']} |" for t in shown]
    if errors:
        md += ["", "Errors:", ""] + [f"- {e.splitlines()[0]}" for e in errors]
    return md


LINES_NOTE = ("Two lines for gen: as users get it (a container without a healthcheck counts as healthy after 1 s "
              "running without a restart) and at Compose's guarantee (`--stable-for 0`, also for `gen rollback`: "
              "running, or healthy where there is a healthcheck, as `docker compose up --wait` checks). The floor is "
              "the Docker SDK creating and starting the same containers from 16 threads, polling every 50 ms.")


def _bound(t: dict) -> str:
    return f"{t['bound']:.2f}x" if t["unit"] == "x" else f"{t['bound']:g} {t['unit']}"


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
