"""Ranking over in-process segments, shared by every engine: the exact path (numpy + BM25 + fusion) and the
model-free keyword fallback; listing a recall scope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from memvault.contract import SessionQuery, Store
from memvault.errors import InvalidFilter
from memvault.model import SessionInfo
from memvault.recall.embedders import CachedEmbedder, similarities
from memvault.recall.filters import RecallFilter
from memvault.recall.keyword import bm25_scores
from memvault.recall.rank import rank
from memvault.recall.segments import Segment, read_all
from memvault.recall.types import Hit, SearchOptions


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
        vectors = segments[0].matrix if len(segments) == 1 else np.vstack([s.matrix for s in segments])
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


__all__ = ["half_life_seconds", "keyword_segment", "list_all", "search_segments"]
