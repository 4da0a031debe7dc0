"""The framework-free data model and its one canonical, versioned JSON encoding.

Every backend stores a message as the *body* produced by :func:`encode_body` (a compact JSON object without the
session id and seq, which the store keeps in its own keys/columns). :func:`encode_line` adds them back for export.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, NamedTuple, TypeVar

from memvault.errors import CorruptData, InvalidMessage, InvalidSessionId, MessageTooLarge, SchemaVersionError

ENCODING_VERSION = 1
ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_ID_BYTES = 512
DEFAULT_NAMESPACE = "default"

Content = str | list[Any]
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_epoch(value: datetime) -> float:
    if value.tzinfo is None:  # naive datetimes are taken as UTC, never as local time
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, timezone.utc)


def new_message_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Message:
    """One chat message. ``seq`` and ``session_id`` are filled in by the store when the message is added.

    ``extras`` holds framework-specific fields (LangChain ``additional_kwargs``, ``response_metadata``,
    ``usage_metadata``, message type, ...) so that adapters round-trip their messages losslessly.
    """

    role: str
    content: Content
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    extras: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_message_id)
    session_id: str | None = None
    seq: int | None = None

    @property
    def text(self) -> str:
        """The message's plain text: the content itself, or its text blocks joined by newlines."""
        if isinstance(self.content, str):
            return self.content
        parts: list[str] = []
        for block in self.content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)


@dataclass(frozen=True)
class SessionInfo:
    """What a store knows about one session, without its messages."""

    id: str
    namespace: str
    user_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    size_bytes: int
    metadata: dict[str, Any]
    expires_at: datetime | None
    backend: str
    last_seq: int = 0


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing. Pass ``next_cursor`` back to get the next page; ``None`` means this was the last."""

    items: list[T]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Record(NamedTuple):
    """A message ready for a store: its id and canonical body."""

    id: str
    body: str


# -- validation ---------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_id(value: object, what: str = "session id") -> str:
    """Return ``value`` if it is usable as a session id / namespace / user id, else raise InvalidSessionId.

    Any printable text up to 512 UTF-8 bytes is accepted (``../x`` included: backends that map ids to file names
    encode them); control characters and lone surrogates are refused.
    """
    if not isinstance(value, str):
        raise InvalidSessionId(f"{what} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidSessionId(f"{what} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidSessionId(f"{what} is not valid UTF-8 text (it holds a lone surrogate)") from None
    if size > MAX_ID_BYTES:
        raise InvalidSessionId(f"{what} is {size} bytes long; the limit is {MAX_ID_BYTES} UTF-8 bytes")
    if _CONTROL.search(value):
        raise InvalidSessionId(f"{what} {value[:40]!r} holds control characters (NUL, newline, ...); remove them")
    return value


def _check_json(value: object, what: str) -> None:
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"{what} must be JSON-serializable: {exc}") from None
    except UnicodeEncodeError:
        raise InvalidMessage(f"{what} holds text that is not valid UTF-8 (a lone surrogate)") from None


# -- the canonical encoding ---------------------------------------------------------------------------------------


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _body_dict(message: Message) -> dict[str, Any]:
    created = message.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    body: dict[str, Any] = {
        "v": ENCODING_VERSION,
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "created_at": created.astimezone(timezone.utc).isoformat(),
    }
    if message.name is not None:
        body["name"] = message.name
    if message.tool_calls:
        body["tool_calls"] = message.tool_calls
    if message.tool_call_id is not None:
        body["tool_call_id"] = message.tool_call_id
    if message.metadata:
        body["metadata"] = message.metadata
    if message.extras:
        body["extras"] = message.extras
    return body


def encode_body(message: Message, max_bytes: int | None = None) -> Record:
    """Validate ``message`` and return its canonical body. Raises InvalidMessage / MessageTooLarge."""
    if message.role not in ROLES:
        raise InvalidMessage(f"role must be one of {sorted(ROLES)}, got {message.role!r}")
    if not isinstance(message.content, (str, list)):
        raise InvalidMessage(f"content must be a str or a list of content blocks, got {type(message.content).__name__}")
    if not isinstance(message.id, str) or not message.id:
        raise InvalidMessage("message id must be a non-empty str")
    if not isinstance(message.metadata, dict):
        raise InvalidMessage(f"metadata must be a dict, got {type(message.metadata).__name__}")
    if not isinstance(message.created_at, datetime):
        raise InvalidMessage("created_at must be a datetime")
    body = _body_dict(message)
    try:
        text = _dumps(body)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError) as exc:
        for key in ("metadata", "content", "tool_calls", "extras"):
            _check_json(body.get(key), key)
        raise InvalidMessage(f"message is not JSON-serializable: {exc}") from None
    except UnicodeEncodeError:
        raise InvalidMessage("message holds text that is not valid UTF-8 (a lone surrogate); clean it first") from None
    if max_bytes is not None and size > max_bytes:
        raise MessageTooLarge(f"message {message.id} encodes to {size} bytes; this store's limit is {max_bytes}")
    return Record(message.id, text)


def decode_body(body: str | bytes, *, session_id: str | None, seq: int | None, where: str = "") -> Message:
    """Inverse of :func:`encode_body`. Raises CorruptData when ``body`` is not a message encoding."""
    try:
        data = json.loads(body)
        return _from_dict(data, session_id=session_id, seq=seq)
    except SchemaVersionError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorruptData(f"cannot decode stored message{' in ' + where if where else ''}: {exc}") from None


def _from_dict(data: dict[str, Any], *, session_id: str | None, seq: int | None) -> Message:
    version = data.get("v", ENCODING_VERSION)
    if version > ENCODING_VERSION:
        raise SchemaVersionError(
            f"message encoding v{version} was written by a newer memvault (this one reads v{ENCODING_VERSION}); "
            "upgrade memvault"
        )
    return Message(
        role=data["role"],
        content=data["content"],
        name=data.get("name"),
        tool_calls=data.get("tool_calls"),
        tool_call_id=data.get("tool_call_id"),
        metadata=data.get("metadata") or {},
        created_at=datetime.fromisoformat(data["created_at"]),
        extras=data.get("extras") or {},
        id=data["id"],
        session_id=session_id,
        seq=seq,
    )


def encode_line(message: Message) -> str:
    """One JSON Lines record for export: the body plus session id and seq."""
    body = _body_dict(message)
    body["session_id"] = message.session_id
    body["seq"] = message.seq
    return _dumps(body)


def decode_line(line: str) -> Message:
    try:
        data = json.loads(line)
        return _from_dict(data, session_id=data.get("session_id"), seq=data.get("seq"))
    except SchemaVersionError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CorruptData(f"not a memvault message line: {exc}: {line[:80]!r}") from None


def session_header(info: SessionInfo) -> str:
    """The first line of an export: the session's own fields."""
    return _dumps(
        {
            "type": "session",
            "v": ENCODING_VERSION,
            "id": info.id,
            "namespace": info.namespace,
            "user_id": info.user_id,
            "metadata": info.metadata,
            "created_at": info.created_at.isoformat(),
        }
    )


def with_seq(messages: Sequence[Message], session_id: str, seqs: Sequence[int]) -> list[Message]:
    for message, seq in zip(messages, seqs, strict=True):
        message.session_id = session_id
        message.seq = seq
    return list(messages)
