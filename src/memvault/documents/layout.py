"""The storage layout of a document store: entry kinds, key encodings, item entries (see :mod:`memvault.documents`)."""

from __future__ import annotations

import contextlib
import json
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from memvault.contract import AppendOptions
from memvault.errors import (
    CorruptData,
)

ITEM, TTL, NS, EXP, DEAD, LOG, HEAD, META = "item", "ttl", "ns", "exp", "dead", "log", "head", "meta"
ESC, END, SEP = "\x01", "\x1e", "\x1f"
MODES = ("hybrid", "dense", "keyword")
MAX_LIMIT = 10_000
PAGE = 2000
#: change-log entries a lane keeps (a cache further behind reloads), pruned every LOG_PRUNE_EVERY batches
LOG_KEEP = 10_000
LOG_PRUNE_EVERY = 1000
#: a lane idle this long is dropped by sweeps (seconds); writers retire their lanes idle for a quarter of it
LANE_RETENTION = 86_400.0
_MAGIC = b"MVD1"
HEADER = struct.Struct("<4sIII")
STORE_OPTIONS = AppendOptions()  # the store's session never expires (items have their own TTLs)


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: "use the store's default" (for ``ttl`` and ``refresh_ttl``), distinct from None
DEFAULT: Any = _Default()


# -- keys -------------------------------------------------------------------------------------------------------
_ESCAPE = re.compile("[\x01\x1e\x1f]")
_ESCAPES = {ESC: ESC + "\x01", END: ESC + "\x02", SEP: ESC + "\x03"}
_UNESCAPE = re.compile("\x01([\x01\x02\x03])")
_UNESCAPES = {"\x01": ESC, "\x02": END, "\x03": SEP}


def encode_label(label: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group()], label)


def decode_label(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], text)


def namespace_key(namespace: Sequence[str]) -> str:
    """The encoded namespace: escaped labels joined by ``\\x1f``."""
    return SEP.join(encode_label(label) for label in namespace)


def decode_namespace(text: str) -> tuple[str, ...]:
    return tuple(decode_label(part) for part in text.split(SEP)) if text else ()


def item_key(namespace: Sequence[str], key: str) -> str:
    """The ``item`` entry key of ``(namespace, key)``."""
    return namespace_key(namespace) + END + key


def split_item_key(entry_key: str) -> tuple[tuple[str, ...], str]:
    encoded, _, key = entry_key.partition(END)
    return decode_namespace(encoded), key


def scope_range(prefix: Sequence[str]) -> tuple[str | None, str | None]:
    """``(start, stop)`` of the item keys whose namespace starts with ``prefix`` (label by label)."""
    if not prefix:
        return None, None
    base = namespace_key(prefix)
    return base + END, base + chr(ord(SEP) + 1)  # the next character is END (its own items) or SEP (children)


def time_key(when: float) -> str:
    return f"{max(0, int(when * 1000)):015d}"


def log_key(lane: str, counter: int) -> str:
    return f"{lane}{SEP}{counter:012x}"


# -- item entries -----------------------------------------------------------------------------------------------
def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def encode_entry(header: Mapping[str, Any], value: bytes = b"", vectors: bytes = b"") -> bytes:
    head = dumps(header)
    return HEADER.pack(_MAGIC, len(head), len(value), len(vectors)) + head + value + vectors


def decode_header(raw: bytes, where: str) -> tuple[dict[str, Any], memoryview, memoryview]:
    """(header, value bytes, vector bytes) of an item entry; CorruptData when it is not one."""
    try:
        magic, hlen, vlen, xlen = HEADER.unpack_from(raw)
        if magic != _MAGIC or HEADER.size + hlen + vlen + xlen != len(raw):
            raise ValueError("bad magic or lengths")
        view = memoryview(raw)
        start = HEADER.size
        header = json.loads(bytes(view[start : start + hlen]))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        value = view[start + hlen : start + hlen + vlen]
        return header, value, view[start + hlen + vlen :]
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise CorruptData(f"store item {where!r} cannot be decoded: {exc}") from None


def effective_expiry(header: Mapping[str, Any], ttl_raw: bytes | None) -> float | None:
    """The item's expiry: its own, or a later refresh of the same write (a ``ttl`` entry naming its stamp)."""
    if header.get("t") is None:
        return None
    expires = float(header["e"])
    if ttl_raw:
        with contextlib.suppress(ValueError, TypeError, IndexError, KeyError):
            refreshed, stamp = json.loads(ttl_raw)
            if stamp == header.get("w"):
                expires = max(expires, float(refreshed))
    return expires


