"""The public types of document stores: index and TTL settings, items, hits and the batch operations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from memvault.documents.fields import check_fields
from memvault.documents.layout import DEFAULT, MODES
from memvault.errors import (
    InvalidEmbedder,
    InvalidFilter,
)
from memvault.validation import (
    check_int,
    check_number,
    check_ttl_minutes,
)


# -- public types -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchIndex:
    """What a store indexes. ``embed``: "default" (offline MiniLM), "hash" / "hash-N" (tests), an Embedder, a
    LangChain Embeddings / LlamaIndex embedding, a function ``texts -> vectors``, or None (keyword search only).
    ``fields``: paths embedded by default ("$" = the whole value; "a.b", "list[*]", "x[0]", "{a,b}"). ``dims``:
    checked against the vectors when given. ``mode``: "hybrid", "dense" or "keyword". ``model_id``: names the model
    stored with each vector (detects a model change; inferred when None)."""

    embed: Any = "default"
    fields: Sequence[str] = ("$",)
    dims: int | None = None
    mode: str = "hybrid"
    dense_weight: float = 0.5
    model_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(check_fields(list(self.fields), "index fields")))
        if self.mode not in MODES:
            raise InvalidFilter(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.dims is not None:
            check_int(self.dims, "dims", minimum=1, maximum=65536, error=InvalidEmbedder)
        check_number(self.dense_weight, "dense_weight", minimum=0.0, maximum=1.0)


@dataclass(frozen=True)
class TTLPolicy:
    """TTL defaults in minutes: ``default_ttl`` for items put without one (None = never expire);
    ``refresh_on_read``: reads slide the TTL unless told otherwise; ``sweep_interval_minutes``: how often
    :meth:`DocumentStore.start_sweeper` sweeps."""

    default_ttl: float | None = None
    refresh_on_read: bool = True
    sweep_interval_minutes: float | None = None

    def __post_init__(self) -> None:
        check_ttl_minutes(self.default_ttl, "default_ttl")
        if not isinstance(self.refresh_on_read, bool):
            raise InvalidFilter(f"refresh_on_read must be a bool, got {self.refresh_on_read!r}")
        if self.sweep_interval_minutes is not None:
            check_number(self.sweep_interval_minutes, "sweep_interval_minutes", minimum=1e-6)


@dataclass(frozen=True)
class Item:
    """A stored item (times are timezone-aware UTC datetimes)."""

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Hit(Item):
    """A search result: ``score`` (hybrid: the fused z-score; dense: cosine; keyword: BM25; None when the item was
    not ranked) and ``signals``: per signal ("dense", "keyword") its rank, raw score and share of the fused score."""

    score: float | None = None
    signals: dict[str, dict[str, float]] | None = None


@dataclass(frozen=True)
class Get:
    namespace: tuple[str, ...]
    key: str
    refresh_ttl: bool | Any = DEFAULT


@dataclass(frozen=True)
class Put:
    """Insert or replace an item; ``value`` None deletes it. ``index``: None = the store's fields, False = not
    indexed, a list = these fields. ``ttl``: minutes, None = never, DEFAULT = the store's default_ttl."""

    namespace: tuple[str, ...]
    key: str
    value: Mapping[str, Any] | None
    index: Literal[False] | Sequence[str] | None = None
    ttl: float | Any | None = DEFAULT


@dataclass(frozen=True)
class Search:
    namespace_prefix: tuple[str, ...]
    query: str | None = None
    filter: Mapping[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    refresh_ttl: bool | Any = DEFAULT
    mode: str | None = None


@dataclass(frozen=True)
class ListNamespaces:
    """Namespaces matching every condition (("prefix" | "suffix", labels), "*" = any label), truncated to
    ``max_depth`` and de-duplicated, sorted."""

    conditions: Sequence[tuple[str, Sequence[str]]] = ()
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


Operation = Get | Put | Search | ListNamespaces


