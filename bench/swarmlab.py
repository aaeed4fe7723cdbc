"""The bench's own Swarm lab: scripts/swarm-lab on a free slot, up for the Swarm cases and down at the end.

Slots are leased the way tests/swarm_lab.py leases them (an flock on $GEN_SWARM_LAB_DIR/slotK.lease, slots
1-9; slot 0 is left to `just swarm-lab up`), so the bench and concurrent test sessions never share a lab. The
script starts and stops only what it started, by pid. lab.json (written last by `up`) says where the manager's
socket is; the nodes already have gen-test/busybox:1 (copied in at bring-up), so nothing is pulled.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "swarm-lab"
LAB_ROOT = Path(os.environ.get("GEN_SWARM_LAB_DIR", "/tmp/gen-swarm-lab"))
UNABLE = 3          # the script's exit code for "this machine cannot run a lab"
UP_TIMEOUT_S = 300


class LabUnavailable(Exception):
    pass


@dataclass
class Lab:
    slot: int
    manager_host: str           # DOCKER_HOST of the manager
    node_ips: list[str]         # host-mode published ports answer there, from this namespace
    bringup_s: float            # as scripts/swarm-lab measured it
    wall_s: float               # `up` as the bench waited for it
    lease: object = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.manager_host}

    def client(self) -> docker.APIClient:
        return docker.APIClient(base_url=self.manager_host, version="1.41", timeout=120)

    def down(self) -> str:
        """Take the lab down and free the slot; '' when all went well, else the script's complaint."""
        try:
            p = _script(self.slot, "down")
            return "" if p.returncode == 0 else f"scripts/swarm-lab down (slot {self.slot}) exited " \
                                                f"{p.returncode}: {p.stderr.strip()[-400:]}"
        finally:
            if self.lease is not None:
                self.lease.close()
                self.lease = None


def _script(slot: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEN_SWARM_LAB_DIR": str(LAB_ROOT), "GEN_SWARM_LAB_SLOT": str(slot)}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL, check=False)


def _lease():
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    for slot in range(1, 10):
        lease = open(LAB_ROOT / f"slot{slot}.lease", "w")  # noqa: SIM115 - held until the lab is down
        try:
            fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lease.close()
            continue
        return slot, lease
    raise LabUnavailable(f"all Swarm lab slots are in use (lock files {LAB_ROOT}/slot*.lease)")


def up() -> Lab:
    """A fresh lab on a free slot (what a killed run left there goes first). LabUnavailable says why not."""
    slot, lease = _lease()
    try:
        down = _script(slot, "down")
        started = time.perf_counter()
        p = _script(slot, "up", timeout=UP_TIMEOUT_S) if down.returncode == 0 else down
        if p.returncode != 0:
            _script(slot, "down")
            why = "cannot run here" if p.returncode == UNABLE else f"exit {p.returncode}"
            raise LabUnavailable(f"scripts/swarm-lab up (slot {slot}): {why}:\n{p.stderr.strip()[-1500:]}")
        info = json.loads((LAB_ROOT / f"slot{slot}" / "lab.json").read_text())
        manager = next(n for n in info["nodes"] if n["role"] == "manager")
        return Lab(slot, manager["host"], [n["ip"] for n in info["nodes"]], float(info["bringup_s"]),
                   time.perf_counter() - started, lease)
    except BaseException:
        lease.close()
        raise
