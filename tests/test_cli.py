"""The CLI verbs around activation: diff, show, log, verify, --json everywhere, progress output, help, and
the hello example. Engine tests use the real Docker engine and their own profile (see conftest)."""
from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ROOT, http_get, sleeper

def objects(state: Path) -> dict[str, Path]:
    root = state / "store" / "objects"
    return {p.name: p for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def ok(r):
    assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    return r


# -------------------------------------------------------------------------------------------- diff

def test_diff_between_current_generations_hashes_and_a_spec_file(deployment):
    d = deployment
    v1 = d.spec(sleeper("app", 'env = { V = "1", KEEP = "k" }') + sleeper("db"))
    v2 = d.spec(sleeper("app", 'env = { V = "2", KEEP = "k", NEW = "n" }') + sleeper("cache"))
    ok(d.gen("switch", v1))

    before = objects(d.state)
    r = ok(d.gen("diff", "-p", d.profile, v2))
    assert objects(d.state) == before, "a spec file given to diff is compiled in memory, never stored"
    assert r.out.splitlines()[0] == f"generation 1 (current) -> spec {v2}"
    for line in ("~ service app", 'env V: "1" -> "2"', 'env NEW: + "n"', "+ service cache", "- service db",
                 "1 added, 1 removed, 1 changed, 0 unchanged"):
        assert line in r.out, r.out
    assert "KEEP" not in r.out and "\x1b[" not in r.out, "unchanged keys are not listed; no colour off a terminal"

    ok(d.gen("switch", v2))
    as_json = json.loads(ok(d.gen("diff", "-p", d.profile, "1", "2", "--json")).out)
    assert as_json["from"]["kind"] == "generation" and as_json["from"]["generation"] == 1
    assert as_json["to"]["generation"] == 2 and as_json["to"]["current"] is True
    assert as_json["services"]["added"][0]["service"] == "cache"
    assert as_json["services"]["removed"][0]["service"] == "db"
    (app,) = as_json["services"]["changed"]
    assert {(c["key"], c["change"], c["old"], c["new"]) for c in app["changes"]} == {
        ("V", "changed", "1", "2"), ("NEW", "added", None, "n")}

    # One argument: current (now 2) against it; a manifest hash prefix names a deployment too.
    gen1 = json.loads(ok(d.gen("list", "-p", d.profile, "--json")).out)[0]["hash"]
    back = json.loads(ok(d.gen("diff", "-p", d.profile, gen1[:10], "--json")).out)
    assert back["from"]["generation"] == 2 and back["to"] == {**back["to"], "kind": "manifest", "hash": gen1}
    assert back["services"]["added"][0]["service"] == "db"
    assert ok(d.gen("diff", "2")).out.strip().endswith("no differences (same manifest)"), \
        "the only profile is used without -p"


def test_diff_errors_name_what_is_wrong(deployment):
    d = deployment
    ok(d.gen("switch", d.spec(sleeper("app"))))
    r = d.gen("diff", "-p", d.profile)
    assert r.code == 1 and "error: diff: which deployment? give a target" in r.err and r.out == ""
    r = d.gen("diff", "-p", d.profile, "7")
    assert r.code == 1 and f"profile {d.profile}: has no generation 7" in r.err
    r = d.gen("diff", "-p", d.profile, "not-a-thing")
    assert r.code == 1 and "neither a generation number, a manifest hash nor a spec file" in r.err
    r = d.gen("diff", "-p", d.profile, str(d.dir / "missing.toml"))
    assert r.code == 1 and "missing.toml" in r.err and "Traceback" not in r.err


def test_diff_before_the_first_switch_shows_everything_added(deployment):
    d = deployment
    r = ok(d.gen("diff", d.spec(sleeper("app") + sleeper("db"))))
    assert r.out.splitlines()[0].startswith("nothing -> spec ")
    assert "+ service app" in r.out and "+ service db" in r.out
    assert not (d.state / "store").exists() or not objects(d.state)


# -------------------------------------------------------------------------------------------- show

def test_show_prints_the_generation_its_services_and_the_spec_it_was_built_from(deployment):
    d = deployment
    body = sleeper("app", 'env = { GREETING = "hi" }\nreplicas = 2')
    plain = d.spec(body)
    commented = d.spec("# the same deployment, commented and reordered\n" + body.replace(
        'env = { GREETING = "hi" }\nreplicas = 2', 'replicas = 2 # two of them\nenv = { GREETING = "hi" }'))
    h1 = ok(d.gen("build", plain)).last_line
    assert ok(d.gen("build", commented)).last_line == h1, "comments and key order never change the manifest"

    ok(d.gen("switch", commented))
    info = json.loads(ok(d.gen("show", "-p", d.profile, "--json")).out)
    assert set(info) == {"profile", "generation", "hash", "created", "current", "services", "volumes", "networks",
                         "source"}
    assert (info["generation"], info["hash"], info["current"]) == (1, h1, True)
    assert info["services"]["app"]["replicas"] == 2 and info["services"]["app"]["env"] == {"GREETING": "hi"}
    assert len(info["services"]["app"]["hash"]) == 64
    assert info["source"]["path"] == str(commented) and info["source"]["text"] == commented.read_text()
    record = json.loads((d.state / "profiles" / d.profile / "generations" / "1.json").read_text())
    assert record["source"] == info["source"]["hash"]
    text = ok(d.gen("show")).out
    assert f"generation 1 of profile {d.profile}  (current)" in text and h1 in text
    assert "  | # the same deployment, commented and reordered" in text
    assert "replicas     2" in text and 'GREETING="hi"' in text

    # A generation switched to by hash has no known source; older records have none either.
    h2 = ok(d.gen("build", d.spec(sleeper("app", 'env = { GREETING = "bye" }')))).last_line
    ok(d.gen("switch", h2[:12], "-p", d.profile))
    info2 = json.loads(ok(d.gen("show", "-p", d.profile, "2", "--json")).out)
    assert info2["source"] is None and info2["hash"] == h2
    assert "spec     not recorded" in ok(d.gen("show", "2")).out
    assert json.loads(ok(d.gen("show", "1", "--json")).out)["current"] is False
    r = d.gen("show", "9")
    assert r.code == 1 and "has no generation 9" in r.err


def test_secret_values_never_reach_the_store(deployment):
    d = deployment
    secret = d.dir / "token.txt"
    secret.write_text("s3cr3t-value-never-stored")
    spec = d.spec('[secrets.token]\nfile = "token.txt"\n' + sleeper("app", 'secrets = ["token"]'))
    ok(d.gen("build", spec))
    assert objects(d.state)
    for path in objects(d.state).values():
        assert b"s3cr3t-value-never-stored" not in path.read_bytes()


# --------------------------------------------------------------------------------------------- log

def test_log_lists_every_switch_rollback_and_recovery(deployment):
    d = deployment
    ok(d.gen("switch", d.spec(sleeper("app", 'env = { V = "1" }'))))
    crash = sleeper("app", 'restart = "no"').replace('["sleep", "3600"]', '["sh", "-c", "exit 3"]')
    assert d.gen("switch", d.spec(crash), "--timeout", "20").code == 2
    ok(d.gen("switch", d.spec(sleeper("app", 'env = { V = "2" }'))))
    ok(d.gen("rollback"))
    for c in d.containers():
        c.remove(force=True)                     # damage: recovery has something to do
    ok(d.gen("recover"))

    entries = json.loads(ok(d.gen("log", "--json")).out)
    assert [(e["kind"], e["from"], e["to"], e["outcome"]) for e in entries] == [
        ("switch", None, 1, "ok"), ("switch", 1, None, "failed"), ("switch", 1, 2, "ok"),
        ("rollback", 2, 1, "ok"), ("recover", 1, 1, "ok")]
    for e in entries:
        assert set(e) == {"time", "kind", "from", "to", "to_hash", "outcome", "error", "duration_s"}
        assert datetime.fromisoformat(e["time"].replace("Z", "+00:00")).tzinfo is not None
        assert isinstance(e["duration_s"], (int, float)) and e["duration_s"] >= 0
    failed = entries[1]
    assert "exited with code 3" in failed["error"] and re.fullmatch(r"[0-9a-f]{12}", failed["to_hash"])
    text = ok(d.gen("log", "-p", d.profile)).out.splitlines()
    assert len(text) == 5 and "rollback" in text[3] and "failed" in text[1] and "exited with code 3" in text[1]


# ------------------------------------------------------------------------------------------ --json

def test_json_output_of_build_switch_rollback_recover_list_and_status(deployment):
    d = deployment
    v1, v2 = d.spec(sleeper("app")), d.spec(sleeper("app", 'env = { V = "2" }') + sleeper("db"))
    built = json.loads(ok(d.gen("build", v1, "--json")).out)
    assert set(built) == {"profile", "hash", "services", "source"} and built["profile"] == d.profile
    assert set(built["services"]) == {"app"} and len(built["source"]) == 64

    keys = {"profile", "generation", "hash", "changed", "message", "duration_s", "plan", "notes", "warnings"}
    step_keys = {"service", "action", "reason", "strategy", "level"}
    dry = json.loads(ok(d.gen("switch", v1, "--dry-run", "--json")).out)
    assert set(dry) == keys and dry["changed"] is False and dry["generation"] is None
    assert dry["plan"] == [{"service": "app", "action": "create", "reason": "missing", "strategy": "start-first",
                            "level": 0}]

    first = json.loads(ok(d.gen("switch", v1, "--json")).out)
    assert set(first) == keys and (first["generation"], first["hash"], first["changed"]) == (1, built["hash"], True)
    assert first["message"] == "generation 1 is now current" and first["duration_s"] > 0
    second = json.loads(ok(d.gen("switch", v2, "--json")).out)
    assert [(s["service"], s["action"]) for s in second["plan"]] == [("app", "replace"), ("db", "create")]
    assert all(set(s) == step_keys for s in second["plan"])
    again = json.loads(ok(d.gen("switch", v2, "--json")).out)
    assert again["changed"] is False and again["generation"] == 2 and all(s["action"] == "keep" for s in again["plan"])

    back = json.loads(ok(d.gen("rollback", "--json")).out)
    assert set(back) == keys and back["generation"] == 1 and back["changed"] is True
    assert ("db", "remove") in [(s["service"], s["action"]) for s in back["plan"]]
    assert [s for s in back["plan"] if s["action"] == "remove"][0]["level"] is None
    rec = json.loads(ok(d.gen("recover", "--json")).out)
    assert set(rec) == keys and rec["changed"] is False and rec["generation"] == 1

    gens = json.loads(ok(d.gen("list", "--json")).out)
    assert [(g["generation"], g["current"]) for g in gens] == [(1, True), (2, False)]
    assert json.loads(ok(d.gen("status", "--json")).out)["ok"] is True

    # Errors are never JSON: stdout stays empty, stderr says what failed, the exit code is unchanged.
    broken = d.spec(sleeper("app", 'restart = "no"').replace('["sleep", "3600"]', '["false"]'))
    r = d.gen("switch", broken, "--json", "--timeout", "20")
    assert r.code == 2 and r.out == "" and "\nerror: service app: container" in r.err


# ------------------------------------------------------------------------------------------ verify

def test_verify_reports_corrupt_and_missing_objects_with_the_generations_that_need_them(deployment):
    d = deployment
    ok(d.gen("switch", d.spec(sleeper("app") + sleeper("db"))))
    ok(d.gen("switch", d.spec(sleeper("app", 'env = { V = "2" }') + sleeper("db"))))
    good = json.loads(ok(d.gen("verify", "--json")).out)
    assert good["ok"] is True and good["objects"]["corrupt"] == good["objects"]["missing"] == 0
    assert good["objects"]["ok"] == len(objects(d.state)) >= 7    # 2 manifests, 3 services, 2 sources
    assert good["profiles"] == [{"profile": d.profile, "generations": 2}]
    assert "the store is intact" in ok(d.gen("verify")).out

    gen1 = json.loads(ok(d.gen("show", "1", "--json")).out)
    db_hash = gen1["services"]["db"]["hash"]          # needed by both generations
    objects(d.state)[db_hash].unlink()
    manifest = objects(d.state)[gen1["hash"]]          # needed by generation 1 only
    manifest.chmod(0o644)
    manifest.write_bytes(manifest.read_bytes() + b"\x00")

    r = d.gen("verify", "--json")
    assert r.code == 1
    bad = json.loads(r.out)
    assert bad["ok"] is False and bad["objects"]["missing"] == 1 and bad["objects"]["corrupt"] == 1
    # Generation 1's manifest is corrupt, so only generation 2 is known to need the missing object.
    assert bad["missing"] == [{"hash": db_hash, "kind": "service", "service": "db", "needed_by": [
        {"profile": d.profile, "generation": 2}]}]
    assert bad["corrupt"] == [{"hash": gen1["hash"], "needed_by": [{"profile": d.profile, "generation": 1}]}]
    text = d.gen("verify")
    assert text.code == 1
    assert f"missing  {db_hash}  service db, needed by profile {d.profile} generation 2" in text.out
    assert f"corrupt  {gen1['hash']}  needed by profile {d.profile} generation 1" in text.out
    assert "PROBLEMS FOUND" in text.out


def test_verify_on_an_empty_state_directory_is_fine(tmp_path):
    from gen.cli.app import main
    assert main(["verify", "--state-dir", str(tmp_path / "nothing")]) == 0


# ---------------------------------------------------------------------------------------- progress

def test_progress_is_plain_lines_off_a_terminal_and_nothing_with_quiet(deployment):
    d = deployment
    r = ok(d.gen("switch", d.spec(sleeper("app"))))
    assert r.err.startswith(f"plan for profile {d.profile}:\n  create   app")
    phases = [line.split()[1] for line in r.err.splitlines() if line.startswith("  app ")]
    assert phases == ["creating", "starting", "waiting", "running", "healthy"], r.err
    assert "\x1b[" not in r.err
    quiet = ok(d.gen("switch", d.spec(sleeper("app", 'env = { V = "2" }')), "--quiet"))
    assert quiet.err == "" and quiet.out.startswith("generation 2 is now current")


def run_in_terminal(args: list[str], timeout: float = 180) -> tuple[int, str]:
    """Run `python -m gen ARGS` with stdin, stdout and stderr on a pseudo-terminal; return (code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gen", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT, env={**os.environ, "COLUMNS": "140", "TERM": "xterm"}, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                proc.kill()
                raise AssertionError("no output from gen for a long time: " + b"".join(chunks).decode(errors="replace"))
            try:
                chunk = os.read(master, 65536)
            except OSError:          # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def test_progress_is_a_live_table_on_a_terminal(deployment):
    d = deployment
    v1 = d.spec(sleeper("app") + sleeper("db"))
    code, out = run_in_terminal(["switch", str(v1), "--state-dir", str(d.state)])
    assert code == 0, out
    assert "│" in out and "\x1b[" in out, "a rich table with cursor movement"
    assert re.search(r"│ app\s+│ create\s+│ \S*healthy", out) and re.search(r"│ db\s+│ create\s+│ \S*healthy", out)
    assert "stability window" in out, "no healthcheck: the window shows while it runs (1 s)"
    assert re.search(r"│\s+\d+\.\ds\s+│", out), "elapsed time per service"
    assert "generation 1 is now current" in out
    assert "  app             creating" not in out, "no plain lines on a terminal"

    broken = d.spec(sleeper("app", 'restart = "no"').replace('["sleep", "3600"]', '["false"]') + sleeper("db"))
    code, out = run_in_terminal(["switch", str(broken), "--timeout", "20", "--state-dir", str(d.state)])
    assert code == 2, out
    assert re.search(r"│ app\s+│ replace\s+│ \S*failed", out) and "error: service app" in out
    assert re.search(r"│ db\s+│ keep\s+│ \S*unchanged", out)

    code, out = run_in_terminal(["rollback", "--quiet", "--state-dir", str(d.state)])
    assert code == 1 and "│" not in out     # nothing older than generation 1; quiet draws nothing anyway


def test_live_table_phases_and_elapsed_times_with_a_fake_clock():
    from rich.console import Console

    from gen.api import ActivationFailed
    from gen.model.plan import Plan, Step
    from gen.cli.progress import LiveTable

    now = [100.0]
    out = io.StringIO()
    table = LiveTable(console=Console(file=out, force_terminal=True, width=120), clock=lambda: now[0])
    plan = Plan("shop", (Step("db", "keep", "unchanged", 0), Step("old", "remove", "not in the generation"),
                         Step("web", "replace", "env changed", 1, "start-first")), (("db",), ("web",)))
    with pytest.raises(ActivationFailed):
        with table:
            table.on_plan(plan)
            table.progress("web", "creating", "shop-web-abc")
            now[0] += 1.5
            table.progress("web", "waiting", "for health")
            now[0] += 2.0
            raise ActivationFailed("service web", "healthcheck failed (unhealthy)", service="web")
    rows = table.rows()
    assert (rows["db"].phase, rows["db"].elapsed(now[0])) == ("unchanged", "")
    assert rows["web"].events == ["creating", "waiting for health"]
    assert (rows["web"].phase, rows["web"].elapsed(now[0] + 60)) == ("failed", "3.5s"), "frozen when it failed"
    assert rows["old"].phase == "pending"
    assert "healthcheck failed" in rows["web"].detail and "failed" in out.getvalue()

    ok_table = LiveTable(console=Console(file=io.StringIO(), force_terminal=True), clock=lambda: now[0])
    with ok_table:
        ok_table.on_plan(plan)
        ok_table.progress("web", "starting", "abc")
        now[0] += 0.3
        ok_table.progress("web", "healthy", "")
        assert ok_table.rows()["web"].elapsed(now[0] + 60) == "0.3s", "frozen once healthy"
        now[0] += 5
        ok_table.progress("web", "removing", "def")
        ok_table.progress("old", "removing", "123")
    rows = ok_table.rows()
    assert (rows["web"].phase, rows["web"].elapsed(now[0])) == ("healthy", "5.3s")
    assert rows["web"].detail == "old container(s) removed" and rows["old"].phase == "removed"


# -------------------------------------------------------------------------------------------- help

def test_help_lists_every_verb_with_examples_and_keeps_completion():
    from gen.cli.app import app
    import typer.main
    verbs = sorted(typer.main.get_command(app).commands)
    assert {"build", "switch", "rollback", "recover", "list", "status", "diff", "show", "log", "verify"} <= set(verbs)
    proc = subprocess.run([sys.executable, "-c", "import sys; from gen.cli import main; code = main(['--help']); "
                           "print('DOCKER-IMPORTED' if 'docker' in sys.modules else 'no-docker', code)"],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "100"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.strip().endswith("no-docker 0"), "help must not import the Docker SDK"
    for verb in verbs:
        assert verb in proc.stdout
    assert "--install-completion" in proc.stdout and "Examples:" in proc.stdout
    for verb in verbs:
        r = subprocess.run([sys.executable, "-m", "gen", verb, "--help"], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "COLUMNS": "100"})
        assert r.returncode == 0 and "Example: gen " + verb in " ".join(r.stdout.split()), (verb, r.stdout)


# ----------------------------------------------------------------------------------------- example

def test_hello_example_switches_and_serves_its_page(deployment):
    d = deployment
    spec = ROOT / "examples" / "hello" / "gen.toml"
    assert "hello" in (ROOT / "examples" / "hello" / "README.md").read_text()
    r = ok(d.gen("switch", spec, "-p", d.profile))
    assert r.out.startswith("generation 1 is now current")
    assert http_get(18082) == "hello from gen"
    changed = d.spec(spec.read_text().replace('"hello from gen"', '"hello again"').replace('name = "hello"\n', ""))
    assert 'env GREETING: "hello from gen" -> "hello again"' in ok(d.gen("diff", "-p", d.profile, changed)).out
    ok(d.gen("switch", changed, "-p", d.profile))
    assert http_get(18082) == "hello again"
    ok(d.gen("rollback", "-p", d.profile))
    assert http_get(18082) == "hello from gen"


def test_references_that_read_as_generations_or_hashes_are_never_files(tmp_path, monkeypatch):
    from gen.state.history import is_spec_ref
    monkeypatch.chdir(tmp_path)
    for name in ("3", "abcd", "current", "notes"):
        (tmp_path / name).write_text("x")
    assert [is_spec_ref(r) for r in ("3", "abcd", "current", "notes", "missing.toml", "compose.yml", "missing")] == [
        False, False, False, True, True, True, False]
