"""MemvaultVectorStore: LangChain's own VectorStoreIntegrationTests (unchanged) on every backend, plus filters,
hybrid / MMR search through ``as_retriever``, and the offline default embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_memvault import MemvaultEmbeddings, MemvaultVectorStore, translate_filter
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from memvault import Memory
from memvault.errors import InvalidFilter


@pytest.fixture
def store_memory(
    lc_backend: str, make_lc_memory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Memory | None:
    """A Memory on the parametrized backend; for sqlite, None = the embedded default under a temp MEMVAULT_HOME."""
    if lc_backend == "sqlite":
        monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("MEMVAULT_URL", raising=False)
        return None
    return make_lc_memory()  # type: ignore[no-any-return]


class TestMemvaultVectorStoreStandard(VectorStoreIntegrationTests):
    """LangChain's standard suite, unchanged: sqlite (embedded default), memory, PostgreSQL, ..."""

    @pytest.fixture
    def vectorstore(self, store_memory: Memory | None) -> Iterator[VectorStore]:  # type: ignore[override]
        store = MemvaultVectorStore(self.get_embeddings(), memory=store_memory)
        try:
            yield store
        finally:
            store.delete()
            if store_memory is None:
                store.memory.close()


def docs_fixture() -> list[Document]:
    return [
        Document("The cat sat on the mat", metadata={"kind": "pet", "year": 2020, "tags": ["a"], "name": "O'Brien"}),
        Document("Dogs love long walks in the park", metadata={"kind": "pet", "year": 2022, "tags": ["b"]}),
        Document("Quarterly tax filing deadline is in April", metadata={"kind": "finance", "year": 2023}),
        Document("Invoice 4471 was paid by bank transfer", metadata={"kind": "finance", "year": 2024}),
        Document("The Eiffel tower is in Paris", metadata={"kind": "travel", "year": 2021, "rating": 4.5}),
    ]


@pytest.fixture
def filled(store_memory: Memory | None) -> Iterator[MemvaultVectorStore]:
    store = MemvaultVectorStore(memory=store_memory, collection_name="facts")
    store.add_documents(docs_fixture(), ids=[str(i) for i in range(1, 6)])
    yield store
    store.delete()
    if store_memory is None:
        store.memory.close()


def contents(docs: list[Document]) -> list[str]:
    return [d.page_content for d in docs]


FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"kind": "pet"}, {"1", "2"}),
    ({"kind": {"$eq": "finance"}}, {"3", "4"}),
    ({"kind": {"$ne": "pet"}}, {"3", "4", "5"}),
    ({"year": {"$lt": 2022}}, {"1", "5"}),
    ({"year": {"$lte": 2022}}, {"1", "2", "5"}),
    ({"year": {"$gt": 2022}}, {"3", "4"}),
    ({"year": {"$gte": 2022}}, {"2", "3", "4"}),
    ({"year": {"$between": [2021, 2022]}}, {"2", "5"}),
    ({"kind": {"$in": ["travel", "finance"]}}, {"3", "4", "5"}),
    ({"kind": {"$nin": ["travel", "finance"]}}, {"1", "2"}),
    ({"$and": [{"kind": "pet"}, {"year": {"$gt": 2020}}]}, {"2"}),
    ({"$or": [{"kind": "travel"}, {"year": 2020}]}, {"1", "5"}),
    ({"$not": {"kind": "pet"}}, {"3", "4", "5"}),
    ({"kind": "pet", "year": 2020}, {"1"}),
    ({"name": "O'Brien"}, {"1"}),  # quotes are data, never SQL
    ({"rating": {"$exists": True}}, {"5"}),
]


