"""``MemvaultStore`` beyond the shared contract, on every memvault backend: hybrid search with per-signal
explanations, other processes' writes seen by the next search, expired / deleted items never served from the cache,
typed errors that change nothing, and isolation from other memvault namespaces (tenants) and store names."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, PutOp, SearchOp
from langgraph.store.memvault import MemvaultInvalidNamespace, MemvaultSearchItem, MemvaultStore
from lg_fakes import HashEmbeddings, cosine, embed_text
from lg_harness import TESTS_DIR, Env, Location, StoreFactory
from lg_memvault import MEMVAULT_STORES, open_memory

from memvault import Memory
from memvault.errors import InvalidFilter, InvalidMetadata, InvalidSessionId, MemvaultError

HYBRID = {"dims": 64, "embed": HashEmbeddings(), "fields": ["text"], "mode": "hybrid"}
DOCS = {
    "d1": "the zebra crossing near the station",
    "d2": "a quiet evening by the lake",
    "d3": "zebras and giraffes at the zoo",
    "d4": "notes about the quarterly budget",
}


@pytest.fixture(params=sorted(MEMVAULT_STORES))
def mv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of MemvaultStores on fresh storage of one memvault backend."""
    name = request.param
    with contextlib.ExitStack() as stack:
        yield StoreFactory(name, MEMVAULT_STORES[name], Env(request, tmp_path, stack))


