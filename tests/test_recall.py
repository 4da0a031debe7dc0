"""Unit tests of recall's parts: fusion maths, the where language, embedders, the indexer, the SQLite ANN path."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from memvault import Memory
from memvault.errors import InvalidEmbedder, InvalidFilter
from memvault.recall import fusion
from memvault.recall.embedders import CachedEmbedder, HashEmbedder, as_embedder
from memvault.recall.filters import RecallFilter, compile_where
from memvault.recall.indexer import BackgroundIndexer
from memvault.recall.rank import rank
from memvault.recall.types import SearchOptions

NAN = float("nan")

# -- fusion ---------------------------------------------------------------------------------------------------------


def test_rrf_on_hand_made_rankings() -> None:
    dense = np.array([0.9, 0.8, 0.1, NAN])  # ranks 1, 2, 3, unranked
    keyword = np.array([NAN, 2.0, 5.0, 1.0])  # ranks -, 2, 1, 3
    parts = fusion.rrf({"dense": dense, "keyword": keyword}, {"dense": 1.0, "keyword": 1.0}, k=60)
    total = fusion.combine(parts)
    expected = [1 / 61, 1 / 62 + 1 / 62, 1 / 63 + 1 / 61, 1 / 63]
    assert total == pytest.approx(expected)
    assert list(np.argsort(-total)) == [2, 1, 0, 3]  # 1/63 + 1/61 > 2/62


def test_zscore_fusion_on_hand_made_scores() -> None:
    dense = np.array([1.0, 2.0, 3.0])
    keyword = np.array([10.0, 0.0, 0.0])
    parts = fusion.zscore({"dense": dense, "keyword": keyword}, {"dense": 0.5, "keyword": 0.5})
    zd = (dense - 2.0) / np.std(dense)
    zk = (keyword - keyword.mean()) / np.std(keyword)
    assert parts["dense"] == pytest.approx(0.5 * zd)
    assert parts["keyword"] == pytest.approx(0.5 * zk)
    # a missing signal counts as that signal's minimum
    missing = fusion.zscore({"k": np.array([3.0, 1.0, NAN])}, {})["k"]
    assert missing[2] == pytest.approx(missing[1])
    shares = fusion.shares(parts, 0)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_neighbour_smoothing_stays_inside_a_session() -> None:
    scores = np.array([0.0, 10.0, 0.0, 0.0])
    segment = np.array([0, 0, 1, 1])
    out = fusion.smooth_neighbours(scores, segment, 0.5)
    assert out.tolist() == [5.0, 10.0, 0.0, 0.0]


def test_recency_and_mmr() -> None:
    assert fusion.recency(np.array([0.0, 10.0, 20.0]), 10.0) == pytest.approx([1.0, 0.5, 0.25])
    vectors = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    relevance = np.array([1.0, 0.95, 0.5])
    assert fusion.mmr(vectors, relevance, [0, 1, 2], 2, 1.0) == [0, 1]
    assert fusion.mmr(vectors, relevance, [0, 1, 2], 2, 0.3) == [0, 2]


def test_rank_signals_and_keyword_mode() -> None:
    options = SearchOptions(mode="keyword")
    ranked = rank(5, options, dense=None, keyword=np.array([0.0, 2.0, 1.0]))
    assert [r.index for r in ranked] == [1, 2]  # no term matched -> not a keyword hit
    ranked = rank(2, SearchOptions(mode="hybrid"), dense=np.array([0.1, 0.9, 0.5]), keyword=np.array([3.0, 0.0, 1.0]))
    assert set(ranked[0].signals) == {"dense", "keyword"}
    assert ranked[0].signals["dense"]["rank"] in (1.0, 2.0, 3.0)
    with pytest.raises(InvalidFilter):
        rank(2, SearchOptions(mode="hybrid", fusion="sum"), dense=np.zeros(2), keyword=np.zeros(2))


# -- the where language ------------------------------------------------------------------------------------------

DOC = {"name": "O'Brien", "city": "Zürich", "n": 5, "tags": ["a", "b"], "nested": {"x": 1}, "empty": [], "flag": True}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"name": "O'Brien"}, True),
        ({"name": 'O"Brien'}, False),
        ({"city": "Zürich"}, True),
        ({"city": {"$ne": "Zürich"}}, False),
        ({"n": {"$gt": 4, "$lte": 5}}, True),
        ({"n": {"$lt": 5}}, False),
        ({"n": {"$in": [1, 5]}}, True),
        ({"n": {"$nin": [1, 5]}}, False),
        ({"tags": {"$contains": "a"}}, True),
        ({"name": {"$contains": "Bri"}}, True),
        ({"tags": {"$any": ["z", "b"]}}, True),
        ({"tags": {"$all": ["a", "z"]}}, False),
        ({"name": {"$like": "O'B%"}}, True),
        ({"name": {"$like": "o'b%"}}, False),
        ({"name": {"$ilike": "o'b%"}}, True),
        ({"city": {"$like": "Z_rich"}}, True),
        ({"missing": {"$exists": False}}, True),
        ({"empty": {"$empty": True}}, True),
        ({"tags": {"$empty": True}}, False),
        ({"nested.x": 1}, True),
        ({"flag": 1}, False),  # booleans are not numbers
        ({"$or": [{"n": 1}, {"city": "Zürich"}]}, True),
        ({"$and": [{"n": 5}, {"city": "Paris"}]}, False),
        ({"$not": {"n": 5}}, False),
    ],
)
def test_where_language(where: dict, expected: bool) -> None:
    assert compile_where(where)(DOC) is expected


@pytest.mark.parametrize(
    "where",
    [{"n": {"$regex": "x"}}, {"$xor": []}, {"n": {"$in": 5}}, {"n": {"$gt": [1]}}, {"n": {"$exists": "yes"}},
     {"n": {"$eq": 1, "plain": 2}}, "n = 5", {"": 1}],
)
def test_where_rejects_unknown_shapes(where: object) -> None:
    with pytest.raises(InvalidFilter):
        compile_where(where)  # type: ignore[arg-type]


def test_recall_filter_keys() -> None:
    with pytest.raises(InvalidFilter, match="unknown recall filter"):
        RecallFilter({"speaker": "x"})
    with pytest.raises(InvalidFilter):
        RecallFilter({"role": "robot"})
    with pytest.raises(InvalidFilter):
        RecallFilter({"after": "yesterday"})
    assert RecallFilter(None).empty


# -- embedders -------------------------------------------------------------------------------------------------------


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    e = HashEmbedder(64)
    a, b = e.embed(["hello world", "hello world"])
    assert np.array_equal(a, b) and math.isclose(float(np.linalg.norm(a)), 1.0, rel_tol=1e-5)
    assert e.embed_query("hello world") @ a == pytest.approx(1.0)


def test_cache_never_embeds_the_same_text_twice() -> None:
    calls: list[int] = []

    class Counting(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().embed(texts)

    cached = CachedEmbedder(Counting(32))
    cached.embed(["a", "b", "a"])
    cached.embed(["b", "c"])
    assert calls == [2, 1] and cached.misses == 3


class FakeLangChain:
    model = "fake-lc"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0, 0.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), 1.0, 0.0]


class FakeLlamaIndex:
    model_name = "fake-li"

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        return [[0.0, float(len(t))] for t in texts]

    def get_query_embedding(self, text: str) -> list[float]:
        return [1.0, float(len(text))]


def test_framework_embedders_are_duck_typed() -> None:
    lc = as_embedder(FakeLangChain())
    assert lc.dimension == 3 and "fake-lc" in lc.model_id
    assert np.linalg.norm(lc.embed(["abc"])[0]) == pytest.approx(1.0)
    li = as_embedder(FakeLlamaIndex())
    assert li.dimension == 2 and "fake-li" in li.model_id
    assert li.embed_query("x").shape == (2,)
    with pytest.raises(InvalidEmbedder):
        as_embedder(object())
    with pytest.raises(InvalidEmbedder):
        as_embedder("gpt-embeddings")
    for bad in ("hash-0", "hash--1", "hash-x"):
        with pytest.raises(InvalidEmbedder):
            as_embedder(bad)


def test_memory_with_a_langchain_embedder(tmp_path: Path) -> None:
    with Memory(f"sqlite:///{tmp_path / 'lc.db'}", embedder=FakeLangChain()) as mem:
        mem.session("s").add("user", "short")
        assert mem.recall("short", session="s", k=1, mode="dense")[0].message.text == "short"


def test_real_offline_minilm_model(tmp_path: Path) -> None:
    model = as_embedder("default")
    vectors = model.embed(["The cat sits on the mat", "A kitten rests on a rug", "Stock markets fell sharply"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1, 1, 1], abs=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    with Memory(f"sqlite:///{tmp_path / 'm.db'}") as mem:
        s = mem.session("pets")
        s.add("user", "I adopted a kitten called Miso")
        s.add("user", "The quarterly report is due on Friday")
        hit = mem.recall("what is the name of my cat?", session="pets", k=1, mode="dense")[0]
        assert "Miso" in hit.message.text
        assert mem.index_status().model_id == "all-MiniLM-L6-v2-int8"


# -- indexer -----------------------------------------------------------------------------------------------------------


def test_background_indexer_reports_backlog_and_catches_up() -> None:
    gate = threading.Event()
    seen: list[int] = []

    def handle(work):  # type: ignore[no-untyped-def]
        gate.wait(5)
        seen.extend(len(m) for _, _, m in work)

    indexer = BackgroundIndexer(handle, batch=10)
    for _ in range(30):
        indexer.submit("ns", "s", [object()] * 2)  # type: ignore[list-item]
    assert indexer.backlog == 60
    gate.set()
    assert indexer.flush(10)
    assert indexer.backlog == 0 and sum(seen) == 60
    indexer.close()


@pytest.mark.parametrize("url", ["memory://burst", "sqlite"])
def test_memory_indexer_catches_up_after_a_burst(url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'b.db'}" if url == "sqlite" else url
    with Memory(target, embedder="hash") as mem:
        mem.recall("warm", session="burst")  # starts the recall service: writes from now on feed the indexer
        s = mem.session("burst")
        for i in range(200):
            s.add("user", f"burst message number {i} about topic{i % 7}")
        assert mem.recall_service.flush(30)
        status = mem.index_status()
        assert status.backlog == 0 and status.indexed >= 200
        assert mem.recall("topic3", session="burst", k=50, mode="keyword")


def test_sqlite_backlog_is_visible_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with Memory(url, embedder="hash") as reader:
        reader.index_status()  # creates the recall tables
        with Memory(url, embedder="hash") as writer:  # recall never used here: nothing is embedded on append
            writer.session("w").extend([{"role": "user", "content": f"line {i}"} for i in range(25)])
        assert reader.index_status().backlog == 25
        assert reader.recall("line 7", session="w", k=1, mode="keyword")[0].message.text == "line 7"
        assert reader.index_status().backlog == 25  # keyword recall needs no vectors: it embeds nothing
        assert reader.recall("line 7", session="w", k=1)[0].message.text == "line 7"
        assert reader.index_status().backlog == 0


def test_sqlite_ann_index_rebuilds_after_deletion(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ann.db'}"
    with Memory(url, embedder="hash") as mem:
        engine = mem.recall_service.engine
        engine.exact_max = 50  # force the HNSW path for this small store
        s = mem.session("big", user_id="u")
        s.extend([{"role": "user", "content": f"note {i}: the {w} is here"} for i, w in
                  enumerate(["lighthouse", "volcano", "glacier", "harbour"] * 30)])
        mem.session("other", user_id="v").add("user", "the glacier belongs to someone else")
        first = mem.recall("glacier", user_id="u", k=5)
        assert first and all(h.session_id == "big" and "glacier" in h.message.text for h in first)
        ann_files = list(tmp_path.glob("ann.db.recall-*.usearch"))
        assert len(ann_files) == 1
        ann_files[0].unlink()
        engine._ann = None  # as a fresh process would see it
        again = mem.recall("glacier", user_id="u", k=5)
        assert [h.message.id for h in again] == [h.message.id for h in first]
        assert ann_files[0].exists()
        dense = mem.recall("volcano", user_id="u", k=5, mode="dense")
        assert all(h.session_id == "big" for h in dense)


def _ann_memory(tmp_path: Path, name: str = "ann.db") -> Memory:
    mem = Memory(f"sqlite:///{tmp_path / name}", embedder="hash")
    mem.recall_service.engine.exact_max = 50  # force the HNSW path for this small store
    return mem


def test_sqlite_ann_finds_a_message_whose_pk_was_reused(tmp_path: Path) -> None:
    """Deleting the newest message lets SQLite hand its pk to the next one; the graph is keyed by the vector row's
    own never-reused id, so the new text is found by dense search instead of the deleted one's vector."""
    with _ann_memory(tmp_path) as mem:
        s = mem.session("big")
        s.extend([{"role": "user", "content": f"entry {i} about the {w}"} for i, w in
                  enumerate(["lighthouse", "volcano", "glacier", "harbour"] * 20)])
        s.add("user", "a quiet note about marmalade sandwiches")
        assert mem.recall_service.flush(30)
        assert mem.recall("marmalade sandwiches", namespace="default", k=1, mode="dense")
        newest = s.messages()[-1]
        s.delete_messages([newest.id])
        s.add("user", "zeppelin hangar blueprint")
        assert mem.recall_service.flush(30)
        dense = mem.recall("zeppelin hangar blueprint", namespace="default", k=3, mode="dense")
        assert dense[0].message.text == "zeppelin hangar blueprint"
        assert all("marmalade" not in h.message.text for h in dense)


