"""The on-disk format of the file store: names, message lines and ``meta.jsonl`` (the commit point)."""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from memvault.errors import BackendUnavailable, CorruptData, SchemaVersionError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

FORMAT_VERSION = 2  # v2: entries (egen, ebytes in meta.jsonl); v1 sessions are read as having none
MARKER = "memvault-files.json"
META = "meta.jsonl"
LOCK = "lock"
MAX_NAME = 120  # longer encodings become "~" + sha256, leaving room for suffixes under NAME_MAX (255)
COMPACT_MIN = 64 * 1024  # compact a trimmed file once its dead prefix is this large and outweighs the live part
CACHE_SESSIONS = 256
CACHE_IDS = 500_000
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_-")
TRUE_WORDS = {"1", "true", "yes", "on"}
# what this module writes: {"seq":N,"v":V,"id":"<id without escapes>",...  (the id group is optional)
CANONICAL = re.compile(rb'\{"seq":(\d+),(?:"v":\d+,"id":"([^"\\]*)",)?')


def encode_name(value: str) -> str:
    """A file name for an id: bytes outside ``[a-z0-9_-]`` become ``%XX`` (upper-case letters too, so ids that
    differ by case stay apart on case-insensitive file systems); encodings over 120 characters become
    ``~<sha256>``. The result never contains ``.`` or ``/``."""
    raw = value.encode("utf-8")
    name = "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)
    if len(name) > MAX_NAME:
        return "~" + hashlib.sha256(raw).hexdigest()
    return name


def seq_prefix(seq: int) -> bytes:
    return b'{"seq":%d,' % seq


