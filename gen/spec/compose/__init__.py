"""The Compose reader: a compose.yaml -> the same validated Spec a gen.toml gives (see reader).
Importing this package imports yaml; gen.spec.load does so only for Compose files."""
from gen.spec.compose.env import interpolate, parse_env_file
from gen.spec.compose.reader import load_compose, parse_compose

__all__ = ["interpolate", "load_compose", "parse_compose", "parse_env_file"]
