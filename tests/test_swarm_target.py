"""The target recorded with a profile (gen.state.target): chosen by the first switch, read strictly, a
different one refused once the profile has generations. The Swarm itself is in tests/test_swarm.py."""
from __future__ import annotations

import json

import pytest

from gen.errors import CorruptState, GenError, UnknownFormat
from gen.state.profile import Profile
from gen.state.target import Target, choose_target, path_of, read_target, record_target


@pytest.fixture
def prof(tmp_path):
    return Profile(tmp_path, "shop")


def test_a_profile_without_a_record_targets_the_local_engine(prof):
    assert read_target(prof) == Target("engine") and choose_target(prof, None, None) == Target("engine")
    record_target(prof, Target())
    assert not path_of(prof).exists(), "the default is never written: existing state directories do not change"


def test_the_first_switch_chooses_and_later_verbs_use_it(prof):
    chosen = choose_target(prof, "swarm", "10.0.0.1:5000")
    record_target(prof, chosen)
    assert json.loads(path_of(prof).read_text()) == {"format": 1, "target": "swarm", "registry": "10.0.0.1:5000"}
    assert choose_target(prof, None, None) == Target("swarm", "10.0.0.1:5000")
    assert choose_target(prof, None, "10.0.0.2:5000") == Target("swarm", "10.0.0.2:5000")   # the registry may change


def test_another_target_is_refused_once_the_profile_has_a_generation(prof):
    record_target(prof, Target("swarm"))
    assert choose_target(prof, "engine", None) == Target("engine"), "no generation yet: the choice is still open"
    prof.append("a" * 64, 1)
    with pytest.raises(GenError) as e:
        choose_target(prof, "engine", None)
    assert e.value.exit_code == 1 and "--target engine is refused" in e.value.reason
    assert choose_target(prof, "swarm", None) == Target("swarm")


def test_an_engine_profile_with_generations_cannot_become_a_swarm_one(prof):
    prof.append("a" * 64, 1)
    with pytest.raises(GenError, match="local Docker engine"):
        choose_target(prof, "swarm", None)


@pytest.mark.parametrize("kind, registry, subject", [
    ("kubernetes", None, "--target"),
    ("swarm", "not a registry!", "--push-to"),
    ("engine", "10.0.0.1:5000", "--push-to"),
])
def test_bad_choices(prof, kind, registry, subject):
    with pytest.raises(GenError) as e:
        choose_target(prof, kind, registry)
    assert e.value.subject == subject


@pytest.mark.parametrize("text, error", [
    ("{not json", CorruptState),
    ('["swarm"]', CorruptState),
    ('{"format": 2, "target": "swarm"}', UnknownFormat),
    ('{"format": 1, "target": "nomad"}', CorruptState),
    ('{"format": 1, "target": "swarm", "extra": 1}', CorruptState),
    ('{"format": 1, "target": "engine", "registry": "10.0.0.1:5000"}', CorruptState),
])
def test_a_damaged_record_is_an_error_naming_the_file(prof, text, error):
    prof.path.mkdir(parents=True)
    path_of(prof).write_text(text)
    with pytest.raises(error) as e:
        read_target(prof)
    assert e.value.subject == str(path_of(prof)) and e.value.exit_code == 1


def test_cli_a_damaged_record_stops_every_verb_that_activates(deployment):
    from tests.conftest import sleeper
    assert deployment.gen("switch", deployment.spec(sleeper("app")), "-q").code == 0
    target = deployment.state / "profiles" / deployment.profile / "target.json"
    target.write_text("{damaged")
    for verb in (["switch", str(deployment.spec(sleeper("app")))], ["recover", "-p", deployment.profile],
                 ["status", "-p", deployment.profile]):
        r = deployment.gen(*verb)
        assert r.code == 1 and str(target) in r.err, verb
    assert deployment.gen("list", "-p", deployment.profile).code == 0, "read-only verbs do not need the target"


def test_cli_a_swarm_target_needs_a_manager(deployment):
    """The machine's engine is no Swarm manager: refused before anything is written or created."""
    from tests.conftest import sleeper
    r = deployment.gen("switch", deployment.spec(sleeper("app")), "--target", "swarm")
    assert r.code == 1 and "Swarm manager" in r.err
    assert not (deployment.state / "profiles" / deployment.profile / "target.json").exists()
    assert deployment.containers() == []


def test_cli_the_target_of_an_engine_profile_cannot_change(deployment):
    from tests.conftest import sleeper
    spec = deployment.spec(sleeper("app"))
    assert deployment.gen("switch", spec, "-q").code == 0
    r = deployment.gen("switch", spec, "--target", "swarm")
    assert r.code == 1 and "--target swarm is refused" in r.err
