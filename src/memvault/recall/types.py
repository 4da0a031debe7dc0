"""Result and document types of recall and collections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memvault.errors import InvalidFilter
from memvault.model import Message
from memvault.validation import MAX_FETCH, MAX_K, MAX_NEIGHBORS, check_int, check_number

__all__ = ["MAX_K", "Document", "DocumentHit", "Hit", "IndexStatus", "SearchOptions"]


@dataclass
class Hit:
    """One recalled message. ``signals`` maps each signal ("dense", "keyword", "recency") to its rank, raw score
    and share of the fused score; ``neighbors`` holds the turns around the hit when ``neighbors=n`` was asked."""

    message: Message
    score: float
    signals: dict[str, dict[str, float]]
    session_id: str
    namespace: str
    neighbors: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class IndexStatus:
    """How much is indexed, how much waits (``backlog``), and the embedding model in use."""

    indexed: int
    backlog: int
    model_id: str


@dataclass
class Document:
    """A document of a collection. ``id`` None -> assigned at upsert; ``vector`` None -> embedded at upsert."""

    id: str | None
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    vector: list[float] | None = None


@dataclass
class DocumentHit:
    """A search result: the document (with its vector), score (higher is better) and per-signal details."""

    document: Document
    score: float
    signals: dict[str, dict[str, float]]


@dataclass(frozen=True)
class SearchOptions:
    """Knobs of one search (defaults chosen on LoCoMo, docs/recall.md)."""

    mode: str = "hybrid"
    fusion: str = "zscore"
    dense_weight: float = 0.5
    neighbour_weight: float = 0.0
    feedback: float = 0.0
    recency_half_life: float | None = None
    mmr: float | None = None
    fetch_k: int = 50
    neighbors: int = 0
    now: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Every knob checked here, for recall and collections alike (InvalidFilter otherwise)."""
        if self.mode not in ("hybrid", "dense", "keyword"):
            raise InvalidFilter(f"mode must be 'hybrid', 'dense' or 'keyword', got {self.mode!r}")
        if self.fusion not in ("zscore", "rrf"):
            raise InvalidFilter(f"fusion must be 'zscore' or 'rrf', got {self.fusion!r}")
        for name in ("dense_weight", "neighbour_weight", "feedback"):
            check_number(getattr(self, name), name, minimum=0.0, maximum=1.0)
        if self.recency_half_life is not None:
            check_number(self.recency_half_life, "recency_half_life", minimum=1e-9)
        if self.mmr is not None:
            check_number(self.mmr, "mmr", minimum=0.0, maximum=1.0)
        check_int(self.fetch_k, "fetch_k", minimum=1, maximum=MAX_FETCH)
        check_int(self.neighbors, "neighbors", minimum=0, maximum=MAX_NEIGHBORS)