@pytest.fixture(params=sorted(n for n, spec in MEMVAULT_STORES.items() if "cross_process" in spec.capabilities))
def mv_shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Like ``mv``, on the backends other processes can open (memory:// lives in one process only)."""
    name = request.param
    with contextlib.ExitStack() as stack:
        yield StoreFactory(name, MEMVAULT_STORES[name], Env(request, tmp_path, stack))


@contextlib.contextmanager
def store_on(location: Location, **kwargs: Any) -> Iterator[MemvaultStore]:
    memory = open_memory(location)
    try:
        with MemvaultStore(memory=memory, **kwargs) as store:
            yield store
    finally:
        memory.close()


def put_docs(store: MemvaultStore, ns: tuple[str, ...] = ("docs",)) -> None:
    store.batch([PutOp(ns, key, {"text": text}) for key, text in DOCS.items()])


# ------------------------------------------------------------------------------------------------ hybrid search
def test_hybrid_search_explains_every_score(mv: StoreFactory) -> None:
    store = mv(index=HYBRID)
    put_docs(store)
    query = "zebra station"
    results = store.search(("docs",), query=query, limit=10)
    assert {r.key for r in results} == set(DOCS)
    assert all(isinstance(r, MemvaultSearchItem) and r.signals is not None for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)  # type: ignore[type-var]
    for r in results:
        dense, keyword = r.signals["dense"], r.signals["keyword"]  # type: ignore[index]
        assert dense["score"] == pytest.approx(cosine(embed_text(query), embed_text(DOCS[r.key])), abs=1e-4)
        assert (keyword["score"] > 0) == (r.key in {"d1", "d3"})  # BM25: stemmed terms "zebra", "station"
        assert dense["share"] + keyword["share"] == pytest.approx(1.0)
        assert dense["rank"] >= 1 and keyword["rank"] >= 1
    dense_ranks = sorted(results, key=lambda r: r.signals["dense"]["rank"])  # type: ignore[index]
    assert [r.signals["dense"]["rank"] for r in dense_ranks] == [1.0, 2.0, 3.0, 4.0]  # type: ignore[index]
    assert results[0].key == "d1"  # both terms, the best of both signals
    assert {r.key for r in results[:2]} == {"d1", "d3"}  # keyword matches lead the fused ranking


def test_modes_rank_differently_and_keyword_needs_no_embedder(mv: StoreFactory) -> None:
    store = mv(index={**HYBRID, "mode": "dense"})
    put_docs(store)
    dense = store.search(("docs",), query="zebra", limit=4)
    for r in dense:  # dense mode: the score is the cosine itself
        assert r.score == pytest.approx(cosine(embed_text("zebra"), embed_text(DOCS[r.key])), abs=1e-4)
        assert set(r.signals) == {"dense"}  # type: ignore[arg-type]
    with mv.open(index={"fields": ["text"], "embed": None, "mode": "keyword"}) as keyword_only:
        hits = keyword_only.search(("docs",), query="zebra", limit=4)
        assert [h.key for h in hits[:2]] == ["d1", "d3"] or [h.key for h in hits[:2]] == ["d3", "d1"]
        assert all(set(h.signals) == {"keyword"} for h in hits if h.signals)  # type: ignore[arg-type]
        assert hits[0].score is not None and hits[0].score > 0 and hits[-1].score == 0.0


def test_items_not_indexed_come_after_ranked_ones(mv: StoreFactory) -> None:
    store = mv(index=HYBRID)
    put_docs(store)
    store.put(("docs",), "plain", {"text": "zebra zebra zebra"}, index=False)
    results = store.search(("docs",), query="zebra", limit=10)
    assert [r.key for r in results][-1] == "plain" and results[-1].score is None and results[-1].signals is None
    assert all(r.score is not None for r in results[:-1])


# ------------------------------------------------------------------------------------------------ other processes
_CHILD = """
import json, sys
sys.path[:0] = [{tests!r}, {root!r}]
from lg_memvault import open_memory
from langgraph.store.memvault import MemvaultStore
location = json.loads(sys.argv[1])
memory = open_memory(location)
with MemvaultStore(memory=memory, index={{"embed": "hash", "fields": ["text"]}}) as store:
    store.put(("docs",), "d9", {{"text": "zebra stripes from another process"}})
    store.put(("docs",), "d2", {{"text": "the lake, edited elsewhere"}})
    store.delete(("docs",), "d3")
    store.put(("docs", "new"), "n1", {{"text": "a namespace made elsewhere"}})
memory.close()
"""


def test_another_process_writes_are_seen_by_the_next_search(mv_shared: StoreFactory) -> None:
    mv = mv_shared
    with store_on(mv.location, index={"embed": "hash", "fields": ["text"]}) as store:
        put_docs(store)
        before = {r.key: r.value["text"] for r in store.search(("docs",), query="zebra", limit=10)}  # cache is warm
        assert set(before) == set(DOCS)
        code = _CHILD.format(tests=str(TESTS_DIR), root=str(TESTS_DIR.parents[2]))
        done = subprocess.run([sys.executable, "-c", code, json.dumps(mv.location)], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        after = {r.key: r.value["text"] for r in store.search(("docs",), query="zebra", limit=10)}
        assert set(after) == {"d1", "d2", "d4", "d9", "n1"}
        assert after["d2"] == "the lake, edited elsewhere"
        top = store.search(("docs",), query="zebra stripes another process", limit=1)
        assert top[0].key == "d9"
        assert ("docs", "new") in store.list_namespaces(prefix=("docs",))


def test_another_instance_writes_are_seen_by_the_next_search(mv: StoreFactory) -> None:
    """The same, between two instances (two caches) in one process: every backend."""
    index = {"embed": "hash", "fields": ["text"]}
    with store_on(mv.location, index=index) as reader, store_on(mv.location, index=index) as writer:
        put_docs(writer)
        assert {r.key for r in reader.search(("docs",), query="zebra", limit=10)} == set(DOCS)
        writer.batch([PutOp(("docs",), "d1", None), PutOp(("docs",), "d5", {"text": "zebra five"}),
                      PutOp(("docs",), "d4", {"text": "budget, revised"})])
        hits = {r.key: r.value for r in reader.search(("docs",), query="zebra", limit=10)}
        assert set(hits) == {"d2", "d3", "d4", "d5"} and hits["d4"] == {"text": "budget, revised"}
        for i in range(30):  # many small batches in a row: each seen exactly once, in order
            writer.put(("docs",), "counter", {"text": f"value {i}", "i": i})
            [got] = reader.search(("docs",), filter={"i": {"$gte": 0}})
            assert got.value["i"] == i


# ------------------------------------------------------------------------------------------------ never stale
def test_expired_and_deleted_items_are_never_returned_from_the_cache(mv: StoreFactory) -> None:
    index = {"embed": "hash", "fields": ["text"]}
    with store_on(mv.location, index=index) as store, store_on(mv.location, index=index) as other:
        store.put(("t",), "short", {"text": "zebra short lived"}, ttl=0.5 / 60)
        store.put(("t",), "long", {"text": "zebra long lived"}, ttl=60)
        store.put(("t", "gone"), "deleted", {"text": "zebra deleted"})
        assert {r.key for r in store.search(("t",), query="zebra", refresh_ttl=False)} == {"short", "long", "deleted"}
        other.delete(("t", "gone"), "deleted")  # another cache's delete
        time.sleep(0.7)  # "short" expires; nothing sweeps
        for s in (store, other):
            assert {r.key for r in s.search(("t",), query="zebra", refresh_ttl=False)} == {"long"}
            assert {r.key for r in s.search(("t",), refresh_ttl=False)} == {"long"}
            assert s.get(("t",), "short") is None and s.get(("t", "gone"), "deleted") is None
            assert s.list_namespaces(prefix=("t",)) == [("t",)]
        assert store.sweep_ttl() == 1
        store.put(("t", "gone"), "deleted", {"text": "zebra is back"})  # a key can come back after a delete
        assert {r.key for r in other.search(("t",), query="zebra", refresh_ttl=False)} == {"long", "deleted"}


def test_a_refresh_elsewhere_keeps_the_item_alive_in_this_cache(mv: StoreFactory) -> None:
    ttl = 1.2  # seconds; the checks below are timed from measured instants, so a slow call only narrows margins
    with store_on(mv.location) as store, store_on(mv.location) as other:
        assert other.get(("r",), "absent") is None  # both clients connected before the clock starts
        store.put(("r",), "k", {"v": 1}, ttl=ttl / 60)
        first_expiry = time.monotonic() + ttl  # at the latest
        assert [i.key for i in store.search(("r",), refresh_ttl=False)] == ["k"]  # this cache holds the old expiry
        time.sleep(max(0.0, first_expiry - ttl + 0.6 - time.monotonic()))
        refreshed_at = time.monotonic()  # the refreshed expiry is at least refreshed_at + ttl
        assert other.get(("r",), "k", refresh_ttl=True) is not None
        time.sleep(max(0.0, first_expiry + 0.1 - time.monotonic()))  # past the first expiry
        assert [i.key for i in store.search(("r",), refresh_ttl=False)] == ["k"]
        assert store.sweep_ttl() == 0
        assert time.monotonic() < refreshed_at + ttl, "too slow to tell the two expiries apart"


# ------------------------------------------------------------------------------------------------ typed errors
def _snapshot(store: MemvaultStore) -> list[tuple[Any, ...]]:
    return sorted((i.namespace, i.key, json.dumps(i.value, sort_keys=True)) for i in store.search((), limit=100))


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (PutOp(("ok",), "k2", {"x": float("nan")}), InvalidMetadata),
        (PutOp(("ok",), "k2", {"x": {1, 2}}), InvalidMetadata),  # type: ignore[dict-item]
        (PutOp(("ok",), "k2", ["not", "a", "dict"]), InvalidMetadata),  # type: ignore[arg-type]
        (PutOp(("ok",), "k\x00", {"x": 1}), InvalidSessionId),
        (PutOp(("ok",), 7, {"x": 1}), InvalidSessionId),  # type: ignore[arg-type]
        (PutOp(("a.b",), "k2", {"x": 1}), MemvaultInvalidNamespace),
        (PutOp(("ok",), "k2", {"x": 1}, ttl=-1), InvalidFilter),
        (PutOp(("ok",), "k2", {"x": 1}, index="text"), InvalidFilter),  # type: ignore[arg-type]
        (SearchOp(("ok",), filter={"n": {"$regex": "x"}}), InvalidFilter),
        (SearchOp(("ok",), filter={"n": {"$gt": [1]}}), InvalidFilter),
        (SearchOp(("ok",), limit=-1), InvalidFilter),
        (SearchOp(("ok",), offset="2"), InvalidFilter),  # type: ignore[arg-type]
        (GetOp(("ok",), "k", refresh_ttl="yes"), InvalidFilter),  # type: ignore[arg-type]
        (ListNamespacesOp(max_depth=0), InvalidFilter),
    ],
)
def test_a_bad_argument_raises_a_typed_error_and_changes_nothing(mv: StoreFactory, bad: Any, error: type) -> None:
    store = mv()
    store.put(("ok",), "k", {"x": 0})
    before = _snapshot(store)
    with pytest.raises(error) as raised:
        store.batch([PutOp(("ok",), "k", {"x": 1}), PutOp(("ok",), "k3", {"x": 3}), bad])
    assert isinstance(raised.value, MemvaultError)
    assert _snapshot(store) == before  # the good ops of the batch were not run either
    with store_on(mv.location) as fresh:
        assert _snapshot(fresh) == before


