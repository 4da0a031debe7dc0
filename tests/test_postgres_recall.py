"""PostgreSQL recall engine: incremental catch-up and the per-session cache must never miss a stored message (another
writer between two queries, a session deleted and re-created under the same id, deletions, eviction), on both
search paths (cached scopes and the HNSW/GIN path for large scopes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from memvault import Memory
from memvault.recall import postgres_engine
from tests.conformance import test_recall as conformance
from tests.conftest import FakeClock
from tests.harness.postgres import drop_schema


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    name = f"mvt_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schema(postgres_url, name)


@pytest.fixture(params=["cached", "indexed"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "indexed":  # every scope takes the HNSW/GIN path
        monkeypatch.setattr(postgres_engine, "CACHED_SCOPE", 0)
    return request.param  # type: ignore[no-any-return]


def _open(url: str, schema: str, clock: FakeClock | None = None) -> Memory:
    return Memory(url, schema=schema, min_size=0, max_size=2, embedder="hash", clock=clock)


def _vectors(mem: Memory, sid: str) -> int:
    engine = mem.recall_service.engine
    with mem.store.connection() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(f"SELECT count(*) FROM {engine.qualified} WHERE session_id = %s", (sid,)).fetchone()[0])


def _texts(mem: Memory, query: str, sid: str, k: int = 10) -> list[str]:
    return [h.message.text for h in mem.recall(query, session=sid, k=k, mode="keyword")]


def test_postgres_recall_finds_what_another_writer_added_between_queries(postgres_url: str, schema: str,
                                                                        path: str) -> None:
    with _open(postgres_url, schema) as reader, _open(postgres_url, schema) as writer:
        writer.session("s").extend([{"role": "user", "content": f"filler line {i}"} for i in range(30)])
        assert _texts(reader, "filler", "s", k=3)
        for round_ in range(3):  # the writer never recalls, so nothing it writes is embedded by it
            writer.session("s").add("user", f"the secret word of round {round_} is pomegranate{round_}")
            assert _texts(reader, f"pomegranate{round_}", "s") == [f"the secret word of round {round_} is "
                                                                   f"pomegranate{round_}"]
            assert _vectors(reader, "s") == 31 + round_  # every message embedded, none twice
        writer.session("s").delete_messages([writer.session("s").messages(last=1)[0].id])
        assert _texts(reader, "pomegranate2", "s") == []
        assert _texts(reader, "pomegranate1", "s") == ["the secret word of round 1 is pomegranate1"]


def test_postgres_recall_sees_a_session_recreated_with_the_same_id_and_created_at(postgres_url: str, schema: str,
                                                                                 path: str) -> None:
    clock = FakeClock()  # a frozen clock: the new incarnation has the very same created_at as the old one
    with _open(postgres_url, schema, clock) as reader, _open(postgres_url, schema, clock) as writer:
        writer.session("s").extend([{"role": "user", "content": f"alpha note {i}"} for i in range(3)])
        assert len(_texts(reader, "alpha", "s")) == 3
        writer.delete_session("s")  # the reader never hears of it
        writer.session("s").extend([{"role": "user", "content": f"beta note {i}"} for i in range(5)])
        assert _texts(reader, "alpha", "s") == []
        assert sorted(_texts(reader, "beta note", "s")) == [f"beta note {i}" for i in range(5)]
        assert _vectors(reader, "s") == 5
        writer.session("s").clear()  # same session row, messages gone, new ones after it
        writer.session("s").extend([{"role": "user", "content": f"gamma note {i}"} for i in range(2)])
        assert _texts(reader, "beta", "s") == []
        assert sorted(_texts(reader, "gamma", "s")) == ["gamma note 0", "gamma note 1"]


def test_postgres_recall_replace_and_trim_elsewhere(postgres_url: str, schema: str, path: str) -> None:
    with _open(postgres_url, schema) as reader, _open(postgres_url, schema) as writer:
        s = writer.session("s", max_messages=4)
        s.extend([{"role": "user", "content": f"old turn {i}"} for i in range(4)])
        assert len(_texts(reader, "old turn", "s")) == 4
        s.extend([{"role": "user", "content": f"new turn {i}"} for i in range(2)])  # trims the two oldest
        assert sorted(_texts(reader, "turn", "s")) == ["new turn 0", "new turn 1", "old turn 2", "old turn 3"]
        s.replace([{"role": "user", "content": "only this remains"}])
        assert _texts(reader, "turn remains", "s") == ["only this remains"]


def test_postgres_recall_after_an_append_reads_only_the_new_messages(postgres_url: str, schema: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn of a growing conversation decodes (and fetches) only what was appended, never the whole session."""
    with _open(postgres_url, schema) as mem:
        s = mem.session("long")
        s.extend([{"role": "user", "content": f"filler message number {i} about nothing"} for i in range(400)])
        mem.recall("warm up the cache", session="long", k=1)
        decoded: list[int] = []
        real = postgres_engine.decode_body
        monkeypatch.setattr(postgres_engine, "decode_body", lambda *a, **k: decoded.append(1) or real(*a, **k))
        s.add("user", "the zebra password is marmalade")
        assert _texts(mem, "zebra marmalade", "long", k=1) == ["the zebra password is marmalade"]
        assert 0 < len(decoded) < 10
        decoded.clear()
        assert _texts(mem, "zebra marmalade", "long", k=1) == ["the zebra password is marmalade"]
        assert decoded == []  # nothing changed: no catch-up at all
        s.delete_messages([s.messages(last=1)[0].id])
        assert _texts(mem, "zebra marmalade", "long", k=1) == []
        assert len(decoded) >= 400  # a delete is not an append: the session is loaded again


