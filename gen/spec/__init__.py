"""User input -> a validated Spec. The front door of gen.spec: callers import from here.

- load: which reader a file goes to (YAML: Compose, anything else: gen TOML), with the service
  profiles to enable.
- document: the TOML-shaped document -> Spec (build_spec, the one validator both formats share).
- fields, ports, mounts, build, networks, files, options, swarmkeys (placement, endpoint_mode: a Swarm's
  only): the per-field parsers; relations: how
  services refer to each other (depends_on conditions, jobs, container names, host ports);
  profiles: which services a profile selection keeps.
- validate, messages: the generic checks under them, and how errors render key paths and values.
- compose/: the Compose reader (imports yaml; loaded only for Compose files).
"""
from gen.model.naming import NAME_RE
from gen.model.types import Spec
from gen.spec.document import build_spec, parse_spec
from gen.spec.load import is_compose_file, load_spec
from gen.spec.validate import parse_duration

__all__ = ["NAME_RE", "Spec", "build_spec", "is_compose_file", "load_spec", "parse_duration", "parse_spec"]
