"""The content address of an image build: blake3 over everything that decides what the builder makes.

    build_inputs(build, platform, key_path) -> 64 hex digits

The inputs are the context's files as the builder receives them (relative path, mode, content, or a
symlink's target; what .dockerignore excludes is left out), the Dockerfile's text (wherever it is,
inside the context or not), the build args, target, labels and platform. An image labelled
gen.build.inputs=<that hash> is what a build of those inputs made, so gen reuses it instead of
building again (gen.state.images), as Nix skips a derivation whose output exists. The base images
named by FROM are not inputs: a base image that moved is picked up by `gen build --rebuild`.

.dockerignore is matched here with Docker's own rules (moby's patternmatcher, what `docker build`
does), written out in Python rather than borrowed from the Docker SDK, because only gen.engine.docker
may import docker and hashing a context needs no engine: lines are trimmed, `#` starts a comment,
`!` re-includes, each pattern is cleaned like a path (`./a/../b/` is `b`, a leading `/` dropped),
`*` and `?` never cross `/`, `**` matches any number of directories, `[...]` and `\\` as in Go's
filepath.Match, the last matching pattern wins, and a path is excluded when it or one of its parent
directories is.
"""
from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from gen.errors import SpecError
from store import hash_value

INPUTS_LABEL = "gen.build.inputs"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern
    exclusion: bool                  # a `!` line: re-includes what it matches


def read_dockerignore(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned as Docker cleans them (exceptions keep their `!`)."""
    patterns = []
    for n, line in enumerate(text.splitlines()):
        if n == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = posixpath.normpath(line)
            if len(line) > 1 and line.startswith("/"):
                line = line.lstrip("/") or "/"
        patterns.append(("!" if invert else "") + line)
    return patterns


def compile_patterns(patterns: list[str]) -> list[Pattern]:
    return [Pattern(re.compile(_regex(p.removeprefix("!"))), p.startswith("!")) for p in patterns]


def _regex(pattern: str) -> str:
    """A Docker ignore pattern as an anchored regular expression (moby patternmatcher's translation)."""
    rest = pattern[2:]
    if pattern.startswith("**") and rest and not any(c in rest for c in "*?[]\\"):
        # Docker matches a plain `**suffix` as a string suffix ("**.go" is any path ending in .go);
        # `**/foo` also matches "foo" itself.
        alone = f"|{re.escape(rest[1:])}" if rest.startswith("/") else ""
        return f"^(.*{re.escape(rest)}{alone})$"
    out, i, n = ["^"], 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1           # `**/` is `**`
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":            # escapes the next character (a trailing one stands for itself)
            out.append(re.escape(pattern[i] if i < n else ch))
            i += 1
        elif ch in "[]":             # a character class, as in filepath.Match
            out.append(ch)
        else:
            out.append(re.escape(ch))
    return "".join(out) + "$"


def excluded(path: str, patterns: list[Pattern]) -> bool:
    """Is `path` (relative, with `/`) left out of the context? It is when it, or a parent directory
    of it, matches the last pattern that applies to it."""
    parts = path.split("/")
    candidates = [path] + ["/".join(parts[:i]) for i in range(1, len(parts))]
    matched = False
    for p in patterns:
        if p.exclusion != matched:
            continue                 # an inclusion once included, or an exception before any exclusion
        if any(p.regex.match(c) for c in candidates):
            matched = not p.exclusion
    return matched


# -- hashing a context ------------------------------------------------------------------------------
def context_entries(context: Path, patterns: list[Pattern]) -> list[tuple]:
    """(relative path, mode, content hash or link target) of every path the builder receives, sorted.
    A directory that is excluded is not entered unless an exception could re-include something in it."""
    entries: list[tuple] = []
    exceptions = any(p.exclusion for p in patterns)

    def visit(directory: Path, prefix: str) -> None:
        with os.scandir(directory) as it:
            for entry in sorted(it, key=lambda e: e.name):
                rel = prefix + entry.name
                st = entry.stat(follow_symlinks=False)
                is_dir = stat.S_ISDIR(st.st_mode)
                out = excluded(rel, patterns)
                if not out:
                    entries.append((rel, st.st_mode, _content(entry.path, st.st_mode)))
                if is_dir and (not out or exceptions):
                    visit(Path(entry.path), rel + "/")
    visit(context, "")
    return entries


def _content(path: str, mode: int) -> str:
    if stat.S_ISLNK(mode):
        return os.readlink(path)
    if not stat.S_ISREG(mode):
        return ""
    import blake3
    h = blake3.blake3()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def build_inputs(build: dict, platform: str | None, key_path: str) -> str:
    """The content address of a build (see the module's docstring). SpecError naming key_path when the
    context or the Dockerfile cannot be read."""
    context = Path(build["context"])
    dockerfile = context / build["dockerfile"]
    try:
        ignore = context / ".dockerignore"
        patterns = compile_patterns(read_dockerignore(ignore.read_text("utf-8", "replace"))) if ignore.is_file() else []
        files = context_entries(context, patterns)
    except OSError as e:
        raise SpecError(f"{key_path}.context", f"cannot read the build context {context}: {e.strerror or e}") from None
    try:
        recipe = dockerfile.read_bytes()
    except OSError as e:
        raise SpecError(f"{key_path}.dockerfile", f"cannot read {dockerfile}: {e.strerror or e}") from None
    return hash_value({"files": [list(f) for f in files], "dockerfile": recipe, "dockerfile_path": build["dockerfile"],
                       "args": dict(build.get("args") or {}), "target": build.get("target") or "",
                       "labels": dict(build.get("labels") or {}), "platform": platform or ""})
