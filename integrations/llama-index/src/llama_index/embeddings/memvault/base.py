"""``MemvaultEmbedding``: memvault's offline embedder (bundled MiniLM int8, no download) as a LlamaIndex embedding.

Use it as ``embed_model`` of ``VectorStoreIndex`` / ``VectorMemoryBlock`` to get real semantic vectors without a
network or an API key. It is also a memvault Embedder (``embed`` / ``embed_query`` / ``model_id``), so handing it to
``MemvaultVectorStore(embed_model=...)`` or ``Memory(embedder=...)`` uses it directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from memvault.recall.embedders import as_embedder


class MemvaultEmbedding(BaseEmbedding):
    """LlamaIndex embedding backed by a memvault embedder: ``"default"`` (offline MiniLM, 384-d) or ``"hash"``."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Any = "default", **kwargs: Any) -> None:
        inner = as_embedder(embedder)
        kwargs.setdefault("model_name", inner.model_id)
        super().__init__(**kwargs)
        self._embedder = inner

    @classmethod
    def class_name(cls) -> str:
        return "MemvaultEmbedding"

    # memvault Embedder protocol
    @property
    def model_id(self) -> str:
        return str(self._embedder.model_id)

    @property
    def dimension(self) -> int:
        return int(self._embedder.dimension)

    def embed(self, texts: Any) -> np.ndarray:
        return self._embedder.embed(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._embedder.embed_query(text)

    # BaseEmbedding
    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed_query(query)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed(texts)]
