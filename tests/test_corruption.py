"""Damaged storage: a typed CorruptData naming what is damaged, and the rest of the namespace keeps working (#11.12).

The file backend's cases live in test_files_backend.py (damaged lines, records, meta, truncation).
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory, Message
from memvault.errors import CorruptData

# -- SQLite ---------------------------------------------------------------------------------------------------------


def _sqlite(path: Path) -> Memory:
    return Memory(f"sqlite:///{path}")


def test_sqlite_garbage_pages_give_corrupt_data_not_raw_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    mem = _sqlite(path)
    for i in range(40):
        mem.session(f"s{i}", metadata={"i": i}).extend([Message("user", "x" * 500) for _ in range(5)])
    mem.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for p in range(2, len(data) // page):  # every page but the header: garbage
        data[p * page : p * page + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    for call in (lambda m: m.sessions(), lambda m: m.session("s3").messages(), lambda m: m.get_session("s3"),
                 lambda m: m.sessions(metadata={"i": 3}), lambda m: m.session("s3").add("user", "y")):
        try:
            m = _sqlite(path)
        except CorruptData as exc:
            assert str(path) in str(exc)
            continue
        with pytest.raises(CorruptData) as err:
            call(m)
        assert str(path) in str(err.value)
        m.close()


def test_sqlite_one_bad_metadata_value_costs_only_its_session(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / "x.db"
    mem = _sqlite(path)
    for sid in ("a", "bad", "c"):
        mem.session(sid, metadata={"team": "red"}).add("user", f"hello {sid}")
    raw = sqlite3.connect(path)
    raw.execute("UPDATE sessions SET metadata = '{not json' WHERE id = 'bad'")
    raw.commit()
    raw.close()
    with caplog.at_level(logging.WARNING, logger="memvault"):
        assert sorted(i.id for i in mem.sessions()) == ["a", "c"]
        assert sorted(i.id for i in mem.sessions(metadata={"team": "red"})) == ["a", "c"]
    assert "corrupt session" in caplog.text and "'bad'" in caplog.text
    with pytest.raises(CorruptData, match="'bad'"):
        mem.get_session("bad")
    assert [m.text for m in mem.session("bad").messages()] == ["hello bad"]  # its messages are intact
    assert mem.recall("hello", mode="keyword", k=5)  # recall of the namespace keeps working
    mem.close()


# -- Redis ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_mem(redis_url: str) -> Any:
    import uuid

    import redis

    prefix = f"mvt:corrupt{uuid.uuid4().hex[:8]}:"
    mem = Memory(redis_url, prefix=prefix, ttl=None)
    raw = redis.Redis.from_url(redis_url)
    yield mem, raw, prefix
    for key in raw.scan_iter(match=f"{prefix}*"):
        raw.delete(key)
    raw.close()
    mem.close()


def _key(prefix: str, sid: str, part: str) -> str:
    return f"{prefix}{{default\x1f{sid}}}:{part}"


@pytest.mark.parametrize(
    ("part", "damage"),
    [
        ("s", lambda raw, key: raw.hset(key, "md", "{not json")),
        ("s", lambda raw, key: raw.hset(key, "md", "[1, 2]")),
        ("s", lambda raw, key: raw.hset(key, "ls", "not a number")),
        ("s", lambda raw, key: raw.hset(key, "x", "soon")),
        ("s", lambda raw, key: raw.hset(key, "up", "later")),
        ("s", lambda raw, key: (raw.delete(key), raw.set(key, "a string"))),
        ("m", lambda raw, key: (raw.delete(key), raw.set(key, "a string"))),
        ("h", lambda raw, key: (raw.delete(key), raw.rpush(key, "a list"))),
    ],
)
def test_redis_damaged_session_keys_give_corrupt_data_naming_the_key(redis_mem: Any, part: str, damage: Any,
                                                                     caplog: Any) -> None:
    mem, raw, prefix = redis_mem
    for sid in ("a", "bad", "c"):
        mem.session(sid, metadata={"team": "red"}).extend([Message("user", f"{sid} {i}") for i in range(3)])
    damage(raw, _key(prefix, "bad", part))
    bad = mem.session("bad")
    failures = 0
    for call in (bad.messages, bad.info, lambda: bad.add("user", "more"), bad.count, lambda: bad.messages(last=1)):
        try:
            call()
        except CorruptData as exc:
            failures += 1
            assert "bad" in str(exc)
    assert failures  # at least the reads that touch the damaged key say so
    with caplog.at_level(logging.WARNING, logger="memvault"):
        listed = {i.id for i in mem.sessions()}
    assert {"a", "c"} <= listed
    assert [m.text for m in mem.session("a").messages()] == ["a 0", "a 1", "a 2"]
    mem.session("c").add("user", "still fine")
    assert mem.session("c").count() == 4


def test_redis_append_over_garbage_counters_never_runs_arithmetic_on_nil(redis_mem: Any) -> None:
    mem, raw, prefix = redis_mem
    mem.session("x").add("user", "one")
    raw.hset(_key(prefix, "x", "s"), "b", "garbage")
    with pytest.raises(CorruptData, match="MEMVAULT_CORRUPT") as err:
        mem.session("x").add("user", "two")
    assert "arithmetic" not in str(err.value)
    raw.hset(_key(prefix, "x", "s"), "b", "3")
    assert mem.session("x").add("user", "two").seq == 2
