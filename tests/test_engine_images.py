"""The engine boundary's image verbs on the real engine: build_image (progress, the failing step, the
build labels that images_labelled finds), image_digests, and pull's error path (a registry that does
not answer). Pulls and pushes through a live registry are tested with it (tests/test_images.py). The
stream reading (gen.engine.dockerstream) and the memory engine's images get tests without Docker."""
from __future__ import annotations

import uuid

import pytest

from gen.engine.dockerstream import BuildLog, TransferLog, split_reference
from gen.engine.memory import MemoryEngine
from gen.errors import BuildFailed, EngineError, ImageMissing


@pytest.fixture
def engine(docker_client):
    from gen.engine.docker import DockerEngine
    return DockerEngine.from_env()


@pytest.fixture
def tag(docker_client):
    """A unique tag for a test's build; the image is removed afterwards."""
    name = f"gen-test/build-{uuid.uuid4().hex[:10]}:1"
    yield name
    for image in docker_client.images.list(filters={"reference": name}):
        docker_client.images.remove(image.id, force=True)


def context(tmp_path, dockerfile: str, **files: str) -> str:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return str(tmp_path)


def test_build_image_shows_progress_tags_labels_and_passes_args(engine, docker_client, tmp_path, tag):
    ctx = context(tmp_path, "FROM gen-test/busybox:1\nARG GREETING\nCOPY hello.txt /hello.txt\n"
                            "RUN cat /hello.txt > /copied && echo \"$GREETING\" >> /copied\n", **{"hello.txt": "hello\n"})
    lines: list[str] = []
    marker = uuid.uuid4().hex
    image = engine.build_image(ctx, "Dockerfile", tag, {"GREETING": "hi"}, None, {"gen.test": marker},
                               "service web", lines.append)
    assert image.startswith("sha256:") and engine.image_id(tag, "t") == image
    steps = [line for line in lines if line.startswith("Step ")]     # Docker adds a LABEL step for `labels`
    assert steps[0] == f"Step 1/{len(steps)} : FROM gen-test/busybox:1" and f"Step 4/{len(steps)} : RUN" in steps[3]
    assert engine.images_labelled("gen.test", marker) == [image]
    assert engine.image_digests(image) == [], "built here, never pushed: no repository digest"
    out = docker_client.containers.run(tag, ["cat", "/copied"], remove=True).decode()
    assert out == "hello\nhi\n"


def test_a_failing_step_is_named(engine, docker_client, tmp_path, tag):
    ctx = context(tmp_path, "FROM gen-test/busybox:1\nRUN exit 3\nRUN true\n")     # no layer left behind
    with pytest.raises(BuildFailed) as e:
        engine.build_image(ctx, "Dockerfile", tag, {}, None, {}, "service web")
    assert e.value.subject == "service web" and e.value.step == "Step 2/3 : RUN exit 3"
    assert "returned a non-zero code: 3" in e.value.reason and "\n" not in e.value.reason
    assert not docker_client.images.list(filters={"reference": tag}), "nothing is tagged"


def test_a_missing_dockerfile_fails_and_a_target_stops_at_its_stage(engine, tmp_path, tag):
    with pytest.raises(BuildFailed, match="service web"):
        engine.build_image(str(tmp_path), "Dockerfile.missing", tag, {}, None, {}, "service web")
    ctx = context(tmp_path, "FROM gen-test/busybox:1 AS base\nRUN true\nFROM base\nRUN false\n")
    image = engine.build_image(ctx, "Dockerfile", tag, {}, "base", {}, "service web")
    assert engine.image_id(tag, "t") == image, "target=base stops before the failing stage"


def test_pull_from_a_registry_that_does_not_answer_names_the_subject(engine):
    with pytest.raises(EngineError) as e:
        engine.pull("127.0.0.1:1/nothing:1", "service web", lambda line: None)
    assert e.value.subject == "service web"
    assert "127.0.0.1:1/nothing:1" in e.value.reason and "connection refused" in e.value.reason


def test_digests_of_an_absent_image(engine):
    with pytest.raises(ImageMissing):
        engine.image_digests("sha256:" + "0" * 64)


