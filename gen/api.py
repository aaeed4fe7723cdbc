"""gen as a library: the one front door. The CLI is a thin layer over this.

    from gen.api import Gen
    g = Gen()                          # state in $GEN_STATE_DIR or $XDG_STATE_HOME/gen
    g.switch("examples/shop/gen.toml")

Gen wires the packages together along the data flow: a spec file is read (gen.spec) and compiled
(gen.model) into the store (gen.state); mutating verbs take the profile's lock, recover an
interrupted activation first (gen.deploy.recovery) and run one transaction (gen.deploy). The engine
is connected lazily, so verbs that do not need it (build of a hash, list, show, log, verify) never
import docker.
"""
from __future__ import annotations

import os
from pathlib import Path

from typing import TYPE_CHECKING

from gen.deploy.options import Options, Progress, Result, no_progress
from gen.errors import ActivationFailed, GenError, ProfileError, SpecError
from gen.state.profile import Generation, Profile, default_state_dir, find_profile, list_profiles
from store import Store
from store.errors import StoreError

if TYPE_CHECKING:
    from gen.deploy.transaction import Deployer
    from gen.engine.base import Engine
    from gen.model.compile import Compiled
    from gen.model.diff import Change, Diff    # noqa: F401  (re-exported for the CLI's views)

# Only what every verb needs is imported here; compile, the store's manifests, diff and the
# transaction are imported by the verbs that use them, so that `gen list` starts fast.

__all__ = ["ActivationFailed", "Change", "Diff", "Gen", "GenError", "Options", "Result", "StoreError"]


