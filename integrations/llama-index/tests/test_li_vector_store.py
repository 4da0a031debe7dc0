"""MemvaultVectorStore: writes, reads, every query mode, every filter operator, under VectorStoreIndex and
VectorMemoryBlock, on each backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core import Document as LIDocument
from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory as LIMemory
from llama_index.core.memory.memory_blocks.vector import VectorMemoryBlock
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore
from llama_index.vector_stores.memvault import MemvaultVectorMemoryBlock, MemvaultVectorStore

from memvault import Memory
from memvault.errors import InvalidFilter


def node(node_id: str, text: str, vector: list[float], ref: str = "doc", **metadata: Any) -> TextNode:
    n = TextNode(id_=node_id, text=text, embedding=vector, metadata=metadata)
    n.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=ref)
    return n


@pytest.fixture
def make_store(make_li_memory: Callable[..., Memory]) -> Callable[..., MemvaultVectorStore]:
    def factory(**options: Any) -> MemvaultVectorStore:
        return MemvaultVectorStore(memory=make_li_memory(embedder="hash"), **options)

    return factory


@pytest.fixture
def store(make_store: Callable[..., MemvaultVectorStore]) -> MemvaultVectorStore:
    return make_store()


def ids(nodes: list[Any]) -> list[str]:
    return [n.node_id for n in nodes]


def test_add_upserts_by_node_id_and_get_nodes(store: MemvaultVectorStore) -> None:
    assert store.add([node("a", "alpha", [1, 0, 0]), node("b", "beta", [0, 1, 0])]) == ["a", "b"]
    store.add([node("a", "alpha v2", [1, 0, 0], colour="red")])
    got = store.get_nodes(["b", "a", "missing"])
    assert ids(got) == ["b", "a"]
    assert got[1].get_content() == "alpha v2" and got[1].metadata == {"colour": "red"}
    assert got[1].ref_doc_id == "doc"
    assert sorted(ids(store.get_nodes())) == ["a", "b"]
    assert store.client.count() == 2


def test_delete_by_ref_doc_delete_nodes_and_clear(store: MemvaultVectorStore) -> None:
    store.add([
        node("a1", "one", [1, 0], ref="A"), node("a2", "two", [0, 1], ref="A"),
        node("b1", "three", [1, 1], ref="B", kind="x"), node("b2", "four", [1, 2], ref="B", kind="y"),
        node("c1", "five", [2, 1], ref="C"),
    ])
    store.delete("A")
    assert sorted(ids(store.get_nodes())) == ["b1", "b2", "c1"]
    store.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="kind", value="x")]))
    assert sorted(ids(store.get_nodes())) == ["b2", "c1"]
    store.delete_nodes(["c1"])
    assert ids(store.get_nodes()) == ["b2"]
    store.delete_nodes()  # neither ids nor filters: nothing
    assert ids(store.get_nodes()) == ["b2"]
    store.clear()
    assert store.get_nodes() == []


async def test_async_twins(store: MemvaultVectorStore) -> None:
    assert await store.async_add([node("a", "alpha", [1, 0], ref="A"), node("b", "beta", [0, 1], ref="B")]) == [
        "a", "b"]
    assert ids(await store.aget_nodes(["a"])) == ["a"]
    result = await store.aquery(VectorStoreQuery(query_embedding=[0.1, 1.0], similarity_top_k=1))
    assert result.ids == ["b"]
    await store.adelete("A")
    assert ids(await store.aget_nodes()) == ["b"]
    await store.async_add([node("c", "gamma", [1, 1])])
    await store.adelete_nodes(["b"])
    assert ids(await store.aget_nodes()) == ["c"]
    await store.aclear()
    assert await store.aget_nodes() == []


# -- query modes ---------------------------------------------------------------------------------------------------

CORPUS = [
    # "kw": best keyword match, poor vector; "vec": best vector, no keyword; "both": good at both
    ("kw", "zebra zebra zebra stripes zebra", [0.0, 1.0, 0.0]),
    ("vec", "completely unrelated words here", [1.0, 0.0, 0.0]),
    ("both", "a zebra grazing", [0.8, 0.6, 0.0]),
    ("far", "nothing to see", [0.0, 0.0, 1.0]),
]
QUERY_VECTOR = [1.0, 0.05, 0.0]


def load_corpus(store: MemvaultVectorStore) -> None:
    store.add([node(i, t, v) for i, t, v in CORPUS])


def test_default_mode_is_dense(store: MemvaultVectorStore) -> None:
    load_corpus(store)
    result = store.query(VectorStoreQuery(query_embedding=QUERY_VECTOR, similarity_top_k=2, query_str="zebra"))
    assert result.ids == ["vec", "both"]
    assert result.similarities[0] >= result.similarities[1]  # type: ignore[index]
    assert result.nodes[0].get_content() == "completely unrelated words here"  # type: ignore[index]


def test_text_search_is_keyword_only(store: MemvaultVectorStore) -> None:
    load_corpus(store)
    result = store.query(VectorStoreQuery(query_str="zebra", mode=VectorStoreQueryMode.TEXT_SEARCH,
                                          similarity_top_k=4))
    assert result.ids == ["kw", "both"]  # only documents holding the term
    with pytest.raises(InvalidFilter):
        store.query(VectorStoreQuery(query_embedding=QUERY_VECTOR, mode=VectorStoreQueryMode.TEXT_SEARCH))


def test_hybrid_fuses_and_honours_alpha(store: MemvaultVectorStore) -> None:
    load_corpus(store)

    def hybrid(alpha: float, k: int = 4) -> list[str]:
        q = VectorStoreQuery(query_str="zebra", query_embedding=QUERY_VECTOR, mode=VectorStoreQueryMode.HYBRID,
                             alpha=alpha, similarity_top_k=k)
        return store.query(q).ids  # type: ignore[return-value]

    assert hybrid(1.0)[0] == "vec"  # all weight on the dense signal
    assert hybrid(0.0)[0] == "kw"  # all weight on BM25
    assert hybrid(0.5)[0] == "both"  # good on both signals wins the fused ranking: not a concatenation
    assert len(hybrid(0.5, k=2)) == 2  # one fused top-k, not dense k + keyword k
    assert hybrid(1.0) != hybrid(0.0)


def test_mmr_trades_relevance_for_diversity(store: MemvaultVectorStore) -> None:
    store.add([
        node("d1", "first copy", [1.0, 0.0, 0.0]),
        node("d2", "second copy", [1.0, 0.0, 0.0]),
        node("other", "another direction", [0.7, 0.7, 0.0]),
        node("far", "unrelated", [0.0, 0.0, 1.0]),
    ])
    plain = store.query(VectorStoreQuery(query_embedding=[1.0, 0.3, 0.0], similarity_top_k=2))
    assert sorted(plain.ids) == ["d1", "d2"]  # type: ignore[arg-type]
    diverse = store.query(VectorStoreQuery(query_embedding=[1.0, 0.3, 0.0], similarity_top_k=2,
                                           mode=VectorStoreQueryMode.MMR, mmr_threshold=0.5))
    assert diverse.ids[0] in ("d1", "d2") and diverse.ids[1] == "other"  # type: ignore[index]


def test_query_by_text_only_uses_the_collection_embedder(store: MemvaultVectorStore) -> None:
    store.add([TextNode(id_="x", text="the quick brown fox"), TextNode(id_="y", text="stock market report")])
    result = store.query(VectorStoreQuery(query_str="quick brown fox", similarity_top_k=1))
    assert result.ids == ["x"]


def test_doc_ids_and_node_ids_restrict_the_query(store: MemvaultVectorStore) -> None:
    store.add([node("a", "t", [1, 0], ref="A"), node("b", "t", [1, 0], ref="B"), node("c", "t", [1, 0], ref="C")])
    assert store.query(VectorStoreQuery(query_embedding=[1, 0], similarity_top_k=5, doc_ids=["B"])).ids == ["b"]
    got = store.query(VectorStoreQuery(query_embedding=[1, 0], similarity_top_k=5, node_ids=["a", "c"])).ids
    assert sorted(got) == ["a", "c"]  # type: ignore[arg-type]


# -- metadata filters ------------------------------------------------------------------------------------------------

PEOPLE = [
    ("p1", {"author": "O'Brien", "year": 2001, "tags": ["sci", "bio"], "title": "The Zebra Book"}),
    ("p2", {"author": "Smith", "year": 1999, "tags": ["art"], "title": "painting zebras"}),
    ("p3", {"author": "Li", "year": 2010, "tags": [], "title": ""}),
    ("p4", {"author": "smith", "year": 2020, "tags": ["sci"], "title": "Cells"}),
    ("p5", {"author": "Ng", "year": 2015}),
]
FLAT_CASES = [
    (FilterOperator.EQ, "author", "O'Brien"),
    (FilterOperator.NE, "author", "Smith"),
    (FilterOperator.GT, "year", 2001),
    (FilterOperator.GTE, "year", 2001),
    (FilterOperator.LT, "year", 2010),
    (FilterOperator.LTE, "year", 2010),
    (FilterOperator.IN, "author", ["Li", "Ng", "O'Brien"]),
    (FilterOperator.NIN, "author", ["Li", "Ng"]),
    (FilterOperator.ANY, "tags", ["bio", "art"]),
    (FilterOperator.ALL, "tags", ["sci", "bio"]),
    (FilterOperator.CONTAINS, "tags", "sci"),
    (FilterOperator.TEXT_MATCH, "title", "Zebra"),
    (FilterOperator.TEXT_MATCH_INSENSITIVE, "title", "ZEBRA"),
    (FilterOperator.IS_EMPTY, "tags", None),
    (FilterOperator.IS_EMPTY, "title", None),
]


def load_people(store: MemvaultVectorStore) -> None:
    store.add([node(i, f"text of {i}", [1.0, float(n)], **meta) for n, (i, meta) in enumerate(PEOPLE)])


def reference(filters: MetadataFilters) -> list[str]:
    """LlamaIndex's own in-memory filter semantics (SimpleVectorStore), used as the oracle."""
    metadata = dict(PEOPLE)
    keep = build_metadata_filter_fn(lambda node_id: metadata[node_id], filters)
    return sorted(i for i, meta in PEOPLE if keep(i) and (filters.filters[0].key in meta or True))


