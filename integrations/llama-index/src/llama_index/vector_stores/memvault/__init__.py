"""memvault vector store for LlamaIndex: ``MemvaultVectorStore`` and the session-safe ``MemvaultVectorMemoryBlock``."""

from llama_index.vector_stores.memvault.base import MemvaultVectorStore, filter_to_where
from llama_index.vector_stores.memvault.memory_block import MemvaultVectorMemoryBlock

__all__ = ["MemvaultVectorMemoryBlock", "MemvaultVectorStore", "filter_to_where"]
