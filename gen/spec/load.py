"""Which reader a spec file goes to: YAML files are Compose files (gen.spec.compose), everything
else is gen TOML (gen.spec.document). The Compose reader is imported only when a YAML file is
loaded, so gen.toml users never import yaml."""
from __future__ import annotations

import os

from gen.model.types import Spec
from gen.spec.document import parse_spec, read_text

COMPOSE_SUFFIXES = (".yaml", ".yml")   # compose.yaml, docker-compose.yml, anything.yaml


def is_compose_file(path: str | os.PathLike) -> bool:
    return os.fsdecode(path).lower().endswith(COMPOSE_SUFFIXES)


def load_spec(path: str | os.PathLike, profiles=()) -> Spec:
    """A spec file: YAML files are Compose files, everything else is gen TOML. profiles: the service
    profiles to enable (gen.spec.profiles); for a Compose file none given means COMPOSE_PROFILES, as
    Compose reads it (a gen.toml reads no environment)."""
    if is_compose_file(path):
        from gen.spec.compose import load_compose  # lazy: TOML users never import yaml
        return load_compose(path, profiles)
    source = os.fsdecode(path)
    text = read_text(source, source, "spec")
    return parse_spec(text, source, os.path.dirname(os.path.abspath(source)), profiles)
