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
- Format 3 of a service object adds what real Compose files need (issue 12): container options
  (`options`), `container_name`, `networks`, `network_mode`, depends_on `conditions`, `job`, the image's
  registry digest (`image_digest`), mount options, and the Swarm keys `placement`, `endpoint_mode` and
  a port's `mode` ("host"; absent = Compose's ingress). Each of these keys is written only when it
  differs from its default (absent = default), and an object is written with the lowest format that
  holds it: no new key and no pin -> format 1 (no `format`), pins only -> 2, any format 3 key -> 3. So
  upgrading gen changes no hash of an object that uses none of them, and an older gen refuses an
  object it would run wrongly (an unknown format) instead of silently dropping its options.
- Manifest format 2 has networks beyond the one default network (or none): written only then.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NotRequired, TypedDict

# The format of each kind as gen writes it today. Readers of older formats upgrade in memory.
MANIFEST_FORMAT = 2         # 2 when its networks are not exactly {"default": {}}; else written as 1
SERVICE_FORMAT = 3          # 3 with a format 3 key, 2 when it pins files only, else 1 (above)
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
    # name -> NetworkDef. Empty: every service on the one default network, as before format 3.
    # "default" may be declared too (Compose lets a file configure its default network).
    networks: dict[str, "NetworkDef"] = field(default_factory=dict)


# -- parts of a service --------------------------------------------------------------------------
class Port(TypedDict):
    host_ip: str                    # "" = every address
    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"]
    mode: NotRequired[Literal["host"]]   # format 3; absent = ingress (Compose's default). One engine: the same


class Mount(TypedDict):
    type: Literal["volume", "bind", "tmpfs"]
    # a declared volume's name; "" for an anonymous volume (type volume: gen keeps it as a volume of
    # the profile per service, replica and target, so it survives a replace as Compose's does);
    # an absolute host path (bind); "" (tmpfs)
    source: str
    target: str
    read_only: bool
    # Format 3, each written only when not its default:
    create_host_path: NotRequired[bool]   # bind: written only as False (refuse, never create, a missing source)
    nocopy: NotRequired[bool]             # volume: written only as True (do not copy the image's files in)
    propagation: NotRequired[str]         # bind: rprivate (Docker's default) is left out
    tmpfs_size: NotRequired[int]          # tmpfs: bytes
    tmpfs_mode: NotRequired[int]          # tmpfs: permission bits


class ContainerOptions(TypedDict, total=False):
    """Format 3: the options of one container on one engine, in gen's units (bytes, nano-CPUs; no
    floats). Only keys the spec sets are present; an empty `options` is left out of the object."""
    expose: list[str]               # "80/tcp", sorted
    stop_signal: str                # "SIGINT"
    cap_add: list[str]              # sorted, as written ("NET_ADMIN")
    cap_drop: list[str]
    privileged: bool
    devices: list[str]              # "/dev/x:/dev/x:rwm"
    device_cgroup_rules: list[str]
    sysctls: dict[str, str]
    ulimits: dict[str, list[int]]   # name -> [soft, hard]
    shm_size: int                   # bytes
    tmpfs: dict[str, str]           # target -> mount options ("" for none)
    extra_hosts: list[str]          # "host:ip"
    dns: list[str]
    dns_search: list[str]
    dns_opt: list[str]
    hostname: str
    domainname: str
    mac_address: str
    init: bool
    logging: dict                   # {"driver": str, "options": {str: str}}
    mem_limit: int                  # bytes
    memswap_limit: int              # bytes (-1: unlimited)
    mem_reservation: int            # bytes
    mem_swappiness: int
    nano_cpus: int                  # cpus x 1e9
    cpu_shares: int
    cpu_quota: int
    cpu_period: int
    cpuset: str
    pids_limit: int
    oom_score_adj: int
    oom_kill_disable: bool
    security_opt: list[str]
    read_only: bool
    pid: str                        # "host"
    ipc: str                        # "host" | "shareable" | "private" | "container:NAME"
    uts: str
    userns_mode: str
    cgroup: str
    cgroup_parent: str
    group_add: list[str]
    tty: bool
    stdin_open: bool
    platform: str                   # "linux/amd64": the image is resolved for it
    runtime: str
    storage_opt: dict[str, str]


