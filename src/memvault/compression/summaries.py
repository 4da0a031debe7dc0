"""Summaries as first-class stored records: what they say, which seqs they cover, who wrote them, what they cost.

They live in the contract's records API (kind ``"summary"``), so every backend stores them without backend code.
Keys are the zero-padded end seq, so ``get_records(kind, last=1)`` is the latest rolling summary in one read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from memvault.drive import Call, Op
from memvault.errors import CorruptData
from memvault.model import utcnow

KIND = "summary"
SUMMARY_VERSION = 1


def summary_key(end_seq: int) -> str:
    return f"{end_seq:020d}"


@dataclass(frozen=True)
class Summary:
    """A rolling summary of the messages with ``start_seq <= seq <= end_seq``.

    ``tokens`` is its size in ``encoding`` units; ``message_count`` how many messages it has folded in total;
    ``previous`` the key of the summary it was built from (None for the first).
    """

    text: str
    start_seq: int
    end_seq: int
    summarizer: str
    tokens: int
    encoding: str
    message_count: int
    created_at: datetime = field(default_factory=utcnow)
    previous: str | None = None

    @property
    def key(self) -> str:
        return summary_key(self.end_seq)

    def to_record(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["v"] = SUMMARY_VERSION
        return data

    @classmethod
    def from_record(cls, key: str, data: dict[str, Any]) -> Summary:
        try:
            return cls(
                text=str(data["text"]),
                start_seq=int(data["start_seq"]),
                end_seq=int(data["end_seq"]),
                summarizer=str(data.get("summarizer", "")),
                tokens=int(data.get("tokens", 0)),
                encoding=str(data.get("encoding", "")),
                message_count=int(data.get("message_count", 0)),
                created_at=datetime.fromisoformat(data["created_at"]),
                previous=data.get("previous"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptData(f"summary record {key!r} cannot be decoded: {exc}") from None


def latest_summary(ns: str, sid: str) -> Op[Summary | None]:
    """The newest rolling summary of the session (one keyed read), or None."""
    rows = yield Call("get_records", (ns, sid, KIND), {"last": 1})
    if not rows:
        return None
    key, data = rows[-1]
    return Summary.from_record(key, data)


def list_summaries(ns: str, sid: str, last: int | None = None) -> Op[list[Summary]]:
    """Stored summaries, oldest first (``last`` keeps the newest N)."""
    rows = yield Call("get_records", (ns, sid, KIND), {"last": last})
    return [Summary.from_record(key, data) for key, data in rows]


__all__ = ["KIND", "Summary", "latest_summary", "list_summaries", "summary_key"]
