"""The options the verbs of gen.cli.app share, defined once, and the options of `gen` itself (gen_options)."""
from __future__ import annotations

from enum import Enum

import typer


class Pull(str, Enum):
    """--pull: how this run treats images it would look up or pull (gen.state.images)."""
    always = "always"
    missing = "missing"
    never = "never"


class TargetKind(str, Enum):
    """--target: where a profile's generations run, chosen by its first switch (gen.state.target)."""
    engine = "engine"
    swarm = "swarm"


ProfileOpt = typer.Option(None, "-p", "--profile", help="Profile name (default: the spec's `name`, or the only profile).")
StateDirOpt = typer.Option(None, "--state-dir", envvar="GEN_STATE_DIR",
                           help="State directory (default: $XDG_STATE_HOME/gen).")
TimeoutOpt = typer.Option(60.0, "--timeout", help="Seconds the new generation may take to become healthy.")
LockTimeoutOpt = typer.Option(30.0, "--lock-timeout", help="Seconds to wait for another activation of the profile.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress output; print only the result.")
JsonOpt = typer.Option(False, "--json", help="Machine-readable output (stable keys) on stdout.")
DryRunOpt = typer.Option(False, "--dry-run", help="Print the plan; change nothing.")
PullOpt = typer.Option(None, "--pull", case_sensitive=False,
                       help="Override every service's pull_policy: always (pull tags again), missing (pull only "
                            "absent images), never (no pull; an absent image is an error).")
RebuildOpt = typer.Option(False, "--rebuild", help="Build every service with `build` again, even when an image "
                                                   "of the same inputs exists.")
ComposeProfileOpt = typer.Option([], "--compose-profile", metavar="NAME",
                                 help="Enable the services of this Compose profile (repeatable; a Compose file "
                                      "without it reads $COMPOSE_PROFILES, comma-separated).")
StableForOpt = typer.Option(1.0, "--stable-for", min=0.0,
                            help="Seconds a container without a healthcheck must run without exiting or restarting "
                                 "to count as healthy.")
ClosureOpt = typer.Option(None, "--closure/--no-closure",
                          help="Archive this generation's images in the store (a rollback then needs no registry); "
                               "default: the profile's setting (gen closure on|off).")
TargetOpt = typer.Option(None, "--target", case_sensitive=False,
                         help="Where the profile runs, chosen at its first switch and recorded: engine (containers on "
                              "the Docker engine, the default) or swarm (services on the Swarm whose manager "
                              "DOCKER_HOST names). A later switch may not change it.")
PushToOpt = typer.Option(None, "--push-to", metavar="REGISTRY",
                         help="Swarm: push every image that has no registry digest to REGISTRY (host[:port]) before "
                              "the activation, and run it by the pushed digest (recorded with the profile's target).")


def _print_version(wanted: bool) -> None:
    if wanted:
        from gen import __version__
        print(f"gen {__version__}")
        raise typer.Exit()


def gen_options(version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                             help="Print gen's version and exit.")):
    """The options before the verb. --version is eager: it exits before any verb runs, having imported
    typer and gen.cli alone (no gen.api, no engine)."""
