"""The in-process index behind :mod:`memvault.documents`: decoded items in *slots*, one stacked matrix of their
normalised vectors, BM25 postings over their indexed text, and a namespace id per slot.

A slot is written once: a changed item gets a new slot and its old one is marked dead, so the matrix and the
postings only ever grow at the end (an update costs O(its own vectors and terms), never a rebuild). Dead slots are
masked out of every search and dropped by :meth:`DocIndex.compact` once they are the majority. BM25 statistics
(document count, frequencies, average length) are taken over live slots only, so scores are exactly those of an
index built from scratch. Expiry is a per-slot time compared with the clock at each search: an expired item is never
returned, swept or not.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memvault.recall import fusion
from memvault.recall.embedders import similarities
from memvault.recall.keyword import K1, B
from memvault.recall.text import terms

#: dead slots tolerated before a compaction (and at least this share of all slots)
COMPACT_MIN_DEAD = 2048
COMPACT_DEAD_SHARE = 0.5
#: below this many candidates the ranking is one full stable sort; above, a partition first
FULL_SORT_UNDER = 20_000


@dataclass
class StoredItem:
    """One live item as decoded from its entry. ``entry_key`` is the encoded (namespace, key); ``stamp`` identifies
    the write that produced it (a TTL refresh keeps it); ``vectors`` are normalised rows (None: not embedded);
    ``text`` is what keyword search sees; ``indexed``: the item's index fields produced text."""

    entry_key: str
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None
    ttl: float | None
    stamp: str
    fields: Any = None
    model: str | None = None
    vectors: np.ndarray | None = None
    text: str = ""
    indexed: bool = False


@dataclass
class Ranked:
    """A search result: the item, its score (None when it was not ranked) and per-signal explanations."""

    item: StoredItem
    score: float | None
    signals: dict[str, dict[str, float]] | None


