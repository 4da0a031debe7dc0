"""Hybrid recall: offline embeddings, dense + keyword + recency fused, on every backend; document collections.

See docs/recall.md. ``Memory.recall`` / ``Memory.collection`` are the entry points.
"""

from memvault.recall.embedders import Embedder, HashEmbedder, MiniLMEmbedder, as_embedder
from memvault.recall.filters import compile_where
from memvault.recall.types import Document, DocumentHit, Hit, IndexStatus

__all__ = [
    "Document",
    "DocumentHit",
    "Embedder",
    "HashEmbedder",
    "Hit",
    "IndexStatus",
    "MiniLMEmbedder",
    "as_embedder",
    "compile_where",
]