# -- reading the streams ------------------------------------------------------------------------
def test_transfer_progress_is_one_line_per_status_change():
    lines: list[str] = []
    log = TransferLog(lines.append)
    for event in [{"status": "Pulling from app", "id": "1"}, {"status": "Pulling fs layer", "id": "a"},
                  {"status": "Downloading", "id": "a", "progressDetail": {"current": 1}},
                  {"status": "Downloading", "id": "a", "progressDetail": {"current": 2}},
                  {"status": "Pull complete", "id": "a"}, {"status": "Digest: sha256:d"},
                  {"status": "1: digest: sha256:d size: 527", "aux": {"Tag": "1", "Digest": "sha256:d", "Size": 527}}]:
        log.read(event)
    assert lines == ["1: Pulling from app", "a: Pulling fs layer", "a: Downloading", "a: Pull complete",
                     "Digest: sha256:d", "1: digest: sha256:d size: 527"]
    assert log.digest == "sha256:d" and log.error is None
    log.read({"errorDetail": {"message": "manifest unknown\nmore"}, "error": "manifest unknown"})
    assert log.error == "manifest unknown"


def test_build_log_keeps_the_last_step_and_the_image_id():
    log = BuildLog(None)
    for event in [{"stream": "Step 1/2 : FROM x\n"}, {"stream": " ---> abc\n"}, {"stream": "Step 2/2 : RUN make\n"},
                  {"aux": {"ID": "sha256:img"}}]:
        log.read(event)
    assert (log.step, log.image_id, log.error) == ("Step 2/2 : RUN make", "sha256:img", None)


@pytest.mark.parametrize("ref, parts", [
    ("app:1", ("app", "1")), ("app", ("app", None)), ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", None)),
    ("127.0.0.1:5000/app:2", ("127.0.0.1:5000/app", "2")), ("app@sha256:ab", ("app", "sha256:ab")),
])
def test_split_reference(ref, parts):
    assert split_reference(ref) == parts


# -- the memory engine's images -----------------------------------------------------------------
def test_memory_registry_pull_push_and_digests():
    engine = MemoryEngine({"local/app:1": "sha256:one"})
    with pytest.raises(EngineError, match="service web: cannot pull reg/app:1: manifest unknown"):
        engine.pull("reg/app:1", "service web")
    pushed = engine.push("local/app:1", "service web")
    assert pushed.startswith("local/app@sha256:") and engine.image_digests("sha256:one") == [pushed]
    by_digest = engine.publish("reg/app:2", "sha256:two")
    assert engine.pull(by_digest, "service web") == "sha256:two"
    assert engine.image_id(by_digest, "s") == "sha256:two" and "reg/app:2" not in engine.tags, \
        "a pull by digest tags nothing"
    engine.registry_error = "connection refused"
    with pytest.raises(EngineError, match="connection refused"):
        engine.pull("reg/app:2", "service web")


def test_memory_builds_are_cached_by_input_and_fail_where_docker_would(tmp_path):
    engine = MemoryEngine({"gen-test/busybox:1": "sha256:base"})
    ctx = context(tmp_path, "FROM gen-test/busybox:1\nCOPY a /a\n", a="1")
    first = engine.build_image(ctx, "Dockerfile", "p-web", {}, None, {"gen.build": "k"}, "service web")
    assert engine.build_image(ctx, "Dockerfile", "p-web", {}, None, {"gen.build": "k"}, "service web") == first
    assert engine.tags["p-web:latest"] == first and engine.images_labelled("gen.build", "k") == [first]
    (tmp_path / "a").write_text("2")
    assert engine.build_image(ctx, "Dockerfile", "p-web", {}, None, {}, "service web") != first
    context(tmp_path, "FROM gen-test/busybox:1\nRUN false\n")
    with pytest.raises(BuildFailed) as e:
        engine.build_image(ctx, "Dockerfile", "p-web", {}, None, {}, "service web")
    assert e.value.step == "Step 2/2 : RUN false"
    context(tmp_path, "FROM nowhere/base:1\n")
    with pytest.raises(BuildFailed, match="pull access denied for nowhere/base"):
        engine.build_image(ctx, "Dockerfile", "p-web", {}, None, {}, "service web")


def test_an_untagged_build_returns_its_image_id(engine, docker_client, tmp_path):
    ctx = context(tmp_path, f"FROM gen-test/busybox:1\nRUN echo {uuid.uuid4().hex} > /marker\n")
    image = engine.build_image(ctx, "Dockerfile", "", {}, None, {}, "service web")
    try:
        assert docker_client.api.inspect_image(image)["RepoTags"] == []
    finally:
        docker_client.api.remove_image(image, force=True)
