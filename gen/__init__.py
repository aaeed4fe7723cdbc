"""gen: Nix-style immutable generations for Docker (the library's front door is gen.api, the CLI gen.cli)."""

__version__ = "0.1.0"     # kept equal to pyproject.toml's version (tests/test_startup.py); read without importlib.metadata
