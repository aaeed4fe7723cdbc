"""Read Compose YAML into plain data, safely: the first step of gen.spec.compose.

YAML is read with YAML 1.2 core-schema scalars, as Compose's Go reader does (`no` is a
string, `22:22` is not the base-60 number 1342, `2024-01-01` is not a date), and duplicate
keys are an error. A Compose file may come from anywhere, so the limits below bound what a
small hostile file can cost once aliases are expanded ("billion laughs") or nesting runs deep.
prepare() then walks the loaded tree once: it drops `x-` keys, interpolates every string
(gen.spec.compose.env) and refuses YAML values Compose has no use for, so the converter only
ever sees str/int/float/bool/None, lists and string-keyed dicts.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import yaml

from gen.errors import SpecError
from gen.spec.compose.env import interpolate
from gen.spec.messages import clip, key_path, one_line, shown

MAX_VALUES = 100_000   # values in the document once YAML aliases are expanded ("billion laughs")
MAX_DEPTH = 64         # mapping/list nesting


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (what Compose's Go YAML reader gives)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"found duplicate key {clip(key_node.value)!r}", key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep)


def _construct_int(loader, node) -> int:
    text = str(loader.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
    digits = digits[2:] if base != 10 else digits
    if base == 10 and len(digits) > 1 and digits[0] == "0" and all(c in "01234567" for c in digits):
        base = 8    # `mode: 0440` is octal to Compose's Go YAML reader (strconv's base 0), so here too
    if len(digits) > 1000:  # int() of huge text is slow or refused outright
        raise yaml.constructor.ConstructorError(None, None, "integer is too long", node.start_mark)
    try:
        return sign * int(digits, base)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"invalid integer {shown(text)}",
                                                node.start_mark) from None


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def load_yaml(text: str, source: str):
    """YAML text -> plain data (YAML 1.2 core-schema scalars, no duplicate keys); errors name `source`."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = " ".join(part for part in (err.context, err.problem) if part)
        raise SpecError(source, f"invalid YAML: {one_line(what)}{where}") from None
    except yaml.YAMLError as err:
        raise SpecError(source, f"invalid YAML: {one_line(str(err))}") from None
    except (ValueError, TypeError, OverflowError):  # explicit tags PyYAML cannot construct
        raise SpecError(source, "invalid YAML: a tagged value cannot be read") from None
    except RecursionError:
        raise SpecError(source, "invalid YAML: nested too deeply") from None


def prepare(document, environ: Mapping[str, str], source: str):
    """The loaded document as the converter wants it: `x-` keys dropped, every string interpolated
    from `environ`, within MAX_VALUES and MAX_DEPTH."""
    return _Prepared(environ, source).value(document, "", 0)


class _Prepared:
    """Copy the document: drop `x-` keys, interpolate strings, refuse what YAML has but Compose has not."""

    def __init__(self, environ: Mapping[str, str], source: str):
        self.environ = environ
        self.source = source
        self.count = 0

    def value(self, node, path: str, depth: int):
        self.count += 1
        if self.count > MAX_VALUES:
            raise SpecError(self.source, f"the document is too large (more than {MAX_VALUES} values "
                                         "once YAML aliases are expanded)")
        if depth > MAX_DEPTH:
            raise SpecError(path or self.source, "nested too deeply")
        if isinstance(node, str):
            return interpolate(node, path, self.environ)
        if node is None or isinstance(node, (bool, int, float)):
            return node
        if isinstance(node, list):
            return [self.value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node)]
        if isinstance(node, dict):
            out = {}
            for key, item in node.items():
                if not isinstance(key, str):
                    raise SpecError(path or self.source, f"key {shown(key)} must be a string (quote it)")
                if not key.startswith("x-"):
                    out[key] = self.value(item, key_path(path, key), depth + 1)
            return out
        raise SpecError(path or self.source, f"unsupported YAML value of type {type(node).__name__}")
