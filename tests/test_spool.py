"""``fallback="spool"``: writes survive a backend outage and are replayed exactly once, in order.

The main test stops a real redis-server (started here, with AOF so its data survives the restart) mid-stream."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from memvault import BackendUnavailable, Memory, Message
from memvault.backends.inmemory import InMemoryStore
from memvault.contract import AppendOptions
from memvault.errors import InvalidURL
from memvault.model import Record
from memvault.spool import SpoolStore
from tests.harness.redis import RedisServer


class Flaky(InMemoryStore):
    """An in-memory backend that can be 'down', or lose the acknowledgement of an append it did store."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.down = False
        self.lose_acks = 0

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailable("flaky:// is down")

    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        self._check()
        seqs = super().append(ns, sid, records, options)
        if self.lose_acks:
            self.lose_acks -= 1
            raise BackendUnavailable("connection dropped after the write")
        return seqs

    def read(self, ns: str, sid: str, **kwargs: Any) -> list[Message]:
        self._check()
        return super().read(ns, sid, **kwargs)

    def clear(self, ns: str, sid: str) -> int:
        self._check()
        return super().clear(ns, sid)

    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Any) -> None:
        self._check()
        super().put_record(ns, sid, kind, key, data)


@pytest.fixture
def flaky(request: pytest.FixtureRequest) -> Flaky:
    return Flaky(f"flaky-{request.node.name}")


def test_outage_spools_then_replays_in_order(flaky, tmp_path, caplog):
    mem = Memory(flaky, fallback="spool", spool_path=tmp_path / "spool.db", spool_retry=0)
    assert isinstance(mem.store, SpoolStore)
    s = mem.session("chat")
    ids = [s.add("user", f"m{i}").id for i in range(3)]
    flaky.down = True
    with caplog.at_level(logging.WARNING, logger="memvault"):
        spooled = [s.add("user", f"m{i}") for i in range(3, 6)]
        spooled += s.extend([Message("user", "m6"), Message("assistant", "m7")])
    assert [m.seq for m in spooled] == [None] * 5  # acknowledged, seq assigned on replay
    ids += [m.id for m in spooled]
    assert mem.store.pending() == 4
    assert mem.store.pending("default", "chat") == 4
    assert any("spooling writes" in r.getMessage() for r in caplog.records)
    with pytest.raises(BackendUnavailable):
        s.messages()
    with pytest.raises(BackendUnavailable):
        s.clear()  # not spoolable: refused rather than run out of order
    flaky.down = False
    ids.append(s.add("user", "m8").id)  # replays the spool first, then writes directly
    got = s.messages()
    assert [m.id for m in got] == ids
    assert [m.seq for m in got] == list(range(1, 10))
    assert [m.text for m in got] == [f"m{i}" for i in range(9)]
    assert mem.store.pending() == 0


def test_lost_acknowledgement_is_replayed_exactly_once(flaky, tmp_path):
    mem = Memory(flaky, fallback="spool", spool_path=tmp_path / "spool.db", spool_retry=0)
    s = mem.session("chat")
    s.add("user", "a", id="a")
    flaky.lose_acks = 1
    lost = s.add("user", "b", id="b")  # stored by the backend, but the client saw an error: spooled too
    assert lost.seq is None
    flaky.lose_acks = 1  # and the first replay loses its ack as well
    s.add("user", "c", id="c")
    s.add("user", "d", id="d")
    for _ in range(3):  # a replay whose ack is lost raises; the next one finishes the job
        try:
            mem.store.flush()
            break
        except BackendUnavailable:
            continue
    got = s.messages()
    assert [m.id for m in got] == ["a", "b", "c", "d"]
    assert [m.seq for m in got] == [1, 2, 3, 4]


def test_spool_survives_a_restart_of_the_app(flaky, tmp_path):
    path = tmp_path / "spool.db"
    first = Memory(flaky, fallback="spool", spool_path=path, spool_retry=0)
    flaky.down = True
    first.session("s", user_id="u").add("user", "written while down", id="w1")
    first.store.put_record("default", "s", "summary", "0001", {"text": "later"})
    first.close()  # cannot replay: the entries stay on disk
    flaky.down = False
    second = Memory(flaky, fallback="spool", spool_path=path, spool_retry=0)
    assert second.store.pending() == 2
    got = second.session("s").messages()
    assert [m.id for m in got] == ["w1"]
    assert second.get_session("s").user_id == "u"
    assert second.store.get_records("default", "s", "summary") == [("0001", {"text": "later"})]
    assert second.store.pending() == 0


def test_refused_replay_is_kept_as_dead_letter(flaky, tmp_path):
    store = SpoolStore(flaky, path=tmp_path / "spool.db", retry=0)
    flaky.down = True
    store.put_record("default", "never-created", "summary", "1", {"x": 1})  # SessionNotFound on replay
    store.append("default", "ok", [Record("m1", '{"v":1,"id":"m1","role":"user","content":"hi","created_at":'
                                          '"2024-01-01T00:00:00+00:00"}')], AppendOptions())
    flaky.down = False
    assert store.flush() == 2
    dead = store.dead_letters()
    assert [(d["session"], d["op"]) for d in dead] == [("never-created", "put_record")]
    assert "never-created" in dead[0]["error"]
    assert [m.id for m in store.read("default", "ok")] == ["m1"]


def test_unknown_fallback_is_refused(tmp_path):
    with pytest.raises(InvalidURL):
        Memory("memory://", fallback="retry-forever")


def test_redis_outage_mid_stream_every_acknowledged_message_arrives_once(tmp_path: Path, caplog):
    """Stop the real redis-server mid-stream, keep writing, restart it on the same port: nothing lost, no dupes."""
    server = RedisServer(tmp_path / "redis", args=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        mem = Memory(
            server.url,
            fallback="spool",
            spool_path=tmp_path / "spool.db",
            spool_retry=0,
            prefix="spooltest:",
            connect_timeout=1,
            socket_timeout=2,
        )
        s = mem.session("stream", user_id="u1")
        acked: list[str] = []
        for i in range(40):
            acked.append(s.add("user" if i % 2 == 0 else "assistant", f"turn {i}").id)
        server.stop()
        with caplog.at_level(logging.WARNING, logger="memvault"):
            for i in range(40, 70):
                m = s.add("user", f"turn {i}")
                assert m.seq is None
                acked.append(m.id)
            batch = s.extend([Message("user", "turn 70"), Message("assistant", "turn 71")])
            acked += [m.id for m in batch]
            with pytest.raises(BackendUnavailable) as down:
                s.messages(last=5)
        assert "127.0.0.1" in str(down.value)
        assert mem.store.pending() == 31
        assert any("spooling writes" in r.getMessage() for r in caplog.records)
        server.start()  # same port, same data directory (AOF)
        for i in range(72, 90):
            acked.append(s.add("user", f"turn {i}").id)
        got = s.messages()
        assert [m.id for m in got] == acked
        assert len({m.id for m in got}) == len(acked) == 90
        assert [m.seq for m in got] == list(range(1, 91))
        assert [m.text for m in got] == [f"turn {i}" for i in range(90)]
        assert mem.get_session("stream").message_count == 90
        assert mem.store.pending() == 0
        mem.close()
    finally:
        server.stop()
