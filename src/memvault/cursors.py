"""The one cursor codec: a page cursor is URL-safe base64 of a short JSON array, checked field by field on the way
back in, so a tampered, truncated or hostile cursor is an :class:`~memvault.errors.InvalidCursor`, never a crash."""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from memvault.errors import InvalidCursor
from memvault.validation import check_cursor


def encode_cursor(*parts: str | int | float) -> str:
    """A cursor for a keyset position, e.g. ``encode_cursor(updated_at, session_id)``."""
    raw = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and -(2**63) <= value < 2**63
    if kind is str and isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    return False


def decode_cursor(cursor: object, *kinds: type, what: str = "page") -> tuple[Any, ...]:
    """The parts of a cursor made by :func:`encode_cursor`, checked against ``kinds`` (str, int or float each)."""
    text = check_cursor(cursor)
    hint = f"invalid cursor {str(cursor)[:40]!r}: pass back the next_cursor of a previous {what}"
    if text is None:
        raise InvalidCursor(hint)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error, RecursionError, UnicodeDecodeError):
        raise InvalidCursor(hint) from None
    if not isinstance(parts, list) or len(parts) != len(kinds):
        raise InvalidCursor(hint)
    if not all(_fits(value, kind) for value, kind in zip(parts, kinds, strict=True)):
        raise InvalidCursor(hint)
    return tuple(float(v) if k is float else v for v, k in zip(parts, kinds, strict=True))


__all__ = ["decode_cursor", "encode_cursor"]
