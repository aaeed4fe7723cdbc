"""Images at `gen build` (gen.state.images, gen.state.buildcontext): pulled from a real registry on
loopback (tests/registry.py) and pinned by digest, built from a context and reused while its inputs
are unchanged; activation pulls a missing image by its recorded digest, never by its tag."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gen.errors import SpecError
from gen.state.buildcontext import build_inputs, compile_patterns, context_entries, read_dockerignore
from gen.state.identity import state_id
from gen.state.pins import pin_repo, pin_tag
from tests.conftest import sleeper

# -- .dockerignore, as Docker reads it (pure) --------------------------------------------------------
TREE = ["a.log", "keep.log", "src/main.py", "src/debug.log", "src/deep/x.log", "node_modules/pkg/index.js",
        "build/out.bin", "build/keep.txt", "docs/guide.md", "docs/README.md", "a/b/c.txt", "a/c.txt",
        "secret.txt", "tmp/t", "x.go", "sub/y.go"]
IGNORES = [
    (["*.log"], {"a.log", "keep.log"}),
    (["**/*.log"], {"a.log", "keep.log", "src/debug.log", "src/deep/x.log"}),
    (["*.log", "!keep.log"], {"a.log"}),
    (["node_modules"], {"node_modules/pkg/index.js"}),
    (["build", "!build/keep.txt"], {"build/out.bin"}),
    (["docs/*.md", "!docs/README.md"], {"docs/guide.md"}),
    (["*", "!src"], set(TREE) - {"src/main.py", "src/debug.log", "src/deep/x.log"}),
    (["a/b"], {"a/b/c.txt"}),
    (["/secret.txt", "./tmp/"], {"secret.txt", "tmp/t"}),
    (["src/**/*.log"], {"src/debug.log", "src/deep/x.log"}),
    (["**.go"], {"x.go", "sub/y.go"}),
    (["?.log"], {"a.log"}),
    (["[ab].log"], {"a.log"}),
    ([], set()),
]


def make_tree(root: Path, files=TREE) -> None:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)


def included_files(root: Path, patterns: list[str]) -> set[str]:
    return {rel for rel, mode, _ in context_entries(root, compile_patterns(read_dockerignore("\n".join(patterns))))
            if (root / rel).is_file() and not (root / rel).is_symlink()}


@pytest.mark.parametrize("patterns, excluded", IGNORES)
def test_dockerignore_excludes_what_docker_excludes(tmp_path, patterns, excluded):
    make_tree(tmp_path)
    assert included_files(tmp_path, patterns) == set(TREE) - excluded


@pytest.mark.parametrize("patterns, excluded", [case for case in IGNORES if case[0] != ["**.go"]])
def test_dockerignore_agrees_with_the_docker_sdk_that_sends_the_context(tmp_path, patterns, excluded):
    """gen.engine.docker builds through the SDK, which selects the files it sends with its own
    matcher: for these patterns both select the same files (`**.go`, a suffix in Docker, is not one)."""
    from docker.utils.build import exclude_paths
    make_tree(tmp_path)
    sent = {p for p in exclude_paths(str(tmp_path), list(patterns)) if (tmp_path / p).is_file()}
    assert included_files(tmp_path, patterns) == sent


def test_dockerignore_lines_are_cleaned_as_docker_cleans_them():
    text = "\ufeff# a comment\n\n  *.log  \n! keep.log\n/abs/\n./a/../b\n//c\n"
    assert read_dockerignore(text) == ["*.log", "!keep.log", "abs", "b", "c"]


# -- build inputs (pure) ---------------------------------------------------------------------------
def context(tmp_path: Path) -> dict:
    ctx = tmp_path / "ctx"
    make_tree(ctx, ["app.txt", "ignored.txt", "Dockerfile", "lib/x.txt"])
    (ctx / ".dockerignore").write_text("ignored.txt\n")
    return {"context": str(ctx), "dockerfile": "Dockerfile", "args": {}, "target": None, "labels": {}}


def test_build_inputs_address_what_the_builder_receives(tmp_path):
    build = context(tmp_path)
    ctx = Path(build["context"])
    first = build_inputs(build, None, "services.web.build")
    assert build_inputs(dict(build), None, "services.web.build") == first
    (ctx / "ignored.txt").write_text("changed")
    assert build_inputs(build, None, "k") == first, "a .dockerignore'd file is no input"
    changes = {
        "content": lambda: (ctx / "lib/x.txt").write_text("changed"),
        "mode": lambda: os.chmod(ctx / "app.txt", 0o755),
        "new file": lambda: (ctx / "new.txt").write_text("x"),
        "symlink": lambda: os.symlink("app.txt", ctx / "link"),
        "dockerfile": lambda: (ctx / "Dockerfile").write_text("FROM other\n"),
        "ignore file": lambda: (ctx / ".dockerignore").write_text("nothing\n"),
    }
    seen = {first}
    for what, change in changes.items():
        change()
        now = build_inputs(build, None, "k")
        assert now not in seen, f"{what} did not change the inputs"
        seen.add(now)
    for key, value in [("args", {"V": "1"}), ("target", "dev"), ("labels", {"a": "b"})]:
        assert build_inputs({**build, key: value}, None, "k") not in seen, key
    assert build_inputs(build, "linux/arm64", "k") not in seen


def test_a_dockerfile_outside_the_context_is_an_input(tmp_path):
    build = context(tmp_path)
    outside = tmp_path / "Dockerfile.web"
    outside.write_text("FROM a\n")
    build["dockerfile"] = "../Dockerfile.web"
    first = build_inputs(build, None, "k")
    outside.write_text("FROM b\n")
    assert build_inputs(build, None, "k") != first


def test_an_unreadable_context_or_dockerfile_names_the_key(tmp_path):
    build = context(tmp_path)
    with pytest.raises(SpecError) as e:
        build_inputs({**build, "context": str(tmp_path / "nope")}, None, "services.web.build")
    assert e.value.subject == "services.web.build.context"
    with pytest.raises(SpecError) as e:
        build_inputs({**build, "dockerfile": "Missing"}, None, "services.web.build")
    assert e.value.subject == "services.web.build.dockerfile"


# -- references (pure) --------------------------------------------------------------------------------
@pytest.mark.parametrize("ref, repo, tag", [
    ("redis", "redis", "latest"), ("redis:7", "redis", "7"), ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b", "latest"),
    ("127.0.0.1:5000/a/b:1", "127.0.0.1:5000/a/b", "1"), ("localhost:5000/x", "localhost:5000/x", "latest"),
])
def test_a_registry_port_is_not_a_tag(ref, repo, tag):
    from gen.state.images import split_tag
    assert split_tag(ref) == (repo, tag)


@pytest.mark.parametrize("ref, repo", [
    ("docker.io/library/redis:7", "redis"), ("library/redis", "redis"), ("redis@sha256:" + "0" * 64, "redis"),
    ("docker.io/bitnami/redis:7", "bitnami/redis"), ("ghcr.io/library/x:1", "ghcr.io/library/x"),
    ("127.0.0.1:5000/gen-test/app:1@sha256:" + "0" * 64, "127.0.0.1:5000/gen-test/app"),
])
def test_repositories_compare_as_the_engine_shows_them(ref, repo):
    from gen.state.images import familiar, repository
    assert familiar(repository(ref)) == repo


def test_pull_and_build_progress_are_lines_above_the_live_table():
    import io

    from rich.console import Console

    from gen.cli.progress import LiveTable
    out = io.StringIO()
    table = LiveTable(console=Console(file=out, force_terminal=True, width=120, color_system=None))
    table.progress("web", "pulling", "127.0.0.1:5000/app:1")
    table.progress("web", "built", "0123456789ab as shop-web")
    assert out.getvalue().splitlines() == ["  web pulling 127.0.0.1:5000/app:1", "  web built 0123456789ab as shop-web"]
    assert table.rows() == {}, "image lines are no rows of the activation's table"


# -- the engine: each distinct image is looked up once ---------------------------------------------
class Counting:
    """The real engine, with a count of the calls made to it."""

    def __init__(self, engine):
        self.engine, self.calls = engine, {}

    def __getattr__(self, name):
        method = getattr(self.engine, name)

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)
        return counted


def test_a_thousand_services_of_one_image_ask_the_engine_once(docker_client, tmp_path):
    from gen.api import Gen
    from gen.engine import connect
    spec = tmp_path / "gen.toml"
    spec.write_text('name = "many"\n' + "".join(sleeper(f"s{i}") for i in range(1000))
                    .replace("{image}", os.environ.get("GEN_TEST_IMAGE", "gen-test/busybox:1")))
    engine = Counting(connect())
    compiled = Gen(tmp_path / "state", engine=engine).compile(spec)
    assert len(compiled.services) == 1000
    assert engine.calls == {"image_info": 1}


# -- the registry: pulled at build, pinned by digest, pulled by digest at activation ---------------------
def service_object(d, compiled_hash: str | None = None, name: str = "app") -> dict:
    """The service object `name` of the manifest just built (from `gen build --json`'s hash)."""
    from store import Store
    store = Store(d.state / "store")
    return store.get(store.get(compiled_hash)["services"][name])


def build_json(d, spec, *args) -> tuple[dict, str]:
    run = d.gen("build", spec, "--json", *args)
    assert run.code == 0, run.err
    return json.loads(run.out), run.err


def running_images(d) -> dict[str, str]:
    return {c.labels["gen.service"]: c.attrs["Image"] for c in d.containers(all=False)}


def remove_images(docker_client, *image_ids: str) -> None:
    for image_id in image_ids:
        try:
            docker_client.images.remove(image_id, force=True)
        except Exception:      # noqa: BLE001 - already gone
            pass


def test_build_pulls_by_tag_and_pins_the_digest_that_activation_pulls_again(registry, deployment):
    d = deployment
    repo = registry.repo("app")
    repo_path = repo.split("/", 1)[1]
    ref = f"{repo}:1"
    first, first_digest = registry.push_new(d.docker, ref)
    second = None
    try:
        spec = d.spec(sleeper("app").replace("{image}", ref))
        built, err = build_json(d, spec)
        assert "pulling" in err and ref in err
        obj = service_object(d, built["hash"])
        assert (obj["image_id"], obj["image_digest"]) == (first, first_digest)
        assert d.gen("switch", spec).code == 0
        assert running_images(d) == {"app": first}

        # The tag moves in the registry: a plain build keeps the image it has; --pull always follows the tag.
        second, second_digest = registry.push_new(d.docker, ref)
        d.docker.images.get(first).tag(*ref.rsplit(":", 1))    # here, the tag still names the first image
        assert build_json(d, spec)[0]["hash"] == built["hash"]
        moved, err = build_json(d, spec, "--pull", "always")
        assert moved["hash"] != built["hash"] and "pulling" in err
        assert service_object(d, moved["hash"])["image_digest"] == second_digest
        switched = d.gen("switch", spec, "--pull", "always", "--json")
        assert switched.code == 0 and json.loads(switched.out)["hash"] == moved["hash"], switched.err
        assert running_images(d) == {"app": second}

        # The first image disappears (a prune, another host): rolling back pulls exactly its digest.
        remove_images(d.docker, first)
        mark = registry.mark()
        rolled = d.gen("rollback", "-p", d.profile)
        assert rolled.code == 0, rolled.err
        assert running_images(d) == {"app": first}
        asked = registry.requests(repo_path, since=mark)
        assert f"GET blobs/{first}" in asked, asked                       # the first image came back ...
        assert not [r for r in asked if r.endswith("manifests/1")], asked   # ... and the tag was never asked
        assert f"pulling    {first_digest}" in rolled.err
    finally:
        d.cleanup()
        remove_images(d.docker, first, *([second] if second else []))


def test_an_image_that_cannot_be_pulled_fails_the_activation_before_anything_running_is_touched(registry, deployment):
    d = deployment
    repo = registry.repo("gone")
    ref = f"{repo}:1"
    first, first_digest = registry.push_new(d.docker, ref)
    second, _ = registry.push_new(d.docker, ref)
    try:
        spec = d.spec(sleeper("app").replace("{image}", f"{repo}@{first_digest.split('@')[1]}"))
        assert d.gen("switch", spec).code == 0                                 # generation 1: the first image
        assert d.gen("switch", d.spec(sleeper("app").replace("{image}", ref))).code == 0   # 2: the tag (second)
        before = {c.id: c.status for c in d.containers()}
        remove_images(d.docker, first)
        registry.delete_image(repo.split("/", 1)[1], first_digest.split("@")[1], first)
        failed = d.gen("rollback", "-p", d.profile)
        assert failed.code == 2 and f"cannot pull {first_digest}" in failed.err, failed.err
        assert {c.id: c.status for c in d.containers()} == before
        assert running_images(d) == {"app": second}
    finally:
        d.cleanup()
        remove_images(d.docker, first, second)


def test_pull_never_refuses_an_absent_image_naming_the_key_and_writes_nothing(registry, deployment):
    d = deployment
    ref = f"{registry.repo('never')}:1"
    image, _ = registry.push_new(d.docker, ref)
    try:
        spec = d.spec(sleeper("app").replace("{image}", ref))
        run = d.gen("build", spec, "--pull", "never")
        assert run.code == 1 and "services.app.image" in run.err and ref in run.err, run.err
        in_spec = d.spec(sleeper("app", 'pull_policy = "never"').replace("{image}", ref))
        run = d.gen("build", in_spec)
        assert run.code == 1 and "services.app.image" in run.err, run.err
        assert not (d.state / "store").exists() or not any((d.state / "store").rglob("*.*"))
        assert d.docker.images.list(name=ref.rpartition(":")[0]) == []
    finally:
        remove_images(d.docker, image)


def test_a_reference_the_registry_does_not_have_is_exit_1_naming_the_key(registry, deployment):
    d = deployment
    run = d.gen("build", d.spec(sleeper("app").replace("{image}", f"{registry.repo('missing')}:1")))
    assert run.code == 1 and "services.app.image" in run.err and "cannot pull" in run.err, run.err


# -- build: content-addressed, reused while the inputs are unchanged ----------------------------------------
BUILT = """
[services.{name}]
build = "{context}"
command = ["sleep", "3600"]
stop_grace = "0s"
{extra}
"""


def built(name: str, context: Path, extra: str = "") -> str:
    return BUILT.format(name=name, context=context, extra=extra)


def build_context(d, name: str = "ctx", dockerfile: str = "FROM {image}\nCOPY app.txt /app.txt\n") -> Path:
    ctx = d.dir / name
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile.replace("{image}", d.image))
    (ctx / "app.txt").write_text("one\n")
    (ctx / "notes.txt").write_text("not sent\n")
    (ctx / ".dockerignore").write_text("notes.txt\n")
    return ctx


