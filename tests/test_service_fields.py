"""Service fields that reach the container: secrets, labels, user, working_dir (real engine)."""
from __future__ import annotations

SECRET_VALUE = "s3cr3t-value-0f-gen"

BODY = """
[secrets.token]
file = "{file}"
[services.app]
image = "{{image}}"
command = ["sleep", "3600"]
secrets = ["token"]
labels = {{ team = "payments" }}
user = "65534"
working_dir = "/tmp"
stop_grace = "0s"
"""


def exec_in(container, *cmd) -> str:
    code, out = container.exec_run(list(cmd))
    assert code == 0, out
    return out.decode().strip()


def test_secret_is_mounted_read_only_never_stored_and_a_change_makes_a_new_generation(deployment):
    d = deployment
    secret = d.dir / "token.txt"
    secret.write_text(SECRET_VALUE)
    spec = d.spec(BODY.format(file=secret))
    first = d.gen("switch", spec)
    assert first.code == 0, first.err
    (c,) = d.containers()
    assert exec_in(c, "cat", "/run/secrets/token") == SECRET_VALUE
    code, _ = c.exec_run(["sh", "-c", "echo x > /run/secrets/token"])
    assert code != 0, "secret mount must be read-only"
    for path in d.state.rglob("*"):
        if path.is_file():
            assert SECRET_VALUE.encode() not in path.read_bytes(), f"secret value leaked into {path}"
    assert SECRET_VALUE not in first.out + first.err
    before = d.gen("build", spec).last_line
    secret.write_text(SECRET_VALUE + "-rotated")
    after = d.gen("build", spec).last_line
    assert before != after, "a changed secret changes the generation"
    assert d.gen("switch", spec).code == 0
    (c2,) = d.containers()
    assert c2.id != c.id and exec_in(c2, "cat", "/run/secrets/token") == SECRET_VALUE + "-rotated"


def test_labels_user_and_working_dir_reach_the_container(deployment):
    d = deployment
    secret = d.dir / "token.txt"
    secret.write_text("x")
    assert d.gen("switch", d.spec(BODY.format(file=secret))).code == 0
    (c,) = d.containers()
    assert c.labels["team"] == "payments" and c.labels["gen.profile"] == d.profile
    assert exec_in(c, "id", "-u") == "65534"
    assert exec_in(c, "pwd") == "/tmp"


def test_unreadable_secret_file_is_a_build_error(deployment):
    d = deployment
    r = d.gen("build", d.spec(BODY.format(file=d.dir / "missing.txt")))
    assert r.code == 1 and "secrets.token.file" in r.err and "cannot read" in r.err
    assert not (d.state / "store").exists()
