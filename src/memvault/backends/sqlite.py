"""``sqlite:///path`` — the embedded default: one file, WAL, safe for several processes at once.

Durability: ``synchronous=NORMAL`` by default (a committed write survives a crash of the process; the last
transactions may be lost on power failure). ``?synchronous=full`` fsyncs every commit (survives power loss, ~10x
slower appends). ``?busy_timeout=<seconds>`` (default 10) bounds how long a writer waits for another process.

Schema versions live in ``schema_versions(component, version)`` so that extensions (the recall index) migrate their
own tables; migrations run inside ``BEGIN IMMEDIATE`` so two processes opening a new file at once are safe.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from memvault.config import file_path, query_options
from memvault.contract import MAX_PAGE, AppendOptions, Entry, Rewrite, SessionQuery, Store, pop_range
from memvault.cursors import decode_cursor, encode_cursor
from memvault.errors import BackendUnavailable, CorruptData, SchemaVersionError, SessionNotFound
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch
from memvault.validation import check_limit, json_equal, merge_session_metadata

logger = logging.getLogger("memvault.sqlite")

SCHEMA_VERSION = 3
CHUNK = 500  # ids per IN (...) list

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE sessions (
        namespace     TEXT NOT NULL,
        id            TEXT NOT NULL,
        user_id       TEXT,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        expires_at    REAL,
        message_count INTEGER NOT NULL DEFAULT 0,
        size_bytes    INTEGER NOT NULL DEFAULT 0,
        last_seq      INTEGER NOT NULL DEFAULT 0,
        metadata      TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (namespace, id)
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_updated ON sessions (namespace, updated_at DESC, id DESC);
    CREATE INDEX sessions_by_user ON sessions (namespace, user_id, updated_at DESC, id DESC);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE messages (
        pk         INTEGER PRIMARY KEY,
        namespace  TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        id         TEXT NOT NULL,
        body       TEXT NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_seq ON messages (namespace, session_id, seq);
    CREATE UNIQUE INDEX messages_by_id ON messages (namespace, session_id, id);
    CREATE TABLE records (
        namespace  TEXT NOT NULL,
        session_id TEXT NOT NULL,
        kind       TEXT NOT NULL,
        key        TEXT NOT NULL,
        data       TEXT NOT NULL,
        PRIMARY KEY (namespace, session_id, kind, key)
    ) WITHOUT ROWID;
    """,
    # v2: entries, a session's ordered binary key-value space (checkpoints, documents, state, artifact chunks)
    """
    CREATE TABLE entries (
        namespace  TEXT NOT NULL,
        session_id TEXT NOT NULL,
        kind       TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      BLOB NOT NULL,
        PRIMARY KEY (namespace, session_id, kind, key)
    ) WITHOUT ROWID;
    """,
    # v3: entries get a rowid. A WITHOUT ROWID table keeps each row inside its key's b-tree, which SQLite advises
    # against for rows larger than a fraction of a page: 1 MiB artifact chunks were written at ~60 MB/s and read at
    # ~100 MB/s; with a rowid (the key order now comes from the primary key's index) ~120 / ~340 MB/s.
    """
    CREATE TABLE entries_v3 (
        namespace  TEXT NOT NULL,
        session_id TEXT NOT NULL,
        kind       TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      BLOB NOT NULL,
        PRIMARY KEY (namespace, session_id, kind, key)
    );
    INSERT INTO entries_v3 (namespace, session_id, kind, key, value)
        SELECT namespace, session_id, kind, key, value FROM entries ORDER BY namespace, session_id, kind, key;
    DROP TABLE entries;
    ALTER TABLE entries_v3 RENAME TO entries;
    """,
]

_SESSION_COLUMNS = "id, namespace, user_id, created_at, updated_at, message_count, size_bytes, metadata, expires_at, last_seq"
LIVE = "(expires_at IS NULL OR expires_at > ?)"


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements (trigger bodies with inner ``;`` stay whole)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _sql_json_equal(stored: str | None, wanted: str) -> int:
    """``memvault_json_equal(a, b)``: :func:`memvault.validation.json_equal` of two JSON texts (nested values)."""
    try:
        return int(json_equal(json.loads(stored or "null"), json.loads(wanted)))
    except (ValueError, RecursionError):
        return 0


