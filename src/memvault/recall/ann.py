"""An HNSW index (usearch) persisted next to the database, keyed by the vectors table's never-reused row id.

The file is a cache: if it is missing, unreadable, built for another model/dimension, or holds fewer keys than the
database, it is rebuilt or topped up from the vectors table, so deleting it is always safe. Saves go to a temporary
file and are renamed into place (atomic), and are batched: a crash loses at most the last few thousand additions,
which the next sync adds again.

Vectors are stored int8-quantised in the graph (about 4x less memory and a 3x faster build than float32); callers
ask for more candidates than they need and re-score them with the exact float32 vectors, so quantisation costs
candidates, not ranking precision. A gap larger than ``BACKGROUND_OVER`` (the first build, a deleted file) is filled
by a background thread; until it is done ``sync`` reports "not ready" and the caller scans exactly instead of
blocking for minutes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("memvault.recall")

Rows = Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]]  # min_key -> batches of (keys, vectors)

#: a sync that must add more vectors than this builds in a background thread (when the caller does not wait)
BACKGROUND_OVER = 20_000
#: additions kept in memory before the file is rewritten (the whole index is written each time)
SAVE_EVERY = 5_000
#: vectors per usearch add() call in a build (bounds how long a stop request waits)
ADD_CHUNK = 2_000
#: M=32 instead of usearch's 16: at 1M clustered synthetic vectors it raised re-scored recall@10 at ef 256 from 0.84
#: to 0.98 for a 22% longer build (docs/recall.md)
CONNECTIVITY = 32
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
#: the search breadth grows past 1M vectors (size / 4000, at most this); measured: ef 256 suffices up to 1M
MAX_EXPANSION_SEARCH = 1024


def expansion_for(size: int) -> int:
    """The search breadth (ef) for a graph of ``size`` vectors."""
    return int(min(MAX_EXPANSION_SEARCH, max(EXPANSION_SEARCH, size // 4000)))


class AnnIndex:
    """Cosine HNSW over (key, vector); ``sync`` adds keys above the indexed maximum, ``search`` returns top keys."""

    def __init__(self, path: Path, model_id: str, dimension: int, *, dtype: str = "i8") -> None:
        self.path = path
        self.meta_path = path.with_name(path.name + ".json")
        self.model_id = model_id
        self.dimension = dimension
        self.dtype = dtype
        self.max_key = 0
        self.size = 0
        self._index: Any = None
        self._lock = threading.Lock()
        self._builder: threading.Thread | None = None
        self._stopping = threading.Event()
        self._unsaved = 0
        self.last_build_s: float | None = None

    def _new(self) -> Any:
        return _usearch_index()(ndim=self.dimension, metric="cos", dtype=self.dtype, connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    def _load(self) -> None:
        index = self._new()
        try:
            meta = json.loads(self.meta_path.read_text())
            built = (meta.get("model"), meta.get("dim"), meta.get("dtype"), meta.get("connectivity"))
            if built != (self.model_id, self.dimension, self.dtype, CONNECTIVITY):
                raise ValueError("built for {} ({}-d {}, M={})".format(*built))
            index.load(str(self.path))
            self.max_key = int(meta["max_key"])
            self.size = len(index)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            if self.path.exists() or self.meta_path.exists():
                logger.warning("ANN index %s unusable (%s): rebuilding it", self.path, exc)
            index = self._new()
            self.max_key = 0
            self.size = 0
        self._index = index

    @property
    def building(self) -> bool:
        """True while a background thread builds the graph (searches then go to an exact scan)."""
        return self._builder is not None

    def sync(self, rows: Rows, expected: int, *, wait: bool = True) -> bool:
        """Add the vectors with keys above ``max_key`` (``expected`` = rows in the table). Starts over when the
        index holds far more keys than the table (deleted rows). Returns False while a background build runs."""
        with self._lock:
            builder = self._builder
        if builder is not None:
            if not wait:
                return False
            builder.join()
        with self._lock:
            if self._index is None:
                self._load()
            if self.size > expected * 1.25 + 100:
                self._index = self._new()
                self.max_key = self.size = 0
            if expected - self.size > BACKGROUND_OVER and not wait:
                index, self._index = self._index, None
                self._builder = threading.Thread(target=self._build, args=(index, rows, self.max_key),
                                                 name="memvault-ann-build", daemon=True)
                self._builder.start()
                return False
            added, self.max_key = _add(self._index, rows, self.max_key)
            self.size = len(self._index)
            self._unsaved += added
            if self._unsaved >= SAVE_EVERY or (added and not self.path.exists()):
                self._save()
            return True

    def stop(self) -> None:
        """Abandon a background build at its next chunk and join it (process exit)."""
        self._stopping.set()
        builder = self._builder
        if builder is not None and builder is not threading.current_thread():
            builder.join(60)

    def _build(self, index: Any, rows: Rows, max_key: int) -> None:
        started = time.perf_counter()
        try:
            added, max_key = _add(index, rows, max_key, self._stopping)
            if self._stopping.is_set():
                return
            with self._lock:
                self._index, self.max_key, self.size = index, max_key, len(index)
                self._save()
            self.last_build_s = time.perf_counter() - started
            logger.info("ANN index %s: %d vectors added in %.1f s", self.path, added, self.last_build_s)
        except Exception as exc:  # the caller keeps scanning exactly and retries on a later sync
            logger.warning("building ANN index %s failed: %s", self.path, exc)
        finally:
            with self._lock:
                self._builder = None

    def flush(self) -> None:
        """Write pending additions to the file."""
        with self._lock:
            if self._index is not None and self._unsaved:
                self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        self._index.save(str(tmp))
        os.replace(tmp, self.path)
        meta = {"model": self.model_id, "dim": self.dimension, "dtype": self.dtype, "connectivity": CONNECTIVITY,
                "max_key": self.max_key, "size": self.size}
        tmp_meta = self.meta_path.with_name(self.meta_path.name + f".tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, self.meta_path)
        self._unsaved = 0

    def search(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, approximate cosine similarities) of the ``count`` nearest vectors."""
        with self._lock:
            if self._index is None or self.size == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            self._index.expansion_search = expansion_for(self.size)
            matches = self._index.search(vector.astype(np.float32), min(count, self.size))
        keys = np.asarray(matches.keys, dtype=np.int64)
        return keys, 1.0 - np.asarray(matches.distances, dtype=np.float32)

    def drop(self) -> None:
        builder = self._builder
        if builder is not None:
            builder.join()
        with self._lock:
            self._index = None
            self.max_key = self.size = self._unsaved = 0
            for p in (self.path, self.meta_path):
                p.unlink(missing_ok=True)


def _usearch_index() -> Any:
    """usearch's Index class, imported after onnxruntime: importing onnxruntime once usearch is loaded crashes the
    process (segfault in onnxruntime's module init, usearch 2.26 / onnxruntime 1.31), and the default embedder
    imports onnxruntime lazily, possibly after the first large-scope query."""
    with contextlib.suppress(ImportError):  # a core dependency; without it only custom embedders are in use
        import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


def _add(index: Any, rows: Rows, max_key: int, stop: threading.Event | None = None) -> tuple[int, int]:
    added = 0
    for keys, vectors in rows(max_key):
        for i in range(0, len(keys), ADD_CHUNK):  # small chunks: a stop request waits for one chunk at most
            if stop is not None and stop.is_set():
                return added, max_key
            part = keys[i : i + ADD_CHUNK]
            index.add(part.astype(np.uint64), vectors[i : i + ADD_CHUNK].astype(np.float32))
            max_key = max(max_key, int(part.max()))
            added += len(part)
    return added, max_key
