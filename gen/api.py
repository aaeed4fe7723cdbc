"""gen as a library: build, switch, rollback, recover, list. The CLI is a thin layer over this.

    from gen.api import Gen
    g = Gen()                          # state in $GEN_STATE_DIR or $XDG_STATE_HOME/gen
    g.switch("examples/shop/gen.toml")

Every mutating verb takes the profile lock, recovers an interrupted activation first, then runs one
Activation. The engine is connected lazily so that read-only verbs (list) never import docker.
"""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gen.deploy.activation import Activation, Options, Progress, _no_progress, checkpoint
from gen.model.compile import Compiled, compile_spec, keyed_secret_digest, load, profile_for, write
from gen.errors import ActivationFailed, GenError, LockBusy, ProfileError, SpecError
from store.errors import StoreError
from gen.model.plan import Plan, plan
from gen.state.profile import Generation, Profile, default_state_dir, find_profile, history, list_profiles
from gen.spec.document import Spec, load_spec
from store import Store, atomic_write
from store.fsutil import ensure_dir
from store.errors import LockTimeout

_HEX = re.compile(r"[0-9a-f]{4,64}")
_FULL_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Result:
    profile: str
    generation: int | None
    manifest: str
    plan: Plan | None
    changed: bool                  # did anything on the engine or the pointer change
    message: str
    duration_s: float = 0.0