def test_sqlite_ann_builds_in_background_and_answers_exactly_meanwhile(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from memvault.recall import ann

    monkeypatch.setattr(ann, "BACKGROUND_OVER", 10)
    with _ann_memory(tmp_path) as mem:
        s = mem.session("big")
        s.extend([{"role": "user", "content": f"entry {i} about the {w}"} for i, w in
                  enumerate(["lighthouse", "volcano", "glacier", "harbour"] * 30)])
        assert mem.recall_service.flush(30)
        engine = mem.recall_service.engine
        release = threading.Event()
        real_rows = engine._rows_after
        built_by: list[str] = []

        def slow_rows(min_key: int):  # holds the builder until the first query has been answered
            if threading.current_thread().name == "memvault-ann-build":
                built_by.append("builder")
                release.wait(10)
            return real_rows(min_key)

        monkeypatch.setattr(engine, "_rows_after", slow_rows)
        during = mem.recall("glacier", namespace="default", k=5, mode="dense")
        assert engine._ann is not None and engine._ann.building
        release.set()
        engine._ann.sync(engine._rows_after, 0)  # waits for the builder
        assert built_by == ["builder"] and engine._ann.size == 120
        after = mem.recall("glacier", namespace="default", k=5, mode="dense")
        assert [h.score for h in during] == pytest.approx([h.score for h in after])  # (ids may differ among ties)
        assert all("glacier" in h.message.text for h in after)


def test_sqlite_background_indexer_keeps_the_ann_index_current(tmp_path: Path) -> None:
    with _ann_memory(tmp_path) as mem:
        s = mem.session("big")
        s.extend([{"role": "user", "content": f"entry {i} about the {w}"} for i, w in
                  enumerate(["lighthouse", "volcano", "glacier", "harbour"] * 20)])
        assert mem.recall_service.flush(30)
        mem.recall("volcano", namespace="default", k=3)  # a large scope: the index is now in use
        index = mem.recall_service.engine._ann
        before = index.size
        s.extend([{"role": "user", "content": f"late entry {i}"} for i in range(30)])
        assert mem.recall_service.flush(30)
        assert index.size == before + 30  # added by the indexer, not by a query


def test_sqlite_recall_tables_migrate_from_v1_keeping_vectors(tmp_path: Path) -> None:
    from memvault.backends.sqlite import SQLiteStore
    from memvault.recall import sqlite_engine

    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    store.migrate("recall", sqlite_engine.MIGRATIONS[:1])
    with Memory(store, embedder="hash") as mem:
        mem.session("s").extend([{"role": "user", "content": f"old message {i} about rivers"} for i in range(5)])
        model = HashEmbedder().model_id
        with store.transaction() as c:  # embedded under v1 (pk-keyed vectors)
            rows = c.execute("SELECT pk FROM recall_pending").fetchall()
            c.executemany("INSERT INTO recall_vectors (pk, model, ts, role, vec) VALUES (?, ?, 0, 'user', ?)",
                          [(pk, model, np.ones(HashEmbedder().dimension,
                            dtype="<f4").tobytes()) for (pk,) in rows])
            c.execute("DELETE FROM recall_pending")
    with Memory(f"sqlite:///{path}", embedder="hash") as mem:
        assert mem.index_status().indexed == 5
        assert mem.recall("rivers", session="s", k=5, mode="keyword")
        with mem.store.transaction(write=False) as c:
            ids = [r[0] for r in c.execute("SELECT id FROM recall_vectors ORDER BY id")]
        assert ids == [1, 2, 3, 4, 5]


def test_sqlite_wide_scope_on_the_ann_path_keeps_users_namespaces_and_expiry_apart(tmp_path: Path) -> None:
    from tests.conftest import FakeClock

    clock = FakeClock()
    with Memory(f"sqlite:///{tmp_path / 'wide.db'}", embedder="hash", clock=clock) as mem:
        mem.recall_service.engine.exact_max = 50
        mem.session("a1", user_id="alice").extend(
            [{"role": "user", "content": f"alice entry {i} about the glacier"} for i in range(60)])
        mem.session("b1", user_id="bob").extend(
            [{"role": "user", "content": f"bob entry {i} about the glacier"} for i in range(60)])
        mem.session("short", user_id="alice", ttl=10).add("user", "alice expiring glacier secret")
        other = Memory(mem.store, namespace="tenant2", embedder="hash")
        other.session("t", user_id="alice").add("user", "tenant two glacier secret")
        assert mem.recall_service.flush(30) and other.recall_service.flush(30)
        clock.advance(60)  # "short" has expired (not purged yet)
        alice = mem.recall("glacier secret", user_id="alice", k=70)
        assert len(alice) == 60 and all(h.session_id == "a1" and h.namespace == "default" for h in alice)
        everyone = mem.recall("glacier", k=200)
        assert {h.session_id for h in everyone} == {"a1", "b1"}
        assert mem.recall_service.engine._ann is not None  # the wide path was taken


def test_ann_index_then_default_embedder_in_a_fresh_process(tmp_path: Path) -> None:
    """Regression: importing onnxruntime after usearch segfaults; a large-scope query may open the HNSW index before
    the default embedder is first loaded, so the index module must load onnxruntime first."""
    import subprocess
    import sys

    script = (
        "import numpy as np; from pathlib import Path; from memvault.recall.ann import AnnIndex\n"
        f"index = AnnIndex(Path({str(tmp_path / 'x.usearch')!r}), 'm', 8)\n"
        "index.sync(lambda k: [(np.arange(1, 11), np.eye(10, 8, dtype=np.float32))] if k == 0 else [], 10)\n"
        "import onnxruntime\n"
        "print(index.search(np.eye(1, 8, dtype=np.float32)[0], 1)[0].tolist())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"


def test_sqlite_scope_grows_incrementally_after_appends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recall after an append decodes and indexes only the new messages (not the whole session again); any other
    change (a delete) still reloads the session."""
    from memvault.recall import sqlite_engine

    with Memory(f"sqlite:///{tmp_path / 'inc.db'}", embedder="hash") as mem:
        s = mem.session("long")
        s.extend([{"role": "user", "content": f"filler message number {i} about nothing"} for i in range(400)])
        assert mem.recall_service.flush(30)
        mem.recall("warm up the cache", session="long", k=1)
        decoded: list[int] = []
        real = sqlite_engine.decode_body
        monkeypatch.setattr(sqlite_engine, "decode_body", lambda *a, **k: decoded.append(1) or real(*a, **k))
        s.add("user", "the zebra password is marmalade")
        assert mem.recall_service.flush(30)
        hits = mem.recall("zebra marmalade", session="long", k=1, mode="keyword")
        assert hits[0].message.text == "the zebra password is marmalade"
        assert len(decoded) < 10  # the new message and the hits, never the 401 messages of the session
        decoded.clear()
        s.delete_messages([hits[0].message.id])
        assert mem.recall("zebra marmalade", session="long", k=1, mode="keyword") == []
        assert len(decoded) >= 400  # a delete is not an append: the session is reloaded


@pytest.mark.parametrize("query", ["CANDIDATES_BY_VECTOR", "CANDIDATES_BY_MESSAGE"])
def test_sqlite_wide_recall_candidate_queries_never_scan_the_messages(tmp_path: Path, query: str) -> None:
    """The namespace-wide path fetches candidates by key; a plan that scans `messages` made it 6x slower at 100K
    messages (a LEFT JOIN filtered on the vector id), so the plan itself is checked, not a timing."""
    from memvault.recall import sqlite_engine

    with Memory(f"sqlite:///{tmp_path / 'plan.db'}", embedder="hash") as mem:
        mem.session("s").extend([{"role": "user", "content": f"entry {i} about the glacier"} for i in range(200)])
        assert mem.recall_service.flush(30)
        mem.recall("glacier", k=5)  # creates the recall tables and their indexes
        sql = getattr(sqlite_engine, query).format(marks="?,?,?")
        with mem.store.transaction(write=False) as c:
            c.execute("ANALYZE")
            plan = [row[-1] for row in c.execute(f"EXPLAIN QUERY PLAN {sql}", (1, 2, 3))]
    assert plan and all(step.startswith("SEARCH") for step in plan), plan
    first = "v" if query == "CANDIDATES_BY_VECTOR" else "m"
    assert plan[0].startswith(f"SEARCH {first} USING INTEGER PRIMARY KEY"), plan


def _fts_state(mem: Memory, text: str) -> tuple[int, int | None]:
    """(FTS5 rows of the message holding ``text``, its queue row's fts flag or None when it left the queue)."""
    with mem.store.transaction(write=False) as c:
        pk = c.execute("SELECT pk FROM messages WHERE body LIKE ?", (f"%{text}%",)).fetchone()[0]
        fts = c.execute("SELECT count(*) FROM recall_fts WHERE rowid = ?", (pk,)).fetchone()[0]
        flag = c.execute("SELECT fts FROM recall_pending WHERE pk = ?", (pk,)).fetchone()
    return int(fts), None if flag is None else int(flag[0])


def test_sqlite_append_queues_keywords_and_a_wide_keyword_query_sees_them_at_once(tmp_path: Path) -> None:
    """Schema v4: the insert trigger only queues the message (tokenizing inside the append doubled its cost); a
    query over FTS5 first writes the queued rows, so another process's newest message is found by keyword before
    any indexer ran, and nothing is embedded for it."""
    url = f"sqlite:///{tmp_path / 'fts.db'}"
    with _ann_memory(tmp_path, "fts.db") as reader:
        reader.session("big").extend([{"role": "user", "content": f"entry {i} about the glacier"} for i in range(60)])
        assert reader.recall_service.flush(30)
        assert reader.recall("glacier", k=3, mode="keyword")  # the FTS5 path over the whole namespace
        with Memory(url, embedder="hash") as writer:  # never recalls: no indexer in this process
            writer.session("late").add("user", "the zeppelin landed at noon")
        assert _fts_state(reader, "zeppelin") == (0, 0)  # the append wrote no FTS5 row
        hits = reader.recall("zeppelin", k=3, mode="keyword")
        assert [h.message.text for h in hits] == ["the zeppelin landed at noon"]
        assert _fts_state(reader, "zeppelin") == (1, 1)  # keywords written, vector still queued
        assert reader.recall("zeppelin", k=3)[0].message.text == "the zeppelin landed at noon"
        assert _fts_state(reader, "zeppelin") == (1, None)  # embedded: left the queue, FTS5 row kept


def test_sqlite_indexer_writes_keywords_before_a_message_leaves_the_queue(tmp_path: Path) -> None:
    with _ann_memory(tmp_path) as mem:
        s = mem.session("s")
        s.extend([{"role": "user", "content": f"note {i} about the harbour"} for i in range(60)])
        s.add("user", "a remark on marmalade")
        assert mem.recall_service.flush(30)
        with mem.store.transaction(write=False) as c:
            assert c.execute("SELECT count(*) FROM recall_pending").fetchone()[0] == 0
            assert c.execute("SELECT count(*) FROM recall_fts").fetchone()[0] == 61
        assert mem.recall("marmalade", k=1, mode="keyword")[0].message.text == "a remark on marmalade"
        s.delete_messages([s.messages()[-1].id])
        assert mem.recall("marmalade", k=1, mode="keyword") == []


def test_sqlite_recall_tables_migrate_from_v3_without_rewriting_keywords(tmp_path: Path) -> None:
    from memvault.backends.sqlite import SQLiteStore
    from memvault.recall import sqlite_engine

    path = tmp_path / "v3.db"
    store = SQLiteStore(path)
    store.migrate("recall", sqlite_engine.MIGRATIONS[:3])
    with Memory(store, embedder="hash") as writer:  # v3 triggers: FTS5 rows written by the append, queue fts-less
        writer.session("s").extend([{"role": "user", "content": f"old message {i} about rivers"} for i in range(5)])
    with _ann_memory(tmp_path, "v3.db") as mem:
        mem.recall_service.engine.exact_max = 3
        with mem.store.transaction(write=False) as c:
            assert c.execute("SELECT count(*) FROM recall_pending WHERE fts = 1").fetchone()[0] == 5
        mem.session("s").add("user", "new message about rivers")
        hits = mem.recall("rivers", k=10, mode="keyword")
        assert len(hits) == 6  # no FTS5 row written twice, the new one added
        assert mem.recall_service.flush(30) and mem.index_status().backlog == 0
        assert len(mem.recall("rivers", k=10)) == 6
