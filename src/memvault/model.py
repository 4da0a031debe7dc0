"""The framework-free data model and its one canonical, versioned JSON encoding.

Every backend stores a message as the *body* produced by :func:`encode_body` (a compact JSON object without the
session id and seq, which the store keeps in its own keys/columns). :func:`encode_line` adds them back for export.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, NamedTuple, TypeVar, overload

from memvault.codecs.envelope import SEALED, current_opener, unseal_in_place
from memvault.errors import (
    CodecUnavailable,
    CorruptData,
    EncryptionError,
    InvalidMessage,
    InvalidSessionId,
    MemvaultError,
    MessageTooLarge,
    SchemaVersionError,
)
from memvault.validation import (
    check_content,
    check_json,
    check_metadata,
    check_optional_text,
    validate_id,
)

ENCODING_VERSION = 1
ROLES = frozenset({"system", "user", "assistant", "tool"})
DEFAULT_NAMESPACE = "default"

Content = str | list[Any]
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_epoch(value: datetime) -> float:
    if value.tzinfo is None:  # naive datetimes are taken as UTC, never as local time
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


@overload
def from_epoch(value: float) -> datetime: ...
@overload
def from_epoch(value: float | None) -> datetime | None: ...


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


# -- validation (the rules live in memvault.validation) -----------------------------------------------------------


def check_message(message: Message) -> None:
    """Raise InvalidMessage (or InvalidMetadata / InvalidSessionId) unless ``message`` can be stored exactly."""
    if not isinstance(message.role, str) or message.role not in ROLES:
        raise InvalidMessage(f"role must be one of {sorted(ROLES)}, got {message.role!r}")
    check_content(message.content)
    if not isinstance(message.id, str) or not message.id:
        raise InvalidMessage("message id must be a non-empty str")
    try:
        validate_id(message.id, "message id")
    except InvalidSessionId as exc:
        raise InvalidMessage(str(exc)) from None
    check_optional_text(message.name, "name")
    check_optional_text(message.tool_call_id, "tool_call_id")
    if message.tool_calls is not None:
        if not isinstance(message.tool_calls, list) or not all(isinstance(c, dict) for c in message.tool_calls):
            raise InvalidMessage("tool_calls must be a list of dicts or None")
        check_json(message.tool_calls, "tool_calls")
    check_metadata(message.metadata, "message metadata", allow_nul=True)
    if not isinstance(message.extras, dict):
        raise InvalidMessage(f"extras must be a dict, got {type(message.extras).__name__}")
    check_json(message.extras, "extras")
    if not isinstance(message.created_at, datetime):
        raise InvalidMessage(f"created_at must be a datetime, got {type(message.created_at).__name__}")
    if message.created_at.tzinfo is not None and message.created_at.utcoffset() is None:
        raise InvalidMessage("created_at has a tzinfo that gives no UTC offset")
    try:
        to_epoch(message.created_at)
        (message.created_at if message.created_at.tzinfo else message.created_at.replace(tzinfo=timezone.utc)
         ).astimezone(timezone.utc)
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidMessage(f"created_at {message.created_at!r} is out of range ({exc})") from None


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
    if message.tool_calls is not None:  # [] stays [] (None is "no field")
        body["tool_calls"] = message.tool_calls
    if message.tool_call_id is not None:
        body["tool_call_id"] = message.tool_call_id
    if message.metadata:
        body["metadata"] = message.metadata
    if message.extras:
        body["extras"] = message.extras
    return body


def canonical_body(message: Message) -> str:
    """The canonical body of an already stored (hence valid) message, without validating it again."""
    return _dumps(_body_dict(message))


def encode_body(message: Message, max_bytes: int | None = None) -> Record:
    """Validate ``message`` and return its canonical body. Raises InvalidMessage / MessageTooLarge."""
    check_message(message)
    body = _body_dict(message)
    try:
        text = _dumps(body)
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, OverflowError, RecursionError, UnicodeEncodeError) as exc:
        raise InvalidMessage(f"message is not storable as JSON: {exc}") from None
    if max_bytes is not None and size > max_bytes:
        raise MessageTooLarge(f"message {message.id} encodes to {size} bytes; this store's limit is {max_bytes}")
    return Record(message.id, text)


def decode_body(body: str | bytes, *, session_id: str | None, seq: int | None, where: str = "") -> Message:
    """Inverse of :func:`encode_body`. Raises CorruptData when ``body`` is not a message encoding."""
    try:
        opener = current_opener()  # None unless a SealedStore is reading
        if opener is not None and isinstance(body, str):
            body = opener.cached(body) or body
        data = json.loads(body)
        if isinstance(data, dict) and SEALED in data:  # stored through a codec (memvault.codecs)
            data = unseal_in_place(data, where, body if isinstance(body, str) else body.decode("utf-8", "replace"))
        return _from_dict(data, session_id=session_id, seq=seq)
    except (SchemaVersionError, EncryptionError, CodecUnavailable, CorruptData):
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
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


@dataclass(frozen=True)
class ExportHeader:
    """The validated first line of an export (every field optional)."""

    id: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] | None = None


def _line_error(number: int, exc: Exception) -> Exception:
    text = f"import line {number}: {exc}"
    return CorruptData(text) if isinstance(exc, CorruptData) else type(exc)(text)


def parse_header(data: dict[str, Any]) -> ExportHeader:
    """Check every field of an export header; raises a typed error naming the field."""
    from memvault.validation import check_session_metadata

    version = data.get("v", ENCODING_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CorruptData(f"header field v must be an int, got {version!r}")
    if version > ENCODING_VERSION:
        raise SchemaVersionError(f"export v{version} was written by a newer memvault (this one reads v{ENCODING_VERSION})")
    sid, user = data.get("id"), data.get("user_id")
    created = data.get("created_at")
    if created is not None:
        if not isinstance(created, str):
            raise CorruptData(f"header field created_at must be an ISO 8601 string, got {type(created).__name__}")
        try:
            datetime.fromisoformat(created)
        except ValueError as exc:
            raise CorruptData(f"header field created_at is not an ISO 8601 time: {exc}") from None
    return ExportHeader(
        id=None if sid is None else validate_id(sid, "header field id"),
        user_id=None if user is None else validate_id(user, "header field user_id"),
        metadata=check_session_metadata(data.get("metadata")),
    )


def parse_export(lines: Iterable[str | bytes]) -> tuple[ExportHeader, list[Message]]:
    """Read a whole export (header line optional) and validate every field of every line; nothing is written, so a
    bad line anywhere rejects the whole import before any of it is stored."""
    header = ExportHeader()
    messages: list[Message] = []
    seen_line = False
    if isinstance(lines, (bytes, Mapping)) or not hasattr(lines, "__iter__"):
        raise CorruptData(f"an export is an iterable of JSON lines (or one str), got {type(lines).__name__}")
    for number, raw in enumerate(lines, 1):
        if not isinstance(raw, (str, bytes)):
            raise CorruptData(f"import line {number} is a {type(raw).__name__}, not a str")
        line = raw.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise CorruptData(f"import line {number} is not JSON: {exc}: {line[:80]!r}") from None
        if not isinstance(data, dict):
            raise CorruptData(f"import line {number} is not a JSON object: {line[:80]!r}")
        try:
            if data.get("type") == "session":
                if seen_line:
                    raise CorruptData("a session header may only be the first line")
                header = parse_header(data)
            else:
                for key, kind in (("metadata", dict), ("extras", dict), ("tool_calls", list)):
                    if data.get(key) is not None and not isinstance(data[key], kind):
                        raise CorruptData(f"field {key} must be a JSON {'object' if kind is dict else 'array'}")
                message = _from_dict(data, session_id=None, seq=None)
                check_message(message)
                sid = data.get("session_id")
                message.session_id = None if sid is None else validate_id(sid, "session_id")
                messages.append(message)
        except SchemaVersionError:
            raise
        except MemvaultError as exc:
            raise _line_error(number, exc) from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise CorruptData(f"import line {number} is not a memvault message: {exc!r}: {line[:80]!r}") from None
        seen_line = True
    return header, messages


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
