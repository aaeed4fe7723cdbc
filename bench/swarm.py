"""The Swarm cases: gen against `docker stack deploy` plus waiting for convergence, on the bench's own lab
(bench.swarmlab), both through its manager (DOCKER_HOST).

- SwarmGen:     `gen switch` / `gen rollback` of a profile with --target swarm (its 1 s stability window).
- SwarmGenNoWindow: the same with `--stable-for 0`: the guarantee the Stack tool waits for, no more.
- Stack:        `docker stack deploy --detach=true --resolve-image never -c compose.yaml`, then a poll until the
                stack has converged (converge): every service changed by the deploy reports UpdateStatus.State
                "completed" of an update that started after the deploy, and every service runs as many tasks of
                its current definition as it has replicas and none of another definition. Swarm reports a task
                "running" only once its healthcheck passed ("starting" until then), so running is healthy where
                there is a check, as gen's verdict reads it too. Its rollback deploys the previous file again:
                `docker service rollback` goes back one step (the service's PreviousSpec) of one service only.

Each tool-run gets its own stack/profile name and its own host port, and teardown removes the services,
secrets, configs and networks labelled with it, waiting until their tasks are gone.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench import swarmspecs
from bench.tools import DeployFailed, Gen, Tool, gen_binary, run

POLL_S = 0.1
CONVERGE_TIMEOUT_S = 120
TEARDOWN_TIMEOUT_S = 120
PORT_BASE = 21000
FAILED = {"paused", "rollback_started", "rollback_paused", "rollback_completed"}


class SwarmGen(Gen):
    name = "gen"

    def __init__(self, project: str, work: Path, api, lab):
        Tool.__init__(self, project, work, api)
        self.lab, self.bin, self.state_dir = lab, gen_binary(), work / f"state-{project}"
        self.target: tuple[str, ...] = ("--target", "swarm")      # the profile's first switch chooses it

    def deploy(self, spec_dir: Path) -> None:
        run(self.cmd("switch", spec_dir / "gen.toml", "-p", self.project, "-q", "--timeout", "120", *self.target,
                     *self.activation_args), "gen switch", env=self.lab.env())
        self.target = ()

    def rollback(self, previous_spec_dir: Path) -> None:
        run(self.cmd("rollback", "-p", self.project, "-q", "--timeout", "120", *self.activation_args),
            "gen rollback", env=self.lab.env())

    def teardown(self) -> None:
        remove_all(self.api, f"gen.profile={self.project}")
        shutil.rmtree(self.state_dir, ignore_errors=True)


class SwarmGenNoWindow(SwarmGen):
    name = "gen0"
    activation_args = ("--stable-for", "0")


class Stack(Tool):
    name = "stack"

    def __init__(self, project: str, work: Path, api, lab):
        super().__init__(project, work, api)
        self.lab, self.deployed = lab, None
        self.label = f"com.docker.stack.namespace={project}"

    def deploy(self, spec_dir: Path) -> None:
        changed = {f"{self.project}_{s}" for s in swarmspecs.changed_services(self.deployed, spec_dir)}
        before = {s["Spec"]["Name"]: _update_started(s) for s in self._services()}
        run(["docker", "stack", "deploy", "--detach=true", "--resolve-image", "never", "-c",
             str(spec_dir / "compose.yaml"), self.project], "docker stack deploy", env=self.lab.env())
        self.converge(changed, before)
        self.deployed = spec_dir

    def converge(self, changed: set[str], before: dict[str, str | None]) -> None:
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        while True:
            waiting = self._waiting_for(changed, before)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise DeployFailed(f"docker stack deploy: not converged within {CONVERGE_TIMEOUT_S} s: {waiting}")
            time.sleep(POLL_S)

    def _waiting_for(self, changed: set[str], before: dict[str, str | None]) -> str:
        """What the stack still waits for ('' once converged); DeployFailed when Swarm paused or rolled back."""
        services = self._services()
        if not changed <= {s["Spec"]["Name"] for s in services}:
            return "services not created yet"
        tasks = self.api.tasks(filters={"desired-state": "running"})
        for s in services:
            name, status = s["Spec"]["Name"], s.get("UpdateStatus") or {}
            if status.get("State") in FAILED:
                raise DeployFailed(f"docker stack deploy: {name}: update {status['State']}: {status.get('Message')}")
            updated = name in changed and name in before        # created services have no UpdateStatus
            if updated and (_update_started(s) == before[name] or status.get("State") != "completed"):
                return f"{name}: update {status.get('State', 'not started')}"
            mine = [t for t in tasks if t["ServiceID"] == s["ID"]]
            current = s["Spec"]["TaskTemplate"]["ContainerSpec"]
            running = [t for t in mine if t["Status"]["State"] == "running" and t["Spec"]["ContainerSpec"] == current]
            want = s["Spec"]["Mode"]["Replicated"]["Replicas"]
            if len(running) != want or len(mine) != want:
                return f"{name}: {len(running)} of {want} task(s) of its definition running, {len(mine)} meant to run"
        return ""

    def _services(self) -> list[dict]:
        return self.api.services(filters={"label": self.label})

    def teardown(self) -> None:
        remove_all(self.api, self.label)


def _update_started(service: dict) -> str | None:
    return (service.get("UpdateStatus") or {}).get("StartedAt")


def remove_all(api, label: str) -> None:
    """Remove the services, secrets, configs and networks carrying `label`; return once their tasks are gone
    and the networks removed, so that the next run does not share the nodes with this one's leftovers."""
    import docker
    ids = {s["ID"] for s in api.services(filters={"label": label})}
    for sid in ids:
        _ignore_missing(api.remove_service, sid)
    deadline = time.monotonic() + TEARDOWN_TIMEOUT_S
    while any(t["ServiceID"] in ids for t in api.tasks()):
        _until(deadline, f"the tasks of {label} to go")
    for s in api.secrets(filters={"label": label}):
        _ignore_missing(api.remove_secret, s["ID"])
    for c in api.configs(filters={"label": label}):
        _ignore_missing(api.remove_config, c["ID"])
    for n in api.networks(filters={"label": label}):
        while True:
            try:
                _ignore_missing(api.remove_network, n["Id"])
                break
            except docker.errors.APIError:          # still in use by a task being shut down
                _until(deadline, f"network {n['Name']} to be removable")


def _until(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise RuntimeError(f"bench: cleanup: timed out waiting for {what}")
    time.sleep(0.25)


def _ignore_missing(fn, *args) -> None:
    import docker
    try:
        fn(*args)
    except docker.errors.NotFound:
        pass


SWARM_TOOLS = {"gen": SwarmGen, "gen0": SwarmGenNoWindow, "stack": Stack}


def make_tool(name: str, project: str, ctx) -> Tool:
    return SWARM_TOOLS[name](project, ctx.work, ctx.swarm_api, ctx.lab)


def change(tool: Tool, ctx) -> dict[str, float]:
    """10 services on the lab, then one changed (timed), then that change rolled back (timed)."""
    ctx.ports += 1                  # each run its own host port: the last run's tasks may still hold theirs
    port = PORT_BASE + ctx.ports
    spec_dir = ctx.work / "swarm" / tool.project
    v1 = swarmspecs.write(spec_dir / "v1", "bench", swarmspecs.services(port))
    v2 = swarmspecs.write(spec_dir / "v2", "bench", swarmspecs.services(port, changed=swarmspecs.CHANGED))
    tool.deploy(v1)
    n = swarmspecs.N
    return {f"swarm_change{n}": _timed(tool.deploy, v2), f"swarm_rollback{n}": _timed(tool.rollback, v1)}


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started
