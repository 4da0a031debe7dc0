"""The id index: message id -> (seq, offset, length) per session, built by one scan and then caught up, kept in a
bounded LRU (idempotent appends need the session's ids)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from memvault.backends.files.format import CANONICAL, Meta, line_id, line_seq
from memvault.caching import LRUCache


@dataclass
class IdIndex:
    """Message id -> (seq, offset, length) of one session generation, as far as byte ``upto``."""

    uid: str
    gen: int
    upto: int
    ids: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    order: deque[tuple[int, str]] = field(default_factory=deque)  # (offset, id), file order

    def add(self, mid: str, seq: int, offset: int, length: int) -> None:
        self.ids[mid] = (seq, offset, length)
        self.order.append((offset, mid))

    def drop_before(self, head: int) -> None:
        while self.order and self.order[0][0] < head:
            _, mid = self.order.popleft()
            self.ids.pop(mid, None)


class IdIndexes:
    """The per-process id indexes of :class:`~.store.FileStore`."""

    _cache: LRUCache[tuple[str, str], IdIndex]
    _cache_lock: threading.Lock

    if TYPE_CHECKING:  # provided by the host class (FileStore, from FileIO)
        def _iter_lines(
            self, fd: int, lo: int, hi: int, path: Path, block: int = 16384
        ) -> Iterator[tuple[int, bytes]]: ...

    def _index(self, d: Path, meta: Meta, fd: int) -> IdIndex:
        """This process's id index of the session, caught up with ``meta`` (call with the session's stripe held)."""
        key = (meta.namespace, meta.id)
        with self._cache_lock:
            index = self._cache.get(key)
        if index is None or index.uid != meta.uid or index.gen != meta.gen or index.upto > meta.bytes:
            index = IdIndex(meta.uid, meta.gen, meta.head)
        index.drop_before(meta.head)
        index.upto = max(index.upto, meta.head)
        for mid, seq, offset, length in self._scan_ids(fd, index.upto, meta.bytes, d / meta.file):
            index.add(mid, seq, offset, length)
        index.upto = meta.bytes
        self._remember(key, index)
        return index

    def _scan_ids(self, fd: int, lo: int, hi: int, path: Path) -> Iterator[tuple[str, int, int, int]]:
        """(id, seq, offset, length) of every line in ``[lo, hi)``."""
        for offset, line in self._iter_lines(fd, lo, hi, path, block=1 << 20):
            match = CANONICAL.match(line)
            if match and match.group(2) is not None:
                yield match.group(2).decode("utf-8", "replace"), int(match.group(1)), offset, len(line) + 1
                continue
            seq, mid = line_seq(line), line_id(line)
            if seq is None or mid is None:  # damaged: reads skip it (and say so); its id is unknown
                continue
            yield mid, seq, offset, len(line) + 1

    def _remember(self, key: tuple[str, str], index: IdIndex) -> None:
        with self._cache_lock:
            self._cache[key] = index  # re-inserted after each catch-up: its size is counted again
