"""gen.model.diff is pure: specs are parsed and compiled here with a fake image resolver, no Docker, no store.
Table tests pin down what a diff reports for each kind of change, the stable JSON and the text."""
from __future__ import annotations

import json

import pytest

from gen.model.compile import compile_spec
from gen.cli.diffview import format_ms, render
from gen.model.diff import Change, Side, diff, service_changes
from gen.spec.document import parse_spec

IMAGES = {"app:1": "sha256:" + "1" * 64, "app:2": "sha256:" + "2" * 64}

BASE = """
name = "shop"
[volumes.data]
[services.web]
image = "app:1"
command = ["httpd", "-f"]
env = { A = "1", B = "2" }
ports = ["127.0.0.1:8080:80"]
volumes = ["data:/data"]
[services.web.healthcheck]
test = ["CMD", "true"]
interval = "1s"
[services.db]
image = "app:1"
"""


def compiled(text: str):
    return compile_spec(parse_spec(text), "shop", lambda req: IMAGES[req.ref])


def web_changes(new_text: str) -> list[Change]:
    d = diff(compiled(BASE), compiled(new_text))
    assert [s.service for s in d.changed] == ["web"], d
    assert d.unchanged == ("db",) and not d.added and not d.removed
    return list(d.changed[0].changes)


@pytest.mark.parametrize("edit, expected", [
    # env: changed, added and removed keys carry old and new values
    (('A = "1", B = "2"', 'A = "one", B = "2"'), [Change("env", "changed", "A", "1", "one")]),
    (('A = "1", B = "2"', 'A = "1", B = "2", C = "3"'), [Change("env", "added", "C", None, "3")]),
    (('A = "1", B = "2"', 'A = "1"'), [Change("env", "removed", "B", "2", None)]),
    # image: the tag and the pinned image ID both show
    (('image = "app:1"\ncommand', 'image = "app:2"\ncommand'),
     [Change("image", "changed", None, "app:1", "app:2"), Change("image_id", "changed", None, IMAGES["app:1"], IMAGES["app:2"])]),
    # ports and volumes: items added and removed
    (('"127.0.0.1:8080:80"', '"127.0.0.1:8081:80"'),
     [Change("ports", "removed", None, {"host_ip": "127.0.0.1", "host_port": 8080, "container_port": 80, "protocol": "tcp"}),
      Change("ports", "added", None, None, {"host_ip": "127.0.0.1", "host_port": 8081, "container_port": 80, "protocol": "tcp"})]),
    # a read-only mount: web no longer writes data, so its default update order becomes start-first
    (('"data:/data"', '"data:/data:ro"'),
     [Change("volumes", "removed", None, {"type": "volume", "source": "data", "target": "/data", "read_only": False}),
      Change("volumes", "added", None, None, {"type": "volume", "source": "data", "target": "/data", "read_only": True}),
      Change("update", "changed", None, "stop-first", "start-first")]),
    # healthcheck: field by field
    (('interval = "1s"', 'interval = "250ms"'), [Change("healthcheck", "changed", "interval_ms", 1000, 250)]),
    (('interval = "1s"', 'interval = "1s"\nretries = 5'), [Change("healthcheck", "changed", "retries", 3, 5)]),
    # command and replicas: whole values
    (('["httpd", "-f"]', '["httpd", "-f", "-v"]'), [Change("command", "changed", None, ["httpd", "-f"], ["httpd", "-f", "-v"])]),
    (('command = ["httpd", "-f"]', 'command = ["httpd", "-f"]\nupdate = "start-first"\nstop_grace = "1m30s"'),
     [Change("update", "changed", None, "stop-first", "start-first"),
      Change("stop_grace_ms", "changed", None, 10_000, 90_000)]),
])
def test_changed_fields_of_one_service(edit, expected):
    old, new = edit
    assert old in BASE
    assert web_changes(BASE.replace(old, new, 1)) == expected


def test_replicas_and_removed_ports():
    new = BASE.replace('ports = ["127.0.0.1:8080:80"]', 'replicas = 3')
    changes = web_changes(new)
    assert Change("replicas", "changed", None, 1, 3) in changes
    assert [c.change for c in changes if c.field == "ports"] == ["removed"]


def test_healthcheck_added_and_removed_as_a_whole():
    without = BASE.replace('[services.web.healthcheck]\ntest = ["CMD", "true"]\ninterval = "1s"\n', "")
    d = diff(compiled(without), compiled(BASE))
    (change,) = d.changed[0].changes
    assert (change.field, change.change, change.key, change.old) == ("healthcheck", "added", None, None)
    assert change.new["test"] == ["CMD", "true"] and change.new["interval_ms"] == 1000
    back = diff(compiled(BASE), compiled(without)).changed[0].changes
    assert [(c.field, c.change) for c in back] == [("healthcheck", "removed")]


