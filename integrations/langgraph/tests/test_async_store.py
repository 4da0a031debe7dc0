"""BaseStore behaviour through the ASYNC API (``abatch``, ``aput`` ...), on every STORES entry: our own versions of
the upstream ``tests/test_async_store.py`` cases (batch order, filters, namespaces, vector search, concurrency),
plus async/sync interplay on one storage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.store.base import BaseStore, GetOp, Item, ListNamespacesOp, MatchCondition, PutOp, SearchOp
from lg_fakes import HashEmbeddings, cosine, embed_text, index_config
from lg_harness import StoreFactory
from lg_store_data import DOCS, NAMESPACES, keys, scored


async def afill(store: BaseStore) -> None:
    for ns, key, value in DOCS:
        await store.aput(ns, key, value)


async def test_aput_aget_adelete(astore: BaseStore) -> None:
    ns = ("users", "u1")
    assert await astore.aget(ns, "k") is None
    await astore.aput(ns, "k", {"text": "hello"})
    item = await astore.aget(ns, "k")
    assert isinstance(item, Item) and (item.namespace, item.key, item.value) == (ns, "k", {"text": "hello"})
    await astore.aput(ns, "k", {"text": "again"})
    again = await astore.aget(ns, "k")
    assert again is not None and again.value == {"text": "again"} and again.updated_at >= item.updated_at
    assert await astore.aget(("users",), "k") is None
    await astore.adelete(ns, "k")
    assert await astore.aget(ns, "k") is None
    await astore.adelete(ns, "k")


async def test_abatch_results_follow_op_order(astore: BaseStore) -> None:
    await astore.aput(("test", "foo"), "key1", {"data": "value1"})
    await astore.aput(("test", "bar"), "key2", {"data": "value2"})
    results = await astore.abatch(
        [
            GetOp(("test", "foo"), "key1"),
            PutOp(("test", "bar"), "key2", {"data": "value2b"}),
            SearchOp(("test",), filter={"data": "value1"}, limit=10, offset=0),
            ListNamespacesOp(match_conditions=None, max_depth=None, limit=10, offset=0),
            GetOp(("test",), "key3"),
        ]
    )
    first = results[0]
    assert isinstance(first, Item) and first.value == {"data": "value1"}
    assert results[1] is None
    assert isinstance(results[2], list) and [i.key for i in results[2]] == ["key1"]
    assert isinstance(results[3], list) and set(results[3]) == {("test", "foo"), ("test", "bar")}
    assert results[4] is None
    reordered = await astore.abatch(
        [
            SearchOp(("test",), filter=None, limit=5, offset=0),
            GetOp(("test", "bar"), "key2"),
            ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("foo",)),), max_depth=None, limit=5, offset=0),
            PutOp(("test",), "key3", {"data": "value3"}),
            GetOp(("test", "foo"), "key1"),
        ]
    )
    assert isinstance(reordered[0], list) and keys(reordered[0]) == {"key1", "key2"}
    second = reordered[1]
    assert isinstance(second, Item) and second.value == {"data": "value2b"}
    assert reordered[2] == [("test", "foo")]
    assert reordered[3] is None
    fifth = reordered[4]
    assert isinstance(fifth, Item) and fifth.key == "key1"
    third = await astore.aget(("test",), "key3")
    assert third is not None and third.value == {"data": "value3"}


async def test_abatch_puts_deletes_and_gets(astore: BaseStore) -> None:
    await astore.aput(("b",), "gone", {"v": 0})
    assert await astore.abatch(
        [PutOp(("b",), "k1", {"v": 1}), PutOp(("b",), "k2", {"v": 2}), PutOp(("b",), "gone", None), PutOp(("b",), "k1", {"v": 11})]
    ) == [None, None, None, None]
    got = await astore.abatch([GetOp(("b",), "k1"), GetOp(("b",), "k2"), GetOp(("b",), "gone"), GetOp(("b",), "nope")])
    assert [None if g is None else g.value for g in got] == [{"v": 11}, {"v": 2}, None, None]


async def test_abatch_search_and_list_ops(astore: BaseStore) -> None:
    await afill(astore)
    results = await astore.abatch(
        [
            SearchOp(("docs",), filter={"author": "alice"}, limit=10, offset=0),
            SearchOp(("docs",), filter=None, limit=2, offset=0),
            SearchOp(("docs", "bob"), filter=None, limit=10, offset=0),
            ListNamespacesOp(match_conditions=None, max_depth=2, limit=10, offset=0),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("docs", "bob")),), max_depth=None, limit=10, offset=0),
        ]
    )
    assert keys(results[0]) == {"d1", "d2"}
    assert len(results[1]) == 2
    assert keys(results[2]) == {"d3", "d4"}
    assert set(results[3]) == {("docs", "alice"), ("docs", "bob"), ("reports",)}
    assert set(results[4]) == {("docs", "bob"), ("docs", "bob", "drafts")}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"author": "bob"}, {"d3", "d4"}),
        ({"n": {"$eq": 3}}, {"d3"}),
        ({"n": {"$ne": 3}}, {"d1", "d2", "d4", "r1"}),
        ({"n": {"$gt": 3}}, {"d4", "r1"}),
        ({"n": {"$gte": 3}}, {"d3", "d4", "r1"}),
        ({"n": {"$lt": 3}}, {"d1", "d2"}),
        ({"n": {"$lte": 3}}, {"d1", "d2", "d3"}),
        ({"n": {"$gte": 2, "$lt": 5}, "active": True}, {"d3", "d4"}),
        ({"tags": ["b"]}, {"d2", "d4"}),
    ],
)
async def test_asearch_filters(astore: BaseStore, flt: dict[str, Any], expected: set[str]) -> None:
    await afill(astore)
    assert keys(await astore.asearch((), filter=flt, limit=100)) == expected


async def test_asearch_pagination(astore: BaseStore) -> None:
    for i in range(9):
        await astore.aput(("page",), f"k{i}", {"i": i})
    everything = await astore.asearch(("page",), limit=100)
    pages = [await astore.asearch(("page",), limit=4, offset=o) for o in (0, 4, 8)]
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [i.key for p in pages for i in p] == [i.key for i in everything]
    assert keys(everything) == {f"k{i}" for i in range(9)}


async def test_alist_namespaces(astore: BaseStore) -> None:
    for ns in NAMESPACES:
        await astore.aput(ns, "dummy", {"content": "dummy"})
    ls = astore.alist_namespaces
    assert set(await ls(prefix=("t", "test"), limit=100)) == set(NAMESPACES[:4])
    assert set(await ls(suffix=("public", "t"), limit=100)) == {NAMESPACES[i] for i in (0, 2, 4, 5)}
    assert set(await ls(prefix=("t", "*", "documents"), limit=100)) == {NAMESPACES[i] for i in (0, 1, 4, 5, 6)}
    assert await ls(suffix=("some", "*", "public", "t"), limit=100) == [NAMESPACES[5]]
    assert sorted(await ls(max_depth=3, limit=100)) == sorted({ns[:3] for ns in NAMESPACES})
    everything = await ls(limit=100)
    pages = [await ls(limit=3, offset=o) for o in (0, 3, 6)]
    assert [ns for p in pages for ns in p] == everything and len(everything) == len(NAMESPACES)


async def test_concurrent_operations_lose_nothing(astore: BaseStore) -> None:
    """Hundreds of concurrent aput/aget/asearch/alist_namespaces/adelete calls (the stores batch them)."""
    n = 120
    ops: list[Any] = []
    for i in range(n):
        ns = ("c", str(i % 2))
        ops.append(astore.aput(ns, f"key{i}", {"i": i}))
        ops.append(astore.aget(ns, f"key{i}"))
        ops.append(astore.asearch(("c",), limit=5))
        ops.append(astore.alist_namespaces(prefix=("c",), max_depth=2))
    results = await asyncio.gather(*ops)
    assert len(results) == 4 * n
    assert all(isinstance(r, list) for r in results[2::4]) and all(isinstance(r, list) for r in results[3::4])
    listed = [i async for i in _all_items(astore, ("c",))]
    assert sorted(i.value["i"] for i in listed) == list(range(n))

    deletes = [astore.adelete(("c", str(i % 2)), f"key{i}") for i in range(0, n, 2)]
    reads = [astore.aget(("c", str(i % 2)), f"key{i}") for i in range(1, n, 2)]
    outcome = await asyncio.gather(*deletes, *reads)
    survivors = outcome[len(deletes) :]
    assert all(isinstance(r, Item) for r in survivors)  # never-deleted keys are always readable
    assert sorted(r.value["i"] for r in survivors) == list(range(1, n, 2))
    assert sorted([i.value["i"] async for i in _all_items(astore, ("c",))]) == list(range(1, n, 2))


async def _all_items(store: BaseStore, prefix: tuple[str, ...]) -> Any:
    offset = 0
    while page := await store.asearch(prefix, limit=50, offset=offset):
        for item in page:
            yield item
        offset += len(page)


async def test_async_and_sync_instances_share_data(store_factory: StoreFactory) -> None:
    async with store_factory.aopen() as astore:
        await astore.aput(("mix",), "from-async", {"v": 1})
        with store_factory.open() as store:
            item = store.get(("mix",), "from-async")
            assert item is not None and item.value == {"v": 1}
            store.put(("mix",), "from-sync", {"v": 2})
        got = await astore.aget(("mix",), "from-sync")
        assert got is not None and got.value == {"v": 2}
        assert keys(await astore.asearch(("mix",))) == {"from-async", "from-sync"}


# ------------------------------------------------------------------------------------------------ vector search
@pytest.mark.requires("vector")
async def test_avector_search(store_factory: StoreFactory) -> None:
    texts = {"d1": "short text", "d2": "longer text document", "d3": "zebra xylophone quartz"}
    async with store_factory.aopen(index=index_config(["text"])) as astore:
        for k, t in texts.items():
            await astore.aput(("v",), k, {"text": t, "len": len(t)})
        results = scored(await astore.asearch(("v",), query="text document"))
        assert [k for k, _ in results] == sorted(texts, key=lambda k: -cosine(embed_text("text document"), embed_text(texts[k])))
        for k, s in results:
            assert s == pytest.approx(cosine(embed_text("text document"), embed_text(texts[k])), abs=1e-3)
        filtered = scored(await astore.asearch(("v",), query="text document", filter={"len": {"$lt": 15}}))
        assert [k for k, _ in filtered] == ["d1"]
        page = scored(await astore.asearch(("v",), query="text document", limit=1, offset=1))
        assert page == [results[1]]
        await astore.aput(("v",), "d4", {"text": "text document"}, index=False)
        assert "d4" not in keys(await astore.asearch(("v",), query="text document", limit=3))
        await astore.aput(("v",), "d5", {"other": "zzz", "text": "qqq"}, index=["other"])
        top = (await astore.asearch(("v",), query="zzz"))[0]
        assert (top.key, top.score) == ("d5", pytest.approx(1.0, abs=1e-3))


@pytest.mark.requires("vector")
async def test_avector_fields_paths_and_reopen(store_factory: StoreFactory) -> None:
    async with store_factory.aopen(index=index_config(["tags[*]", "meta.title"])) as astore:
        await astore.aput(("fp",), "a", {"tags": ["alpha", "beta"], "meta": {"title": "gamma"}})
        await astore.aput(("fp",), "b", {"tags": ["delta"], "meta": {"title": "epsilon"}})
    embeddings = HashEmbeddings()
    async with store_factory.aopen(index=index_config(["tags[*]", "meta.title"], embed=embeddings)) as astore:
        for query, best in [("beta", "a"), ("gamma", "a"), ("delta", "b"), ("epsilon", "b")]:
            assert scored(await astore.asearch(("fp",), query=query))[0] == (best, pytest.approx(1.0, abs=1e-3))
        assert embeddings.calls == 4  # queries only


@pytest.mark.requires("vector")
async def test_avector_best_match_among_many(store_factory: StoreFactory) -> None:
    async with store_factory.aopen(index=index_config(["key1"])) as astore:
        await astore.aput(("test", "M"), "M", {"key1": "mmm"})
        await asyncio.gather(*(astore.aput(("test", "A"), f"A{i}", {"key1": f"no {i}"}) for i in range(40)))
        results = await astore.asearch(("test",), query="mmm", limit=10)
        assert len(results) == 10 and len(keys(results)) == 10
        assert results[0].key == "M"
        assert results[0].score is not None and results[1].score is not None and results[0].score > results[1].score
