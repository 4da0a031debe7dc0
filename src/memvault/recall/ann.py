"""An HNSW index (usearch) persisted next to the database, keyed by message primary key.

The file is a cache: if it is missing, unreadable, built for another model/dimension, or holds fewer keys than the
database, it is rebuilt or topped up from the vectors table, so deleting it is always safe. Saves go to a temporary
file and are renamed into place (atomic).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

logger = logging.getLogger("memvault.recall")

Rows = Callable[[int], Iterable[tuple[np.ndarray, np.ndarray]]]  # min_key -> batches of (keys, vectors)


class AnnIndex:
    """Cosine HNSW over (key, vector); ``sync`` adds keys above the indexed maximum, ``search`` returns top keys."""

    def __init__(self, path: Path, model_id: str, dimension: int) -> None:
        self.path = path
        self.meta_path = path.with_name(path.name + ".json")
        self.model_id = model_id
        self.dimension = dimension
        self.max_key = 0
        self.size = 0
        self._index = None
        self._lock = threading.Lock()
        self._dirty = 0

    def _new(self):
        from usearch.index import Index

        return Index(ndim=self.dimension, metric="cos", dtype="f32", connectivity=16, expansion_add=128,
                     expansion_search=256)

    def _load(self) -> None:
        index = self._new()
        try:
            meta = json.loads(self.meta_path.read_text())
            if meta.get("model") != self.model_id or meta.get("dim") != self.dimension:
                raise ValueError(f"built for {meta.get('model')} ({meta.get('dim')}-d)")
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

    def sync(self, rows: Rows, expected: int) -> None:
        """Add vectors with keys above ``max_key``; rebuild when the index holds more than the table (deletions)."""
        with self._lock:
            if self._index is None:
                self._load()
            if self.size > expected * 1.25 + 100:
                self._index = self._new()
                self.max_key = self.size = 0
            added = 0
            for keys, vectors in rows(self.max_key):
                if len(keys):
                    self._index.add(keys.astype(np.uint64), vectors.astype(np.float32))
                    self.max_key = max(self.max_key, int(keys.max()))
                    added += len(keys)
            self.size = len(self._index)
            if added:
                self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        self._index.save(str(tmp))
        os.replace(tmp, self.path)
        meta = {"model": self.model_id, "dim": self.dimension, "max_key": self.max_key, "size": self.size}
        tmp_meta = self.meta_path.with_name(self.meta_path.name + f".tmp{os.getpid()}")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, self.meta_path)

    def search(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, cosine similarities) of the ``count`` nearest vectors."""
        with self._lock:
            if self._index is None or self.size == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            matches = self._index.search(vector.astype(np.float32), min(count, self.size))
        keys = np.asarray(matches.keys, dtype=np.int64)
        return keys, 1.0 - np.asarray(matches.distances, dtype=np.float32)

    def drop(self) -> None:
        with self._lock:
            self._index = None
            self.max_key = self.size = 0
            for p in (self.path, self.meta_path):
                p.unlink(missing_ok=True)