def test_services_added_removed_and_volume_declarations():
    new = BASE.replace("[services.db]", "[services.cache]").replace("[volumes.data]", "[volumes.data]\n[volumes.logs]")
    d = diff(compiled(BASE), compiled(new))
    assert [n for n, _ in d.added] == ["cache"] and [n for n, _ in d.removed] == ["db"]
    assert d.volumes["added"] == ["logs"] and d.volumes["removed"] == []
    assert not d.changed and d.unchanged == ("web",)
    gone = BASE.replace('volumes = ["data:/data"]\n', "").replace("[volumes.data]\n", "")
    assert diff(compiled(BASE), compiled(gone)).volumes["removed"] == ["data"]


def test_identical_deployments_and_key_order():
    reordered = BASE.replace('env = { A = "1", B = "2" }', 'env = { B = "2", A = "1" }')
    d = diff(compiled(BASE), compiled(reordered))
    assert d.identical and not d.changed and d.unchanged == ("db", "web")
    assert "no differences" in "\n".join(t for _, t in render(d))


def test_nothing_against_a_deployment_and_back():
    d = diff(None, compiled(BASE), Side("empty"), Side("spec", path="gen.toml"))
    assert [n for n, _ in d.added] == ["db", "web"] and d.volumes["added"] == ["data"]
    text = [t for _, t in render(d)]
    assert text[0] == "nothing -> spec gen.toml"
    assert not any("network" in t for t in text), "the default network is noise against nothing"
    back = diff(compiled(BASE), None)
    assert [n for n, _ in back.removed] == ["db", "web"] and back.new.kind == "empty"


def test_same_items_in_another_order_is_a_whole_field_change():
    a = {"kind": "service", "ports": [{"host_port": 1}, {"host_port": 2}]}
    b = {"kind": "service", "ports": [{"host_port": 2}, {"host_port": 1}]}
    assert service_changes(a, b) == [Change("ports", "changed", None, a["ports"], b["ports"])]


def test_fields_from_a_newer_object_format_are_reported_not_dropped():
    old = {"kind": "service", "name": "x", "image": "a"}
    new = {"kind": "service", "name": "x", "image": "a", "labels": {"k": "v"}, "init": True}
    assert service_changes(old, new) == [Change("init", "added", None, None, True),
                                         Change("labels", "added", None, None, {"k": "v"})]
    # A dict field unknown to the differ that exists on both sides is shown key by key.
    newer = {**new, "labels": {"k": "w"}}
    assert service_changes(new, newer) == [Change("labels", "changed", "k", "v", "w")]


def test_json_is_stable_and_serialisable():
    new = BASE.replace('A = "1"', 'A = "2"').replace("[services.db]", "[services.cache]")
    d = diff(compiled(BASE), compiled(new), Side("generation", "a" * 64, 1, current=True), Side("spec", "b" * 64, path="x.toml"))
    out = json.loads(json.dumps(d.to_json()))
    assert set(out) == {"from", "to", "identical", "services", "volumes", "networks"}
    assert set(out["services"]) == {"added", "removed", "changed", "unchanged"}
    assert out["from"] == {"kind": "generation", "generation": 1, "hash": "a" * 64, "path": None, "profile": None,
                           "current": True}
    assert out["services"]["added"] == [{"service": "cache", "hash": compiled(new).services["cache"][0]}]
    (web,) = out["services"]["changed"]
    assert set(web) == {"service", "from", "to", "changes"}
    assert web["changes"] == [{"field": "env", "key": "A", "change": "changed", "old": "1", "new": "2"}]
    assert out["identical"] is False


def test_text_names_every_change_with_old_and_new_values():
    new = (BASE.replace('image = "app:1"\ncommand', 'image = "app:2"\ncommand')
           .replace('A = "1", B = "2"', 'A = "1", C = "3"').replace(":8080:80", ":9090:80")
           .replace('interval = "1s"', 'interval = "1m30s"'))
    lines = render(diff(compiled(BASE), compiled(new)))
    text = "\n".join(t for _, t in lines)
    assert "~ service web" in text
    assert "image: app:1 -> app:2" in text
    assert "image id: sha256:111111111111 -> sha256:222222222222" in text
    assert 'env B: - "2"' in text and 'env C: + "3"' in text
    assert "ports - 127.0.0.1:8080:80/tcp" in text and "ports + 127.0.0.1:9090:80/tcp" in text
    assert "healthcheck.interval: 1s -> 1m30s" in text
    assert "unchanged: db" in text and text.endswith("0 added, 0 removed, 1 changed, 1 unchanged")
    styles = {t.strip(): s for s, t in lines}
    assert styles['env B: - "2"'] == "removed" and styles['env C: + "3"'] == "added"


@pytest.mark.parametrize("ms, text", [(0, "0s"), (1, "1ms"), (250, "250ms"), (1000, "1s"), (90_000, "1m30s"),
                                      (3_600_500, "1h500ms")])
def test_format_ms(ms, text):
    assert format_ms(ms) == text