def _json_filter(key: str, value: Any) -> tuple[str, list[Any]]:
    """SQL (with parameters) true when metadata[key] equals ``value`` under JSON equality
    (:func:`memvault.validation.json_equal`: the one semantics of every backend). A session whose stored metadata
    is not JSON matches nothing instead of failing the query."""
    each = (
        "CASE WHEN json_valid(sessions.metadata) THEN "
        "EXISTS (SELECT 1 FROM json_each(sessions.metadata) AS m WHERE m.key = ? AND {}) ELSE 0 END"
    )
    if value is None:
        return each.format("m.type = 'null'"), [key]
    if isinstance(value, bool):
        return each.format("m.type = ?"), [key, "true" if value else "false"]
    if isinstance(value, (int, float)):
        return each.format("m.type IN ('integer', 'real') AND m.atom = ?"), [key, value]
    if isinstance(value, str):
        return each.format("m.type = 'text' AND m.atom = ?"), [key, value]
    return each.format("m.type IN ('object', 'array') AND memvault_json_equal(m.value, ?)"), [
        key,
        json.dumps(value, ensure_ascii=False, separators=(",", ":")),
    ]


class SQLiteStore(Store):
    """The embedded default store."""

    backend: ClassVar[str] = "sqlite"
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess", "rewrite"})
    recall_engine = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "normal",
        busy_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be off, normal, full or extra, got {synchronous!r}")
        self.busy_timeout = float(busy_timeout)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._connect()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteStore:
        merged: dict[str, Any] = {**query_options(url), **options}
        return cls(file_path(url), **merged)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    # -- connection, transactions, migrations --------------------------------------------------------------------
    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._enable_wal(conn)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.create_function("memvault_json_equal", 2, _sql_json_equal, deterministic=True)
            self._conn = conn
            self.migrate("core", MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise BackendUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new database to WAL. The switch takes an exclusive lock without calling the busy handler, so
        two processes creating one file at once retry it (jittered) for up to busy_timeout."""
        for attempt in Retrying(
            retry=retry_if_exception(_locked),
            wait=wait_random_exponential(multiplier=0.005, max=0.1),
            stop=stop_after_delay(self.busy_timeout),
            reraise=True,
        ):
            with attempt:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")

    def _translate(self, exc: sqlite3.Error) -> Exception:
        text = str(exc)
        if "malformed JSON" in text:
            return CorruptData(f"{self.path} holds a value that is not valid JSON ({text}); the file itself is fine",
                               path=str(self.path))
        if "not a database" in text or "malformed" in text:
            return CorruptData(
                f"{self.path} is not a readable SQLite database ({text}). Move it aside and memvault starts a new one; "
                "`sqlite3 <file> .recover` may save its contents.",
                path=str(self.path),
            )
        if "locked" in text or "busy" in text:
            return BackendUnavailable(
                f"{self.path} stayed locked by another writer for over {self.busy_timeout:g}s ({text}); "
                "raise ?busy_timeout= or find the stuck process"
            )
        if "readonly" in text or "unable to open" in text or "disk" in text:
            return BackendUnavailable(f"cannot write SQLite database {self.path}: {text}")
        return exc

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendUnavailable(f"SQLite store {self.path} is closed")
        return self._conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the store's lock for single-statement reads; errors are translated."""
        with self._lock:
            try:
                yield self.conn
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction under the store's lock (``BEGIN IMMEDIATE`` for writes). For extensions too."""
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc
            try:
                yield conn
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._translate(exc) from exc
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise self._translate(exc) from exc

    def scrub_clear_index(self) -> list[str]:
        """Drop the recall tables, triggers and HNSW files (rebuilt on demand by a Memory that recalls natively),
        with ``secure_delete`` (freed pages are zeroed), then VACUUM (pages freed by earlier rewrites) and truncate
        the WAL, so no page keeps text of before. A VACUUM that another connection blocks is skipped with a
        warning (and the entry "VACUUM skipped: ..."): run ``VACUUM`` when the file is idle."""
        dropped: list[str] = []
        with self._lock:
            self.conn.execute("PRAGMA secure_delete = ON")
        with self.transaction() as c:
            for kind, name in c.execute("SELECT type, name FROM sqlite_master WHERE name LIKE 'recall%' AND "
                                        "type IN ('trigger', 'table') AND name NOT LIKE 'recall\\_fts\\_%' "
                                        "ESCAPE '\\' ORDER BY type = 'table'").fetchall():
                c.execute(f"DROP {kind.upper()} IF EXISTS \"{name}\"")
                dropped.append(name)
            c.execute("DELETE FROM schema_versions WHERE component = 'recall'")
        for path in self.path.parent.glob(self.path.name + ".recall-*"):
            path.unlink(missing_ok=True)
            dropped.append(path.name)
        with self._lock:
            try:
                self.conn.execute("VACUUM")
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError as exc:
                logger.warning("%s: VACUUM after dropping the clear recall index was blocked (%s); run VACUUM on "
                               "the file when it is idle", self.path, exc)
                dropped.append(f"VACUUM skipped: {exc}")
        return dropped

    def migrate(self, component: str, steps: Sequence[str]) -> int:
        """Bring ``component``'s tables to ``len(steps)``; each step is a SQL script. Safe across processes."""
        with self.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER)")
            row = c.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
            current = row[0] if row else 0
            if current > len(steps):
                raise SchemaVersionError(
                    f"{self.path}: {component} schema v{current} is newer than this memvault (v{len(steps)}); upgrade"
                )
            for step in steps[current:]:
                for statement in _statements(step):
                    c.execute(statement)
            if current < len(steps):
                c.execute(
                    "INSERT INTO schema_versions VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                    (component, len(steps)),
                )
            return len(steps)

    # -- helpers -------------------------------------------------------------------------------------------------
    def _info(self, row: Sequence[Any]) -> SessionInfo:
        sid, ns, user, created, updated, count, size, meta, expires, last_seq = row
        try:
            metadata = json.loads(meta)
            if not isinstance(metadata, dict) or (user is not None and not isinstance(user, str)):
                raise TypeError("metadata is not a JSON object" if not isinstance(metadata, dict) else "bad user_id")
            return SessionInfo(
                id=sid,
                namespace=ns,
                user_id=user,
                created_at=from_epoch(created),
                updated_at=from_epoch(updated),
                message_count=int(count),
                size_bytes=int(size),
                metadata=metadata,
                expires_at=from_epoch(expires),
                backend=self.backend,
                last_seq=int(last_seq),
            )
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise CorruptData(
                f"{self.path}: the row of session {sid!r} in namespace {ns!r} is unreadable ({exc}); the other "
                "sessions are unaffected: delete this one or fix the row",
                path=str(self.path),
            ) from None

    def _listed(self, rows: Sequence[Sequence[Any]]) -> list[SessionInfo]:
        """Rows of a listing as SessionInfo; an unreadable one is reported and left out, never fails the page."""
        infos = []
        for row in rows:
            try:
                infos.append(self._info(row))
            except CorruptData as exc:
                logger.warning("skipping a corrupt session in a listing: %s", exc)
        return infos

    def _live_row(self, c: sqlite3.Connection, ns: str, sid: str) -> tuple[Any, ...] | None:
        return c.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE namespace = ? AND id = ? AND {LIVE}",
            (ns, sid, self.clock()),
        ).fetchone()

    def _wipe(self, c: sqlite3.Connection, ns: str, sid: str, *, session_row: bool) -> None:
        c.execute("DELETE FROM messages WHERE namespace = ? AND session_id = ?", (ns, sid))
        c.execute("DELETE FROM records WHERE namespace = ? AND session_id = ?", (ns, sid))
        c.execute("DELETE FROM entries WHERE namespace = ? AND session_id = ?", (ns, sid))
        if session_row:
            c.execute("DELETE FROM sessions WHERE namespace = ? AND id = ?", (ns, sid))

    def _ensure(self, c: sqlite3.Connection, ns: str, sid: str, options: AppendOptions) -> tuple[int, int, int]:
        """(last_seq, message_count, size_bytes) of the live session, creating it (over an expired one) if needed."""
        now = self.clock()
        row = c.execute(
            "SELECT last_seq, message_count, size_bytes, expires_at FROM sessions WHERE namespace = ? AND id = ?",
            (ns, sid),
        ).fetchone()
        if row is not None and row[3] is not None and row[3] <= now:
            self._wipe(c, ns, sid, session_row=True)
            row = None
        if row is None:
            c.execute(
                "INSERT INTO sessions (namespace, id, user_id, created_at, updated_at, expires_at, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    ns,
                    sid,
                    options.user_id,
                    now,
                    now,
                    None if options.ttl is None else now + options.ttl,
                    json.dumps(dict(options.metadata or {}), ensure_ascii=False),
                ),
            )
            return 0, 0, 0
        return row[0], row[1], row[2]

    def _insert(
        self, c: sqlite3.Connection, ns: str, sid: str, records: Sequence[Record], last_seq: int
    ) -> tuple[list[int], int, int]:
        """Insert records after ``last_seq``; returns (seqs, added_count, added_bytes). Known ids are skipped."""
        seqs: list[int] = []
        added = added_bytes = 0
        for record in records:
            cur = c.execute(
                "INSERT INTO messages (namespace, session_id, seq, id, body) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (namespace, session_id, id) DO NOTHING",
                (ns, sid, last_seq + 1, record.id, record.body),
            )
            if cur.rowcount:
                last_seq += 1
                added += 1
                added_bytes += len(record.body.encode("utf-8"))
                seqs.append(last_seq)
            else:
                seqs.append(
                    c.execute(
                        "SELECT seq FROM messages WHERE namespace = ? AND session_id = ? AND id = ?",
                        (ns, sid, record.id),
                    ).fetchone()[0]
                )
        return seqs, added, added_bytes

    def _trim(self, c: sqlite3.Connection, ns: str, sid: str, count: int, max_messages: int | None) -> tuple[int, int]:
        """Delete the oldest messages beyond ``max_messages``; returns (deleted_count, deleted_bytes)."""
        if max_messages is None or count <= max_messages:
            return 0, 0
        excess = count - max_messages
        oldest = (
            "SELECT seq FROM messages WHERE namespace = ? AND session_id = ? ORDER BY seq LIMIT ?"
        )
        size = c.execute(
            f"SELECT COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM messages "
            f"WHERE namespace = ? AND session_id = ? AND seq IN ({oldest})",
            (ns, sid, ns, sid, excess),
        ).fetchone()[0]
        c.execute(
            f"DELETE FROM messages WHERE namespace = ? AND session_id = ? AND seq IN ({oldest})",
            (ns, sid, ns, sid, excess),
        )
        return excess, size

    def _finish(
        self, c: sqlite3.Connection, ns: str, sid: str, last_seq: int, count: int, size: int, options: AppendOptions
    ) -> None:
        now = self.clock()
        c.execute(
            "UPDATE sessions SET last_seq = ?, message_count = ?, size_bytes = ?, updated_at = max(updated_at, ?), "
            "expires_at = ? WHERE namespace = ? AND id = ?",
            (last_seq, count, size, now, None if options.ttl is None else now + options.ttl, ns, sid),
        )

    # -- sessions ------------------------------------------------------------------------------------------------
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        with self.reading() as c:
            row = self._live_row(c, ns, sid)
        return None if row is None else self._info(row)

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        with self.transaction() as c:
            last_seq, count, size = self._ensure(c, ns, sid, options)
            self._finish(c, ns, sid, last_seq, count, size, options)
            row = self._live_row(c, ns, sid)
        return self._info(row)  # type: ignore[arg-type]

    def delete_session(self, ns: str, sid: str) -> bool:
        with self.transaction() as c:
            existed = self._live_row(c, ns, sid) is not None
            self._wipe(c, ns, sid, session_row=True)
        return existed

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        limit = check_limit(query.limit, maximum=MAX_PAGE)
        where = ["namespace = ?", LIVE]
        params: list[Any] = [query.namespace, self.clock()]
        if query.user_id is not None:
            where.append("user_id = ?")
            params.append(query.user_id)
        if query.updated_after is not None:
            where.append("updated_at >= ?")
            params.append(query.updated_after)
        if query.updated_before is not None:
            where.append("updated_at < ?")
            params.append(query.updated_before)
        for key, value in (query.metadata or {}).items():
            clause, values = _json_filter(key, value)
            where.append(clause)
            params.extend(values)
        if query.cursor:
            updated, sid = decode_cursor(query.cursor, float, str)
            where.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
            params.extend([updated, updated, sid])
        sql = (
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {' AND '.join(where)} "
            "ORDER BY updated_at DESC, id DESC LIMIT ?"
        )
        with self.reading() as c:
            rows = c.execute(sql, [*params, limit + 1]).fetchall()
        items = self._listed(rows[:limit])
        cursor = None
        if len(rows) > limit:
            cursor = encode_cursor(rows[limit - 1][4], rows[limit - 1][0])
        return Page(items, cursor)

    def purge_expired(self) -> int:
        with self.transaction() as c:
            dead = c.execute(
                "SELECT namespace, id FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?", (self.clock(),)
            ).fetchall()
            for ns, sid in dead:
                self._wipe(c, ns, sid, session_row=True)
        return len(dead)

    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        with self.transaction() as c:
            row = self._live_row(c, ns, sid)
            if row is None:
                raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} (never written, deleted or expired)")
            merged = merge_session_metadata(self._info(row).metadata, metadata, replace)
            c.execute("UPDATE sessions SET metadata = ?, updated_at = max(updated_at, ?) WHERE namespace = ? AND id = ?",
                      (json.dumps(merged, ensure_ascii=False), self.clock(), ns, sid))
            row = self._live_row(c, ns, sid)
        return self._info(row)  # type: ignore[arg-type]

    # -- messages ------------------------------------------------------------------------------------------------
    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        with self.transaction() as c:
            last_seq, count, size = self._ensure(c, ns, sid, options)
            seqs, added, added_bytes = self._insert(c, ns, sid, records, last_seq)
            count, size = count + added, size + added_bytes
            trimmed, trimmed_bytes = self._trim(c, ns, sid, count, options.max_messages)
            self._finish(c, ns, sid, last_seq + added, count - trimmed, size - trimmed_bytes, options)
        return seqs

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        with self.transaction() as c:
            last_seq, _, _ = self._ensure(c, ns, sid, options)
            c.execute("DELETE FROM messages WHERE namespace = ? AND session_id = ?", (ns, sid))
            seqs, added, added_bytes = self._insert(c, ns, sid, records, last_seq)
            trimmed, trimmed_bytes = self._trim(c, ns, sid, added, options.max_messages)
            self._finish(c, ns, sid, last_seq + added, added - trimmed, added_bytes - trimmed_bytes, options)
        return seqs

    def read(
        self,
        ns: str,
        sid: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        # one statement: the liveness check rides along, so no explicit transaction is needed for a snapshot
        where = f"namespace = ? AND session_id = ? AND EXISTS (SELECT 1 FROM sessions WHERE namespace = ? AND id = ? AND {LIVE})"
        params: list[Any] = [ns, sid, ns, sid, self.clock()]
        if start is not None:
            where += " AND seq >= ?"
            params.append(start)
        if stop is not None:
            where += " AND seq < ?"
            params.append(stop)
        if last is not None:
            sql = f"SELECT seq, body FROM (SELECT seq, body FROM messages WHERE {where} ORDER BY seq DESC LIMIT ?) ORDER BY seq"
            params.append(last)
        else:
            sql = f"SELECT seq, body FROM messages WHERE {where} ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.reading() as c:
            rows = c.execute(sql, params).fetchall()
        return [decode_body(body, session_id=sid, seq=seq, where=f"{self.path} {ns}/{sid}#{seq}") for seq, body in rows]

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        rows: list[tuple[int, str]] = []
        with self.transaction(write=False) as c:
            if self._live_row(c, ns, sid) is None:
                return []
            for chunk in _chunks(list(dict.fromkeys(ids))):
                rows += c.execute(
                    f"SELECT seq, body FROM messages WHERE namespace = ? AND session_id = ? AND id IN ({_marks(len(chunk))})",
                    (ns, sid, *chunk),
                ).fetchall()
        rows.sort()
        return [decode_body(body, session_id=sid, seq=seq, where=f"{self.path} {ns}/{sid}#{seq}") for seq, body in rows]

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        deleted = deleted_bytes = 0
        with self.transaction() as c:
            if self._live_row(c, ns, sid) is None:
                return 0
            for chunk in _chunks(list(dict.fromkeys(ids))):
                cond = f"namespace = ? AND session_id = ? AND id IN ({_marks(len(chunk))})"
                n, size = c.execute(
                    f"SELECT count(*), COALESCE(SUM(length(CAST(body AS BLOB))), 0) FROM messages WHERE {cond}",
                    (ns, sid, *chunk),
                ).fetchone()
                c.execute(f"DELETE FROM messages WHERE {cond}", (ns, sid, *chunk))
                deleted += n
                deleted_bytes += size
            if deleted:
                c.execute(
                    "UPDATE sessions SET message_count = message_count - ?, size_bytes = size_bytes - ?, "
                    "updated_at = max(updated_at, ?) WHERE namespace = ? AND id = ?",
                    (deleted, deleted_bytes, self.clock(), ns, sid),
                )
        return deleted

    def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        with self.transaction(write=False) as c:
            if self._live_row(c, ns, sid) is None:
                return {"records": [], "entries": []}
            return {table: [r[0] for r in c.execute(
                f"SELECT DISTINCT kind FROM {table} WHERE namespace = ? AND session_id = ? ORDER BY kind", (ns, sid))]
                for table in ("records", "entries")}

    def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        done = delta = 0
        where = "namespace = ? AND session_id = ? AND kind = ? AND key = ?"
        with self.transaction() as c:
            if self._live_row(c, ns, sid) is None:
                return 0
            for change in changes:
                if change.space == "message":
                    cond = "namespace = ? AND session_id = ? AND id = ? AND seq = ?"
                    args = (ns, sid, change.key, change.old)
                    row = c.execute(f"SELECT length(CAST(body AS BLOB)) FROM messages WHERE {cond}", args).fetchone()
                    if row is None:
                        continue
                    c.execute(f"UPDATE messages SET body = ? WHERE {cond}", (change.new, *args))
                    delta += len(change.new.encode("utf-8")) - row[0]
                elif change.space == "record":
                    args = (ns, sid, change.kind, change.key)
                    row = c.execute(f"SELECT data FROM records WHERE {where}", args).fetchone()
                    if row is None or json.loads(row[0]) != change.old:
                        continue
                    c.execute(f"UPDATE records SET data = ? WHERE {where}",
                              (json.dumps(change.new, ensure_ascii=False), *args))
                else:
                    cursor = c.execute(f"UPDATE entries SET value = ? WHERE {where} AND value = ?",
                                       (bytes(change.new), ns, sid, change.kind, change.key, bytes(change.old)))
                    if cursor.rowcount != 1:
                        continue
                done += 1
            if delta:
                c.execute("UPDATE sessions SET size_bytes = size_bytes + ? WHERE namespace = ? AND id = ?",
                          (delta, ns, sid))
        return done

    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        with self.transaction() as c:
            row = self._live_row(c, ns, sid)
            if row is None:
                return []
            base = "SELECT seq, body FROM messages WHERE namespace = ? AND session_id = ?"
            rows: list[tuple[int, str]] = []
            if ids is not None:
                for chunk in _chunks(list(dict.fromkeys(ids))):
                    rows += c.execute(f"{base} AND id IN ({_marks(len(chunk))})", (ns, sid, *chunk)).fetchall()
                rows.sort()
            elif (span := pop_range(row[5], index or 0, count)) is not None:
                start, stop = span
                if start > row[5] - stop:  # nearer the end: walk the seq index backwards
                    rows = c.execute(f"{base} ORDER BY seq DESC LIMIT ? OFFSET ?",
                                     (ns, sid, stop - start, row[5] - stop)).fetchall()[::-1]
                else:
                    rows = c.execute(f"{base} ORDER BY seq LIMIT ? OFFSET ?", (ns, sid, stop - start, start)).fetchall()
            if not rows:
                return []
            seqs = [seq for seq, _ in rows]
            for part in _chunks(seqs):  # type: ignore[arg-type]
                c.execute(f"DELETE FROM messages WHERE namespace = ? AND session_id = ? AND seq IN ({_marks(len(part))})",
                          (ns, sid, *part))
            c.execute(
                "UPDATE sessions SET message_count = message_count - ?, size_bytes = size_bytes - ?, "
                "updated_at = max(updated_at, ?) WHERE namespace = ? AND id = ?",
                (len(rows), sum(len(body.encode("utf-8")) for _, body in rows), self.clock(), ns, sid),
            )
        return [decode_body(body, session_id=sid, seq=seq, where=f"{self.path} {ns}/{sid}#{seq}") for seq, body in rows]

    def count(self, ns: str, sid: str) -> int:
        with self.reading() as c:
            row = self._live_row(c, ns, sid)
        return 0 if row is None else row[5]

    def clear(self, ns: str, sid: str) -> int:
        with self.transaction() as c:
            row = self._live_row(c, ns, sid)
            if row is None:
                return 0
            self._wipe(c, ns, sid, session_row=False)
            c.execute(
                "UPDATE sessions SET message_count = 0, size_bytes = 0, updated_at = max(updated_at, ?) "
                "WHERE namespace = ? AND id = ?",
                (self.clock(), ns, sid),
            )
        return row[5]

    # -- entries -------------------------------------------------------------------------------------------------
    @staticmethod
    def _write_entries(c: sqlite3.Connection, ns: str, sid: str, entries: Sequence[Entry], if_absent: bool) -> list[bool]:
        conflict = "DO NOTHING" if if_absent else "DO UPDATE SET value = excluded.value"
        sql = f"INSERT INTO entries VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, session_id, kind, key) {conflict}"
        return [c.execute(sql, (ns, sid, e.kind, e.key, bytes(e.value))).rowcount > 0 for e in entries]

    def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        with self.transaction() as c:
            last_seq, count, size = self._ensure(c, ns, sid, options)
            written = self._write_entries(c, ns, sid, entries, if_absent)
            self._finish(c, ns, sid, last_seq, count, size, options)
        return written

    def append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> list[int]:
        with self.transaction() as c:
            last_seq, count, size = self._ensure(c, ns, sid, options)
            seqs, added, added_bytes = self._insert(c, ns, sid, records, last_seq)
            count, size = count + added, size + added_bytes
            trimmed, trimmed_bytes = self._trim(c, ns, sid, count, options.max_messages)
            self._write_entries(c, ns, sid, entries, False)
            self._finish(c, ns, sid, last_seq + added, count - trimmed, size - trimmed_bytes, options)
        return seqs

    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self.transaction(write=False) as c:
            if self._live_row(c, ns, sid) is None:
                return {}
            for chunk in _chunks(list(dict.fromkeys(keys))):
                found.update(c.execute(
                    f"SELECT key, value FROM entries WHERE namespace = ? AND session_id = ? AND kind = ? "
                    f"AND key IN ({_marks(len(chunk))})", (ns, sid, kind, *chunk)).fetchall())
        return found

    @staticmethod
    def _span(start: str | None, stop: str | None) -> tuple[str, list[Any]]:
        where, params = "", []
        if start is not None:
            where += " AND key >= ?"
            params.append(start)
        if stop is not None:
            where += " AND key < ?"
            params.append(stop)
        return where, params

    def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        span, params = self._span(start, stop)
        value = "x''" if keys_only else "value"
        sql = (f"SELECT key, {value} FROM entries WHERE namespace = ? AND session_id = ? AND kind = ?{span} "
               f"AND EXISTS (SELECT 1 FROM sessions WHERE namespace = ? AND id = ? AND {LIVE}) "
               f"ORDER BY key {'DESC' if reverse else 'ASC'}")
        args: list[Any] = [ns, sid, kind, *params, ns, sid, self.clock()]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self.reading() as c:
            return [(k, bytes(v)) for k, v in c.execute(sql, args).fetchall()]

    def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        base = "DELETE FROM entries WHERE namespace = ? AND session_id = ? AND kind = ?"
        with self.transaction() as c:
            if self._live_row(c, ns, sid) is None:  # an expired session is gone: nothing of it to delete
                return 0
            if keys is not None:
                return sum(
                    c.execute(f"{base} AND key IN ({_marks(len(chunk))})", (ns, sid, kind, *chunk)).rowcount
                    for chunk in _chunks(list(dict.fromkeys(keys)))
                )
            span, params = self._span(start, stop)
            return c.execute(base + span, (ns, sid, kind, *params)).rowcount

    # -- records -------------------------------------------------------------------------------------------------
    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        with self.transaction() as c:
            if self._live_row(c, ns, sid) is None:
                raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")
            c.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (namespace, session_id, kind, key) DO UPDATE SET data = excluded.data",
                (ns, sid, kind, key, text),
            )

    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        base = "SELECT key, data FROM records WHERE namespace = ? AND session_id = ? AND kind = ?"
        rows: list[tuple[str, str]] = []
        with self.transaction(write=False) as c:
            if self._live_row(c, ns, sid) is None:
                return []
            if keys is not None:
                for chunk in _chunks(list(dict.fromkeys(keys))):
                    rows += c.execute(f"{base} AND key IN ({_marks(len(chunk))})", (ns, sid, kind, *chunk)).fetchall()
                rows.sort()
                if last is not None:
                    rows = rows[-last:] if last else []
            elif last is not None:
                rows = c.execute(f"{base} ORDER BY key DESC LIMIT ?", (ns, sid, kind, last)).fetchall()[::-1]
            else:
                rows = c.execute(f"{base} ORDER BY key", (ns, sid, kind)).fetchall()
        return [(key, self._record(ns, sid, kind, key, data)) for key, data in rows]

    def _record(self, ns: str, sid: str, kind: str, key: str, data: str) -> dict[str, Any]:
        try:
            value = json.loads(data)
        except (ValueError, TypeError, RecursionError):
            value = None
        if not isinstance(value, dict):
            raise CorruptData(f"{self.path}: record {kind}/{key} of session {ns}/{sid} is not a JSON object",
                              path=str(self.path))
        return value

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        base = "DELETE FROM records WHERE namespace = ? AND session_id = ? AND kind = ?"
        with self.transaction() as c:
            if self._live_row(c, ns, sid) is None:  # an expired session is gone: nothing of it to delete
                return 0
            if keys is None:
                return c.execute(base, (ns, sid, kind)).rowcount
            return sum(
                c.execute(f"{base} AND key IN ({_marks(len(chunk))})", (ns, sid, kind, *chunk)).rowcount
                for chunk in _chunks(list(dict.fromkeys(keys)))
            )

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def ping(self) -> None:
        with self.reading() as c:
            c.execute("SELECT count(*) FROM sessions").fetchone()

    def stats(self) -> dict[str, Any]:
        with self.reading() as c:
            versions = dict(c.execute("SELECT component, version FROM schema_versions").fetchall())
            sessions, messages = c.execute("SELECT count(*), COALESCE(SUM(message_count), 0) FROM sessions").fetchone()
        size = self.path.stat().st_size if self.path.exists() else 0
        return {
            **super().stats(),
            "path": str(self.path),
            "schema_versions": versions,
            "sessions": sessions,
            "messages": messages,
            "file_bytes": size,
            "synchronous": self.synchronous.lower(),
        }

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
