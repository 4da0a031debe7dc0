"""The one validation layer: everything that enters a store is checked here, before any backend sees it.

Limits (documented in docs/limits.md):

- **ids** (session ids, namespaces, user ids, message ids, collection names): non-empty text of at most 512 UTF-8
  bytes, no control characters (C0, DEL, C1: NUL, newline, NEL, ...), no lone surrogates. ``../x`` is fine: backends encode ids.
- **metadata** (session and message metadata): a dict with str keys; values are None, bool, int within the signed
  64-bit range, finite float, str, list, or dict of the same; nesting at most 32 deep. Session metadata (and
  listing filters) hold no NUL characters (PostgreSQL's jsonb, which filters it, cannot hold them) and encode to at
  most 64 KiB of JSON; message metadata is stored verbatim in the message body and may hold NUL.
- **other JSON fields** (content blocks, tool calls, extras): the same value types, nesting at most 64 deep, ints of
  any size JSON can carry, NUL allowed (they are stored verbatim).
- **content**: a str, or a list whose blocks are str or dicts.
- **listing filters**: metadata filters follow the metadata rules; times are datetimes; cursors are the strings a
  previous page returned.

Internal names (the namespace that holds a tenant's collections, ...) contain a control character, so no validated
user input can ever name them: see :func:`internal_namespace`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from memvault.errors import InvalidCursor, InvalidFilter, InvalidMessage, InvalidMetadata, InvalidSessionId

MAX_ID_BYTES = 512
MAX_METADATA_DEPTH = 32
MAX_JSON_DEPTH = 64
MAX_SESSION_METADATA_BYTES = 64 * 1024
MAX_CURSOR_CHARS = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: bounds of search knobs (a query never needs more; larger values only cost time)
MAX_K = 10_000
MAX_FETCH = 100_000
MAX_NEIGHBORS = 1_000
#: joins a tenant's namespace to the purpose of an internal namespace; refused in every user-given id
INTERNAL_SEPARATOR = "\x1f"

_CONTROL = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))  # C0, DEL and C1 (NEL, ...)


# -- ids ------------------------------------------------------------------------------------------------------------


def validate_id(value: object, what: str = "session id") -> str:
    """Return ``value`` if it is usable as an id (see the module docstring), else raise InvalidSessionId."""
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
    if not _CONTROL.isdisjoint(value):
        raise InvalidSessionId(f"{what} {value[:40]!r} holds control characters (NUL, newline, ...); remove them")
    return value


def validate_namespace(value: object) -> str:
    """A user-given namespace (tenant): an id; the empty string is refused like everywhere else."""
    return validate_id(value, "namespace")


def internal_namespace(namespace: str, purpose: str) -> str:
    """The reserved namespace holding ``purpose`` data (e.g. "collections") of tenant ``namespace``. It holds a
    control character, which :func:`validate_id` refuses, so no user-given namespace can reach it."""
    return f"{namespace}{INTERNAL_SEPARATOR}{purpose}"


def is_internal(namespace: str) -> bool:
    return INTERNAL_SEPARATOR in namespace


# -- JSON values ----------------------------------------------------------------------------------------------------


def _text_ok(text: str, allow_nul: bool) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds text that is not valid UTF-8 (a lone surrogate)"
    if not allow_nul and "\x00" in text:
        return "holds a NUL character"
    return None


def check_json(
    value: object,
    what: str,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    int64: bool = False,
    allow_nul: bool = True,
    error: type[Exception] = InvalidMessage,
) -> None:
    """Raise ``error`` unless ``value`` is plain JSON that round-trips exactly (iterative: any depth is safe)."""
    stack: list[tuple[object, int, str]] = [(value, 1, what)]
    while stack:
        item, depth, path = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if int64 and not INT64_MIN <= item <= INT64_MAX:
                shown = str(item) if item.bit_length() < 200 else f"of {item.bit_length()} bits"
                raise error(f"{path} holds the integer {shown}, outside the 64-bit range this field allows")
            if not int64 and item.bit_length() > 10_000:
                raise error(f"{path} holds an integer too large to store as JSON")
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise error(f"{path} holds {item!r}; only finite numbers are JSON")
            continue
        if isinstance(item, str):
            problem = _text_ok(item, allow_nul)
            if problem:
                raise error(f"{path} {problem}")
            continue
        if isinstance(item, (list, dict)):
            if depth > max_depth:
                raise error(f"{path} is nested more than {max_depth} levels deep")
            if isinstance(item, list):
                stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(item))
                continue
            for key, v in item.items():
                if not isinstance(key, str):
                    raise error(f"{path} has a {type(key).__name__} key {key!r}; keys must be str")
                problem = _text_ok(key, allow_nul)
                if problem:
                    raise error(f"{path} has a key that {problem}")
                stack.append((v, depth + 1, f"{path}.{key}"))
            continue
        raise error(
            f"{path} holds a {type(item).__name__}; only None, bool, int, float, str, list and dict are stored "
            "(convert datetimes, sets, tuples and bytes first)"
        )


def check_metadata(
    value: object, what: str = "metadata", *, allow_nul: bool = False, error: type[Exception] = InvalidMetadata
) -> dict[str, Any]:
    """``value`` if it is valid metadata (a dict; see the module docstring), else raise ``error``. ``allow_nul``:
    message metadata, stored verbatim inside the message body, may hold NUL; session metadata may not."""
    if not isinstance(value, dict):
        raise error(f"{what} must be a dict, got {type(value).__name__}")
    check_json(value, what, max_depth=MAX_METADATA_DEPTH, int64=True, allow_nul=allow_nul, error=error)
    return value


def check_session_metadata(value: object) -> dict[str, Any] | None:
    """Session metadata (None or valid metadata within the session size limit); returns a shallow copy."""
    if value is None:
        return None
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    metadata = check_metadata(value, "session metadata")
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_SESSION_METADATA_BYTES:
        raise InvalidMetadata(
            f"session metadata encodes to {size} bytes; the limit is {MAX_SESSION_METADATA_BYTES} (keep large data "
            "in messages or records)"
        )
    return dict(metadata)


def check_content(content: object) -> None:
    """Message content: a str, or a list of blocks that are str or dicts of JSON values."""
    if isinstance(content, str):
        problem = _text_ok(content, True)
        if problem:
            raise InvalidMessage(f"content {problem}; clean it first")
        return
    if not isinstance(content, list):
        raise InvalidMessage(f"content must be a str or a list of content blocks, got {type(content).__name__}")
    for i, block in enumerate(content):
        if not isinstance(block, (str, dict)):
            raise InvalidMessage(f"content block {i} is a {type(block).__name__}; blocks are str or dict")
    check_json(content, "content")


def check_optional_text(value: object, what: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidMessage(f"{what} must be a str or None, got {type(value).__name__}")
    problem = _text_ok(value, True)
    if problem:
        raise InvalidMessage(f"{what} {problem}")


# -- JSON equality (the listing filter's one semantics) ----------------------------------------------------------


def json_equal(a: object, b: object) -> bool:
    """Equality of JSON values: objects regardless of key order, arrays in order, numbers by value (1 == 1.0), and
    booleans only equal booleans (``true`` is not ``1``). The same on every backend."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is None and b is None
    return type(a) is type(b) and a == b


