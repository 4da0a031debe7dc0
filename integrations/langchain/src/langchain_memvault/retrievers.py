"""``MemvaultRetriever``: hybrid recall over stored conversations as a LangChain retriever."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from langchain_memvault._memory import resolve_memory
from langchain_memvault._messages import EXTRAS_KEY
from memvault import Memory
from memvault.errors import InvalidFilter

__all__ = ["MemvaultRetriever", "hit_to_document"]


def hit_to_document(hit: Any) -> Document:
    """A recall hit as a Document: the message text, with role, session, seq, timestamps and signals in metadata."""
    message = hit.message
    lc = message.extras.get(EXTRAS_KEY) if isinstance(message.extras, dict) else None
    metadata: dict[str, Any] = {
        "role": message.role,
        "session_id": hit.session_id,
        "namespace": hit.namespace,
        "seq": message.seq,
        "message_id": message.id,
        "created_at": message.created_at.isoformat(),
        "score": float(hit.score),
        "signals": hit.signals,
    }
    if message.name is not None:
        metadata["name"] = message.name
    if isinstance(lc, dict) and "type" in lc:
        metadata["type"] = lc["type"]
    if message.metadata:
        metadata["metadata"] = message.metadata
    neighbors = getattr(hit, "neighbors", None)
    if neighbors:
        metadata["neighbors"] = [
            {"seq": n.seq, "role": n.role, "text": n.text, "created_at": n.created_at.isoformat()} for n in neighbors
        ]
    return Document(page_content=message.text, metadata=metadata, id=message.id)


class MemvaultRetriever(BaseRetriever):
    """Hybrid (dense + keyword) recall over conversation history stored by memvault.

    Scope: ``session_id`` (one conversation), else ``user_id`` (all of a user's sessions), else the whole
    ``namespace``. ``k`` results (overridable per call: ``retriever.invoke(q, k=3)``); ``mode`` is ``hybrid``,
    ``dense`` or ``keyword``; ``filters`` as in :meth:`memvault.Memory.recall` (``role``, ``after``, ``before``,
    ``session``, ``metadata``). Documents carry role, session_id, seq, created_at, score and signals in metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Memory | None = None
    url: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    namespace: str | None = None
    k: int = Field(default=4, ge=0)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filters: dict[str, Any] | None = None
    recency_half_life: float | None = None
    neighbors: int = 0

    _memory: Memory = PrivateAttr()

    @field_validator("k", "neighbors")
    @classmethod
    def _non_negative(cls, value: int) -> int:
        if isinstance(value, bool) or value < 0:
            raise InvalidFilter(f"must be a non-negative int, got {value!r}")
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._memory = resolve_memory(self.memory, self.url)

    def _kwargs(self, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        k = kwargs.pop("k", self.k)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidFilter(f"k must be a non-negative int, got {k!r}")
        options: dict[str, Any] = {
            "session": self.session_id,
            "user_id": self.user_id,
            "namespace": self.namespace,
            "mode": kwargs.pop("mode", self.mode),
            "filters": kwargs.pop("filters", self.filters),
            "recency_half_life": kwargs.pop("recency_half_life", self.recency_half_life),
            "neighbors": kwargs.pop("neighbors", self.neighbors),
        }
        if kwargs:
            raise InvalidFilter(f"unknown retriever options {sorted(kwargs)}; use k, mode, filters, neighbors, ...")
        return k, options

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, options = self._kwargs(kwargs)
        if k == 0:
            return []
        return [hit_to_document(h) for h in self._memory.recall(query, k=k, **options)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        k, options = self._kwargs(kwargs)
        if k == 0:
            return []
        return [hit_to_document(h) for h in await self._memory.arecall(query, k=k, **options)]
