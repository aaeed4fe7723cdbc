"""The Engine interface: everything gen asks of a container engine, in gen's own vocabulary.

The transaction (gen.deploy), pins (gen.state.pins) and the front door (gen.api) speak only to this
Protocol. gen.engine.docker fills it for one Docker engine (the only module that imports `docker`);
gen.engine.memory fills it in memory for unit tests of the transaction; a Swarm backend is one more
module here. Every method raises gen's own errors (EngineError, EngineUnavailable, ImageMissing),
never a backend's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Collection, Iterable, Iterator
from typing import Callable, Protocol

from gen.model.plan import Observed
from gen.model.types import ServiceObject

DEFAULT_HEALTH_TIMEOUT_MS = 30_000     # Docker's, when a healthcheck sets none


@dataclass(frozen=True)
class ContainerDetails:
    """One container, inspected: what the health gate needs beyond the list call's Observed."""
    id: str
    running: bool
    restarting: bool
    exit_code: int | None
    restart_count: int
    user: str = ""
    health_test: tuple[str, ...] = ()          # its healthcheck's test ([] when it has none)
    health_timeout_ms: int = DEFAULT_HEALTH_TIMEOUT_MS
    last_check_exit: int | None = None         # the engine's last healthcheck run, if any
    last_check_output: str = ""


@dataclass(frozen=True)
class ImageInfo:
    """One image, inspected once: what a build needs to pin it (Engine.image_info)."""
    id: str
    repo_digests: tuple[str, ...] = ()      # "repo@sha256:...", sorted; () for an image never pushed or pulled


@dataclass(frozen=True)
class Wiring:
    """What one container is attached to, in the engine's names (resolved by gen.deploy.activation)."""
    # engine network name -> aliases it answers to there (its service name first), in join order.
    # The first is joined at create, the others before create returns (an engine of API < 1.44
    # takes one network per create), so no container ever starts half-wired.
    networks: dict[str, list[str]] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)     # declared volume -> engine volume name
    anonymous: dict[str, str] = field(default_factory=dict)   # mount target -> engine volume name (anonymous volumes)
    network_mode: str | None = None  # "host" | "none" | "container:<name or id>": then `networks` is empty
    ipv4: dict[str, str] = field(default_factory=dict)        # engine network name -> fixed address, when set
    ipv6: dict[str, str] = field(default_factory=dict)


Progress = Callable[[str], None]      # one line of an engine's pull or build output


class Watch(Protocol):
    """A subscription to the changes of one profile's containers (Engine.watch), so that the health gate
    sleeps until something happens instead of polling. A hint, never a judge: after every wake the gate
    lists and judges the containers as it would without it, and it wakes on its own timers too.

    `live`: while True, every change made after the moment it was read makes wait() return (a caller
    that reads it before a list call may sleep past that list call until the next event). False
    before the subscription is up and once it broke, for good; the break wakes wait() (the caller
    then polls)."""
    live: bool

    def wait(self, timeout_s: float, probes: Collection[str] = ()) -> bool:
        """Block until a container of the profile changed since the last call, or one of `probes` (ids
        from Engine.probe_start) ended (True), or timeout_s passed (False)."""

    def close(self) -> None:
        """End the subscription: prompt, even when the engine hangs or is gone."""

    def __enter__(self) -> "Watch": ...

    def __exit__(self, *exc) -> None: ...