def metadata_matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """The listing metadata filter: every key of ``wanted`` is in ``metadata`` with a :func:`json_equal` value."""
    if not wanted:
        return True
    return all(key in metadata and json_equal(metadata[key], value) for key, value in wanted.items())


# -- listing arguments -----------------------------------------------------------------------------------------------


def check_metadata_filter(value: object) -> dict[str, Any] | None:
    """A listing metadata filter: key -> value (JSON equality), with the metadata rules."""
    if value is None:
        return None
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    if not isinstance(value, dict):
        raise InvalidFilter(f"metadata filter must be a dict of key -> value (equality), got {type(value).__name__}")
    return check_metadata(value, "metadata filter", error=InvalidFilter) or None


def check_time(value: object, what: str) -> float | None:
    """A listing time bound: a datetime (naive = UTC) -> epoch seconds."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidFilter(f"{what} must be a datetime, got {type(value).__name__} {str(value)[:40]!r}")
    from memvault.model import to_epoch

    try:
        return to_epoch(value)
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidFilter(f"{what} {value!r} is out of range: {exc}") from None


def check_limit(limit: object, *, maximum: int | None = None, what: str = "limit") -> int:
    """A positive int page size (capped at ``maximum``)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidFilter(f"{what} must be a positive int, got {limit!r}")
    return limit if maximum is None else min(limit, maximum)


