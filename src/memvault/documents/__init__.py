"""Namespaced documents with TTL and hybrid search, over the entries contract: the storage of LangGraph's long-term
store (``langgraph.store.memvault``), framework-free.

An item is identified by ``(namespace, key)`` (a namespace is a tuple of labels), holds a JSON object, its
``created_at`` / ``updated_at``, an optional expiry (a TTL in minutes, slid by reads when asked) and, when an index is
configured, vectors of its index fields plus the same text for BM25. :class:`DocumentStore` runs get / put / delete /
search / list-namespaces operations (alone or several in one :meth:`DocumentStore.batch`), sweeps expired items and
ranks queries like memvault's recall: dense (cosine, best of an item's vectors) and BM25 fused by z-scores, with
per-signal explanations (``mode`` "hybrid" (default), "dense" or "keyword").

Storage layout. Store ``name`` of tenant ``ns`` is the session ``name`` in ``internal_namespace(ns, "store")``, which no
user-given namespace can name. Its entries, by kind:

- ``item``: key = the namespace's labels (``\\x01``, ``\\x1e``, ``\\x1f`` escaped) joined by ``\\x1f``, then ``\\x1e``,
  then the key, so every namespace prefix is one key range. Value: a small header (times, TTL, write stamp, index
  fields, model), the value's JSON and the float32 vectors. A deleted item is a *tombstone* (header only) until a
  sweep purges it: that is what lets one batch's puts and deletes be ONE atomic ``put_entries``.
- ``ttl``: the expiry a read refreshed (key = the item's key; it counts only for the write stamp it names), so a
  refresh never rewrites (and can never undo) a value another process just wrote.
- ``ns``: one key per namespace ever written; listings check each still holds a live item, sweeps drop emptied ones.
- ``exp`` / ``dead``: expiry and deletion times + item key: what a sweep scans (it never reads every item).
- ``log``, ``head``, ``meta``: the change log below.

Change detection. Each writer instance holds *lanes* (one per concurrent write; a lane's batches are sequential).
Every batch writes, in its one atomic ``put_entries``, a ``log`` entry ``<lane>\\x1f<counter>`` listing the item keys
it changed, the lane's ``head`` (its counter) and a new random ``meta`` version token. Before a search the in-process
cache reads the token (one small read); only when it changed does it read the heads, the log entries past the
counters it has applied, and then those items. Counters of a lane have no gaps, so a missing log entry (pruned: a
lane keeps its last 10,000) means "reload everything"; so does a lane pruned by a sweep (idle for a day) when this
cache last synced before that. The cache (:class:`memvault.recall.docindex.DocIndex`) holds decoded items and one
normalised vector matrix, caught up incrementally; expired and deleted items are masked at every search.

Known limit: a sweep deletes what it found expired or deleted with a plain (unconditional) delete, so a put of that
same key landing in the few milliseconds between the sweep's check and its delete is lost.
"""

from __future__ import annotations

from memvault.documents.embedding import Embedding
from memvault.documents.fields import compile_filter, texts_at_path, tokenize_path
from memvault.documents.layout import DEFAULT, MODES, item_key, namespace_key, scope_range
from memvault.documents.store import DocumentStore
from memvault.documents.types import Get, Hit, Item, ListNamespaces, Operation, Put, Search, SearchIndex, TTLPolicy

__all__ = [
    "DEFAULT",
    "MODES",
    "DocumentStore",
    "Embedding",
    "Get",
    "Hit",
    "Item",
    "ListNamespaces",
    "Operation",
    "Put",
    "Search",
    "SearchIndex",
    "TTLPolicy",
    "compile_filter",
    "item_key",
    "namespace_key",
    "scope_range",
    "texts_at_path",
    "tokenize_path",
]
