"""Image pins: the tags that keep the images of recorded generations from `docker image prune`.

Every image of a kept generation carries the gen-owned tag `gen-pin/<profile>:<64 hex of the image
ID>` (one tag per profile and image; tagging again is a no-op). A switch pins its images at commit
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
from gen.state.profile import list_profiles
from gen.state.retention import GcReport
from store import digest

PIN_REPO_PREFIX = "gen-pin/"
_REPO_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")   # Docker's path-component rule
_ESCAPED = "x--"
_IMAGE_ID = re.compile(r"sha256:([0-9a-f]{64})")


# -- naming ---------------------------------------------------------------------------------------
def pin_repo(profile: str) -> str:
    """gen-pin/<profile>; a profile name Docker would reject as a repository component ("a-",
    "a..b") is replaced by x--<hash of the name> (names starting with x-- are hashed too)."""
    if _REPO_COMPONENT.fullmatch(profile) and not profile.startswith(_ESCAPED):
        return PIN_REPO_PREFIX + profile
    return PIN_REPO_PREFIX + _ESCAPED + digest(profile.encode())[:16]


def pin_tag(image_id: str) -> str | None:
    """The tag of an image's pin: the image ID's 64 hex digits (None for an ID of another form)."""
    m = _IMAGE_ID.fullmatch(image_id)
    return m.group(1) if m else None


def is_gen_pin(ref: str, image_id: str) -> bool:
    """Did gen make this tag? repo under gen-pin/, tag = the hex of the very image it names."""
    repo, _, tag = ref.rpartition(":")
    return repo.startswith(PIN_REPO_PREFIX) and "/" not in repo[len(PIN_REPO_PREFIX):] and tag == pin_tag(image_id)


# -- pinning at switch time -----------------------------------------------------------------------
def pin_images(engine: Engine, profile: str, compiled: Compiled) -> list[str]:
    """Pin every image of a generation (called at commit time, under the profile's lock)."""
    refs = []
    for image_id in sorted({obj["image_id"] for _, obj in compiled.services.values()}):
        tag = pin_tag(image_id)
        if tag:
            engine.pin_image(image_id, pin_repo(profile), tag)
            refs.append(f"{pin_repo(profile)}:{tag}")
    return refs


# -- the gc step ----------------------------------------------------------------------------------
def sync_pins(connect: Callable[[], Engine], state_dir: Path, targets: list[str], images: dict[str, dict],
              all_profiles: bool, report: GcReport) -> None:
    """Pin the images of kept generations of the target profiles; release their pins nothing uses.
    With --all-profiles, also release gen's pins of profiles that no longer exist.
    `images` is, per profile, image ID -> the kept generations using it (see gen.state.gc)."""
    wanted = _wanted(targets, images, report)
    if not wanted and not all_profiles:
        return
    try:
        engine = connect()
        existing = engine.pinned_images(PIN_REPO_PREFIX)
    except EngineError as e:
        report.warnings.append(f"image pins were not checked: {e}")
        return
    _add(engine, wanted, existing, targets, report)
    _release(engine, wanted, existing, all_profiles, state_dir, report)


def _wanted(targets: list[str], images: dict[str, dict],
            report: GcReport) -> dict[str, dict[str, tuple[str, list[int]]]]:
    """repo -> tag -> (image id, generations) for every image the target profiles keep."""
    wanted: dict[str, dict[str, tuple[str, list[int]]]] = {}
    for name in targets:
        repo = wanted.setdefault(pin_repo(name), {})
        for image_id, gens in sorted(images.get(name, {}).items()):
            tag = pin_tag(image_id)
            if tag:
                repo[tag] = (image_id, gens)
            else:
                report.warnings.append(f"profile {name}: image {image_id} has no sha256 ID and cannot be pinned")
    return wanted


def _add(engine, wanted: dict, existing: list[tuple[str, str]], targets: list[str], report: GcReport) -> None:
    for repo, tags in sorted(wanted.items()):
        for tag, (image_id, gens) in sorted(tags.items()):
            ref = f"{repo}:{tag}"
            if (ref, image_id) in existing:
                continue
            if not report.dry_run:
                try:
                    engine.pin_image(image_id, repo, tag)
                except EngineError as e:
                    profile = _profile_of(repo, targets)
                    report.warnings.append(f"profile {profile}: generation(s) {', '.join(map(str, gens))} use "
                                           f"image {image_id[7:19]}, which could not be pinned ({e.reason}); "
                                           "rolling back to them fails until the image is back")
                    continue
            report.pins_added.append(ref)


def _release(engine, wanted: dict, existing: list[tuple[str, str]], all_profiles: bool, state_dir,
             report: GcReport) -> None:
    for ref, image_id in existing:
        if _stays(ref, wanted, all_profiles, state_dir):
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


def _stays(ref: str, wanted: dict, all_profiles: bool, state_dir) -> bool:
    """A pin of a target profile stays while a kept generation uses its image; a pin of another
    profile stays, unless --all-profiles and that profile no longer exists."""
    repo, _, tag = ref.rpartition(":")
    if repo in wanted:
        return tag in wanted[repo]
    # listed afresh (not the targets): a profile created meanwhile keeps its pins
    return not all_profiles or repo in {pin_repo(n) for n in list_profiles(state_dir)}


def _profile_of(repo: str, names: list[str]) -> str:
    return next((n for n in names if pin_repo(n) == repo), repo[len(PIN_REPO_PREFIX):])