@pytest.mark.parametrize(("op", "key", "value"), FLAT_CASES, ids=[f"{c[0].name}-{c[1]}" for c in FLAT_CASES])
def test_every_filter_operator_matches_llama_index_semantics(
    store: MemvaultVectorStore, op: FilterOperator, key: str, value: Any
) -> None:
    load_people(store)
    filters = MetadataFilters(filters=[MetadataFilter(key=key, operator=op, value=value)])
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):  # the oracle raises on non-str
        expected = sorted(i for i, m in PEOPLE if isinstance(m.get(key), str)
                          and (value in m[key] if op == FilterOperator.TEXT_MATCH else value.lower() in m[key].lower()))
    else:
        expected = reference(filters)
    assert sorted(ids(store.get_nodes(filters=filters))) == expected
    result = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=10, filters=filters))
    assert sorted(result.ids) == expected  # type: ignore[arg-type]
    assert expected  # every case selects something


def test_nested_and_or_not(store: MemvaultVectorStore) -> None:
    load_people(store)
    smiths = MetadataFilters(
        filters=[MetadataFilter(key="author", value="Smith"), MetadataFilter(key="author", value="smith")],
        condition=FilterCondition.OR,
    )
    nested = MetadataFilters(filters=[smiths, MetadataFilter(key="year", operator=FilterOperator.GT, value=2000)])
    assert ids(store.get_nodes(filters=nested)) == ["p4"]
    negated = MetadataFilters(filters=[smiths], condition=FilterCondition.NOT)
    assert sorted(ids(store.get_nodes(filters=negated))) == ["p1", "p3", "p5"]
    either = MetadataFilters(
        filters=[nested, MetadataFilter(key="author", value="O'Brien")], condition=FilterCondition.OR
    )
    got = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=10, filters=either))
    assert sorted(got.ids) == ["p1", "p4"]  # type: ignore[arg-type]
    store.delete_nodes(filters=either)
    assert sorted(ids(store.get_nodes())) == ["p2", "p3", "p5"]