def _grow(array: np.ndarray, size: int, fill: Any) -> np.ndarray:
    if size <= len(array):
        return array
    capacity = max(size, 2 * len(array), 64)
    grown = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class Keywords:
    """BM25 postings by slot; a removed slot keeps its postings (masked by liveness) until a compaction."""

    def __init__(self) -> None:
        self.postings: dict[str, tuple[list[int], list[int]]] = {}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.lengths = np.zeros(0, dtype=np.float32)
        self.total = 0.0  # summed length of the live documents that have text
        self.docs = 0  # live documents that have text

    def add(self, slot: int, text: str) -> None:
        counts = Counter(terms(text)) if text else Counter()
        size = sum(counts.values())
        self.lengths = _grow(self.lengths, slot + 1, 0.0)
        self.lengths[slot] = size
        if size:
            self.total += size
            self.docs += 1
        for term, tf in counts.items():
            slots, tfs = self.postings.setdefault(term, ([], []))
            slots.append(slot)
            tfs.append(tf)

    def remove(self, slot: int) -> None:
        size = float(self.lengths[slot]) if slot < len(self.lengths) else 0.0
        if size:
            self.total -= size
            self.docs -= 1

    def _posting(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        posting = self.postings.get(term)
        if not posting:
            return None
        slots, tfs = posting
        cached = self._arrays.get(term)
        if cached is None or len(cached[0]) != len(slots):
            # postings only grow at the end: convert the tail (a term of every document would otherwise be
            # converted whole after each write)
            if cached is not None and len(cached[0]) < len(slots):
                done = len(cached[0])
                cached = (np.concatenate([cached[0], np.asarray(slots[done:], dtype=np.int64)]),
                          np.concatenate([cached[1], np.asarray(tfs[done:], dtype=np.float32)]))
            else:
                cached = (np.asarray(slots, dtype=np.int64), np.asarray(tfs, dtype=np.float32))
            self._arrays[term] = cached
        return cached

    def scores(self, query: str, alive: np.ndarray, n: int) -> np.ndarray:
        """The BM25 score of every slot below ``n`` (0 = no query term; dead slots score but are masked later)."""
        scores = np.zeros(n, dtype=np.float64)
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted or self.docs <= 0:
            return scores
        avgdl = self.total / self.docs or 1.0
        lengths = self.lengths[:n]
        for term in wanted:
            posting = self._posting(term)
            if posting is None:
                continue
            slots, tfs = posting
            live = alive[slots]
            df = int(live.sum())
            if not df:
                continue
            slots, tfs = slots[live], tfs[live]
            idf = math.log(1 + (self.docs - df + 0.5) / (df + 0.5))
            scores[slots] += idf * tfs * (K1 + 1) / (tfs + K1 * (1 - B + B * lengths[slots] / avgdl))
        return scores

    def remap(self, old_to_new: np.ndarray) -> None:
        """Renumber slots after a compaction (-1 = dropped)."""
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for term in list(self.postings):
            posting = self._posting(term)
            assert posting is not None
            new = old_to_new[posting[0]]
            keep = new >= 0
            if keep.any():
                postings[term] = (new[keep].tolist(), posting[1][keep].astype(np.int64).tolist())
        self.postings = postings
        self._arrays = {}
        live = np.flatnonzero(old_to_new[: len(self.lengths)] >= 0)
        lengths = np.zeros(max(64, len(live)), dtype=np.float32)
        lengths[old_to_new[live]] = self.lengths[live]
        self.lengths = lengths


class DocIndex:
    """Slots of decoded items with their vectors and postings; every method takes ``lock``.

    Sync state of the cache lives here too: ``token`` (the version token last seen), ``heads`` (lane -> the last
    change-log counter applied), ``generation`` (bumped by every apply, so a sync computed against an older state
    is retried instead of applied) and ``synced_at`` (store clock of the last complete sync)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.loaded = False
        self.token: bytes | None = None
        self.heads: dict[str, int] = {}
        self.generation = 0
        self.synced_at = 0.0
        self.items: list[StoredItem | None] = []
        self.by_key: dict[str, int] = {}
        self.n = 0
        self.dead = 0
        self.alive = np.zeros(0, dtype=bool)
        self.updated = np.zeros(0, dtype=np.float64)
        self.expires = np.zeros(0, dtype=np.float64)
        self.ns = np.zeros(0, dtype=np.int32)
        self.indexed = np.zeros(0, dtype=bool)
        self.has_vec = np.zeros(0, dtype=bool)
        self.nvec = np.zeros(0, dtype=np.int32)
        self.matrix: np.ndarray | None = None
        self.nrows = 0
        self.row_slot = np.zeros(0, dtype=np.int64)
        self.dims: int | None = None
        self.keywords = Keywords()
        self.ns_ids: dict[tuple[str, ...], int] = {}
        self.ns_names: list[tuple[str, ...]] = []
        self.models: Counter[str] = Counter()
        self.off_dims = 0  # live items whose vectors have other dimensions than the matrix
        self.live_vec = 0  # live items whose vectors are in the matrix
        self._starts: np.ndarray | None = None
        self._scopes: dict[tuple[str, ...], np.ndarray] = {}

    def __len__(self) -> int:
        return self.n - self.dead

    # -- changes --------------------------------------------------------------------------------------------------
    def apply(self, changes: Mapping[str, StoredItem | None]) -> None:
        """Bring entry keys to their stored state: an item (new or changed) or None (absent: deleted, a tombstone)."""
        with self.lock:
            for entry_key, item in changes.items():
                slot = self.by_key.get(entry_key)
                if slot is not None:
                    old = self.items[slot]
                    if item is not None and old is not None and old.stamp == item.stamp:
                        # the same write, only its expiry moved (a TTL refresh)
                        item.vectors = None
                        self.items[slot] = item
                        self.expires[slot] = math.inf if item.expires_at is None else item.expires_at
                        continue
                    self._remove(slot)
                if item is not None:
                    self._add(item)
            self.generation += 1
            if self.off_dims and not self.live_vec:
                self.loaded = False  # every vector now has the new dimensions: the next sync rebuilds the matrix
            if self.dead >= COMPACT_MIN_DEAD and self.dead >= COMPACT_DEAD_SHARE * self.n:
                self.compact()

    def _namespace_id(self, namespace: tuple[str, ...]) -> int:
        ns_id = self.ns_ids.get(namespace)
        if ns_id is None:
            ns_id = self.ns_ids[namespace] = len(self.ns_names)
            self.ns_names.append(namespace)
            self._scopes.clear()
        return ns_id

    def _add(self, item: StoredItem) -> None:
        slot = self.n
        self.n += 1
        for name, fill in (("alive", False), ("updated", 0.0), ("expires", math.inf), ("ns", 0), ("indexed", False),
                           ("has_vec", False), ("nvec", 0)):
            setattr(self, name, _grow(getattr(self, name), self.n, fill))
        self.items.append(item)
        self.by_key[item.entry_key] = slot
        self.alive[slot] = True
        self.updated[slot] = item.updated_at
        self.expires[slot] = math.inf if item.expires_at is None else item.expires_at
        self.ns[slot] = self._namespace_id(item.namespace)
        self.indexed[slot] = item.indexed
        vectors = item.vectors
        item.vectors = None  # the matrix holds them from now on
        if vectors is not None and len(vectors):
            self.nvec[slot] = len(vectors)
            self.models[item.model or "?"] += 1
            if self.dims is None:
                self.dims = int(vectors.shape[1])
            if vectors.shape[1] != self.dims:  # only counted: a search refuses to rank mixed dimensions
                self.off_dims += 1
            else:
                self.has_vec[slot] = True
                self.live_vec += 1
                stop = self.nrows + len(vectors)
                if self.matrix is None:
                    self.matrix = np.zeros((max(64, stop), self.dims), dtype=np.float32)
                self.matrix = _grow(self.matrix, stop, 0.0)
                self.matrix[self.nrows : stop] = vectors
                self.row_slot = _grow(self.row_slot, stop, -1)
                self.row_slot[self.nrows : stop] = slot
                self.nrows = stop
                self._starts = None
        self.keywords.add(slot, item.text if item.indexed else "")

    def _remove(self, slot: int) -> None:
        item = self.items[slot]
        if item is None:
            return
        self.alive[slot] = False
        self.items[slot] = None
        del self.by_key[item.entry_key]
        if self.nvec[slot]:
            if self.has_vec[slot]:
                self.live_vec -= 1
            else:
                self.off_dims -= 1
            self.models[item.model or "?"] -= 1
            if self.models[item.model or "?"] <= 0:
                del self.models[item.model or "?"]
        self.keywords.remove(slot)
        self.dead += 1

    def compact(self) -> None:
        """Drop dead slots and their rows; renumber everything."""
        with self.lock:
            n = self.n
            live = np.flatnonzero(self.alive[:n])
            old_to_new = np.full(n, -1, dtype=np.int64)
            old_to_new[live] = np.arange(len(live))
            if self.matrix is not None and self.nrows:
                rows = self.row_slot[: self.nrows]
                keep = self.alive[rows]
                self.matrix = np.ascontiguousarray(self.matrix[: self.nrows][keep])
                self.row_slot = old_to_new[rows[keep]]
                self.nrows = len(self.row_slot)
                if self.nrows == 0:
                    self.matrix = None
                    self.dims = None if not self.models else self.dims
            for name in ("alive", "updated", "expires", "ns", "indexed", "has_vec", "nvec"):
                setattr(self, name, getattr(self, name)[:n][live].copy())
            self.keywords.remap(old_to_new)
            self.items = [self.items[i] for i in live.tolist()]
            self.by_key = {item.entry_key: i for i, item in enumerate(self.items) if item is not None}
            self.n = len(live)
            self.dead = 0
            self._starts = None

    # -- search ---------------------------------------------------------------------------------------------------
    def _scope(self, prefix: tuple[str, ...]) -> np.ndarray:
        """A bool table over namespace ids: those under ``prefix``."""
        table = self._scopes.get(prefix)
        if table is None:
            size = len(prefix)
            table = np.array([name[:size] == prefix for name in self.ns_names], dtype=bool)
            if len(self._scopes) > 256:
                self._scopes.clear()
            self._scopes[prefix] = table
        return table

    def _dense(self, query: np.ndarray, n: int) -> np.ndarray:
        """Per slot: the best cosine of its vectors with the (normalised) query; NaN for slots without vectors."""
        out = np.full(n, np.nan, dtype=np.float64)
        if self.matrix is None or not self.nrows:
            return out
        sims = similarities(self.matrix[: self.nrows], query)
        rows = self.row_slot[: self.nrows]
        if self._starts is None:
            self._starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        starts = self._starts
        out[rows[starts]] = np.maximum.reduceat(sims, starts) if len(starts) != len(rows) else sims
        return out

    def foreign_models(self, model: str | None) -> dict[str, int]:
        """Live items whose vectors come from another model (or have other dimensions) than ``model``."""
        with self.lock:
            foreign = {m: c for m, c in self.models.items() if m != model}
            if self.off_dims > 0:
                foreign[f"vectors of other dimensions than {self.dims}"] = self.off_dims
            return foreign

    def search(
        self,
        prefix: tuple[str, ...],
        *,
        now: float,
        limit: int,
        offset: int,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        query: str | None = None,
        vector: np.ndarray | None = None,
        mode: str = "hybrid",
        dense_weight: float = 0.5,
    ) -> list[Ranked]:
        """One page of the live, unexpired items under ``prefix`` that ``predicate`` accepts. Without ``query``:
        most recently updated first. With it: ranked (hybrid: z-scored dense + BM25; dense: best cosine; keyword:
        BM25), then the items that were not indexed, most recent first."""
        with self.lock:
            n = self.n
            if n == 0:
                return []
            mask = self.alive[:n] & (self.expires[:n] > now)
            if prefix:
                mask &= self._scope(prefix)[self.ns[:n]]
            need = offset + limit
            if query is None:
                return self._recent(np.flatnonzero(mask), predicate, need)[offset:]
            if mode == "dense":
                ranked_mask = mask & self.has_vec[:n]
            elif mode == "keyword":
                ranked_mask = mask & self.indexed[:n]
            else:
                ranked_mask = mask & (self.indexed[:n] | self.has_vec[:n])
            candidates = np.flatnonzero(ranked_mask)
            out = self._ranked(candidates, n, query, vector, mode, dense_weight, predicate, need)
            if len(out) < need:
                out.extend(self._recent(np.flatnonzero(mask & ~ranked_mask), predicate, need - len(out)))
            return out[offset:]

    def _value(self, slot: int) -> dict[str, Any]:
        return self.items[slot].value  # type: ignore[union-attr]

    def _walk(self, scores: np.ndarray, candidates: np.ndarray,
              predicate: Callable[[dict[str, Any]], bool] | None, need: int) -> list[int]:
        """Positions (in ``candidates``) of the ``need`` best-scored candidates ``predicate`` accepts, best first:
        only the top few are sorted, widened while the predicate rejects too many."""
        wanted = need if predicate is None else max(4 * need, 64)
        while True:
            chosen = _take(_top(scores, wanted), lambda i: self._value(int(candidates[i])), predicate, need)
            if len(chosen) >= need or wanted >= len(scores):
                return chosen
            wanted *= 4

    def _recent(self, slots: np.ndarray, predicate: Callable[[dict[str, Any]], bool] | None,
                need: int) -> list[Ranked]:
        """The ``need`` most recently updated of ``slots`` that ``predicate`` accepts (unranked results)."""
        if need <= 0 or not len(slots):
            return []
        return [Ranked(self.items[int(slots[i])], None, None)  # type: ignore[arg-type]
                for i in self._walk(self.updated[slots], slots, predicate, need)]

    def _ranked(self, candidates: np.ndarray, n: int, query: str, vector: np.ndarray | None, mode: str,
                dense_weight: float, predicate: Callable[[dict[str, Any]], bool] | None, need: int) -> list[Ranked]:
        if not len(candidates):
            return []
        signals: dict[str, np.ndarray] = {}
        everything = len(candidates) == n  # the whole store in scope: no gather needed
        if mode != "keyword" and vector is not None:
            dense = self._dense(vector, n)
            signals["dense"] = dense if everything else dense[candidates]
        if mode != "dense":
            keyword = self.keywords.scores(query, self.alive, n)
            signals["keyword"] = keyword if everything else keyword[candidates]
        if not signals:
            return []
        if len(signals) > 1:
            contributions = fusion.zscore(signals, {"dense": dense_weight, "keyword": 1.0 - dense_weight})
        else:
            contributions = {name: np.nan_to_num(arr, nan=-np.inf) for name, arr in signals.items()}
        fused = fusion.combine(contributions)
        fused[~np.isfinite(fused)] = -np.inf
        chosen = self._walk(fused, candidates, predicate, need)
        if not chosen:
            return []
        picked = np.asarray(chosen)
        ranks: dict[str, np.ndarray] = {}
        for name, arr in signals.items():  # 1 + how many candidates score higher, for the chosen ones only
            comparable = np.where(np.isnan(arr), -np.inf, arr)
            raws = comparable[picked]
            ranks[name] = np.array([np.count_nonzero(comparable > raw) + 1 for raw in raws], dtype=np.float64)
        out = []
        for position, i in enumerate(chosen):
            share = fusion.shares(contributions, i) if len(signals) > 1 else {name: 1.0 for name in signals}
            details = {}
            for name, arr in signals.items():
                raw = float(arr[i])
                rank = math.inf if math.isnan(raw) else float(ranks[name][position])
                details[name] = {"rank": rank, "score": raw, "share": float(share.get(name, 0.0))}
            out.append(Ranked(self.items[int(candidates[i])], float(fused[i]), details))  # type: ignore[arg-type]
        return out


def _top(scores: np.ndarray, wanted: int) -> np.ndarray:
    """Indices of the ``wanted`` best finite scores, best first; ties in index order (deterministic pages)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > FULL_SORT_UNDER and wanted < len(finite):
        part = finite[np.argpartition(-scores[finite], wanted - 1)[:wanted]]
        threshold = scores[part].min()
        finite = np.flatnonzero(scores >= threshold)  # every tie at the boundary, so the cut is by index
    order = finite[np.lexsort((finite, -scores[finite]))]
    return order[:wanted]


def _take(order: Iterable[int], value: Callable[[int], dict[str, Any]],
          predicate: Callable[[dict[str, Any]], bool] | None, count: int) -> list[int]:
    """The first ``count`` of ``order`` whose value ``predicate`` accepts."""
    if count <= 0:
        return []
    if predicate is None:
        return [int(i) for i in np.asarray(order)[:count]]
    out: list[int] = []
    for i in order:
        if predicate(value(int(i))):
            out.append(int(i))
            if len(out) >= count:
                break
    return out


__all__ = ["DocIndex", "Keywords", "Ranked", "StoredItem"]
