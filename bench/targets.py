"""Issue 15's targets (medians, tools alternated in one run): reported, never enforced.

The speed targets are judged on the same-guarantee line: gen with `--stable-for 0` (the `gen0` tool), which
waits for what `docker compose up --wait` waits for (running; healthy where there is a healthcheck). Each such
row also shows the same measure for gen as users get it (the default 1 s stability window) for reading.
Round 1's targets that issue 15 neither retired nor tightened are kept (no-op N=50, build, list, store growth).
Where the SDK floor ran the same measure, the row also gives the floor's own figure (the floor in gen0's place:
what the engine itself allows here). A bound below it cannot be met by any client of this engine.
"""
from __future__ import annotations

from dataclasses import dataclass

SAME = "same guarantee"          # gen --stable-for 0 against compose --wait and the SDK floor
DEFAULT = "default window"       # gen as users get it: 1 s stability window
GEN_ONLY = "gen"                 # no window involved (start-up, build, list, store)


@dataclass(frozen=True)
class Target:
    what: str
    line: str
    value: float | None
    bound: float
    unit: str                    # "x", " s" or " objects"
    default: float | None = None     # the same measure on the default line, for reading (not judged)
    na: str | None = None        # why it cannot be measured with the gen under test
    floor: float | None = None   # the same measure with the SDK floor in gen0's place: what the engine allows

    def verdict(self) -> str:
        if self.na:
            return "n/a"
        return "not run" if self.value is None else ("PASS" if self.value <= self.bound else "MISS")

    def as_dict(self) -> dict:
        if self.na:
            measured = f"n/a ({self.na})"
        else:
            measured = "not run" if self.value is None else _num(self.value, self.unit)
            if self.default is not None:
                measured += f"; default window {_num(self.default, self.unit)}"
        floor = "-" if self.floor is None else _num(self.floor, self.unit)
        return {"target": self.what, "line": self.line, "value": self.value, "bound": self.bound,
                "unit": self.unit.strip(), "default_line": self.default, "verdict": self.verdict(),
                "measured": measured, "floor": self.floor, "floor_text": floor,
                "text": f"{self.what} [{self.line}]: {measured} (target <= {_num(self.bound, self.unit)}; "
                        f"the SDK floor's own: {floor})"}


def _num(v: float, unit: str) -> str:
    return f"{v:.2f}x" if unit == "x" else (f"{v:,.0f}{unit}" if unit == " objects" else f"{v:.3f}{unit}")


def targets(st: dict, n: int, na: dict[str, str], features: dict[str, bool]) -> list[dict]:
    """st: {metric: {tool: Stat}}; n: services of the change/no-op cases (50, or 10 with --quick);
    na: {metric: why it is n/a}; features: bench.tools.gen_features() (a rollback is warm only with `gen warm`)."""
    no_warm = None if features.get("warm") else "gen warm missing"
    def med(metric: str, tool: str = "gen0"):
        s = st.get(metric, {}).get(tool)
        return s.median if s else None

    def ratio(num_metric: str, num_tool: str, den_metric: str, den_tool: str):
        a, b = med(num_metric, num_tool), med(den_metric, den_tool)
        return a / b if a is not None and b else None

    def vs(metric: str, other: str, bound: float, what: str) -> Target:
        floor = ratio(metric, "floor", metric, other) if other != "floor" else None
        return Target(what, SAME, ratio(metric, "gen0", metric, other), bound, "x",
                      ratio(metric, "gen", metric, other), na.get(metric), floor)

    floor_change = med(f"change{n}", "floor")
    # The floor has no warm rollback: its rollback creates the old containers again, as a cold one does.
    floor_rollback = ratio(f"rollback{n}", "floor", f"change{n}", "floor")
    rows = [
        vs("cold50", "floor", 1.05, "cold N=50 / SDK floor"),
        vs(f"change{n}", "compose", 0.6, f"change 1 of {n} / Compose"),
        Target(f"change 1 of {n}", DEFAULT, med(f"change{n}", "gen"), 1.2, " s",
               floor=None if floor_change is None else floor_change + 1.0),      # plus the 1 s window
        Target("rollback of that change, warm / the change", SAME,
               ratio(f"rollback{n}", "gen0", f"change{n}", "gen0"), 0.5, "x",
               ratio(f"rollback{n}", "gen", f"change{n}", "gen"), no_warm, floor_rollback),
        Target("rollback of that change, cold (gen warm 0) / the change", SAME,
               ratio(f"rollback{n}_cold", "gen0", f"change{n}_warm0", "gen0"), 0.5, "x",
               ratio(f"rollback{n}_cold", "gen", f"change{n}_warm0", "gen"), no_warm, floor_rollback),
        Target("no-op N=200", SAME, med("noop200"), 0.22, " s", med("noop200", "gen"), floor=med("noop200", "floor")),
        vs("noop200", "compose", 0.3, "no-op N=200 / Compose"),
        vs("change200", "compose", 0.5, "change 1 of 200 / Compose"),
        Target("change 1 of 200 / change 1 of 50", SAME, ratio("change200", "gen0", "change50", "gen0"), 1.10, "x",
               ratio("change200", "gen", "change50", "gen"), floor=ratio("change200", "floor", "change50", "floor")),
        Target("gen status, N=200", SAME, med("status200"), 0.2, " s", med("status200", "gen")),
        vs("cold200", "floor", 1.05, "cold N=200 / SDK floor"),
        vs("healthy1", "compose", 0.7, "healthy single / Compose"),
        Target("gen --version, whole process", GEN_ONLY, med("version", "gen"), 0.1, " s",
               na=None if features.get("version") else "gen --version missing"),
        Target("gen list, 5 generations, whole process", GEN_ONLY, med("list5", "gen"), 0.1, " s"),
        # Round 1, neither retired nor tightened by issue 15:
        vs(f"noop{n}", "compose", 2.0, f"no-op N={n} / Compose"),
        Target("gen build, 1,000 services", GEN_ONLY, med("build1000", "gen"), 0.6, " s"),
        Target("gen list, 10,000 generations", GEN_ONLY, med("list10000", "gen"), 0.25, " s"),
        Target("objects added by one change of 1,000", GEN_ONLY, med("store_objects", "gen"), 2, " objects"),
    ]
    return [t.as_dict() for t in rows]
