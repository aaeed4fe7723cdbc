"""Image pins: the tags that keep the images of recorded generations from `docker image prune`.

Every image of a kept generation carries the gen-owned tag `gen-pin/<state id>/<profile>:<64 hex of
the image ID>` (one tag per state directory, profile and image; tagging again is a no-op). The state
directory's identity (gen.state.identity) is in the name so that two state directories on one engine
never touch each other's pins; pins of the older form `gen-pin/<profile>:…` (whose state directory
cannot be told) are never released by gc. A switch pins its images at commit
time (`pin_images`, from gen.deploy.transaction); gc pins again for all kept generations (records made before
pinning existed, tags removed by hand) and releases pins no kept generation of that profile uses
(`sync_pins`, from gen.state.gc). gc only ever removes tags of exactly that form, whose hex is the ID of
the image they name: tags gen made (`is_gen_pin`). It never removes an image; but Docker has no
untag-only call, so when gen's pin was an unused image's last tag, the engine drops the image with
it (what the next `docker image prune` would do), and the report says so. Pins protect against
`docker image prune` (dangling images only), not against `docker image prune -a`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from gen.engine.base import Engine
from gen.errors import EngineError
from gen.model.compile import Compiled
from gen.state.identity import state_id
from gen.state.profile import list_profiles
from gen.state.retention import GcReport
from store import digest

PIN_REPO_PREFIX = "gen-pin/"
_REPO_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")   # Docker's path-component rule
_ESCAPED = "x--"
_IMAGE_ID = re.compile(r"sha256:([0-9a-f]{64})")
_PIN_REPO = re.compile(r"gen-pin/[0-9a-f]{16}/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")


# -- naming ---------------------------------------------------------------------------------------
def pin_repo(profile: str, owner: str) -> str:
    """gen-pin/<owner>/<profile>, owner being the state directory's identity (gen.state.identity), so
    that a gc sees and releases only the pins of its own state directory. A profile name Docker would
    reject as a repository component ("a-", "a..b") is replaced by x--<hash of the name> (names
    starting with x-- are hashed too)."""
    if _REPO_COMPONENT.fullmatch(profile) and not profile.startswith(_ESCAPED):
        return f"{owner_prefix(owner)}{profile}"
    return f"{owner_prefix(owner)}{_ESCAPED}{digest(profile.encode())[:16]}"


def owner_prefix(owner: str) -> str:
    """What every pin of one state directory starts with."""
    return f"{PIN_REPO_PREFIX}{owner}/"


def pin_tag(image_id: str) -> str | None:
    """The tag of an image's pin: the image ID's 64 hex digits (None for an ID of another form)."""
    m = _IMAGE_ID.fullmatch(image_id)
    return m.group(1) if m else None


def is_gen_pin(ref: str, image_id: str) -> bool:
    """Did gen make this tag? gen-pin/<16 hex>/<component>, tag = the hex of the very image it names."""
    repo, _, tag = ref.rpartition(":")
    return bool(_PIN_REPO.fullmatch(repo)) and tag == pin_tag(image_id)


# -- pinning at switch time -----------------------------------------------------------------------
def pin_images(engine: Engine, state_dir: Path, profile: str, compiled: Compiled) -> list[str]:
    """Pin every image of a generation (called at commit time, under the profile's lock)."""
    refs = []
    repo = pin_repo(profile, state_id(state_dir))
    for image_id in sorted({obj["image_id"] for _, obj in compiled.services.values()}):
        tag = pin_tag(image_id)
        if tag:
            engine.pin_image(image_id, repo, tag)
            refs.append(f"{repo}:{tag}")
    return refs


# -- the gc step ----------------------------------------------------------------------------------
def sync_pins(connect: Callable[[], Engine], state_dir: Path, targets: list[str], images: dict[str, dict],
              all_profiles: bool, report: GcReport) -> None:
    """Pin the images of kept generations of the target profiles; release their pins nothing uses.
    With --all-profiles, also release gen's pins of profiles that no longer exist.
    `images` is, per profile, image ID -> the kept generations using it (see gen.state.gc)."""
    owner = state_id(state_dir)
    wanted = _wanted(owner, targets, images, report)
    if not wanted and not all_profiles:
        return
    try:
        engine = connect()
        existing = engine.pinned_images(owner_prefix(owner))     # this state directory's pins, no other's
    except EngineError as e:
        report.warnings.append(f"image pins were not checked: {e}")
        return
    _add(engine, wanted, existing, owner, targets, report)
    _release(engine, wanted, existing, all_profiles, owner, state_dir, report)


def _wanted(owner: str, targets: list[str], images: dict[str, dict],
            report: GcReport) -> dict[str, dict[str, tuple[str, list[int]]]]:
    """repo -> tag -> (image id, generations) for every image the target profiles keep."""
    wanted: dict[str, dict[str, tuple[str, list[int]]]] = {}
    for name in targets:
        repo = wanted.setdefault(pin_repo(name, owner), {})
        for image_id, gens in sorted(images.get(name, {}).items()):
            tag = pin_tag(image_id)
            if tag:
                repo[tag] = (image_id, gens)
            else:
                report.warnings.append(f"profile {name}: image {image_id} has no sha256 ID and cannot be pinned")
    return wanted


def _add(engine, wanted: dict, existing: list[tuple[str, str]], owner: str, targets: list[str],
         report: GcReport) -> None:
    for repo, tags in sorted(wanted.items()):
        for tag, (image_id, gens) in sorted(tags.items()):
            ref = f"{repo}:{tag}"
            if (ref, image_id) in existing:
                continue
            if not report.dry_run:
                try:
                    engine.pin_image(image_id, repo, tag)
                except EngineError as e:
                    profile = _profile_of(repo, owner, targets)
                    report.warnings.append(f"profile {profile}: generation(s) {', '.join(map(str, gens))} use "
                                           f"image {image_id[7:19]}, which could not be pinned ({e.reason}); "
                                           "rolling back to them fails until the image is back")
                    continue
            report.pins_added.append(ref)


def _release(engine, wanted: dict, existing: list[tuple[str, str]], all_profiles: bool, owner: str, state_dir,
             report: GcReport) -> None:
    for ref, image_id in existing:
        if _stays(ref, wanted, all_profiles, owner, state_dir):
            continue
        if not is_gen_pin(ref, image_id):
            continue                    # not a tag gen made: never removed
        if not report.dry_run:
            try:
                if engine.unpin_image(ref):
                    report.images_dropped.append(image_id)
            except EngineError as e:
                report.warnings.append(f"pin {ref} was not released: {e.reason}")
                continue
        report.pins_released.append(ref)


def _stays(ref: str, wanted: dict, all_profiles: bool, owner: str, state_dir) -> bool:
    """A pin of a target profile stays while a kept generation uses its image; a pin of another
    profile stays, unless --all-profiles and that profile no longer exists."""
    repo, _, tag = ref.rpartition(":")
    if repo in wanted:
        return tag in wanted[repo]
    # listed afresh (not the targets): a profile created meanwhile keeps its pins
    return not all_profiles or repo in {pin_repo(n, owner) for n in list_profiles(state_dir)}


def _profile_of(repo: str, owner: str, names: list[str]) -> str:
    return next((n for n in names if pin_repo(n, owner) == repo), repo[len(owner_prefix(owner)):])
