"""BaseStore behaviour through the SYNC API, on every STORES entry: our own versions of the upstream store tests
(langgraph-checkpoint-sqlite / -postgres ``tests/test_store.py``), written against the common contract.

Where upstream stores disagree the test asserts only the common part, and the rest is a declared capability:
the order of a search without a query (``recency_order``), whether an update keeps ``created_at``
(``preserves_created_at``), nested filters (``filter_dotted_path`` / ``filter_nested_dict``).
"""

from __future__ import annotations

import time

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from lg_fakes import HashEmbeddings, cosine, embed_text, embed_texts, index_config
from lg_harness import StoreFactory, Worker
from lg_store_data import DOCS, NAMESPACES, keys, scored


def fill(store: BaseStore) -> None:
    for ns, key, value in DOCS:
        store.put(ns, key, value)


# ------------------------------------------------------------------------------------------------ basic ops
def test_put_get_update_delete(store: BaseStore) -> None:
    ns = ("users", "u1", "memories")
    assert store.get(ns, "k") is None
    store.put(ns, "k", {"text": "hello", "nested": {"x": [1, 2]}})
    item = store.get(ns, "k")
    assert isinstance(item, Item)
    assert (item.namespace, item.key, item.value) == (ns, "k", {"text": "hello", "nested": {"x": [1, 2]}})
    assert item.created_at is not None and item.updated_at is not None
    assert item.updated_at >= item.created_at

    store.put(ns, "k", {"text": "updated"})
    updated = store.get(ns, "k")
    assert updated is not None and updated.value == {"text": "updated"}  # replaced, not merged
    assert updated.updated_at >= item.updated_at

    assert store.get(("users", "u1"), "k") is None  # a parent namespace is another namespace
    assert store.get(("users", "u1", "memories", "x"), "k") is None
    assert store.get(("users", "u2", "memories"), "k") is None

    store.delete(ns, "k")
    assert store.get(ns, "k") is None
    store.delete(ns, "k")  # deleting what is not there is fine
    store.delete(("never", "written"), "nothing")


def test_keys_and_labels_are_exact_strings(store: BaseStore) -> None:
    """Keys and labels with spaces, quotes, unicode, SQL/LIKE/GLOB metacharacters; case matters."""
    odd = ["a b", "it's", 'say "hi"', "naïve-ключ-鍵", "50%_*?[x]", "Foo", "foo", "-- ;", "x\ny"]
    for i, k in enumerate(odd):
        store.put(("odd", k), k, {"i": i})
    for i, k in enumerate(odd):
        item = store.get(("odd", k), k)
        assert item is not None and item.value == {"i": i} and item.key == k and item.namespace == ("odd", k)
    assert {ns for ns in store.list_namespaces(prefix=("odd",), limit=100)} == {("odd", k) for k in odd}
    assert {i.namespace for i in store.search(("odd", "Foo"), limit=100)} == {("odd", "Foo")}
    assert {i.namespace for i in store.search(("odd", "50%_*?[x]"), limit=100)} == {("odd", "50%_*?[x]")}