def test_hostile_values_are_values(store: MemvaultVectorStore) -> None:
    store.add([node("q", "t", [1, 0], author="x'); DROP TABLE messages; --"), node("r", "t", [1, 0], author="r")])
    f = MetadataFilters(filters=[MetadataFilter(key="author", value="x'); DROP TABLE messages; --")])
    assert ids(store.get_nodes(filters=f)) == ["q"]
    assert sorted(ids(store.get_nodes())) == ["q", "r"]


# -- under LlamaIndex ------------------------------------------------------------------------------------------------


def test_vector_store_index_round_trip_and_reopen(make_li_memory: Callable[..., Memory]) -> None:
    embed = MockEmbedding(embed_dim=16)
    store = MemvaultVectorStore(memory=make_li_memory(embedder="hash"), collection_name="kb")
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    index.insert(LIDocument(text="memvault keeps agent memory in SQLite", id_="d1", metadata={"topic": "db"}))
    index.insert(LIDocument(text="zebras have stripes", id_="d2", metadata={"topic": "animals"}))
    retriever = index.as_retriever(similarity_top_k=1, vector_store_query_mode="hybrid", alpha=0.0)
    assert retriever.retrieve("zebras stripes")[0].node.ref_doc_id == "d2"
    index.delete_ref_doc("d2")
    assert [n.ref_doc_id for n in store.get_nodes()] == ["d1"]
    reopened = MemvaultVectorStore(memory=make_li_memory(embedder="hash"), collection_name="kb")
    again = VectorStoreIndex.from_vector_store(reopened, embed_model=embed)
    hits = again.as_retriever(similarity_top_k=3).retrieve("SQLite memory")
    assert [h.node.ref_doc_id for h in hits] == ["d1"]
    assert hits[0].node.metadata == {"topic": "db"}


