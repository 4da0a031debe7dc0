"""SQLite-native recall: FTS5 bm25() for keywords, float32 BLOB vectors, exact numpy search over a cached matrix
for scopes up to ``EXACT_MAX`` messages and an HNSW index (usearch, persisted next to the database) above that.

Tables (component ``recall`` in ``schema_versions``):

- ``recall_pending``: message pks still to embed (``fts = 0``: not in ``recall_fts`` yet either), filled by triggers
  on ``messages`` in the append's own transaction; its size is the backlog seen by every process. The background
  indexer (or a query) embeds them in batches into ``recall_vectors``.
- ``recall_fts``: FTS5 over ``[date] speaker: text`` of every message. Filled from ``recall_pending`` by the
  indexer and, before reading it, by every query that uses it, so keywords are never stale; not by the insert
  trigger (schema v4): tokenizing inside the append's transaction doubled the cost of every append.
- ``recall_vectors``: message pk -> model id, created_at, role, float32 vector, plus its own never-reused id (the
  HNSW key, schema v2).

Documents of collections (internal namespaces, see :func:`memvault.validation.internal_namespace`) are left to
the collection code.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from memvault.backends.sqlite import LIVE
from memvault.errors import EmbeddingModelMismatch
from memvault.model import Message, SessionInfo, decode_body, to_epoch
from memvault.recall.ann import AnnIndex
from memvault.recall.embedders import CachedEmbedder, similarities
from memvault.recall.filters import RecallFilter
from memvault.recall.indexer import Work
from memvault.recall.keyword import KeywordSegment, bm25_scores
from memvault.recall.rank import rank
from memvault.recall.text import STOP_WORDS, index_text
from memvault.recall.types import Hit, IndexStatus, SearchOptions

logger = logging.getLogger("memvault.recall")

EXACT_MAX = 50_000
BATCH = 256
CHUNK = 500

_MONTHS = " ".join(
    f"WHEN '{i:02d}' THEN '{name}'"
    for i, name in enumerate(
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
         "November", "December"], 1)
)
_TEXT = (
    "'[' || CAST(CAST(substr(json_extract({b}, '$.created_at'), 9, 2) AS INTEGER) AS TEXT) || ' ' || "
    f"(CASE substr(json_extract({{b}}, '$.created_at'), 6, 2) {_MONTHS} ELSE '' END) || ' ' || "
    "substr(json_extract({b}, '$.created_at'), 1, 4) || '] ' || "
    "coalesce(json_extract({b}, '$.name'), json_extract({b}, '$.role')) || ': ' || "
    "(CASE json_type({b}, '$.content') WHEN 'text' THEN json_extract({b}, '$.content') "
    "ELSE coalesce((SELECT group_concat(CASE WHEN type = 'text' THEN value "
    "WHEN type = 'object' AND json_type(value, '$.text') = 'text' THEN json_extract(value, '$.text') END, ' ') "
    "FROM json_each({b}, '$.content')), '') END)"
)
#: conversations only: internal namespaces (collections, ...) hold a U+001F separator no user namespace can hold
_CONVERSATION = "instr({ns}, char(31)) = 0"
_CONVERSATION_V1 = "{ns} NOT LIKE '%#collections' AND instr({ns}, char(31)) = 0"

#: a deleted message leaves every recall table (the same trigger in every schema version)
_DELETE_TRIGGER = f"""
    CREATE TRIGGER recall_messages_ad AFTER DELETE ON messages WHEN {_CONVERSATION.format(ns="old.namespace")}
    BEGIN
        DELETE FROM recall_fts WHERE rowid = old.pk;
        DELETE FROM recall_pending WHERE pk = old.pk;
        DELETE FROM recall_vectors WHERE pk = old.pk;
    END;
""".strip()
#: the triggers of schema v1-v3 (the FTS5 row written inside the append)
_TRIGGERS_V1 = f"""
    CREATE TRIGGER recall_messages_ai AFTER INSERT ON messages WHEN {_CONVERSATION.format(ns="new.namespace")}
    BEGIN
        INSERT INTO recall_fts (rowid, text) VALUES (new.pk, {_TEXT.format(b="new.body")});
        INSERT OR IGNORE INTO recall_pending (pk) VALUES (new.pk);
    END;
    {_DELETE_TRIGGER}
    CREATE TRIGGER recall_messages_au AFTER UPDATE OF body ON messages WHEN {_CONVERSATION.format(ns="new.namespace")}
    BEGIN
        DELETE FROM recall_fts WHERE rowid = old.pk;
        INSERT INTO recall_fts (rowid, text) VALUES (new.pk, {_TEXT.format(b="new.body")});
        DELETE FROM recall_vectors WHERE pk = old.pk;
        INSERT OR IGNORE INTO recall_pending (pk) VALUES (new.pk);
    END;
