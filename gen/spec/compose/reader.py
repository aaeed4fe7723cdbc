"""Import a Compose file (the subset gen can honour) as a gen Spec.

A Compose document is converted into the TOML-shaped document a gen.toml would hold and
then goes through the very same validation (gen.spec.document.build_spec), so both formats give
the same normal form. Error subjects are mapped back to the Compose key that produced the
value (`services.web.environment[2]`, `services.web.deploy.replicas`).

Rules, as Compose has them:
- YAML is read with YAML 1.2 core-schema scalars, as Compose's Go reader does: `no`, `on`
  and `yes` are strings (`restart: no`), `22:22` is a string, not the base-60 number 1342,
  and `2024-01-01` is a string. Duplicate keys are an error.
- Keys starting with `x-` are ignored in every mapping (extension fields).
- Every string value is interpolated (`$VAR`, `${VAR:-default}`, `${VAR:?error}`, `$$`)
  before anything else looks at it; unset variables without a default become "".
- A key set to null counts as absent.
Anything gen cannot honour is an error naming its key, never silently dropped.

The work is split by stage, each module readable on its own (none imports this one):
- yamlfile: YAML text -> plain data within size limits, `x-` keys dropped, strings
  interpolated (the only module importing yaml; gen.spec.load imports gen.spec.compose
  lazily, so gen.toml users never load it).
- env: variable interpolation and `.env`-style files.
- paths: each file's relative host paths made absolute against its own folder.
- sources: the files of the project (`include`, `extends`), merged by merge's rules.
- convert: the Compose document -> gen's TOML-shaped document, with the per-field
  converters in fields, mounts, networks and build, and shared checks in shape.
Service profiles are selected by gen.spec.profiles, on the converted document, as for a gen.toml.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from gen.model.types import Spec
from gen.spec.compose.convert import convert_document
from gen.spec.compose.env import parse_env_file
from gen.spec.compose.sources import ComposeFiles
from gen.spec.document import build_spec, read_text, resolve_base_dir
from gen.spec.profiles import active_profiles


def load_compose(path: str | os.PathLike, profiles=()) -> Spec:
    """Read a Compose file. Variables come from os.environ, then a `.env` file beside it.
    profiles: the service profiles to enable (none given: COMPOSE_PROFILES, as Compose reads it)."""
    source = os.fsdecode(path)
    text = read_text(source, source, "compose file")
    base_dir = os.path.dirname(os.path.abspath(source))
    environ = dict(os.environ)
    dotenv = os.path.join(base_dir, ".env")
    if os.path.isfile(dotenv):
        file_vars = parse_env_file(read_text(dotenv, dotenv, ".env file"), dotenv, dotenv, os.environ)
        environ = {**file_vars, **os.environ}  # the shell's environment wins, as in Compose
    return parse_compose(text, source, base_dir, environ, profiles)


def parse_compose(text: str, source: str = "<string>", base_dir: str | None = None,
                  environ: Mapping[str, str] | None = None, profiles=()) -> Spec:
    """Compose text -> Spec. Relative paths are resolved against base_dir (default: the cwd);
    variables come from `environ` only (default: none), so this is deterministic (files it includes
    or extends are read from disk, relative to base_dir)."""
    environ = {} if environ is None else environ
    base_dir = resolve_base_dir(base_dir)
    document = ComposeFiles().main(text, source, base_dir, environ)
    if document is None:  # an empty file: no services, like an empty gen.toml
        document = {}
    converted, origins = convert_document(document, base_dir, environ, source)
    return build_spec(converted, source, base_dir, origins, active_profiles(profiles, environ))
