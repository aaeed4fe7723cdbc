"""The files one Compose project is read from: the main file, the files it includes (top-level
`include`) and the files its services extend (`extends.file`).

Each file is read, prepared (`x-` keys dropped, variables interpolated with its environment) and
its relative paths made absolute against its own folder (gen.spec.compose.paths), as Compose does.
Then:
- `include: [path, ...]` or `[{ path, project_directory, env_file }]`: the included file's services,
  networks, volumes, secrets and configs join the project. Its relative paths start at its
  project_directory (default: its folder); its variables come from the including file's environment
  first, then from its env_file (default: the .env of its project_directory). A name defined twice,
  by the including file and an included one or by two included ones, is an error naming both.
- `extends: NAME` or `extends: { service: NAME, file: path }`: the service is its base service
  (from the same file, or from `file`) with its own keys merged on top (gen.spec.compose.merge).
  Chains are followed; a cycle is an error.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from gen.errors import SpecError
from gen.spec.compose.env import parse_env_file
from gen.spec.compose.merge import merge_service
from gen.spec.compose.paths import absolute_paths, host_path
from gen.spec.compose.shape import check_compose_keys, checked_list, checked_mapping
from gen.spec.compose.yamlfile import load_yaml, prepare
from gen.spec.document import read_text
from gen.spec.messages import key_path, shown

MAX_FILES = 64                  # files one project may read, all includes and extends together
SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


class ComposeFiles:
    """Reads the files of one project: at most MAX_FILES, and no file including itself."""

    def __init__(self):
        self.count = 0
        self.including: list[str] = []      # the include chain being read, for cycles

    def main(self, text: str, source: str, base_dir: str, environ: Mapping[str, str]):
        """The main file's document, its includes and extends resolved."""
        document = absolute_paths(prepare(load_yaml(text, source), environ, source), base_dir, environ)
        if not isinstance(document, dict):
            return document
        self.including.append(os.path.normpath(os.path.join(base_dir, source)))
        document = self.includes(document, source, base_dir, environ)
        self.including.pop()
        return resolve_extends(document, source, self, environ)

    def read(self, file: str, subject: str, base_dir: str, environ: Mapping[str, str]) -> dict:
        """Another file of the project, prepared, with paths absolute against base_dir."""
        self.count += 1
        if self.count > MAX_FILES:
            raise SpecError(subject, f"the project reads more than {MAX_FILES} Compose files")
        text = read_text(file, subject, f"compose file {shown(file)}")
        document = absolute_paths(prepare(load_yaml(text, file), environ, file), base_dir, environ)
        if document is None:
            return {}
        return checked_mapping(document, file, "the document must be a mapping", keep_null=True)

    # -- include --------------------------------------------------------------------------------------
    def includes(self, document: dict, source: str, base_dir: str, environ: Mapping[str, str]) -> dict:
        if "include" not in document or document["include"] is None:
            return document
        merged = {key: value for key, value in document.items() if key != "include"}
        owners = {(section, name): source for section in SECTIONS if isinstance(merged.get(section), dict)
                  for name in merged[section]}
        for i, entry in enumerate(checked_list(document["include"], "include")):
            for file, included in self.included(entry, f"include[{i}]", base_dir, environ):
                _join(merged, included, file, owners)
        return merged

    def included(self, entry, path: str, base_dir: str, environ: Mapping[str, str]) -> list[tuple[str, dict]]:
        if isinstance(entry, str):
            entry = {"path": entry}
        entry = checked_mapping(entry, path, "must be a path or a mapping with path")
        check_compose_keys(entry, path, ("path", "project_directory", "env_file"))
        files = [host_path(f, f"{path}.path", base_dir, environ) for f in _strings(entry.get("path"), f"{path}.path")]
        if not files:
            raise SpecError(f"{path}.path", "missing required key")
        project_dir = os.path.dirname(files[0])
        if "project_directory" in entry:
            project_dir = host_path(_strings(entry["project_directory"], f"{path}.project_directory")[0],
                                    f"{path}.project_directory", base_dir, environ)
        env_files = [host_path(f, f"{path}.env_file", base_dir, environ)
                     for f in _strings(entry.get("env_file"), f"{path}.env_file")]
        inner = {**_dotenv(env_files or [os.path.join(project_dir, ".env")], f"{path}.env_file", environ), **environ}
        out = []
        for file in files:
            if file in self.including:
                raise SpecError(f"{path}.path", f"include cycle: {' -> '.join([*self.including, file])}")
            self.including.append(file)
            document = self.includes(self.read(file, f"{path}.path", project_dir, inner), file, project_dir, inner)
            self.including.pop()
            out.append((file, resolve_extends(document, file, self, inner)))
        return out


