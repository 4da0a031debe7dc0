"""Small builders the checks share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memvault.contract import AppendOptions
from memvault.model import Message, Record, encode_body

OPTS = AppendOptions()


def rec(mid: str, text: str | None = None, **fields: Any) -> Record:
    """A stored-ready record of a user message with id ``mid`` (content defaults to ``"text of <mid>"``)."""
    role = fields.pop("role", "user")
    return encode_body(Message(role=role, content=f"text of {mid}" if text is None else text, id=mid, **fields))


def recs(*mids: str) -> list[Record]:
    return [rec(m) for m in mids]


def ids(messages: Sequence[Message]) -> list[str]:
    return [m.id for m in messages]


def seqs(messages: Sequence[Message]) -> list[int | None]:
    return [m.seq for m in messages]


def texts(messages: Sequence[Message]) -> list[str]:
    return [m.text for m in messages]


def body_bytes(records: Sequence[Record]) -> int:
    return sum(len(r.body.encode("utf-8")) for r in records)
