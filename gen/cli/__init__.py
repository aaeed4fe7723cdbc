"""The `gen` command line: a thin typer front end over gen.api (app), with its views and progress."""
from gen.cli.app import app, main

__all__ = ["app", "main"]
