"""Compose's variables: interpolation of `$VAR` and `${VAR...}` in strings, and `.env`-style files.

Kept apart from the YAML reader because both the Compose file and its env files use the same
substitution rules: gen.spec.compose.yamlfile interpolates every string of the document, and env files
(the `.env` beside the Compose file, a service's env_file) interpolate their values from their
own earlier lines first, then the environment, as Compose's dotenv reader does. Everything here
works on text and mappings only: no YAML, no files.
"""
from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping

from gen.errors import SpecError
from gen.spec.fields import ENV_KEY_RE
from gen.spec.messages import clip, one_line, shown

MAX_NESTED_VARIABLES = 16  # ${A:-${B:-${C...}}}: bounds the recursion a hostile file can ask for


# ---------------------------------------------------------------- interpolation

_VARIABLE = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


def interpolate(text: str, path: str, environ: Mapping[str, str], depth: int = 0) -> str:
    """Compose's variable substitution. Errors name `path`."""
    if "$" not in text:
        return text
    if depth > MAX_NESTED_VARIABLES:
        raise SpecError(path, "variables are nested too deeply")
    out, i = [], 0
    while (start := text.find("$", i)) >= 0:
        out.append(text[i:start])
        follower = text[start + 1:start + 2]
        if follower == "$":
            out.append("$")
            i = start + 2
        elif follower == "{":
            end = _closing_brace(text, start + 2)
            if end < 0:
                raise SpecError(path, f"invalid interpolation in {shown(text)}: unclosed ${{")
            out.append(_braced(text[start + 2:end], path, environ, depth, text))
            i = end + 1
        elif match := _VARIABLE.match(text, start + 1):
            out.append(environ.get(match[0], ""))
            i = match.end()
        else:
            raise SpecError(path, f"invalid interpolation in {shown(text)}: "
                                  "a $ must start $NAME or ${NAME} (write $$ for a literal $)")
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, i: int) -> int:
    depth = 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair == "$$":
            i += 2
        elif pair == "${":
            depth, i = depth + 1, i + 2
        elif text[i] == "}":
            if depth == 0:
                return i
            depth, i = depth - 1, i + 1
        else:
            i += 1
    return -1


def _braced(body: str, path: str, environ: Mapping[str, str], depth: int, text: str) -> str:
    match = _VARIABLE.match(body)
    operator = next((op for op in _OPERATORS if match and body.startswith(op, match.end())), None)
    if not match or (operator is None and match.end() != len(body)):
        raise SpecError(path, f"invalid interpolation in {shown(text)}: "
                              f"${{{repr(clip(body, 30))[1:-1]}}} is not ${{NAME}}, ${{NAME:-default}} or ${{NAME:?error}}")
    name, value = match[0], environ.get(match[0])
    if operator is None:
        return value or ""
    argument = body[match.end() + len(operator):]
    present = bool(value) if operator.startswith(":") else value is not None
    if operator in (":-", "-"):
        return value if present else interpolate(argument, path, environ, depth + 1)
    if operator in (":+", "+"):
        return interpolate(argument, path, environ, depth + 1) if present else ""
    if present:
        return value
    message = clip(one_line(interpolate(argument, path, environ, depth + 1)), 200)
    raise SpecError(path, f"required variable {name} is missing a value" + (f": {message}" if message else ""))


# ---------------------------------------------------------------- env files

def parse_env_file(text: str, file: str, subject: str, environ: Mapping[str, str]) -> dict[str, str]:
    """KEY=VALUE lines (Compose's env_file and .env): `#` comments, blank lines, `export KEY=...`,
    'single' (literal) and "double" quotes, `KEY` alone takes the value from `environ` (or is
    dropped). Unquoted and double-quoted values are interpolated like the Compose file, from the
    file's own earlier lines first, then `environ` (as Compose's dotenv reader does)."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[7:].lstrip()
        key, equals, value = line.partition("=")
        key = key.strip()
        where = f"{shown(file)} line {number}"
        if len(key) > 4096 or not ENV_KEY_RE.fullmatch(key):
            raise SpecError(subject, f"{where}: invalid variable name {shown(key)}")
        if not equals:
            if key in environ:
                found[key] = environ[key]
            continue
        try:
            found[key] = _env_file_value(value.strip(), subject, ChainMap(found, environ))
        except SpecError as err:
            raise SpecError(subject, f"{where}: {err.reason}") from None
    return found


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


def _env_file_value(value: str, subject: str, lookup: Mapping[str, str]) -> str:
    if value.startswith("'"):
        end = value.find("'", 1)
        if end < 0 or not _only_comment(value[end + 1:]):
            raise SpecError(subject, "unterminated ' quote" if end < 0 else "text after the closing quote")
        return value[1:end]
    if value.startswith('"'):
        out, i = [], 1
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                out.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                i += 2
            else:
                out.append(value[i])
                i += 1
        if i >= len(value) or not _only_comment(value[i + 1:]):
            raise SpecError(subject, 'unterminated " quote' if i >= len(value) else "text after the closing quote")
        return interpolate("".join(out), subject, lookup)
    comment = re.search(r"\s#", value)
    return interpolate(value[:comment.start()].rstrip() if comment else value, subject, lookup)


def _only_comment(rest: str) -> bool:
    rest = rest.strip()
    return not rest or rest.startswith("#")
