"""Entries on the file store: one append-only log per session, ``entries.<egen>.jsonl``.

Each line is a put, ``{"k": kind, "key": key, "t": text}`` (``"b"``: base64 for a value that is not UTF-8 text),
or a delete, ``{"k": kind, "key": key, "del": 1}``. ``meta.jsonl`` records the committed length (``ebytes``), so
readers (lock-free) see whole batches only and a crashed writer's tail is ignored, then truncated by the next
writer. Each process keeps the decoded table per session (a bounded LRU), caught up from the bytes it has not read
yet. When the log is mostly dead lines it is compacted into a new generation, committed through ``meta.jsonl``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from memvault.backends.files.format import COMPACT_MIN, Meta, os_errors
from memvault.contract import AppendOptions, Entry, in_range

logger = logging.getLogger("memvault.files")
T = TypeVar("T")
CACHE_ENTRY_SESSIONS = 64
CACHE_ENTRIES = 1_000_000


@dataclass
class EntryTable:
    """A session's entries as far as byte ``upto`` of generation ``egen``: kind -> key -> (value, line size)."""

    uid: str
    egen: int
    upto: int = 0
    kinds: dict[str, dict[str, tuple[bytes, int]]] = field(default_factory=dict)
    live: int = 0  # bytes of the lines that hold current values
    _sorted: dict[str, list[str]] = field(default_factory=dict)

    def apply(self, kind: str, key: str, value: bytes | None, size: int) -> None:
        table = self.kinds.setdefault(kind, {})
        old = table.pop(key, None)
        if old is not None:
            self.live -= old[1]
        order = self._sorted.get(kind)
        if value is None:
            if old is not None and order is not None:
                del order[bisect.bisect_left(order, key)]
            return
        table[key] = (value, size)
        self.live += size
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

    def _entry_cache(self) -> OrderedDict[tuple[str, str], EntryTable]:
        cache: OrderedDict[tuple[str, str], EntryTable] | None = getattr(self, "_entry_tables", None)
        if cache is None:
            cache = self._entry_tables = OrderedDict()  # type: ignore[assignment]
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
                    try:
                        kind, entry_key, value = _parse(line)
                    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
                        logger.warning("%s: skipping the damaged entry line at byte %d (%s)", path, offset, exc)
                        continue
                    table.apply(kind, entry_key, value, len(line) + 1)
            finally:
                os.close(fd)
            table.upto = meta.ebytes
        with self._entry_lock:
            cache[key] = table
            cache.move_to_end(key)
            total = sum(t.count() for t in cache.values())
            while len(cache) > 1 and (len(cache) > CACHE_ENTRY_SESSIONS or total > CACHE_ENTRIES):
                _, old = cache.popitem(last=False)
                total -= old.count()
        return table

    def _forget_entries(self, ns: str, sid: str) -> None:
        cache = self._entry_cache()
        with self._entry_lock:
            cache.pop((ns, sid), None)

    def _stripe(self, ns: str, sid: str) -> threading.RLock:
        return self._stripes[hash((ns, sid)) % len(self._stripes)]

    def _write_entries(self, d: Path, meta: Meta, lines: list[bytes], table: EntryTable) -> Meta:
        """Append ``lines`` to the log (a new generation when it is empty) and compact it when mostly dead."""
        if meta.ebytes == 0:
            meta.egen += 1
            self._new_file(d, meta.entries_file)
            table.uid, table.egen, table.upto = meta.uid, meta.egen, 0
        path = d / meta.entries_file
        fd = os.open(path, os.O_RDWR)
        try:
            if os.fstat(fd).st_size > meta.ebytes:  # a writer died before committing: its bytes never counted
                os.ftruncate(fd, meta.ebytes)
            data = b"".join(lines)
            self._pwrite(fd, data, meta.ebytes)
            self._sync(fd)
        finally:
            os.close(fd)
        meta.ebytes += len(data)
        table.upto = meta.ebytes
        dead = meta.ebytes - table.live
        if dead >= COMPACT_MIN and dead > table.live:
            live = [_line(kind, key, value) for kind, rows in table.kinds.items() for key, (value, _) in rows.items()]
            meta.egen += 1
            self._new_file(d, meta.entries_file, b"".join(live))
            meta.ebytes = sum(len(x) for x in live)
            table.egen, table.upto, table.live = meta.egen, meta.ebytes, meta.ebytes
            for kind, rows in table.kinds.items():
                for key, (value, _) in list(rows.items()):
                    rows[key] = (value, len(_line(kind, key, value)))
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
                    written, lines = [], []
                    for entry in entries:
                        value = bytes(entry.value)
                        if if_absent and entry.key in table.kinds.get(entry.kind, {}):
                            written.append(False)
                            continue
                        line = _line(entry.kind, entry.key, value)
                        table.apply(entry.kind, entry.key, value, len(line))
                        lines.append(line)
                        written.append(True)
                    if lines:
                        meta = self._write_entries(d, meta, lines, table)
                    self._touch(meta, options)
                    self._commit(d, meta)
                except BaseException:
                    self._forget_entries(ns, sid)  # the cached table may be ahead of what was committed
                    raise
            self._sweep(d, meta)
            return written

        return self._write(ns, sid, True, op, [])  # type: ignore[no-any-return]

    def _read_table(self, ns: str, sid: str, pick: Callable[[EntryTable], T], missing: T) -> T:
        def op(d: Path, meta: Meta, fd: int) -> T:
            if not meta.ebytes:
                return missing
            with self._stripe(ns, sid):
                return pick(self._table(d, meta))

        return self._read(ns, sid, op, missing, file=False)  # type: ignore[no-any-return]

    @os_errors
    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        def pick(table: EntryTable) -> dict[str, bytes]:
            rows = table.kinds.get(kind, {})
            return {k: rows[k][0] for k in keys if k in rows}

        return self._read_table(ns, sid, pick, {})

    @os_errors
    def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        def pick(table: EntryTable) -> list[tuple[str, bytes]]:
            order = table.keys(kind)
            lo = 0 if start is None else bisect.bisect_left(order, start)
            hi = len(order) if stop is None else bisect.bisect_left(order, stop)
            chosen = order[lo:hi][::-1] if reverse else order[lo:hi]
            if limit is not None:
                chosen = chosen[:limit]
            rows = table.kinds.get(kind, {})
            return [(k, b"" if keys_only else rows[k][0]) for k in chosen]

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
                    for k, line in zip(doomed, lines, strict=True):
                        table.apply(kind, k, None, len(line))
                    meta = self._write_entries(d, meta, lines, table)
                    self._commit(d, meta)
                except BaseException:
                    self._forget_entries(ns, sid)
                    raise
            self._sweep(d, meta)
            return len(doomed)

        return self._write(ns, sid, False, op, 0)  # type: ignore[no-any-return]