def test_invalid_namespaces_are_refused(store: BaseStore) -> None:
    for ns in [(), ("a.b",), ("",), ("langgraph", "x")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(ns, "k", {"v": 1})


def test_values_round_trip(store: BaseStore) -> None:
    value = {
        "s": "ünïcødé 😀",
        "i": -(2**53),
        "f": 0.1,
        "b": False,
        "none": None,
        "list": [1, "2", {"3": [4.5]}],
        "deep": {"a": {"b": {"c": {"d": "e"}}}},
        "empty": {},
        "long": "x" * 100_000,
    }
    store.put(("rt",), "k", value)
    item = store.get(("rt",), "k")
    assert item is not None and item.value == value


# ------------------------------------------------------------------------------------------------ batch
def test_batch_results_follow_op_order(store: BaseStore) -> None:
    store.put(("test", "foo"), "key1", {"data": "value1"})
    store.put(("test", "bar"), "key2", {"data": "value2"})
    results = store.batch(
        [
            GetOp(("test", "foo"), "key1"),
            PutOp(("test", "bar"), "key2", {"data": "value2b"}),
            SearchOp(("test",), filter={"data": "value1"}, limit=10, offset=0),
            ListNamespacesOp(match_conditions=None, max_depth=None, limit=10, offset=0),
            GetOp(("test",), "key3"),
        ]
    )
    assert len(results) == 5
    first = results[0]
    assert isinstance(first, Item) and first.value == {"data": "value1"} and first.namespace == ("test", "foo")
    assert results[1] is None
    assert isinstance(results[2], list) and [(i.key, i.value) for i in results[2]] == [("key1", {"data": "value1"})]
    assert isinstance(results[3], list) and set(results[3]) == {("test", "foo"), ("test", "bar")}
    assert results[4] is None

    reordered = store.batch(
        [
            SearchOp(("test",), filter=None, limit=5, offset=0),
            GetOp(("test", "bar"), "key2"),
            ListNamespacesOp(match_conditions=None, max_depth=1, limit=5, offset=0),
            PutOp(("test",), "key3", {"data": "value3"}),
            GetOp(("test", "foo"), "key1"),
        ]
    )
    assert isinstance(reordered[0], list) and keys(reordered[0]) == {"key1", "key2"}
    second = reordered[1]
    assert isinstance(second, Item) and second.value == {"data": "value2b"}  # the earlier batch's put landed
    assert reordered[2] == [("test",)]
    assert reordered[3] is None
    fifth = reordered[4]
    assert isinstance(fifth, Item) and fifth.key == "key1"
    third = store.get(("test",), "key3")
    assert third is not None and third.value == {"data": "value3"}


def test_batch_puts_deletes_and_gets(store: BaseStore) -> None:
    store.put(("b",), "gone", {"v": 0})
    results = store.batch(
        [
            PutOp(("b",), "k1", {"v": 1}),
            PutOp(("b",), "k2", {"v": 2}),
            PutOp(("b",), "gone", None),  # value None = delete
            PutOp(("b",), "k1", {"v": 11}),  # the last put of a key in one batch wins
        ]
    )
    assert results == [None, None, None, None]
    got = store.batch([GetOp(("b",), "k1"), GetOp(("b",), "k2"), GetOp(("b",), "gone"), GetOp(("b",), "nope")])
    assert [None if g is None else g.value for g in got] == [{"v": 11}, {"v": 2}, None, None]


def test_batch_search_ops(store: BaseStore) -> None:
    fill(store)
    results = store.batch(
        [
            SearchOp(("docs",), filter={"author": "alice"}, limit=10, offset=0),
            SearchOp(("docs",), filter=None, limit=2, offset=0),
            SearchOp(("docs", "bob"), filter=None, limit=10, offset=0),
            SearchOp(("nothing",), filter=None, limit=10, offset=0),
        ]
    )
    assert keys(results[0]) == {"d1", "d2"}
    assert len(results[1]) == 2 and keys(results[1]) <= {"d1", "d2", "d3", "d4"}
    assert keys(results[2]) == {"d3", "d4"}
    assert results[3] == []


def test_batch_list_namespaces_ops(store: BaseStore) -> None:
    for ns in [("test", "documents", "public"), ("test", "documents", "private"), ("test", "images", "public"),
               ("prod", "documents", "public")]:  # fmt: skip
        store.put(ns, "k", {"v": 1})
    results = store.batch(
        [
            ListNamespacesOp(match_conditions=None, max_depth=None, limit=10, offset=0),
            ListNamespacesOp(match_conditions=None, max_depth=2, limit=10, offset=0),
            ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("public",)),), max_depth=None, limit=10, offset=0),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("test",)),), max_depth=None, limit=10, offset=0),
        ]
    )
    assert len(results[0]) == 4
    assert set(results[1]) == {("test", "documents"), ("test", "images"), ("prod", "documents")}
    assert set(results[2]) == {("test", "documents", "public"), ("test", "images", "public"), ("prod", "documents", "public")}
    assert set(results[3]) == {("test", "documents", "public"), ("test", "documents", "private"), ("test", "images", "public")}


# ------------------------------------------------------------------------------------------------ namespaces
def test_search_scopes_by_namespace_prefix(store: BaseStore) -> None:
    fill(store)
    assert keys(store.search(("docs",))) == {"d1", "d2", "d3", "d4"}
    assert keys(store.search(("docs", "bob"))) == {"d3", "d4"}
    assert keys(store.search(("docs", "bob", "drafts"))) == {"d4"}
    assert keys(store.search(("reports",))) == {"r1"}
    assert keys(store.search((), limit=100)) == {"d1", "d2", "d3", "d4", "r1"}
    assert store.search(("doc",)) == []  # prefixes stop at label boundaries
    assert store.search(("docs", "bo")) == []
    assert {i.namespace for i in store.search(("docs",))} == {ns for ns, _, _ in DOCS[:4]}


