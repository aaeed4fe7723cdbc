"""examples/compose-app on the real engine: a Compose file with a build, a migration job that runs
before its dependent starts (and again only when it changes), a container_name and two networks,
deployed, changed and rolled back by gen."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import free_port, http_get
from tests.differential import gen_network_names

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "compose-app"
V1, V2 = EXAMPLE / "compose.yaml", EXAMPLE / "compose-v2.yaml"
GREETING = "hello from compose-app (built by gen)"


@pytest.fixture
def app(deployment, monkeypatch):
    """The example under this test's profile, on a free port, with a container_name of its own."""
    d = deployment
    d.port = free_port()
    d.web_name = f"{d.profile}-web"
    monkeypatch.setenv("WEB_PORT", str(d.port))
    monkeypatch.setenv("WEB_CONTAINER", d.web_name)
    yield d
    d.cleanup()
    remove_built_images(d.docker, d.profile)


def remove_built_images(docker_client, profile: str) -> None:
    """The images gen built for this (test-unique) profile: tagged with its name, or labelled with it."""
    images = {i.id: i for i in docker_client.images.list()}
    images.update({i.id: i for i in docker_client.images.list(filters={"label": f"gen.profile={profile}"})})
    for image in images.values():
        mine = [t for t in image.tags if profile in t]
        if mine or image.labels.get("gen.profile") == profile:
            for ref in mine or [image.id]:
                docker_client.api.remove_image(ref, force=True, noprune=False)


def containers_of(d, service: str) -> list:
    return [c for c in d.containers() if c.labels.get("gen.service") == service]


def running(d, service: str):
    (c,) = [c for c in containers_of(d, service) if c.status == "running"]
    return c


def log(d) -> Counter:
    """What the jobs wrote to the shared volume, one line per run, as web serves it."""
    return Counter(http_get(d.port, "/data/log.txt").splitlines())


def networks_of(d, container, names: dict[str, str]) -> set[str]:
    container.reload()
    return {names.get(n, n) for n in container.attrs["NetworkSettings"]["Networks"]}


def reaches(container, url: str) -> bool:
    # `timeout`, not wget's -T: the test image's static busybox wget crashes with -T.
    code, _ = container.exec_run(["timeout", "10", "wget", "-q", "-O-", url])
    return code == 0


def test_compose_example_builds_migrates_once_per_change_and_rolls_back(app):
    d = app
    first = d.gen("switch", V1, "-p", d.profile)
    assert first.code == 0, first.err
    assert http_get(d.port, "/") == GREETING                      # web is the image built from ./web
    assert http_get(d.port, "/schema.txt") == "schema v1"         # copied at web's start: migrate had finished
    assert log(d) == Counter({"migrate v1": 1, "seed": 1})
    web = running(d, "web")
    assert web.name == d.web_name                                 # container_name honoured
    status = d.gen("status", "-p", d.profile)
    assert status.code == 0, status.out + status.err              # jobs that exited 0 are fine, not drift

    second = d.gen("switch", V2, "-p", d.profile)
    assert second.code == 0, second.err
    assert http_get(d.port, "/schema.txt") == "schema v2"         # the changed migration ran before the new web
    assert log(d) == Counter({"migrate v1": 1, "seed": 1, "migrate v2": 1})   # seed, unchanged, did not run
    new_web = running(d, "web")
    assert new_web.name == d.web_name and new_web.id != web.id
    assert [c.name for c in containers_of(d, "web")] == [d.web_name]          # the old one, renamed aside, is gone
    assert d.gen("status", "-p", d.profile).code == 0

    back = d.gen("rollback", "-p", d.profile)
    assert back.code == 0, back.err
    assert http_get(d.port, "/schema.txt") == "schema v1"         # v1's migration is a change again: it ran
    assert log(d) == Counter({"migrate v1": 2, "seed": 1, "migrate v2": 1})
    assert http_get(d.port, "/") == GREETING
    assert [c.name for c in containers_of(d, "web")] == [d.web_name]


def test_compose_example_keeps_db_off_the_frontend_network(app):
    from gen.spec.load import load_spec
    d = app
    assert d.gen("switch", V1, "-p", d.profile).code == 0
    names = {engine: logical for engine, logical in gen_network_names(d.profile, load_spec(V1)).items()}
    web, db, edge = running(d, "web"), running(d, "db"), running(d, "edge")
    assert networks_of(d, db, names) == {"backend"}
    assert networks_of(d, edge, names) == {"frontend"}
    assert networks_of(d, web, names) == {"frontend", "backend"}
    assert reaches(web, "http://db:5432/") and reaches(web, "http://edge:80/")
    assert not reaches(edge, "http://db:5432/")                   # no route, not even a name, across networks
    assert not reaches(db, "http://edge:80/")
