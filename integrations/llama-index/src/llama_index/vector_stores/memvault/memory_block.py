"""``MemvaultVectorMemoryBlock``: LlamaIndex's ``VectorMemoryBlock`` that keeps each session's memories to itself.

The stock block adds its ``session_id`` filter to its shared ``query_kwargs`` the first time it runs and then keeps
it, so one block instance used by several ``Memory`` objects (the usual way to configure blocks once) answers every
later session with the first session's memories. This subclass builds the filter per call instead.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory.memory_blocks.vector import VectorMemoryBlock
from llama_index.core.schema import NodeWithScore
from llama_index.core.vector_stores.types import FilterCondition, MetadataFilter, MetadataFilters, VectorStoreQuery


def _has_session_filter(filters: MetadataFilters) -> bool:
    return any(isinstance(f, MetadataFilter) and f.key == "session_id" for f in filters.filters)


class MemvaultVectorMemoryBlock(VectorMemoryBlock):
    """A ``VectorMemoryBlock`` whose retrieval is always scoped to the calling session (no shared-state leak)."""

    def _query_kwargs(self, session_id: str | None) -> dict[str, Any]:
        kwargs = dict(self.query_kwargs)
        if session_id is None:
            return kwargs
        own = MetadataFilter(key="session_id", value=session_id)
        filters = kwargs.get("filters")
        if isinstance(filters, MetadataFilters):
            if not _has_session_filter(filters):
                kwargs["filters"] = MetadataFilters(filters=[filters, own], condition=FilterCondition.AND)
        else:
            kwargs["filters"] = MetadataFilters(filters=[own])
        return kwargs

    async def _aget(
        self, messages: list[ChatMessage] | None = None, session_id: str | None = None, **block_kwargs: Any
    ) -> str:
        if not messages:
            return ""
        window = self.retrieval_context_window
        context = messages[-window:] if window > 1 and len(messages) >= window else messages
        query_text = self._get_text_from_messages(context)
        if not query_text:
            return ""
        query = VectorStoreQuery(
            query_str=query_text,
            query_embedding=await self.embed_model.aget_query_embedding(query_text),
            similarity_top_k=self.similarity_top_k,
            **self._query_kwargs(session_id),
        )
        result = await self.vector_store.aquery(query)
        pairs = zip(result.nodes or [], result.similarities or [], strict=False)
        found = [NodeWithScore(node=n, score=s) for n, s in pairs]
        if not found:
            return ""
        for postprocessor in self.node_postprocessors:
            found = await postprocessor.apostprocess_nodes(found, query_str=query_text)
        return self.format_template.format(text="\n\n".join(n.get_content() for n in found))