class Engine(Protocol):
    # True (the default, when absent): a call the engine received is carried out even if its caller
    # dies (Docker's), so recovery after a kill looks again once it can have landed (gen.deploy.recovery).
    calls_outlive_caller: bool
    # -- images: resolved by ID at build time; pulled or built only when asked -------------------
    def image_id(self, ref: str, subject: str) -> str:
        """The engine's ID for an image reference; ImageMissing naming `subject` when absent."""

    def image_info(self, ref: str, subject: str) -> ImageInfo:
        """The image `ref` names, its ID and repository digests from one inspect (a build asks both of
        every image it pins); ImageMissing naming `subject` when absent."""

    def image_digests(self, image_id: str) -> list[str]:
        """The image's repository digests ("repo@sha256:..."), sorted; [] for an image never pushed
        or pulled. ImageMissing when absent."""

    def pull(self, ref: str, subject: str, progress: Progress | None = None) -> str:
        """Pull `ref` ("repo:tag" or "repo@sha256:..."; no tag means "latest") from its registry;
        returns the image ID `ref` names afterwards. Progress: a line per layer status change, not
        per byte. EngineError naming `subject` with the registry's reason ("manifest unknown",
        "connection refused") when it cannot."""

    def build_image(self, context: str, dockerfile: str, tag: str, args: dict[str, str], target: str | None,
                    labels: dict[str, str], subject: str, progress: Progress | None = None) -> str:
        """Build an image from a context directory (.dockerignore honoured; `dockerfile` relative to
        it), tag it (tag "": untagged), label it, return its ID. Progress: the builder's output lines. BuildFailed naming
        `subject`, the failing step ("Step 2/3 : RUN make") and the error's first line when it fails."""

    def images_labelled(self, key: str, value: str) -> list[str]:
        """IDs of the images carrying the label key=value (gen's build cache), sorted."""

    def push(self, ref: str, subject: str, progress: Progress | None = None) -> str:
        """Push a local "repo:tag" to its registry; returns the repository digest "repo@sha256:..."."""

    def pin_image(self, image_id: str, repo: str, tag: str) -> None:
        """Tag image_id as repo:tag, so that pruning dangling images keeps it (idempotent; moves the tag
        if it named another image)."""

    def unpin_image(self, ref: str) -> bool:
        """Remove the tag `ref`; True when the engine dropped the image with its last tag. Docker has
        no untag-only call: when `ref` was the image's last reference and no container uses the image,
        the engine deletes the image too. An absent tag is not an error."""

    def pinned_images(self, repo_prefix: str) -> list[tuple[str, str]]:
        """(ref, image id) of every tag whose repository starts with repo_prefix, sorted by ref."""

    # -- image archives: a generation's closure (gen.state.closure), moved without a registry ------
    def has_image(self, image_id: str) -> bool:
        """Is the image with exactly this ID present?"""

    def save_image(self, image_id: str) -> Iterator[bytes]:
        """The image as a `docker save` archive (plain Docker can load it), in chunks as the engine
        sends them, never whole in memory. ImageMissing (at the first chunk) when it is absent; an
        engine that fails mid-stream raises at the chunk it could not send."""

    def load_image(self, chunks: Iterable[bytes]) -> list[str]:
        """`docker load` of the archive the chunks make, streamed (never held whole); returns the IDs
        of the images it holds, sorted. An exception raised by `chunks` itself (a damaged blob, a
        source engine that went away) is raised as it is, and the engine loads nothing; EngineError
        "docker load" when the engine refuses the archive (not an image archive, truncated)."""

    # -- observation --------------------------------------------------------------------------
    def observe(self, profile: str, ids: Collection[str] | None = None) -> list[Observed]:
        """Every container labelled with this profile, in one call; with `ids`, only those of them (the
        engine narrows the list before it looks at each container: the health gate lists only what it
        waits for). An id absent from the answer is a container that is gone."""

    def inspect(self, cid: str) -> ContainerDetails: ...

    def logs(self, cid: str, tail: int = 10) -> str: ...

    def watch(self, profile: str) -> Watch:
        """Subscribe to the changes of the profile's containers (see Watch); close it, or use it as a context
        manager. Never raises: an engine that cannot deliver events gives a watch that is not live."""

    # -- networks and volumes (created when missing; volumes are never removed) ----------------
    def ensure_network(self, name: str, labels: dict[str, str], definition: dict | None = None,
                       external: bool = False) -> bool:
        """Create the network unless it exists; True when this call created it. One that exists must
        carry the same gen.profile label (NotOwned otherwise: gen never adopts another's network).
        `definition` (a NetworkDef: driver, internal, ipam, ...) shapes one gen creates; its `labels`
        are added to gen's. external=True: the user's network: it must exist (EngineError naming it
        otherwise), its labels are not gen's business, and gen never creates or removes it."""

    def ensure_volume(self, name: str, labels: dict[str, str], external: bool = False) -> None:
        """Create the volume unless it exists; one that exists must carry the same gen.profile label
        (NotOwned otherwise). external=True: the volume is the user's: it must exist, its labels are
        not gen's business, and gen never creates it."""

    def remove_network(self, name: str) -> None: ...

    def profile_networks(self, profile: str) -> list[str]:
        """Names of the networks gen made for the profile (labelled with it; external ones never are)."""

    # -- containers ---------------------------------------------------------------------------
    def create(self, profile: str, service: str, obj: ServiceObject, h: str, manifest: str, replica: int,
               name: str, wiring: Wiring) -> str:
        """Create (not start) one replica of a service object, labelled as gen's, attached as `wiring`
        says (every network joined before this returns); returns its id. Its options, mounts and
        networks are what Docker Compose would create for the same service (gen.engine.dockerconfig).
        EngineError naming the service: a taken name (409), a missing network or image, a bind
        source that does not exist under `create_host_path: false`."""

    def rename(self, cid: str, name: str) -> None:
        """Give a container another name (container_name services: the old one is renamed aside).
        EngineError when the name is taken (409)."""

    def start(self, cid: str) -> None:
        """Make the container run: a created or stopped one starts, a paused one is unpaused."""

    def stop(self, cid: str, grace_ms: int | None) -> None:
        """Stop with a grace period (None: the container's own); an absent container is not an error."""

    def remove(self, cid: str) -> None:
        """Remove a container (never its volumes); an absent container is not an error."""

    # -- early health probes (gen.deploy.health.Probe) ------------------------------------------
    def probe_start(self, cid: str, argv: list[str], user: str) -> str:
        """Start argv in the container, detached, as its healthcheck would run; returns a probe id."""

    def probe_result(self, probe_id: str) -> int | None:
        """The probe's exit code, or None while it runs."""
