"""The differential run for one corpus sample: Docker Compose v2 creates its containers, gen creates
its own for the same file, each side is inspected and cleaned up, and tests.fidelity compares them.

The two sides of one sample run one after the other (a sample with container_name, or a network with
a fixed subnet, cannot exist twice at once); samples run in parallel (run_all), except those with a
fixed subnet, which run alone first.

Images are stand-ins: the local test image is tagged as every image Compose's `config --images` names
(for a built service, "<project>-<service>" as Compose v2.40.3 names it), and gen compiles with every
reference and build resolved to that image's ID. Tags that existed before are never touched; a
reference that exists as another image is an error (the two tools would not run the same image).
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.cleanup import remove_profile
from tests.corpus import STAND_IN, Sample, judge
from tests.fidelity import Difference, Side, compare, engine_message

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_BIN = os.environ.get("GEN_DOCKER_COMPOSE", str(ROOT / ".venv" / "bin" / "docker-compose"))
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
WORKERS = 4
ENGINE_REFUSAL = "Error response from daemon:"
POOL_TAKEN = "Pool overlaps with other one on this address space"


@dataclass
class Created:
    """One tool's containers of one sample, inspected: service -> inspect dicts by replica."""
    containers: dict[str, list[dict]]
    side: Side
    error: str | None = None


@dataclass
class Outcome:
    sample: str
    differences: list[Difference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # a side failed where the other did not
    notes: list[str] = field(default_factory=list)
    compared: int = 0           # containers compared

    @property
    def ok(self) -> bool:
        return not self.differences and not self.problems and bool(self.compared or self.notes)

    def report(self) -> str:
        lines = [f"{self.sample}: Compose and gen differ" if self.compared or self.notes or self.problems
                 else f"{self.sample}: nothing was compared (neither tool created a container)"]
        lines += [f"  {p}" for p in self.problems]
        lines += [str(d) for d in self.differences]
        return "\n".join(lines)


class StandIns:
    """Tags of the stand-in image made for the run, removed by release()."""

    def __init__(self, docker_client):
        self.docker = docker_client
        self.image = docker_client.images.get(STAND_IN)
        self.made: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, ref: str) -> None:
        import docker.errors
        import docker.utils
        repo, tag = docker.utils.parse_repository_tag(ref)
        ref = f"{repo}:{tag or 'latest'}"
        with self._lock:
            try:
                present = self.docker.images.get(ref)
            except docker.errors.ImageNotFound:
                self.image.tag(repo, tag or "latest")
                self.made.add(ref)
                return
        if present.id != self.image.id:
            raise RuntimeError(f"image {ref} exists on the engine and is not the stand-in {STAND_IN}: "
                               f"Compose would run it, gen the stand-in; remove it or run elsewhere")

    def release(self) -> None:
        for ref in sorted(self.made):
            try:
                self.docker.api.remove_image(ref, noprune=True)
            except Exception:       # noqa: BLE001 - already gone, or in use by a leftover container
                pass
        self.made.clear()


