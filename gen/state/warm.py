"""Warm rollback: the containers of the generations just below the active one are kept, stopped.

After a commit, the containers the new generation replaced are stopped and kept (not removed) when
their generation is among the profile's WARM newest generations below the active one, so that
`gen rollback` starts them instead of creating them (as Kamal keeps its previous containers). The
setting is per profile (profiles/<name>/warm, one decimal number; absent = DEFAULT_WARM; 0 turns it
off). Which containers are warm is a pure function of the profile's generations and `current`, so the
activation that keeps them, `gen status` that expects them, recovery that converges on them and gc
that removes them with their generations all agree, after any crash, with nothing recorded elsewhere.

The warm generations of a target generation numbered N are the WARM highest-numbered generations
below N (N = None: a new generation, above all): exactly the ones `gen rollback` walks back to.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from gen.engine.base import Engine
from gen.errors import CorruptState, EngineError, GenError
from gen.model import formats
from gen.state.profile import Profile
from store import Store
from store.errors import StoreError
from store.fsutil import atomic_write, ensure_dir

SETTING_FILE = "warm"
DEFAULT_WARM = 1
MAX_WARM = 100          # each warm generation keeps a stopped container per replaced replica

Pairs = frozenset[tuple[str, str]]      # (service name, service object hash)


def setting(state_dir: Path, profile: str) -> int:
    """How many generations back the profile keeps warm. CorruptState for a file that is no number."""
    path = Profile(state_dir, profile).path / SETTING_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return DEFAULT_WARM
    except (OSError, UnicodeDecodeError) as e:
        raise CorruptState(path, f"cannot be read ({getattr(e, 'strerror', None) or e})") from None
    value = text.strip()
    if not value.isdigit() or int(value) > MAX_WARM:
        raise CorruptState(path, f"is not a warm setting (a number 0-{MAX_WARM} expected); "
                           "set it again with `gen warm -p PROFILE N`")
    return int(value)


def set_setting(state_dir: Path, profile: str, generations: int) -> None:
    if not 0 <= generations <= MAX_WARM:
        raise GenError("warm", f"must be a number of generations from 0 to {MAX_WARM}, not {generations}")
    prof = Profile(state_dir, profile)          # checks the name
    atomic_write(ensure_dir(prof.path) / SETTING_FILE, f"{generations}\n".encode(), mode=0o644)


def warm_numbers(numbers: list[int], below: int | None, generations: int) -> list[int]:
    """Of the profile's generation `numbers`, those whose replaced containers are kept while generation
    `below` is active."""
    if generations <= 0:
        return []
    return [n for n in sorted(numbers) if below is None or n < below][-generations:]


def _manifest(store: Store, prof: Profile, number: int) -> dict:
    return formats.manifest(store.get(prof.get(number).manifest), f"generation {number}")


def warm_manifests(store: Store, prof: Profile, below: int | None, generations: int | None = None) -> tuple[dict, ...]:
    """The manifests of the warm generations while generation `below` is active (generations: the
    setting to apply, default the profile's). A record or manifest that cannot be read is left out: its
    containers are then removed like any old one (a colder rollback), which never blocks an activation."""
    generations = setting(prof.path.parent.parent, prof.name) if generations is None else generations
    found = []
    for number in warm_numbers(prof.numbers() if generations else [], below, generations):
        try:
            found.append(_manifest(store, prof, number))
        except (StoreError, GenError, OSError):
            continue
    return tuple(found)


def pairs_of(manifests: tuple[dict, ...]) -> Pairs:
    """(service, hash) of every service of the manifests: whose old containers the planner keeps."""
    return frozenset(pair for m in manifests for pair in m["services"].items())


def remove_cold(connect: Callable[[], Engine], store: Store, prof: Profile, current: int | None, kept: list[int],
                dry_run: bool, warnings: list[str], generations: int | None = None) -> list[str]:
    """Remove the stopped containers of the profile that neither `current` nor its warm generations
    (among the `kept` ones; generations: the setting, default the profile's) use: gc's part, so warm
    containers go with their generations, and `gen warm`'s when it is lowered. Running ones are never
    touched (that is drift, for `gen recover`). Returns their names. A manifest that cannot be read
    stops this for the profile (a warning): nothing is removed on a guess."""
    try:
        if generations is None:
            generations = setting(prof.path.parent.parent, prof.name)
        numbers = ([current] if current is not None else []) + warm_numbers(kept, current, generations)
        keep = pairs_of(tuple(_manifest(store, prof, n) for n in numbers))
    except (StoreError, GenError, OSError) as e:
        warnings.append(f"profile {prof.name}: kept containers were not checked: {e}")
        return []
    try:
        engine = connect()
        cold = [c for c in engine.observe(prof.name)
                if c.state in ("exited", "created", "dead") and (c.service, c.hash) not in keep]
        for c in cold if not dry_run else []:
            engine.remove(c.id)
    except EngineError as e:
        warnings.append(f"profile {prof.name}: kept containers were not checked: {e}")
        return []
    return sorted(c.name for c in cold)