def test_collections_and_namespaces_are_separate(make_li_memory: Callable[..., Memory]) -> None:
    mem = make_li_memory(embedder="hash")
    a = MemvaultVectorStore(memory=mem, collection_name="a")
    b = MemvaultVectorStore(memory=mem, collection_name="a", namespace="other")
    a.add([node("x", "t", [1, 0])])
    assert b.get_nodes() == []
    assert mem.sessions().items == []  # documents never show up as conversations


async def _block_memories(block_for: Callable[[str], Any], chat: MemvaultAsyncChatStore) -> dict[str, str]:
    """Two users chat with Memory objects whose short-term queue flushes into the vector block; each then asks."""
    seen: dict[str, str] = {}
    for session, secret in (("alice", "alice password is tulip"), ("bob", "bob password is cactus")):
        mem = LIMemory.from_defaults(session_id=session, chat_store=chat, token_limit=60, token_flush_size=10,
                                     memory_blocks=[block_for(session)], tokenizer_fn=lambda t: t.split())
        await mem.aput(ChatMessage(role="user", content=secret))
        for i in range(12):
            await mem.aput(ChatMessage(role="assistant" if i % 2 == 0 else "user", content=f"filler words {i} " * 3))
        await mem.aput(ChatMessage(role="user", content="what is my password"))
    for session in ("alice", "bob"):
        mem = LIMemory.from_defaults(session_id=session, chat_store=chat, token_limit=60, token_flush_size=10,
                                     memory_blocks=[block_for(session)], tokenizer_fn=lambda t: t.split())
        seen[session] = " ".join(m.content or "" for m in await mem.aget(input="what is my password"))
    return seen


async def test_vector_memory_block_keeps_sessions_apart(make_li_memory: Callable[..., Memory]) -> None:
    mem = make_li_memory(embedder="hash")
    store = MemvaultVectorStore(memory=mem, collection_name="memories")
    embed = MockEmbedding(embed_dim=8)
    shared = MemvaultVectorMemoryBlock(vector_store=store, embed_model=embed, similarity_top_k=5)
    seen = await _block_memories(lambda session: shared, MemvaultAsyncChatStore(memory=mem))
    assert "tulip" in seen["alice"] and "cactus" not in seen["alice"]
    assert "cactus" in seen["bob"] and "tulip" not in seen["bob"]
    # the stock block with one instance per session is also kept apart by the store's filters
    per_session = MemvaultVectorStore(memory=mem, collection_name="memories2")
    blocks: dict[str, VectorMemoryBlock] = {}

    def stock(session: str) -> VectorMemoryBlock:
        return blocks.setdefault(session, VectorMemoryBlock(vector_store=per_session, embed_model=embed,
                                                            similarity_top_k=5))

    seen = await _block_memories(stock, MemvaultAsyncChatStore(memory=mem, namespace="stock"))
    assert "tulip" in seen["alice"] and "cactus" not in seen["alice"]
    assert "cactus" in seen["bob"] and "tulip" not in seen["bob"]


async def test_stock_block_shared_across_sessions_leaks(make_li_memory: Callable[..., Memory]) -> None:
    """Why MemvaultVectorMemoryBlock exists: the stock block, shared, answers bob with alice's memories."""
    mem = make_li_memory(embedder="hash")
    shared = VectorMemoryBlock(vector_store=MemvaultVectorStore(memory=mem, collection_name="stock-shared"),
                               embed_model=MockEmbedding(embed_dim=8), similarity_top_k=5)
    seen = await _block_memories(lambda session: shared, MemvaultAsyncChatStore(memory=mem))
    assert "tulip" in seen["bob"]
