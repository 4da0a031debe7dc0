"""A small in-process BM25 (Okapi, k1=1.2, b=0.75) with postings per segment, searched over any set of segments.

A segment is one session's (or collection's) documents; statistics (document frequency, average length) are taken
over the segments a query spans, so scores match what one index over that scope would give.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from memvault.recall.text import terms

K1 = 1.2
B = 0.75


class KeywordSegment:
    """Postings of one segment: term -> (doc positions, term frequencies)."""

    def __init__(self) -> None:
        self.postings: dict[str, list[tuple[int, int]]] = {}
        self.lengths: list[int] = []
        self._lengths_array: np.ndarray | None = None
        self._arrays: dict[str, np.ndarray] = {}  # term -> int64 [n, 2] (position, tf), built on use

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, texts: Sequence[str]) -> None:
        for text in texts:
            position = len(self.lengths)
            counts = Counter(terms(text))
            for term, tf in counts.items():
                self.postings.setdefault(term, []).append((position, tf))
            self.lengths.append(sum(counts.values()))
        self._lengths_array = None

    def extended(self, texts: Sequence[str]) -> KeywordSegment:
        """A new segment = this one + ``texts``, copy-on-write: searches running on this one are not disturbed."""
        new = KeywordSegment()
        new.postings = dict(self.postings)
        new.lengths = list(self.lengths)
        new._arrays = dict(self._arrays)
        touched: set[str] = set()
        for text in texts:
            position = len(new.lengths)
            counts = Counter(terms(text))
            for term, tf in counts.items():
                if term not in touched:
                    touched.add(term)
                    new.postings[term] = list(new.postings.get(term, ()))
                new.postings[term].append((position, tf))
            new.lengths.append(sum(counts.values()))
        return new

    def posting(self, term: str) -> np.ndarray | None:
        posting = self.postings.get(term)
        if not posting:
            return None
        array = self._arrays.get(term)
        if array is None or len(array) != len(posting):
            # postings only grow at the end, so an array built earlier is a prefix: convert only the tail (a term of
            # every message, such as a speaker's name, would otherwise be rebuilt whole after each append)
            if array is not None and len(array) < len(posting):
                tail = np.asarray(posting[len(array):], dtype=np.int64).reshape(-1, 2)
                array = np.concatenate([array, tail])
            else:
                array = np.asarray(posting, dtype=np.int64)
            self._arrays[term] = array
        return array

    @property
    def lengths_array(self) -> np.ndarray:
        if self._lengths_array is None:
            self._lengths_array = np.asarray(self.lengths, dtype=np.float32)
        return self._lengths_array


def bm25_scores(segments: Sequence[KeywordSegment], query: str) -> np.ndarray:
    """BM25 score of every document of ``segments`` (concatenated in order) for ``query``; 0 = no term matched."""
    total = sum(len(s) for s in segments)
    scores = np.zeros(total, dtype=np.float32)
    if total == 0:
        return scores
    query_terms = list(dict.fromkeys(terms(query)))
    if not query_terms:
        return scores
    lengths = np.concatenate([s.lengths_array for s in segments]) if len(segments) > 1 else segments[0].lengths_array
    avgdl = float(lengths.mean()) or 1.0
    offsets = np.cumsum([0] + [len(s) for s in segments[:-1]])
    norm = K1 * (1 - B + B * lengths / avgdl)
    for term in query_terms:
        rows: list[np.ndarray] = []
        tfs: list[np.ndarray] = []
        for offset, segment in zip(offsets, segments, strict=True):
            arr = segment.posting(term)
            if arr is not None:
                rows.append(arr[:, 0] + offset)
                tfs.append(arr[:, 1])
        if not rows:
            continue
        where = np.concatenate(rows)
        tf = np.concatenate(tfs).astype(np.float32)
        df = len(where)
        idf = np.log(1 + (total - df + 0.5) / (df + 0.5))
        scores[where] += idf * tf * (K1 + 1) / (tf + norm[where])
    return scores
