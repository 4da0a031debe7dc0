"""The engine that works on every backend: per-session segments over the storage contract (vectors persisted as
records next to their messages), exact numpy search and in-process BM25."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memvault.contract import Store
from memvault.model import SessionInfo
from memvault.recall.embedders import CachedEmbedder
from memvault.recall.filters import RecallFilter
from memvault.recall.indexer import Work
from memvault.recall.search import search_segments
from memvault.recall.segments import VEC_KIND, SegmentCache
from memvault.recall.types import Hit, IndexStatus, SearchOptions

Progress = Any


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


__all__ = ["InProcessEngine"]