def test_namespace_errors_are_langgraph_and_memvault_errors(mv: StoreFactory) -> None:
    store = mv()
    with pytest.raises(MemvaultInvalidNamespace) as raised:
        store.batch([SearchOp(("a", ""))])
    assert isinstance(raised.value, InvalidNamespaceError) and isinstance(raised.value, InvalidSessionId)
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph", "x"), "k", {"v": 1})


# ------------------------------------------------------------------------------------------------ isolation
def test_store_data_is_invisible_to_other_tenants_and_store_names(mv: StoreFactory) -> None:
    location = mv.location
    acme, other = Memory(location["target"], namespace="acme", **location["options"]), open_memory(location)
    try:
        with MemvaultStore(memory=acme) as a, MemvaultStore(memory=other) as b, \
                MemvaultStore(memory=acme, name="second") as a2:
            a.put(("shared", "ns"), "k", {"owner": "acme"})
            assert b.get(("shared", "ns"), "k") is None and a2.get(("shared", "ns"), "k") is None
            assert b.search(()) == [] and b.list_namespaces() == [] and a2.list_namespaces() == []
            b.put(("shared", "ns"), "k", {"owner": "default"})
            got_a, got_b = a.get(("shared", "ns"), "k"), b.get(("shared", "ns"), "k")
            assert got_a is not None and got_a.value == {"owner": "acme"}
            assert got_b is not None and got_b.value == {"owner": "default"}
        for mem in (acme, other):  # the store's entries live in a reserved namespace no session listing shows
            assert mem.sessions().items == []
            assert mem.recall("acme", k=5) == []
    finally:
        acme.close()
        other.close()
