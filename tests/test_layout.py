"""The architecture, checked: packages import one way, down the data flow, with no cycles.

    store  <-  gen.errors, gen.faults  <-  gen.model  <-  gen.spec, gen.engine  <-  gen.state  <-  gen.deploy  <-  gen.api  <-  gen.cli

A module may import from its own package or from a package to its left, never to its right; no two
modules import each other, directly or through others; `docker` is imported by gen.engine.docker
alone; no module imports another module's underscore names; gen.cli speaks only to gen.api.
Parsed with `ast`, so nothing is imported and the rule holds for lazy imports inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["store", "gen.errors gen.faults", "gen.model", "gen.spec gen.engine", "gen.state", "gen.deploy", "gen.api", "gen.cli"]
RANK = {pkg: i for i, names in enumerate(LAYERS) for pkg in names.split()}
TOP_MODULES = {"gen.__init__", "gen.__main__"}       # entry points: gen/__main__.py runs the CLI
MAX_LINES = 330


def modules() -> dict[str, Path]:
    found = {}
    for package in ("gen", "store"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__") if name.endswith(".__init__") and name.count(".") > 1 else name] = path
    return found


def imports(path: Path, module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file, at any depth."""
    out = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, [], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def layer(module: str) -> str | None:
    for pkg in sorted(RANK, key=len, reverse=True):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return None


MODULES = modules()


def gen_edges() -> dict[str, set[str]]:
    """module -> the project modules it imports (a `from pkg import name` of a submodule counts as that submodule)."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names, _ in imports(path, module):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in MODULES and candidate != module:
                    edges[module].add(candidate)
                    break
    return edges


def test_imports_point_down_the_data_flow():
    wrong = []
    for module, path in MODULES.items():
        if module in TOP_MODULES:
            continue
        mine = layer(module)
        for target, _, line in imports(path, module):
            theirs = layer(target)
            if theirs is None or theirs == mine:
                continue
            if RANK[theirs] > RANK[mine]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target} (an upper layer)")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = gen_edges()
    cycles, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                cycles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_the_docker_engine_imports_docker():
    users = sorted(m for m, path in MODULES.items()
                   if any(t == "docker" or t.startswith("docker.") for t, _, _ in imports(path, m)))
    assert users == ["gen.engine.docker"]


def test_store_knows_nothing_of_gen():
    users = sorted(m for m, path in MODULES.items() if m.startswith("store")
                   and any(layer(t) not in (None, "store") for t, _, _ in imports(path, m)))
    assert users == []


def test_the_cli_speaks_only_to_the_front_door():
    wrong = [f"{m} imports {t}" for m, path in MODULES.items() if m.startswith("gen.cli")
             for t, _, _ in imports(path, m) if layer(t) not in (None, "gen.cli", "gen.api")]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_modules_private_names():
    wrong = []
    for module, path in MODULES.items():
        for target, names, line in imports(path, module):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and layer(target):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: from {target} import {', '.join(private)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_fit_in_one_head(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it where it does two things"
