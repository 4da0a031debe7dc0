"""Store test data shared by ``test_store.py`` (sync API) and ``test_async_store.py`` (async API)."""

from __future__ import annotations

from typing import Any

from langgraph.store.base import Item

#: (namespace, key, value): a small hierarchy for namespace, filter and operator tests
DOCS = [
    (("docs", "alice"), "d1", {"title": "First", "author": "alice", "n": 1, "tags": ["a"], "active": True}),
    (("docs", "alice"), "d2", {"title": "Second", "author": "alice", "n": 2, "tags": ["b"], "active": False}),
    (("docs", "bob"), "d3", {"title": "Third", "author": "bob", "n": 3, "tags": ["a"], "active": True}),
    (("docs", "bob", "drafts"), "d4", {"title": "Fourth", "author": "bob", "n": 4, "tags": ["b"], "active": True}),
    (("reports",), "r1", {"title": "Report", "author": "carol", "n": 5, "tags": ["a"], "active": False}),
]


#: namespaces for prefix / suffix / wildcard / max_depth listing tests
NAMESPACES = [
    ("t", "test", "documents", "public", "t"),
    ("t", "test", "documents", "private", "t"),
    ("t", "test", "images", "public", "t"),
    ("t", "test", "images", "private", "t"),
    ("t", "prod", "documents", "public", "t"),
    ("t", "prod", "documents", "some", "nesting", "public", "t"),
    ("t", "prod", "documents", "private", "t"),
]


def keys(items: list[Any]) -> set[str]:
    return {i.key for i in items}


def scored(results: list[Item]) -> list[tuple[str, float]]:
    out = []
    for r in results:
        assert r.score is not None, f"{r.key} has no score"
        out.append((r.key, r.score))
    return out
