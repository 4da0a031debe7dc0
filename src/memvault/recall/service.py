"""The recall service behind ``Memory.recall``: scope resolution, the indexer, and the engine for the backend.

Engines: :class:`InProcessEngine` (every backend: segments over the storage contract, numpy + in-process BM25)
and native ones where the backend offers them (SQLite: FTS5 + vector table + HNSW; PostgreSQL: pgvector +
tsvector), chosen by :func:`engine_for`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from memvault import lifecycle
from memvault.contract import SessionQuery, Store
from memvault.errors import EmbeddingModelMismatch, InvalidFilter
from memvault.model import SessionInfo
from memvault.recall.embedders import CachedEmbedder, as_embedder, similarities
from memvault.recall.filters import RecallFilter
from memvault.recall.indexer import BackgroundIndexer, Work
from memvault.recall.keyword import bm25_scores
from memvault.recall.rank import check_mode, rank
from memvault.recall.segments import VEC_KIND, Segment, SegmentCache, read_all
from memvault.recall.types import Hit, IndexStatus, SearchOptions
from memvault.validation import is_internal, validate_id, validate_namespace

logger = logging.getLogger("memvault.recall")

#: defaults measured on LoCoMo (docs/recall.md)
DEFAULTS = SearchOptions(fusion="zscore", dense_weight=0.6, neighbour_weight=0.5)

Progress = Callable[[int, int], Any]


def list_all(store: Store, ns: str, user_id: str | None = None) -> list[SessionInfo]:
    infos: list[SessionInfo] = []
    cursor = None
    while True:
        page = store.list_sessions(SessionQuery(namespace=ns, user_id=user_id, limit=1000, cursor=cursor))
        infos.extend(page.items)
        if not page.next_cursor:
            return infos
        cursor = page.next_cursor


def half_life_seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise InvalidFilter(f"recency_half_life must be a positive number of seconds or a timedelta, got {value!r}")
    return float(seconds)


class InProcessEngine:
    """Works on every backend: per-session segments (vectors persisted as records), exact numpy + BM25."""

    name = "in-process"

    def __init__(self, store: Store, embedder: CachedEmbedder) -> None:
        self.store = store
        self.embedder = embedder
        self.segments = SegmentCache(embedder)

    def index(self, work: Sequence[Work]) -> None:
        """Background step: bring the written sessions' segments up to date (embedding and storing new vectors)."""
        for ns, sid in dict.fromkeys((ns, sid) for ns, sid, _ in work):
            self.segments.get(ns, sid).sync(self.store, self.store.get_session(ns, sid), self.embedder)

    def forget(self, ns: str, sid: str) -> None:
        self.segments.drop(ns, sid)

    def search(
        self, infos: Sequence[SessionInfo], query: str, k: int, options: SearchOptions, rfilter: RecallFilter
    ) -> list[Hit]:
        segments = [s for s in self.segments.synced(self.store, infos) if len(s)]
        if not segments:
            return []
        return search_segments(segments, query, k, options, rfilter, self.embedder, now=self.store.clock())

    def status(self, backlog: int) -> IndexStatus:
        return IndexStatus(indexed=self.segments.indexed(), backlog=backlog, model_id=self.embedder.model_id)

    def reindex(self, infos: Sequence[SessionInfo], progress: Progress | None) -> int:
        total = sum(i.message_count for i in infos)
        done = 0
        for info in infos:
            self.store.delete_records(info.namespace, info.id, VEC_KIND)
            self.segments.drop(info.namespace, info.id)
            segment = self.segments.get(info.namespace, info.id)
            segment.sync(self.store, info, self.embedder)
            done += len(segment)
            if progress is not None:
                progress(done, total)
        return done

    def close(self) -> None:
        self.segments.clear()