def test_postgres_recall_cache_eviction_keeps_results_right(postgres_url: str, schema: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_engine, "CACHE_MESSAGES", 5)
    with _open(postgres_url, schema) as mem:
        for sid in ("a", "b", "c"):
            mem.session(sid).extend([{"role": "user", "content": f"{sid} note {i} kiwi"} for i in range(4)])
        for _ in range(2):
            for sid in ("a", "b", "c"):
                assert sorted(_texts(mem, "kiwi", sid)) == [f"{sid} note {i} kiwi" for i in range(4)]
        assert mem.recall_service.engine._cached <= 5 + 4  # the current scope may exceed the bound
        assert len(mem.recall("kiwi", k=20, mode="keyword")) == 12  # namespace-wide: all sessions at once


async def test_postgres_arecall_shares_the_catch_up(postgres_url: str, schema: str, path: str) -> None:
    with _open(postgres_url, schema) as reader, _open(postgres_url, schema) as writer:
        await writer.session("s").aadd("user", "the lighthouse keeper feeds a heron")
        hits = await reader.arecall("heron", session="s", k=1)
        assert hits[0].message.text == "the lighthouse keeper feeds a heron"
        await writer.session("s").aadd("user", "the heron is called Gustav")
        texts = sorted(h.message.text for h in await reader.arecall("heron", session="s", k=5, mode="keyword"))
        assert texts == ["the heron is called Gustav", "the lighthouse keeper feeds a heron"]


@pytest.mark.parametrize("case", ["test_recall_modes_find_the_fact", "test_keyword_mode_returns_only_matches",
                                  "test_filters_role_time_metadata_and_quotes", "test_neighbors_mmr_and_recency",
                                  "test_scope_isolation_between_users_and_namespaces"])
def test_postgres_indexed_path_passes_the_recall_conformance_cases(postgres_url: str, schema: str, path: str,
                                                                   case: str) -> None:
    """The conformance suite's scopes are small (the cached path); the same cases on the HNSW/GIN path."""
    with _open(postgres_url, schema) as mem:
        if case == "test_recall_modes_find_the_fact":
            for mode in ("hybrid", "dense", "keyword"):
                getattr(conformance, case)(mem, mode)
                mem.delete_session("s1")
        else:
            getattr(conformance, case)(mem)
