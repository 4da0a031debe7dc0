"""The in-process index of one session (a *segment*): its messages, vectors and keyword postings.

Works over the storage contract alone, so every backend has it. Vectors are persisted as records of kind
``recall.vec`` (key = message id, data = model id, content hash, base64 float32) in the session itself, so they
are written once, survive restarts, vanish with ``clear``/``delete_session``, and a model change is detected.
A segment is brought up to date from the session's ``last_seq``/``message_count`` before each use: messages appended
by other processes are read from the tail; deletions elsewhere trigger a rebuild.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memvault.contract import Store
from memvault.errors import EmbeddingModelMismatch
from memvault.model import Message, SessionInfo
from memvault.recall.embedders import CachedEmbedder, content_hash
from memvault.recall.keyword import KeywordSegment
from memvault.recall.text import index_text

logger = logging.getLogger("memvault.recall")

VEC_KIND = "recall.vec"
PAGE = 1000


def pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def unpack(data: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data), dtype="<f4").copy()


def mismatch(stored: str, current: str, where: str) -> EmbeddingModelMismatch:
    return EmbeddingModelMismatch(
        f"{where} holds vectors of embedding model {stored!r} but this Memory embeds with {current!r}; "
        "run mem.reindex() (CLI: memvault reindex) to re-embed, or open Memory with the original embedder"
    )


class Segment:
    """Messages of one session in seq order, with their vectors (n x d) and BM25 postings."""

    def __init__(self, ns: str, sid: str, *, context: bool = True) -> None:
        self.ns = ns
        self.sid = sid
        self.context = context
        self.messages: list[Message] = []
        self.vectors: np.ndarray | None = None
        self.keyword = KeywordSegment()
        self.last_seq = 0
        self.created: float | None = None
        self.lock = threading.RLock()
        self._times: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.messages)

    def text_of(self, message: Message) -> str:
        return index_text(message, context=self.context)

    @property
    def matrix(self) -> np.ndarray:
        """``vectors`` of a segment that holds messages (every add sets them; searches skip empty segments)."""
        assert self.vectors is not None, f"segment {self.ns!r}/{self.sid!r} holds no vectors"
        return self.vectors

    @property
    def times(self) -> np.ndarray:
        if self._times is None or len(self._times) != len(self.messages):
            self._times = np.array([m.created_at.timestamp() for m in self.messages], dtype=np.float64)
        return self._times

    def reset(self) -> None:
        self.messages = []
        self.vectors = None
        self.keyword = KeywordSegment()
        self.last_seq = 0
        self._times = None

    def sync(self, store: Store, info: SessionInfo | None, embedder: CachedEmbedder) -> bool:
        """Bring the segment up to date with the stored session; True if anything changed."""
        with self.lock:
            if info is None:
                changed = bool(self.messages)
                self.reset()
                return changed
            created = info.created_at.timestamp()
            if self.created is not None and created != self.created:  # deleted and re-created elsewhere
                self.reset()
            self.created = created
            if info.last_seq == self.last_seq and info.message_count == len(self.messages):
                return False
            fresh: list[Message] = []
            if info.last_seq > self.last_seq and len(self.messages) <= info.message_count:
                fresh = read_all(store, self.ns, self.sid, start=self.last_seq + 1)
            if len(self.messages) + len(fresh) != info.message_count or (
                fresh and fresh[0].seq is not None and fresh[0].seq <= self.last_seq
            ):
                self.reset()
                fresh = read_all(store, self.ns, self.sid)
            self.add(store, fresh, embedder)
            if len(self.messages) == info.message_count:
                self.last_seq = max(info.last_seq, self.last_seq)
            elif self.messages:
                self.last_seq = max(m.seq or 0 for m in self.messages)
            return True

    def add(self, store: Store, messages: Sequence[Message], embedder: CachedEmbedder) -> None:
        if not messages:
            return
        vectors = ensure_vectors(store, self.ns, self.sid, messages, [self.text_of(m) for m in messages], embedder)
        self.messages.extend(messages)
        if self.vectors is not None and len(self.vectors) and vectors.shape[1] != self.vectors.shape[1]:
            raise mismatch(f"{self.vectors.shape[1]}-d vectors", f"{vectors.shape[1]}-d vectors", f"session {self.sid!r}")
        self.vectors = vectors if self.vectors is None else np.vstack([self.vectors, vectors])
        self.keyword.add([self.text_of(m) for m in messages])
        self._times = None


def read_all(store: Store, ns: str, sid: str, start: int | None = None) -> list[Message]:
    out: list[Message] = []
    while True:
        page = store.read(ns, sid, start=start, limit=PAGE)
        out.extend(page)
        if len(page) < PAGE:
            return out
        start = (page[-1].seq or 0) + 1


def ensure_vectors(
    store: Store,
    ns: str,
    sid: str,
    messages: Sequence[Message],
    texts: Sequence[str],
    embedder: CachedEmbedder,
    *,
    persist: bool = True,
) -> np.ndarray:
    """Vectors of ``messages``: stored ones (checked against the model), else embedded in one batch and stored."""
    hashes = [content_hash(t) for t in texts]
    stored = dict(store.get_records(ns, sid, VEC_KIND, keys=[m.id for m in messages]))
    rows: list[np.ndarray | None] = [None] * len(messages)
    todo: list[int] = []
    for i, (message, h) in enumerate(zip(messages, hashes, strict=True)):
        record = stored.get(message.id)
        if record is not None and record.get("h") == h:
            if record.get("m") != embedder.model_id:
                raise mismatch(str(record.get("m")), embedder.model_id, f"session {sid!r} (namespace {ns!r})")
            rows[i] = unpack(record["v"])
            embedder.remember(h, rows[i])  # type: ignore[arg-type]
        else:
            todo.append(i)
    if todo:
        fresh = embedder.embed([texts[i] for i in todo])
        for i, vector in zip(todo, fresh, strict=True):
            rows[i] = vector
            if persist:
                data = {"m": embedder.model_id, "h": hashes[i], "v": pack(vector)}
                store.put_record(ns, sid, VEC_KIND, messages[i].id, data)
    if not rows:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    dims = {r.shape[0] for r in rows if r is not None}
    if len(dims) > 1:
        raise mismatch(f"vectors of {sorted(dims)} dimensions", embedder.model_id, f"session {sid!r}")
    return np.stack(rows).astype(np.float32, copy=False)  # type: ignore[arg-type]


class SegmentCache:
    """Segments of one Memory, keyed by (namespace, session id); a bounded number of messages is kept."""

    def __init__(self, embedder: CachedEmbedder, *, max_messages: int = 2_000_000) -> None:
        self.embedder = embedder
        self.max_messages = max_messages
        self._segments: dict[tuple[str, str], Segment] = {}
        self._lock = threading.Lock()

    def get(self, ns: str, sid: str, *, context: bool = True) -> Segment:
        with self._lock:
            segment = self._segments.get((ns, sid))
            if segment is None:
                segment = self._segments[(ns, sid)] = Segment(ns, sid, context=context)
            return segment

    def drop(self, ns: str, sid: str) -> None:
        with self._lock:
            self._segments.pop((ns, sid), None)

    def clear(self) -> None:
        with self._lock:
            self._segments.clear()

    def synced(self, store: Store, infos: Sequence[SessionInfo], *, context: bool = True,
               on_progress: Callable[[int], Any] | None = None) -> list[Segment]:
        out = []
        for info in infos:
            segment = self.get(info.namespace, info.id, context=context)
            segment.sync(store, info, self.embedder)
            out.append(segment)
            if on_progress is not None:
                on_progress(len(segment))
        self._evict(keep={(s.ns, s.sid) for s in out})
        return out

    def indexed(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._segments.values())

    def _evict(self, keep: set[tuple[str, str]]) -> None:
        with self._lock:
            total = sum(len(s) for s in self._segments.values())
            if total <= self.max_messages:
                return
            for key in list(self._segments):
                if total <= self.max_messages:
                    break
                if key not in keep:
                    total -= len(self._segments.pop(key))
