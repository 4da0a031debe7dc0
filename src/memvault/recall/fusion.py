"""Fusion of ranked signals (dense, keyword) into one score, and the re-rankers applied after it.

- :func:`rrf`: reciprocal rank fusion, ``sum_s w_s / (k + rank_s)``.
- :func:`zscore`: weighted sum of per-signal z-scores (scores standardised over the candidate set). Measured on
  LoCoMo it beats RRF because it keeps *how much* better a top hit is, not only its rank (docs/recall.md).
- :func:`smooth_neighbours`: adds a share of the best adjacent turn's score (same session), since evidence in a
  conversation is spread over consecutive turns.
- :func:`recency`, :func:`mmr`.

Every function works on numpy arrays indexed by candidate; a signal that did not score a candidate holds NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RRF_K = 60.0


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each candidate by descending score (NaN = unranked -> +inf)."""
    out = np.full(len(scores), np.inf)
    valid = np.flatnonzero(~np.isnan(scores))
    order = valid[np.argsort(-scores[valid], kind="stable")]
    out[order] = np.arange(1, len(order) + 1)
    return out


def ranks_of(scores: np.ndarray, chosen: np.ndarray) -> dict[int, float]:
    """1-based rank (by descending score; NaN = unranked -> inf) of each index in ``chosen``, without a full sort."""
    valid = np.where(np.isnan(scores), -np.inf, scores)
    out: dict[int, float] = {}
    for i in np.asarray(chosen).tolist():
        out[i] = float("inf") if np.isnan(scores[i]) else float((valid > scores[i]).sum() + 1)
    return out


def rrf(signals: Mapping[str, np.ndarray], weights: Mapping[str, float], k: float = RRF_K) -> dict[str, np.ndarray]:
    """Per-signal RRF contributions ``w / (k + rank)`` (0 where a signal did not rank the candidate)."""
    return {name: weights.get(name, 1.0) / (k + ranks(scores)) for name, scores in signals.items()}


def zscore(signals: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Per-signal contributions ``w * (s - mean) / std``; a candidate missing a signal gets that signal's minimum."""
    out: dict[str, np.ndarray] = {}
    for name, scores in signals.items():
        valid = ~np.isnan(scores)
        z = np.zeros(len(scores), dtype=np.float64)
        if valid.any():
            values = scores[valid].astype(np.float64)
            std = values.std()
            z[valid] = (values - values.mean()) / std if std > 0 else 0.0
            z[~valid] = z[valid].min() if std > 0 else 0.0
        out[name] = weights.get(name, 1.0) * z
    return out


def combine(contributions: Mapping[str, np.ndarray]) -> np.ndarray:
    arrays = list(contributions.values())
    total = np.zeros(len(arrays[0]) if arrays else 0, dtype=np.float64)
    for arr in arrays:
        total += arr
    return total


def shares(contributions: Mapping[str, np.ndarray], index: int) -> dict[str, float]:
    """Each signal's share of a candidate's fused score (by absolute contribution; sums to 1)."""
    parts = {name: abs(float(arr[index])) for name, arr in contributions.items()}
    total = sum(parts.values())
    if total == 0:
        return {name: 1.0 / len(parts) for name in parts} if parts else {}
    return {name: value / total for name, value in parts.items()}


def smooth_neighbours(scores: np.ndarray, segment: np.ndarray, weight: float) -> np.ndarray:
    """``s_i + weight * max(s_{i-1}, s_{i+1})`` over neighbours in the same segment (candidates in segment order)."""
    if weight == 0 or len(scores) < 2:
        return scores
    left = np.full(len(scores), -np.inf)
    right = np.full(len(scores), -np.inf)
    same = segment[1:] == segment[:-1]
    left[1:] = np.where(same, scores[:-1], -np.inf)
    right[:-1] = np.where(same, scores[1:], -np.inf)
    best = np.maximum(left, right)
    base = scores.min()
    best = np.where(np.isinf(best), base, best)
    return scores + weight * (best - base)


def recency(ages_seconds: np.ndarray, half_life_seconds: float) -> np.ndarray:
    """Decay factor in (0, 1]: 1 for now, 0.5 after one half-life."""
    return np.power(0.5, np.clip(ages_seconds, 0, None) / half_life_seconds)


def mmr(
    vectors: np.ndarray, relevance: np.ndarray, candidates: Sequence[int], k: int, lambda_: float
) -> list[int]:
    """Maximal marginal relevance: pick ``k`` of ``candidates`` trading relevance (``lambda_``) for novelty."""
    pool = list(candidates)
    if not pool:
        return []
    rel = relevance[pool].astype(np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors[pool] @ vectors[pool].T
    chosen: list[int] = []
    max_sim = np.full(len(pool), -np.inf)
    available = np.ones(len(pool), dtype=bool)
    for _ in range(min(k, len(pool))):
        penalty = np.where(np.isinf(max_sim), 0.0, max_sim)
        score = lambda_ * rel - (1 - lambda_) * penalty
        score[~available] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        available[pick] = False
        max_sim = np.maximum(max_sim, sims[pick])
    return [pool[i] for i in chosen]
