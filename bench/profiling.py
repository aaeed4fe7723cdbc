"""`just bench --profile CASE[,CASE]`: gen's measured command of those cases, run once under pyinstrument
(the bench extra) after the case's own setup, its text profile written to results/profiles/<case>.txt (the call
tree; library frames folded, as pyinstrument shows them by default) and <case>.flat.txt (functions by their own
time), and the tree's top lines printed.

The command runs as `python -m pyinstrument -r pyisession -o FILE <gen script> ARGS...` with the interpreter of
the gen script under test (its shebang), so `--gen` with another install profiles that install; the session is
rendered to text afterwards (`--load`). pyinstrument samples the main thread: gen's worker threads show as the
main thread waiting on them.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOP_LINES = 15
TREE_START = "Program: "      # the text renderer's banner ends with this line, then the tree


def interpreter(script: str) -> str:
    """The Python that runs a console script: its shebang."""
    first = Path(script).read_text(errors="replace").splitlines()[0]
    if not first.startswith("#!"):
        raise RuntimeError(f"{script}: not a Python console script (no shebang); cannot profile it")
    return first[2:].strip().split()[0]


def wrap(argv: list[str], session: Path) -> list[str]:
    """The command that runs argv (a gen command) under pyinstrument, saving its session to `session`."""
    return [interpreter(argv[0]), "-m", "pyinstrument", "-r", "pyisession", "-o", str(session), *argv]


def available(script: str) -> str | None:
    """None when pyinstrument can run under the gen script's interpreter; else why not."""
    p = subprocess.run([interpreter(script), "-m", "pyinstrument", "--version"], capture_output=True, text=True,
                       timeout=60, check=False)
    return None if p.returncode == 0 else (f"pyinstrument is not installed for {interpreter(script)} "
                                           "(pip install -e '.[bench]')")


def render(session: Path, out_dir: Path, name: str) -> tuple[Path, list[str]]:
    """Write <name>.txt (tree) and <name>.flat.txt from a saved session; return the tree's path and top lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tree, flat = out_dir / f"{name}.txt", out_dir / f"{name}.flat.txt"
    for out, extra in ((tree, []), (flat, ["-p", "flat=true"])):
        subprocess.run([sys.executable, "-m", "pyinstrument", "--load", str(session), "-r", "text", "--no-color",
                        "--unicode", *extra, "-o", str(out)], check=True, capture_output=True, timeout=300)
    return tree, top_lines(tree.read_text())


def top_lines(text: str, count: int = TOP_LINES) -> list[str]:
    """The profile's duration and CPU time, then the first `count` lines of the tree (after the banner)."""
    lines = text.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith(TREE_START)), 0)
    timing = next((re.sub(r"^.*?(Duration:)", r"\1", line).strip() for line in lines[:start]
                   if "Duration:" in line), "")
    return ([timing] if timing else []) + [line for line in lines[start:] if line.strip()][:count]
