"""memvault.documents and memvault.kv at the core: key encoding, index paths, filter semantics, the cache's
compaction and change-log catch-up (including a reload after the log was pruned), damaged entries, key-value basics.
The LangGraph / LangChain adapters are tested on every backend in integrations/*/tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memvault import Memory
from memvault.contract import AppendOptions, Entry
from memvault.documents import DocumentStore, Get, Put, Search, SearchIndex, compile_filter, texts_at_path
from memvault.documents import layout as docs
from memvault.documents import store as document_store
from memvault.errors import CorruptData, EmbeddingModelMismatch, InvalidFilter
from memvault.kv import KeyValueStore


@pytest.fixture(params=["memory", "sqlite"])
def memory(request: pytest.FixtureRequest, tmp_path: Path) -> Memory:
    url = f"memory://docs-{tmp_path.name}" if request.param == "memory" else f"sqlite:///{tmp_path / 'd.db'}"
    mem = Memory(url)
    yield mem
    mem.close()


HASH = SearchIndex(embed="hash", fields=["text"])


# ------------------------------------------------------------------------------------------------ layout
labels = st.text(st.characters(blacklist_characters="\x00.", blacklist_categories=("Cs",)), min_size=1, max_size=6)


@given(st.lists(labels, min_size=1, max_size=4), st.text(st.characters(blacklist_characters="\x00",
                                                                       blacklist_categories=("Cs",)), max_size=8))
def test_item_keys_round_trip_and_prefixes_are_key_ranges(namespace: list[str], key: str) -> None:
    entry_key = docs.item_key(namespace, key)
    assert docs.split_item_key(entry_key) == (tuple(namespace), key)
    for depth in range(len(namespace) + 1):
        start, stop = docs.scope_range(namespace[:depth])
        assert (start is None or entry_key >= start) and (stop is None or entry_key < stop)
    other = [*namespace[:-1], namespace[-1] + "x"]  # a sibling label that extends this one is outside its range
    start, stop = docs.scope_range(namespace)
    assert not (start <= docs.item_key(other, key) < stop)  # type: ignore[operator]


def test_texts_at_path_follow_langgraph_paths() -> None:
    value = {"a": {"b": "x"}, "l": ["p", "q"], "n": 3, "objs": [{"t": "u"}, {"t": "v"}], "f": True}
    assert texts_at_path(value, "a.b") == ["x"]
    assert texts_at_path(value, "l[*]") == ["p", "q"]
    assert texts_at_path(value, "l[-1]") == ["q"] and texts_at_path(value, "l[5]") == []
    assert texts_at_path(value, "objs[*].t") == ["u", "v"]
    assert texts_at_path(value, "{a.b,n}") == ["x", "3"]
    assert texts_at_path(value, "missing.path") == [] and texts_at_path(value, "f") == ["True"]
    assert texts_at_path(value, "$") == texts_at_path(value, "") and '"n": 3' in texts_at_path(value, "$")[0]


def test_filter_semantics() -> None:
    value = {"n": 1, "b": True, "s": "m", "tags": ["a", "b"], "user": {"level": 2, "name": "x"}}
    matches = compile_filter
    assert matches({"n": 1.0})(value) and not matches({"n": True})(value) and not matches({"b": 1})(value)
    assert matches({"tags": ["a", "b"]})(value) and not matches({"tags": ["b", "a"]})(value)
    assert matches({"user.level": 2})(value) and matches({"user": {"level": 2}})(value)
    assert matches({"user": {"level": {"$gte": 2}}})(value)
    assert matches({"missing": {"$ne": 1}})(value) and not matches({"missing": {"$eq": None}})(value)
    assert matches({"s": {"$gt": "a", "$lt": "z"}})(value) and not matches({"s": {"$gt": 0}})(value)
    assert not matches({"b": {"$gt": 0}})(value)  # booleans are not numbers
    for bad in ({"n": {"$in": [1]}}, {"n": {"$gt": None}}, {"": 1}, {"n": {"$gt": 1, "x": 2}}, "n=1", {"n": float("nan")}):
        with pytest.raises(InvalidFilter):
            compile_filter(bad)


# ------------------------------------------------------------------------------------------------ the cache
def test_updates_compact_the_cache_without_changing_results(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    import memvault.recall.docindex as docindex

    monkeypatch.setattr(docindex, "COMPACT_MIN_DEAD", 10)
    store = DocumentStore(memory, index=HASH)
    for round_ in range(4):
        store.batch([Put(("c",), f"k{i}", {"text": f"round {round_} item {i} apple", "i": i}) for i in range(12)])
        hits = store.search(("c",), query="apple item 3", limit=12)
        assert {h.key for h in hits} == {f"k{i}" for i in range(12)}
        assert all(h.value["text"].startswith(f"round {round_} ") for h in hits)
        assert hits[0].key == "k3"
    cache = store._cache
    assert cache.dead < cache.n or cache.n == 12  # compacted along the way
    assert cache.keywords.docs == 12


def test_a_pruned_change_log_makes_a_lagging_cache_reload(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(document_store, "LOG_KEEP", 5)  # where the store reads them
    monkeypatch.setattr(document_store, "LOG_PRUNE_EVERY", 5)
    reader, writer = DocumentStore(memory, index=HASH), DocumentStore(memory, index=HASH)
    writer.put(("p",), "first", {"text": "pear"})
    assert [h.key for h in reader.search(("p",), query="pear")] == ["first"]
    for i in range(20):  # more batches than the log keeps: the reader's position is pruned away
        writer.put(("p",), f"k{i}", {"text": f"pear {i}"})
    writer.delete(("p",), "first")
    loads = []
    original = reader._load
    monkeypatch.setattr(reader, "_load", lambda *a, **k: (loads.append(1), (yield from original(*a, **k)))[1])
    keys = {h.key for h in reader.search(("p",), query="pear", limit=50)}
    assert keys == {f"k{i}" for i in range(20)} and loads == [1]


def test_damaged_entries_cost_only_themselves(memory: Memory) -> None:
    store = DocumentStore(memory, index=HASH)
    store.put(("d",), "good", {"text": "fine"})
    memory.store.put_entries(store.ns, store.name, [Entry("item", docs.item_key(("d",), "bad"), b"garbage")],
                             AppendOptions())
    assert [h.key for h in store.search(("d",), query="fine")] == ["good"]
    with pytest.raises(CorruptData):
        store.get(("d",), "bad")
    assert store.get(("d",), "good") is not None


def test_a_model_change_is_detected(memory: Memory) -> None:
    DocumentStore(memory, index=HASH).put(("m",), "k", {"text": "hello"})
    other = DocumentStore(memory, index=SearchIndex(embed="hash-64", fields=["text"]))
    with pytest.raises(EmbeddingModelMismatch):
        other.search(("m",), query="hello")
    assert [h.key for h in other.search(("m",), query="hello", mode="keyword")] == ["k"]
    assert other.reindex() == 1
    assert other.search(("m",), query="hello")[0].signals["dense"]["score"] == pytest.approx(1.0)  # type: ignore[index]


def test_batch_reads_see_the_store_before_its_writes(memory: Memory) -> None:
    store = DocumentStore(memory)
    store.put(("b",), "k", {"v": 1})
    got, _, found = store.batch([Get(("b",), "k"), Put(("b",), "k", {"v": 2}), Search(("b",))])
    assert got.value == {"v": 1} and [h.value for h in found] == [{"v": 1}]
    assert store.get(("b",), "k").value == {"v": 2}  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------ key-value
async def test_key_value_store(memory: Memory) -> None:
    kv = KeyValueStore(memory, "t")
    kv.mset([("a", b"1"), ("b/\x01", b"\x00"), ("a", b"2")])
    assert kv.mget(["a", "b/\x01", "c"]) == [b"2", b"\x00", None]
    assert list(kv.yield_keys(prefix="b")) == ["b/\x01"]
    await kv.amset([(f"p{i:04d}", b"x") for i in range(2500)])  # more than one scan page
    assert len([k async for k in kv.ayield_keys(prefix="p")]) == 2500
    assert await kv.amdelete(["a", "zz"]) == 1
    assert KeyValueStore(memory, "other").mget(["b/\x01"]) == [None]
