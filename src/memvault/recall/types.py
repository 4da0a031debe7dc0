"""Result and document types of recall and collections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memvault.model import Message


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
