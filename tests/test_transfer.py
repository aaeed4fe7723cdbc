"""Closures moved without a registry (issue 14; gen.state.transfer, gen.state.importing): one export
file, imported into a fresh state directory, deploys a generation on an engine that lost its image;
`copy` loads a generation's images onto a second dockerd (only those it lacks) and a switch there
runs; a tampered export is refused naming the object or archive; a truncated one leaves nothing."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from gen.api import Gen
from gen.engine.docker import DockerEngine
from gen.errors import GenError
from gen.state import closure
from gen.state.archives import ArchiveIndex
from gen.state.roots import import_roots, imported_source
from gen.state.transfer import copy, export, import_
from tests.cleanup import remove_profile
from tests.conftest import IMAGE
from tests.second_engine import second_engine
from tests.test_closures import engine, own_images, rmi, running_image, service  # noqa: F401 (fixtures)

SECRET = "s3cret-value"


def with_secret(d, tag: str) -> Path:
    (d.dir / "api_key.txt").write_text(SECRET)
    return d.spec(service(tag) + 'secrets = ["api_key"]\n\n[secrets.api_key]\nfile = "api_key.txt"\n')


def exported(state: Path, profile: str, images: bool, engine=None, progress=None) -> bytes:
    out = io.BytesIO()
    export(state, Gen(state).store, profile, None, out, images=images, engine=engine, progress=progress)
    return out.getvalue()


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root (directories too) -> a hash of its content: 'exactly as before'."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return tar.getmembers()


def test_export_import_rmi_switch_runs(deployment, docker_client, engine, own_images):
    d = deployment
    [(image, tag)] = own_images(1)
    assert d.gen("switch", with_secret(d, tag)).code == 0
    g = Gen(d.state)
    manifest = g.generations(d.profile)[1][0].manifest
    seen: list[tuple] = []
    data = exported(d.state, d.profile, images=True, engine=engine, progress=lambda *p: seen.append(p))
    names = [m.name for m in members(data)]
    assert names[0] == "gen-export.json" and names[-2] == f"objects/{manifest}" and names[-1].startswith("images/")
    assert seen[-1][1] == seen[-1][2] > 0, "progress in bytes, ending at the total"

    remove_profile(docker_client, d.profile)         # another host: no container, no image
    rmi(docker_client, image)
    state2 = d.dir / "elsewhere"
    g2 = Gen(state2)
    result = import_(state2, g2.store, io.BytesIO(data))
    assert (result.profile, result.manifest, result.generation) == (d.profile, manifest, 1)
    assert [i["id"] for i in result.images] == [image] and ArchiveIndex(state2).get(image)
    assert any("no key yet" in n for n in result.notes), "secrets travel sealed; the key does not"
    assert import_roots(state2)[d.profile][0] == manifest and imported_source(state2, manifest)
    shutil.copy(d.state / "secret.key", state2 / "secret.key")

    assert closure.restore_missing(state2, g2.store, engine, g2.resolve(manifest)) == {}
    r = g2.switch(manifest)
    assert r.generation == 1
    assert running_image(d) == {image}
    [c] = d.containers()
    assert c.exec_run(["cat", "/run/secrets/api_key"]).output.decode() == SECRET
    assert c.exec_run(["cat", "/token"]).output.decode() == tag.split("-")[-1].split(":")[0]


def test_an_export_without_images_and_a_second_import_is_a_no_op(deployment, engine, own_images, tmp_path):
    d = deployment
    [(_, tag)] = own_images(1)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    g = Gen(d.state)
    [a] = closure.archive_images(d.state, g.store, engine, g.resolve(g.generations(d.profile)[1][0].manifest))
    data = exported(d.state, d.profile, images=False)
    assert not [m for m in members(data) if m.name.startswith("images/")]
    with_images = exported(d.state, d.profile, images=True)              # from the closure: no engine needed
    assert [m.name for m in members(with_images)][-1] == f"images/{a.blob}"
    state2 = tmp_path / "two"
    first = import_(state2, Gen(state2).store, io.BytesIO(data))
    before = snapshot(state2 / "store")
    again = import_(state2, Gen(state2).store, io.BytesIO(data))
    assert again.manifest == first.manifest and snapshot(state2 / "store") == before


def test_a_tampered_export_is_refused_naming_what_was_changed(deployment, engine, own_images, tmp_path):
    d = deployment
    [(_, tag)] = own_images(1)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    data = exported(d.state, d.profile, images=True, engine=engine)
    state2 = tmp_path / "two"
    for kind in ("objects/", "images/"):
        member = next(m for m in members(data) if m.name.startswith(kind))
        changed = bytearray(data)
        changed[member.offset_data + member.size // 2] ^= 0x01
        with pytest.raises(GenError) as e:
            import_(state2, Gen(state2).store, io.BytesIO(bytes(changed)))
        h = member.name.split("/")[1]
        assert h in e.value.subject and "altered or damaged" in e.value.reason and e.value.exit_code == 1
        assert ("object" if kind == "objects/" else "image archive") in e.value.subject
        assert not state2.exists(), "nothing left behind"


@pytest.mark.parametrize("where", ["header", "object", "manifest-boundary", "image", "end"])
def test_a_truncated_export_leaves_the_state_directory_exactly_as_before(deployment, engine, own_images, tmp_path,
                                                                          where):
    d = deployment
    [(_, tag)] = own_images(1)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    data = exported(d.state, d.profile, images=True, engine=engine)
    ms = members(data)
    image_member = ms[-1]
    cut = {"header": ms[0].offset_data + 10, "object": ms[1].offset_data + ms[1].size // 2,
           "manifest-boundary": image_member.offset,                       # whole members, the image never came
           "image": image_member.offset_data + image_member.size // 2,
           "end": image_member.offset_data + image_member.size - 1}[where]
    state2 = tmp_path / "two"
    other = tmp_path / "other.toml"              # what the state directory held before: another import
    other.write_text(f'name = "{d.profile}x"' + service(IMAGE))
    Gen(state2).build(other)
    before = snapshot(state2)
    with pytest.raises(GenError) as e:
        import_(state2, Gen(state2).store, io.BytesIO(data[:cut]))
    assert "nothing was imported" in e.value.reason
    assert snapshot(state2) == before
    fresh = tmp_path / "fresh"
    with pytest.raises(GenError):
        import_(fresh, Gen(fresh).store, io.BytesIO(data[:cut]))
    assert not fresh.exists()


def test_not_an_export_is_refused(tmp_path):
    state = tmp_path / "s"
    for junk in (b"", b"hello" * 1000, _tar({"other.json": b"{}"})):
        with pytest.raises(GenError):
            import_(state, Gen(state).store, io.BytesIO(junk))
        assert not state.exists()


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_copy_to_a_second_engine_then_switch_there(deployment, docker_client, engine, own_images, tmp_path):
    d = deployment
    (a, a_tag), (b, b_tag) = own_images(2)
    spec = d.spec(service(a_tag, "one") + service(b_tag, "two") + service(IMAGE, "three"))
    assert d.gen("switch", spec).code == 0
    g = Gen(d.state)
    compiled = g.resolve(g.generations(d.profile)[1][0].manifest)
    closure.archive_images(d.state, g.store, engine, compiled)
    ArchiveIndex(d.state).remove(b)                   # b is not archived: it comes from the engine's save
    busybox = docker_client.images.get(IMAGE).id
    with second_engine() as d2:
        target = DockerEngine.from_env(host=d2.host)
        target.load_image(engine.save_image(busybox))          # the target has this one already
        seen: list[tuple] = []
        result = copy(d.state, g.store, d.profile, None, engine, target, lambda *p: seen.append(p))
        assert {c["id"]: c["from"] for c in result.copied} == {a: "closure", b: "engine"}
        assert result.skipped == [busybox] and all(c["bytes"] > 0 for c in result.copied) and seen
        assert copy(d.state, g.store, d.profile, None, None, target).copied == [], "nothing it lacks"
        api = d2.client()
        for image in (a, b):                                   # run by ID, as a generation does
            c = api.create_container(image, ["cat", "/token"], host_config=api.create_host_config(network_mode="none"))
            api.start(c["Id"])
            assert api.wait(c["Id"])["StatusCode"] == 0 and api.logs(c["Id"]).strip()
        state2 = tmp_path / "there"                             # a state directory on the other host
        import_(state2, Gen(state2).store, io.BytesIO(exported(d.state, d.profile, images=False)))
        r = Gen(state2, engine=target).switch(compiled.manifest_hash)
        assert r.generation == 1
        there = api.containers(filters={"label": f"gen.profile={d.profile}"})
        assert sorted(c["ImageID"] for c in there) == sorted([a, b, busybox])
        assert all(c["State"] == "running" for c in there)


def test_copy_over_ssh(deployment, engine, own_images, monkeypatch):
    """ssh://: the SDK runs the `ssh` client (`docker system dial-stdio` on the other end), as the CLI does."""
    # scripts/setup installs both; under CI a missing one is a failure, never a skip.
    missing = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    if not Path("/usr/sbin/sshd").exists():
        missing("no sshd: apt-get install openssh-server to run the ssh:// copy")
    try:
        import paramiko  # noqa: F401
    except ImportError:
        missing("docker's ssh:// transport imports paramiko even to shell out to ssh (pip install 'docker[ssh]')")
    from tests.conftest import free_port
    from tests.second_engine import over_ssh
    d = deployment
    [(image, tag)] = own_images(1)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    with second_engine() as d2:
        port = free_port()
        with over_ssh(d2, port) as shim:
            monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
            target = DockerEngine.from_env(host=f"ssh://root@127.0.0.1:{port}")
            result = copy(d.state, Gen(d.state).store, d.profile, None, engine, target)
            assert [c["id"] for c in result.copied] == [image]
        assert DockerEngine.from_env(host=d2.host).has_image(image), "it arrived on the engine behind the ssh host"
