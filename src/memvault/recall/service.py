"""The recall service behind ``Memory.recall``: scope resolution, the indexer, and the engine for the backend.

Engines: :class:`~memvault.recall.inprocess_engine.InProcessEngine` (every backend) and the native ones a backend
declares through ``Store.recall_engine`` (SQLite: FTS5 + vector table + HNSW; PostgreSQL: pgvector + tsvector),
looked up in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from memvault import lifecycle
from memvault.contract import Store
from memvault.errors import EmbeddingModelMismatch, InvalidFilter
from memvault.model import SessionInfo
from memvault.recall.embedders import CachedEmbedder, as_embedder
from memvault.recall.filters import RecallFilter
from memvault.recall.indexer import BackgroundIndexer
from memvault.recall.inprocess_engine import InProcessEngine
from memvault.recall.rank import check_mode
from memvault.recall.search import half_life_seconds, keyword_segment, list_all, search_segments
from memvault.recall.types import MAX_K, Hit, IndexStatus, SearchOptions
from memvault.validation import check_int, check_text, is_internal, validate_id, validate_namespace

logger = logging.getLogger("memvault.recall")

#: defaults measured on LoCoMo (docs/recall.md)
DEFAULTS = SearchOptions(fusion="zscore", dense_weight=0.6, neighbour_weight=0.5)

Progress = Callable[[int, int], Any]

#: ``Store.recall_engine`` names -> "module:Class" (a class taking (store, embedder))
ENGINES: dict[str, str] = {
    "sqlite": "memvault.recall.sqlite_engine:SQLiteEngine",
    "postgres": "memvault.recall.postgres_engine:PostgresEngine",
}


def engine_for(store: Store, embedder: CachedEmbedder) -> Any:
    """The native engine the store declares (``store.recall_engine``), else the in-process engine."""
    name = store.recall_engine
    target = ENGINES.get(name) if name else None
    if target is not None:
        module, _, cls = target.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)(store, embedder)
        except ImportError as exc:
            logger.info("recall engine %s unavailable (%s); using the in-process engine", name, exc)
    return InProcessEngine(store, embedder)


class RecallService:
    """Owns the embedder, the engine and the background indexer of one Memory."""

    def __init__(self, memory: Any, embedder: Any = "default", *, indexer: str = "background") -> None:
        self.memory = memory
        self.store: Store = memory.store
        self.embedder = embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(as_embedder(embedder))
        self.engine = engine_for(self.store, self.embedder)
        # one connection shared with the caller: an indexer thread's writes would nest inside (and race with) the
        # caller's open transaction, so messages are embedded in the writing thread, inside that transaction
        self.indexer = BackgroundIndexer(self.engine.index, mode="inline" if self.store.shared_connection else indexer)
        lifecycle.register(self)

    # -- write hook ----------------------------------------------------------------------------------------------
    def on_write(self, event: str, ns: str, sid: str, payload: Any) -> None:
        if is_internal(ns):  # collections keep their own vectors
            return
        if event in ("append", "replace") and payload:
            if getattr(self.engine, "indexes_on_write", True):
                self.indexer.submit(ns, sid, payload)
        elif event in ("clear", "delete_session", "delete_messages"):
            self.engine.forget(ns, sid)

    # -- queries -------------------------------------------------------------------------------------------------
    def scope(self, ns: str, session: str | None, user_id: str | None) -> list[SessionInfo]:
        """The sessions of a recall scope in namespace ``ns`` (already validated)."""
        if session is not None:
            info = self.store.get_session(ns, validate_id(session))
            if info is None or (user_id is not None and info.user_id != user_id):
                return []
            return [info]
        uid = None if user_id is None else validate_id(user_id, "user id")
        return list_all(self.store, ns, uid)

    def recall(
        self,
        query: str,
        *,
        session: str | None = None,
        user_id: str | None = None,
        namespace: str | None = None,
        k: int = 10,
        mode: str = "hybrid",
        filters: Mapping[str, Any] | None = None,
        recency_half_life: float | timedelta | None = None,
        mmr: float | None = None,
        neighbors: int = 0,
        **tuning: Any,
    ) -> list[Hit]:
        check_text(query, "query")
        check_int(k, "k", minimum=1, maximum=MAX_K)
        check_mode(mode)
        if filters is not None and not isinstance(filters, Mapping):
            raise InvalidFilter(f"filters must be a dict, got {type(filters).__name__}")
        session = None if session is None else validate_id(session)
        user_id = None if user_id is None else validate_id(user_id, "user id")
        rfilter = RecallFilter(filters)
        unknown = set(tuning) - {"fusion", "dense_weight", "neighbour_weight", "fetch_k", "feedback"}
        if unknown:
            raise InvalidFilter(f"unknown recall option(s) {sorted(unknown)}")
        options = SearchOptions(
            mode=mode,
            fusion=tuning.get("fusion", DEFAULTS.fusion),
            dense_weight=tuning.get("dense_weight", DEFAULTS.dense_weight),
            neighbour_weight=tuning.get("neighbour_weight", DEFAULTS.neighbour_weight),
            feedback=tuning.get("feedback", DEFAULTS.feedback),
            recency_half_life=half_life_seconds(recency_half_life),
            mmr=mmr,
            fetch_k=tuning.get("fetch_k", max(50, 4 * k)),
            neighbors=neighbors,
        )
        ns = self.memory.namespace if namespace is None else validate_namespace(namespace)
        wide = getattr(self.engine, "search_wide", None)
        if wide is not None and session is None and rfilter.sessions is None and query.strip():
            # a namespace- or user-wide query on an engine that scopes in SQL: no listing of every session
            uid = None if user_id is None else validate_id(user_id, "user id")
            self.indexer.flush()
            hits = wide(ns, uid, query, k, options, rfilter)
            if hits is not None:
                return hits
        infos = self.scope(ns, session, user_id)
        if rfilter.sessions is not None:
            infos = [i for i in infos if i.id in rfilter.sessions]
        if not infos or not query.strip():
            return []
        self.indexer.flush()
        try:
            return self.engine.search(infos, query, k, options, rfilter)
        except EmbeddingModelMismatch:
            if options.mode != "keyword" or options.mmr is not None:
                raise
            # keyword recall needs no vectors: rank the scope's text even while the stored vectors are another
            # model's (before a reindex); nothing is embedded or written
            segments = [keyword_segment(self.store, info) for info in infos]
            segments = [seg for seg in segments if len(seg)]
            if not segments:
                return []
            return search_segments(segments, query, k, options, rfilter, self.embedder, now=self.store.clock())

    def status(self) -> IndexStatus:
        return self.engine.status(self.indexer.backlog)

    def reindex(self, progress: Progress | None = None, *, namespace: str | None = None) -> int:
        self.indexer.flush()
        ns = self.memory.namespace if namespace is None else validate_namespace(namespace)
        return self.engine.reindex(list_all(self.store, ns), progress)

    def flush(self, timeout: float | None = None) -> bool:
        return self.indexer.flush(timeout)

    def stop(self) -> None:
        """Stop background work at once (process exit): queued embeddings are redone by the next query."""
        self.indexer.stop()
        stop = getattr(self.engine, "stop", None)
        if stop is not None:
            stop()

    def close(self) -> None:
        self.indexer.close()
        self.engine.close()
