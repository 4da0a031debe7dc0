"""memvault conversation retriever for LlamaIndex: ``MemvaultRetriever``."""

from llama_index.retrievers.memvault.base import MemvaultRetriever, hit_to_node

__all__ = ["MemvaultRetriever", "hit_to_node"]