def test_search_prefix_respects_label_boundaries(store: BaseStore) -> None:
    for ns in [("foo",), ("foo", "child"), ("foobar",), ("foobar", "baz"), ("foo2",)]:
        store.put(ns, "k", {"v": 1})
    assert {i.namespace for i in store.search(("foo",), limit=100)} == {("foo",), ("foo", "child")}
    assert {i.namespace for i in store.search(("foobar",), limit=100)} == {("foobar",), ("foobar", "baz")}
    assert {i.namespace for i in store.search(("fo",), limit=100)} == set()


def test_list_namespaces_prefix_suffix_wildcards(store: BaseStore) -> None:
    for ns in NAMESPACES:
        store.put(ns, "dummy", {"content": "dummy"})
    ls = store.list_namespaces
    assert set(ls(limit=100)) == set(NAMESPACES)
    assert set(ls(prefix=("t", "test"), limit=100)) == set(NAMESPACES[:4])
    assert set(ls(prefix=("t", "test", "documents"), limit=100)) == set(NAMESPACES[:2])
    assert set(ls(suffix=("public", "t"), limit=100)) == {NAMESPACES[i] for i in (0, 2, 4, 5)}
    assert set(ls(prefix=("t", "test"), suffix=("public", "t"), limit=100)) == {NAMESPACES[0], NAMESPACES[2]}
    assert set(ls(prefix=("t", "*", "documents"), limit=100)) == {NAMESPACES[i] for i in (0, 1, 4, 5, 6)}
    assert set(ls(suffix=("*", "public", "t"), limit=100)) == {NAMESPACES[i] for i in (0, 2, 4, 5)}
    assert ls(suffix=("some", "*", "public", "t"), limit=100) == [NAMESPACES[5]]
    assert ls(prefix=("t", "nope"), limit=100) == []


def test_list_namespaces_max_depth_truncates_and_dedupes(store: BaseStore) -> None:
    for ns in NAMESPACES:
        store.put(ns, "dummy", {"content": "dummy"})
    depth3 = store.list_namespaces(max_depth=3, limit=100)
    assert sorted(depth3) == sorted({ns[:3] for ns in NAMESPACES})
    assert len(depth3) == len(set(depth3)) == 3
    depth4 = store.list_namespaces(prefix=("t", "*", "documents"), max_depth=4, limit=100)
    assert sorted(depth4) == sorted({NAMESPACES[i][:4] for i in (0, 1, 4, 5, 6)})
    assert store.list_namespaces(max_depth=1, limit=100) == [("t",)]