class Gen:
    def __init__(self, state_dir: str | os.PathLike | None = None, engine=None,
                 options: Options = Options(), progress: Progress = _no_progress, lock_timeout: float = 30.0,
                 on_plan=None):
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.store = Store(self.state_dir / "store")
        self.options = options
        self.progress = progress
        self.lock_timeout = lock_timeout
        self.on_plan = on_plan or (lambda plan: None)     # told the plan just before it is executed
        self._engine = engine
        self._sources: dict[str, dict] = {}    # manifest hash -> source object of the spec last built into it

    @property
    def engine(self):
        if self._engine is None:
            from gen.engine.docker import Engine      # docker is imported only by verbs that need the engine
            self._engine = Engine.from_env()
        return self._engine

    # -- build -----------------------------------------------------------------------------------
    def compile(self, spec_path: str | os.PathLike, profile: str | None = None) -> Compiled:
        """Parse, validate and compile a spec; resolve images on the engine. Writes nothing."""
        spec = load_spec(spec_path)
        name = profile_for(spec, profile)
        Profile(self.state_dir, name)          # validates the profile name before any engine call
        digest = keyed_secret_digest(self._secret_key()) if spec.secrets else (lambda path, key: "")
        return compile_spec(spec, name, self._image_resolver(), digest)

    def _image_resolver(self):
        """engine.image_id, asked once per distinct reference (a 1,000-service spec often has one image)."""
        resolved: dict[str, str] = {}

        def resolve(ref: str, key_path: str) -> str:
            if ref not in resolved:
                resolved[ref] = self.engine.image_id(ref, key_path)
            return resolved[ref]
        return resolve

    def _secret_key(self) -> bytes:
        """This state directory's random key for secret digests (created once, mode 0600)."""
        path = self.state_dir / "secret.key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            ensure_dir(self.state_dir)
            atomic_write(path, os.urandom(32), mode=0o600)
            return path.read_bytes()

    def build(self, spec_path: str | os.PathLike, profile: str | None = None) -> Compiled:
        compiled = self.compile(spec_path, profile)
        write(self.store, compiled)
        path = os.path.abspath(spec_path)
        self._sources[compiled.manifest_hash] = {"kind": "source", "path": path,
                                                 "text": Path(path).read_bytes().decode("utf-8-sig", "replace")}
        return compiled

    def source_of(self, manifest_hash: str, store: bool = False) -> str | None:
        """The hash of the source object ({"kind": "source", "path", "text"}) of the spec this Gen last
        built into manifest_hash (None if it built none); with store=True it is also written. It is
        kept apart from the manifest, so comments and key order never change a generation's identity,
        and written only when a generation records it, so `gen build` leaves no unreferenced object."""
        from store import hash_value
        source = self._sources.get(manifest_hash)
        if source is None:
            return None
        return self.store.put(source) if store else hash_value(source)

    def resolve(self, target: str, profile: str | None = None, write: bool = True) -> Compiled:
        """A spec file is built (only compiled with write=False); a (prefix of a) manifest hash is read
        from the store."""
        if os.path.exists(target) or target.endswith((".toml", ".yaml", ".yml")):
            return self.build(target, profile) if write else self.compile(target, profile)
        if not _HEX.fullmatch(target):
            raise SpecError(target, "is neither a spec file nor a manifest hash")
        compiled = load(self.store, self.store.resolve_prefix(target))
        if profile and profile != compiled.manifest["profile"]:
            raise SpecError(target, f"manifest belongs to profile {compiled.manifest['profile']!r}, not {profile!r} "
                            "(build the spec with -p to deploy it under another profile)")
        return compiled

    # -- switch, rollback, recover ---------------------------------------------------------------
    def switch(self, target: str, profile: str | None = None, dry_run: bool = False) -> Result:
        compiled = self.resolve(target, profile, write=not dry_run)
        prof = Profile(self.state_dir, compiled.manifest["profile"])
        if dry_run:
            return self._dry_run(prof, compiled)
        with self._locked(prof):
            self._recover_if_interrupted(prof)
            return self._activate(prof, compiled, "switch", self._commit_switch(prof, compiled))

    def rollback(self, profile: str | None = None, to: int | None = None, dry_run: bool = False) -> Result:
        prof = self.profile(profile)
        gen = self._rollback_target(prof, to)
        compiled = load(self.store, gen.manifest)
        if dry_run:
            return self._dry_run(prof, compiled)
        with self._locked(prof):
            self._recover_if_interrupted(prof)
            gen = self._rollback_target(prof, to)     # again: the history may have moved while we waited
            return self._activate(prof, load(self.store, gen.manifest), "rollback",
                                  lambda: (prof.set_current(gen.number), gen.number)[1])

    def recover(self, profile: str | None = None) -> Result:
        """Converge the engine on `current` (or on nothing, before the first generation)."""
        prof = self.profile(profile)
        with self._locked(prof):
            journal = prof.journal()
            result = self._converge(prof)
            prof.end()
            if journal:
                return Result(**{**result.__dict__, "message": f"recovered an interrupted {journal['kind']} "
                                 f"(pid {journal['pid']}); {result.message}"})
            return result

    # -- read-only -------------------------------------------------------------------------------
    def profile(self, name: str | None) -> Profile:
        return find_profile(self.state_dir, name)

    def status(self, profile: str | None = None):
        """The engine against `current`: per service ok or what is wrong; extras; an interrupted activation."""
        from gen.deploy.status import status
        prof = self.profile(profile)
        current = prof.current()
        compiled = load(self.store, current.manifest) if current else _empty(prof.name)
        observed = self.engine.observe(prof.name)
        p = plan(prof.name, compiled.services, observed, self._known(observed))
        return status(prof.name, current.number if current else None, compiled, p, observed, prof.journal())

    def generations(self, profile: str | None = None) -> tuple[Profile, list[Generation], int | None]:
        return history(self.state_dir, profile)

    def gc(self, profile: str | None = None, *, all_profiles: bool = False, keep: int | None = None,
           older_than: str | None = None, dry_run: bool = False):
        """Delete old generations (never the current one), unreachable store objects and stale image
        pins; returns a gen.gc.GcReport. Rules and concurrency: see gen.gc."""
        from gen.state.gc import collect
        if not dry_run:
            # Like every mutating verb: an interrupted activation is repaired first, and said so.
            names = list_profiles(self.state_dir)
            chosen = [profile] if profile else names if all_profiles or len(names) == 1 else []
            for prof in (Profile(self.state_dir, name) for name in chosen):
                if prof.journal():
                    with self._locked(prof):
                        self._recover_if_interrupted(prof)
        return collect(self, profile, all_profiles=all_profiles, keep=keep, older_than=older_than, dry_run=dry_run)

    # -- internals -------------------------------------------------------------------------------
    @contextmanager
    def _locked(self, prof: Profile):
        lock = prof.lock()
        started = time.monotonic()
        try:
            lock.acquire(self.lock_timeout)
        except LockTimeout as e:
            raise LockBusy(prof.name, e.holder_pid, round(time.monotonic() - started, 1)) from None
        try:
            yield
        finally:
            lock.release()

    def _plan(self, prof: Profile, compiled: Compiled) -> Plan:
        observed = self.engine.observe(prof.name)
        return plan(prof.name, compiled.services, observed, self._known(observed))

    def _known(self, observed) -> dict[str, dict]:
        """Service objects of the observed containers, where the store has them (to explain changes)."""
        hashes = {c.hash for c in observed if _FULL_HASH.fullmatch(c.hash)}   # labels may be anything
        return {h: self.store.get(h) for h in hashes if self.store.has(h)}

    def _dry_run(self, prof: Profile, compiled: Compiled) -> Result:
        p = self._plan(prof, compiled)
        current = prof.current()
        return Result(prof.name, current.number if current else None, compiled.manifest_hash, p, False,
                      "dry run: nothing was changed")

    def _activate(self, prof: Profile, compiled: Compiled, kind: str, commit) -> Result:
        started = time.monotonic()
        current = prof.current()
        p = self._plan(prof, compiled)
        if p.is_noop and current and current.manifest == compiled.manifest_hash:
            return Result(prof.name, current.number, compiled.manifest_hash, p, False,
                          f"generation {current.number} is already current; nothing to do")
        self.on_plan(p)
        prof.begin(kind, current.number if current else None, compiled.manifest_hash, None)
        checkpoint("journal written")
        record = {"kind": kind, "from": current.number if current else None, "started": time.time()}
        number_box: list[int] = []
        try:
            Activation(self.engine, compiled, p, self.options, self.progress).run(
                lambda: number_box.append(commit()))
        except (GenError, StoreError) as e:
            if isinstance(e, ActivationFailed) and e.restored:
                prof.end()     # the previous state is back; otherwise the journal stays for recovery
            prof.log_activation({**record, "to": compiled.manifest_hash[:12], "outcome": f"failed: {e}",
                                 "duration_s": round(time.monotonic() - started, 3)})
            raise
        prof.end()
        checkpoint("journal removed")
        number = number_box[0]
        duration = time.monotonic() - started
        prof.log_activation({**record, "to": number, "outcome": "ok", "duration_s": round(duration, 3)})
        message = f"generation {number} is now current" if number else "no generation is current; no containers run"
        return Result(prof.name, number, compiled.manifest_hash, p, True, message, duration)

    def _commit_switch(self, prof: Profile, compiled: Compiled):
        def commit() -> int:
            from gen.state.pins import pin_images
            write(self.store, compiled)    # gc may have collected this build while we waited for the lock
            pin_images(self.engine, prof.name, compiled)   # a recorded generation's images survive `image prune`
            newest = prof.newest()
            # Nix's rule: a new generation only when the manifest differs from the newest one.
            gen = newest if newest and newest.manifest == compiled.manifest_hash else prof.append(
                compiled.manifest_hash, len(compiled.services),
                source=self.source_of(compiled.manifest_hash, store=True))
            checkpoint("generation recorded")
            prof.set_current(gen.number)
            return gen.number
        return commit

    def _rollback_target(self, prof: Profile, to: int | None) -> Generation:
        current = prof.current_number()
        if to is not None:
            return prof.get(to)
        older = [n for n in prof.numbers() if current is None or n < current]
        if not older:
            raise ProfileError(f"profile {prof.name}",
                               f"no generation older than {current} to roll back to" if current else "has no generations")
        return prof.get(older[-1])

    def _converge(self, prof: Profile) -> Result:
        current = prof.current()
        compiled = load(self.store, current.manifest) if current else _empty(prof.name)
        return self._activate(prof, compiled, "recover", lambda: current.number if current else None)

    def _recover_if_interrupted(self, prof: Profile) -> None:
        journal = prof.journal()
        if journal:
            self.progress("", "recovering", f"an interrupted {journal['kind']} (pid {journal['pid']}) was found; "
                          "converging on the current generation first")
            self._converge(prof)
            prof.end()
            self.progress("", "recovered", "the engine matches the current generation again")


def _empty(profile: str) -> Compiled:
    return compile_spec(Spec(name=profile, services={}, volumes={}, source="<empty>"), profile, lambda *_: "")