"""

#: schema v4: an append only queues its message (``fts = 0``); keywords and vectors are added off the append path
_TRIGGERS = f"""
    CREATE TRIGGER recall_messages_ai AFTER INSERT ON messages WHEN {_CONVERSATION.format(ns="new.namespace")}
    BEGIN
        INSERT OR REPLACE INTO recall_pending (pk, fts) VALUES (new.pk, 0);
    END;
    {_DELETE_TRIGGER}
    CREATE TRIGGER recall_messages_au AFTER UPDATE OF body ON messages WHEN {_CONVERSATION.format(ns="new.namespace")}
    BEGIN
        DELETE FROM recall_fts WHERE rowid = old.pk;
        DELETE FROM recall_vectors WHERE pk = old.pk;
        INSERT OR REPLACE INTO recall_pending (pk, fts) VALUES (new.pk, 0);
    END;
"""
#: FTS5 rows for queued messages not in it yet; ``{where}`` narrows the queue rows (bound parameters follow)
_FILL_FTS = (f"INSERT INTO recall_fts (rowid, text) SELECT m.pk, {_TEXT.format(b='m.body')} FROM recall_pending p "
             "JOIN messages m ON m.pk = p.pk WHERE p.fts = 0 AND {where}")
_MARK_FTS = "UPDATE recall_pending AS p SET fts = 1 WHERE p.fts = 0 AND {where}"
FILL_CHUNK = 2000

MIGRATIONS = [
    f"""
    CREATE VIRTUAL TABLE recall_fts USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
    CREATE TABLE recall_pending (pk INTEGER PRIMARY KEY);
    CREATE TABLE recall_vectors (
        pk      INTEGER PRIMARY KEY,
        model   TEXT NOT NULL,
        ts      REAL NOT NULL,
        role    TEXT NOT NULL,
        vec     BLOB NOT NULL
    );
    CREATE INDEX recall_vectors_by_model ON recall_vectors (model);
    {_TRIGGERS_V1}
    INSERT INTO recall_fts (rowid, text)
        SELECT pk, {_TEXT.format(b="body")} FROM messages WHERE {_CONVERSATION_V1.format(ns="namespace")};
    INSERT INTO recall_pending (pk) SELECT pk FROM messages WHERE {_CONVERSATION_V1.format(ns="namespace")};
    """,
    # v2: vectors get their own never-reused id (the HNSW key). A message pk can be reused after the newest message
    # is deleted, and a re-embedded message keeps its pk: keyed by pk, the graph would keep serving the old vector.
    f"""
    DROP TRIGGER recall_messages_ai;
    DROP TRIGGER recall_messages_ad;
    DROP TRIGGER recall_messages_au;
    CREATE TABLE recall_vectors_v2 (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        pk      INTEGER NOT NULL UNIQUE,
        model   TEXT NOT NULL,
        ts      REAL NOT NULL,
        role    TEXT NOT NULL,
        vec     BLOB NOT NULL
    );
    INSERT INTO recall_vectors_v2 (pk, model, ts, role, vec) SELECT pk, model, ts, role, vec FROM recall_vectors
        ORDER BY pk;
    DROP TABLE recall_vectors;
    ALTER TABLE recall_vectors_v2 RENAME TO recall_vectors;
    CREATE INDEX recall_vectors_by_model ON recall_vectors (model);
    {_TRIGGERS_V1}
    """,
    # v3: every legal content shape is indexable (a plain-string block made the old trigger fail), and the
    # conversation test is "no internal separator" instead of a name suffix that a user namespace could end with.
    # Namespaces ending in "#collections" are ordinary namespaces now: their messages join the index.
    f"""
    DROP TRIGGER recall_messages_ai;
    DROP TRIGGER recall_messages_ad;
    DROP TRIGGER recall_messages_au;
    {_TRIGGERS_V1}
    INSERT INTO recall_fts (rowid, text)
        SELECT pk, {_TEXT.format(b="body")} FROM messages WHERE namespace LIKE '%#collections'
        AND {_CONVERSATION.format(ns="namespace")};
    INSERT OR IGNORE INTO recall_pending (pk) SELECT pk FROM messages WHERE namespace LIKE '%#collections'
        AND {_CONVERSATION.format(ns="namespace")};
    """,
    # v4: the insert trigger only queues the message; FTS5 rows are written by the indexer and by queries
    # (_FILL_FTS). Rows queued before v4 are in recall_fts already (fts = 1).
    f"""
    DROP TRIGGER recall_messages_ai;
    DROP TRIGGER recall_messages_ad;
    DROP TRIGGER recall_messages_au;
    ALTER TABLE recall_pending ADD COLUMN fts INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX recall_pending_fts ON recall_pending (pk) WHERE fts = 0;
    {_TRIGGERS}
    """,
]


_CANDIDATE = ("SELECT m.pk, v.ts, v.role, v.vec, m.namespace, m.session_id, s.user_id, s.expires_at "
              "FROM messages m JOIN sessions s ON s.namespace = m.namespace AND s.id = m.session_id ")
# Dense candidates come by vector id: an inner join, so SQLite starts from recall_vectors' primary key. A LEFT JOIN
# filtered on v.id is not turned into an inner join by SQLite 3.40 and scans every message (a 6x slower wide recall).
CANDIDATES_BY_VECTOR = _CANDIDATE + "JOIN recall_vectors v ON v.pk = m.pk WHERE v.id IN ({marks})"
# Keyword candidates come by message pk and may have no vector yet (still queued for the indexer).
CANDIDATES_BY_MESSAGE = _CANDIDATE + "LEFT JOIN recall_vectors v ON v.pk = m.pk WHERE m.pk IN ({marks})"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression: the query's words (stop words out) as quoted terms joined by OR; never raw syntax."""
    words = [w for w in dict.fromkeys(terms_raw(text)) if w not in STOP_WORDS]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def terms_raw(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower())


