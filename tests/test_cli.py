"""The ``memvault`` command, run in-process with typer's runner (and the demo's second process for real)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memvault import Memory
from memvault.cli import DEMO_TURNS, app

runner = CliRunner()


def test_demo_writes_and_reads_back_from_a_new_process(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path))
    monkeypatch.delenv("MEMVAULT_URL", raising=False)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "memory survived the restart" in result.output
    assert "hybrid recall" in result.output and "Paris on 14 March" in result.output
    assert "90-token context" in result.output
    with Memory() as mem:  # the embedded default under MEMVAULT_HOME
        assert [m.text for m in mem.session("memvault-demo").messages()] == [c for _, c in DEMO_TURNS]
    assert (tmp_path / "memvault.db").exists()


def test_sessions_commands_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with Memory(url) as mem:
        mem.session("alice", user_id="u1").add("user", "hello from alice")
        mem.session("bob", user_id="u2").add("user", "hello from bob")
    listed = runner.invoke(app, ["sessions", "list", "--url", url, "--user", "u1", "--json"])
    assert listed.exit_code == 0, listed.output
    assert '"alice"' in listed.output and '"bob"' not in listed.output
    shown = runner.invoke(app, ["sessions", "show", "alice", "--url", url])
    assert "hello from alice" in shown.output
    out = tmp_path / "alice.jsonl"
    assert runner.invoke(app, ["sessions", "export", "alice", "--url", url, "-o", str(out)]).exit_code == 0
    assert json.loads(out.read_text().splitlines()[1])["content"] == "hello from alice"
    imported = runner.invoke(app, ["sessions", "import", str(out), "--url", url, "--as", "alice2"])
    assert imported.exit_code == 0 and "1 messages" in imported.output
    assert runner.invoke(app, ["sessions", "delete", "alice", "--url", url, "--yes"]).exit_code == 0
    assert runner.invoke(app, ["sessions", "delete", "alice", "--url", url, "--yes"]).exit_code == 1
    stats = runner.invoke(app, ["sessions", "stats", "--url", url])
    assert json.loads(stats.output)["sessions"] == 2


def test_show_missing_session_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["sessions", "show", "ghost", "--url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "no session 'ghost'" in result.output


def test_doctor_reports_backend_and_schema(tmp_path):
    result = runner.invoke(app, ["doctor", "--url", f"sqlite:///{tmp_path / 'd.db'}"])
    assert result.exit_code == 0, result.output
    assert "sqlite" in result.output and "core" in result.output


def test_doctor_fails_on_a_corrupt_database(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    result = runner.invoke(app, ["doctor", "--url", f"sqlite:///{bad}"])
    assert result.exit_code == 1
    assert "not a readable SQLite database" in result.output
    assert bad.read_bytes() == b"this is not sqlite" * 100  # never overwritten


def test_unknown_scheme_is_refused():
    result = runner.invoke(app, ["sessions", "list", "--url", "ftp://x"])
    assert result.exit_code == 2
    assert "unknown backend scheme" in result.output


def test_recall_and_reindex_commands(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Memory(url, embedder="hash") as mem:
        s = mem.session("trip", user_id="u1")
        s.add("user", "I am flying to Lisbon in June")
        s.add("user", "My dog is called Rex")
    reindexed = runner.invoke(app, ["reindex", "--url", url, "--embedder", "hash"])
    assert reindexed.exit_code == 0, reindexed.output
    assert "re-embedded 2 messages with hash" in reindexed.output
    found = runner.invoke(app, ["recall", "Lisbon", "--url", url, "--user", "u1", "-k", "1", "--embedder", "hash"])
    assert found.exit_code == 0, found.output
    assert "Lisbon" in found.output and "Rex" not in found.output
    bad = runner.invoke(app, ["recall", "x", "--url", url, "--mode", "psychic", "--embedder", "hash"])
    assert bad.exit_code == 1 and "mode must be one of" in bad.output


def test_artifacts_commands_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    source = tmp_path / "report.pdf"
    data = bytes(range(256)) * 9000  # 2.2 MiB: three chunks
    source.write_bytes(data)
    put = runner.invoke(app, ["artifacts", "put", "alice", "docs/report.pdf", str(source), "--url", url, "-n", "acme"])
    assert put.exit_code == 0, put.output
    assert "docs/report.pdf v1" in put.output and "memvault://acme/alice/docs%2Freport.pdf?version=1" in put.output
    source.write_bytes(b"second")
    assert runner.invoke(app, ["artifacts", "put", "alice", "docs/report.pdf", str(source), "--url", url,
                               "--namespace", "acme", "--content-type", "text/plain"]).exit_code == 0
    listed = runner.invoke(app, ["artifacts", "list", "alice", "--url", url, "-n", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["version"], r["size"], r["content_type"]) for r in rows] == [
        ("docs/report.pdf", 2, 6, "text/plain")]
    every = runner.invoke(app, ["artifacts", "list", "alice", "--name", "docs/report.pdf", "--url", url, "-n", "acme",
                                "--json"])
    assert [json.loads(line)["version"] for line in every.stdout.splitlines()] == [1, 2]
    out = tmp_path / "out.pdf"
    got = runner.invoke(app, ["artifacts", "get", "alice", "docs/report.pdf", "-v", "1", "-o", str(out), "--url", url,
                              "-n", "acme"])
    assert got.exit_code == 0, got.output
    assert out.read_bytes() == data
    latest = runner.invoke(app, ["artifacts", "get", "alice", "docs/report.pdf", "--url", url, "-n", "acme"])
    assert latest.exit_code == 0 and latest.stdout_bytes == b"second"
    elsewhere = runner.invoke(app, ["artifacts", "get", "alice", "docs/report.pdf", "--url", url])  # namespace default
    assert elsewhere.exit_code == 1 and "no artifact" in elsewhere.output
    bad = runner.invoke(app, ["artifacts", "put", "alice", "../escape", str(source), "--url", url, "-n", "acme"])
    assert bad.exit_code == 1 and "'..' component" in bad.output
    assert not list(tmp_path.glob("escape*"))
    removed = runner.invoke(app, ["artifacts", "rm", "alice", "docs/report.pdf", "--version", "1", "--yes",
                                  "--url", url, "-n", "acme"])
    assert removed.exit_code == 0 and "deleted 1 version" in removed.output
    assert runner.invoke(app, ["artifacts", "rm", "alice", "docs/report.pdf", "-y", "--url", url,
                               "-n", "acme"]).exit_code == 0
    gone = runner.invoke(app, ["artifacts", "rm", "alice", "docs/report.pdf", "-y", "--url", url, "-n", "acme"])
    assert gone.exit_code == 1 and "no such artifact" in gone.output
    with Memory(url, namespace="acme") as mem:
        assert mem.session("alice").artifacts.list() == []


def test_sessions_show_prints_state_and_artifacts(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Memory(url) as mem:
        s = mem.session("bob")
        s.add("user", "hello")
        s.state.set({"plan": ["book flight"], "step": 3}, actor="planner")
        s.artifacts.save("itinerary.txt", b"Paris, 14 March")
    shown = runner.invoke(app, ["sessions", "show", "bob", "--url", url])
    assert shown.exit_code == 0, shown.output
    assert "state v1" in shown.output and "by planner" in shown.output and '"book flight"' in shown.output
    assert "itinerary.txt" in shown.output and "text/plain" in shown.output
    with Memory(url) as mem:
        mem.session("empty").add("user", "x")
    bare = runner.invoke(app, ["sessions", "show", "empty", "--url", url])
    assert "state (never set)" in bare.output and "artifacts (latest versions): none" in bare.output


def test_keygen_rekey_and_the_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMVAULT_ENCRYPTION_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    k1, k2 = (runner.invoke(app, ["keygen"]).output.strip() for _ in range(2))
    assert k1 != k2 and len(k1) == 44
    with Memory(url, embedder="hash") as mem:
        mem.session("alice").add("user", "qzclearsecretq")
    first = runner.invoke(app, ["rekey", "--url", url, "--key", k1])
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["complete"] and report["from_clear"] == 1 and report["by_space"]["message"] == 1
    assert b"qzclearsecretq" not in (tmp_path / "vault.db").read_bytes()
    locked = runner.invoke(app, ["sessions", "show", "alice", "--url", url])
    assert locked.exit_code == 2 and "encrypted" in locked.output
    monkeypatch.setenv("MEMVAULT_ENCRYPTION_KEY", f"{k2},{k1}")
    rotated = runner.invoke(app, ["rekey", "--url", url])
    assert rotated.exit_code == 0 and json.loads(rotated.output)["rewritten"] == 1
    monkeypatch.setenv("MEMVAULT_ENCRYPTION_KEY", k2)
    shown = runner.invoke(app, ["sessions", "show", "alice", "--url", url])
    assert shown.exit_code == 0 and "qzclearsecretq" in shown.output
    monkeypatch.setenv("MEMVAULT_ENCRYPTION_KEY", k1)  # the old key alone no longer opens it
    assert runner.invoke(app, ["sessions", "show", "alice", "--url", url]).exit_code != 0
    monkeypatch.delenv("MEMVAULT_ENCRYPTION_KEY")
    assert runner.invoke(app, ["rekey", "--url", url]).exit_code == 2  # no key at all
