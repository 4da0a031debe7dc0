"""``MemvaultVectorStore``: a LlamaIndex vector store on a memvault document collection.

Nodes are collection documents (id = node id, text = node text, metadata = LlamaIndex's node metadata dict), so
re-adding a node id replaces it. Dense, keyword (BM25) and hybrid search, MMR and metadata filters are the core's
(``Collection.search`` with the ``where`` language); this module only translates LlamaIndex types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from llama_index.storage.chat_store.memvault.base import open_memory

from memvault import Memory
from memvault.errors import InvalidFilter
from memvault.recall import Document, DocumentHit
from memvault.recall.filters import compile_where

NODE_ID_KEY = "_node_id"
_DENSE_MODES = {VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.SVM, VectorStoreQueryMode.LOGISTIC_REGRESSION,
                VectorStoreQueryMode.LINEAR_REGRESSION}
_KEYWORD_MODES = {VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE}
_HYBRID_MODES = {VectorStoreQueryMode.HYBRID, VectorStoreQueryMode.SEMANTIC_HYBRID}
_COMPARE = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.ANY: "$any",
    FilterOperator.ALL: "$all",
    FilterOperator.CONTAINS: "$contains",
}


def _like_literal(text: str) -> str:
    return f"%{text}%"


def filter_to_where(item: MetadataFilter | MetadataFilters) -> dict[str, Any]:
    """Translate LlamaIndex MetadataFilters (every FilterOperator, nested AND / OR / NOT) to memvault's ``where``.

    Values are passed as values (never spliced into a query), so quotes such as ``O'Brien`` need no escaping.
    """
    if isinstance(item, MetadataFilters):
        parts = [filter_to_where(f) for f in item.filters]
        condition = item.condition or FilterCondition.AND
        if condition == FilterCondition.AND:
            return {"$and": parts}
        if condition == FilterCondition.OR:
            return {"$or": parts}
        if condition == FilterCondition.NOT:  # LlamaIndex: matches when none of the filters match
            return {"$not": {"$or": parts}}
        raise InvalidFilter(f"unknown filter condition {condition!r}")
    op = FilterOperator(item.operator)
    key, value = item.key, item.value
    if op == FilterOperator.IS_EMPTY:  # missing, None, "" or []
        return {key: {"$empty": True}}
    if op == FilterOperator.TEXT_MATCH:  # substring, as LlamaIndex defines it (no wildcards)
        return {key: {"$contains": value}}
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        if not isinstance(value, str):
            raise InvalidFilter(f"text_match_insensitive on {key!r} needs a str value, got {type(value).__name__}")
        return {key: {"$ilike": _like_literal(value)}}
    return {key: {_COMPARE[op]: value}}


def _node_to_document(node: BaseNode, flat_metadata: bool) -> Document:
    metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=flat_metadata)
    metadata[NODE_ID_KEY] = node.node_id
    return Document(
        id=node.node_id,
        text=node.get_content(metadata_mode=MetadataMode.NONE),
        metadata=metadata,
        vector=node.embedding,
    )


def _document_to_node(doc: Document) -> BaseNode:
    metadata = dict(doc.metadata)
    metadata.pop(NODE_ID_KEY, None)
    node = metadata_dict_to_node(metadata, text=doc.text)
    return node


class MemvaultVectorStore(BasePydanticVectorStore):
    """A vector store on a memvault collection (SQLite by default; any memvault backend by URL).

    Query modes: DEFAULT (dense), TEXT_SEARCH (BM25), HYBRID (dense and BM25 fused by z-score, ``alpha`` = dense
    weight), MMR (``mmr_threshold`` = lambda). MetadataFilters support every FilterOperator and nested AND/OR/NOT.
    ``embed_model`` (any LlamaIndex embedding or memvault embedder spec) embeds nodes that arrive without embeddings
    and text-only queries; None uses the Memory's embedder.
    """

    stores_text: bool = True
    flat_metadata: bool = False
    url: str | None = Field(default=None, description="memvault backend URL (None: MEMVAULT_URL or embedded SQLite)")
    namespace: str | None = Field(default=None, description="memvault namespace (tenant) of the collection")
    collection_name: str = Field(default="llama_index", description="memvault collection holding the nodes")

    _memory: Memory = PrivateAttr()
    _collection: Any = PrivateAttr()

    def __init__(
        self,
        url: str | None = None,
        *,
        memory: Memory | None = None,
        collection_name: str = "llama_index",
        namespace: str | None = None,
        embed_model: Any = None,
        **memory_options: Any,
    ) -> None:
        # pydantic's dataclass_transform gives super().__init__ the base model's fields only, not this class's
        super().__init__(url=url, namespace=namespace, collection_name=collection_name)  # type: ignore[call-arg]
        self._memory = open_memory(url, memory, memory_options)
        self._collection = self._memory.collection(collection_name, namespace=namespace, embedder=embed_model)

    @classmethod
    def class_name(cls) -> str:
        return "MemvaultVectorStore"

    @property
    def client(self) -> Any:
        """The memvault collection."""
        return self._collection

    @property
    def memory(self) -> Memory:
        return self._memory

    # -- writes ----------------------------------------------------------------------------------------------------
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert nodes by node id; returns their ids."""
        return self._collection.upsert([_node_to_document(n, self.flat_metadata) for n in nodes])

    async def async_add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        return await self._collection.aupsert([_node_to_document(n, self.flat_metadata) for n in nodes])

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id``."""
        self._collection.delete(where={"ref_doc_id": ref_doc_id})

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await self._collection.adelete(where={"ref_doc_id": ref_doc_id})

    def _delete_args(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> dict[str, Any] | None:
        if node_ids is None and filters is None:
            return None
        return {"ids": node_ids, "where": None if filters is None else filter_to_where(filters)}

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete nodes by id and/or filters (both given: the ids that match the filters)."""
        args = self._delete_args(node_ids, filters)
        if args is not None:
            self._collection.delete(args["ids"], where=args["where"])

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        args = self._delete_args(node_ids, filters)
        if args is not None:
            await self._collection.adelete(args["ids"], where=args["where"])

    def clear(self) -> None:
        """Delete every node of the collection."""
        self._collection.clear()

    async def aclear(self) -> None:
        await self._collection.aclear()

    # -- reads -----------------------------------------------------------------------------------------------------
    def _select(self, docs: list[Document], filters: MetadataFilters | None) -> list[BaseNode]:
        if filters is not None:
            keep = compile_where(filter_to_where(filters))
            docs = [d for d in docs if keep(d.metadata)]
        return [_document_to_node(d) for d in docs]

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> list[BaseNode]:
        """Nodes by id (in that order) and/or matching filters (all nodes when both are None)."""
        docs = self._collection.get(node_ids) if node_ids is not None else self._collection.documents()
        return self._select(docs, filters)

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> list[BaseNode]:
        if node_ids is not None:
            docs = await self._collection.aget(node_ids)
        else:
            docs = await self._collection.adocuments()
        return self._select(docs, filters)

    def _search_args(self, query: VectorStoreQuery, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        mode = VectorStoreQueryMode(query.mode)
        k = query.similarity_top_k
        args: dict[str, Any] = {"query": query.query_str, "vector": query.query_embedding}
        if mode in _DENSE_MODES:
            args["mode"] = "dense"
            if args["vector"] is not None:
                args["query"] = None
        elif mode in _KEYWORD_MODES:
            if not query.query_str:
                raise InvalidFilter(f"query mode {mode.value!r} needs query_str (the keywords)")
            args.update(mode="keyword", vector=None)
            k = query.sparse_top_k or k
        elif mode in _HYBRID_MODES:
            if not query.query_str:
                raise InvalidFilter(f"query mode {mode.value!r} needs query_str for its keyword half")
            alpha = 0.5 if query.alpha is None else query.alpha
            args.update(mode="hybrid", alpha=alpha)
            k = query.hybrid_top_k or k
        elif mode == VectorStoreQueryMode.MMR:
            lam = query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold", 0.5)
            args.update(mode="dense", mmr=lam, fetch_k=int(kwargs.get("mmr_prefetch_k") or max(20, 4 * k)))
        else:
            raise InvalidFilter(f"query mode {mode.value!r} is not supported by MemvaultVectorStore")
        if args["query"] is None and args["vector"] is None:
            raise InvalidFilter("the query needs query_embedding or query_str")
        where: list[dict[str, Any]] = []
        if query.filters is not None:
            where.append(filter_to_where(query.filters))
        if query.doc_ids:
            where.append({"ref_doc_id": {"$in": list(query.doc_ids)}})
        if query.node_ids:
            where.append({NODE_ID_KEY: {"$in": list(query.node_ids)}})
        if where:
            args["where"] = where[0] if len(where) == 1 else {"$and": where}
        args["k"] = k
        return args

    @staticmethod
    def _result(hits: list[DocumentHit]) -> VectorStoreQueryResult:
        nodes = [_document_to_node(h.document) for h in hits]
        return VectorStoreQueryResult(
            nodes=nodes, similarities=[float(h.score) for h in hits], ids=[n.node_id for n in nodes]
        )

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Search: dense, keyword, hybrid (fused, ``alpha`` honoured) or MMR, with metadata filters."""
        args = self._search_args(query, kwargs)
        return self._result(self._collection.search(args.pop("query"), **args))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        args = self._search_args(query, kwargs)
        return self._result(await self._collection.asearch(args.pop("query"), **args))
