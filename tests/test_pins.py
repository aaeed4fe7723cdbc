"""Image pins carry their state directory's identity (issue 11): `gen gc --all-profiles` in one state
directory never releases the pins of another, so an image a rollback there needs stays."""
from __future__ import annotations

import json

from gen.state.identity import state_id
from gen.state.pins import pin_repo, pin_tag
from tests.conftest import sleeper


def gc_elsewhere(state, capsys) -> dict:
    from gen.cli import main
    capsys.readouterr()
    assert main(["gc", "--all-profiles", "--keep", "0", "--json", "--state-dir", str(state)]) == 0
    return json.loads(capsys.readouterr().out)


def test_gc_of_one_state_directory_never_releases_anothers_pins(deployment, tmp_path, capsys):
    d = deployment
    box = d.docker.containers.create(d.image, ["true"])
    try:
        image = box.commit(repository=f"gen-test-pins/{d.profile}", tag="1")
    finally:
        box.remove(force=True)
    ref = f"gen-test-pins/{d.profile}:1"
    other_state = tmp_path / "other-state"
    try:
        assert d.gen("switch", d.spec(sleeper("web").replace("{image}", ref))).code == 0
        assert d.gen("switch", d.spec(sleeper("web"))).code == 0           # generation 1 keeps needing `image`
        d.docker.images.remove(ref)                                          # only gen's pin holds it now
        mine = f"{pin_repo(d.profile, state_id(d.state))}:{pin_tag(image.id)}"
        assert d.docker.images.get(image.id).tags == [mine]

        # Another state directory on the same engine, with no profile of that name, collects everything.
        report = gc_elsewhere(other_state, capsys)
        assert mine not in report["pins_released"]
        assert d.docker.images.get(image.id).tags == [mine], "another state directory's gc released the pin"
        assert state_id(other_state) != state_id(d.state)

        assert d.gen("rollback", "-p", d.profile).code == 0                # the image is still there
        assert d.gen("status", "-p", d.profile).code == 0
    finally:
        d.cleanup()
        try:
            d.docker.images.remove(image.id, force=True)
        except Exception:          # noqa: BLE001 - already gone with its last tag
            pass


def test_the_identity_is_made_once_and_a_damaged_one_is_named(tmp_path):
    from gen.errors import CorruptState
    first = state_id(tmp_path)
    assert first == state_id(tmp_path) and len(first) == 16
    (tmp_path / "id").write_text("not an id")
    try:
        state_id(tmp_path)
    except CorruptState as e:
        assert str(tmp_path / "id") in str(e)
    else:
        raise AssertionError("a damaged identity was accepted")
