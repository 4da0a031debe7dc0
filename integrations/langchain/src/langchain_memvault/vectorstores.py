"""``MemvaultVectorStore``: a LangChain ``VectorStore`` on a memvault document collection (any backend)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever

from langchain_memvault._memory import resolve_memory
from langchain_memvault.embeddings import MemvaultEmbeddings
from memvault import Memory
from memvault.errors import InvalidFilter

__all__ = ["MemvaultVectorStore", "MemvaultVectorStoreRetriever", "translate_filter"]

DEFAULT_COLLECTION = "langchain"

_COMPARISONS = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin"}
# Operators beyond the langchain-postgres set that memvault's filter language also understands; passed through.
_EXTRA_OPERATORS = {"$contains", "$any", "$all", "$like", "$ilike", "$exists", "$empty"}


def translate_filter(filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """Translate a LangChain metadata filter into memvault's ``where`` language.

    Accepted (as in langchain-postgres): ``{"field": value}`` (equality), ``{"field": {"$eq"|"$ne"|"$lt"|"$lte"|
    "$gt"|"$gte": v}}``, ``{"field": {"$in"|"$nin": [...]}}``, ``{"field": {"$between": [lo, hi]}}``,
    ``{"$and": [...]}``, ``{"$or": [...]}``, ``{"$not": {...}}``; several keys in one dict are ANDed. memvault's
    own operators (``$contains``, ``$like``, ``$ilike``, ``$exists``, ``$any``, ``$all``, ``$empty``) pass through.
    Anything else raises :class:`memvault.errors.InvalidFilter`.
    """
    if filter is None:
        return None
    if not isinstance(filter, dict):
        raise InvalidFilter(f"a metadata filter must be a dict, got {type(filter).__name__}")
    return _translate(filter)


def _translate(node: dict[str, Any]) -> dict[str, Any]:
    if not node:
        return {}
    parts: list[dict[str, Any]] = []
    for key, value in node.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
                raise InvalidFilter(f"{key} takes a non-empty list of filter dicts, got {value!r}")
            parts.append({key: [_translate(v) for v in value]})
        elif key == "$not":
            if isinstance(value, list):  # langchain-postgres style: $not over a list means NOT (a AND b ...)
                value = {"$and": value}
            if not isinstance(value, dict):
                raise InvalidFilter(f"$not takes a filter dict, got {value!r}")
            parts.append({"$not": _translate(value)})
        elif key.startswith("$"):
            raise InvalidFilter(f"unknown filter operator {key!r}; use $and, $or, $not or a field name")
        else:
            parts.append(_field(key, value))
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _field(field: str, condition: Any) -> dict[str, Any]:
    if not isinstance(condition, dict):
        return {field: condition}
    parts: list[dict[str, Any]] = []
    for op, value in condition.items():
        if op == "$between":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise InvalidFilter(f"$between on {field!r} takes [low, high], got {value!r}")
            parts += [{field: {"$gte": value[0]}}, {field: {"$lte": value[1]}}]
        elif op in _COMPARISONS or op in _EXTRA_OPERATORS:
            if op in ("$in", "$nin") and not isinstance(value, (list, tuple)):
                raise InvalidFilter(f"{op} on {field!r} takes a list, got {value!r}")
            parts.append({field: {op: list(value) if isinstance(value, tuple) else value}})
        else:
            raise InvalidFilter(
                f"unknown operator {op!r} on field {field!r}; supported: "
                f"{sorted(_COMPARISONS | _EXTRA_OPERATORS | {'$between'})}"
            )
    if not parts:
        raise InvalidFilter(f"empty condition for field {field!r}")
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _to_lc(doc: Any) -> Document:
    return Document(page_content=doc.text, metadata=dict(doc.metadata or {}), id=doc.id)


class MemvaultVectorStore(VectorStore):
    """A LangChain vector store on a memvault collection: embedded SQLite by default, any backend by ``url=`` or
    ``memory=``.

    ``embedding`` is any LangChain ``Embeddings`` (or ``None`` for memvault's offline default embedder). Ids are
    strings you choose (``"1"`` works) or generated; adding an existing id replaces that document. Searches:
    ``similarity`` (dense), ``mmr``, and ``hybrid`` (dense + keyword fusion, ``alpha`` = dense weight), each with a
    metadata ``filter`` (see :func:`translate_filter`).
    """

    def __init__(
        self,
        embedding: Embeddings | None = None,
        *,
        collection_name: str = DEFAULT_COLLECTION,
        url: str | None = None,
        memory: Memory | None = None,
        namespace: str | None = None,
    ) -> None:
        self.memory = resolve_memory(memory, url)
        self.collection_name = collection_name
        if isinstance(embedding, MemvaultEmbeddings):
            embedder: Any = embedding.embedder
        else:
            embedder = embedding
        self._embedding = embedding
        self.collection = self.memory.collection(collection_name, namespace=namespace, embedder=embedder)

    @property
    def embeddings(self) -> Embeddings | None:
        if self._embedding is None:
            self._embedding = MemvaultEmbeddings(self.collection.embedder)
        return self._embedding

    # -- writes ------------------------------------------------------------------------------------------------
    @staticmethod
    def _docs(
        texts: Iterable[str], metadatas: list[dict[str, Any]] | None, ids: Sequence[str | None] | None
    ) -> list[dict[str, Any]]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise InvalidFilter(f"got {len(metadatas)} metadatas for {len(texts)} texts; pass one per text")
        if ids is not None and len(ids) != len(texts):
            raise InvalidFilter(f"got {len(ids)} ids for {len(texts)} texts; pass one per text")
        return [
            {
                "id": None if ids is None or ids[i] is None else str(ids[i]),
                "text": text,
                "metadata": dict(metadatas[i]) if metadatas and metadatas[i] else {},
            }
            for i, text in enumerate(texts)
        ]

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store ``texts``; an id that exists already is replaced. Returns the ids."""
        docs = self._docs(texts, metadatas, ids)
        return list(self.collection.upsert(docs)) if docs else []

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        docs = self._docs(texts, metadatas, ids)
        return list(await self.collection.aupsert(docs)) if docs else []

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id; ``filter=`` deletes by metadata; with neither, delete everything in the collection."""
        where = translate_filter(kwargs.get("filter"))
        if ids is None and where is None:
            self.collection.clear()
        else:
            self.collection.delete(None if ids is None else [str(i) for i in ids], where=where)
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        where = translate_filter(kwargs.get("filter"))
        if ids is None and where is None:
            await self.collection.aclear()
        else:
            await self.collection.adelete(None if ids is None else [str(i) for i in ids], where=where)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [_to_lc(d) for d in self.collection.get([str(i) for i in ids])]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [_to_lc(d) for d in await self.collection.aget([str(i) for i in ids])]

    # -- searches ----------------------------------------------------------------------------------------------
    @staticmethod
    def _search_args(k: int, filter: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise InvalidFilter(f"k must be a non-negative int, got {k!r}")
        return {"k": k, "where": translate_filter(filter), **extra}

    def _run(self, query: str | None, vector: list[float] | None, args: dict[str, Any]) -> list[tuple[Document, float]]:
        if args["k"] == 0:
            return []
        hits = self.collection.search(query, vector=vector, **args)
        return [(_to_lc(h.document), float(h.score)) for h in hits]

    async def _arun(
        self, query: str | None, vector: list[float] | None, args: dict[str, Any]
    ) -> list[tuple[Document, float]]:
        if args["k"] == 0:
            return []
        hits = await self.collection.asearch(query, vector=vector, **args)
        return [(_to_lc(h.document), float(h.score)) for h in hits]

    def _query_vector(self, query: str) -> tuple[str | None, list[float] | None]:
        # A user-supplied LangChain Embeddings embeds queries with embed_query (some models embed queries and
        # documents differently); memvault's own embedder is used by the collection directly.
        if self._embedding is not None and not isinstance(self._embedding, MemvaultEmbeddings):
            return None, self._embedding.embed_query(query)
        return query, None

    async def _aquery_vector(self, query: str) -> tuple[str | None, list[float] | None]:
        if self._embedding is not None and not isinstance(self._embedding, MemvaultEmbeddings):
            return None, await self._embedding.aembed_query(query)
        return query, None

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Dense search; scores are cosine similarities (higher = more similar)."""
        text, vector = self._query_vector(query)
        return self._run(text, vector, self._search_args(k, filter, mode="dense"))

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        text, vector = await self._aquery_vector(query)
        return await self._arun(text, vector, self._search_args(k, filter, mode="dense"))

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self._run(None, list(embedding), self._search_args(k, filter, mode="dense"))]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        args = self._search_args(k, filter, mode="dense")
        return [doc for doc, _ in await self._arun(None, list(embedding), args)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # cosine similarity in [-1, 1] -> relevance in [0, 1]
        return lambda score: max(0.0, min(1.0, (score + 1.0) / 2.0))

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        text, vector = self._query_vector(query)
        args = self._search_args(k, filter, mode="dense", mmr=lambda_mult, fetch_k=max(fetch_k, k))
        return [doc for doc, _ in self._run(text, vector, args)]

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        text, vector = await self._aquery_vector(query)
        args = self._search_args(k, filter, mode="dense", mmr=lambda_mult, fetch_k=max(fetch_k, k))
        return [doc for doc, _ in await self._arun(text, vector, args)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        args = self._search_args(k, filter, mode="dense", mmr=lambda_mult, fetch_k=max(fetch_k, k))
        return [doc for doc, _ in self._run(None, list(embedding), args)]

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        args = self._search_args(k, filter, mode="dense", mmr=lambda_mult, fetch_k=max(fetch_k, k))
        return [doc for doc, _ in await self._arun(None, list(embedding), args)]

    def hybrid_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, alpha: float = 0.5, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Dense + keyword search fused (``alpha`` = weight of the dense side); higher score = better."""
        _, vector = self._query_vector(query)
        return self._run(query, vector, self._search_args(k, filter, mode="hybrid", alpha=alpha))

    async def ahybrid_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, alpha: float = 0.5, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        _, vector = await self._aquery_vector(query)
        return await self._arun(query, vector, self._search_args(k, filter, mode="hybrid", alpha=alpha))

    def hybrid_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, alpha: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.hybrid_search_with_score(query, k, filter, alpha, **kwargs)]

    async def ahybrid_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, alpha: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in await self.ahybrid_search_with_score(query, k, filter, alpha, **kwargs)]

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        if search_type == "hybrid":
            return self.hybrid_search(query, **kwargs)
        return super().search(query, search_type, **kwargs)

    async def asearch(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        if search_type == "hybrid":
            return await self.ahybrid_search(query, **kwargs)
        return await super().asearch(query, search_type, **kwargs)

    def as_retriever(self, **kwargs: Any) -> MemvaultVectorStoreRetriever:
        """A retriever; ``search_type`` is ``similarity`` (default), ``mmr``, ``hybrid`` or
        ``similarity_score_threshold``; ``search_kwargs`` go to the search (k, filter, fetch_k, lambda_mult, alpha)."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return MemvaultVectorStoreRetriever(vectorstore=self, tags=tags, **kwargs)

    # -- constructors ------------------------------------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MemvaultVectorStore:
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MemvaultVectorStore:
        store = cls(embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store


class MemvaultVectorStoreRetriever(VectorStoreRetriever):
    """``VectorStoreRetriever`` that also knows ``search_type="hybrid"``."""

    allowed_search_types: ClassVar[tuple[str, ...]] = ("similarity", "similarity_score_threshold", "mmr", "hybrid")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            return self.vectorstore.hybrid_search(query, **(self.search_kwargs | kwargs))  # type: ignore[attr-defined]
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            kwargs_ = self.search_kwargs | kwargs
            return await self.vectorstore.ahybrid_search(query, **kwargs_)  # type: ignore[attr-defined]
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