# -- Compose's side ----------------------------------------------------------------------------------
def _compose(project: str, sample: Sample, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    proc = subprocess.run([COMPOSE_BIN, "-p", project, "-f", str(sample.file), *args], cwd=sample.file.parent,
                          capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker-compose {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def compose_creates(sample: Sample, spec, docker_client, stand_ins: StandIns) -> Created:
    project = f"cc{uuid.uuid4().hex[:10]}"
    try:
        for ref in _compose(project, sample, "config", "--images").stdout.split():
            stand_ins.ensure(ref)
        config = json.loads(_compose(project, sample, "config", "--format", "json").stdout)
        side = Side("Compose", "com.docker.compose.",
                    volumes={v["name"]: k for k, v in (config.get("volumes") or {}).items()},
                    networks={v["name"]: k for k, v in (config.get("networks") or {}).items()},
                    files=file_mounts(spec))
        proc = _compose(project, sample, "create", "--no-build", "--pull", "never", check=False)
        error = _compose_error(proc)
        # After a refusal Compose removes what it had created: nothing is left to compare.
        containers = {} if error else _inspect_all(docker_client, f"{COMPOSE_PROJECT}={project}", COMPOSE_SERVICE,
                                                   COMPOSE_NUMBER)
        side.services_by_ref = _refs(containers)
        return Created(containers, side, error)
    finally:
        down = _compose(project, sample, "down", "-v", "--remove-orphans", check=False)
        if down.returncode != 0:        # what down could not remove must not outlive the test
            for c in docker_client.containers.list(all=True, filters={"label": f"{COMPOSE_PROJECT}={project}"}):
                c.remove(force=True, v=True)


def _compose_error(proc: subprocess.CompletedProcess) -> str | None:
    """Compose v2.40.3 `create` exits 0 when the engine refuses a container; its stderr says so."""
    refused = [line.strip() for line in proc.stderr.splitlines() if line.startswith(ENGINE_REFUSAL)]
    if refused:
        return refused[-1]
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")


# -- gen's side --------------------------------------------------------------------------------------
def gen_creates(verdict, docker_client) -> Created:
    from gen.engine import connect
    from gen.errors import GenError
    spec, compiled = verdict.spec, verdict.compiled
    profile = compiled.manifest["profile"]
    side = Side("gen", "gen.", volumes=gen_volume_names(profile, spec), networks=gen_network_names(profile, spec),
                files=file_mounts(spec), pinned_root=os.environ.get("GEN_RUN_DIR"))
    made_dirs = _missing_bind_sources(spec)
    try:
        try:
            from gen.deploy.createonly import create_only
            create_only(connect(), compiled)        # a first switch's prepare step, nothing started
            error = None
        except GenError as e:
            error = str(e)
        containers = _inspect_all(docker_client, f"gen.profile={profile}", "gen.service", "gen.replica")
        side.services_by_ref = _refs(containers)
        return Created(containers, side, error)
    finally:
        remove_profile(docker_client, profile)
        _remove_made_dirs(made_dirs)


def gen_volume_names(profile: str, spec) -> dict[str, str]:
    from gen.model.naming import volume_name
    out = {}
    for name, opts in spec.volumes.items():
        engine_name = opts.get("name") if opts.get("external") or opts.get("name") else volume_name(profile, name)
        out[engine_name] = name
    return out


def gen_network_names(profile: str, spec) -> dict[str, str]:
    """engine network name -> the file's network name, as gen.model.naming names them."""
    from gen.model import naming
    name_of = getattr(naming, "engine_network_name", None) or (lambda p, n, d: d.get("name") or f"{p}_{n}")
    return {name_of(profile, name, dict(definition)): name
            for name, definition in {"default": {}, **spec.networks}.items()}


def file_mounts(spec) -> dict[str, dict[str, tuple[str, str]]]:
    """service -> {target: (shown as, host file)} for the secrets and config files it mounts."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for name, svc in spec.services.items():
        files = {f"/run/secrets/{s}": (f"secret {s}", spec.secrets[s]["file"]) for s in svc["secrets"]}
        for use in svc["configs"]:
            file = spec.configs[use["source"]]["file"]
            files[use["target"]] = (f"file {file}", file)
        out[name] = files
    return out


def _missing_bind_sources(spec) -> list[Path]:
    """Bind sources that do not exist yet, each with its missing ancestors (deepest first): gen may
    create them, as Compose does at start; the test removes what it made (only if empty)."""
    missing: list[Path] = []
    for svc in spec.services.values():
        for m in svc["volumes"]:
            path = Path(m["source"]) if m["type"] == "bind" and m["source"] else None
            while path is not None and not path.exists() and path != path.parent:
                missing.append(path)
                path = path.parent
    return sorted(set(missing), key=lambda p: len(p.parts), reverse=True)


def _remove_made_dirs(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.rmdir()
        except OSError:
            pass        # never made, or not empty: not ours to remove


# -- both --------------------------------------------------------------------------------------------
def _inspect_all(docker_client, label: str, service_label: str, replica_label: str) -> dict[str, list[dict]]:
    import docker.errors
    out: dict[str, list[dict]] = {}
    for listed in docker_client.api.containers(all=True, filters={"label": label}):
        try:
            attrs = docker_client.api.inspect_container(listed["Id"])
        except docker.errors.NotFound:
            continue        # removed meanwhile (by its tool, after a refusal)
        out.setdefault(attrs["Config"]["Labels"].get(service_label, "?"), []).append(attrs)
    for service, attrs in out.items():
        attrs.sort(key=lambda a: int(a["Config"]["Labels"].get(replica_label) or 0))
    return out


def _refs(containers: dict[str, list[dict]]) -> dict[str, str]:
    return {ref: service for service, attrs in containers.items() for a in attrs
            for ref in (a["Id"], a["Id"][:12], a["Name"].lstrip("/"))}


def run_sample(sample: Sample, image_id: str, state_dir: Path, docker_client, stand_ins: StandIns) -> Outcome:
    outcome = _run_sample(sample, image_id, state_dir, docker_client, stand_ins)
    if any(POOL_TAKEN in p for p in outcome.problems):
        # A fixed subnet (pihole's 172.20.0.0/24) can be taken for a moment by another test's network
        # that the engine placed there: not a difference between the tools. Once more.
        outcome = _run_sample(sample, image_id, state_dir, docker_client, stand_ins)
    return outcome


def _run_sample(sample: Sample, image_id: str, state_dir: Path, docker_client, stand_ins: StandIns) -> Outcome:
    outcome = Outcome(sample.name)
    verdict = judge(sample, image_id, state_dir / sample.profile, f"cg{uuid.uuid4().hex[:10]}")
    if not verdict.accepted:
        outcome.problems.append(f"gen rejected it: {verdict.reason}")
        return outcome
    spec = verdict.spec
    try:
        gen = gen_creates(verdict, docker_client)
        compose = compose_creates(sample, spec, docker_client, stand_ins)
    except Exception as e:       # noqa: BLE001 - the harness itself failed on this sample: say so
        outcome.problems.append(f"could not run: {type(e).__name__}: {e}")
        return outcome
    outcome.notes += _refusals(compose, gen, outcome.problems)
    for service in sorted(set(compose.containers) | set(gen.containers)):
        a, b = compose.containers.get(service, []), gen.containers.get(service, [])
        if (compose.error or gen.error) and not (a and b):
            continue        # not created because its tool stopped at the failure (reported above)
        if len(a) != len(b):
            outcome.differences.append(Difference(service, "number of containers", len(a), len(b)))
        named = spec.services[service].get("container_name") if service in spec.services else None
        for ca, cb in zip(a, b):
            outcome.differences += compare(service, ca, cb, compose.side, gen.side, named)
            outcome.compared += 1
    return outcome


def _refusals(compose: Created, gen: Created, problems: list[str]) -> list[str]:
    """A file the engine refuses (e.g. a runtime it lacks) must be refused by both, for the same reason."""
    if compose.error and gen.error:
        said = engine_message(compose.error)
        if said and said in gen.error:
            return [f"the engine refused both alike: {said}"]
        problems.append(f"both failed, differently: Compose: {compose.error.splitlines()[-1]} | gen: {gen.error}")
    elif compose.error:
        problems.append(f"Compose could not create it, gen did: {compose.error.splitlines()[-1]}")
    elif gen.error:
        problems.append(f"gen could not create it, Compose did: {gen.error}")
    return []


class Outcomes(dict):
    """sample name -> Outcome; shown short in a failing test's arguments."""

    def __repr__(self) -> str:
        return f"<{len(self)} samples: {sum(not o.ok for o in self.values())} differ>"


def run_all(samples: list[Sample], image_id: str, state_dir: Path, docker_client) -> Outcomes:
    """Every sample's outcome; samples with a fixed subnet alone first, the others WORKERS at a time."""
    stand_ins = StandIns(docker_client)
    verdicts = {s.name: judge(s, image_id) for s in samples}
    alone = [s for s in samples if _fixed_subnet(verdicts[s.name].spec)]
    rest = [s for s in samples if s not in alone]
    try:
        outcomes = Outcomes((s.name, run_sample(s, image_id, state_dir, docker_client, stand_ins)) for s in alone)
        with ThreadPoolExecutor(WORKERS) as pool:
            for outcome in pool.map(lambda s: run_sample(s, image_id, state_dir, docker_client, stand_ins), rest):
                outcomes[outcome.sample] = outcome
        return outcomes
    finally:
        stand_ins.release()


def _fixed_subnet(spec) -> bool:
    return spec is not None and any((net.get("ipam") or {}).get("config") for net in spec.networks.values())
