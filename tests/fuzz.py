"""Property-based malformed specs against the real CLI entry point.

Every generated spec is malformed (broken TOML, wrong types, missing and unknown keys, bad names,
huge values). For each: exit code 1, exactly one line "error: ..." on stderr, no traceback, nothing
written to the state directory, and no engine call: DOCKER_HOST points at a socket that does not
exist, so any attempt to reach the engine would surface as "docker engine: not reachable".
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = {
    "name": "fuzz",
    "volumes": {"data": {}},
    "services": {
        "db": {"image": "gen-test/busybox:1", "command": ["sleep", "1"], "volumes": ["data:/data"],
               "healthcheck": {"test": ["CMD", "true"], "interval": "1s", "retries": 3}},
        "web": {"image": "gen-test/busybox:1", "env": {"A": "1"}, "ports": ["127.0.0.1:8080:80"],
                "depends_on": ["db"], "replicas": 1, "update": "start-first", "stop_grace": "1s",
                "restart": "no"},
    },
}

_any_value = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=8)

# Values that are wrong for the field they replace (every field below has a different expected type).
_WRONG = {
    ("services", "web", "image"): st.integers() | st.lists(st.text(), max_size=2) | st.just(""),
    ("services", "web", "replicas"): st.integers(min_value=101) | st.integers(max_value=0) | st.text() | st.floats(),
    ("services", "web", "ports"): st.just(["127.0.0.1:99999:80"]) | st.lists(st.integers(), min_size=1) | st.text(),
    ("services", "web", "env"): st.dictionaries(st.sampled_from(["A", "B"]), st.integers(), min_size=1) | st.text(),
    ("services", "web", "stop_grace"): st.sampled_from(["soon", "-1s", "100000h", "1.00001ms", "", "5"]) | st.integers(),
    ("services", "web", "update"): st.text().filter(lambda s: s not in ("start-first", "stop-first")),
    ("services", "web", "restart"): st.text().filter(lambda s: s not in ("no", "always", "unless-stopped", "on-failure")),
    ("services", "web", "depends_on"): st.just(["nope"]) | st.just(["web"]) | st.text(min_size=1),
    ("services", "db", "volumes"): st.just(["undeclared:/x"]) | st.just(["data:relative"]) | st.integers(),
    ("services", "db", "healthcheck", "retries"): st.integers(min_value=1001) | st.integers(max_value=0) | st.booleans(),
    ("services", "db", "healthcheck", "test"): st.just(["BOGUS", "x"]) | st.just([]) | st.integers(),
    ("name",): st.sampled_from(["Upper", "-dash", "a" * 64, "", "sp ace", "ü"]) | st.integers(),
}


@st.composite
def malformed_specs(draw) -> str:
    kind = draw(st.sampled_from(["text", "mutated"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    spec = json.loads(json.dumps(VALID))
    faults = draw(st.lists(st.sampled_from(["wrong", "unknown", "missing", "bad-name", "noise"]), min_size=1, max_size=3))
    if "noise" in faults and len(set(faults)) == 1:
        faults.append("unknown")     # noise alone could be harmless; keep every case malformed
    for fault in faults:
        _apply(draw, spec, fault)
    return to_toml(spec)


def _apply(draw, spec: dict, fault: str) -> None:
    if fault == "wrong":
        path = draw(st.sampled_from(sorted(_WRONG)))
        _set(spec, path, draw(_WRONG[path]))
    elif fault == "unknown":
        table = draw(st.sampled_from([spec, spec["services"]["web"], spec["services"]["db"]["healthcheck"]]))
        table[draw(st.sampled_from(["imgae", "x", "Ports", "volume", "extra_key"]))] = draw(_any_value)
    elif fault == "missing":
        spec["services"][draw(st.sampled_from(["web", "db"]))].pop("image", None)
    elif fault == "bad-name":
        name = draw(st.sampled_from(["Web", "_x", "a/b", "x" * 70, "ü", ""]))
        spec["services"][name] = {"image": "gen-test/busybox:1"}
    elif fault == "noise" and isinstance(spec["services"]["web"].get("env"), dict):
        spec["services"]["web"]["env"][draw(st.sampled_from(["N1", "N2"]))] = draw(st.text(max_size=50))


def _set(spec: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        spec = spec[key]
    spec[path[-1]] = value


def to_toml(value: dict) -> str:
    """Everything as top-level keys with inline values (valid TOML for any nesting)."""
    return "".join(f"{_key(k)} = {_inline(v)}\n" for k, v in value.items())


def _key(k: str) -> str:
    return json.dumps(k, ensure_ascii=False)


def _inline(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return '""'            # TOML has no null
    if isinstance(v, (int, float)):
        return repr(v) if not isinstance(v, float) or v == v else "nan"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_inline(x)}" for k, x in v.items()) + "}"


def run_one(text: str, work: Path) -> str | None:
    """Run `gen build` on the text; return None when the outcome is clean, else what went wrong."""
    from gen.cli.app import main
    spec = work / "spec.toml"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    state = work / "state"
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(["build", str(spec), "--state-dir", str(state)])
        except BaseException as e:      # noqa: BLE001 - anything escaping main() is the bug we look for
            return f"exception escaped: {e!r}"
    lines = err.getvalue().strip().splitlines()
    problem = None
    if code != 1:
        problem = f"exit code {code}"
    elif len(lines) != 1 or not lines[0].startswith("error: "):
        problem = f"stderr is not one error line: {err.getvalue()!r}"
    elif "Traceback" in err.getvalue() or "docker engine" in lines[0]:
        problem = f"touched the engine or crashed: {lines[0]}"
    elif state.exists():
        problem = "wrote to the state directory"
    shutil.rmtree(state, ignore_errors=True)
    return problem


def fuzz_cli(examples: int) -> tuple[int, int]:
    """Run `examples` malformed specs; returns (clean, run). Prints the first failure, shrunk."""
    counts = {"run": 0, "clean": 0}
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/gen-fuzz.sock"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(malformed_specs())
            def check(text):
                counts["run"] += 1
                problem = run_one(text, Path(tmp))
                assert problem is None, problem
                counts["clean"] += 1
            try:
                check()
            except AssertionError as e:
                print(f"  fuzz: {e}")
    finally:
        if saved is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = saved
    return counts["clean"], counts["run"]
