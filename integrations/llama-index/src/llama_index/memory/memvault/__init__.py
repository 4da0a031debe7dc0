"""memvault memory for LlamaIndex: ``MemvaultMemory`` (BaseMemory: summary + recall + recent window within a
token budget) and ``MemvaultMemoryBlock`` (a recall/summary block for ``llama_index.core.memory.Memory``)."""

from llama_index.memory.memvault.base import MemvaultMemory, MemvaultMemoryBlock

__all__ = ["MemvaultMemory", "MemvaultMemoryBlock"]
