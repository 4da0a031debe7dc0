"""``MemvaultEmbeddings``: memvault's offline embedders as a LangChain ``Embeddings``."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.embeddings import Embeddings

__all__ = ["MemvaultEmbeddings"]


class MemvaultEmbeddings(Embeddings):
    """memvault's embedder behind LangChain's ``Embeddings`` interface.

    ``MemvaultEmbeddings()`` is the core's offline default (all-MiniLM-L6-v2 int8 ONNX, 384 dimensions, shipped in
    PyPI wheels: no model download, no API key). ``model="hash"`` is the deterministic test embedder; any memvault
    ``Embedder`` object works too. Vectors are float lists, L2-normalised.
    """

    def __init__(self, model: Any = "default") -> None:
        from memvault.recall.embedders import as_embedder

        self.embedder = as_embedder(model)

    @property
    def model_id(self) -> str:
        return str(self.embedder.model_id)

    @property
    def dimension(self) -> int:
        return int(self.embedder.dimension)

    def __repr__(self) -> str:
        return f"MemvaultEmbeddings(model_id={self.model_id!r}, dimension={self.dimension})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return [[float(x) for x in row] for row in self.embedder.embed(list(texts)).tolist()]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.embedder.embed_query(text).tolist()]

    # CPU-bound work: run it off the event loop so a busy embedder never blocks other tasks
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)