def check_non_negative(**values: object) -> None:
    """Each value None or an int in [0, 2**63 - 1] (seqs, counts)."""
    for name, value in values.items():
        if value is not None:
            check_int(value, name)


#: the longest TTL (about 317 years): beyond it expiry times stop being representable datetimes
MAX_TTL = 1e10


def check_ttl(ttl: object, what: str = "ttl") -> float | None:
    """A TTL in seconds: None (never expires) or a positive number up to MAX_TTL."""
    if ttl is None:
        return None
    value = check_number(ttl, what, minimum=0.0, maximum=MAX_TTL)
    if value <= 0:
        raise InvalidFilter(f"{what} must be a positive number of seconds or None, got {ttl!r}")
    return value


def check_max_messages(value: object) -> int | None:
    if value is None:
        return None
    return check_int(value, "max_messages", minimum=1)


def check_int(value: object, what: str, *, minimum: int = 0, maximum: int = INT64_MAX,
              error: type[Exception] = InvalidFilter) -> int:
    """An int (not a bool) within ``[minimum, maximum]``."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        bound = f">= {minimum}" if maximum == INT64_MAX else f"between {minimum} and {maximum}"
        raise error(f"{what} must be an int {bound}, got {str(value)[:40]!r}")
    return value


def check_number(value: object, what: str, *, minimum: float | None = None, maximum: float | None = None,
                 error: type[Exception] = InvalidFilter) -> float:
    """A finite int or float (not a bool) within the given bounds."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        try:
            number = float(value)  # type: ignore[arg-type]
        except OverflowError:
            ok = False
        else:
            ok = math.isfinite(number) and (minimum is None or number >= minimum) and (maximum is None or number <= maximum)
    if not ok:
        bounds = "" if minimum is None and maximum is None else f" in [{minimum}, {maximum}]"
        raise error(f"{what} must be a finite number{bounds}, got {str(value)[:40]!r}")
    return number


def check_text(value: object, what: str, *, error: type[Exception] = InvalidFilter) -> str:
    """A str of valid UTF-8 text (a query, a prompt, a model name)."""
    if not isinstance(value, str):
        raise error(f"{what} must be a str, got {type(value).__name__}")
    problem = _text_ok(value, True)
    if problem:
        raise error(f"{what} {problem}")
    return value


def check_ids(ids: object, what: str = "message id") -> list[str]:
    """An iterable of ids (not a single str or bytes), each a valid id."""
    if isinstance(ids, (str, bytes, Mapping)) or not hasattr(ids, "__iter__"):
        raise InvalidFilter(f"{what}s must be a list of str, got {type(ids).__name__}")
    return [validate_id(i, what) for i in ids]


def check_cursor(cursor: object) -> str | None:
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise InvalidCursor(f"cursor must be the str next_cursor of a previous page, got {type(cursor).__name__}")
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor(f"cursor is {len(cursor)} characters long: not a cursor this store returned")
    return cursor


# -- namespaced documents (memvault.documents) and key-value entries (memvault.kv) ------------------------------

#: encoded (namespace, key) of a document, and a key-value key: within what every backend's key index holds
MAX_DOCUMENT_KEY_BYTES = 1800


