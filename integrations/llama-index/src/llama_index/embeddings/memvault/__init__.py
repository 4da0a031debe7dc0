"""memvault's offline embedder for LlamaIndex: ``MemvaultEmbedding``."""

from llama_index.embeddings.memvault.base import MemvaultEmbedding

__all__ = ["MemvaultEmbedding"]