def built_images(d) -> list:
    """Every image built for this test's profile (they carry gen's build label)."""
    return [i for i in d.docker.images.list(filters={"label": "gen.build.inputs"})
            if any(t.startswith(f"{d.profile}-") for t in i.tags)]


def test_a_build_is_reused_while_its_inputs_are_unchanged(deployment):
    d = deployment
    ctx = build_context(d)
    spec = d.spec(built("web", ctx))
    made: set[str] = set()
    try:
        first, err = build_json(d, spec)
        assert "building" in err and "COPY app.txt /app.txt" in err
        image = d.docker.images.get(f"{d.profile}-web:latest")
        made.add(image.id)
        obj = service_object(d, first["hash"], "web")
        assert obj["image_id"] == image.id and "image_digest" not in obj
        assert "gen.build.inputs" in image.labels
        assert f"{pin_repo(d.profile, state_id(d.state))}:{pin_tag(image.id)}" in image.tags, "kept from a prune"

        again, err = build_json(d, spec)                     # unchanged: no build at all
        assert again["hash"] == first["hash"] and "building" not in err and "reused" in err
        (ctx / "notes.txt").write_text("changed, but .dockerignore'd\n")
        ignored, err = build_json(d, spec)
        assert ignored["hash"] == first["hash"] and "building" not in err
        assert d.docker.images.get(image.id).attrs["Created"] == image.attrs["Created"]

        (ctx / "app.txt").write_text("two\n")                 # a file the builder receives
        changed, err = build_json(d, spec)
        assert changed["hash"] != first["hash"] and "building" in err
        rebuilt = service_object(d, changed["hash"], "web")["image_id"]
        made.add(rebuilt)
        assert d.docker.images.get(f"{d.profile}-web:latest").id == rebuilt, "the tag follows the latest build"

        _, err = build_json(d, spec, "--rebuild")           # --rebuild builds whatever exists
        assert "building" in err

        assert d.gen("switch", spec).code == 0
        (box,) = d.containers(all=False)
        assert box.attrs["Image"] == rebuilt
        assert box.exec_run(["cat", "/app.txt"]).output == b"two\n"
    finally:
        d.cleanup()
        remove_images(d.docker, *made, *(i.id for i in built_images(d)))


