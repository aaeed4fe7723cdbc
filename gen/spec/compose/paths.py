"""Host paths of one Compose file, made absolute where the file is read.

Compose resolves a file's relative paths against its own folder (an included file: its
project_directory), before files are merged by `include` or `extends`. So every file is passed
through absolute_paths once, right after it is loaded, and what the converter sees is absolute:
bind sources (short and long syntax), build contexts, env files, `extends.file`, and the files of
top-level secrets and configs. `~` is the home directory. Values of the wrong shape are left alone:
the converter reports them with their key path.
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping

from gen.errors import SpecError
from gen.spec.fields import normal_path
from gen.spec.messages import key_path, shown


def host_path(text: str, path: str, base_dir: str, environ: Mapping[str, str]) -> str:
    """A host path as Compose reads it: ~ is the home directory, relative means inside base_dir."""
    if text == "~" or text.startswith("~/"):
        home = environ.get("HOME")
        if not home:
            raise SpecError(path, f"cannot expand ~ in {shown(text)}: HOME is not set")
        return normal_path(home + text[1:])
    if text.startswith("~"):
        raise SpecError(path, f"{shown(text)}: only ~ and ~/... are understood (not ~user)")
    return normal_path(posixpath.join(base_dir, text))


def is_remote(context: str) -> bool:
    """A build context Compose would fetch (a Git URL); gen refuses those (gen.spec.build)."""
    return "://" in context or context.startswith("git@")


def absolute_paths(document, base_dir: str, environ: Mapping[str, str]):
    """The prepared document with its host paths made absolute (a new document where they change)."""
    if not isinstance(document, dict):
        return document
    fix = _Paths(base_dir, environ)
    out = dict(document)
    if isinstance(out.get("services"), dict):
        out["services"] = {name: fix.service(svc, key_path("services", name)) if isinstance(svc, dict) else svc
                           for name, svc in out["services"].items()}
    for section in ("secrets", "configs"):
        if isinstance(out.get(section), dict):
            out[section] = {name: fix.keyed(item, "file", key_path(section, name))
                            for name, item in out[section].items()}
    return out


class _Paths:
    def __init__(self, base_dir: str, environ: Mapping[str, str]):
        self.base_dir = base_dir
        self.environ = environ

    def path(self, text: str, path: str) -> str:
        return host_path(text, path, self.base_dir, self.environ)

    def keyed(self, item, key: str, path: str):
        """item[key], when it is a non-empty string, made absolute."""
        if isinstance(item, dict) and isinstance(item.get(key), str) and item[key]:
            return {**item, key: self.path(item[key], f"{path}.{key}")}
        return item

    def service(self, svc: dict, path: str) -> dict:
        svc = dict(svc)
        if "build" in svc:
            svc["build"] = self.build(svc["build"], f"{path}.build", "extends" in svc)
        if "env_file" in svc:
            svc["env_file"] = self.env_files(svc["env_file"], f"{path}.env_file")
        if isinstance(svc.get("volumes"), list):
            svc["volumes"] = [self.volume(item, f"{path}.volumes[{i}]") for i, item in enumerate(svc["volumes"])]
        if "extends" in svc:
            svc["extends"] = self.keyed(svc["extends"], "file", f"{path}.extends")
        return svc

    def build(self, build, path: str, extends: bool):
        if isinstance(build, str) and build:
            return build if is_remote(build) else self.path(build, path)
        if not isinstance(build, dict):
            return build
        if "context" not in build and not extends:   # an extending service may inherit its base's context
            return {**build, "context": self.base_dir}
        context = build.get("context")
        if isinstance(context, str) and context and not is_remote(context):
            return {**build, "context": self.path(context, f"{path}.context")}
        return build

    def env_files(self, value, path: str):
        if isinstance(value, str) and value:
            return self.path(value, path)
        if isinstance(value, list):
            return [self.path(item, f"{path}[{i}]") if isinstance(item, str) and item
                    else self.keyed(item, "path", f"{path}[{i}]") for i, item in enumerate(value)]
        return value

    def volume(self, item, path: str):
        if isinstance(item, str):
            source, colon, rest = item.partition(":")
            if colon and source.startswith((".", "~")):
                absolute = self.path(source, path)
                if ":" in absolute:     # it would split differently
                    raise SpecError(path, f"{shown(absolute)}: paths containing ':' are not supported")
                return absolute + colon + rest
            return item
        if isinstance(item, dict) and item.get("type") == "bind":
            return self.keyed(item, "source", path)
        return item
