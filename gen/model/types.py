"""The shapes that flow through gen, written down once: the validated Spec (what gen.spec produces
and gen.model.compile consumes) and the kinds of object gen keeps (store objects, generation
records, the activation journal).

Store objects are canonical msgpack of plain dicts, so their kinds are TypedDicts: the type checker
and the reader see the exact keys, while the bytes (and so every hash) stay what they always were.
A key added to a kind changes the hash of every object of that kind; adding one is a format change
(see FORMATS), never a silent one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

# The format of each kind as gen writes it today. Readers of older formats upgrade in memory.
MANIFEST_FORMAT = 1
FORMATS = {"manifest": MANIFEST_FORMAT}


@dataclass(frozen=True)
class Spec:
    """A validated deployment, in gen's normal form (every key present, no floats)."""
    name: str | None
    services: dict[str, "ServiceSpec"]
    volumes: dict[str, dict]
    source: str = field(default="<string>", compare=False)   # where it came from, not what it says
    secrets: dict[str, dict] = field(default_factory=dict)   # name -> {"file": absolute path}


# -- parts of a service --------------------------------------------------------------------------
class Port(TypedDict):
    host_ip: str                    # "" = every address
    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"]


class Mount(TypedDict):
    type: Literal["volume", "bind"]
    source: str                     # a declared volume's name, or an absolute host path
    target: str
    read_only: bool


class Healthcheck(TypedDict):
    test: list[str]                 # ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]
    interval_ms: int
    timeout_ms: int
    retries: int
    start_period_ms: int


class SecretRef(TypedDict):
    name: str
    file: str                       # absolute path of the value on the build host
    digest: str                     # keyed blake3 of the value (see gen.state.secrets)


class ServiceSpec(TypedDict):
    """One service as gen.spec validates it."""
    name: str
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    ports: list[Port]
    volumes: list[Mount]
    depends_on: list[str]
    replicas: int
    update: Literal["start-first", "stop-first"]
    stop_grace_ms: int
    restart: str                    # "no" | "always" | "unless-stopped" | "on-failure[:N]"
    healthcheck: Healthcheck | None
    secrets: list[str]
    labels: dict[str, str]
    user: str | None
    working_dir: str | None


# -- store objects -------------------------------------------------------------------------------
class ServiceObject(TypedDict):
    """kind "service": a ServiceSpec with its image pinned and its secrets resolved."""
    kind: Literal["service"]
    name: str
    image: str
    image_id: str                   # the engine's image ID, resolved at build time
    command: list[str] | None
    entrypoint: list[str] | None
    env: dict[str, str]
    ports: list[Port]
    volumes: list[Mount]
    depends_on: list[str]
    replicas: int
    update: Literal["start-first", "stop-first"]
    stop_grace_ms: int
    restart: str
    healthcheck: Healthcheck | None
    secrets: list[SecretRef]
    labels: dict[str, str]
    user: str | None
    working_dir: str | None


class Manifest(TypedDict):
    """kind "manifest": a whole deployment. Its hash is the generation's identity."""
    kind: Literal["manifest"]
    format: int
    profile: str
    services: dict[str, str]        # service name -> ServiceObject hash
    volumes: dict[str, dict]
    networks: dict[str, dict]


class Source(TypedDict):
    """kind "source": the text of the spec file a generation was built from (not part of its identity)."""
    kind: Literal["source"]
    path: str
    text: str


# -- profile files (JSON, under profiles/<name>/) ---------------------------------------------------
class GenerationRecord(TypedDict, total=False):
    generation: int
    manifest: str                   # Manifest hash
    created: str                    # ISO 8601, UTC
    services: int
    source: str                     # Source hash, when the generation was switched to from a file


# journal.json: present while an activation is in flight. ("from" is a keyword: functional form.)
Journal = TypedDict("Journal", {
    "pid": "int | None",
    "kind": str,                    # switch | rollback | recover
    "from": "int | None",           # the generation current when it began
    "to": "str | None",             # the manifest being activated
    "to_generation": "int | None",
    "started": float,               # epoch seconds
})
