"""The target a profile activates on, recorded with the profile: the local Docker engine (containers,
the default) or a Docker Swarm (services), named by DOCKER_HOST (a manager's).

    <state>/profiles/<name>/target.json     {"format": 1, "target": "swarm", "registry": "10.0.0.1:5000"}

The first switch chooses it (`gen switch SPEC --target swarm`); every later verb uses the recorded one.
A profile without the file targets the local engine, as every profile did before targets existed, so
no existing state directory changes. The target is not part of a generation: the same manifest
activates on either. A different `--target` is refused once the profile has a generation (or an
activation in flight): its history was made there. `registry` (`--push-to`, Swarm only) is where
images without a registry digest are pushed before an activation; it may be changed by any switch.

The file is written atomically and read strictly: one that is damaged, foreign or of a newer format
is a CorruptState naming it, and nothing is guessed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from gen.errors import CorruptState, GenError, UnknownFormat
from gen.state.profile import Profile
from store.fsutil import atomic_write, ensure_dir

TARGET_FILE = "target.json"
TARGET_FORMAT = 1
KINDS = ("engine", "swarm")
# host[:port][/path]: where `docker push` sends an image (gen adds the repository and tag)
REGISTRY_RE = re.compile(r"\A[a-zA-Z0-9][a-zA-Z0-9.-]*(:[0-9]{1,5})?(/[a-z0-9]+([._/-][a-z0-9]+)*)?\Z")


@dataclass(frozen=True)
class Target:
    kind: str = "engine"
    registry: str | None = None     # swarm: images without a registry digest are pushed here first

    def to_json(self) -> dict:
        return {"format": TARGET_FORMAT, "target": self.kind, **({"registry": self.registry} if self.registry else {})}

    def record(self, prof: Profile) -> None:
        """Record this target with the profile (record_target)."""
        record_target(prof, self)


def path_of(prof: Profile) -> Path:
    return prof.path / TARGET_FILE


def read_target(prof: Profile) -> Target:
    """The recorded target (the local engine when none is recorded); CorruptState naming the file."""
    path = path_of(prof)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Target()
    except OSError as e:
        raise CorruptState(str(path), f"cannot be read ({e.strerror})") from None
    try:
        data = json.loads(raw.decode())
    except ValueError:
        raise CorruptState(str(path), "is not a target record (not valid JSON); nothing was changed") from None
    if not isinstance(data, dict):
        raise CorruptState(str(path), "is not a target record (not a JSON object); nothing was changed")
    if data.get("format") != TARGET_FORMAT or isinstance(data.get("format"), bool):
        raise UnknownFormat(str(path), "target record", data.get("format"), (TARGET_FORMAT,))
    kind, registry = data.get("target"), data.get("registry")
    if kind not in KINDS or set(data) - {"format", "target", "registry"}:
        raise CorruptState(str(path), f"is not a target record gen wrote (target {kind!r}); nothing was changed")
    if registry is not None and (kind != "swarm" or not isinstance(registry, str) or not REGISTRY_RE.match(registry)):
        raise CorruptState(str(path), f"has an unexpected registry {registry!r}; nothing was changed")
    return Target(kind, registry)


def choose_target(prof: Profile, kind: str | None, registry: str | None) -> Target:
    """The target an activation of `prof` uses: the recorded one, changed as a switch asks (kind:
    --target, registry: --push-to; None: as recorded). A kind other than the recorded one is refused
    (exit 1) once the profile has a generation or an activation in flight."""
    recorded = read_target(prof)
    if kind is not None and kind not in KINDS:
        raise GenError("--target", f"must be one of {', '.join(KINDS)} (got {kind!r})")
    if registry is not None and not REGISTRY_RE.match(registry):
        raise GenError("--push-to", f"{registry!r} is not a registry (host[:port][/path], e.g. 10.0.0.1:5000)")
    chosen = Target(kind or recorded.kind, registry or (recorded.registry if (kind or recorded.kind) == "swarm" else None))
    if chosen.kind != recorded.kind and (prof.numbers() or prof.journal()):
        raise GenError(f"profile {prof.name}", f"targets the {_describe(recorded.kind)} (recorded in {path_of(prof)}); "
                       f"--target {chosen.kind} is refused: a profile keeps the target its generations were "
                       "activated on (use another profile, -p NAME)")
    if chosen.registry and chosen.kind != "swarm":
        raise GenError("--push-to", "pushes images for a Swarm target only (--target swarm)")
    return chosen


def record_target(prof: Profile, target: Target) -> None:
    """Write the target when it differs from the recorded one (the caller holds the profile's lock).
    The local engine is the default, so a profile that never chose another gets no file."""
    if read_target(prof) == target:
        return
    ensure_dir(prof.path)
    atomic_write(path_of(prof), (json.dumps(target.to_json(), sort_keys=True) + "\n").encode(), mode=0o644)


def _describe(kind: str) -> str:
    return "Docker Swarm" if kind == "swarm" else "local Docker engine"
