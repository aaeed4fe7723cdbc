"""Closures (issue 14): a generation's images kept in the store as `docker save` archives, one per image
ID (gen.state.closure, gen.state.archives). On the real engine: archive, `docker rmi -f`, restore and
run; rollback after the image is gone; gc frees the archive of a generation it deletes and keeps a kept
one's (a dry run shows the bytes); verify names a generation that could not be rolled back to today
and passes when its image is archived; a damaged archive is never loaded. The opt-in setting and the
engine verbs' stream reading get tests without Docker."""
from __future__ import annotations

import os
import time
import uuid

import pytest

from gen.api import Gen
from gen.engine.dockerarchive import LoadLog, Relay
from gen.engine.memory import MemoryEngine
from gen.errors import CorruptState, ImageMissing
from gen.state import closure
from gen.state.archives import ArchiveIndex
from gen.state.gc import collect
from gen.state.verify import verify
from store import BlobStore
from tests.conftest import IMAGE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def own_images(docker_client, tmp_path):
    """make(n) -> n images of this test's own (busybox and a file with a token: a layer of its own),
    tagged gen-test/closure-<token>:<i>; every one removed at the end, whatever loaded it again."""
    made: list[str] = []

    def make(n: int = 1) -> list[tuple[str, str]]:
        out = []
        for _ in range(n):
            token = uuid.uuid4().hex[:12]
            ctx = tmp_path / f"ctx-{token}"
            ctx.mkdir()
            (ctx / "token").write_text(token)
            (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY token /token\n")
            tag = f"gen-test/closure-{token}:1"
            image, _ = docker_client.images.build(path=str(ctx), tag=tag, rm=True)
            made.append(image.id)
            out.append((image.id, tag))
        return out
    yield make
    for image in made:
        for c in docker_client.containers.list(all=True, filters={"ancestor": image}):
            c.remove(force=True)
        try:
            docker_client.api.remove_image(image, force=True)
        except Exception:   # noqa: BLE001 - already gone
            pass


@pytest.fixture
def engine(docker_client):
    from gen.engine.docker import DockerEngine
    return DockerEngine.from_env()


def service(image: str, name: str = "app") -> str:
    return f'\n[services.{name}]\nimage = "{image}"\ncommand = ["sleep", "3600"]\nstop_grace = "0s"\n'


def rmi(docker_client, image: str) -> None:
    docker_client.api.remove_image(image, force=True)
    assert not docker_client.images.list(filters={"reference": image}) and not _present(docker_client, image)


def _present(docker_client, image: str) -> bool:
    try:
        docker_client.api.inspect_image(image)
        return True
    except Exception:   # noqa: BLE001 - docker.errors.ImageNotFound
        return False


def age(path_roots, seconds: float = 3600) -> None:
    """Date files back, as if written long before gc runs (the grace rule keeps fresh ones)."""
    t = time.time() - seconds
    for root in path_roots:
        for path in [root, *root.rglob("*")] if root.exists() else []:
            if path.is_file():
                os.utime(path, (t, t))


def running_image(d) -> set[str]:
    return {c.attrs["Image"] for c in d.containers() if c.status == "running"}


# -- on the engine -----------------------------------------------------------------------------------------
def test_archive_rmi_restore_and_run(deployment, docker_client, engine, own_images):
    d = deployment
    [(image, tag)] = own_images(1)
    g = Gen(d.state)
    compiled = g.build(d.spec(service(tag)))
    archived = closure.archive_images(d.state, g.store, engine, compiled)
    assert [a.image for a in archived] == [image] and archived[0].size > 0
    assert closure.archive_images(d.state, g.store, engine, compiled) == [], "archived once"
    blob = ArchiveIndex(d.state).get(image)
    assert blob == archived[0].blob and BlobStore(g.store.root).size_of(blob) == archived[0].size

    rmi(docker_client, image)
    seen: list[tuple[str, int, int]] = []
    assert closure.restore_missing(d.state, g.store, engine, compiled, lambda *p: seen.append(p)) == {}
    assert engine.has_image(image) and seen[-1][1] == seen[-1][2] == archived[0].size, "bytes reported"
    assert closure.restore_missing(d.state, g.store, engine, compiled) == {}, "nothing left to load"
    r = d.gen("switch", compiled.manifest_hash)
    assert r.code == 0, r.err
    assert running_image(d) == {image}


def test_rollback_after_the_image_is_gone_comes_from_the_archive(deployment, docker_client, engine, own_images):
    d = deployment
    [(image, tag)] = own_images(1)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    closure.enable(d.state, d.profile)
    g = Gen(d.state)
    one = g.resolve(g.generations(d.profile)[1][0].manifest)
    assert closure.enabled(d.state, d.profile)
    closure.archive_images(d.state, g.store, engine, one)        # what a switch of an enabled profile does
    assert d.gen("switch", d.spec(service(IMAGE))).code == 0
    rmi(docker_client, image)                                    # `docker image prune -a` would do the same
    assert closure.restore_missing(d.state, g.store, engine, one) == {}
    r = d.gen("rollback", "-p", d.profile)
    assert r.code == 0, r.err
    assert running_image(d) == {image}


def test_a_damaged_archive_is_never_loaded(deployment, docker_client, engine, own_images):
    d = deployment
    [(image, tag)] = own_images(1)
    g = Gen(d.state)
    compiled = g.build(d.spec(service(tag)))
    [a] = closure.archive_images(d.state, g.store, engine, compiled)
    rmi(docker_client, image)
    path = BlobStore(g.store.root).path_of(a.blob)
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:        # one byte of the last layer's content: Docker would not notice
        f.seek(a.size - 2048)
        byte = f.read(1)
        f.seek(a.size - 2048)
        f.write(bytes([byte[0] ^ 0xFF]))
    missing = closure.restore_missing(d.state, g.store, engine, compiled)
    assert list(missing) == [image] and "damaged" in missing[image]
    assert not engine.has_image(image), "not a byte reached the engine"


def test_gc_frees_the_archive_of_a_deleted_generation_and_keeps_a_kept_ones(deployment, docker_client, engine,
                                                                              own_images):
    d = deployment
    (old, old_tag), (new, new_tag) = own_images(2)
    g = Gen(d.state)
    blobs = BlobStore(g.store.root)
    for tag in (old_tag, new_tag):
        assert d.gen("switch", d.spec(service(tag))).code == 0
        closure.archive_images(d.state, g.store, engine, g.resolve(g.generations(d.profile)[1][-1].manifest))
    old_blob, new_blob = ArchiveIndex(d.state).get(old), ArchiveIndex(d.state).get(new)
    assert old_blob and new_blob and old_blob != new_blob
    assert d.gen("build", d.spec(service(new_tag))).code == 0      # the build root names the new one too
    age([g.store.root, d.state / "closure"])

    dry = collect(d.state, g.store, lambda: engine, d.profile, keep=1, dry_run=True)
    assert (dry.archives_deleted, dry.archive_bytes_freed) == (1, blobs.size_of(old_blob))
    assert dry.archives_live == 1 and blobs.has(old_blob) and ArchiveIndex(d.state).get(old) == old_blob
    assert dry.to_json()["archive_bytes_freed"] == blobs.size_of(old_blob)

    size = blobs.size_of(old_blob)
    report = collect(d.state, g.store, lambda: engine, d.profile, keep=1)
    assert (report.archives_deleted, report.archive_bytes_freed, report.archives_live) == (1, size, 1)
    assert not blobs.has(old_blob) and ArchiveIndex(d.state).get(old) is None
    assert blobs.has(new_blob) and ArchiveIndex(d.state).get(new) == new_blob
    again = collect(d.state, g.store, lambda: engine, d.profile, keep=1)
    assert again.archives_deleted == 0 and again.archives_live == 1


def test_gc_keeps_fresh_archives_and_frees_orphan_blobs(tmp_path):
    engine = MemoryEngine({IMAGE: "sha256:" + "a" * 64})
    g = Gen(tmp_path / "state", engine=engine)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "p"' + service(IMAGE))
    compiled = g.build(spec)
    [a] = closure.archive_images(g.state_dir, g.store, engine, compiled)
    orphan, _ = BlobStore(g.store.root).put_stream([b"left by a crash before its index entry"])
    fresh = collect(g.state_dir, g.store, lambda: engine)
    assert (fresh.archives_deleted, fresh.archives_recent, fresh.archives_live) == (0, 1, 1), "grace: the orphan is new"
    age([g.store.root])
    later = collect(g.state_dir, g.store, lambda: engine)
    assert (later.archives_deleted, later.archives_live) == (1, 1), "the build root's image stays archived"
    assert not BlobStore(g.store.root).has(orphan) and BlobStore(g.store.root).has(a.blob)


def test_verify_names_a_generation_that_could_not_be_rolled_back(deployment, docker_client, engine, own_images):
    d = deployment
    [(image, tag)] = own_images(1)
    g = Gen(d.state)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    assert d.gen("switch", d.spec(service(IMAGE))).code == 0
    ok = verify(d.state, g.store, lambda: engine)
    assert ok.ok and ok.images.checked and ok.images.images[image]["state"] == "present"

    one = g.resolve(g.generations(d.profile)[1][0].manifest)
    [a] = closure.archive_images(d.state, g.store, engine, one)
    rmi(docker_client, image)
    archived = verify(d.state, g.store, lambda: engine)
    assert archived.ok, archived.to_json()
    assert archived.images.images[image]["state"] == "archived" and archived.archives.ok == 1

    ArchiveIndex(d.state).remove(image)               # as if never archived
    gone = verify(d.state, g.store, lambda: engine)
    assert not gone.ok
    assert gone.images.unrestorable == [{"profile": d.profile, "generation": 1, "images": [image]}]
    assert gone.to_json()["images"]["unrestorable"][0]["generation"] == 1
    assert gone.images.images[IMAGE_ID(docker_client)]["state"] == "present", "generation 2 is fine"

    ArchiveIndex(d.state).record(image, a.blob)       # archived again, but the archive damaged
    path = BlobStore(g.store.root).path_of(a.blob)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    damaged = verify(d.state, g.store, lambda: engine)
    assert not damaged.ok and damaged.archives.corrupt == [a.blob]
    assert damaged.images.unrestorable[0]["images"] == [image] and "damaged" in damaged.images.images[image]["detail"]


def IMAGE_ID(docker_client) -> str:     # the shared test image's ID on this engine
    return docker_client.images.get(IMAGE).id


# -- without Docker ---------------------------------------------------------------------------------------
def test_the_opt_in_is_a_profile_setting_with_a_per_switch_override(tmp_path):
    state = tmp_path / "state"
    assert closure.enabled(state, "shop") is False
    closure.enable(state, "shop")
    assert closure.enabled(state, "shop") and closure.enabled(state, "shop", flag=False) is False
    assert closure.enabled(state, "other") is False and closure.enabled(state, "other", flag=True)
    (state / "profiles" / "shop" / "closure").write_text("yes please\n")
    with pytest.raises(CorruptState) as e:
        closure.enabled(state, "shop")
    assert "profiles/shop/closure" in e.value.subject
    closure.disable(state, "shop")
    closure.disable(state, "shop")
    assert closure.enabled(state, "shop") is False


def test_memory_engine_archives_are_shared_and_restored(tmp_path):
    engine = MemoryEngine({IMAGE: "sha256:" + "b" * 64})
    g = Gen(tmp_path / "state", engine=engine)
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('name = "p"' + service(IMAGE))
    two.write_text('name = "q"' + service(IMAGE, "other"))
    a, b = g.build(one), g.build(two)
    assert len(closure.archive_images(g.state_dir, g.store, engine, a)) == 1
    assert closure.archive_images(g.state_dir, g.store, engine, b) == [], "one archive per image ID, shared"
    engine.images.discard("sha256:" + "b" * 64)
    with pytest.raises(ImageMissing):
        list(engine.save_image("sha256:" + "b" * 64))
    assert closure.restore_missing(g.state_dir, g.store, engine, b) == {}
    assert engine.has_image("sha256:" + "b" * 64)
    ArchiveIndex(g.state_dir).remove("sha256:" + "b" * 64)
    engine.images.discard("sha256:" + "b" * 64)
    assert closure.restore_missing(g.state_dir, g.store, engine, a) == {"sha256:" + "b" * 64: "it is not in the closure"}


def test_load_log_and_relay():
    log = LoadLog()
    log.read({"stream": "Loaded image ID: sha256:" + "c" * 64 + "\n"})
    log.read({"stream": "Loaded image: shop/web:1\n"})
    log.read({"errorDetail": {"message": "unexpected EOF\nmore"}, "error": "unexpected EOF"})
    assert log.ids == ["sha256:" + "c" * 64] and log.refs == ["shop/web:1"] and log.error == "unexpected EOF"

    def source():
        yield b"x"
        raise OSError("the source engine went away")
    relay = Relay(source())
    with pytest.raises(OSError):
        list(relay)
    with pytest.raises(OSError, match="went away"):
        relay.raise_failure()
    Relay([b"fine"]).raise_failure()