def search_segments(
    segments: Sequence[Segment],
    query: str,
    k: int,
    options: SearchOptions,
    rfilter: RecallFilter,
    embedder: CachedEmbedder,
    *,
    now: float,
    stacked: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> list[Hit]:
    """Rank the messages of ``segments`` (in order) for ``query``. ``stacked``: the scope's (vectors, segment index,
    position in segment) when the caller keeps them (stacking a large scope per query costs more than searching)."""
    messages = [m for s in segments for m in s.messages]
    if stacked is not None:
        vectors, segment_of, position = stacked
    else:
        vectors = segments[0].vectors if len(segments) == 1 else np.vstack([s.vectors for s in segments])
        segment_of = np.repeat(np.arange(len(segments)), [len(s) for s in segments])
        position = np.concatenate([np.arange(len(s)) for s in segments])
    dense = keyword = None
    if options.mode in ("hybrid", "dense") or options.mmr is not None:
        dense = similarities(vectors, embedder.embed_query(query))
    if options.mode in ("hybrid", "keyword"):
        keyword = bm25_scores([s.keyword for s in segments], query)
    ages = None
    if options.recency_half_life:
        ages = now - np.concatenate([s.times for s in segments])
    keep: np.ndarray | None = None
    if not rfilter.empty:
        keep = np.flatnonzero([rfilter.accepts(m) for m in messages])
        if len(keep) == 0:
            return []
        pick = (lambda a: None if a is None else a[keep])  # noqa: E731
        dense, keyword, ages = pick(dense), pick(keyword), pick(ages)
        vectors, segment_of, position = vectors[keep], segment_of[keep], position[keep]
    if options.mode == "keyword":
        dense = None
    ranked = rank(k, options, dense=dense, keyword=keyword, segment=segment_of, ages=ages, vectors=vectors)
    hits: list[Hit] = []
    for r in ranked:
        seg = segments[int(segment_of[r.index])]
        pos = int(position[r.index])
        message = seg.messages[pos]
        around: list[Any] = []
        if options.neighbors:
            lo, hi = max(0, pos - options.neighbors), pos + options.neighbors + 1
            around = [m for m in seg.messages[lo:hi] if m is not message]
        hits.append(Hit(message, r.score, r.signals, seg.sid, seg.ns, around))
    return hits


def keyword_segment(store: Store, info: SessionInfo) -> Segment:
    """A segment of the session's messages with zero vectors, for keyword-only ranking (never cached or stored)."""
    segment = Segment(info.namespace, info.id)
    messages = read_all(store, info.namespace, info.id)
    segment.messages.extend(messages)
    segment.vectors = np.zeros((len(messages), 1), dtype=np.float32)
    segment.keyword.add([segment.text_of(m) for m in messages])
    return segment


def engine_for(store: Store, embedder: CachedEmbedder) -> Any:
    """The native engine of the store's backend when it has one, else the in-process engine."""
    factory = getattr(store, "recall_engine", None)
    if callable(factory):
        engine = factory(embedder)
        if engine is not None:
            return engine
    if store.backend == "sqlite":
        try:
            from memvault.recall.sqlite_engine import SQLiteEngine
        except ImportError:
            pass
        else:
            return SQLiteEngine(store, embedder)
    if store.backend == "postgres" and getattr(store, "has_vector", False):
        try:
            from memvault.recall.postgres_engine import PostgresEngine
        except ImportError:
            pass
        else:
            return PostgresEngine(store, embedder)
    return InProcessEngine(store, embedder)


class RecallService:
    """Owns the embedder, the engine and the background indexer of one Memory."""

    def __init__(self, memory: Any, embedder: Any = "default", *, indexer: str = "background") -> None:
        self.memory = memory
        self.store: Store = memory.store
        self.embedder = embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(as_embedder(embedder))
        self.engine = engine_for(self.store, self.embedder)
        self.indexer = BackgroundIndexer(self.engine.index, mode=indexer)
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
        if not isinstance(query, str):
            raise InvalidFilter(f"query must be a str, got {type(query).__name__}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidFilter(f"k must be a positive int, got {k!r}")
        if not isinstance(neighbors, int) or neighbors < 0:
            raise InvalidFilter(f"neighbors must be a non-negative int, got {neighbors!r}")
        check_mode(mode)
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
                return hits  # type: ignore[no-any-return]
        infos = self.scope(ns, session, user_id)
        if rfilter.sessions is not None:
            infos = [i for i in infos if i.id in rfilter.sessions]
        if not infos or not query.strip():
            return []
        self.indexer.flush()
        try:
            return self.engine.search(infos, query, k, options, rfilter)  # type: ignore[no-any-return]
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
        return self.engine.status(self.indexer.backlog)  # type: ignore[no-any-return]

    def reindex(self, progress: Progress | None = None, *, namespace: str | None = None) -> int:
        self.indexer.flush()
        ns = self.memory.namespace if namespace is None else validate_namespace(namespace)
        return self.engine.reindex(list_all(self.store, ns), progress)  # type: ignore[no-any-return]

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
