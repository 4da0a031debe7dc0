"""PostgreSQL-native recall (when pgvector is installed): a ``vector(d)`` table with an HNSW cosine index next to
``messages``, and the backend's own ``tsvector`` column (GIN).

Two search paths, both ending in the same :func:`memvault.recall.rank.rank` as every engine:

- **cached** (scopes up to :data:`CACHED_SCOPE` messages: a session, a user's sessions): each session's messages,
  vectors and BM25 postings of ``[date] speaker: text`` are cached in process and ranked over the whole scope
  exactly like the SQLite and in-process engines (on LoCoMo, ``ts_rank`` over top-N candidates lost 0.085 R@10 to
  this: docs/recall.md). A cached session is brought up to date by one statement that returns only the messages
  appended since (with their vectors) plus the session row, so a turn of a growing conversation does not re-read it.
- **indexed** (larger scopes): one statement returns the HNSW top-N and the GIN ``ts_rank`` top-N of the whole table,
  filtered to the scope, with their adjacent turns; z-score fusion and neighbour smoothing over those candidates.

Vectors live in ``recall_vectors_<d>`` (one table per dimension, so the HNSW index has a fixed type) keyed by the
message's (namespace, session_id, seq) with ``ON DELETE CASCADE``: deleting, trimming or replacing messages removes
their vectors in the same transaction.

Catch-up: before a query every message of the scope must have a vector (another process may have written it, or
recall was not in use then). Per session the engine remembers ``hi``, the newest seq of a snapshot in which every
message had a vector, with that message's id and the session's ``created_at``; the next check looks only at
``seq > hi``. Seqs of a session only grow and are committed in order (writers lock the session row), so that is
complete as long as the session is the same incarnation: a different ``created_at`` or another message (or none) at
seq ``hi`` means it was deleted and re-created, and the whole session is checked again.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import psycopg.errors

from memvault.errors import EmbeddingModelMismatch
from memvault.model import Message, SessionInfo, decode_body, from_epoch
from memvault.recall.embedders import CachedEmbedder
from memvault.recall.filters import RecallFilter
from memvault.recall.indexer import Work
from memvault.recall.keyword import KeywordSegment
from memvault.recall.rank import rank
from memvault.recall.search import search_segments
from memvault.recall.segments import Segment
from memvault.recall.text import STOP_WORDS, index_text
from memvault.recall.types import Hit, IndexStatus, SearchOptions

logger = logging.getLogger("memvault.recall")

BATCH = 256
#: scopes up to this many messages are ranked in process over cached sessions; larger ones search the indexes
CACHED_SCOPE = 20_000
#: cached messages kept per engine (least recently used sessions are dropped first)
CACHE_MESSAGES = 200_000
#: sessions whose catch-up state is remembered (forgetting one costs one full check of it later)
KNOWN_SESSIONS = 1_000_000
#: the indexed path asks HNSW for more rows than ``hnsw.ef_search`` (40) gives in one pass
SEARCH_SETTINGS = "SET LOCAL hnsw.iterative_scan = relaxed_order"
_PIPELINE = psycopg.Pipeline.is_supported()  # libpq >= 14
_WORD = re.compile(r"\w+", re.UNICODE)


def _vec(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


def _unpack(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    """``vector_send`` outputs (int16 dim, int16 unused, float4 big-endian x dim) -> float32 [n, dim]."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=">f4").reshape(len(blobs), dim + 1)
    return raw[:, 1:].astype(np.float32)


def tsquery_text(query: str) -> str | None:
    """``w1 | w2 | ...`` from the query's words (\\w+ only, so no tsquery syntax can get in)."""
    words = [w for w in dict.fromkeys(_WORD.findall(query.lower())) if w not in STOP_WORDS and "_" not in w]
    return " | ".join(words) if words else None


class _Rows:
    """A growable float32 matrix shared by successive snapshots of one session: a snapshot is a view of the first
    ``n`` rows, and appending writes past every existing view, so searches running on older snapshots are never
    disturbed and a turn does not copy the session's vectors."""

    __slots__ = ("buf", "n")

    def __init__(self, vectors: np.ndarray) -> None:
        self.buf = np.empty((max(64, 2 * len(vectors)), vectors.shape[1]), dtype=np.float32)
        self.buf[: len(vectors)] = vectors
        self.n = len(vectors)


