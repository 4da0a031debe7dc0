"""``MemvaultRetriever``: hybrid recall over stored conversations as a LlamaIndex retriever.

Every node is one recalled message: its text, and metadata carrying the exact LlamaIndex role, the session,
namespace, seq, timestamps and the per-signal scores (dense / keyword / recency: rank, score, share) from memvault.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.storage.chat_store.memvault._convert import to_chat_message
from llama_index.storage.chat_store.memvault.base import open_memory

from memvault import Memory, Message

# metadata the LLM does not need to see in its context (still on the node for code)
_HIDDEN = ["session_id", "namespace", "seq", "message_id", "signals", "neighbors", "created_ts"]


def _neighbor(message: Message) -> dict[str, Any]:
    return {"seq": message.seq, "role": to_chat_message(message).role.value, "text": message.text}


def hit_to_node(hit: Any) -> NodeWithScore:
    """A NodeWithScore for one memvault recall Hit."""
    message: Message = hit.message
    chat = to_chat_message(message)
    metadata: dict[str, Any] = {
        "role": chat.role.value,
        "created_at": message.created_at.isoformat(),
        "created_ts": message.created_at.timestamp(),
        "session_id": hit.session_id,
        "namespace": hit.namespace,
        "seq": message.seq,
        "message_id": message.id,
        "signals": hit.signals,
    }
    if hit.neighbors:
        metadata["neighbors"] = [_neighbor(m) for m in hit.neighbors]
    node = TextNode(
        id_=message.id,
        text=message.text,
        metadata=metadata,
        excluded_llm_metadata_keys=list(_HIDDEN),
        excluded_embed_metadata_keys=list(_HIDDEN),
    )
    return NodeWithScore(node=node, score=float(hit.score))


class MemvaultRetriever(BaseRetriever):
    """Retrieve relevant past messages with memvault's hybrid recall (dense + BM25 + optional recency).

    Scope: ``session_id`` (one conversation), ``user_id`` (all of a user's sessions) or the whole ``namespace``.
    ``mode`` is "hybrid" (default), "dense" or "keyword"; ``filters`` is memvault's recall filter dict
    (``{"role": "user", "after": datetime, ...}``); ``neighbors=n`` attaches the n turns around each hit.
    """

    def __init__(
        self,
        memory: Memory | None = None,
        *,
        url: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        namespace: str | None = None,
        similarity_top_k: int = 5,
        mode: str = "hybrid",
        filters: dict[str, Any] | None = None,
        recency_half_life: float | timedelta | None = None,
        mmr: float | None = None,
        neighbors: int = 0,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **memory_options: Any,
    ) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.memory = open_memory(url, memory, memory_options)
        self.options: dict[str, Any] = {
            "session": session_id,
            "user_id": user_id,
            "namespace": namespace,
            "k": similarity_top_k,
            "mode": mode,
            "filters": filters,
            "recency_half_life": recency_half_life,
            "mmr": mmr,
            "neighbors": neighbors,
        }

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.memory.recall(query_bundle.query_str, **self.options)
        return [hit_to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.memory.arecall(query_bundle.query_str, **self.options)
        return [hit_to_node(h) for h in hits]
