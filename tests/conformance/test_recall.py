"""Conformance: recall and document collections on every backend (hash embedder: fast and deterministic)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from memvault import Memory
from memvault.errors import EmbeddingModelMismatch, InvalidFilter
from memvault.recall import Document
from tests.conftest import MemoryFactory

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)

FACTS = [
    ("user", "I adopted a golden retriever puppy named Biscuit last week"),
    ("assistant", "Congratulations! Golden retrievers are wonderful family dogs."),
    ("user", "My sister lives in Lisbon and works as an architect"),
    ("assistant", "Lisbon has beautiful architecture, she must enjoy it."),
    ("user", "I am allergic to peanuts, please remember that for recipes"),
    ("assistant", "Noted: no peanuts in any recipe I suggest."),
]


@pytest.fixture
def hmem(make_memory: MemoryFactory) -> Memory:
    return make_memory(embedder="hash")


def _fill(mem: Memory, sid: str = "s1", user_id: str | None = "alice", facts=FACTS) -> None:
    s = mem.session(sid, user_id=user_id)
    for i, (role, text) in enumerate(facts):
        s.add(role, text, created_at=T0 + timedelta(minutes=i), metadata={"i": i})


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_recall_modes_find_the_fact(hmem: Memory, mode: str) -> None:
    _fill(hmem)
    hits = hmem.recall("peanuts allergy", session="s1", k=3, mode=mode)
    assert hits, mode
    assert "peanuts" in hits[0].message.text
    assert hits[0].session_id == "s1" and hits[0].namespace == hmem.namespace
    assert hits[0].message.seq is not None
    expected = {"hybrid": {"dense", "keyword"}, "dense": {"dense"}, "keyword": {"keyword"}}[mode]
    assert set(hits[0].signals) == expected
    assert abs(sum(s["share"] for s in hits[0].signals.values()) - 1.0) < 1e-6
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_keyword_mode_returns_only_matches(hmem: Memory) -> None:
    _fill(hmem)
    hits = hmem.recall("Lisbon", session="s1", k=10, mode="keyword")
    assert {h.message.text for h in hits} == {FACTS[2][1], FACTS[3][1]}


def test_recall_sees_messages_added_after_first_query(hmem: Memory) -> None:
    _fill(hmem)
    assert hmem.recall("Biscuit", session="s1", k=1)[0].message.text == FACTS[0][1]
    hmem.session("s1").add("user", "We moved to Copenhagen in March")
    assert hmem.recall("Copenhagen", session="s1", k=1)[0].message.text.startswith("We moved to Copenhagen")
    hmem.session("s1").delete_messages([hmem.recall("Copenhagen", session="s1", k=1)[0].message.id])
    assert all("Copenhagen" not in h.message.text for h in hmem.recall("Copenhagen", session="s1", k=10))


def test_scope_isolation_between_users_and_namespaces(hmem: Memory) -> None:
    _fill(hmem, "a1", "alice")
    _fill(hmem, "b1", "bob", [("user", "Bob's secret: the peanuts are in the blue jar")])
    hmem.session("other", namespace="tenant2", user_id="alice").add("user", "peanuts in tenant two")
    for mode in ("hybrid", "dense", "keyword"):
        alice = hmem.recall("peanuts", user_id="alice", k=20, mode=mode)
        assert alice and {h.session_id for h in alice} == {"a1"}, mode
        bob = hmem.recall("peanuts", user_id="bob", k=20, mode=mode)
        assert {h.session_id for h in bob} == {"b1"}, mode
        everyone = hmem.recall("peanuts", k=20, mode=mode)
        assert {h.session_id for h in everyone} >= {"a1", "b1"} and "other" not in {h.session_id for h in everyone}
        t2 = hmem.recall("peanuts", namespace="tenant2", k=20, mode=mode)
        assert {(h.namespace, h.session_id) for h in t2} == {("tenant2", "other")}
    assert hmem.recall("peanuts", session="b1", user_id="alice") == []


def test_filters_role_time_metadata_and_quotes(hmem: Memory) -> None:
    s = hmem.session("f")
    s.add("user", "Meeting with O'Brien about the Zürich office", metadata={"who": "O'Brien", "city": "Zürich"},
          created_at=T0)
    s.add("assistant", "O'Brien confirmed the Zürich meeting", metadata={"who": "Ünal"},
          created_at=T0 + timedelta(days=2))
    hits = hmem.recall("O'Brien Zürich", session="f", filters={"metadata": {"who": "O'Brien"}})
    assert [h.message.metadata["who"] for h in hits] == ["O'Brien"]
    hits = hmem.recall("O'Brien", session="f", filters={"metadata": {"who": {"$in": ["Ünal"]}}})
    assert [h.message.role for h in hits] == ["assistant"]
    assert [h.message.role for h in hmem.recall("O'Brien", session="f", filters={"role": "assistant"})] == [
        "assistant"
    ]
    after = hmem.recall("meeting", session="f", filters={"after": T0 + timedelta(days=1)})
    assert [h.message.role for h in after] == ["assistant"]
    before = hmem.recall("meeting", session="f", filters={"before": T0 + timedelta(days=1)})
    assert [h.message.role for h in before] == ["user"]
    assert hmem.recall("meeting", filters={"session": "nope"}) == []
    with pytest.raises(InvalidFilter):
        hmem.recall("meeting", session="f", filters={"colour": "red"})
    with pytest.raises(InvalidFilter):
        hmem.recall("meeting", session="f", filters={"metadata": {"who": {"$regex": "x"}}})
    with pytest.raises(InvalidFilter):
        hmem.recall("meeting", session="f", mode="fuzzy")


def test_neighbors_mmr_and_recency(hmem: Memory) -> None:
    _fill(hmem)
    hit = hmem.recall("sister Lisbon architect", session="s1", k=1, neighbors=1)[0]
    assert hit.message.text == FACTS[2][1]
    assert [m.text for m in hit.neighbors] == [FACTS[1][1], FACTS[3][1]]
    diverse = hmem.recall("Lisbon", session="s1", k=2, mmr=0.3)
    assert len(diverse) == 2 and len({h.message.id for h in diverse}) == 2
    s = hmem.session("r")
    s.add("user", "my favourite drink is coffee", created_at=T0)
    s.add("user", "my favourite drink is tea", created_at=T0 + timedelta(days=300))
    newest = hmem.recall("favourite drink", session="r", k=1, recency_half_life=timedelta(days=7))[0]
    assert newest.message.text.endswith("tea") and "recency" in newest.signals


async def test_arecall_and_async_collection(hmem: Memory) -> None:
    _fill(hmem)
    hits = await hmem.arecall("peanuts", session="s1", k=1)
    assert "peanuts" in hits[0].message.text
    col = hmem.collection("async-docs")
    await col.aupsert([Document("1", "apples are red"), Document("2", "the sky is blue")])
    assert await col.acount() == 2
    assert (await col.asearch("sky", k=1))[0].document.id == "2"
    assert await col.adelete(["1"]) == 1 and await col.acount() == 1


def test_index_status_and_reindex(hmem: Memory) -> None:
    _fill(hmem)
    hmem.recall("anything", session="s1")
    status = hmem.index_status()
    assert status.backlog == 0 and status.indexed >= len(FACTS) and status.model_id == "hash-256"
    seen: list[tuple[int, int]] = []
    assert hmem.reindex(progress=lambda done, total: seen.append((done, total))) == len(FACTS)
    assert seen and seen[-1] == (len(FACTS), len(FACTS))
    assert "peanuts" in hmem.recall("peanuts", session="s1", k=1)[0].message.text


def test_model_change_is_detected(make_memory: MemoryFactory) -> None:
    first = make_memory(embedder="hash")
    _fill(first)
    first.recall("peanuts", session="s1")
    first.close()
    other = make_memory(embedder="hash-64")
    with pytest.raises(EmbeddingModelMismatch, match="reindex"):
        other.recall("peanuts", session="s1")
    other.reindex()
    assert "peanuts" in other.recall("peanuts", session="s1", k=1)[0].message.text
    assert other.index_status().model_id == "hash-64"


# -- collections --------------------------------------------------------------------------------------------------


def test_collection_upsert_replaces_and_searches(hmem: Memory) -> None:
    col = hmem.collection("kb")
    ids = col.upsert([Document(None, "Paris is the capital of France", {"lang": "en", "tags": ["geo", "eu"]}),
                      Document("1", "Berlin is the capital of Germany", {"lang": "en", "tags": ["geo"]}),
                      Document("2", "Der Rhein fließt durch Köln", {"lang": "de", "who": "O'Brien"})])
    assert len(ids) == 3 and ids[1:] == ["1", "2"] and ids[0]
    assert col.count() == 3
    assert col.upsert([Document("1", "Berlin is the capital and largest city of Germany", {"lang": "en"})]) == ["1"]
    assert col.count() == 3
    assert col.get(["2", "missing", "1"])[1].text.startswith("Berlin is the capital and largest")
    assert [d.id for d in col.get(["2", "missing", "1"])] == ["2", "1"]
    for mode in ("dense", "keyword", "hybrid"):
        hits = col.search("capital of Germany", k=2, mode=mode)
        assert hits[0].document.id == "1", mode
        assert hits[0].document.vector is not None and len(hits[0].document.vector) == 256
    assert [h.document.id for h in col.search("Köln", k=3, where={"who": "O'Brien"})] == ["2"]
    assert {h.document.id for h in col.search("capital", k=5, where={"tags": {"$contains": "eu"}})} == {ids[0]}
    assert col.search("capital", where={"lang": {"$ne": "en"}, "who": {"$exists": True}})[0].document.id == "2"
    with pytest.raises(InvalidFilter):
        col.search("x", where={"lang": {"$near": 1}})
    assert col.delete(where={"lang": "de"}) == 1
    with pytest.raises(InvalidFilter):
        col.delete()
    assert col.clear() == 2 and col.count() == 0


def test_collection_given_vectors_and_mmr(hmem: Memory) -> None:
    col = hmem.collection("vecs", embedder="hash-8")
    col.upsert([Document("a", "x", vector=[1, 0, 0, 0, 0, 0, 0, 0]),
                Document("b", "y", vector=[0.9, 0.1, 0, 0, 0, 0, 0, 0]),
                Document("c", "z", vector=[0, 1, 0, 0, 0, 0, 0, 0])])
    hits = col.search(vector=[1, 0, 0, 0, 0, 0, 0, 0], k=3)
    assert [h.document.id for h in hits] == ["a", "b", "c"]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    diverse = col.search(vector=[1, 0, 0, 0, 0, 0, 0, 0], k=2, mmr=0.3, fetch_k=3)
    assert [h.document.id for h in diverse] == ["a", "c"]
    with pytest.raises(Exception, match="8-d"):
        col.upsert([Document("d", "w", vector=[1.0, 2.0])])


def test_collection_search_sees_upserts_and_deletes_after_a_search(hmem: Memory) -> None:
    """Searches cache the normalised matrix; a change between two searches must still show."""
    col = hmem.collection("moving", embedder="hash-8")
    col.upsert([Document("a", "x", vector=[1, 0, 0, 0, 0, 0, 0, 0]), Document("b", "y", vector=[0, 1, 0, 0, 0, 0, 0, 0])])
    assert col.search(vector=[0, 0, 1, 0, 0, 0, 0, 0], k=1)[0].score == pytest.approx(0.0, abs=1e-6)
    col.upsert([Document("c", "z", vector=[0, 0, 5, 0, 0, 0, 0, 0])])
    assert [h.document.id for h in col.search(vector=[0, 0, 1, 0, 0, 0, 0, 0], k=1)] == ["c"]
    col.upsert([Document("a", "x", vector=[0, 0, 2, 0.1, 0, 0, 0, 0])])  # replaced: now near the query too
    assert {h.document.id for h in col.search(vector=[0, 0, 1, 0, 0, 0, 0, 0], k=2)} == {"a", "c"}
    col.delete(["c"])
    assert [h.document.id for h in col.search(vector=[0, 0, 1, 0, 0, 0, 0, 0], k=1)] == ["a"]


def test_collections_are_isolated_from_conversations(hmem: Memory) -> None:
    _fill(hmem)
    hmem.collection("kb").upsert([Document("1", "peanuts are legumes")])
    assert all(h.session_id == "s1" for h in hmem.recall("peanuts", k=20))
    assert "kb" not in {i.id for i in hmem.sessions().items}
    assert hmem.collection("kb", namespace="t2").count() == 0
    assert hmem.collection("other").count() == 0


def test_native_engine_where_the_backend_has_one(hmem: Memory, backend: str) -> None:
    engine = hmem.recall_service.engine.name
    expected = {"sqlite": "sqlite", "postgres": "postgres"}.get(backend, "in-process")
    assert engine == expected


def test_a_recreated_session_is_not_served_from_a_stale_cache(make_memory: MemoryFactory) -> None:
    reader = make_memory(embedder="hash")
    writer = make_memory(embedder="hash")
    writer.session("x").add("user", "the password hint is a blue whale")
    assert "whale" in reader.recall("whale", session="x", k=1)[0].message.text
    writer.delete_session("x")  # the reader's Memory never hears of it
    writer.session("x").add("user", "the password hint is a red fox")
    texts = [h.message.text for h in reader.recall("password hint", session="x", k=5)]
    assert texts == ["the password hint is a red fox"]
