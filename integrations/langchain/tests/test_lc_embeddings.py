"""MemvaultEmbeddings passes LangChain's standard embeddings suites and really is the core's offline embedder."""

from __future__ import annotations

import math
from typing import Any

from langchain_memvault import MemvaultEmbeddings
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests


class TestMemvaultEmbeddingsStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[MemvaultEmbeddings]:
        return MemvaultEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {}


class TestMemvaultEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[MemvaultEmbeddings]:
        return MemvaultEmbeddings


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_is_the_offline_minilm_and_semantic() -> None:
    emb = MemvaultEmbeddings()
    assert emb.dimension == 384
    assert "minilm" in emb.model_id.lower()
    cat, kitten, tax = emb.embed_documents(["a cat sat on the mat", "a kitten on a rug", "quarterly tax filing"])
    assert math.isclose(math.sqrt(sum(x * x for x in cat)), 1.0, rel_tol=1e-3)  # L2-normalised
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.1
    query = emb.embed_query("a cat sat on the mat")
    assert cosine(query, cat) > 0.99


async def test_async_matches_sync() -> None:
    emb = MemvaultEmbeddings("hash")
    assert await emb.aembed_documents(["x", "y"]) == emb.embed_documents(["x", "y"])
    assert await emb.aembed_query("x") == emb.embed_query("x")
    assert emb.embed_documents([]) == []
