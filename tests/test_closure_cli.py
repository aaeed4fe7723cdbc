"""Closures end to end through the command line and the real activation (issue 14): with the closure
kept, a rollback after the image is gone from the engine loads it from the store, before anything
running is touched; `gen verify` tells which generations could not be rolled back to; `gen gc --dry-run`
shows the archives' bytes; `gen export --images` / `gen import` / `gen switch HASH` deploy on a state
directory that never saw the spec, with the image removed from the engine."""
from __future__ import annotations

import pytest

from tests.cleanup import remove_profile
from tests.test_closures import engine, own_images, rmi, running_image, service  # noqa: F401 (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_without_a_closure_a_rollback_to_a_removed_image_fails_and_verify_names_it(deployment, docker_client,
                                                                                   own_images):
    d = deployment
    [(old, old_tag), (new, new_tag)] = own_images(2)
    assert d.gen("switch", d.spec(service(old_tag))).code == 0
    assert d.gen("switch", d.spec(service(new_tag))).code == 0
    rmi(docker_client, old)
    r = d.gen("verify")
    assert r.code == 1 and f"profile {d.profile} generation 1" in r.out and "cannot roll back" in r.out, r.out
    r = d.gen("rollback", "-p", d.profile)
    assert r.code == 2 and "not in the closure" in r.err, r.err
    assert running_image(d) == {new}, "the failed rollback left the new generation running"


def test_with_the_closure_kept_a_rollback_loads_the_removed_image_from_the_store(deployment, docker_client,
                                                                                  own_images):
    d = deployment
    [(old, old_tag), (new, new_tag)] = own_images(2)
    r = d.gen("switch", d.spec(service(old_tag)), "--closure")
    assert r.code == 0, r.err
    assert d.gen("closure", "on", "-p", d.profile).code == 0      # later switches keep it too
    assert d.gen("switch", d.spec(service(new_tag))).code == 0
    dry = d.gen("gc", "-p", d.profile, "--dry-run")
    assert dry.code == 0 and "image archives: would delete 0" in dry.out and "2 kept" in dry.out, dry.out
    rmi(docker_client, old)       # as `docker image prune -a` would, once nothing runs it
    r = d.gen("verify")
    assert r.code == 0 and "1 archived" in r.out, r.out
    r = d.gen("rollback", "-p", d.profile)
    assert r.code == 0, r.err
    assert "from the closure" in r.err and running_image(d) == {old}
    # gc of the first generation frees the archive only that generation used.
    assert d.gen("switch", d.spec(service(new_tag))).code == 0
    r = d.gen("gc", "-p", d.profile, "--keep", "1")
    assert r.code == 0 and "image archives: deleted 1" in r.out, r.out


def test_export_import_and_switch_on_a_state_directory_that_never_saw_the_spec(deployment, docker_client,
                                                                                own_images, tmp_path):
    d = deployment
    [(image, tag)] = own_images(1)
    assert d.gen("switch", d.spec(service(tag))).code == 0
    bundle = tmp_path / "app.gen"
    r = d.gen("export", "-p", d.profile, "-o", bundle, "--images")
    assert r.code == 0 and bundle.stat().st_size > 0, r.err
    assert d.gen("switch", d.spec("")).code == 0      # nothing runs the image any more
    rmi(docker_client, image)
    from gen.cli.app import main
    other = tmp_path / "other-state"
    d._capsys.readouterr()
    assert main(["import", str(bundle), "--state-dir", str(other)]) == 0
    manifest = d._capsys.readouterr().out.strip()
    try:
        assert main(["switch", manifest, "--state-dir", str(other)]) == 0
        assert running_image(d) == {image}, "the image came from the export's archive"
    finally:
        remove_profile(docker_client, d.profile)
