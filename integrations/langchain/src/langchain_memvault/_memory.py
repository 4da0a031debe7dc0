"""The Memory a LangChain adapter works on: the one given, or memvault's process-wide shared Memory per URL
(:mod:`memvault.shared`), so creating a history per request (what ``RunnableWithMessageHistory`` factories do) does
not open a new connection each time."""

from __future__ import annotations

from memvault import Memory
from memvault.shared import open_memory, shared_memory


def resolve_memory(memory: Memory | None, url: str | None) -> Memory:
    return open_memory(url, memory)


__all__ = ["resolve_memory", "shared_memory"]