@dataclass
class _Known:
    """What the engine knows of one session (see the module doc)."""

    stamp: tuple[int, int, float]  # (last_seq, message_count, created_at) of the snapshot, as in SessionInfo
    created: float  # created_at as stored (epoch): the incarnation
    hi: int  # every message with seq <= hi had a vector in that snapshot (0: none checked)
    hi_id: str | None  # the id of the message at seq hi
    segment: Segment | None = None  # cached path: the session's messages, vectors, postings (seq <= hi)
    rows: _Rows | None = None


def _stamp(info: SessionInfo) -> tuple[int, int, float]:
    return (info.last_seq, info.message_count, info.created_at.timestamp())


class PostgresEngine:
    """Recall on PostgreSQL + pgvector."""

    name = "postgres"

    def __init__(self, store: Any, embedder: CachedEmbedder) -> None:
        self.store = store
        self.embedder = embedder
        self.dim = embedder.dimension
        self.table = f"recall_vectors_{self.dim}"
        store.migrate(f"recall_{self.dim}", [
            f"""
            CREATE TABLE {{schema}}.{self.table} (
                namespace  text COLLATE "C" NOT NULL,
                session_id text COLLATE "C" NOT NULL,
                seq        bigint NOT NULL,
                model      text NOT NULL,
                embedding  vector({self.dim}) NOT NULL,
                PRIMARY KEY (namespace, session_id, seq),
                FOREIGN KEY (namespace, session_id, seq) REFERENCES {{schema}}.messages (namespace, session_id, seq)
                    ON DELETE CASCADE
            );
            CREATE INDEX {self.table}_hnsw ON {{schema}}.{self.table} USING hnsw (embedding vector_cosine_ops);
            CREATE INDEX {self.table}_model ON {{schema}}.{self.table} (model);
            """
        ])
        self.qualified = f'"{store.schema}".{self.table}'
        self.messages = f'"{store.schema}".messages'
        self.sessions = f'"{store.schema}".sessions'
        self._checked_model = False
        self._known: OrderedDict[tuple[str, str], _Known] = OrderedDict()
        self._cached = 0  # messages held by cached segments
        self._stack: tuple[tuple[int, ...], list[Segment], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._lock = threading.Lock()

    # -- indexing ------------------------------------------------------------------------------------------------
    def index(self, work: Sequence[Work]) -> None:
        """Background step: embed the written messages that have no vector yet (looked up by seq: O(batch))."""
        by_session: dict[tuple[str, str], list[int]] = {}
        for ns, sid, messages in work:
            by_session.setdefault((ns, sid), []).extend(m.seq for m in messages if m.seq is not None)
        if not self._checked_model:  # never store this model's vectors next to another model's
            with self.store.connection() as conn:
                self._check_model(conn)
        for (ns, sid), seqs in by_session.items():
            if not seqs:
                continue
            with self.store.connection() as conn:
                rows = conn.execute(
                    f"SELECT m.seq, m.id, m.body FROM {self.messages} m {self._vector_of('m.session_id', '1 AS x')} "
                    "WHERE m.namespace = %(ns)s AND m.session_id = %(sid)s AND m.seq >= %(lo)s AND m.seq <= %(hi)s "
                    "AND e.x IS NULL ORDER BY m.seq",  # a primary-key range in key order: see _sync_sql
                    {"ns": ns, "sid": sid, "lo": min(seqs), "hi": max(seqs)},
                ).fetchall()
            wanted = set(seqs)
            self._embed(ns, [(sid, seq, mid, body) for seq, mid, body in rows if seq in wanted])

    def _embed(self, ns: str, rows: Sequence[tuple[str, int, str, str]]) -> dict[tuple[str, int], np.ndarray]:
        """Embed and store ``(sid, seq, id, body)`` rows; a row whose message is gone (or is another message now)
        is skipped. Returns the vectors by (sid, seq)."""
        out: dict[tuple[str, int], np.ndarray] = {}
        for start in range(0, len(rows), BATCH):
            part = rows[start : start + BATCH]
            messages = [decode_body(body, session_id=sid, seq=seq) for sid, seq, _, body in part]
            vectors = self.embedder.embed([index_text(m) for m in messages])
            params = {"ns": ns, "model": self.embedder.model_id, "sids": [r[0] for r in part],
                      "seqs": [r[1] for r in part], "ids": [r[2] for r in part], "embs": [_vec(v) for v in vectors]}
            sql = (
                f"INSERT INTO {self.qualified} (namespace, session_id, seq, model, embedding) "
                "SELECT %(ns)s, x.sid, x.seq, %(model)s, x.emb::vector "
                "FROM unnest(%(sids)s::text[], %(seqs)s::bigint[], %(ids)s::text[], %(embs)s::text[]) "
                f"AS x(sid, seq, id, emb) WHERE EXISTS (SELECT 1 FROM {self.messages} m WHERE m.namespace = %(ns)s "
                "AND m.session_id = x.sid AND m.seq = x.seq AND m.id = x.id) ON CONFLICT DO NOTHING"
            )
            for attempt in (1, 2):
                try:
                    with self.store.transaction() as conn:
                        conn.execute(sql, params)
                    break
                except psycopg.errors.ForeignKeyViolation:  # a message deleted between the check and the insert
                    if attempt == 2:
                        raise
            for (sid, seq, _, _), v in zip(part, vectors, strict=True):
                out[(sid, seq)] = v
        return out

    def catch_up(self, ns: str, sids: Sequence[str]) -> int:
        """Embed the messages of these sessions that have no vector yet (checking each session whole); returns how
        many were embedded."""
        with self.store.connection() as conn:
            rows = conn.execute(
                f"SELECT m.session_id, m.seq, m.id, m.body FROM {self.messages} m WHERE m.namespace = %s "
                f"AND m.session_id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM {self.qualified} v "
                "WHERE v.namespace = m.namespace AND v.session_id = m.session_id AND v.seq = m.seq)",
                (ns, list(sids)),
            ).fetchall()
        self._embed(ns, rows)
        return len(rows)

    def forget(self, ns: str, sid: str) -> None:
        """Vectors go with their messages (ON DELETE CASCADE); only what this process knows is dropped."""
        with self._lock:
            self._drop((ns, sid))

    def _drop(self, key: tuple[str, str]) -> None:
        known = self._known.pop(key, None)
        if known is not None and known.segment is not None:
            self._cached -= len(known.segment)

    def status(self, backlog: int) -> IndexStatus:
        with self.store.connection() as conn:
            indexed = conn.execute(f"SELECT count(*) FROM {self.qualified}").fetchone()[0]
        return IndexStatus(indexed=int(indexed), backlog=backlog, model_id=self.embedder.model_id)

    def reindex(self, infos: Sequence[SessionInfo], progress: Any) -> int:
        total = sum(i.message_count for i in infos)
        with self.store.transaction() as conn:
            for table in self._tables(conn):
                conn.execute(f'DELETE FROM "{self.store.schema}".{table} WHERE model <> %s', (self.embedder.model_id,))
        self._checked_model = False
        with self._lock:
            self._known.clear()
            self._cached = 0
            self._stack = None
        done = 0
        for info in infos:
            self.catch_up(info.namespace, [info.id])
            done += info.message_count
            if progress is not None:
                progress(done, total)
        return done

    def close(self) -> None:
        with self._lock:
            self._known.clear()
            self._cached = 0
            self._stack = None

    # -- catch-up and the cache ----------------------------------------------------------------------------------
    def _sync(self, infos: Sequence[SessionInfo], cache: bool) -> dict[tuple[str, str], Segment | None]:
        """Make sure every message of ``infos`` has a vector; with ``cache``, also return each session's cached
        segment (None: the session is gone). Sessions unchanged since they were last seen cost nothing."""
        out: dict[tuple[str, str], Segment | None] = {}
        stale: dict[str, list[SessionInfo]] = {}
        with self._lock:
            for info in infos:
                key = (info.namespace, info.id)
                known = self._known.get(key)
                if known is not None and known.stamp == _stamp(info) and (not cache or known.segment is not None):
                    self._known.move_to_end(key)
                    out[key] = known.segment
                else:
                    stale.setdefault(info.namespace, []).append(info)
        for ns, group in stale.items():  # written since, by this or another process, or never seen
            redo = self._sync_namespace(ns, group, cache, out, whole=False)
            if redo:  # deleted and re-created, or changed other than by appends: check those sessions whole
                self._sync_namespace(ns, redo, cache, out, whole=True)
        if cache:
            self._evict(keep=set(out))
        return out

    def _sync_namespace(self, ns: str, infos: Sequence[SessionInfo], cache: bool,
                        out: dict[tuple[str, str], Segment | None], *, whole: bool) -> list[SessionInfo]:
        """One statement for ``infos``: each session's row, its newest message, the message at its remembered ``hi``
        (the incarnation check) and its messages after ``hi`` (all of them with their vectors when caching, else only
        those without a vector). Returns the sessions that must be checked whole."""
        with self._lock:
            known = [self._known.get((ns, info.id)) for info in infos]
        his = [0 if whole or k is None or (cache and k.segment is None) else k.hi for k in known]
        with self.store.connection() as conn:
            rows = conn.execute(self._sync_sql(), {
                "ns": ns, "sids": [info.id for info in infos], "his": his, "cache": cache,
            }).fetchall()
        by_ord: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_ord.setdefault(int(row[0]), []).append(row)
        redo: list[SessionInfo] = []
        missing: list[tuple[str, int, str, str]] = []
        fresh: list[tuple[SessionInfo, _Known | None, int, tuple[Any, ...], list[tuple[Any, ...]]]] = []
        for i, (info, old, hi) in enumerate(zip(infos, known, his, strict=True)):
            group = by_ord.get(i + 1)
            key = (ns, info.id)
            if not group:  # the session is gone
                with self._lock:
                    self._drop(key)
                out[key] = None
                continue
            head = group[0][1:6]  # created, last_seq, message_count, newest seq, newest id
            new = [r[6:] for r in group if r[6] is not None]  # (seq, id, body, vector)
            at_hi = new.pop(0)[1] if hi and new and new[0][0] == hi else None  # the id of the message at hi
            if hi and old is not None and (head[0] != old.created or at_hi != old.hi_id or (
                    cache and old.segment is not None and len(old.segment) + len(new) != head[2])):
                redo.append(info)
                continue
            missing.extend((info.id, seq, mid, body) for seq, mid, body, blob in new if blob is None)
            fresh.append((info, old if hi else None, hi, head, new))
        vectors = self._embed(ns, missing) if missing else {}
        for info, old, _hi, head, new in fresh:
            created, last_seq, count, top_seq, top_id = head
            key = (ns, info.id)
            state = _Known((int(last_seq), int(count), from_epoch(created).timestamp()),
                           float(created), int(top_seq or 0), top_id)
            if cache:
                self._extend(state, old, info, new, vectors)
                out[key] = state.segment
            with self._lock:
                self._drop(key)
                self._known[key] = state
                if state.segment is not None:
                    self._cached += len(state.segment)
                while len(self._known) > KNOWN_SESSIONS:
                    self._drop(next(iter(self._known)))
        return redo

    def _extend(self, state: _Known, old: _Known | None, info: SessionInfo, new: Sequence[tuple[Any, ...]],
                embedded: dict[tuple[str, int], np.ndarray]) -> None:
        """``state.segment`` = the old segment (if any) + the ``new`` rows (seq, id, body, vector or None)."""
        messages = [decode_body(body, session_id=info.id, seq=seq) for seq, _, body, _ in new]
        blobs = [blob for *_, blob in new if blob is not None]
        stored = iter(_unpack(blobs, self.dim))
        added = np.zeros((len(new), self.dim), dtype=np.float32)
        for j, (seq, _, _, blob) in enumerate(new):
            vector = next(stored) if blob is not None else embedded.get((info.id, seq))
            if vector is not None:
                added[j] = vector
        texts = [index_text(m) for m in messages]
        segment = Segment(info.namespace, info.id)
        base = old.segment if old is not None else None
        with self._lock:
            rows = old.rows if old is not None else None
            if base is not None and rows is not None and rows.n == len(base) and rows.n + len(new) <= len(rows.buf):
                rows.buf[rows.n : rows.n + len(new)] = added  # past every existing view: in place
                rows.n += len(new)
            else:
                prior = base.vectors if base is not None and base.vectors is not None else added[:0]
                rows = _Rows(np.vstack([prior, added]))
        segment.messages = (base.messages if base is not None else []) + messages
        segment.vectors = rows.buf[: len(segment.messages)]
        segment.keyword = base.keyword.extended(texts) if base is not None else KeywordSegment()
        if base is None:
            segment.keyword.add(texts)
        state.segment, state.rows = segment, rows

    def _evict(self, keep: set[tuple[str, str]]) -> None:
        with self._lock:
            for key, known in list(self._known.items()):  # oldest first
                if self._cached <= CACHE_MESSAGES:
                    return
                if known.segment is not None and key not in keep:
                    self._cached -= len(known.segment)
                    known.segment = known.rows = None

    def _vector_of(self, sid: str, column: str) -> str:
        """A per-row primary-key lookup of message ``m``'s vector as ``e.x`` (a plain join or NOT EXISTS lets the
        planner hash the namespace's whole vector table instead: O(namespace) for a few new rows)."""
        return (f"LEFT JOIN LATERAL (SELECT {column} FROM {self.qualified} v WHERE v.namespace = %(ns)s "
                f"AND v.session_id = {sid} AND v.seq = m.seq LIMIT 1) e ON true")

    def _sync_sql(self) -> str:
        """Per session (``w``): its row, its newest message, and its messages from ``hi`` on (the one at ``hi``
        first: the incarnation check). Every lookup is a primary-key range in key order: with plain equalities
        (``seq = ANY(..)``, ``seq = hi``) a planner without statistics (a freshly filled table) took the
        ``(namespace, session_id, id)`` index and walked the whole session."""
        vector = "CASE WHEN %(cache)s THEN vector_send(v.embedding) ELSE ''::bytea END AS x"
        return (
            "SELECT w.ord, s.created_at, s.last_seq, s.message_count, t.seq, t.id, m.seq, m.id, m.body, m.x "
            "FROM unnest(%(sids)s::text[], %(his)s::bigint[]) WITH ORDINALITY AS w(sid, hi, ord) "
            f"JOIN LATERAL (SELECT s.created_at, s.last_seq, s.message_count FROM {self.sessions} s "
            "WHERE s.namespace = %(ns)s AND s.id = w.sid ORDER BY s.namespace, s.id LIMIT 1) s ON true "
            f"LEFT JOIN LATERAL (SELECT h.seq, h.id FROM {self.messages} h WHERE h.namespace = %(ns)s "
            "AND h.session_id = w.sid ORDER BY h.seq DESC LIMIT 1) t ON true "
            "LEFT JOIN LATERAL (SELECT m.seq, m.id, CASE WHEN %(cache)s OR e.x IS NULL THEN m.body END AS body, "
            f"CASE WHEN %(cache)s THEN e.x END AS x FROM {self.messages} m {self._vector_of('w.sid', vector)} "
            "WHERE m.namespace = %(ns)s AND m.session_id = w.sid AND m.seq >= w.hi "
            "AND (m.seq = w.hi OR %(cache)s OR e.x IS NULL) ORDER BY m.seq) m ON true ORDER BY w.ord, m.seq"
        )

    # -- search --------------------------------------------------------------------------------------------------
    def _check_model(self, conn: Any) -> None:
        if self._checked_model:
            return
        row = None
        for table in self._tables(conn):  # other dimensions live in other tables
            row = conn.execute(f'SELECT model FROM "{self.store.schema}".{table} WHERE model <> %s LIMIT 1',
                               (self.embedder.model_id,)).fetchone()
            if row is not None:
                break
        if row is not None:
            raise EmbeddingModelMismatch(
                f"schema {self.store.schema!r} holds vectors of embedding model {row[0]!r} but this Memory embeds "
                f"with {self.embedder.model_id!r}; run mem.reindex() (CLI: memvault reindex) to re-embed"
            )
        self._checked_model = True

    def _tables(self, conn: Any) -> list[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name ~ '^recall_vectors_[0-9]+$'", (self.store.schema,)).fetchall()
        return [r[0] for r in rows]

    def search(
        self, infos: Sequence[SessionInfo], query: str, k: int, options: SearchOptions, rfilter: RecallFilter
    ) -> list[Hit]:
        if not self._checked_model:
            with self.store.connection() as conn:
                self._check_model(conn)
        if sum(i.message_count for i in infos) <= CACHED_SCOPE:
            by_key = self._sync(infos, cache=True)
            segments = [s for info in infos if (s := by_key.get((info.namespace, info.id))) is not None and len(s)]
            if not segments:
                return []
            return self._search_cached(segments, query, k, options, rfilter)
        self._sync(infos, cache=False)
        return self._search_indexed(infos, query, k, options, rfilter)

    def _search_cached(
        self, segments: Sequence[Segment], query: str, k: int, options: SearchOptions, rfilter: RecallFilter
    ) -> list[Hit]:
        """Rank the whole scope in process, exactly like the other engines, over a stacked matrix kept for the last
        multi-session scope."""
        return search_segments(segments, query, k, options, rfilter, self.embedder, now=self.store.clock(),
                               stacked=self._stacked(segments))

    def _stacked(self, segments: Sequence[Segment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectors, session index and position within the session of every message of ``segments``."""
        if len(segments) == 1:
            n = len(segments[0])
            return segments[0].matrix, np.zeros(n, dtype=np.int64), np.arange(n)
        key = tuple(id(s) for s in segments)  # snapshots are immutable; the entry keeps them alive (ids stay unique)
        with self._lock:
            if self._stack is not None and self._stack[0] == key:
                return self._stack[2]
        arrays = (np.vstack([s.matrix for s in segments]),
                  np.repeat(np.arange(len(segments)), [len(s) for s in segments]),
                  np.concatenate([np.arange(len(s)) for s in segments]))
        with self._lock:
            self._stack = (key, list(segments), arrays)
        return arrays

    def _search_indexed(
        self, infos: Sequence[SessionInfo], query: str, k: int, options: SearchOptions, rfilter: RecallFilter
    ) -> list[Hit]:
        by_ns: dict[str, list[str]] = {}
        for info in infos:
            by_ns.setdefault(info.namespace, []).append(info.id)
        fetch = max(options.fetch_k, 5 * k) * (4 if not rfilter.empty else 1)
        q = self.embedder.embed_query(query)
        tsq = tsquery_text(query)
        rows: list[tuple[Any, ...]] = []
        for ns, sids in by_ns.items():
            # one round trip (pipelined), and the setting stays inside the transaction: a pooled connection (or a
            # pgbouncer in transaction mode) never carries it over to other work
            with self.store.connection() as conn, conn.pipeline() if _PIPELINE else contextlib.nullcontext():
                with conn.transaction():
                    conn.execute(SEARCH_SETTINGS)
                    cur = conn.execute(self._sql(options.mode, options.mmr is not None), {
                        "ns": ns, "sids": sids, "q": _vec(q), "tsq": tsq or "", "n": fetch, "wide_n": fetch * 4,
                        "cfg": self.store.fts_config,
                    })
                rows.extend(cur.fetchall())
        # bodies are decoded only for the hits (and for filters that need the message): ~300 candidates per query
        keys: list[tuple[str, str, int, str]] = []
        decoded: dict[int, Message] = {}
        dense: list[float] = []
        keyword: list[float] = []
        times: list[float] = []
        embeddings: list[bytes | None] = []
        segment: list[int] = []
        previous: tuple[str, str, int] | None = None
        for ns, sid, seq, d, kw, body, emb, created in rows:
            if not rfilter.empty:
                message = decode_body(body, session_id=sid, seq=seq)
                if not rfilter.accepts(message):
                    previous = None
                    continue
                decoded[len(keys)] = message
            adjacent = previous is not None and previous == (ns, sid, seq - 1)
            segment.append(segment[-1] if adjacent and segment else len(segment))
            previous = (ns, sid, seq)
            keys.append((ns, sid, seq, body))
            dense.append(np.nan if d is None else float(d))
            keyword.append(0.0 if kw is None else float(kw))
            times.append(created)
            embeddings.append(emb)
        if not keys:
            return []
        dense_arr = np.array(dense, dtype=np.float64)
        ages = None
        if options.recency_half_life:
            ages = self.store.clock() - np.array(times, dtype=np.float64)
        vectors = None
        if options.mmr is not None:
            vectors = np.stack([_unpack([e], self.dim)[0] if e else np.zeros(self.dim, np.float32)
                                for e in embeddings])
        ranked = rank(k, options, dense=None if options.mode == "keyword" else dense_arr,
                      keyword=None if options.mode == "dense" else np.array(keyword), ages=ages, vectors=vectors,
                      segment=np.array(segment))  # neighbours may win too, as on the other engines
        hits = []
        for r in ranked:
            ns, sid, seq, body = keys[r.index]
            message = decoded.get(r.index) or decode_body(body, session_id=sid, seq=seq)
            around: list[Message] = []
            if options.neighbors:
                window = self.store.read(ns, sid, start=max(0, seq - options.neighbors),
                                         stop=seq + options.neighbors + 1)
                around = [m for m in window if m.id != message.id]
            hits.append(Hit(message, r.score, r.signals, sid, ns, around))
        return hits

    def _sql(self, mode: str, mmr: bool = False) -> str:
        """The indexed path: search the HNSW and GIN indexes of the whole table first and filter to the scope after,
        instead of letting the planner scan the scope row by row (measured: 10x faster at 10K messages). Scores
        the index searches computed are carried over; only the other rows (adjacent turns, one signal's candidates
        for the other) are looked up, and only for the signals the mode uses."""
        dense = (
            "SELECT session_id, seq, dist FROM (SELECT v.namespace, v.session_id, v.seq, "
            f"v.embedding <=> %(q)s::vector AS dist FROM {self.qualified} v "
            "ORDER BY v.embedding <=> %(q)s::vector LIMIT %(wide_n)s) a "
            "WHERE a.namespace = %(ns)s AND a.session_id = ANY(%(sids)s) LIMIT %(n)s"
        )
        keyword = (
            "SELECT session_id, seq, s FROM (SELECT m.namespace, m.session_id, m.seq, "
            "ts_rank(m.search, to_tsquery(%(cfg)s::regconfig, %(tsq)s)) AS s "
            f"FROM {self.messages} m WHERE %(tsq)s <> '' AND m.search @@ to_tsquery(%(cfg)s::regconfig, %(tsq)s) "
            "OFFSET 0) a WHERE a.namespace = %(ns)s AND a.session_id = ANY(%(sids)s) ORDER BY s DESC LIMIT %(n)s"
        )
        vector = f"FROM {self.qualified} rv WHERE rv.namespace = %(ns)s AND rv.session_id = c.session_id AND rv.seq = c.seq"
        dense_score = f"1 - coalesce(d.dist, (SELECT rv.embedding <=> %(q)s::vector {vector}))"
        keyword_score = ("coalesce(k.s, CASE WHEN %(tsq)s <> '' THEN "
                         "ts_rank(m.search, to_tsquery(%(cfg)s::regconfig, %(tsq)s)) END)")
        if mode == "dense":
            keyword = "SELECT NULL::text AS session_id, NULL::bigint AS seq, NULL::real AS s WHERE false"
            keyword_score = "NULL::real"
        if mode == "keyword":
            dense = "SELECT NULL::text AS session_id, NULL::bigint AS seq, NULL::float8 AS dist WHERE false"
            dense_score = "NULL::float8"
        # candidates plus their adjacent turns (for neighbour smoothing)
        return (
            f"WITH d AS ({dense}), k AS ({keyword}), "
            "c0 AS (SELECT session_id, seq FROM d UNION SELECT session_id, seq FROM k), "
            "c AS (SELECT session_id, seq FROM c0 UNION SELECT session_id, seq - 1 FROM c0 "
            "UNION SELECT session_id, seq + 1 FROM c0) "
            f"SELECT %(ns)s, c.session_id, c.seq, {dense_score}, {keyword_score}, m.body, "
            f"{f'(SELECT vector_send(rv.embedding) {vector})' if mmr else 'NULL::bytea'}, m.created_at FROM c "
            f"JOIN {self.messages} m ON m.namespace = %(ns)s AND m.session_id = c.session_id AND m.seq = c.seq "
            "LEFT JOIN d ON d.session_id = c.session_id AND d.seq = c.seq "
            "LEFT JOIN k ON k.session_id = c.session_id AND k.seq = c.seq ORDER BY c.session_id, c.seq"
        )
