"""One ranking pipeline for every engine: signals -> fusion -> neighbour smoothing -> recency -> top-k / MMR.

Engines (in-process, SQLite, PostgreSQL) differ only in how they produce the candidate arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memvault.errors import InvalidFilter
from memvault.recall import fusion
from memvault.recall.types import SearchOptions

MODES = ("hybrid", "dense", "keyword")
FUSIONS = ("zscore", "rrf")


@dataclass
class Ranked:
    index: int
    score: float
    signals: dict[str, dict[str, float]]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidFilter(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def _fuse(signals: dict[str, np.ndarray], weights: dict[str, float], method: str) -> dict[str, np.ndarray]:
    if method == "rrf":
        return fusion.rrf(signals, weights)
    if method == "zscore":
        if len(signals) > 1:
            return fusion.zscore(signals, weights)
        return {name: np.nan_to_num(arr, nan=-np.inf) for name, arr in signals.items()}
    raise InvalidFilter(f"fusion must be one of {FUSIONS}, got {method!r}")


def rank(
    k: int,
    options: SearchOptions,
    *,
    dense: np.ndarray | None,
    keyword: np.ndarray | None,
    segment: np.ndarray | None = None,
    ages: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
    eligible: np.ndarray | None = None,
) -> list[Ranked]:
    """Rank candidates. ``dense``/``keyword`` hold each candidate's raw score (NaN = not scored by that signal;
    keyword 0 = no term matched). ``segment`` (session per candidate, candidates in seq order) enables smoothing."""
    mode = check_mode(options.mode)
    signals: dict[str, np.ndarray] = {}
    if mode in ("hybrid", "dense") and dense is not None:
        signals["dense"] = dense.astype(np.float64)
    if mode in ("hybrid", "keyword") and keyword is not None:
        kw = keyword.astype(np.float64)
        signals["keyword"] = np.where(kw > 0, kw, np.nan) if mode == "keyword" else kw
    if not signals:
        return []
    n = len(next(iter(signals.values())))
    if n == 0:
        return []
    weights = {"dense": options.dense_weight, "keyword": 1.0 - options.dense_weight} if mode == "hybrid" else {}
    contributions = _fuse(signals, weights, options.fusion)
    fused = fusion.combine(contributions)
    if options.feedback and vectors is not None and "dense" in signals and n > 3:
        # pseudo-relevance feedback (Rocchio): move the query towards the centroid of the first-pass top 3
        top = np.argsort(-np.nan_to_num(fused, nan=-np.inf), kind="stable")[:3]
        signals["dense"] = signals["dense"] + options.feedback * (vectors @ vectors[top].mean(axis=0))
        contributions = _fuse(signals, weights, options.fusion)
        fused = fusion.combine(contributions)
    # rows given only as context (a candidate's neighbours) score and smooth, but are not returned themselves
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible.astype(bool).copy()
    if mode == "keyword":
        eligible &= ~np.isnan(signals["keyword"])
    if options.neighbour_weight and segment is not None:
        finite = np.where(np.isfinite(fused), fused, np.nan)
        floor = np.nanmin(finite) if np.isfinite(finite).any() else 0.0
        fused = fusion.smooth_neighbours(np.nan_to_num(finite, nan=floor), segment, options.neighbour_weight)
    decay = None
    if options.recency_half_life and ages is not None:
        # ages count from the newest candidate: the same ranking as from "now" (a constant factor) without
        # every score underflowing to 0 when the whole scope is old
        decay = fusion.recency(ages - ages[eligible].min() if eligible.any() else ages, options.recency_half_life)
        lo, hi = fused[eligible].min() if eligible.any() else 0.0, fused[eligible].max() if eligible.any() else 1.0
        relevance = 0.1 + 0.9 * (fused - lo) / (hi - lo) if hi > lo else np.ones(n)
        fused = relevance * decay
    fused = np.where(eligible, fused, -np.inf)
    wanted = max(options.fetch_k, k) if options.mmr is not None else k
    if wanted < n:  # only the top few need sorting
        top = np.argpartition(-fused, wanted - 1)[:wanted]
        order = top[np.argsort(-fused[top], kind="stable")]
    else:
        order = np.argsort(-fused, kind="stable")
    order = order[np.isfinite(fused[order])]
    if options.mmr is not None and vectors is not None:
        if not 0 <= options.mmr <= 1:
            raise InvalidFilter(f"mmr must be a lambda between 0 and 1, got {options.mmr!r}")
        pool = order[: max(options.fetch_k, k)].tolist()
        order = np.asarray(fusion.mmr(vectors, fused, pool, k, options.mmr), dtype=np.int64)
    order = order[:k]
    ranks = {name: fusion.ranks_of(arr, order) for name, arr in signals.items()}
    out: list[Ranked] = []
    for i in order.tolist():
        share = fusion.shares(contributions, i)
        details: dict[str, dict[str, float]] = {}
        for name, arr in signals.items():
            raw = arr[i]
            details[name] = {
                "rank": float(ranks[name][i]),
                "score": float(raw) if not np.isnan(raw) else float("nan"),
                "share": share.get(name, 0.0),
            }
        if decay is not None:
            details["recency"] = {"rank": float("nan"), "score": float(decay[i]), "share": 0.0}
        out.append(Ranked(i, float(fused[i]), details))
    return out