@pytest.mark.parametrize("where, expected", FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
def test_metadata_filters(filled: MemvaultVectorStore, where: dict[str, Any], expected: set[str]) -> None:
    found = filled.similarity_search("anything", k=10, filter=where)
    assert {d.id for d in found} == expected
    assert {d.id for d in filled.hybrid_search("anything", k=10, filter=where)} == expected


async def test_metadata_filters_async(filled: MemvaultVectorStore) -> None:
    for where, expected in FILTER_CASES:
        found = await filled.asimilarity_search("anything", k=10, filter=where)
        assert {d.id for d in found} == expected, where


def test_semantic_and_hybrid_ranking(filled: MemvaultVectorStore) -> None:
    assert filled.similarity_search("kitten on a rug", k=1)[0].id == "1"
    assert filled.hybrid_search("invoice 4471", k=1)[0].id == "4"
    scored = filled.similarity_search_with_score("kitten on a rug", k=5)
    scores = [s for _, s in scored]
    assert scores == sorted(scores, reverse=True)
    relevance = filled.similarity_search_with_relevance_scores("kitten on a rug", k=5)
    assert all(0.0 <= r <= 1.0 for _, r in relevance)


def test_retriever_search_types(filled: MemvaultVectorStore) -> None:
    sim = filled.as_retriever(search_kwargs={"k": 2})
    assert sim.invoke("the cat on the mat")[0].id == "1"
    hybrid = filled.as_retriever(search_type="hybrid", search_kwargs={"k": 1, "alpha": 0.3})
    assert contents(hybrid.invoke("invoice 4471")) == ["Invoice 4471 was paid by bank transfer"]
    filtered = filled.as_retriever(search_type="hybrid", search_kwargs={"k": 5, "filter": {"kind": "pet"}})
    assert {d.id for d in filtered.invoke("walks")} == {"1", "2"}
    mmr = filled.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 5, "lambda_mult": 0.2})
    assert len(mmr.invoke("pets")) == 3
    threshold = filled.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"k": 5, "score_threshold": 0.99}
    )
    assert threshold.invoke("zzz unrelated") == []


async def test_retriever_search_types_async(filled: MemvaultVectorStore) -> None:
    hybrid = filled.as_retriever(search_type="hybrid", search_kwargs={"k": 1})
    assert (await hybrid.ainvoke("invoice 4471"))[0].id == "4"
    mmr = filled.as_retriever(search_type="mmr", search_kwargs={"k": 2})
    assert len(await mmr.ainvoke("pets")) == 2


def test_mmr_diversifies() -> None:
    store = MemvaultVectorStore(memory=Memory("memory://"))
    store.add_texts(["cats are great pets", "cats are great pets!", "cats are lovely pets", "stock market news"])
    plain = store.similarity_search("cats pets", k=2)
    diverse = store.max_marginal_relevance_search("cats pets", k=2, fetch_k=4, lambda_mult=0.1)
    assert len({d.page_content for d in plain}) == 2
    assert "stock market news" in contents(diverse)
    assert "stock market news" not in contents(plain)


def test_upsert_delete_and_get(filled: MemvaultVectorStore) -> None:
    filled.add_texts(["The cat now sleeps on the sofa"], [{"kind": "pet", "year": 2025}], ids=["1"])
    assert filled.get_by_ids(["1", "404", "2"]) == [
        Document("The cat now sleeps on the sofa", metadata={"kind": "pet", "year": 2025}, id="1"),
        Document("Dogs love long walks in the park", metadata={"kind": "pet", "year": 2022, "tags": ["b"]}, id="2"),
    ]
    assert filled.collection.count() == 5
    filled.delete(filter={"kind": "finance"})
    assert {d.id for d in filled.similarity_search("x", k=10)} == {"1", "2", "5"}
    filled.delete(["2"])
    assert {d.id for d in filled.similarity_search("x", k=10)} == {"1", "5"}


def test_default_embedder_and_from_texts(memvault_home: Path) -> None:
    store = MemvaultVectorStore.from_texts(["red apples", "blue ocean"], ids=["a", "b"])
    assert isinstance(store.embeddings, MemvaultEmbeddings)
    assert store.similarity_search("the sea", k=1)[0].id == "b"
    # persisted in the embedded default: a new store object on the same collection sees the documents
    assert MemvaultVectorStore().get_by_ids(["a"])[0].page_content == "red apples"
    store.memory.close()


def test_k_zero_and_empty_inputs() -> None:
    store = MemvaultVectorStore(DeterministicFakeEmbedding(size=8), memory=Memory("memory://"))
    assert store.add_texts([]) == []
    store.add_texts(["x"])
    assert store.similarity_search("x", k=0) == []


@pytest.mark.parametrize(
    "bad",
    [{"$xor": []}, {"a": {"$regex": "x"}}, {"a": {"$in": "notalist"}}, {"$and": "x"}, {"a": {"$between": [1]}}],
)
def test_bad_filters_raise_typed_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilter):
        translate_filter(bad)
    store = MemvaultVectorStore(DeterministicFakeEmbedding(size=8), memory=Memory("memory://"))
    store.add_texts(["x"])
    with pytest.raises(InvalidFilter):
        store.similarity_search("x", filter=bad)


def test_mismatched_lengths_raise() -> None:
    store = MemvaultVectorStore(DeterministicFakeEmbedding(size=8), memory=Memory("memory://"))
    with pytest.raises(InvalidFilter):
        store.add_texts(["a", "b"], ids=["1"])
    assert store.collection.count() == 0
