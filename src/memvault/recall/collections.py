"""Document collections: the storage behind the LangChain / LlamaIndex vector-store adapters, on every backend.

A collection ``name`` of namespace ``ns`` is the session ``name`` in the internal namespace
``internal_namespace(ns, "collections")``, which no user-given namespace can name (so conversations, session listings
and other tenants never see documents). Each document is one message (``content`` = text,
``metadata`` = metadata, message id = document id); its vector is a ``recall.vec`` record next to it, stored with
the embedding model id (a model change raises EmbeddingModelMismatch). Search is in-process (numpy + BM25) over
the collection, with the ``where`` language for metadata filters.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memvault.contract import AppendOptions, Store
from memvault.errors import InvalidFilter, InvalidMessage, InvalidSessionId
from memvault.model import Message, encode_body
from memvault.recall.embedders import CachedEmbedder, content_hash, normalise, similarities
from memvault.recall.filters import compile_where
from memvault.recall.keyword import bm25_scores
from memvault.recall.rank import rank
from memvault.recall.segments import VEC_KIND, Segment, pack, unpack
from memvault.recall.types import MAX_K, Document, DocumentHit, SearchOptions
from memvault.validation import (
    check_ids,
    check_int,
    check_metadata,
    check_number,
    check_text,
    internal_namespace,
    validate_id,
)

DOC_ROLE = "user"


def _finite_vector(vector: Any, what: str) -> np.ndarray:
    """A 1-d float32 vector of finite numbers (InvalidFilter for a query, InvalidMessage for a document)."""
    error = InvalidFilter if what == "query vector" else InvalidMessage
    if isinstance(vector, (str, bytes, Mapping)) or not hasattr(vector, "__len__"):
        raise error(f"{what} must be a sequence of numbers, got {type(vector).__name__}")
    if (vector.dtype.kind == "b" if isinstance(vector, np.ndarray)
            else any(isinstance(x, (bool, np.bool_)) for x in vector)):
        raise error(f"{what} holds booleans; a vector is a sequence of numbers")
    try:
        array = np.asarray(vector, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise error(f"{what} must be a sequence of numbers: {exc}") from None
    if not len(array) or not np.isfinite(array).all() or (np.abs(array) > 3.4e38).any():
        raise error(f"{what} must be a non-empty sequence of finite float32 numbers")
    return array.astype(np.float32)


def _as_document(item: Document | Mapping[str, Any]) -> Document:
    if isinstance(item, Mapping):
        fields = item
        try:
            item = Document(**fields)
        except TypeError as exc:
            raise InvalidMessage(f"cannot build a Document from {sorted(map(str, fields))}: {exc}") from None
    if not isinstance(item, Document):
        raise InvalidMessage(f"expected a Document, got {type(item).__name__}")
    if item.id is not None:
        try:
            validate_id(item.id, "document id")
        except InvalidSessionId as exc:
            raise InvalidMessage(str(exc)) from None
    check_text(item.text, "document text", error=InvalidMessage)
    if item.metadata is not None:
        check_metadata(item.metadata, "document metadata", allow_nul=True)
    if item.vector is not None:
        _finite_vector(item.vector, f"document {item.id!r} vector")
    return item


class Collection:
    """A named set of documents with vectors; see ``Memory.collection``. Every method has an ``a``-prefixed twin."""

    def __init__(self, store: Store, name: str, namespace: str, embedder: CachedEmbedder) -> None:
        self.store = store
        self.name = validate_id(name, "collection name")
        self.namespace = namespace
        self.ns = internal_namespace(namespace, "collections")
        self.embedder = embedder
        self._segment = Segment(self.ns, self.name, context=False)
        self._lock = threading.RLock()
        self._normalised: tuple[np.ndarray, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"Collection({self.name!r}, namespace={self.namespace!r}, model={self.embedder.model_id!r})"

    # -- writes --------------------------------------------------------------------------------------------------
    def upsert(self, docs: Sequence[Document | Mapping[str, Any]]) -> list[str]:
        """Insert or replace documents (same id replaces); returns their ids in order."""
        items = [_as_document(d) for d in docs]
        if not items:
            return []
        ids = [d.id if d.id is not None else str(uuid.uuid4()) for d in items]
        latest = {doc_id: i for i, doc_id in enumerate(ids)}  # a repeated id in one batch: the last one wins
        order = sorted(latest.values())
        messages = [Message(role=DOC_ROLE, content=items[i].text, metadata=dict(items[i].metadata or {}), id=ids[i])
                    for i in order]
        records = [encode_body(m, self.store.max_message_bytes) for m in messages]
        vectors = self._vectors([items[i] for i in order])
        with self._lock:
            sample = self.store.get_records(self.ns, self.name, VEC_KIND, last=1)
            if sample and len(unpack(sample[0][1]["v"])) != vectors.shape[1]:
                raise InvalidMessage(
                    f"collection {self.name!r} holds {len(unpack(sample[0][1]['v']))}-d vectors; these are "
                    f"{vectors.shape[1]}-d (clear() the collection to change dimension)"
                )
            existing = self.store.get_messages(self.ns, self.name, [ids[i] for i in order])
            if existing:
                self.store.delete_messages(self.ns, self.name, [m.id for m in existing])
            self.store.append(self.ns, self.name, records, AppendOptions())
            for message, vector in zip(messages, vectors, strict=True):
                data = {"m": self.embedder.model_id, "h": content_hash(message.text), "v": pack(vector)}
                self.store.put_record(self.ns, self.name, VEC_KIND, message.id, data)
        return ids

    def _vectors(self, docs: Sequence[Document]) -> np.ndarray:
        dim: int | None = None
        given: dict[int, np.ndarray] = {}
        for i, doc in enumerate(docs):
            if doc.vector is not None:
                given[i] = _finite_vector(doc.vector, f"document {doc.id!r} vector")
        todo = [i for i in range(len(docs)) if i not in given]
        embedded = self.embedder.embed([docs[i].text for i in todo]) if todo else None
        dim = embedded.shape[1] if embedded is not None else len(next(iter(given.values())))
        out = np.zeros((len(docs), dim), dtype=np.float32)
        for i, vec in given.items():
            if vec.shape[0] != dim:
                raise InvalidMessage(
                    f"document {docs[i].id!r} has a {vec.shape[0]}-d vector; this collection's embedder "
                    f"({self.embedder.model_id}) makes {dim}-d vectors"
                )
            out[i] = vec
        if embedded is not None:
            out[todo] = embedded
        return out

    def delete(self, ids: Sequence[str] | None = None, *, where: Mapping[str, Any] | None = None) -> int:
        """Delete documents by id and/or matching ``where``; returns how many. Both None is an error: use clear()."""
        if ids is None and where is None:
            raise InvalidFilter("delete() needs ids or where; to delete every document call clear()")
        targets = check_ids(ids, "document id") if ids is not None else None
        if where is not None:
            predicate = compile_where(where)
            segment = self._synced()
            matching = [m.id for m in segment.messages if predicate(m.metadata)]
            targets = matching if targets is None else [i for i in targets if i in set(matching)]
        if not targets:
            return 0
        with self._lock:
            return self.store.delete_messages(self.ns, self.name, targets)

    def clear(self) -> int:
        """Delete every document; returns how many."""
        with self._lock:
            removed = self.store.clear(self.ns, self.name)
            self._segment.reset()
            return removed

    # -- reads ---------------------------------------------------------------------------------------------------
    def count(self) -> int:
        return self.store.count(self.ns, self.name)

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Documents by id, in the order of ``ids``; missing ones are skipped."""
        ids = check_ids(ids, "document id")
        if not ids:
            return []
        found = {m.id: m for m in self.store.get_messages(self.ns, self.name, ids)}
        vectors = dict(self.store.get_records(self.ns, self.name, VEC_KIND, keys=list(found)))
        out: list[Document] = []
        for doc_id in ids:
            message = found.get(doc_id)
            if message is None:
                continue
            record = vectors.get(doc_id)
            vector = unpack(record["v"]).tolist() if record else None
            out.append(Document(id=message.id, text=message.text, metadata=dict(message.metadata), vector=vector))
        return out

    def documents(self) -> list[Document]:
        """Every document, oldest first (without vectors; see :meth:`get` for those)."""
        from memvault.recall.segments import read_all

        return [Document(id=m.id, text=m.text, metadata=dict(m.metadata)) for m in read_all(self.store, self.ns, self.name)]

    def _synced(self) -> Segment:
        info = self.store.get_session(self.ns, self.name)
        self._segment.sync(self.store, info, self.embedder)
        return self._segment

    def _unit(self, vectors: np.ndarray) -> np.ndarray:
        """The segment's vectors normalised, cached while the segment keeps the same matrix (normalising 100K
        vectors costs more than searching them)."""
        with self._lock:
            cached = self._normalised
            if cached is None or cached[0] is not vectors:
                cached = self._normalised = (vectors, normalise(vectors))
        return cached[1]

    def search(
        self,
        query: str | None = None,
        *,
        vector: Sequence[float] | None = None,
        k: int = 4,
        mode: str = "dense",
        alpha: float = 0.5,
        where: Mapping[str, Any] | None = None,
        mmr: float | None = None,
        fetch_k: int = 20,
    ) -> list[DocumentHit]:
        """Top-``k`` documents for a query text and/or vector. ``alpha`` = dense weight in hybrid fusion; ``mmr`` =
        lambda (0..1) re-ranks the best ``fetch_k`` for diversity. Scores: higher is better (dense: cosine)."""
        check_int(k, "k", minimum=1, maximum=MAX_K)
        options = SearchOptions(mode=mode, dense_weight=check_number(alpha, "alpha", minimum=0.0, maximum=1.0),
                                mmr=mmr, fetch_k=fetch_k)
        if query is not None:
            check_text(query, "query")
        q_vector = None if vector is None else _finite_vector(vector, "query vector")
        if query is None and vector is None:
            raise InvalidFilter("search() needs a query text or a vector")
        if mode != "dense" and query is None:
            raise InvalidFilter(f"mode={mode!r} needs a query text (keywords); pass query= or use mode='dense'")
        predicate = compile_where(where) if where is not None else None
        with self._lock:
            segment = self._synced()
            messages = list(segment.messages)
            vectors = segment.vectors
        if not messages or vectors is None:
            return []
        unit = self._unit(vectors)
        dense = keyword = None
        if mode != "keyword" or mmr is not None:
            q = q_vector
            if q is None:
                q = self.embedder.embed_query(query or "")
            if q.shape[0] != unit.shape[1]:
                raise InvalidFilter(f"query vector has {q.shape[0]} dims; the collection's vectors have {unit.shape[1]}")
            dense = similarities(unit, normalise(q)[0])
        if mode != "dense":
            keyword = bm25_scores([segment.keyword], query or "")
        keep = None
        if predicate is not None:
            keep = np.flatnonzero([predicate(m.metadata) for m in messages])
            if len(keep) == 0:
                return []
            dense = None if dense is None else dense[keep]
            keyword = None if keyword is None else keyword[keep]
            unit = unit[keep]
        ranked = rank(k, options, dense=dense, keyword=keyword, vectors=unit)
        hits = []
        for r in ranked:
            index = int(keep[r.index]) if keep is not None else r.index
            message = messages[index]
            doc = Document(id=message.id, text=message.text, metadata=dict(message.metadata),
                           vector=vectors[index].tolist())
            hits.append(DocumentHit(doc, r.score, r.signals))
        return hits

    # -- async twins ---------------------------------------------------------------------------------------------
    async def aupsert(self, docs: Sequence[Document | Mapping[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self.upsert, docs)

    async def aget(self, ids: Sequence[str]) -> list[Document]:
        return await asyncio.to_thread(self.get, ids)

    async def adelete(self, ids: Sequence[str] | None = None, *, where: Mapping[str, Any] | None = None) -> int:
        return await asyncio.to_thread(lambda: self.delete(ids, where=where))

    async def aclear(self) -> int:
        return await asyncio.to_thread(self.clear)

    async def adocuments(self) -> list[Document]:
        return await asyncio.to_thread(self.documents)

    async def acount(self) -> int:
        return await asyncio.to_thread(self.count)

    async def asearch(self, query: str | None = None, **kwargs: Any) -> list[DocumentHit]:
        return await asyncio.to_thread(lambda: self.search(query, **kwargs))