def line_seq(line: bytes) -> int | None:
    """The seq of a stored line (its fixed prefix, or the parsed JSON for a hand-written line); None if unusable."""
    match = CANONICAL.match(line)
    if match:
        return int(match.group(1))
    try:
        seq = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def line_id(line: bytes) -> str | None:
    """The message id of a stored line (fast path for the canonical key order, JSON otherwise)."""
    match = CANONICAL.match(line)
    if match and match.group(2) is not None:
        return match.group(2).decode("utf-8", "replace")
    try:
        value = json.loads(line).get("id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def body_size(line: bytes, seq: int) -> int:
    """Bytes of the canonical body inside a stored line (what ``size_bytes`` counts, as on every backend)."""
    prefix = seq_prefix(seq)
    return len(line) - len(prefix) + 1 if line.startswith(prefix) else len(line)


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def move_aside(d: Path) -> Path:
    """Rename a corrupt session directory to ``<name>.corrupt-<stamp>`` (``-1``, ``-2``, ... if taken: never over
    anything) and return where it went."""
    base = d.with_name(f"{d.name}.corrupt-{stamp()}")
    target, n = base, 0
    while target.exists():
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    os.rename(d, target)
    return target


def os_errors(method: F) -> F:
    """Report file-system failures (disk full, permissions, I/O errors) as BackendUnavailable."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except BackendUnavailable:
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise BackendUnavailable(
                f"file store {self.root}: {exc.strerror or exc}{where}; check free space and permissions. "
                "Committed data is intact: an interrupted write is never committed."
            ) from exc

    return wrapper  # type: ignore[return-value]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


STORED = (
    "n", "format", "namespace", "id", "uid", "user_id", "metadata", "created_at", "updated_at", "expires_at",
    "last_seq", "count", "size", "gen", "head", "bytes", "rgen", "records", "egen", "ebytes",
)  # fmt: skip
_ADDED_IN_V2 = {"egen", "ebytes"}
_SLOT_START = b'{"crc":"'
_SLOT_MID = b'","meta":'
MESSAGES_FILE = re.compile(r"messages\.(\d+)\.jsonl")
RECORDS_FILE = re.compile(r"records\.(\d+)\.json")
ENTRIES_FILE = re.compile(r"entries\.(\d+)\.jsonl")
_SLOT_N = re.compile(rb'\{"n":(\d+),')


@dataclass
class Meta:
    """The session's fields and the committed state of its files, as stored in ``meta.jsonl``.

    ``meta.jsonl`` holds two fixed-size slots (one JSON line each, padded with spaces) with a CRC. A commit
    overwrites the older slot in place (``pwrite``) with ``n + 1``; readers take the intact slot with the higher
    ``n``. An in-place write costs microseconds where a temp file + rename over an existing file costs ~1 ms on
    ext4 (its ``auto_da_alloc`` flushes the new file), and a torn slot never hides the other one.
    """

    namespace: str
    id: str
    uid: str  # changes when the session is created again (after expiry or deletion)
    user_id: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None
    last_seq: int = 0
    count: int = 0
    size: int = 0
    gen: int = 1  # messages.<gen>.jsonl
    head: int = 0  # offset of the oldest live line
    bytes: int = 0  # committed length of the messages file
    rgen: int = 0  # last records generation used
    records: int = 0  # records.<records>.json, 0 = no records
    egen: int = 0  # entries.<egen>.jsonl (an append-only log); a new generation whenever it starts empty
    ebytes: int = 0  # committed length of the entries log (0 = no entries)
    n: int = 0  # commit counter
    format: int = FORMAT_VERSION
    slot: int = field(default=-1, compare=False)  # where this copy was read from (not stored)
    slot_size: int = field(default=0, compare=False)

    @property
    def file(self) -> str:
        return f"messages.{self.gen}.jsonl"

    @property
    def records_file(self) -> str:
        return f"records.{self.records}.json"

    @property
    def entries_file(self) -> str:
        return f"entries.{self.egen}.jsonl"

    def copy(self, **changes: Any) -> Meta:
        return _replace(self, **changes)

    def slot_line(self) -> builtins.bytes:  # builtins: the field ``bytes`` shadows the type in the class body
        payload = json.dumps({k: getattr(self, k) for k in STORED}, ensure_ascii=False, separators=(",", ":"))
        body = payload.encode("utf-8")
        return b"%s%08x%s%s}" % (_SLOT_START, zlib.crc32(body), _SLOT_MID, body)

    def slot_bytes(self, size: int, line: builtins.bytes | None = None) -> builtins.bytes | None:
        """One slot of ``meta.jsonl`` (None when it does not fit in ``size`` bytes)."""
        line = self.slot_line() if line is None else line
        if len(line) + 1 > size:
            return None
        return line + b" " * (size - len(line) - 1) + b"\n"

    @classmethod
    def parse(cls, raw: builtins.bytes, path: Path) -> Meta:
        """The newest intact slot of a ``meta.jsonl``; CorruptData when there is none."""
        size = len(raw) // 2
        problem = "it is empty" if not raw else f"its size {len(raw)} is not two slots"
        candidates: list[tuple[int, int, bytes]] = []  # (n, slot, json body) of slots that pass their checksum
        if size >= 64 and size * 2 == len(raw):
            for slot in (0, 1):
                line = raw[slot * size : (slot + 1) * size].rstrip()
                body = line[25:-1]
                match = _SLOT_N.match(body)
                if not (line.startswith(_SLOT_START) and line[16:25] == _SLOT_MID and line.endswith(b"}") and match):
                    problem = "a slot is not a meta line"
                elif line[8:16] != b"%08x" % zlib.crc32(body):
                    problem = "a slot fails its checksum"
                else:
                    candidates.append((int(match.group(1)), slot, body))
        for _, slot, body in sorted(candidates, reverse=True):
            try:
                meta = cls._from_json(body, path)
            except (ValueError, TypeError) as exc:
                problem = str(exc)
                continue
            meta.slot, meta.slot_size = slot, size
            return meta
        raise CorruptData(f"{path} holds no intact copy of the session's state ({problem})", path=str(path))

    @classmethod
    def _from_json(cls, body: builtins.bytes, path: Path) -> Meta:
        data = json.loads(body)
        if not isinstance(data, dict) or not set(STORED) - _ADDED_IN_V2 <= set(data) <= set(STORED):
            raise TypeError("a slot lacks fields")
        if not isinstance(data["format"], int) or data["format"] > FORMAT_VERSION:
            raise SchemaVersionError(
                f"{path} was written by a newer memvault (format v{data['format']}, this one reads "
                f"v{FORMAT_VERSION}); upgrade memvault"
            )
        meta = cls(**data)
        ints = (meta.last_seq, meta.count, meta.size, meta.gen, meta.head, meta.bytes, meta.rgen, meta.records, meta.n,
                meta.egen, meta.ebytes)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
            raise TypeError("counters must be non-negative ints")
        if not (isinstance(meta.namespace, str) and isinstance(meta.id, str) and isinstance(meta.uid, str)):
            raise TypeError("namespace, id and uid must be strings")
        if meta.user_id is not None and not isinstance(meta.user_id, str):
            raise TypeError("user_id must be a string or null")
        if not isinstance(meta.metadata, dict):
            raise TypeError("metadata must be an object")
        if not (is_number(meta.created_at) and is_number(meta.updated_at)):
            raise TypeError("created_at and updated_at must be numbers")
        if meta.expires_at is not None and not is_number(meta.expires_at):
            raise TypeError("expires_at must be a number or null")
        if meta.head > meta.bytes or meta.gen < 1 or meta.records > meta.rgen:
            raise TypeError("head/bytes/gen/records out of range")
        return meta


class RecordsDamaged(Exception):
    """A session's records file is unreadable (its messages are fine)."""
