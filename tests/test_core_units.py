"""Unit tests of the core pieces that the conformance suite does not reach directly."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import pytest

from memvault import Memory, Message
from memvault.drive import Call, run_async, run_sync
from memvault.errors import InvalidURL, SchemaVersionError, SessionNotFound
from memvault.model import decode_body, encode_body, validate_id
from memvault.urls import default_url, file_path, mask_url


def test_encoding_is_canonical_and_versioned():
    m = Message("user", "hi", created_at=datetime(2024, 1, 1, tzinfo=timezone.utc), id="x")
    record = encode_body(m)
    assert record.body == '{"v":1,"id":"x","role":"user","content":"hi","created_at":"2024-01-01T00:00:00+00:00"}'
    assert decode_body(record.body, session_id="s", seq=3) == Message(
        "user", "hi", created_at=datetime(2024, 1, 1, tzinfo=timezone.utc), id="x", session_id="s", seq=3
    )
    with pytest.raises(SchemaVersionError):
        decode_body(record.body.replace('"v":1', '"v":99'), session_id="s", seq=1)


def test_naive_datetimes_are_utc():
    naive = Message("user", "x", created_at=datetime(2024, 5, 1, 12, 0))
    back = decode_body(encode_body(naive).body, session_id=None, seq=None)
    assert back.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_mask_url_hides_passwords():
    assert mask_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert mask_url("postgresql://bob:pa%40ss@db/x") == "postgresql://bob:***@db/x"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_file_paths_follow_sqlalchemy_convention(tmp_path):
    assert str(file_path("sqlite:////abs/x.db")) == "/abs/x.db"
    assert str(file_path("sqlite:///rel/x.db")) == "rel/x.db"
    assert str(file_path("file:///var/data")) == "/var/data"
    with pytest.raises(InvalidURL):
        file_path("sqlite://")


def test_default_url_honours_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MEMVAULT_URL", raising=False)
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/memvault.db"
    monkeypatch.setenv("MEMVAULT_URL", "memory://x")
    assert default_url() == "memory://x"
    assert Memory().backend == "memory"


def test_validate_id_limits():
    assert validate_id("ok") == "ok"
    assert validate_id("é" * 256) == "é" * 256  # 512 bytes
    with pytest.raises(ValueError):
        validate_id("é" * 257)


def test_store_errors_are_thrown_into_the_operation_sync_and_async():
    mem = Memory("memory://")

    def op():
        try:
            yield Call("put_record", ("default", "missing", "k", "1", {}))
        except SessionNotFound:
            return "handled"
        return "not raised"

    assert run_sync(mem.store, op()) == "handled"
    assert asyncio.run(run_async(mem.store, op())) == "handled"


def test_debug_log_names_session_count_bytes_and_backend(caplog, tmp_path):
    mem = Memory(f"sqlite:///{tmp_path / 'log.db'}")
    with caplog.at_level(logging.DEBUG, logger="memvault"):
        mem.session("alice").add("user", "hello")
        mem.session("alice").messages()
    text = caplog.text
    assert "sqlite.append default/alice n=1 bytes=" in text
    assert "sqlite.read default/alice n=1" in text
    assert "ms" in text


def test_write_hooks_see_every_write():
    mem = Memory("memory://")
    events = []
    mem.write_hooks.append(lambda event, ns, sid, payload: events.append((event, sid)))
    s = mem.session("h")
    m = s.add("user", "x")
    s.delete_messages([m.id])
    s.clear()
    mem.delete_session("h")
    assert events == [("append", "h"), ("delete_messages", "h"), ("clear", "h"), ("delete_session", "h")]


def test_mask_url_with_a_raw_at_sign_in_the_password():
    masked = mask_url("redis://:p@ss@host:6379/0")
    assert masked == "redis://:***@host:6379/0"
    assert "ss" not in masked.split("@")[0]
    assert mask_url("redis://h:1/0?x=a@b") == "redis://h:1/0?x=a@b"
