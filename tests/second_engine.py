"""A second Docker engine on this machine, started by a test and removed after it (the target of
`gen copy`): its own dockerd with its own socket, data root, exec root, pidfile, config file and
cgroup parent, in a network namespace of its own (`unshare --net`), so its networks and addresses
never meet the main engine's; no default bridge and no iptables rules. It starts its own containerd
under its exec root (the main engine manages its own, so no shared /run/containerd socket exists).

    with second_engine() as d2:           # d2.host: "unix:///tmp/gen-d2-.../docker.sock"
        ...

At the end: every container it runs is removed, dockerd gets SIGTERM (SIGKILL after 30 s) by its pid,
a containerd it left behind is killed by the pid in its pidfile, mounts under its directories are
undone, and the directories deleted. Needs root, `unshare` and `dockerd` (as the main engine does).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STARTUP_S = 60


@dataclass
class SecondEngine:
    base: Path
    process: subprocess.Popen

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def client(self):
        import docker
        return docker.APIClient(base_url=self.host, version="1.41", timeout=120)


@contextlib.contextmanager
def second_engine():
    # Short paths: containerd's socket under the exec root must fit a unix socket name (108 bytes).
    base = Path(tempfile.mkdtemp(prefix="gen-d2-", dir="/tmp"))
    config = base / "daemon.json"
    config.write_text(json.dumps({}))        # never /etc/docker/daemon.json: its settings are the main engine's
    log = open(base / "dockerd.log", "ab")
    process = subprocess.Popen(
        ["unshare", "--net", "--", "dockerd", "--config-file", str(config), "--data-root", str(base / "root"),
         "--exec-root", str(base / "exec"), "--pidfile", str(base / "dockerd.pid"), "-H", f"unix://{base / 'docker.sock'}",
         "--bridge", "none", "--iptables=false", "--ip-masq=false", "--cgroup-parent", f"/{base.name}",
         "--storage-driver", "overlay2"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": "/root"})
    log.close()
    engine = SecondEngine(base, process)
    try:
        _wait_until_up(engine)
        yield engine
    finally:
        _stop(engine)


def _wait_until_up(engine: SecondEngine) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if engine.process.poll() is not None:
            break
        if engine.socket.exists():
            with contextlib.suppress(Exception):
                engine.client().ping()
                return
        time.sleep(0.2)
    tail = (engine.base / "dockerd.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the second dockerd did not come up (exit {engine.process.poll()}):\n{tail}")


def _stop(engine: SecondEngine) -> None:
    with contextlib.suppress(Exception):
        api = engine.client()
        for c in api.containers(all=True):
            api.remove_container(c["Id"], force=True)
    if engine.process.poll() is None:
        engine.process.send_signal(signal.SIGTERM)
        try:
            engine.process.wait(30)
        except subprocess.TimeoutExpired:
            engine.process.kill()
            engine.process.wait(10)
    _kill_leftover_containerd(engine.base / "exec" / "containerd" / "containerd.pid")
    _unmount_below(engine.base)
    shutil.rmtree(engine.base, ignore_errors=True)
    _remove_cgroups(engine.base.name)


def _kill_leftover_containerd(pidfile: Path) -> None:
    """dockerd stops the containerd it started when it exits cleanly; after a SIGKILL it may not."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(pidfile.read_text().strip())
        if str(pidfile.parent.parent) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ") \
                or "containerd" in Path(f"/proc/{pid}/comm").read_text():
            os.kill(pid, signal.SIGKILL)


def _unmount_below(base: Path) -> None:
    """Mounts a stopped dockerd may leave (overlay layers, its exec root's shm): deepest first."""
    with contextlib.suppress(OSError):
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for target in sorted((m for m in mounts if m.startswith(f"{base}/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _remove_cgroups(parent: str) -> None:
    """The (now empty) cgroup trees named by --cgroup-parent, in every hierarchy: deepest first."""
    for top in Path("/sys/fs/cgroup").glob(f"*/{parent}"):
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


# -- the same engine over ssh:// ----------------------------------------------------------------------------
@contextlib.contextmanager
def over_ssh(engine: SecondEngine, port: int):
    """An sshd on 127.0.0.1:port whose sessions reach `engine` (SetEnv DOCKER_HOST), and a directory
    with an `ssh` that uses a client configuration of its own (key, no host key prompts): put it
    first on PATH, and ssh://root@127.0.0.1:port is that engine, as the docker CLI would reach it.
    Yields that directory; the sshd is killed by its pid at the end. Needs /usr/sbin/sshd."""
    base = engine.base / "ssh"
    base.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "id")], check=True)
    shutil.copy(base / "id.pub", base / "authorized_keys")
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"SetEnv DOCKER_HOST={engine.host}\n")
    (base / "ssh_config").write_text(
        f"Host *\n  IdentityFile {base / 'id'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n")
    shim = base / "bin"
    shim.mkdir()
    (shim / "ssh").write_text(f"#!/bin/sh\nexec /usr/bin/ssh -F {base / 'ssh_config'} \"$@\"\n")
    os.chmod(shim / "ssh", 0o755)
    os.makedirs("/run/sshd", exist_ok=True)          # sshd's privilege separation directory
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(base / "sshd_config"), "-E", str(base / "sshd.log")],
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sshd.poll() is None and not (base / "sshd.pid").exists():
            time.sleep(0.05)
        if sshd.poll() is not None:
            raise RuntimeError(f"sshd did not start: {(base / 'sshd.log').read_text(errors='replace')[-1000:]}")
        yield shim
    finally:
        sshd.kill()
        sshd.wait(10)