def _strings(value, path: str) -> list[str]:
    """A string or a list of strings (include's path and env_file)."""
    items = [] if value is None else [value] if isinstance(value, str) else checked_list(value, path)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise SpecError(f"{path}[{i}]" if isinstance(value, list) else path, "must be a file path")
    return items


def _dotenv(files: list[str], subject: str, environ: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for file in files:
        if os.path.isfile(file):
            values.update(parse_env_file(read_text(file, subject, "env file"), file, subject, environ))
    return values


def _join(merged: dict, included: dict, file: str, owners: dict) -> None:
    """Add an included file's definitions; a name defined twice is an error naming both files."""
    check_compose_keys(included, "", ("name", "version", "services", "networks", "volumes", "secrets",
                                      "configs", "include"))
    for section in SECTIONS:
        table = checked_mapping(included.get(section) or {}, section, keep_null=True)
        for name, value in table.items():
            if (section, name) in owners:
                raise SpecError(key_path(section, name), f"is defined both by {owners[section, name]} and by "
                                                         f"the included {file}")
            owners[section, name] = file
            merged.setdefault(section, {})
            merged[section] = {**(merged[section] or {}), name: value}


# -- extends ---------------------------------------------------------------------------------------------
def resolve_extends(document: dict, source: str, files: ComposeFiles, environ: Mapping[str, str]) -> dict:
    services = document.get("services")
    if not isinstance(services, dict) or not any(isinstance(s, dict) and s.get("extends") is not None
                                                 for s in services.values()):
        return document
    resolver = _Extends(files, environ)
    resolved = {name: resolver.service(services, name, source, []) for name in services}
    return {**document, "services": resolved}


class _Extends:
    def __init__(self, files: ComposeFiles, environ: Mapping[str, str]):
        self.files = files
        self.environ = environ
        self.documents: dict[str, dict] = {}

    def service(self, services: dict, name: str, source: str, chain: list[str]):
        svc = services.get(name)
        if not isinstance(svc, dict) or svc.get("extends") is None:     # null counts as absent
            return svc
        path = key_path("services", name)
        here = f"{source}:{name}"
        if here in chain:
            raise SpecError(f"{path}.extends", f"extends cycle: {' -> '.join([*chain, here])}")
        extends = svc["extends"]
        extends = {"service": extends} if isinstance(extends, str) else checked_mapping(extends, f"{path}.extends")
        check_compose_keys(extends, f"{path}.extends", ("service", "file"))
        base_name = extends.get("service")
        if not isinstance(base_name, str) or not base_name:
            raise SpecError(f"{path}.extends.service", "missing required key" if base_name is None
                            else "must be a service name")
        base_services, base_source = services, source
        if "file" in extends:
            base_source = extends["file"]
            if not isinstance(base_source, str) or not base_source:
                raise SpecError(f"{path}.extends.file", "must be a file path")
            base_services = self.document(base_source, f"{path}.extends.file").get("services") or {}
        if not isinstance(base_services, dict) or base_name not in base_services:
            raise SpecError(f"{path}.extends.service", f"service {shown(base_name)} is not defined in {base_source}")
        base = self.service(base_services, base_name, base_source, [*chain, here])
        base = checked_mapping(base, key_path("services", base_name), keep_null=True)
        return merge_service(base, {key: value for key, value in svc.items() if key != "extends"})

    def document(self, file: str, subject: str) -> dict:
        if file not in self.documents:
            self.documents[file] = self.files.read(file, subject, os.path.dirname(file), self.environ)
        return self.documents[file]