def _plain_text(value: object, what: str, error: type[Exception]) -> str:
    """A str without NUL or lone surrogates (other control characters are fine: keys are stored verbatim)."""
    if not isinstance(value, str):
        raise error(f"{what} must be a str, got {type(value).__name__}")
    problem = _text_ok(value, False)
    if problem:
        raise error(f"{what} {value[:40]!r} {problem}")
    return value


def check_label(value: object, what: str = "namespace label") -> str:
    """One label of a document namespace: a non-empty str without ".", NUL or lone surrogates."""
    label = _plain_text(value, what, InvalidSessionId)
    if not label:
        raise InvalidSessionId(f"{what} must not be empty")
    if "." in label:
        raise InvalidSessionId(f"{what} {label[:40]!r} holds a '.'; labels cannot contain periods")
    return label


def check_namespace_path(value: object, what: str = "namespace", *, allow_empty: bool = False,
                         wildcards: bool = False) -> tuple[str, ...]:
    """A document namespace: a tuple (or list) of labels; ``wildcards``: "*" matches any one label (listings)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise InvalidSessionId(f"{what} must be a tuple of str labels, got {type(value).__name__}")
    if not value and not allow_empty:
        raise InvalidSessionId(f"{what} must not be empty")
    return tuple(label if wildcards and label == "*" else check_label(label, f"{what} label") for label in value)


def check_document_key(value: object, what: str = "key") -> str:
    """A document or key-value key: a str (may be empty) without NUL or lone surrogates."""
    key = _plain_text(value, what, InvalidSessionId)
    if len(key.encode("utf-8")) > MAX_DOCUMENT_KEY_BYTES:
        raise InvalidSessionId(f"{what} is longer than {MAX_DOCUMENT_KEY_BYTES} UTF-8 bytes")
    return key


def check_document_value(value: object, what: str = "value") -> dict[str, Any]:
    """A document value: a dict (a Mapping is copied) of JSON values with the metadata rules (NUL allowed: values
    are stored verbatim)."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    return check_metadata(value, what, allow_nul=True)


def check_ttl_minutes(value: object, what: str = "ttl") -> float | None:
    """A TTL in minutes (LangGraph's unit): None (never) or a positive finite number; returns seconds."""
    if value is None:
        return None
    minutes = check_number(value, what, minimum=0.0, maximum=MAX_TTL / 60)
    if minutes <= 0:
        raise InvalidFilter(f"{what} must be a positive number of minutes or None, got {value!r}")
    return minutes * 60.0


def check_offset(value: object, what: str = "offset") -> int:
    """A page offset: an int >= 0."""
    return check_int(value, what, minimum=0)


# -- session state and artifacts (memvault.state, memvault.artifacts) --------------------------------------------

#: an artifact name, NFC-normalised, in UTF-8 bytes
MAX_ARTIFACT_NAME_BYTES = 512
#: one version of a session's state, encoded as JSON
MAX_STATE_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_artifact_name(value: object) -> str:
    """An artifact name, returned NFC-normalised: non-empty text of at most 512 UTF-8 bytes, "/"-separated
    components that are neither empty, "." nor ".."; no leading "/" or drive letter, no backslash, no control
    characters. A name is only ever a key inside the store (no file path is derived from it)."""
    from memvault.errors import InvalidArtifact

    if not isinstance(value, str):
        raise InvalidArtifact(f"artifact name must be a str, got {type(value).__name__}")
    problem = _text_ok(value, True)
    if problem:
        raise InvalidArtifact(f"artifact name {value[:40]!r} {problem}")
    name = unicodedata.normalize("NFC", value)
    if not name:
        raise InvalidArtifact("artifact name must not be empty")
    size = len(name.encode("utf-8"))
    if size > MAX_ARTIFACT_NAME_BYTES:
        raise InvalidArtifact(f"artifact name is {size} bytes long; the limit is {MAX_ARTIFACT_NAME_BYTES} UTF-8 bytes")
    if not _CONTROL.isdisjoint(name):
        raise InvalidArtifact(f"artifact name {name[:40]!r} holds control characters (NUL, newline, ...)")
    if "\\" in name:
        raise InvalidArtifact(f"artifact name {name[:40]!r} holds a backslash; separate components with '/'")
    if name.startswith("/") or _DRIVE.match(name):
        raise InvalidArtifact(f"artifact name {name[:40]!r} is an absolute path; names are relative")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise InvalidArtifact(f"artifact name {name[:40]!r} has an empty, '.' or '..' component")
    return name