class _Scope:
    """Arrays of one session's indexed messages in seq order (cached while the session is unchanged)."""

    __slots__ = ("keyword", "pks", "roles", "stamp", "times", "vectors")

    def __init__(self, stamp: tuple[int, int, float], pks: np.ndarray, vectors: np.ndarray, times: np.ndarray,
                 roles: list[str], keyword: KeywordSegment) -> None:
        self.stamp = stamp
        self.pks = pks
        self.vectors = vectors
        self.times = times
        self.roles = roles
        self.keyword = keyword


class SQLiteEngine:
    """Recall on SQLite with native full-text search and a vectors table."""

    name = "sqlite"

    def __init__(self, store: Any, embedder: CachedEmbedder, *, exact_max: int = EXACT_MAX) -> None:
        self.store = store
        self.embedder = embedder
        self.exact_max = exact_max
        store.migrate("recall", MIGRATIONS)
        self._cache: dict[tuple[str, str], _Scope] = {}
        self._lock = threading.Lock()
        self._checked_model = False
        self._mismatch_logged = False
        self._ann: AnnIndex | None = None
        self._stack: tuple[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None

    # -- indexing ------------------------------------------------------------------------------------------------
    def index(self, work: Sequence[Work]) -> None:
        """Background step: embed pending messages (of any writer) in batches; keep the HNSW index (once a large
        scope has asked for it) current, so queries never pay for more than the last few additions."""
        try:
            while self.fill_keywords(limit=FILL_CHUNK) == FILL_CHUNK:
                pass
            while self.catch_up(limit=BATCH) == BATCH:
                pass
        except EmbeddingModelMismatch as exc:  # another model's vectors: keyword recall still works; say it once
            if not self._mismatch_logged:
                self._mismatch_logged = True
                logger.warning("not embedding new messages: %s", exc)
            return
        if self._ann is not None:
            self.ann(wait=False)

    def fill_keywords(self, *, limit: int | None = None) -> int:
        """Write the FTS5 rows of queued messages not in it yet (the first ``limit``, or all); returns how many."""
        with self.store.transaction(write=False) as c:
            if c.execute("SELECT 1 FROM recall_pending WHERE fts = 0 LIMIT 1").fetchone() is None:
                return 0
        where = f"p.pk IN (SELECT pk FROM recall_pending WHERE fts = 0 ORDER BY pk LIMIT {int(limit)})" if limit \
            else "1"
        with self.store.transaction() as c:
            done = c.execute(_FILL_FTS.format(where=where)).rowcount
            c.execute(_MARK_FTS.format(where=where))
        return int(done)

    def catch_up(self, *, limit: int | None = None, pks: Sequence[int] | None = None) -> int:
        """Embed pending messages (all, the first ``limit``, or those among ``pks``); returns how many."""
        with self.store.transaction(write=False) as c:
            if pks is not None:
                rows: list[tuple[int, str]] = []
                for part in _chunks(list(pks)):
                    rows.extend(c.execute(
                        f"SELECT m.pk, m.body FROM recall_pending p JOIN messages m ON m.pk = p.pk "
                        f"WHERE p.pk IN ({_marks(len(part))})", part).fetchall())
            else:
                sql = "SELECT m.pk, m.body FROM recall_pending p JOIN messages m ON m.pk = p.pk ORDER BY p.pk"
                rows = c.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        if not rows:
            return 0
        with self.store.transaction(write=False) as c:
            self._check_model(c)  # before spending time on embeddings that could not be stored
        done = 0
        for part in _chunks(rows, BATCH):
            messages = [decode_body(body, session_id=None, seq=None) for _, body in part]
            vectors = self.embedder.embed([index_text(m) for m in messages])
            with self.store.transaction() as c:
                self._check_model(c, recheck=True)  # another process may have embedded with another model
                live = {r[0] for r in c.execute(
                    f"SELECT pk FROM recall_pending WHERE pk IN ({_marks(len(part))})", [pk for pk, _ in part])}
                if live:  # keywords first: a message leaves the queue only once it is in recall_fts
                    c.execute(_FILL_FTS.format(where=f"p.pk IN ({_marks(len(live))})"), list(live))
                c.executemany(
                    "INSERT OR REPLACE INTO recall_vectors (pk, model, ts, role, vec) VALUES (?, ?, ?, ?, ?)",
                    [(pk, self.embedder.model_id, to_epoch(m.created_at), m.role, v.astype("<f4").tobytes())
                     for (pk, _), m, v in zip(part, messages, vectors, strict=True) if pk in live],
                )
                c.executemany("DELETE FROM recall_pending WHERE pk = ?", [(pk,) for pk in live])
            done += len(part)
        return done

    def forget(self, ns: str, sid: str) -> None:
        with self._lock:
            self._cache.pop((ns, sid), None)

    def backlog(self) -> int:
        with self.store.transaction(write=False) as c:
            return int(c.execute("SELECT count(*) FROM recall_pending").fetchone()[0])

    def status(self, backlog: int) -> IndexStatus:
        with self.store.transaction(write=False) as c:
            indexed = int(c.execute("SELECT count(*) FROM recall_vectors").fetchone()[0])
            pending = int(c.execute("SELECT count(*) FROM recall_pending").fetchone()[0])
        return IndexStatus(indexed=indexed, backlog=max(backlog, pending), model_id=self.embedder.model_id)

    def reindex(self, infos: Sequence[SessionInfo], progress: Any) -> int:
        """Re-embed every conversation message (all namespaces of this file) with the current model."""
        with self.store.transaction() as c:
            c.execute("DELETE FROM recall_vectors")
            c.execute("INSERT OR IGNORE INTO recall_pending (pk) SELECT pk FROM messages WHERE "
                      + _CONVERSATION.format(ns="namespace"))
            total = int(c.execute("SELECT count(*) FROM recall_pending").fetchone()[0])
        with self._lock:
            self._cache.clear()
            self._stack = None
            self._checked_model = False
            if self._ann is not None:
                self._ann.drop()
                self._ann = None
        done = 0
        while True:
            n = self.catch_up(limit=BATCH * 4)
            if n == 0:
                break
            done += n
            if progress is not None:
                progress(done, total)
        return done

    def stop(self) -> None:
        """Abandon a background HNSW build (process exit)."""
        if self._ann is not None:
            self._ann.stop()

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
        if self._ann is not None:
            self._ann.flush()

    # -- search --------------------------------------------------------------------------------------------------
    def _check_model(self, c: sqlite3.Connection, *, recheck: bool = False) -> None:
        if self._checked_model and not recheck:
            return
        model = self.embedder.model_id  # two index ranges: `model <> ?` would scan every vector
        row = c.execute("SELECT model FROM recall_vectors WHERE model < ? OR model > ? LIMIT 1", (model, model)).fetchone()
        if row is not None:
            raise EmbeddingModelMismatch(
                f"{self.store.path} holds vectors of embedding model {row[0]!r} but this Memory embeds with "
                f"{self.embedder.model_id!r}; run mem.reindex() (CLI: memvault reindex) to re-embed, or open Memory "
                "with the original embedder"
            )
        self._checked_model = True

    def _session(self, c: sqlite3.Connection, info: SessionInfo, *, keyword_only: bool = False) -> _Scope:
        """The session's scope. ``keyword_only``: every message, with or without a vector of this model (missing
        vectors are zeros and such a scope is not cached)."""
        stamp = (info.last_seq, info.message_count, info.created_at.timestamp())  # created_at: a re-created session
        key = (info.namespace, info.id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached
        if cached is not None and cached.stamp[2] == stamp[2] and cached.stamp[0] < stamp[0]:
            grown = self._extend(c, info, cached, stamp)
            if grown is not None:
                return grown
        join = "LEFT JOIN recall_vectors v ON v.pk = m.pk AND v.model = ?" if keyword_only else \
            "JOIN recall_vectors v ON v.pk = m.pk"
        params = (self.embedder.model_id, info.namespace, info.id) if keyword_only else (info.namespace, info.id)
        rows = c.execute(
            f"SELECT m.pk, v.ts, v.role, v.vec, m.body FROM messages m {join} "
            "WHERE m.namespace = ? AND m.session_id = ? ORDER BY m.seq",
            params,
        ).fetchall()
        messages = [decode_body(r[4], session_id=None, seq=None) for r in rows]
        keyword = KeywordSegment()
        keyword.add([index_text(m) for m in messages])
        times = [r[1] if r[3] is not None else to_epoch(m.created_at) for r, m in zip(rows, messages, strict=True)]
        roles = [r[2] if r[3] is not None else m.role for r, m in zip(rows, messages, strict=True)]
        scope = _Scope(stamp, np.array([r[0] for r in rows], dtype=np.int64), self._vectors(rows),
                       np.array(times, dtype=np.float64), roles, keyword)
        if len(rows) == info.message_count and all(r[3] is not None for r in rows):
            with self._lock:
                self._cache[key] = scope
        return scope

    def _vectors(self, rows: Sequence[Sequence[Any]]) -> np.ndarray:
        dim = self.embedder.dimension
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        zero = bytes(4 * dim)
        return np.frombuffer(b"".join(r[3] if r[3] is not None else zero for r in rows),
                             dtype="<f4").reshape(len(rows), dim)

    def _extend(self, c: sqlite3.Connection, info: SessionInfo, cached: _Scope, stamp: tuple[int, int, float]
                ) -> _Scope | None:
        """The cached scope plus the messages appended since, or None when anything else changed (a delete, a trim,
        a message still waiting for its vector): then the caller reloads the session."""
        rows = c.execute(
            "SELECT v.pk, v.ts, v.role, v.vec, m.body FROM messages m JOIN recall_vectors v ON v.pk = m.pk "
            "WHERE m.namespace = ? AND m.session_id = ? AND m.seq > ? ORDER BY m.seq",
            (info.namespace, info.id, cached.stamp[0]),
        ).fetchall()
        if len(cached.pks) + len(rows) != info.message_count:
            return None
        keyword = cached.keyword.extended([index_text(decode_body(r[4], session_id=None, seq=None)) for r in rows])
        scope = _Scope(
            stamp,
            np.concatenate([cached.pks, np.array([r[0] for r in rows], dtype=np.int64)]),
            np.vstack([cached.vectors, self._vectors(rows)]),
            np.concatenate([cached.times, np.array([r[1] for r in rows], dtype=np.float64)]),
            cached.roles + [r[2] for r in rows],
            keyword,
        )
        with self._lock:
            self._cache[(info.namespace, info.id)] = scope
        return scope

    def _pending_in(self, c: sqlite3.Connection, infos: Sequence[SessionInfo]) -> list[int]:
        if c.execute("SELECT 1 FROM recall_pending LIMIT 1").fetchone() is None:
            return []
        out: list[int] = []
        for info in infos:
            out.extend(r[0] for r in c.execute(
                "SELECT p.pk FROM recall_pending p JOIN messages m ON m.pk = p.pk "
                "WHERE m.namespace = ? AND m.session_id = ?", (info.namespace, info.id)))
        return out

    def search(
        self, infos: Sequence[SessionInfo], query: str, k: int, options: SearchOptions, rfilter: RecallFilter
    ) -> list[Hit]:
        total = sum(i.message_count for i in infos)
        # keyword recall needs no vectors: it works while the file holds another model's vectors, or none yet
        keyword_only = options.mode == "keyword" and not options.mmr
        if not keyword_only:
            with self.store.transaction(write=False) as c:
                self._check_model(c)  # before embedding anything: never mix two models' vectors in one table
                pending = self._pending_in(c, infos) if total <= self.exact_max else []
            if pending:  # written by another process, or before recall was first used here
                self.catch_up(pks=pending)
        if total > self.exact_max:
            wanted = {(i.namespace, i.id) for i in infos}
            return self._search_ann(lambda ns, sid, user, expires: (ns, sid) in wanted, total, query, k, options,
                                    rfilter)
        with self.store.transaction(write=False) as c:
            scopes = [self._session(c, info, keyword_only=keyword_only) for info in infos]
        pairs = [(info, s) for info, s in zip(infos, scopes, strict=True) if len(s.pks)]
        if not pairs:
            return []
        pks, vectors, segment = self._stacked(pairs)
        dense = similarities(vectors, self.embedder.embed_query(query)) if options.mode != "keyword" or options.mmr else None
        # small scopes: the same in-process BM25 as every other backend (measured better and faster on LoCoMo than
        # bm25() through a join; docs/recall.md); FTS5 serves the large scopes (_search_ann)
        keyword = bm25_scores([s.keyword for _, s in pairs], query) if options.mode != "dense" else None
        ages = None
        if options.recency_half_life:
            ages = self.store.clock() - np.concatenate([s.times for _, s in pairs])
        keep = self._mask(rfilter, pairs, pks)
        if keep is not None:
            if len(keep) == 0:
                return []
            dense = None if dense is None else dense[keep]
            keyword = None if keyword is None else keyword[keep]
            ages = None if ages is None else ages[keep]
            vectors, segment, pks = vectors[keep], segment[keep], pks[keep]
        if options.mode == "keyword":
            dense = None
        ranked = rank(k, options, dense=dense, keyword=keyword, segment=segment, ages=ages, vectors=vectors)
        return self._hits([(int(pks[r.index]), r.score, r.signals) for r in ranked], options)

    def _stacked(self, pairs: Sequence[tuple[SessionInfo, _Scope]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pks, vectors and session index of a multi-session scope; the last one is cached (copying a large
        matrix on every query would cost more than searching it)."""
        if len(pairs) == 1:
            s = pairs[0][1]
            return s.pks, s.vectors, np.zeros(len(s.pks), dtype=np.int64)
        key = tuple((info.namespace, info.id, s.stamp) for info, s in pairs)
        with self._lock:
            if self._stack is not None and self._stack[0] == key:
                return self._stack[1]
        arrays = (
            np.concatenate([s.pks for _, s in pairs]),
            np.vstack([s.vectors for _, s in pairs]),
            np.repeat(np.arange(len(pairs)), [len(s.pks) for _, s in pairs]),
        )
        with self._lock:
            self._stack = (key, arrays)
        return arrays

    def _mask(self, rfilter: RecallFilter, pairs: Sequence[tuple[SessionInfo, _Scope]],
              pks: np.ndarray) -> np.ndarray | None:
        if rfilter.empty:
            return None
        ok = np.ones(len(pks), dtype=bool)
        if rfilter.roles is not None:
            ok &= np.array([r in rfilter.roles for _, s in pairs for r in s.roles], dtype=bool)
        if rfilter.after is not None or rfilter.before is not None:
            times = np.concatenate([s.times for _, s in pairs])
            if rfilter.after is not None:
                ok &= times >= rfilter.after
            if rfilter.before is not None:
                ok &= times < rfilter.before
        if rfilter.metadata is not None:
            candidates = pks[ok].tolist()
            accepted: set[int] = set()
            with self.store.transaction(write=False) as c:
                for part in _chunks(candidates):
                    for pk, body in c.execute(
                        f"SELECT pk, body FROM messages WHERE pk IN ({_marks(len(part))})", part
                    ):
                        message = decode_body(body, session_id=None, seq=None)
                        if rfilter.metadata(message.metadata):
                            accepted.add(pk)
            ok &= np.array([pk in accepted for pk in pks.tolist()], dtype=bool)
        return np.flatnonzero(ok)

    def _hits(self, ranked: Sequence[tuple[int, float, dict[str, Any]]], options: SearchOptions) -> list[Hit]:
        if not ranked:
            return []
        with self.store.transaction(write=False) as c:
            rows = {
                r[0]: r[1:]
                for r in c.execute(
                    "SELECT pk, namespace, session_id, seq, body FROM messages "
                    f"WHERE pk IN ({_marks(len(ranked))})", [pk for pk, _, _ in ranked])
            }
        hits: list[Hit] = []
        for pk, score, signals in ranked:
            row = rows.get(pk)
            if row is None:  # deleted meanwhile
                continue
            ns, sid, seq, body = row
            message = decode_body(body, session_id=sid, seq=seq)
            around: list[Message] = []
            if options.neighbors:
                window = self.store.read(ns, sid, start=max(0, seq - options.neighbors),
                                         stop=seq + options.neighbors + 1)
                around = [m for m in window if m.id != message.id]
            hits.append(Hit(message, score, signals, sid, ns, around))
        return hits

    # -- large scopes: HNSW ----------------------------------------------------------------------------------------
    def ann(self, *, wait: bool = True) -> AnnIndex | None:
        """The HNSW index over every vector of this file, topped up with vectors added since its last sync; None
        while a first build (or a rebuild) runs in the background (``wait=False``)."""
        if self._ann is None:
            path = self.store.path.with_name(self.store.path.name + f".recall-{self.embedder.model_id}.usearch")
            self._ann = AnnIndex(path, self.embedder.model_id, self.embedder.dimension)
        index = self._ann
        with self.store.transaction(write=False) as c:
            self._check_model(c)
            top = c.execute("SELECT max(id) FROM recall_vectors").fetchone()[0] or 0
            if top == index.max_key and index.size and not index.building:
                return index  # nothing new (deleted rows are filtered out at query time)
            # counting 1M rows costs milliseconds: only when the index may be far from the table
            if index.size == 0 or index.building or top - index.max_key > 0.05 * index.size:
                expected = int(c.execute("SELECT count(*) FROM recall_vectors").fetchone()[0])
            else:
                expected = index.size + int(c.execute("SELECT count(*) FROM recall_vectors WHERE id > ?",
                                                      (index.max_key,)).fetchone()[0])
        return index if index.sync(self._rows_after, expected, wait=wait) else None

    def _rows_after(self, min_key: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        dim = self.embedder.dimension
        last = min_key
        while True:
            with self.store.transaction(write=False) as c:
                rows = c.execute("SELECT id, vec FROM recall_vectors WHERE id > ? ORDER BY id LIMIT 20000",
                                 (last,)).fetchall()
            if not rows:
                return
            keys = np.array([r[0] for r in rows], dtype=np.int64)
            yield keys, np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
            last = int(keys[-1])

    def _scan(self, q: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``count`` (ids, cosine) over the whole vectors table, in chunks: the answer while the HNSW
        index is being built (seconds per query at 1M vectors instead of minutes of waiting)."""
        best_keys = np.zeros(0, dtype=np.int64)
        best = np.zeros(0, dtype=np.float32)
        for keys, vectors in self._rows_after(0):
            keys = np.concatenate([best_keys, keys])
            sims = np.concatenate([best, similarities(vectors, q)])
            top = np.argpartition(-sims, count)[:count] if len(sims) > count else np.arange(len(sims))
            best_keys, best = keys[top], sims[top]
        return best_keys, best

    def search_wide(self, ns: str, user_id: str | None, query: str, k: int, options: SearchOptions,
                    rfilter: RecallFilter) -> list[Hit] | None:
        """A namespace- or user-wide query: over ``exact_max`` messages it is scoped by a predicate on each
        candidate's session row (listing thousands of sessions per query would cost more than the search);
        None when the scope is small enough for the exact path."""
        now = self.store.clock()
        sql = f"SELECT coalesce(sum(message_count), 0) FROM sessions WHERE namespace = ? AND {LIVE}"
        params: list[Any] = [ns, now]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        with self.store.transaction(write=False) as c:
            total = int(c.execute(sql, params).fetchone()[0])
        if total <= self.exact_max:
            return None

        def in_scope(m_ns: str, sid: str, user: str | None, expires: float | None) -> bool:
            return m_ns == ns and (user_id is None or user == user_id) and (expires is None or expires > now)

        return self._search_ann(in_scope, total, query, k, options, rfilter)

    def _search_ann(
        self, in_scope: Callable[[str, str, str | None, float | None], bool], scope: int, query: str, k: int,
        options: SearchOptions, rfilter: RecallFilter
    ) -> list[Hit]:
        """Candidates from the HNSW graph and FTS5 (both over the whole file), filtered to the scope, re-scored
        exactly and fused."""
        keyword_only = options.mode == "keyword" and not options.mmr
        index = None
        if not keyword_only:
            self.catch_up()
            index = self.ann(wait=False)
        # both indexes cover the whole file: ask for more when the scope is a part of it, then filter to the scope
        spread = min(20.0, max(1.0, (index.size if index is not None else scope) / max(scope, 1)))
        fetch = int(max(options.fetch_k, 10 * k, 100) * spread)
        q = np.zeros(self.embedder.dimension, np.float32) if keyword_only else self.embedder.embed_query(query)
        by_id: dict[int, float] = {}
        if options.mode != "keyword":
            if index is None:
                logger.info("ANN index still building: scanning all vectors exactly for this query")
            ids, sims = index.search(q, fetch) if index is not None else self._scan(q, fetch)
            by_id = dict(zip(ids.tolist(), sims.tolist(), strict=True))
        by_pk: dict[int, float] = {}
        if options.mode != "dense":
            match = fts_query(query)
            if match is not None:
                self.fill_keywords()  # messages queued since the indexer last ran, by any process
                with self.store.transaction(write=False) as c:
                    by_pk = dict(c.execute(
                        "SELECT rowid, -bm25(recall_fts) FROM recall_fts WHERE recall_fts MATCH ? "
                        "ORDER BY bm25(recall_fts) LIMIT ?", (match, fetch)).fetchall())
        if not by_id and not by_pk:
            return []
        # one row per candidate message in scope: pk -> (ts, role, vector)
        meta: dict[int, tuple[float | None, str | None, bytes | None]] = {}
        with self.store.transaction(write=False) as c:
            for part in _chunks(list(by_id)):
                for row in c.execute(CANDIDATES_BY_VECTOR.format(marks=_marks(len(part))), part):
                    if in_scope(*row[4:]):
                        meta[row[0]] = row[1:4]
            for part in _chunks([pk for pk in by_pk if pk not in meta]):
                for row in c.execute(CANDIDATES_BY_MESSAGE.format(marks=_marks(len(part))), part):
                    if in_scope(*row[4:]):
                        meta[row[0]] = row[1:4]
        chosen = sorted(meta)  # ties broken by age, not by the order the graph happened to return
        if rfilter.roles is not None:
            chosen = [pk for pk in chosen if meta[pk][1] in rfilter.roles]
        if rfilter.after is not None:
            chosen = [pk for pk in chosen if (ts := meta[pk][0]) is not None and ts >= rfilter.after]
        if rfilter.before is not None:
            chosen = [pk for pk in chosen if (ts := meta[pk][0]) is not None and ts < rfilter.before]
        if rfilter.metadata is not None and chosen:
            with self.store.transaction(write=False) as c:
                bodies = dict(c.execute(f"SELECT pk, body FROM messages WHERE pk IN ({_marks(len(chosen))})", chosen))
            chosen = [pk for pk in chosen if rfilter.metadata(decode_body(bodies[pk], session_id=None, seq=None).metadata)]
        if not chosen:
            return []
        dim = self.embedder.dimension
        vectors = np.stack([np.frombuffer(blob, dtype="<f4") if (blob := meta[pk][2]) else np.zeros(dim, np.float32)
                            for pk in chosen])
        dense = vectors @ q  # exact re-scoring of the (quantised) graph's candidates
        keyword = np.array([by_pk.get(pk, 0.0) for pk in chosen], dtype=np.float64)
        ages = self.store.clock() - np.array([meta[pk][0] or 0.0 for pk in chosen]) if options.recency_half_life else None
        flat = SearchOptions(**{**options.__dict__, "neighbour_weight": 0.0})
        ranked = rank(k, flat, dense=None if options.mode == "keyword" else dense,
                      keyword=keyword if options.mode != "dense" else None, ages=ages, vectors=vectors)
        return self._hits([(chosen[r.index], r.score, r.signals) for r in ranked], options)
