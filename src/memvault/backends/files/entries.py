"""Entries on the file store: one append-only log per session, ``entries.<egen>.jsonl``.

Each line is a put, ``{"k": kind, "key": key, "t": text}`` (``"b"``: base64 for a value that is not UTF-8 text),
or a delete, ``{"k": kind, "key": key, "del": 1}``. ``meta.jsonl`` records the committed length (``ebytes``), so
readers (lock-free) see whole batches only and a crashed writer's tail is ignored, then truncated by the next
writer. Each process keeps the decoded table per session (a bounded LRU), caught up from the bytes it has not read
yet. A value whose line is longer than ``INLINE_MAX`` is not held in the table: its row says where its line is, and
a read takes it from the file (a session's 1 MiB artifact chunks are never all in memory; loading the table reads
only the head of such lines). When the log is mostly dead lines it is compacted into a new generation (copied line
by line, never whole), committed through ``meta.jsonl``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from memvault.backends.files.format import COMPACT_MIN, Meta, os_errors
from memvault.caching import LRUCache, budget_lru
from memvault.contract import AppendOptions, Entry, in_range
from memvault.errors import CorruptData

logger = logging.getLogger("memvault.files")
T = TypeVar("T")
CACHE_ENTRY_SESSIONS = 64
CACHE_ENTRIES = 1_000_000
#: a value whose line (newline included) is longer than this is read from the file when asked, not held in memory
INLINE_MAX = 32 * 1024
COPY_BLOCK = 4 << 20  # compaction writes the new generation in blocks of about this size
# the head of a line this module wrote: {"k":<json str>,"key":<json str>,"t" or "b":"...
_HEAD = re.compile(rb'\{"k":("(?:[^"\\]|\\.)*"),"key":("(?:[^"\\]|\\.)*"),"[tb]":"')


class Row(NamedTuple):
    """One entry in the table: its value (None: not held, read from the line at ``offset``), line size, offset."""

    value: bytes | None
    size: int
    offset: int


def _row(value: bytes, size: int, offset: int) -> Row:
    return Row(value if size <= INLINE_MAX else None, size, offset)


@dataclass
class EntryTable:
    """A session's entries as far as byte ``upto`` of generation ``egen``: kind -> key -> Row."""

    uid: str
    egen: int
    upto: int = 0
    kinds: dict[str, dict[str, Row]] = field(default_factory=dict)
    live: int = 0  # bytes of the lines that hold current values
    _sorted: dict[str, list[str]] = field(default_factory=dict)

    def apply(self, kind: str, key: str, row: Row | None) -> None:
        """Set (or, with None, delete) one entry."""
        table = self.kinds.setdefault(kind, {})
        old = table.pop(key, None)
        if old is not None:
            self.live -= old.size
        order = self._sorted.get(kind)
        if row is None:
            if old is not None and order is not None:
                del order[bisect.bisect_left(order, key)]
            return
        table[key] = row
        self.live += row.size
        if old is None and order is not None:
            bisect.insort(order, key)

    def keys(self, kind: str) -> list[str]:
        order = self._sorted.get(kind)
        if order is None:
            order = self._sorted[kind] = sorted(self.kinds.get(kind, {}))
        return order

    def count(self) -> int:
        return sum(len(t) for t in self.kinds.values())


def _line(kind: str, key: str, value: bytes | None) -> bytes:
    data: dict[str, Any] = {"k": kind, "key": key}
    if value is None:
        data["del"] = 1
    else:
        try:
            data["t"] = value.decode("utf-8")
        except UnicodeDecodeError:
            data["b"] = base64.b64encode(value).decode("ascii")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _parse(line: bytes) -> tuple[str, str, bytes | None]:
    data = json.loads(line)
    kind, key = data["k"], data["key"]
    if not isinstance(kind, str) or not isinstance(key, str):
        raise TypeError("kind and key must be strings")
    if data.get("del"):
        return kind, key, None
    if "t" in data:
        return kind, key, str(data["t"]).encode("utf-8")
    return kind, key, base64.b64decode(data["b"], validate=True)


