"""The shapes that flow through gen, written down once: the validated Spec (what gen.spec produces
and gen.model.compile consumes) and the kinds of object gen keeps (store objects, generation
records, the activation journal).

Store objects are canonical msgpack of plain dicts, so their kinds are TypedDicts: the type checker
and the reader see the exact keys, while the bytes (and so every hash) stay what they always were.
A key added to a kind changes the hash of every object of that kind; adding one is a format change
(see FORMATS), never a silent one.

Formats. Every kind is versioned (FORMATS) and every read checks the version (gen.model.formats):
a known older one is upgraded in memory, an unknown one is refused before any engine call.
- Manifests have always carried `format` (1).
- Service objects, source objects, generation records and journals were written without a `format`
  key until they were versioned: for them an absent `format` means format 1. Service objects keep
  it absent for format 1 on purpose: writing `format: 1` would change every service hash, so the
  first switch after an upgrade would replace every container. A format 2 writes the key (its
  content, and so its hash, changes anyway). Generation records and journals are JSON files, not
  hashed, so gen now writes their `format`.
- Format 1 of a service object covers shapes from before versioning: keys added along the way
  (`secrets` as a list of names, then of SecretRef; `labels`, `user`, `working_dir`) are filled on
  read with the values that reproduce how the gen of the time ran the object (formats.SERVICE_ADDED),
  under the hash it is stored with. Objects are never rewritten. A format 1 secret (SecretRef) is
  bind-mounted from its file, as the gen that wrote it did.
- Format 2 of a service object pins what it mounts from files: its secrets and config files are
  PinnedFile references to store objects (kind "secret": the value encrypted; kind "config": the
  content), materialised per service on tmpfs at activation (gen.deploy.materialize), and it has a
  `configs` key. Only an object that pins something is written as format 2; one that pins nothing
  is written exactly as format 1 (no `format`, no `configs`): it is one, so upgrading gen replaces no
  container that mounts no secret or config file.
- Secret and config objects are new kinds: they carry `format` (1) from the start.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NotRequired, TypedDict

# The format of each kind as gen writes it today. Readers of older formats upgrade in memory.
MANIFEST_FORMAT = 1
SERVICE_FORMAT = 2          # 2 when it pins secrets or config files; else written as format 1 (above)
SOURCE_FORMAT = 1           # written as an absent `format`
SECRET_FORMAT = 1
CONFIG_FORMAT = 1
RECORD_FORMAT = 1
JOURNAL_FORMAT = 1
FORMATS = {"manifest": MANIFEST_FORMAT, "service": SERVICE_FORMAT, "source": SOURCE_FORMAT,
           "secret": SECRET_FORMAT, "config": CONFIG_FORMAT,
           "generation record": RECORD_FORMAT, "journal": JOURNAL_FORMAT}


@dataclass(frozen=True)
class Spec:
    """A validated deployment, in gen's normal form (every key present, no floats)."""
    name: str | None
    services: dict[str, "ServiceSpec"]
    volumes: dict[str, dict]
    source: str = field(default="<string>", compare=False)   # where it came from, not what it says
    secrets: dict[str, dict] = field(default_factory=dict)   # name -> {"file": absolute path}
    # name -> {"file": absolute path}; a read-only bind of a file from the spec's folder is one too,
    # named by its path ("./nginx.conf"), so its content is pinned like a declared config's.
    configs: dict[str, dict] = field(default_factory=dict)


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
    """A secret in a format 1 service object: bind-mounted from its file (read at activation)."""
    name: str
    file: str                       # absolute path of the value on the build host
    digest: str                     # keyed blake3 of the value (see gen.state.secrets)


class ConfigUse(TypedDict):
    """A config file a service mounts, as the spec says it (ServiceSpec.configs)."""
    source: str                     # a name in Spec.configs
    target: str                     # absolute path in the container
    uid: int | None                 # None: the file's own (a pinned bind keeps its owner and mode)
    gid: int | None
    mode: int | None


class PinnedFile(TypedDict):
    """A secret or config file in a format 2 service object: its value is a store object, written to
    a per-service directory on tmpfs at activation and bind-mounted read-only from there."""
    name: str                       # the secret's or config's name
    target: str                     # absolute path in the container
    object: str                     # hash of the "secret" (encrypted) or "config" object
    uid: int
    gid: int
    mode: int                       # permission bits of the materialised file


class SecretObject(TypedDict):
    """kind "secret": one secret value, encrypted (gen.state.secrets). Never the value itself."""
    kind: Literal["secret"]
    format: int
    cipher: str                     # "AES-256-GCM-SIV"
    nonce: bytes
    sealed: bytes                   # ciphertext and tag


class ConfigObject(TypedDict):
    """kind "config": the content of one config file (not a secret: stored as it is)."""
    kind: Literal["config"]
    format: int
    data: bytes


class _ServiceFields(TypedDict):
    """What a validated service and its store object share, written once."""
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
    labels: dict[str, str]
    user: str | None
    working_dir: str | None


class ServiceSpec(_ServiceFields):
    """One service as gen.spec validates it."""
    secrets: list[str]
    configs: list[ConfigUse]


# -- store objects -------------------------------------------------------------------------------
class ServiceObject(_ServiceFields):
    """kind "service": a ServiceSpec with its image pinned and its secrets and config files pinned
    (format 2; format 1: secrets as SecretRef, no configs; see the module's docstring)."""
    format: NotRequired[int]        # absent for format 1
    kind: Literal["service"]
    image_id: str                   # the engine's image ID, resolved at build time
    secrets: list[PinnedFile] | list[SecretRef]
    configs: NotRequired[list[PinnedFile]]   # format 2 only


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
    format: int                     # RECORD_FORMAT; absent in records written before it was versioned
    generation: int
    manifest: str                   # Manifest hash
    created: str                    # ISO 8601, UTC
    services: int
    source: str                     # Source hash, when the generation was switched to from a file


# journal.json: present while an activation is in flight. ("from" is a keyword: functional form.)
Journal = TypedDict("Journal", {
    "format": int,                  # JOURNAL_FORMAT; absent in journals written before it was versioned
    "pid": "int | None",
    "kind": str,                    # switch | rollback | recover
    "from": "int | None",           # the generation current when it began
    "to": "str | None",             # the manifest being activated
    "to_generation": "int | None",
    "started": float,               # epoch seconds
})