def test_a_failing_build_is_exit_1_naming_the_service_and_step_and_writes_nothing(deployment):
    d = deployment
    good = build_context(d, "good")
    marker = f"gen-test-{d.profile}"
    bad = build_context(d, "bad", f"FROM {{image}}\nRUN echo {marker}\nRUN exit 3\n")
    spec = d.spec(built("a_first", good) + built("b_fails", bad))
    before = sorted(d.state.rglob("*"))         # only the fixture's `gen warm` setting
    try:
        run = d.gen("build", spec)
        assert run.code == 1, run.err
        assert "services.b_fails.build" in run.err and "Step 3/4 : RUN exit 3" in run.err, run.err
        assert run.out == ""
        assert sorted(d.state.rglob("*")) == before, "nothing written to the state directory"
    finally:
        remove_images(d.docker, *(i.id for i in built_images(d)))
        # The builder keeps the layers of the steps that passed (its cache): they are this test's too.
        remove_images(d.docker, *(i.id for i in d.docker.images.list(all=True, filters={"dangling": True})
                                  if marker in str(i.attrs.get("ContainerConfig", {}).get("Cmd"))))


def test_build_output_goes_to_stderr_and_stdout_keeps_only_the_hash(deployment):
    d = deployment
    spec = d.spec(built("web", build_context(d)))
    try:
        run = d.gen("build", spec)
        assert run.code == 0 and "building" in run.err
        assert run.out.splitlines() == [run.out.strip()] and len(run.out.strip()) == 64
        quiet = d.gen("build", spec, "--rebuild", "--quiet")
        assert quiet.code == 0 and "building" not in quiet.err and quiet.out == run.out
    finally:
        remove_images(d.docker, *(i.id for i in built_images(d)))


def test_compose_profiles_are_chosen_with_their_own_option(deployment, monkeypatch):
    d = deployment
    spec = d.spec(sleeper("app") + sleeper("debug", 'profiles = ["debug"]'))
    assert set(build_json(d, spec)[0]["services"]) == {"app"}
    assert set(build_json(d, spec, "--compose-profile", "debug")[0]["services"]) == {"app", "debug"}
    compose = d.dir / "compose.yaml"
    compose.write_text(f"name: {d.profile}\nservices:\n  app: {{image: '{d.image}'}}\n"
                       f"  debug: {{image: '{d.image}', profiles: [debug]}}\n"
                       f"  tools: {{image: '{d.image}', profiles: [tools]}}\n")
    monkeypatch.setenv("COMPOSE_PROFILES", "tools")
    assert set(build_json(d, compose)[0]["services"]) == {"app", "tools"}
    assert set(build_json(d, compose, "--compose-profile", "debug")[0]["services"]) == {"app", "debug"}