def _head(line: bytes) -> tuple[str, str] | None:
    """(kind, key) of a put line in this module's key order, without decoding its value; None otherwise."""
    match = _HEAD.match(line)
    if match is None:
        return None
    kind, key = json.loads(match.group(1)), json.loads(match.group(2))
    if not isinstance(kind, str) or not isinstance(key, str):
        return None
    return kind, key


class _Values:
    """Reads the values a table does not hold, from one generation file (opened on first need)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def get(self, row: Row) -> bytes:
        if row.value is not None:
            return row.value
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_RDONLY)  # FileNotFoundError: compacted meanwhile (readers retry)
        line = _pread_exact(self.fd, row.size - 1, row.offset, self.path)
        try:
            _, _, value = _parse(line)
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            value, problem = None, str(exc)
        else:
            problem = "it is a delete"
        if value is None:
            raise CorruptData(f"{self.path}: the entry line at byte {row.offset} is unreadable ({problem})",
                              path=str(self.path))
        return value

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pread_exact(fd: int, size: int, offset: int, path: Path) -> bytes:
    parts, done = [], 0
    while done < size:
        part = os.pread(fd, size - done, offset + done)
        if not part:
            raise CorruptData(f"{path} ends at byte {offset + done}, before its committed length", path=str(path))
        parts.append(part)
        done += len(part)
    return b"".join(parts)


class EntriesOnFiles:
    """The entries operations of :class:`~.store.FileStore` (the host provides the session runners and I/O)."""

    _stripes: list[threading.RLock]
    _write: Callable[..., Any]
    _read: Callable[..., Any]
    _live_or_fresh: Callable[..., Any]
    _touch: Callable[..., Any]
    _commit: Callable[..., Any]
    _sweep: Callable[..., Any]
    _new_file: Callable[..., Any]
    _iter_lines: Callable[..., Iterator[tuple[int, bytes]]]
    _pwrite: Callable[..., Any]
    _sync: Callable[..., Any]
    _alive: Callable[..., bool]
    # created on first use by _entry_cache
    _entry_tables: LRUCache[tuple[str, str], EntryTable]
    _entry_lock: threading.Lock

    def _entry_cache(self) -> LRUCache[tuple[str, str], EntryTable]:
        cache: LRUCache[tuple[str, str], EntryTable] | None = getattr(self, "_entry_tables", None)
        if cache is None:
            cache = self._entry_tables = budget_lru(CACHE_ENTRIES, CACHE_ENTRY_SESSIONS, lambda t: t.count())
            self._entry_lock = threading.Lock()
        return cache

    def _table(self, d: Path, meta: Meta) -> EntryTable:
        """The session's entries as committed in ``meta`` (call with the session's stripe held)."""
        key = (meta.namespace, meta.id)
        cache = self._entry_cache()
        with self._entry_lock:
            table = cache.get(key)
        if table is None or table.uid != meta.uid or table.egen != meta.egen or table.upto > meta.ebytes:
            table = EntryTable(meta.uid, meta.egen)
        if meta.ebytes > table.upto:
            path = d / meta.entries_file
            fd = os.open(path, os.O_RDONLY)
            try:
                for offset, line in self._iter_lines(fd, table.upto, meta.ebytes, path, block=1 << 20):
                    size = len(line) + 1
                    try:
                        head = _head(line) if size > INLINE_MAX else None
                        if head is not None:  # a big value: remember where it is, decode it when it is read
                            table.apply(head[0], head[1], Row(None, size, offset))
                            continue
                        kind, entry_key, value = _parse(line)
                    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
                        logger.warning("%s: skipping the damaged entry line at byte %d (%s)", path, offset, exc)
                        continue
                    table.apply(kind, entry_key, None if value is None else _row(value, size, offset))
            finally:
                os.close(fd)
            table.upto = meta.ebytes
        with self._entry_lock:
            cache[key] = table  # re-inserted after each catch-up: its size is counted again
        return table

    def _forget_entries(self, ns: str, sid: str) -> None:
        cache = self._entry_cache()
        with self._entry_lock:
            cache.pop((ns, sid), None)

    def _stripe(self, ns: str, sid: str) -> threading.RLock:
        return self._stripes[hash((ns, sid)) % len(self._stripes)]

    def _write_entries(
        self, d: Path, meta: Meta, lines: list[bytes], puts: Sequence[tuple[str, str, bytes]], table: EntryTable
    ) -> Meta:
        """Append ``lines`` to the log (a new generation when it is empty), set the rows of ``puts`` (kind, key,
        value of each put line, in order; deletes are applied by the caller) and compact the log when mostly
        dead."""
        if meta.ebytes == 0:
            meta.egen += 1
            self._new_file(d, meta.entries_file)
            table.uid, table.egen, table.upto = meta.uid, meta.egen, 0
        path = d / meta.entries_file
        fd = os.open(path, os.O_RDWR)
        start = meta.ebytes
        try:
            if os.fstat(fd).st_size > meta.ebytes:  # a writer died before committing: its bytes never counted
                os.ftruncate(fd, meta.ebytes)
            self._pwrite(fd, lines[0] if len(lines) == 1 else b"".join(lines), start)
            self._sync(fd)
        finally:
            os.close(fd)
        meta.ebytes += sum(len(line) for line in lines)
        position = start
        for (kind, key, value), line in zip(puts, lines, strict=False):  # deletes pass no puts
            table.apply(kind, key, _row(value, len(line), position))
            position += len(line)
        table.upto = meta.ebytes
        dead = meta.ebytes - table.live
        if dead >= COMPACT_MIN and dead > table.live:
            meta = self._compact(d, meta, table)
        return meta

    def _compact(self, d: Path, meta: Meta, table: EntryTable) -> Meta:
        """Copy the live lines into a new generation (block by block: big values are copied from the old file, not
        held), pointing the table's rows at their new offsets. Committed by the caller."""
        old = d / meta.entries_file
        meta.egen += 1
        self._new_file(d, meta.entries_file)
        src = os.open(old, os.O_RDONLY)
        dst = os.open(d / meta.entries_file, os.O_WRONLY)
        try:
            block: list[bytes] = []
            buffered = position = 0
            for kind, rows in table.kinds.items():
                for key, row in list(rows.items()):
                    line = _line(kind, key, row.value) if row.value is not None else _pread_exact(
                        src, row.size, row.offset, old)
                    rows[key] = Row(row.value, len(line), position)
                    block.append(line)
                    buffered += len(line)
                    position += len(line)
                    if buffered >= COPY_BLOCK:
                        self._pwrite(dst, b"".join(block), position - buffered)
                        block, buffered = [], 0
            if block:
                self._pwrite(dst, b"".join(block), position - buffered)
            self._sync(dst)
        finally:
            os.close(src)
            os.close(dst)
        meta.ebytes = position
        table.egen, table.upto, table.live = meta.egen, position, position
        return meta

    @os_errors
    def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        def op(d: Path, current: Meta | None) -> list[bool]:
            meta, _ = self._live_or_fresh(d, ns, sid, current, options)
            with self._stripe(ns, sid):
                table = self._table(d, meta) if meta.ebytes else EntryTable(meta.uid, meta.egen)
                try:
                    written: list[bool] = []
                    lines: list[bytes] = []
                    puts: list[tuple[str, str, bytes]] = []
                    for entry in entries:
                        value = bytes(entry.value)
                        if if_absent and entry.key in table.kinds.get(entry.kind, {}):
                            written.append(False)
                            continue
                        line = _line(entry.kind, entry.key, value)
                        table.apply(entry.kind, entry.key, Row(value, len(line), -1))  # offset set once written
                        lines.append(line)
                        puts.append((entry.kind, entry.key, value))
                        written.append(True)
                    if lines:
                        meta = self._write_entries(d, meta, lines, puts, table)
                    self._touch(meta, options)
                    self._commit(d, meta)
                except BaseException:
                    self._forget_entries(ns, sid)  # the cached table may be ahead of what was committed
                    raise
            self._sweep(d, meta)
            return written

        return self._write(ns, sid, True, op, [])

    def _rewrite_entries(self, ns: str, sid: str, d: Path, meta: Meta, changes: Sequence[Any]) -> int:
        """The entry part of Store.rewrite, with the session's lock held: each value still as read is replaced."""
        if not meta.ebytes:
            return 0
        with self._stripe(ns, sid):
            table = self._table(d, meta)
            values = _Values(d / meta.entries_file)
            try:
                lines: list[bytes] = []
                puts: list[tuple[str, str, bytes]] = []
                for change in changes:
                    row = table.kinds.get(change.kind, {}).get(change.key)
                    if row is None or values.get(row) != bytes(change.old):
                        continue
                    value = bytes(change.new)
                    line = _line(change.kind, change.key, value)
                    table.apply(change.kind, change.key, Row(value, len(line), -1))
                    lines.append(line)
                    puts.append((change.kind, change.key, value))
            finally:
                values.close()
            try:
                if lines:  # then compacted: the replaced lines must not stay in the log (rekey of clear data)
                    meta = self._compact(d, self._write_entries(d, meta, lines, puts, table), table)
                    self._commit(d, meta)
            except BaseException:
                self._forget_entries(ns, sid)
                raise
        if lines:
            self._sweep(d, meta)
        return len(lines)

    def _read_table(self, ns: str, sid: str, pick: Callable[[EntryTable, _Values], T], missing: T) -> T:
        def op(d: Path, meta: Meta, fd: int) -> T:
            if not meta.ebytes:
                return missing
            with self._stripe(ns, sid):
                values = _Values(d / meta.entries_file)
                try:
                    return pick(self._table(d, meta), values)
                finally:
                    values.close()

        return self._read(ns, sid, op, missing, file=False)

    @os_errors
    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        def pick(table: EntryTable, values: _Values) -> dict[str, bytes]:
            rows = table.kinds.get(kind, {})
            return {k: values.get(rows[k]) for k in keys if k in rows}

        return self._read_table(ns, sid, pick, {})

    @os_errors
    def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        def pick(table: EntryTable, values: _Values) -> list[tuple[str, bytes]]:
            order = table.keys(kind)
            lo = 0 if start is None else bisect.bisect_left(order, start)
            hi = len(order) if stop is None else bisect.bisect_left(order, stop)
            chosen = order[lo:hi][::-1] if reverse else order[lo:hi]
            if limit is not None:
                chosen = chosen[:limit]
            rows = table.kinds.get(kind, {})
            return [(k, b"" if keys_only else values.get(rows[k])) for k in chosen]

        return self._read_table(ns, sid, pick, [])

    @os_errors
    def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        def op(d: Path, meta: Meta | None) -> int:
            if meta is None or not self._alive(meta) or not meta.ebytes:
                return 0
            with self._stripe(ns, sid):
                table = self._table(d, meta)
                rows = table.kinds.get(kind, {})
                doomed = [k for k in dict.fromkeys(keys) if k in rows] if keys is not None else [
                    k for k in table.keys(kind) if in_range(k, start, stop)]
                if not doomed:
                    return 0
                lines = [_line(kind, k, None) for k in doomed]
                try:
                    for k in doomed:
                        table.apply(kind, k, None)
                    meta = self._write_entries(d, meta, lines, [], table)
                    self._commit(d, meta)
                except BaseException:
                    self._forget_entries(ns, sid)
                    raise
            self._sweep(d, meta)
            return len(doomed)

        return self._write(ns, sid, False, op, 0)
