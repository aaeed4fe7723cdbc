"""Statistics, targets and output: the console table, results/latest.json and results/latest.md (a run of
the Swarm cases alone: results/latest-swarm.json and .md, leaving the engine-local figures in place)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

TOOLS = ("gen", "gen0", "compose", "floor")
COUNTS = {"store_objects": "objects", "store_bytes": "bytes"}


def label(metric: str) -> str:
    names = {"cold": "cold deploy, N={}", "noop": "no-op redeploy, N={}", "change": "change 1 env var of {}",
             "rollback": "roll that change back, N={}", "healthy": "{} service, 200 ms healthcheck",
             "list": "gen list, {} generations"}
    fixed = {"swarm_change10": "Swarm: change 1 env var of 10 services", "swarm_rollback10": "Swarm: roll that change back",
             "build1000": "gen build, 1,000 services", "build1000_warm": "gen build again (store warm)",
             "store_objects": "store growth (objects), 1 change of 1,000",
             "store_bytes": "store growth (bytes), 1 change of 1,000"}
    if metric in fixed:
        return fixed[metric]
    for prefix, text in names.items():
        if metric.startswith(prefix):
            return text.format(f"{int(metric[len(prefix):]):,}")
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


def targets(st: dict, n: int) -> list[dict]:
    """Each target: what, measured value, bound, PASS/MISS (or 'not run'). Never fails the run."""
    def median(metric):
        s = st.get(metric, {}).get("gen")
        return s.median if s else None
    rows = [
        ("cold N=50, gen/compose", ratio(st, "cold50", "gen", "compose"), 0.8, "x"),
        ("cold N=50, gen/floor", ratio(st, "cold50", "gen", "floor"), 1.15, "x"),
        (f"no-op N={n}, gen/compose", ratio(st, f"noop{n}", "gen", "compose"), 2.0, "x"),
        (f"one change of {n}, gen/compose", ratio(st, f"change{n}", "gen", "compose"), 1.0, "x"),
        ("rollback, gen rollback/gen change", ratio(st, f"rollback{n}", "gen", "gen", f"change{n}"), 1.0, "x"),
        ("healthy single, gen/compose", ratio(st, "healthy1", "gen", "compose"), 0.9, "x"),
        ("gen build, 1,000 services", median("build1000"), 0.6, " s"),
        ("gen list, 10,000 generations", median("list10000"), 0.25, " s"),
        ("objects added by one change", median("store_objects"), 2, " objects"),
        # The same guarantee as `compose up --wait` (no stability window): for reading the two above.
        ("cold N=50, gen --stable-for 0 / compose", ratio(st, "cold50", "gen0", "compose"), 0.8, "x"),
        (f"one change of {n}, gen --stable-for 0 / compose", ratio(st, f"change{n}", "gen0", "compose"), 1.0, "x"),
    ]
    return [{"target": what, "value": value, "bound": bound, "unit": unit.strip() or "x",
             "verdict": "not run" if value is None else ("PASS" if value <= bound else "MISS"),
             "text": f"{what}: " + ("not run" if value is None else
                                    f"{_num(value, unit)} (target <= {_num(bound, unit)})")}
            for what, value, bound, unit in rows]


def _num(v: float, unit: str) -> str:
    return f"{v:.2f}x" if unit == "x" else (f"{v:.0f}{unit}" if unit == " objects" else f"{v:.3f}{unit}")


def is_swarm(metric: str) -> bool:
    return metric.startswith("swarm_")


def table_rows(st: dict) -> list[list[str]]:
    rows = []
    for metric, by_tool in st.items():
        if is_swarm(metric):
            continue
        r_c, r_f = ratio(st, metric, "gen", "compose"), ratio(st, metric, "gen", "floor")
        r_0 = ratio(st, metric, "gen0", "compose")
        rows.append([label(metric)] + [by_tool[t].show(metric) if t in by_tool else "-" for t in TOOLS]
                    + [f"{r:.2f}x" if r else "-" for r in (r_c, r_f, r_0)])
    return rows


HEADER = ["case", "gen median (min-max)", "gen --stable-for 0", "compose", "floor", "gen/compose", "gen/floor",
          "gen --stable-for 0 / compose"]


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


def console(st: dict, tgt: list[dict]) -> str:
    lines = _columns([HEADER] + table_rows(st)) if table_rows(st) else []
    if swarm_rows(st):
        lines += ([""] if lines else []) + _columns([SWARM_HEADER] + swarm_rows(st))
    if any(t["value"] is not None for t in tgt):
        lines += ["", "targets (reported, never enforced):"]
        lines += [f"  {t['verdict']:<7} {t['text']}" for t in tgt]
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
                         if line.startswith("model name")), "?")}


def write(out_dir: Path, meta: dict, options: dict, samples: dict, st: dict, tgt: list[dict],
          errors: list[str], stem: str = "latest") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"meta": meta, "options": options, "errors": errors, "targets": tgt,
           "metrics": {m: {"label": label(m), **{t: {"median": s.median, "min": s.low, "max": s.high,
                                                     "samples": list(s.samples)} for t, s in by_tool.items()},
                           "gen/compose": ratio(st, m, "gen", "compose"), "gen/floor": ratio(st, m, "gen", "floor"),
                           "gen0/compose": ratio(st, m, "gen0", "compose"),
                           **({"gen0/stack": ratio(st, m, "gen0", "stack"), "gen/stack": ratio(st, m, "gen", "stack")}
                              if is_swarm(m) else {})}
                       for m, by_tool in st.items()}}
    _atomic(out_dir / f"{stem}.json", json.dumps(doc, indent=2) + "\n")
    md = [f"# gen benchmark, {meta['date']}", "",
          f"Machine: {meta['nproc']} CPU(s) ({meta['cpu']}), {meta['memory_gib']} GiB memory, Docker "
          f"{meta['docker']}, Docker Compose {meta['compose']}, gen: {meta['gen_cli']}"
          f"{'' if meta.get('gen_is_repo', True) else ' (a frozen build, not the work tree)'}, repo at "
          f"{meta['gen_commit']}. "
          f"{options['reps'] if table_rows(st) else options.get('swarm_reps')} repetitions per case, tools "
          "alternated; times are whole deploys, medians with min-max.", ""]
    if table_rows(st):
        md += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        md += ["| " + " | ".join(r) + " |" for r in table_rows(st)]
    if swarm_rows(st):
        lab = meta.get("swarm_lab") or {}
        md += ["", (f"{SWARM_NOTE} {options.get('swarm_reps', options['reps'])} repetitions; the lab came up in "
                    f"{lab.get('bringup_s', '?')} s."), "",
               "| " + " | ".join(SWARM_HEADER) + " |", "|" + "---|" * len(SWARM_HEADER)]
        md += ["| " + " | ".join(r) + " |" for r in swarm_rows(st)]
    if any(t["value"] is not None for t in tgt):
        md += ["", "| target | measured | |", "|---|---|---|"]
        md += [f"| {t['target']} | {t['text'].split(': ', 1)[1]} | {t['verdict']} |" for t in tgt]
    if errors:
        md += ["", "Errors:", ""] + [f"- {e.splitlines()[0]}" for e in errors]
    _atomic(out_dir / f"{stem}.md", "\n".join(md) + "\n")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