class Gen:
    def __init__(self, state_dir: str | os.PathLike | None = None, engine: "Engine | None" = None,
                 options: Options = Options(), progress: Progress = no_progress, lock_timeout: float = 30.0,
                 on_plan=None, pull: str | None = None, rebuild: bool = False,
                 compose_profiles: "list[str] | tuple[str, ...]" = (), target: str | None = None, push_to: str | None = None):
        """pull ("always" | "missing" | "never") overrides every service's pull_policy in the builds of
        this Gen; rebuild builds every `build` service again (gen.state.images); compose_profiles
        enables the services of those `profiles` (none given: a Compose file reads COMPOSE_PROFILES)."""
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.store = Store(self.state_dir / "store")
        self.options = options
        self.progress = progress
        self.pull = pull
        self.rebuild = rebuild
        self.compose_profiles = tuple(compose_profiles)
        self.lock_timeout = lock_timeout
        self.target, self.push_to = target, push_to     # a switch's --target, --push-to (gen.state.target)
        self.on_plan = on_plan or (lambda plan: None)     # told the plan just before it is executed
        self._engine = engine
        self._sources: dict[str, dict] = {}    # manifest hash -> source object of the spec last built into it

    @property
    def engine(self) -> "Engine":
        if self._engine is None:
            from gen.engine import connect      # docker is imported only by verbs that need the engine
            self._engine = connect()
        return self._engine

    def _load(self, manifest_hash: str) -> "Compiled":
        from gen.state.manifests import load_compiled
        return load_compiled(self.store, manifest_hash)

    def _deployer(self, prof: Profile | None = None) -> "Deployer":
        from gen.deploy.targets import deployer_for    # by the profile's target: the local engine, or a Swarm
        return deployer_for(self.store, lambda: self.engine, self.options, self.progress, self.on_plan, prof, self.target, self.push_to)

    # -- build -----------------------------------------------------------------------------------
    def compile(self, spec_path: str | os.PathLike, profile: str | None = None) -> "Compiled":
        """Parse, validate and compile a spec; look up, pull or build its images (gen.state.images).
        Writes nothing to the store."""
        return self._compile(spec_path, profile)[0]

    def _compile(self, spec_path: str | os.PathLike, profile: str | None):
        """(compiled, the image resolver that resolved its images: it pins what it built)."""
        from gen.model.compile import compile_spec, profile_for
        from gen.spec import load_spec
        from gen.state.images import ImagePolicy, ImageResolver
        from gen.state.secrets import file_pinner
        spec = load_spec(spec_path, profiles=self.compose_profiles)
        name = profile_for(spec, profile)
        Profile(self.state_dir, name)          # validates the profile name before any engine call
        # One resolver per compile: each distinct image request is resolved once (a 1,000-service
        # spec often has one image).
        images = ImageResolver(lambda: self.engine, name, self.state_dir, ImagePolicy(self.pull, self.rebuild),
                               self.progress)
        # Secrets are sealed and config files pinned into objects written with the generation.
        return compile_spec(spec, name, images, file_pinner(self.state_dir, self.store), str(self.state_dir)), images

    def build(self, spec_path: str | os.PathLike, profile: str | None = None) -> "Compiled":
        """Compile into the store; the build becomes its profile's build root (gen.state.roots), so gc
        keeps it until the next build of that profile, however long before its switch."""
        from gen.state.manifests import store_compiled
        from gen.state.roots import build_source, record_build, writing
        compiled, images = self._compile(spec_path, profile)
        images.pin_built()             # built images stay out of `docker image prune` (gen.state.pins)
        with writing(self.store, self.lock_timeout):      # gc waits until the objects are rooted
            store_compiled(self.store, compiled)
            record_build(self.state_dir, compiled.manifest["profile"], compiled.manifest_hash)
        self._sources[compiled.manifest_hash] = build_source(spec_path)
        return compiled

    def source_of(self, manifest_hash: str, store: bool = False) -> str | None:
        """The hash of the source object ({"kind": "source", "path", "text"}) of the spec this Gen last
        built into manifest_hash (None if it built none); with store=True it is also written. It is
        kept apart from the manifest, so comments and key order never change a generation's identity,
        and written only when a generation records it, so `gen build` leaves no unreferenced object."""
        from store import hash_value
        source = self._sources.get(manifest_hash)
        if source is None:      # an imported generation brings its source (gen.state.importing)
            from gen.state.roots import imported_source
            return imported_source(self.state_dir, manifest_hash)
        return self.store.put(source) if store else hash_value(source)

    def resolve(self, target: str, profile: str | None = None, write: bool = True) -> "Compiled":
        """A spec file is built (only compiled with write=False); a (prefix of a) manifest hash is read
        from the store."""
        from gen.state import history
        if history.is_spec_ref(target):
            return self.build(target, profile) if write else self.compile(target, profile)
        if not history.HASH_PREFIX_RE.fullmatch(target):
            raise SpecError(target, "is neither a spec file nor a manifest hash")
        compiled = self._load(self.store.resolve_prefix(target))
        if profile and profile != compiled.manifest["profile"]:
            raise SpecError(target, f"manifest belongs to profile {compiled.manifest['profile']!r}, not {profile!r} "
                            "(build the spec with -p to deploy it under another profile)")
        return compiled

    # -- switch, rollback, recover ---------------------------------------------------------------
    def switch(self, target: str, profile: str | None = None, dry_run: bool = False) -> Result:
        compiled = self.resolve(target, profile, write=not dry_run)
        prof = Profile(self.state_dir, compiled.manifest["profile"])
        d = self._deployer(prof)
        if dry_run:
            return d.dry_run(prof, compiled)
        from gen.deploy.recovery import recover_if_interrupted
        with prof.locked(self.lock_timeout):
            d.target.record(prof)           # chosen by the first switch (gen.state.target)
            recover_if_interrupted(d, prof)
            commit = d.commit_switch(prof, compiled, lambda: self.source_of(compiled.manifest_hash, store=True))
            return d.activate(prof, compiled, "switch", commit)

    def rollback(self, profile: str | None = None, to: int | None = None, dry_run: bool = False) -> Result:
        prof = self.profile(profile)
        gen = prof.rollback_target(to)
        compiled = self._load(gen.manifest)
        d = self._deployer(prof)
        if dry_run:
            return d.dry_run(prof, compiled, gen.number)
        from gen.deploy.recovery import recover_if_interrupted
        with prof.locked(self.lock_timeout):
            recover_if_interrupted(d, prof)
            gen = prof.rollback_target(to)     # again: the history may have moved while we waited
            return d.activate(prof, self._load(gen.manifest), "rollback", d.commit_rollback(prof, gen.number),
                              number=gen.number)

    def recover(self, profile: str | None = None) -> Result:
        """Converge the engine on `current` (or on nothing, before the first generation)."""
        from gen.deploy.recovery import recover
        prof = self.profile(profile)
        with prof.locked(self.lock_timeout):
            return recover(self._deployer(prof), prof)

    def gc(self, profile: str | None = None, *, all_profiles: bool = False, keep: int | None = None,
           older_than: str | None = None, dry_run: bool = False):
        """Delete old generations (never the current one), unreachable store objects and stale image
        pins; returns a gen.state.retention.GcReport. Rules and concurrency: see gen.state.gc."""
        from gen.deploy.recovery import recover_if_interrupted
        from gen.state.gc import collect
        if not dry_run:
            # Like every mutating verb: an interrupted activation is repaired first, and said so.
            names = list_profiles(self.state_dir)
            chosen = [profile] if profile else names if all_profiles or len(names) == 1 else []
            for prof in (Profile(self.state_dir, name) for name in chosen):
                if prof.journal():
                    with prof.locked(self.lock_timeout):
                        recover_if_interrupted(self._deployer(prof), prof)
        return collect(self.state_dir, self.store, lambda: self.engine, profile, all_profiles=all_profiles,
                       keep=keep, older_than=older_than, dry_run=dry_run, lock_timeout=self.lock_timeout)

    # -- read-only -------------------------------------------------------------------------------
    def profile(self, name: str | None) -> Profile:
        return find_profile(self.state_dir, name)

    def status(self, profile: str | None = None):
        """The engine against `current`: per service ok or what is wrong; extras; an interrupted activation."""
        from gen.deploy.status import in_progress, status
        from gen.errors import LockBusy
        from gen.model.compile import compile_empty
        prof = self.profile(profile)
        try:
            lock = prof.acquire(0)       # a consistent snapshot: no activation may move things meanwhile
        except LockBusy as busy:
            current = prof.current()
            return in_progress(prof.name, current.number if current else None,
                               current.manifest if current else None, busy.holder_pid, prof.journal())
        try:
            current = prof.current()
            compiled = self._load(current.manifest) if current else compile_empty(prof.name)
            if (d := self._deployer(prof)).target.kind == "swarm":
                return d.status(prof, current, compiled)       # services and their tasks (gen.deploy.swarm)
            observed = self.engine.observe(prof.name)
            return status(prof.name, current.number if current else None, compiled,
                          d.plan(prof, compiled, observed, current.number if current else 0), observed, prof.journal())
        finally:
            lock.release()

    def generations(self, profile: str | None = None) -> tuple[Profile, list[Generation], int | None]:
        """A profile's generations and its current number (what `gen list` shows), consistent with each
        other while switches run: `current` is read first, and the record it names was written before
        `current` flipped to it, so the list read after it always holds it."""
        prof = self.profile(profile)
        if not prof.exists():
            raise ProfileError(f"profile {prof.name}", "has no generations")
        current = prof.current_number()
        return prof, prof.generations(), current

    def diff(self, profile: str | None, a: str | None, b: str | None = None) -> "Diff":
        """diff(A, B); with only A given: current against A. A and B: generation numbers, `current`,
        manifest hash prefixes or spec files (compiled in memory, never stored; the first names the profile)."""
        from gen.state import history
        from gen.model.diff import diff
        if a is None and b is None:
            raise GenError("diff", "which deployment? give a target: a generation number, a manifest hash "
                                   "or a spec file (e.g. `gen diff 3`, `gen diff gen.toml`, `gen diff 2 3`)")
        refs = ["current", a] if b is None else [a, b]
        compiled: dict[int, "Compiled"] = {}
        for i, ref in enumerate(refs):          # spec files first: the first one names the profile
            if history.is_spec_ref(ref):
                compiled[i] = self.compile(ref, profile)
                profile = profile or compiled[i].manifest["profile"]
        prof = self.profile(profile)
        sides = [history.spec_side(compiled[i], ref) if i in compiled else history.resolve_ref(self.store, prof, ref)
                 for i, ref in enumerate(refs)]
        return diff(sides[0][0], sides[1][0], sides[0][1], sides[1][1])

    def show(self, profile: str | None = None, number: int | None = None) -> dict:
        """One generation (default: current): record, services, volumes, the spec it was built from."""
        from gen.state import history
        return history.show(self.store, self.profile(profile), number)

    def log(self, profile: str | None = None) -> tuple[str, list[dict]]:
        """(profile, every switch, rollback and recovery of it, oldest first)."""
        from gen.state import history
        prof = self.profile(profile)
        if not prof.path.is_dir():
            raise ProfileError(f"profile {prof.name}", "does not exist")
        return prof.name, history.log(prof)

    def verify(self, repair: bool = False, specs: "list[str | os.PathLike]" = ()):
        """Rehash the store and its image archives; every generation's objects present, and every kept
        generation's images on the engine or restorable (a gen.state.verify.VerifyResult). With
        repair: re-put the broken objects that a build of a recorded or given spec makes again (the
        engine is asked for image IDs); nothing is removed."""
        from gen.state.verify import repair as repair_store, verify
        if not repair:
            return verify(self.state_dir, self.store, lambda: self.engine)
        return repair_store(self.state_dir, self.store, self.compile, [os.fspath(s) for s in specs],
                            self.lock_timeout)

    def warm(self, profile: str | None, generations: int | None = None, dry_run: bool = False):
        """Set (or, with None, read) how many generations back the profile keeps its replaced containers,
        stopped, for a rollback to start (gen.state.warm). A lower setting applies at once: the kept
        containers it no longer keeps, and networks only they joined, are removed (gen.deploy.warmth)."""
        from gen.deploy.warmth import apply_warm, read_warm
        prof = self.profile(profile)
        if generations is None or dry_run:      # reads: no lock, nothing written
            return read_warm(prof) if generations is None else apply_warm(lambda: self.engine, self.store, prof, generations, True)
        with prof.locked(self.lock_timeout):
            return apply_warm(lambda: self.engine, self.store, prof, generations, False, lambda: self._deployer(prof))

    # -- closures: a generation with its images, moved without a registry (gen.state.closure) ---------
    def closure(self, profile: str | None, on: bool) -> str:
        """Keep (or stop keeping) the images of the profile's generations as archives in the store,
        from its next activation on; returns the profile's name."""
        from gen.state import closure
        (closure.enable if on else closure.disable)(self.state_dir, name := self.profile(profile).name)
        return name

    def export(self, out: str | os.PathLike, profile: str | None = None, number: int | None = None,
               images: bool = False, progress=None):
        """Write generation `number` (default: current) to the file `out` ("-": stdout), complete or not
        at all: a file is written under a temporary name and renamed when whole."""
        from gen.state.transfer import export
        name = self.profile(profile).name
        if os.fspath(out) == "-":
            import sys
            return export(self.state_dir, self.store, name, number, sys.stdout.buffer, images,
                          lambda: self.engine, progress)
        path = Path(out)
        temp = path.with_name(f".{path.name}.part-{os.getpid()}")
        try:
            with open(temp, "wb") as f:
                result = export(self.state_dir, self.store, name, number, f, images, lambda: self.engine, progress)
            os.replace(temp, path)
        except OSError as e:
            raise GenError(f"export {path}", f"cannot write: {e.strerror or e}") from None
        finally:
            if temp.exists():
                temp.unlink()
        return result

    def import_(self, source: str | os.PathLike, progress=None):
        """Add an exported generation (its objects rehashed, its image archives to the closure) to this
        state directory; `gen switch HASH` then deploys it."""
        from gen.state.importing import import_
        if os.fspath(source) == "-":
            import sys
            return import_(self.state_dir, self.store, sys.stdin.buffer, progress, self.lock_timeout, name="stdin")
        try:
            with open(source, "rb") as f:
                return import_(self.state_dir, self.store, f, progress, self.lock_timeout, name=os.fspath(source))
        except OSError as e:
            raise GenError(f"import {os.fspath(source)}", f"cannot read: {e.strerror or e}") from None

    def copy(self, to: str, profile: str | None = None, number: int | None = None, progress=None):
        """Load the images of generation `number` (default: current) onto the engine at `to` (only those
        it lacks), so that a switch there finds them."""
        from gen.engine import connect
        from gen.state.transfer import copy
        name = self.profile(profile).name
        return copy(self.state_dir, self.store, name, number, lambda: self.engine, connect(to), progress)