def test_list_namespaces_pagination(store: BaseStore) -> None:
    names = [("p", f"n{i:02d}") for i in range(12)]
    for ns in names:
        store.put(ns, "k", {"v": 1})
    everything = store.list_namespaces(prefix=("p",), limit=100)
    assert set(everything) == set(names)
    assert everything == sorted(everything)  # all upstream stores return namespaces sorted
    pages = [store.list_namespaces(prefix=("p",), limit=5, offset=o) for o in (0, 5, 10, 15)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    assert [ns for p in pages for ns in p] == everything
    assert len(store.list_namespaces(limit=3)) == 3


def test_list_namespaces_label_boundaries(store: BaseStore) -> None:
    for ns in [("foo",), ("foo", "child"), ("foobar",), ("uid", "users", "alice"), ("uid", "users", "malice"),
               ("uid", "a", "b", "alice")]:  # fmt: skip
        store.put(ns, "k", {"v": 1})
    assert set(store.list_namespaces(prefix=("foo",), limit=100)) == {("foo",), ("foo", "child")}
    assert set(store.list_namespaces(suffix=("alice",), limit=100)) == {("uid", "users", "alice"), ("uid", "a", "b", "alice")}
    assert set(store.list_namespaces(prefix=("uid", "*", "alice"), limit=100)) == {("uid", "users", "alice")}


def test_deleted_items_leave_namespace_listings(store: BaseStore) -> None:
    store.put(("keep",), "k", {"v": 1})
    store.put(("drop", "x"), "k", {"v": 1})
    store.delete(("drop", "x"), "k")
    assert store.list_namespaces(limit=100) == [("keep",)]


# ------------------------------------------------------------------------------------------------ filters
def test_search_equality_filters(store: BaseStore) -> None:
    fill(store)
    assert keys(store.search(("docs",), filter={"author": "alice"})) == {"d1", "d2"}
    assert keys(store.search(("docs",), filter={"author": "bob", "n": 4})) == {"d4"}  # several keys: AND
    assert keys(store.search(("docs",), filter={"active": True})) == {"d1", "d3", "d4"}
    assert keys(store.search(("docs",), filter={"active": False})) == {"d2"}
    assert keys(store.search((), filter={"tags": ["a"]}, limit=100)) == {"d1", "d3", "r1"}
    assert store.search(("docs",), filter={"author": "nobody"}) == []
    assert store.search(("docs",), filter={"missing_field": "x"}) == []


@pytest.mark.parametrize(
    ("op", "bound", "expected"),
    [
        ("$eq", 3, {"d3"}),
        ("$ne", 3, {"d1", "d2", "d4", "r1"}),
        ("$gt", 3, {"d4", "r1"}),
        ("$gte", 3, {"d3", "d4", "r1"}),
        ("$lt", 3, {"d1", "d2"}),
        ("$lte", 3, {"d1", "d2", "d3"}),
        ("$gt", 2.5, {"d3", "d4", "r1"}),
        ("$lt", -1, set()),
    ],
)
def test_search_comparison_operators(store: BaseStore, op: str, bound: float, expected: set[str]) -> None:
    fill(store)
    assert keys(store.search((), filter={"n": {op: bound}}, limit=100)) == expected


def test_search_operators_combine(store: BaseStore) -> None:
    fill(store)
    assert keys(store.search((), filter={"n": {"$gte": 2, "$lt": 5}}, limit=100)) == {"d2", "d3", "d4"}
    assert keys(store.search((), filter={"n": {"$gt": 1}, "author": "bob"}, limit=100)) == {"d3", "d4"}
    assert keys(store.search((), filter={"author": {"$ne": "bob"}, "active": True}, limit=100)) == {"d1"}
    assert keys(store.search((), filter={"author": {"$eq": "carol"}}, limit=100)) == {"r1"}


def test_filter_values_are_literals(store: BaseStore) -> None:
    store.put(("sec",), "public", {"access": "public", "title": "O'Brien's \"doc\""})
    store.put(("sec",), "private", {"access": "private"})
    for value in ["public' OR '1'='1", "public'; --", "public' UNION SELECT * FROM store --", "''''", "%", "*"]:
        assert store.search(("sec",), filter={"access": value}) == [], value
    assert keys(store.search(("sec",), filter={"title": "O'Brien's \"doc\""})) == {"public"}


@pytest.mark.requires("filter_dotted_path")
def test_filter_on_nested_field_by_dotted_path(store: BaseStore) -> None:
    store.put(("n",), "a", {"user": {"level": 1, "access-level": "x"}})
    store.put(("n",), "b", {"user": {"level": 2}})
    assert keys(store.search(("n",), filter={"user.level": 2})) == {"b"}
    assert keys(store.search(("n",), filter={"user.access-level": "x"})) == {"a"}


@pytest.mark.requires("filter_nested_dict")
def test_filter_on_nested_field_by_nested_dict(store: BaseStore) -> None:
    store.put(("n",), "a", {"user": {"level": 1}})
    store.put(("n",), "b", {"user": {"level": 2}})
    assert keys(store.search(("n",), filter={"user": {"level": 2}})) == {"b"}


# ------------------------------------------------------------------------------------------------ pagination
def test_search_pagination_partitions_results(store: BaseStore) -> None:
    for i in range(11):
        store.put(("page",), f"k{i:02d}", {"i": i})
    everything = store.search(("page",), limit=100)
    assert keys(everything) == {f"k{i:02d}" for i in range(11)}
    pages = [store.search(("page",), limit=4, offset=o) for o in (0, 4, 8, 12)]
    assert [len(p) for p in pages] == [4, 4, 3, 0]
    assert [i.key for p in pages for i in p] == [i.key for i in everything]  # stable order, no overlap, no gap
    assert len(store.search(("page",))) == 10  # default limit
    assert [i.key for i in store.search(("page",), filter={"i": {"$gte": 5}}, limit=3, offset=3)] == [
        i.key for i in store.search(("page",), filter={"i": {"$gte": 5}}, limit=100)
    ][3:6]


# ------------------------------------------------------------------------------------------------ timestamps
def test_update_refreshes_updated_at(store_factory: StoreFactory) -> None:
    store = store_factory()
    gap = store_factory.spec.timestamp_resolution
    store.put(("ts",), "a", {"v": 1})
    first = store.get(("ts",), "a")
    time.sleep(gap)
    store.put(("ts",), "b", {"v": 1})
    time.sleep(gap)
    store.put(("ts",), "a", {"v": 2})
    second = store.get(("ts",), "a")
    other = store.get(("ts",), "b")
    assert first is not None and second is not None and other is not None
    assert second.updated_at > first.updated_at
    assert second.updated_at > other.updated_at
    assert second.created_at <= second.updated_at
    if store_factory.has("preserves_created_at"):
        assert second.created_at == first.created_at
    if store_factory.has("recency_order"):
        assert [i.key for i in store.search(("ts",))] == ["a", "b"]


# ------------------------------------------------------------------------------------------------ instances
def test_second_instance_sees_writes(store_factory: StoreFactory) -> None:
    with store_factory.open() as first:
        fill(first)
        first.delete(("docs", "alice"), "d2")
    with store_factory.open() as second:
        assert keys(second.search((), limit=100)) == {"d1", "d3", "d4", "r1"}
        item = second.get(("docs", "bob"), "d3")
        assert item is not None and item.value == DOCS[2][2]
    with store_factory.fresh().open() as other:
        assert other.search((), limit=100) == []


@pytest.mark.requires("cross_process")
def test_another_process_sees_writes(store_factory: StoreFactory, workers: list[Worker]) -> None:
    store = store_factory()
    store.put(("x", "y"), "k", {"from": "parent", "n": [1, 2]})
    got = workers[0].call("store_get", store=store_factory.name, location=store_factory.location, namespace=["x", "y"], key="k")
    assert got == {"from": "parent", "n": [1, 2]}


def test_supports_ttl_is_declared_honestly(store_factory: StoreFactory) -> None:
    """An entry declares "ttl" exactly when its store says ``supports_ttl``; one without refuses ``ttl=``."""
    store = store_factory()
    assert store.supports_ttl == store_factory.has("ttl")
    if not store.supports_ttl:
        with pytest.raises(NotImplementedError):
            store.put(("t",), "k", {"v": 1}, ttl=1.0)
        store.put(("t",), "k", {"v": 1}, ttl=None)  # explicitly no TTL is always fine
        assert store.get(("t",), "k") is not None


# ------------------------------------------------------------------------------------------------ vector search
@pytest.mark.requires("vector")
def test_vector_search_ranks_by_cosine_similarity(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"]))
    texts = {"d1": "short text", "d2": "longer text document", "d3": "zebra xylophone quartz", "d4": "text"}
    for k, t in texts.items():
        store.put(("v",), k, {"text": t})
    query = "text document"
    results = scored(store.search(("v",), query=query))
    assert {k for k, _ in results} == set(texts)
    assert [s for _, s in results] == sorted((s for _, s in results), reverse=True)
    for k, score in results:  # score = cosine(query, document field) for cosine distance
        assert score == pytest.approx(cosine(embed_text(query), embed_text(texts[k])), abs=1e-3)
    assert results[0][0] == "d2"
    assert results[-1][0] == "d3"


@pytest.mark.requires("vector")
@pytest.mark.parametrize("query", ["aaa", "bbb", "abcd", "poisson"])
def test_vector_scores_match_the_embedding(store_factory: StoreFactory, query: str) -> None:
    store = store_factory(index=index_config(["key0"]))
    store.put(("s",), "doc", {"key0": "aaa"}, index=["key0", "key1"])
    [result] = store.search((), query=query)
    assert result.score == pytest.approx(cosine(embed_text(query), embed_text("aaa")), abs=1e-3)


@pytest.mark.requires("vector")
def test_vector_update_reembeds_and_index_false_skips(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"]))
    store.put(("v",), "doc1", {"text": "zany zebra xerxes"})
    store.put(("v",), "doc2", {"text": "something about dogs"})
    store.put(("v",), "doc3", {"text": "text about birds"})
    [top, *_] = scored(store.search(("v",), query="zany xerxes"))
    assert top[0] == "doc1"
    store.put(("v",), "doc1", {"text": "new text about dogs"})
    after = dict(scored(store.search(("v",), query="zany xerxes")))
    assert after["doc1"] < top[1]
    assert after["doc1"] == pytest.approx(cosine(embed_text("zany xerxes"), embed_text("new text about dogs")), abs=1e-3)

    store.put(("v",), "doc4", {"text": "new text about dogs"}, index=False)  # stored, not embedded
    results = store.search(("v",), query="new text about dogs", limit=3)
    assert "doc4" not in keys(results)
    assert all(r.score is not None for r in results)
    item = store.get(("v",), "doc4")
    assert item is not None and item.value == {"text": "new text about dogs"}
    assert "doc4" in keys(store.search(("v",), limit=10))


@pytest.mark.requires("vector")
def test_vector_search_with_filters(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"]))
    for key, value in [
        ("doc1", {"text": "red apple", "color": "red", "score": 4.5}),
        ("doc2", {"text": "red car", "color": "red", "score": 3.0}),
        ("doc3", {"text": "green apple", "color": "green", "score": 4.0}),
        ("doc4", {"text": "blue car", "color": "blue", "score": 3.5}),
    ]:
        store.put(("f",), key, value)
    results = store.search(("f",), query="apple", filter={"color": "red"})
    assert scored(results)[0][0] == "doc1" and keys(results) == {"doc1", "doc2"}
    assert scored(store.search(("f",), query="car", filter={"color": "red"}))[0][0] == "doc2"
    results = store.search(("f",), query="bbbluuu car", filter={"score": {"$gt": 3.2}})
    assert keys(results) == {"doc1", "doc3", "doc4"} and results[0].key == "doc4"
    results = store.search(("f",), query="apple", filter={"score": {"$gte": 4.0}, "color": "green"})
    assert [r.key for r in results] == ["doc3"]


@pytest.mark.requires("vector")
def test_vector_search_pagination(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"]))
    for i in range(7):
        store.put(("p",), f"doc{i}", {"text": f"test document number {i} " + "x" * i})
    full = scored(store.search(("p",), query="test", limit=10))
    assert len(full) == 7 and [s for _, s in full] == sorted((s for _, s in full), reverse=True)
    pages = [scored(store.search(("p",), query="test", limit=3, offset=o)) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [k for p in pages for k, _ in p] == [k for k, _ in full]
    assert min(s for _, s in pages[0]) >= max(s for _, s in pages[1])


@pytest.mark.requires("vector")
def test_vector_search_edge_case_queries(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"]))
    store.put(("e",), "doc1", {"text": "test document"})
    for query in ["", None, "test " * 100, "test!@#$%^&*()'\";--", "这是中文"]:
        assert keys(store.search(("e",), query=query)) == {"doc1"}, query


@pytest.mark.requires("vector")
def test_vector_fields_paths(store_factory: StoreFactory) -> None:
    """``fields`` paths: a top-level key, ``list[*]`` (one vector per element), nested ``a.b``; a document scores
    as its best-matching field (max over its vectors); missing fields are fine."""
    store = store_factory(index=index_config(["title", "tags[*]", "meta.author"]))
    store.put(("fp",), "doc1", {"title": "qqq", "tags": ["www", "eee"], "meta": {"author": "rrr"}, "body": "ttt"})
    store.put(("fp",), "doc2", {"title": "yyy", "meta": {}})  # no tags, no author
    for query in ["qqq", "www", "eee", "rrr"]:
        results = scored(store.search(("fp",), query=query))
        assert results[0] == ("doc1", pytest.approx(1.0, abs=1e-3)), query
        assert results[1][0] == "doc2" and results[1][1] < 0.9, query
    body = dict(scored(store.search(("fp",), query="ttt")))  # not an indexed field
    assert body["doc1"] < 0.9
    assert scored(store.search(("fp",), query="yyy"))[0] == ("doc2", pytest.approx(1.0, abs=1e-3))


@pytest.mark.requires("vector")
def test_vector_per_put_index_fields_override(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["key17"]))  # default field absent from the documents
    store.put(("o",), "doc3", {"key0": "aaa", "key1": "bbb", "key2": "ccc"}, index=["key0", "key1"])
    store.put(("o",), "doc4", {"key0": "eee", "key1": "bbb", "key3": "ggg"}, index=["key1", "key3"])
    assert scored(store.search(("o",), query="aaa"))[0] == ("doc3", pytest.approx(1.0, abs=1e-3))
    assert scored(store.search(("o",), query="ggg"))[0] == ("doc4", pytest.approx(1.0, abs=1e-3))
    both = scored(store.search(("o",), query="bbb"))
    assert {k for k, _ in both} == {"doc3", "doc4"} and both[0][1] == pytest.approx(both[1][1], abs=1e-3)
    assert all(s < 0.9 for _, s in scored(store.search(("o",), query="ccc")))  # key2 was not indexed
    store.put(("o",), "doc5", {"key0": "hhh"}, index=False)
    plain = store.search(("o",))
    assert keys(plain) == {"doc3", "doc4", "doc5"} and all(r.score is None for r in plain)


@pytest.mark.requires("vector")
def test_vector_whole_document_by_default(store_factory: StoreFactory) -> None:
    """Without ``fields`` the whole value (``$``) is embedded."""
    store = store_factory(index=index_config())
    store.put(("w",), "a", {"note": "kiwi kiwi"})
    store.put(("w",), "b", {"other": "zzzz qqqq"})
    assert scored(store.search(("w",), query="kiwi"))[0][0] == "a"


@pytest.mark.requires("vector")
def test_vector_embed_may_be_a_function(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"], embed=embed_texts))
    store.put(("fn",), "a", {"text": "hello world"})
    store.put(("fn",), "b", {"text": "quantum chromodynamics"})
    results = scored(store.search(("fn",), query="hello world"))
    assert results[0] == ("a", pytest.approx(1.0, abs=1e-3))


@pytest.mark.requires("vector")
def test_vector_best_match_among_many(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["key1"]))
    for i in range(30):
        store.put(("many", "A"), f"A{i}", {"key1": "no"})
    store.put(("many", "M"), "M", {"key1": "mmm"})
    for i in range(30):
        store.put(("many", "Z"), f"Z{i}", {"key1": "no"})
    results = store.search(("many",), query="mmm", limit=10)
    assert len(results) == 10 and len(keys(results)) == 10
    assert results[0].key == "M" and results[0].score is not None and results[1].score is not None
    assert results[0].score > results[1].score


@pytest.mark.requires("vector")
def test_vector_batch_put_with_identical_texts(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["t"]))
    store.batch([PutOp(("dup",), f"k{i}", {"t": "same text"}) for i in range(5)] + [PutOp(("dup",), "x", {"t": "zzz"})])
    results = scored(store.search(("dup",), query="same text", limit=10))
    assert {k for k, _ in results} == {"k0", "k1", "k2", "k3", "k4", "x"}
    assert all(s == pytest.approx(1.0, abs=1e-3) for k, s in results if k != "x")


@pytest.mark.requires("vector")
def test_vector_non_ascii(store_factory: StoreFactory) -> None:
    store = store_factory(index=index_config(["text"]))
    texts = ["这是中文", "これは日本語です", "이건 한국어야", "Это русский", "यह रूसी है"]
    for i, t in enumerate(texts):
        store.put(("user_123", "memories"), str(i), {"text": t})
    for i, t in enumerate(texts):
        assert store.search(("user_123", "memories"), query=t)[0].key == str(i)


@pytest.mark.requires("vector")
def test_vector_index_survives_a_reopen(store_factory: StoreFactory) -> None:
    with store_factory.open(index=index_config(["text"])) as first:
        first.put(("r",), "a", {"text": "persistent vectors"})
        first.put(("r",), "b", {"text": "something else entirely"})
    embeddings = HashEmbeddings()
    with store_factory.open(index=index_config(["text"], embed=embeddings)) as second:
        results = scored(second.search(("r",), query="persistent vectors"))
        assert results[0] == ("a", pytest.approx(1.0, abs=1e-3))
        assert embeddings.calls == 1  # only the query was embedded: documents were not re-embedded
