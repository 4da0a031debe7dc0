"""LangGraph's long-term store on memvault: ``from langgraph.store.memvault import MemvaultStore``."""

from langgraph.store.memvault.base import (
    MemvaultInvalidNamespace,
    MemvaultSearchItem,
    MemvaultStore,
    search_index,
    ttl_policy,
)

__all__ = ["MemvaultInvalidNamespace", "MemvaultSearchItem", "MemvaultStore", "search_index", "ttl_policy"]
