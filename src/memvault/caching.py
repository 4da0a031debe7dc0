"""Bounded in-process caches (cachetools), for the per-process indexes and memo tables of the core."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cachetools import LRUCache

K = TypeVar("K")
V = TypeVar("V")


def budget_lru(max_size: int, max_keys: int, size_of: Callable[[V], int]) -> LRUCache[K, V]:
    """An LRU bounded by the total ``size_of`` its values and by ``max_keys``: each key costs a fixed share
    (``max_size // max_keys``) on top of its value's size. A value bigger than the whole budget still fits alone
    (it evicts everything else), so one huge session never makes the cache refuse it."""
    share = max(1, max_size // max(1, max_keys))
    limit = max_size + share
    return LRUCache(maxsize=limit, getsizeof=lambda value: min(share + size_of(value), limit))


__all__ = ["LRUCache", "budget_lru"]
