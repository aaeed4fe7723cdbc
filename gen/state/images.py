"""Images at `gen build`: each service's image is looked up, pulled or built, and pinned by ID (and by
registry digest where one exists), the way Nix pins a fixed-output fetch.

    resolver = ImageResolver(connect, profile, state_dir, ImagePolicy(pull="always"), report)
    compile_spec(spec, profile, resolver, ...)          # resolver(ImageRequest) -> ResolvedImage

A service with only an `image` follows its pull_policy (Compose's meaning), unless `gen build --pull`
overrides it for the run:
- "missing" (the default): an image present on the engine is used as it is; an absent one is pulled;
- "always": the tag is pulled again at every build (a reference by digest is never pulled twice);
- "never": never pulled; an absent image is ImageMissing naming the key.
The object records the image ID and, when the engine holds a registry digest of the image for the
repository named, that digest ("repo@sha256:..."): activating the generation where the image is gone
pulls exactly that digest, never the tag (gen.deploy).

A service with `build` is built from its inputs, content-addressed (gen.state.buildcontext): an image
labelled gen.build.inputs=<hash of the inputs> is reused without building; otherwise it is built with
that label. pull_policy "build" and `gen build --rebuild` build it in any case. The image is tagged
with the service's `image`, else "<profile>-<service>" as Compose names it, and, once the whole build
succeeded (`pin_built`), pinned as a kept generation's image is (gen.state.pins), so `docker image
prune` leaves it until a gc finds no generation that uses it. Base images (FROM) are the builder's
business.

Every distinct request is resolved once per build: a thousand services of one image cost one lookup.
Pulls and builds report progress lines through `report(service, phase, detail)`; phases: pulling,
pulled, building, built, reused.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gen.engine.base import Engine, ImageInfo
from gen.errors import ImageMissing, SpecError
from gen.model.compile import ImageRequest, ResolvedImage
from gen.state.buildcontext import INPUTS_LABEL, build_inputs
from gen.state.identity import state_id
from gen.state.pins import pin_repo, pin_tag

PULL_CHOICES = ("always", "missing", "never")
Report = Callable[[str, str, str], None]          # (service, phase, detail)
_REPO_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DIGEST_REF = re.compile(r"(?P<repo>[^@]+)@(?P<digest>sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class ImagePolicy:
    """What one run of `gen build` (or `gen switch SPEC`) is told about images."""
    pull: str | None = None          # --pull always|missing|never: overrides every pull_policy
    rebuild: bool = False            # --rebuild: build every `build` service, whatever exists

    def __post_init__(self):
        if self.pull is not None and self.pull not in PULL_CHOICES:
            raise SpecError("--pull", f"must be one of {', '.join(PULL_CHOICES)}, not {self.pull!r}")


def _quiet(service: str, phase: str, detail: str) -> None:
    pass


class ImageResolver:
    """The resolve_image of gen.model.compile.compile_spec for one build (see the module's docstring)."""

    def __init__(self, engine: Callable[[], Engine], profile: str, state_dir: str | Path | None,
                 policy: ImagePolicy = ImagePolicy(), report: Report = _quiet):
        self._connect = engine
        self.profile = profile
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.policy = policy
        self.report = report
        self._refs: dict[tuple[str, str], ResolvedImage] = {}    # (ref, mode) -> what it resolved to
        self._builds: dict[str, str] = {}                        # inputs hash -> image ID
        self._tagged: set[tuple[str, str]] = set()               # (image ID, tag) already tagged

    @property
    def engine(self) -> Engine:
        return self._connect()

    def __call__(self, request: ImageRequest) -> ResolvedImage:
        if request.build is not None:
            return self._built(request)
        if request.pull_policy == "build":
            raise SpecError(request.key_path, "pull_policy build needs a `build` section to build the image from")
        mode = self.policy.pull or request.pull_policy
        key = (request.ref, mode)
        if key not in self._refs:
            self._refs[key] = self._image(request, mode)
        return self._refs[key]

    # -- an image from a registry ------------------------------------------------------------------
    def _image(self, request: ImageRequest, mode: str) -> ResolvedImage:
        ref = request.ref
        if mode != "always" or _DIGEST_REF.fullmatch(ref):
            present = self._present(ref, request.key_path)
            if present is not None:      # one inspect gives both the ID and the digests to pin
                return ResolvedImage(present.id, self._digest(ref, lambda: present.repo_digests))
            if mode == "never":
                raise ImageMissing(request.key_path, ref)
        return self._pull(request)

    def _present(self, ref: str, subject: str) -> ImageInfo | None:
        try:
            return self.engine.image_info(ref, subject)
        except ImageMissing:
            return None

    def _pull(self, request: ImageRequest) -> ResolvedImage:
        ref, service = request.ref, request.service
        self.report(service, "pulling", ref)
        image_id = self.engine.pull(ref, request.key_path, lambda line: self.report(service, "pulling", line))
        digest = self._digest(ref, lambda: self.engine.image_digests(image_id))
        self.report(service, "pulled", f"{ref} {_short(image_id)}" + (f" ({digest})" if digest else ""))
        return ResolvedImage(image_id, digest)

    def _digest(self, ref: str, repo_digests: Callable[[], Iterable[str]]) -> str | None:
        """The registry digest the image has for the repository `ref` names (the first, sorted, when a
        registry gave several); None for an image that never came from that repository. The image's
        digests are asked for only when `ref` does not name one."""
        by_digest = _DIGEST_REF.fullmatch(ref)
        if by_digest:
            return f"{repository(by_digest['repo'])}@{by_digest['digest']}"
        wanted = familiar(repository(ref))
        return next((d for d in repo_digests() if familiar(d.partition("@")[0]) == wanted), None)

    # -- an image built from a context -------------------------------------------------------------
    def _built(self, request: ImageRequest) -> ResolvedImage:
        build, service = request.build, request.service
        inputs = build_inputs(build, request.platform, request.key_path)
        # A reference by digest names what a registry holds, not a tag a build can give.
        tag = request.ref if request.ref and "@" not in request.ref else self._default_tag(service)
        if inputs not in self._builds:
            forced = self.policy.rebuild or request.pull_policy == "build"
            reuse = None if forced else self._reusable(inputs, tag, request.key_path)
            if reuse is not None:
                self.report(service, "reused", f"{_short(reuse)} (inputs {inputs[:12]} unchanged)")
            self._builds[inputs] = reuse or self._build(request, inputs, tag)
        image_id = self._builds[inputs]
        if tag:
            self._tag(image_id, tag)
        return ResolvedImage(image_id)

    def _reusable(self, inputs: str, tag: str | None, subject: str) -> str | None:
        """An image built before from the same inputs; the one the tag names when there are several."""
        found = self.engine.images_labelled(INPUTS_LABEL, inputs)
        if len(found) > 1 and tag:
            tagged = self._present(tag, subject)
            if tagged in found:
                return tagged
        return found[0] if found else None

    def _build(self, request: ImageRequest, inputs: str, tag: str | None) -> str:
        build, service = request.build, request.service
        self.report(service, "building", f"{build['context']} ({build['dockerfile']})")
        labels = {**(build.get("labels") or {}), INPUTS_LABEL: inputs}
        image_id = self.engine.build_image(build["context"], build["dockerfile"], tag or "",
                                           dict(build.get("args") or {}), build.get("target"), labels,
                                           request.key_path, lambda line: self.report(service, "building", line))
        self.report(service, "built", f"{_short(image_id)}" + (f" as {tag}" if tag else ""))
        return image_id

    def _default_tag(self, service: str) -> str | None:
        """"<profile>-<service>", as Compose names a built image; None when Docker would refuse that name
        (the gen pin still keeps the image)."""
        name = f"{self.profile}-{service}"
        return name if _REPO_COMPONENT.fullmatch(name) else None

    def _tag(self, image_id: str, ref: str) -> None:
        repo, tag = split_tag(ref)
        if (image_id, ref) not in self._tagged:
            self.engine.pin_image(image_id, repo, tag)
            self._tagged.add((image_id, ref))

    def pin_built(self) -> None:
        """Give every image this resolver built or reused the gen pin a kept generation's image carries
        (gen.state.pins), so that `docker image prune` keeps it until a gc finds no generation using
        it. Called once the whole build succeeded: a failed build writes nothing to the state directory."""
        if self.state_dir is None or not self._builds:
            return
        repo = pin_repo(self.profile, state_id(self.state_dir))
        for image_id in sorted(set(self._builds.values())):
            tag = pin_tag(image_id)
            if tag:
                self._tag(image_id, f"{repo}:{tag}")


# -- references ---------------------------------------------------------------------------------------
def split_tag(ref: str) -> tuple[str, str]:
    """("repo", "tag") of "repo[:tag]" (tag "latest" when none); a registry's port is not a tag."""
    repo, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        return ref, "latest"
    return repo, tag


def repository(ref: str) -> str:
    """The repository of a reference: its tag and digest dropped."""
    return split_tag(ref.partition("@")[0])[0]


def familiar(repo: str) -> str:
    """Docker Hub's names as the engine shows them: docker.io/library/redis is redis."""
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
            break
    return repo.removeprefix("library/") if repo.count("/") == 1 else repo


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
