"""A real image registry on loopback for the tests (Debian's docker-registry, started by
scripts/registry on a free port), once per session. With CI=true a registry that does not start is a
failure, never a skip.

    def test_x(registry, deployment):
        ref = registry.push_new(deployment.docker, "app", "1")     # a fresh image, pushed, local copy removed
        mark = registry.mark()
        ...
        assert "GET manifests/1" not in registry.requests("gen-test/app-1234", since=mark)
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGE = os.environ.get("GEN_TEST_IMAGE", "gen-test/busybox:1")     # as tests.conftest (imported by it: no cycle)


@dataclass
class Registry:
    port: int
    dir: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.dir / "registry.log"

    def repo(self, name: str) -> str:
        """A repository of its own for one test: the registry is shared by the session."""
        return f"{self.host}/gen-test/{name}-{uuid.uuid4().hex[:8]}"

    def push(self, image_id: str, ref: str) -> str:
        """Tag image_id as ref, push it through gen's engine, drop the local tag; the pushed digest."""
        from gen.engine import connect
        repo, _, tag = ref.rpartition(":")
        engine = connect()
        engine.pin_image(image_id, repo, tag)
        try:
            return engine.push(ref, ref)
        finally:
            engine.unpin_image(ref)

    def push_new(self, docker_client, ref: str) -> tuple[str, str]:
        """A fresh image (its own ID: the test image with one commit on top), pushed as ref and then
        removed from the engine. Returns (image ID, repository digest "repo@sha256:...")."""
        box = docker_client.containers.create(IMAGE, ["true"], labels={"gen.test": "registry"})
        try:
            image = box.commit(changes=[f"LABEL gen.test.image={uuid.uuid4().hex}"])
        finally:
            box.remove(force=True)
        digest = self.push(image.id, ref)       # dropping its only tag dropped it; its digest too, here:
        try:
            docker_client.images.remove(image.id, force=True)
        except docker.errors.ImageNotFound:
            pass
        return image.id, digest

    def mark(self) -> int:
        """A position in the registry's access log (see manifest_requests)."""
        return self.log.stat().st_size

    def requests(self, repo_path: str, since: int = 0) -> list[str]:
        """What was asked of repository `repo_path` ("gen-test/app-1234") since a mark, as
        "GET manifests/1", "HEAD manifests/sha256:...", "GET blobs/sha256:...": how an engine pulled.
        (Docker 20.10 keeps the manifests it pulled: pulling a known digest again may fetch only blobs.)"""
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        prefix = f"/v2/{repo_path}/"
        found = []
        for line in text.splitlines():
            for method in ("GET", "HEAD"):
                if f'"{method} {prefix}' in line:
                    found.append(f"{method} " + line.split(f'"{method} {prefix}', 1)[1].split(" ", 1)[0])
        return found

    def delete_image(self, repo_path: str, digest: str, image_id: str) -> None:
        """Delete a pushed image from the registry (its manifest and its config blob, so that an engine
        that kept the manifest cannot pull it either)."""
        for what in (f"manifests/{digest}", f"blobs/{image_id}"):
            request = urllib.request.Request(f"http://{self.host}/v2/{repo_path}/{what}", method="DELETE")
            with urllib.request.urlopen(request, timeout=10) as r:
                assert r.status == 202, (what, r.status)

    def tags(self, repo_path: str) -> list[str]:
        with urllib.request.urlopen(f"http://{self.host}/v2/{repo_path}/tags/list", timeout=10) as r:
            return json.load(r).get("tags") or []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _failed(message: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def registry(docker_client):
    port = _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="gen-test-registry-"))
    script = [str(ROOT / "scripts" / "registry")]
    env = {**os.environ, "TMPDIR": str(tmp)}
    try:
        up = subprocess.run([*script, "up", str(port)], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        _failed(f"the test registry did not start: {e}")
    if up.returncode != 0:
        _failed(f"the test registry did not start (scripts/setup installs docker-registry): {up.stderr.strip()}")
    try:
        yield Registry(port, tmp / f"gen-registry-{port}")
    finally:
        subprocess.run([*script, "down", str(port)], capture_output=True, timeout=60, env=env)
        shutil.rmtree(tmp, ignore_errors=True)