#: a MIME type: ``type/subtype`` tokens, optionally followed by ``; parameters``
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$", re.DOTALL)
MAX_CONTENT_TYPE_CHARS = 255


def check_content_type(value: object) -> str:
    """An artifact content type: a MIME type (``type/subtype``, optionally ``; parameters``) of at most 255
    characters, valid UTF-8 text without control characters (C0, DEL, C1). It is stored in the version record (JSON)
    and sent back as a header by whoever serves the artifact, so what cannot be encoded, or would split a header,
    is refused here, before anything is written."""
    from memvault.errors import InvalidArtifact

    shown = repr(value[:60]) if isinstance(value, str) else type(value).__name__
    if not isinstance(value, str) or len(value) > MAX_CONTENT_TYPE_CHARS or not _MIME.match(value):
        raise InvalidArtifact(f"content_type must be a MIME type such as 'text/plain', got {shown}")
    problem = _text_ok(value, False)
    if problem or not _CONTROL.isdisjoint(value):
        raise InvalidArtifact(f"content_type {shown} {problem or 'holds control characters'}; it must be plain text")
    return value


def check_state_data(value: object) -> dict[str, Any]:
    """One version of a session's state: a dict (a Mapping is copied) of JSON values with the metadata rules (NUL
    allowed), encoding to at most MAX_STATE_BYTES."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    data = check_metadata(value, "state", allow_nul=True)
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_STATE_BYTES:
        raise InvalidMetadata(f"state encodes to {size} bytes; the limit is {MAX_STATE_BYTES} (keep large data in "
                              "artifacts: session.artifacts.save)")
    return data


def merge_session_metadata(current: Mapping[str, Any], update: Mapping[str, Any], replace: bool) -> dict[str, Any]:
    """What ``update_metadata`` stores: ``update`` alone (replace) or ``current`` with ``update``'s top-level keys
    set (existing keys keep their place, new ones come last); InvalidMetadata when it exceeds the session limit."""
    merged = dict(update) if replace else {**current, **update}
    size = len(json.dumps(merged, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_SESSION_METADATA_BYTES:
        raise InvalidMetadata(
            f"session metadata would encode to {size} bytes after this update; the limit is "
            f"{MAX_SESSION_METADATA_BYTES} (nothing was changed)"
        )
    return merged


__all__ = [
    "INTERNAL_SEPARATOR",
    "MAX_ARTIFACT_NAME_BYTES",
    "MAX_STATE_BYTES",
    "check_artifact_name",
    "check_content_type",
    "check_state_data",
    "merge_session_metadata",
    "MAX_K",
    "MAX_ID_BYTES",
    "MAX_DOCUMENT_KEY_BYTES",
    "check_content",
    "check_document_key",
    "check_document_value",
    "check_label",
    "check_namespace_path",
    "check_offset",
    "check_ttl_minutes",
    "check_cursor",
    "check_ids",
    "check_int",
    "check_json",
    "check_limit",
    "check_metadata",
    "check_metadata_filter",
    "check_non_negative",
    "check_number",
    "check_optional_text",
    "check_max_messages",
    "check_session_metadata",
    "check_text",
    "check_time",
    "check_ttl",
    "internal_namespace",
    "is_internal",
    "json_equal",
    "metadata_matches",
    "validate_id",
    "validate_namespace",
]