class ServiceNetwork(TypedDict, total=False):
    """Format 3: how a service joins one network (only what the spec sets)."""
    aliases: list[str]              # besides the service name, which every service gets
    ipv4_address: str
    ipv6_address: str


class NetworkDef(TypedDict, total=False):
    """A network of the deployment (Spec.networks, manifest `networks`); only what the spec sets.
    The engine's name is "<profile>_<name>" unless `name` is given; an external network is the
    user's own: it must exist, and gen never creates, changes or removes it."""
    external: bool                  # written only as True
    name: str                       # the engine's name
    driver: str                     # "bridge" (the only driver of a single engine gen creates)
    internal: bool
    attachable: bool
    enable_ipv6: bool
    labels: dict[str, str]
    driver_opts: dict[str, str]
    ipam: dict                      # {"driver": str, "config": [{"subnet": str, "gateway": str, ...}]}


class BuildSpec(TypedDict):
    """`build:` of a service (gen.spec): gen builds the image at `gen build`; the image ID, not this,
    enters the service object. Its inputs (context files, Dockerfile, args, target) address the build:
    an unchanged input reuses the image built before."""
    context: str                    # absolute path of the context directory
    dockerfile: str                 # path of the Dockerfile, relative to the context
    args: dict[str, str]
    target: str | None
    labels: dict[str, str]


class Healthcheck(TypedDict):
    test: list[str]                 # ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]
    interval_ms: int
    timeout_ms: int
    retries: int
    start_period_ms: int
    start_interval_ms: NotRequired[int]    # format 3; only when the spec sets it (engines from API 1.44 apply it)


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
    # Format 3 (see the module's docstring), each absent when it is its default:
    options: NotRequired[ContainerOptions]
    container_name: NotRequired[str]          # replicas must be 1; updates stop-first, the old renamed aside
    networks: NotRequired[dict[str, ServiceNetwork]]   # absent: {"default": {}}
    network_mode: NotRequired[str]            # "host" | "none" | "service:NAME" | "container:NAME"
    # depends_on entries whose condition is not Compose's default "service_started" (wait for
    # running): "healthy" (service_healthy) or "completed" (service_completed_successfully: the
    # dependency is a job that must exit 0 first). Every key is in depends_on.
    conditions: NotRequired[dict[str, Literal["healthy", "completed"]]]
    job: NotRequired[bool]                    # written only as True: runs to exit 0, once per definition
    # Swarm only (one engine has no nodes, no VIP: there they do not apply; gen.spec.swarmkeys):
    placement: NotRequired[dict]              # {"constraints": [str], "max_replicas_per_node": int}, what is set
    endpoint_mode: NotRequired[Literal["dnsrr"]]   # absent = vip


PullPolicy = Literal["missing", "always", "never", "build"]


class ServiceSpec(_ServiceFields):
    """One service as gen.spec validates it. `image` is "" for a service that is only built (gen names
    the built image "<profile>-<service>", as Compose does)."""
    secrets: list[str]
    configs: list[ConfigUse]
    build: NotRequired[BuildSpec]             # spec only: compile turns it into image_id
    pull_policy: NotRequired[PullPolicy]      # spec only; absent = "missing"


# -- store objects -------------------------------------------------------------------------------
class ServiceObject(_ServiceFields):
    """kind "service": a ServiceSpec with its image pinned and its secrets and config files pinned
    (format 2; format 1: secrets as SecretRef, no configs; see the module's docstring)."""
    format: NotRequired[int]        # absent for format 1
    kind: Literal["service"]
    image_id: str                   # the engine's image ID, resolved at build time
    image_digest: NotRequired[str]  # format 3: "repo@sha256:..." where a registry gave one; pulled by it when missing
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
