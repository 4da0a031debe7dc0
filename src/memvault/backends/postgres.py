"""``postgresql://`` — PostgreSQL through psycopg 3 and psycopg_pool, with native sync and async faces.

Each operation is written once as a *plan*: a generator that yields :class:`Q` (one SQL statement and its
parameters) and receives the statement's rows, or yields :data:`BEGIN` / :data:`COMMIT` around statements that must
share a transaction. :meth:`PostgresStore.run_plan` executes a plan on a pooled ``psycopg.Connection``;
``store.aio.run_plan`` executes the very same plan on an ``AsyncConnection`` from an ``AsyncConnectionPool``.

Hot paths are single statements (one round trip, no explicit transaction). Every write (append, replace, ensure)
is one call of the PL/pgSQL function ``write_messages`` (migration v2): it locks the session row (creating it, or
starting it afresh when expired), so concurrent writers of a session queue there and the known-id check and seqs see
every committed write; it skips ids already stored, inserts the rest, trims to the cap and updates the counters.
Deleting a session and purging take a short locked transaction.

Message bodies are stored as TEXT holding the canonical encoding byte for byte (JSONB would reorder keys, and it
refuses ``\\u0000``, which is valid JSON and does occur in tool output). What queries need is extracted at write
time into typed columns: role, created_at, metadata (JSONB) and a tsvector for full-text search.

Times are epoch seconds (``double precision``) taken from the store's injected clock, never from the server, so
TTL visibility is the same on every backend and testable without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg import sql as pgsql
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from memvault.contract import MAX_PAGE, AppendOptions, SessionQuery, Store, pop_range
from memvault.cursors import decode_cursor, encode_cursor
from memvault.errors import (
    BackendUnavailable,
    InvalidCursor,
    InvalidFilter,
    InvalidMessage,
    InvalidURL,
    SchemaVersionError,
    SessionNotFound,
)
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch, to_epoch
from memvault.urls import mask_url
from memvault.validation import check_limit

logger = logging.getLogger("memvault.postgres")

R = TypeVar("R")
DEFAULT_SCHEMA = "memvault"
MAX_RETRIES = 5
#: characters of a message's text that go into its tsvector (a tsvector holds at most 1 MB)
MAX_INDEXED_CHARS = 100_000
PURGE_BATCH = 500
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: URL query keys that configure memvault rather than libpq
_OPTION_KEYS = {
    "schema": str,
    "min_size": int,
    "max_size": int,
    "pool_timeout": float,
    "statement_timeout": float,
    "ttl": float,
    "fts_config": str,
    "vector": lambda v: str(v).lower() not in ("0", "false", "no", "off"),
    "synchronous_commit": str,
    "prepare_threshold": int,
    "unavailable_timeout": float,
}


# -- plans ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Q:
    """One statement of a plan. The plan receives its result rows (a list of tuples; empty for no result set)."""

    sql: str
    params: Sequence[Any] | Mapping[str, Any] | None = None


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: yielded by a plan: the statements until COMMIT run in one transaction (rolled back if anything fails)
BEGIN = _Marker("BEGIN")
COMMIT = _Marker("COMMIT")

Plan = Generator[Any, Any, R]
#: seconds between reconnect probes while the server is unreachable
PROBE_INTERVAL = 1.0


class _Unreachable(Exception):
    """Raised by a checkout while the server is known to be down (mapped to BackendUnavailable)."""


_RETRY = (
    psycopg.errors.UniqueViolation,  # two writers raced to insert the same message id: the retry sees the winner
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


def _drive_sync(conn: psycopg.Connection[Any], plan: Plan[R]) -> R:
    """Run ``plan`` on ``conn``; each BEGIN..COMMIT span is one transaction."""
    stack: list[Any] = []
    send: Any = None
    try:
        while True:
            try:
                step = plan.send(send)
            except StopIteration as stop:
                result: R = stop.value
                break
            if step is BEGIN:
                tx = conn.transaction()
                tx.__enter__()
                stack.append(tx)
                send = None
            elif step is COMMIT:
                stack.pop().__exit__(None, None, None)
                send = None
            else:
                cur = conn.execute(step.sql, step.params)
                send = cur.fetchall() if cur.description is not None else []
        while stack:
            stack.pop().__exit__(None, None, None)
        if not conn.autocommit:
            conn.commit()
        return result
    except BaseException as exc:
        while stack:
            with contextlib.suppress(Exception):
                stack.pop().__exit__(type(exc), exc, exc.__traceback__)
        if not conn.autocommit and not conn.broken:
            with contextlib.suppress(Exception):
                conn.rollback()
        raise
    finally:
        plan.close()


async def _drive_async(conn: psycopg.AsyncConnection[Any], plan: Plan[R]) -> R:
    """The async twin of :func:`_drive_sync` (same plan, awaited I/O)."""
    stack: list[Any] = []
    send: Any = None
    try:
        while True:
            try:
                step = plan.send(send)
            except StopIteration as stop:
                result: R = stop.value
                break
            if step is BEGIN:
                tx = conn.transaction()
                await tx.__aenter__()
                stack.append(tx)
                send = None
            elif step is COMMIT:
                await stack.pop().__aexit__(None, None, None)
                send = None
            else:
                cur = await conn.execute(step.sql, step.params)
                send = await cur.fetchall() if cur.description is not None else []
        while stack:
            await stack.pop().__aexit__(None, None, None)
        if not conn.autocommit:
            await conn.commit()
        return result
    except BaseException as exc:
        while stack:
            with contextlib.suppress(Exception):
                await stack.pop().__aexit__(type(exc), exc, exc.__traceback__)
        if not conn.autocommit and not conn.broken:
            with contextlib.suppress(Exception):
                await conn.rollback()
        raise
    finally:
        plan.close()


# -- SQL ------------------------------------------------------------------------------------------------------------
# "{s}" stands for the quoted schema name, "{cfg}" for the quoted text-search configuration.

# Every write (append, replace, ensure) is one call of this function: one round trip. It locks the session row first
# (creating it, or replacing it when expired), so the known-id check and the seqs see every committed write; then
# inserts, trims to the cap, and updates the counters. Versions differ only in the known-id loop; change it only
# through a new migration.
_WRITE_FUNCTION = """
    CREATE OR REPLACE FUNCTION {s}.write_messages(
        p_ns text, p_sid text, p_ids text[], p_bodies text[], p_roles text[], p_created float8[], p_metas text[],
        p_texts text[], p_now float8, p_expires float8, p_user text, p_meta jsonb, p_cap bigint, p_replace boolean
    ) RETURNS TABLE (id text, namespace text, user_id text, created_at float8, updated_at float8, message_count bigint,
                     size_bytes bigint, metadata jsonb, expires_at float8, last_seq bigint, seqs bigint[])
    LANGUAGE plpgsql AS $fn$
    DECLARE
        s {s}.sessions%ROWTYPE;
        v_seqs bigint[] := '{}';
        v_seq bigint;
        v_known bigint;
        v_added bigint := 0;
        v_bytes bigint := 0;
        v_gone bigint;
        v_gone_bytes bigint;
    BEGIN
        SELECT * INTO s FROM {s}.sessions x WHERE x.namespace = p_ns AND x.id = p_sid FOR UPDATE;
        IF FOUND AND s.expires_at IS NOT NULL AND s.expires_at <= p_now THEN
            DELETE FROM {s}.messages m WHERE m.namespace = p_ns AND m.session_id = p_sid;
            DELETE FROM {s}.records r WHERE r.namespace = p_ns AND r.session_id = p_sid;
            DELETE FROM {s}.sessions x WHERE x.namespace = p_ns AND x.id = p_sid;
            s := NULL;
        END IF;
        IF s.id IS NULL THEN
            INSERT INTO {s}.sessions AS x (namespace, id, user_id, created_at, updated_at, expires_at, metadata)
            VALUES (p_ns, p_sid, p_user, p_now, p_now, p_expires, p_meta)
            ON CONFLICT ON CONSTRAINT sessions_pkey DO NOTHING;
            SELECT * INTO s FROM {s}.sessions x WHERE x.namespace = p_ns AND x.id = p_sid FOR UPDATE;
        ELSIF p_replace THEN
            DELETE FROM {s}.messages m WHERE m.namespace = p_ns AND m.session_id = p_sid;
            s.message_count := 0;
            s.size_bytes := 0;
        END IF;
        v_seq := s.last_seq;
{known_id_loop}
        s.message_count := s.message_count + v_added;
        s.size_bytes := s.size_bytes + v_bytes;
        IF p_cap IS NOT NULL AND s.message_count > p_cap THEN
            WITH doomed AS (
                DELETE FROM {s}.messages m WHERE m.namespace = p_ns AND m.session_id = p_sid AND m.seq IN (
                    SELECT d.seq FROM {s}.messages d WHERE d.namespace = p_ns AND d.session_id = p_sid
                    ORDER BY d.seq LIMIT s.message_count - p_cap)
                RETURNING octet_length(m.body) AS b
            ) SELECT count(*), COALESCE(sum(b), 0) INTO v_gone, v_gone_bytes FROM doomed;
            s.message_count := s.message_count - v_gone;
            s.size_bytes := s.size_bytes - v_gone_bytes;
        END IF;
        UPDATE {s}.sessions x SET last_seq = v_seq, message_count = s.message_count, size_bytes = s.size_bytes,
            updated_at = greatest(x.updated_at, p_now), expires_at = p_expires
        WHERE x.namespace = p_ns AND x.id = p_sid
        RETURNING x.* INTO s;
        RETURN QUERY SELECT s.id, s.namespace, s.user_id, s.created_at, s.updated_at, s.message_count, s.size_bytes,
            s.metadata, s.expires_at, s.last_seq, v_seqs;
    END
    $fn$;
    """

# v2: look the id up, then insert.
_KNOWN_ID_LOOP_V2 = """        FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
            SELECT m.seq INTO v_known FROM {s}.messages m
            WHERE m.namespace = p_ns AND m.session_id = p_sid AND m.id = p_ids[i];
            IF FOUND THEN
                v_seqs := v_seqs || v_known;
                CONTINUE;
            END IF;
            v_seq := v_seq + 1;
            INSERT INTO {s}.messages (namespace, session_id, seq, id, body, user_id, role, created_at, metadata, search)
            VALUES (p_ns, p_sid, v_seq, p_ids[i], p_bodies[i], s.user_id, p_roles[i], p_created[i], p_metas[i]::jsonb,
                    to_tsvector({cfg}, p_texts[i]));
            v_added := v_added + 1;
            v_bytes := v_bytes + octet_length(p_bodies[i]);
            v_seqs := v_seqs || v_seq;
        END LOOP;"""

# v3: the known-id check moves into the INSERT (ON CONFLICT on the unique id index). A PL/pgSQL function caches its
# plans per connection; the v2 SELECT planned while the table was empty kept walking the session's primary key until
# the next ANALYZE, so on a fresh, fast-growing database every append read the whole session.
_KNOWN_ID_LOOP_V3 = """        FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
            INSERT INTO {s}.messages (namespace, session_id, seq, id, body, user_id, role, created_at, metadata, search)
            VALUES (p_ns, p_sid, v_seq + 1, p_ids[i], p_bodies[i], s.user_id, p_roles[i], p_created[i],
                    p_metas[i]::jsonb, to_tsvector({cfg}, p_texts[i]))
            ON CONFLICT ON CONSTRAINT messages_namespace_session_id_id_key DO NOTHING;
            IF FOUND THEN
                v_seq := v_seq + 1;
                v_added := v_added + 1;
                v_bytes := v_bytes + octet_length(p_bodies[i]);
                v_seqs := v_seqs || v_seq;
            ELSE  -- a known id (a retry or a replay): report the seq it already has
                SELECT m.seq INTO v_known FROM {s}.messages m
                WHERE m.namespace = p_ns AND m.session_id = p_sid AND m.id = p_ids[i];
                v_seqs := v_seqs || v_known;
            END IF;
        END LOOP;"""

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE {s}.sessions (
        namespace     text COLLATE "C" NOT NULL,
        id            text COLLATE "C" NOT NULL,
        user_id       text COLLATE "C",
        created_at    double precision NOT NULL,
        updated_at    double precision NOT NULL,
        expires_at    double precision,
        message_count bigint NOT NULL DEFAULT 0,
        size_bytes    bigint NOT NULL DEFAULT 0,
        last_seq      bigint NOT NULL DEFAULT 0,
        metadata      jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (namespace, id)
    );
    CREATE INDEX sessions_by_updated ON {s}.sessions (namespace, updated_at DESC, id DESC);
    CREATE INDEX sessions_by_user ON {s}.sessions (namespace, user_id, updated_at DESC, id DESC)
        WHERE user_id IS NOT NULL;
    CREATE INDEX sessions_by_expiry ON {s}.sessions (expires_at) WHERE expires_at IS NOT NULL;

    CREATE TABLE {s}.messages (
        namespace  text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        seq        bigint NOT NULL,
        id         text COLLATE "C" NOT NULL,
        body       text NOT NULL,
        user_id    text COLLATE "C",
        role       text NOT NULL,
        created_at double precision NOT NULL,
        metadata   jsonb,
        search     tsvector,
        PRIMARY KEY (namespace, session_id, seq),
        UNIQUE (namespace, session_id, id)
    );
    CREATE INDEX messages_by_time ON {s}.messages (namespace, created_at DESC);
    CREATE INDEX messages_by_user ON {s}.messages (namespace, user_id, created_at DESC) WHERE user_id IS NOT NULL;
    CREATE INDEX messages_search ON {s}.messages USING gin (search);

    CREATE TABLE {s}.records (
        namespace  text COLLATE "C" NOT NULL,
        session_id text COLLATE "C" NOT NULL,
        kind       text COLLATE "C" NOT NULL,
        key        text COLLATE "C" NOT NULL,
        data       text NOT NULL,
        PRIMARY KEY (namespace, session_id, kind, key)
    );
    """,
    _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V2),  # v2
    _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V3),  # v3
    # v4: session metadata is kept verbatim as json (jsonb rewrote numbers: 1e300 came back as an int, -0.0 as 0);
    # listing filters cast it to jsonb, so their equality is still jsonb's (objects in any key order, true is not 1)
    """
    DROP FUNCTION {s}.write_messages(text, text, text[], text[], text[], float8[], text[], text[], float8, float8,
                                     text, jsonb, bigint, boolean);
    ALTER TABLE {s}.sessions ALTER COLUMN metadata DROP DEFAULT;
    ALTER TABLE {s}.sessions ALTER COLUMN metadata TYPE json USING metadata::json;
    ALTER TABLE {s}.sessions ALTER COLUMN metadata SET DEFAULT '{}';
    """
    + _WRITE_FUNCTION.replace("{known_id_loop}", _KNOWN_ID_LOOP_V3)
    .replace("p_meta jsonb", "p_meta json")
    .replace("metadata jsonb, expires_at", "metadata json, expires_at"),
]

_COLS = "id, namespace, user_id, created_at, updated_at, message_count, size_bytes, metadata, expires_at, last_seq"
_LIVE = "(expires_at IS NULL OR expires_at > %(now)s)"

_WRITE = (
    "SELECT * FROM {s}.write_messages(%(ns)s, %(sid)s, %(ids)s::text[], %(bodies)s::text[], %(roles)s::text[], "
    "%(created)s::float8[], %(metas)s::text[], %(texts)s::text[], %(now)s::float8, %(expires)s::float8, "
    "%(user)s::text, %(meta)s::json, %(cap)s::bigint, %(replace)s::boolean)"
)

_LOCK = "SELECT expires_at FROM {s}.sessions WHERE namespace = %s AND id = %s FOR UPDATE"

_GET = f"SELECT {_COLS} FROM {{s}}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {_LIVE}"

_SESSION_LIVE = (
    "EXISTS (SELECT 1 FROM {s}.sessions s WHERE s.namespace = %(ns)s AND s.id = %(sid)s "
    "AND (s.expires_at IS NULL OR s.expires_at > %(now)s))"
)

_DELETE_SESSION = """
WITH m AS (DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s),
     r AS (DELETE FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s)
DELETE FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s
RETURNING (expires_at IS NULL OR expires_at > %(now)s)
"""

_PURGE_LOCK = """
SELECT namespace, id FROM {s}.sessions WHERE expires_at IS NOT NULL AND expires_at <= %(now)s
ORDER BY expires_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED
"""

_PURGE = """
WITH dead AS (SELECT * FROM unnest(%(nss)s::text[], %(sids)s::text[]) AS d(namespace, id)),
     m AS (DELETE FROM {s}.messages x USING dead d WHERE x.namespace = d.namespace AND x.session_id = d.id),
     r AS (DELETE FROM {s}.records x USING dead d WHERE x.namespace = d.namespace AND x.session_id = d.id)
DELETE FROM {s}.sessions x USING dead d WHERE x.namespace = d.namespace AND x.id = d.id
"""

_DELETE_MESSAGES = """
WITH del AS (
    DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s AND id = ANY(%(ids)s::text[])
        AND {LIVE_SESSION}
    RETURNING octet_length(body) AS b
), upd AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM del),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(b), 0) FROM del),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM del)
)
SELECT count(*) FROM del
"""

_POP_LOCK = f"SELECT message_count FROM {{s}}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {_LIVE} FOR UPDATE"

# after _POP_LOCK, in the same transaction: a new statement, so its snapshot sees pops committed while it waited
_POP = """
WITH target AS (
    SELECT seq FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s
    ORDER BY seq {ORDER} LIMIT %(n)s OFFSET %(off)s
), del AS (
    DELETE FROM {s}.messages m USING target t WHERE m.namespace = %(ns)s AND m.session_id = %(sid)s AND m.seq = t.seq
    RETURNING m.seq, m.body
), upd AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM del),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(octet_length(body)), 0) FROM del),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s
)
SELECT seq, body FROM del ORDER BY seq
"""

_POP_IDS = """
WITH del AS (
    DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s AND id = ANY(%(ids)s::text[])
        AND {LIVE_SESSION}
    RETURNING seq, body
), upd AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM del),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(octet_length(body)), 0) FROM del),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM del)
)
SELECT seq, body FROM del ORDER BY seq
"""

_CLEAR = """
WITH live AS (
    SELECT message_count FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE}
), m AS (
    DELETE FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s AND EXISTS (SELECT 1 FROM live)
    RETURNING octet_length(body) AS b
), r AS (
    DELETE FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s AND EXISTS (SELECT 1 FROM live)
), u AS (
    UPDATE {s}.sessions SET message_count = message_count - (SELECT count(*) FROM m),
                            size_bytes = size_bytes - (SELECT COALESCE(sum(b), 0) FROM m),
                            updated_at = greatest(updated_at, %(now)s)
    WHERE namespace = %(ns)s AND id = %(sid)s AND EXISTS (SELECT 1 FROM live)
)
SELECT (SELECT count(*) FROM m), EXISTS (SELECT 1 FROM live)
"""

_PUT_RECORD = """
WITH live AS (
    SELECT 1 FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE} FOR SHARE
)
INSERT INTO {s}.records (namespace, session_id, kind, key, data)
SELECT %(ns)s, %(sid)s, %(kind)s, %(key)s, %(data)s FROM live
ON CONFLICT (namespace, session_id, kind, key) DO UPDATE SET data = excluded.data
RETURNING 1
"""


def _render(template: str, schema: pgsql.Composable, cfg: pgsql.Composable, conn: Any) -> str:
    """Fill the placeholders of a SQL template. Literal ``%`` of the template are left to psycopg."""
    text = (
        template.replace("{LIVE_SESSION}", _SESSION_LIVE)
        .replace("{LIVE}", _LIVE)
        .replace("{COLS}", _COLS)
    )
    return text.replace("{s}", schema.as_string(conn)).replace("{cfg}", cfg.as_string(conn) + "::regconfig")


# -- helpers --------------------------------------------------------------------------------------------------------


def _strip_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string (jsonb and text columns cannot hold them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    return value


def _jsonb_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if "\\u0000" in text:
        text = json.dumps(_strip_nul(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text


def _display(conninfo: str) -> str:
    """A conninfo string (URL or ``key=value`` list) safe to show: the password is replaced by ``***``."""
    if "://" in conninfo:
        masked = mask_url(conninfo)
        parts = urlsplit(masked)
        if parts.query:
            query = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)]
            masked = urlunsplit(parts._replace(query=urlencode(query, safe="/*")))
        return masked
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", conninfo, flags=re.IGNORECASE)


def _password(conninfo: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or None  # type: ignore[return-value]
    except psycopg.Error:
        return None


def _encode_find_cursor(key: float, sid: str, seq: int) -> str:
    return encode_cursor("m", key, sid, seq)


def _decode_find_cursor(cursor: str) -> tuple[float, str, int]:
    tag, key, sid, seq = decode_cursor(cursor, str, float, str, int, what="find_messages page")
    if tag != "m":
        raise InvalidCursor(f"invalid cursor {cursor[:40]!r}: pass back the next_cursor of a previous find_messages page")
    return key, sid, seq


def _epoch(value: datetime | float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_epoch(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidFilter(f"{what} must be a datetime or epoch seconds, got {type(value).__name__}")


class PostgresStore(Store):
    """Sessions, messages and records in PostgreSQL tables of one schema (default ``memvault``).

    Open with :meth:`from_url` (``postgresql://user:pw@host:5432/db?schema=...``) or :meth:`from_client`
    (an existing ``ConnectionPool``, ``AsyncConnectionPool`` or ``psycopg.Connection``).

    Options: ``schema``, ``min_size`` / ``max_size`` (pool), ``connect_timeout`` (s), ``pool_timeout`` (s to wait
    for a pooled connection while the pool is busy), ``unavailable_timeout`` (s, default 2: how long a call waits
    while every attempt to connect fails before it raises BackendUnavailable; during an outage later calls fail at
    once, with one reconnect probe per second), ``statement_timeout`` (s, None = server default), ``ttl`` (default sliding TTL in s,
    None = never), ``fts_config`` (text-search configuration, default ``english``; keep it fixed per schema),
    ``vector`` (enable pgvector when available, default True), ``synchronous_commit`` (``on`` by default; ``off``
    halves append latency but the last few hundred ms of commits can be lost if the server crashes),
    ``prepare_threshold`` (psycopg server-side prepares; None when behind a transaction-mode pgbouncer), ``clock``.
    """

    backend: ClassVar[str] = "postgres"
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess", "native_async", "fulltext"})

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        apool: AsyncConnectionPool[Any] | None = None,
        connection: psycopg.Connection[Any] | None = None,
        schema: str = DEFAULT_SCHEMA,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        pool_timeout: float = 10.0,
        unavailable_timeout: float = 2.0,
        statement_timeout: float | None = 30.0,
        ttl: float | None = None,
        fts_config: str = "english",
        vector: bool = True,
        synchronous_commit: str | None = None,
        prepare_threshold: int | None = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(schema, str) or not _IDENT.match(schema):
            raise InvalidURL(f"schema must be a plain SQL identifier (letters, digits, _; max 63), got {schema!r}")
        if not _IDENT.match(fts_config):
            raise InvalidURL(f"fts_config must be a text-search configuration name, got {fts_config!r}")
        if min_size < 0 or max_size < max(min_size, 1):
            raise InvalidURL(f"pool sizes must satisfy 0 <= min_size <= max_size, >= 1; got {min_size}, {max_size}")
        self.schema = schema
        self.default_ttl = ttl  # type: ignore[misc]
        self.fts_config = fts_config
        self.connect_timeout = float(connect_timeout)
        self.pool_timeout = float(pool_timeout)
        self.unavailable_timeout = min(float(unavailable_timeout), self.pool_timeout)
        #: outage breaker: monotonic time the server was found unreachable (None = reachable), next probe time
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._probe_lock = threading.Lock()
        self.min_size, self.max_size = min_size, max_size
        self.has_vector = False
        self.vector_schema: str | None = None
        self._closed = False
        self._lock = threading.RLock()  # guards a single shared Connection (from_client(Connection))
        self._owned: list[Any] = []  # pools this store created and must close

        # connection parameters for the pools this store creates
        self._kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": prepare_threshold}
        opts = []
        if statement_timeout is not None:
            opts.append(f"-c statement_timeout={int(statement_timeout * 1000)}")
        if synchronous_commit is not None:
            if synchronous_commit.lower() not in ("on", "off", "local", "remote_write", "remote_apply"):
                raise InvalidURL(f"synchronous_commit must be on, off, local, ...; got {synchronous_commit!r}")
            opts.append(f"-c synchronous_commit={synchronous_commit.lower()}")
        if opts:
            self._kwargs["options"] = " ".join(opts)
        self._kwargs["connect_timeout"] = max(1, round(self.connect_timeout))

        self._conn = connection
        self._pool = pool
        self._apool = apool
        self._apool_loop: asyncio.AbstractEventLoop | None = None
        self._apool_owned = False
        if conninfo is None:
            if pool is not None:
                conninfo = pool.conninfo
            elif apool is not None:
                conninfo = apool.conninfo
            elif connection is not None:
                conninfo = connection.info.dsn
            else:
                raise InvalidURL("PostgresStore needs a URL, a pool or a connection")
        self._conninfo = conninfo
        self._secret = _password(conninfo)
        self._display = _display(conninfo)
        self._sql_cache: dict[str, str] = {}
        self._schema_ident = pgsql.Identifier(schema)
        self._cfg_literal = pgsql.Literal(fts_config)

        try:
            if self._pool is None and self._conn is None:
                if apool is not None:
                    # sync calls need a sync pool: derive one from the async pool's parameters
                    self._pool = ConnectionPool(
                        apool.conninfo, kwargs=dict(apool.kwargs or {}), min_size=0, max_size=max_size,
                        timeout=self.pool_timeout, open=False, name="memvault-sync",
                    )
                else:
                    # connect once directly so an unreachable server fails fast (a pool would keep retrying)
                    with psycopg.connect(conninfo, **self._kwargs) as probe:
                        self._setup(probe, vector)
                    self._pool = ConnectionPool(
                        conninfo, kwargs=dict(self._kwargs), min_size=min_size, max_size=max_size,
                        timeout=self.pool_timeout, open=False, name="memvault",
                    )
                self._owned.append(self._pool)
                self._pool.open(wait=False)
                if apool is not None:
                    with self.connection() as conn:
                        self._setup(conn, vector)
            else:
                with self.connection() as conn:
                    self._setup(conn, vector)
        except (psycopg.Error, PoolTimeout, PoolClosed) as exc:
            self.close()
            raise self._fail(exc) from None
        except BaseException:
            self.close()
            raise
        if self.has_vector:
            self.capabilities = type(self).capabilities | {"vector"}  # type: ignore[misc]
        self._aio_face: PostgresAsyncStore | None = None

    # -- construction ------------------------------------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """``postgresql://user:pw@host:port/db?schema=..&min_size=..&...``; libpq parameters (sslmode, host for a
        Unix socket, connect_timeout, ...) stay in the URL, memvault options may be given there or as keywords."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            raise InvalidURL(f"{mask_url(url)!r} is not a postgresql:// URL")
        libpq: list[tuple[str, str]] = []
        found: dict[str, Any] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _OPTION_KEYS or key == "connect_timeout":
                try:
                    if key in ("ttl", "statement_timeout", "prepare_threshold") and value.lower() in ("none", ""):
                        found[key] = None
                    else:
                        found[key] = _OPTION_KEYS.get(key, float)(value)  # type: ignore[operator]
                except ValueError:
                    raise InvalidURL(f"bad value {value!r} for {key} in {mask_url(url)!r}") from None
            else:
                libpq.append((key, value))
        conninfo = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(libpq, safe="/")))
        return cls(conninfo, **{**found, **options})

    @classmethod
    def from_client(cls, client: Any, **options: Any) -> PostgresStore:
        """Wrap an existing ``psycopg_pool.ConnectionPool``, ``AsyncConnectionPool`` or ``psycopg.Connection``.
        The caller keeps ownership: :meth:`close` does not close it."""
        if isinstance(client, ConnectionPool):
            return cls(pool=client, **options)
        if isinstance(client, AsyncConnectionPool):
            return cls(apool=client, **options)
        if isinstance(client, psycopg.Connection):
            return cls(connection=client, **options)
        raise InvalidURL(
            f"cannot build a PostgreSQL store from a {type(client).__name__}; pass a psycopg_pool.ConnectionPool, "
            "an AsyncConnectionPool, a psycopg.Connection or a postgresql:// URL"
        )

    @property
    def url(self) -> str:
        return self._display

    def _sql(self, template: str) -> str:
        text = self._sql_cache.get(template)
        if text is None:
            text = _render(template, self._schema_ident, self._cfg_literal, None)
            self._sql_cache[template] = text
        return text

    def qualify(self, name: str) -> str:
        """``name`` qualified with this store's schema, quoted for SQL (for extensions' own tables)."""
        return f"{pgsql.Identifier(self.schema).as_string(None)}.{pgsql.Identifier(name).as_string(None)}"

    # -- errors ------------------------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text

    def _translate(self, exc: BaseException) -> BaseException:
        """Map driver errors to memvault errors; never let the password through."""
        if isinstance(exc, _Unreachable):
            return BackendUnavailable(f"PostgreSQL at {self._display} is unreachable: {exc}")
        if isinstance(exc, PoolClosed) or (self._closed and isinstance(exc, psycopg.InterfaceError)):
            return BackendUnavailable(f"the PostgreSQL store {self._display} is closed")
        if isinstance(exc, PoolTimeout):
            return BackendUnavailable(
                f"no PostgreSQL connection to {self._display} within {self.pool_timeout:g}s: the server is down or "
                "unreachable, or the pool is exhausted (raise max_size / pool_timeout)"
            )
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return BackendUnavailable(
                f"PostgreSQL at {self._display} cancelled a statement ({self._scrub(str(exc)).strip()}); "
                "raise statement_timeout if the work is legitimately slow"
            )
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return BackendUnavailable(
                f"PostgreSQL at {self._display} is unavailable: {self._scrub(str(exc)).strip()}"
            )
        return exc

    def _fail(self, exc: BaseException) -> BaseException:
        mapped = self._translate(exc)
        if mapped is not exc:
            mapped.__cause__ = None
            mapped.__suppress_context__ = True
        return mapped

    # -- connections -------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _checkout(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise PoolClosed("store closed")
        if self._conn is not None:
            with self._lock:
                yield self._conn
            return
        if self._down_since is not None:
            self._probe()  # fails at once while the server is down; a fresh pool once it answers again
        assert self._pool is not None
        pool = self._pool
        errors = pool.get_stats().get("connections_errors", 0)
        entered = False
        try:
            with pool.connection(timeout=self.unavailable_timeout) as conn:
                entered = True
                yield conn
                return
        except PoolTimeout:
            if entered:
                raise
        stats = pool.get_stats()
        # not a busy pool (that is full, and worth waiting for) but one that cannot connect: an outage
        if stats.get("connections_errors", 0) > errors or stats.get("pool_size", 0) < pool.max_size:
            self._went_down()
            raise _Unreachable(f"no connection could be made within {self.unavailable_timeout:g}s")
        with pool.connection(timeout=self.pool_timeout - self.unavailable_timeout) as conn:
            yield conn

    def _went_down(self) -> None:
        with self._probe_lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self._next_probe = self._down_since + PROBE_INTERVAL
                logger.warning("postgres: %s is unreachable; calls fail fast until it answers a probe", self._display)

    def _still_down(self) -> _Unreachable:
        now = time.monotonic()
        return _Unreachable(f"down for {now - (self._down_since or now):.1f}s; next reconnect probe in "
                            f"{max(self._next_probe - now, 0):.1f}s")

    def _probe(self) -> None:
        """While the server is down: at most one direct connection attempt per PROBE_INTERVAL, every other call
        fails at once. When a probe connects, the pool (whose reconnect backoff may have grown to many seconds)
        is replaced by a fresh one, so the first call after an outage does not wait."""
        with self._probe_lock:
            if self._down_since is None:
                return
            now = time.monotonic()
            if now < self._next_probe:
                raise self._still_down()
            self._next_probe = now + PROBE_INTERVAL
            pool = self._pool
            conninfo = pool.conninfo if pool is not None else self._conninfo
            kwargs = dict(pool.kwargs or {}) if pool is not None else dict(self._kwargs)
            kwargs["connect_timeout"] = max(1, round(min(self.connect_timeout, 2.0)))
            try:
                psycopg.connect(conninfo, **kwargs).close()
            except psycopg.Error as exc:
                raise _Unreachable(f"down for {now - self._down_since:.1f}s ({self._scrub(str(exc)).strip()})") from None
            self._down_since = None
            old = self._pool
            if old is not None and old in self._owned:
                fresh = ConnectionPool(old.conninfo, kwargs=dict(old.kwargs or {}), min_size=self.min_size,
                                       max_size=self.max_size, timeout=self.pool_timeout, open=False, name=old.name)
                fresh.open(wait=False)
                self._pool = fresh
                self._owned[self._owned.index(old)] = fresh
                threading.Thread(target=old.close, kwargs={"timeout": 1.0}, daemon=True).start()
            logger.warning("postgres: %s answers again", self._display)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit for pools this store made) for extensions; errors are translated."""
        try:
            with self._checkout() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout, PoolClosed, _Unreachable) as exc:
            raise self._fail(exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection inside one transaction (committed on success, rolled back on error)."""
        with self.connection() as conn, conn.transaction():
            yield conn

    def _retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether a failed plan may run again: write conflicts (a few times), or a connection that died under it
        (once: a pooled connection may predate a server restart). Plans are safe to repeat: appends are
        idempotent on message id and every plan's transaction either committed whole or not at all."""
        if isinstance(exc, _RETRY):
            return attempt < MAX_RETRIES
        if isinstance(exc, (PoolTimeout, PoolClosed, psycopg.errors.QueryCanceled, _Unreachable)) or self._closed:
            return False
        return isinstance(exc, psycopg.OperationalError) and attempt < 2

    def run_plan(self, plan_fn: Callable[..., Plan[R]], *args: Any) -> R:
        """Execute a plan (see module doc) on a pooled connection, retrying transient failures."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._checkout() as conn:
                    return _drive_sync(conn, plan_fn(*args))
            except (psycopg.Error, PoolTimeout, PoolClosed, _Unreachable) as exc:
                if not self._retry(exc, attempt):
                    self._suspect(exc)
                    raise self._fail(exc) from None
                logger.debug("postgres: retrying %s after %s", getattr(plan_fn, "__name__", "plan"), type(exc).__name__)

    def _suspect(self, exc: BaseException) -> None:
        """A call gave up on a connection error: if the server does not take a new connection either, it is down
        (open the breaker, so the next calls fail at once instead of waiting for the pool)."""
        if self._down_since is not None or self._conn is not None or self._closed:
            return
        if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or isinstance(
                exc, psycopg.errors.QueryCanceled):
            return
        kwargs = {**dict(self._pool.kwargs or {}), "connect_timeout": 1} if self._pool is not None else self._kwargs
        try:
            psycopg.connect(self._pool.conninfo if self._pool is not None else self._conninfo, **kwargs).close()
        except psycopg.Error:
            self._went_down()

    # -- schema ------------------------------------------------------------------------------------------------------
    def _setup(self, conn: psycopg.Connection[Any], vector: bool) -> None:
        try:
            self._migrate(conn, "core", MIGRATIONS, vector=vector)
            row = conn.execute(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'vector'"
            ).fetchone()
            if not conn.autocommit:
                conn.commit()
        except psycopg.OperationalError as exc:
            raise self._fail(exc) from None
        self.has_vector = row is not None
        self.vector_schema = row[0] if row else None

    def migrate(self, component: str, steps: Sequence[str | Callable[[psycopg.Connection[Any]], None]]) -> int:
        """Bring ``component``'s tables to version ``len(steps)``. A step is a SQL script (``{schema}`` stands for
        the quoted schema) or a callable taking the connection. Runs in one transaction under an advisory lock, so
        processes starting at once are safe; ``search_path`` is the schema, then the pgvector schema, then public."""
        with self.connection() as conn:
            try:
                version = self._migrate(conn, component, steps)
                if not conn.autocommit:
                    conn.commit()
                return version
            except psycopg.Error:
                if not conn.autocommit:
                    conn.rollback()
                raise

    def _migrate(
        self,
        conn: psycopg.Connection[Any],
        component: str,
        steps: Sequence[str | Callable[[psycopg.Connection[Any]], None]],
        *,
        vector: bool = False,
    ) -> int:
        schema = pgsql.Identifier(self.schema).as_string(conn)
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = '120s'")
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"memvault:schema:{self.schema}",))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            if vector:
                self._enable_vector(conn)
            path = [schema]
            vrow = conn.execute(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                "WHERE e.extname = 'vector'"
            ).fetchone()
            if vrow:
                path.append(pgsql.Identifier(vrow[0]).as_string(conn))
            path.append("public")
            conn.execute(f"SET LOCAL search_path TO {', '.join(dict.fromkeys(path))}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_versions "
                "(component text PRIMARY KEY, version integer NOT NULL)"
            )
            row = conn.execute(
                f"SELECT version FROM {schema}.schema_versions WHERE component = %s", (component,)
            ).fetchone()
            current = row[0] if row else 0
            if current > len(steps):
                raise SchemaVersionError(
                    f"{self._display} schema {self.schema}: {component} is at v{current}, newer than this memvault "
                    f"(v{len(steps)}); upgrade memvault"
                )
            for number, step in enumerate(steps[current:], current + 1):
                logger.info("postgres: migrating %s.%s to v%d", self.schema, component, number)
                if callable(step):
                    step(conn)
                else:
                    script = _render(step, self._schema_ident, self._cfg_literal, conn).replace("{schema}", schema)
                    conn.execute(script.encode())  # bytes: a script may hold literal % signs
            if current < len(steps):
                conn.execute(
                    f"INSERT INTO {schema}.schema_versions VALUES (%s, %s) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, len(steps)),
                )
            return len(steps)

    def _enable_vector(self, conn: psycopg.Connection[Any]) -> None:
        """``CREATE EXTENSION vector`` when the server has it and we may; sessions work without it."""
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            return
        if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
            logger.info("postgres: pgvector is not installed on %s; vector search stays off", self._display)
            return
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('memvault:extension:vector'))")
        try:
            with conn.transaction():  # a savepoint: a refusal must not abort the migration
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        except psycopg.errors.DatabaseError as exc:
            logger.warning("postgres: could not enable pgvector on %s (%s); vector search stays off",
                           self._display, self._scrub(str(exc)).strip())

    # -- row mapping -------------------------------------------------------------------------------------------------
    def _info(self, row: Sequence[Any]) -> SessionInfo:
        sid, ns, user, created, updated, count, size, meta, expires, last_seq = row[:10]
        return SessionInfo(
            id=sid,
            namespace=ns,
            user_id=user,
            created_at=from_epoch(created),  # type: ignore[arg-type]
            updated_at=from_epoch(updated),  # type: ignore[arg-type]
            message_count=count,
            size_bytes=size,
            metadata=meta if isinstance(meta, dict) else json.loads(meta),
            expires_at=from_epoch(expires),
            backend=self.backend,
            last_seq=last_seq,
        )

    def _decode(self, ns: str, sid: str, seq: int, body: str) -> Message:
        return decode_body(body, session_id=sid, seq=seq, where=f"{self._display} {self.schema} {ns}/{sid}#{seq}")

    def _append_params(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> dict[str, Any]:
        now = self.clock()
        ids, bodies, roles, created, metas, texts = [], [], [], [], [], []
        for record in records:
            if "\x00" in record.id:
                raise InvalidMessage(f"message id {record.id[:40]!r} holds a NUL character; PostgreSQL refuses it")
            message = decode_body(record.body, session_id=sid, seq=None)
            ids.append(record.id)
            bodies.append(record.body)
            roles.append(message.role)
            created.append(to_epoch(message.created_at))
            metas.append(_jsonb_text(message.metadata) if message.metadata else None)
            texts.append(message.text[:MAX_INDEXED_CHARS].replace("\x00", ""))
        meta = json.dumps(dict(options.metadata or {}), ensure_ascii=False, allow_nan=False)
        return {
            "ns": ns,
            "sid": sid,
            "ids": ids,
            "bodies": bodies,
            "roles": roles,
            "created": created,
            "metas": metas,
            "texts": texts,
            "now": now,
            "expires": None if options.ttl is None else now + options.ttl,
            "user": options.user_id,
            "meta": meta,
        }

    # -- plans (the logic, written once for both faces) --------------------------------------------------------------
    def _p_write(
        self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions, replace: bool = False
    ) -> Plan[tuple[SessionInfo, list[int]]]:
        params = self._append_params(ns, sid, records, options)
        params["cap"], params["replace"] = options.max_messages, replace
        rows = yield Q(self._sql(_WRITE), params)
        return self._info(rows[0]), list(rows[0][10])

    def _p_append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Plan[list[int]]:
        _, seqs = yield from self._p_write(ns, sid, records, options)
        return seqs

    def _p_replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Plan[list[int]]:
        _, seqs = yield from self._p_write(ns, sid, records, options, replace=True)
        return seqs

    def _p_ensure_session(self, ns: str, sid: str, options: AppendOptions) -> Plan[SessionInfo]:
        info, _ = yield from self._p_write(ns, sid, [], options)
        return info

    def _p_get_session(self, ns: str, sid: str) -> Plan[SessionInfo | None]:
        rows = yield Q(self._sql(_GET), {"ns": ns, "sid": sid, "now": self.clock()})
        return self._info(rows[0]) if rows else None

    def _p_delete_session(self, ns: str, sid: str) -> Plan[bool]:
        yield BEGIN
        locked = yield Q(self._sql(_LOCK), (ns, sid))
        if not locked:
            yield COMMIT
            return False
        rows = yield Q(self._sql(_DELETE_SESSION), {"ns": ns, "sid": sid, "now": self.clock()})
        yield COMMIT
        return bool(rows and rows[0][0])

    def _p_list_sessions(self, query: SessionQuery) -> Plan[Page[SessionInfo]]:
        limit = check_limit(query.limit, maximum=MAX_PAGE)
        where = ["namespace = %s", "(expires_at IS NULL OR expires_at > %s)"]
        params: list[Any] = [query.namespace, self.clock()]
        if query.user_id is not None:
            where.append("user_id = %s")
            params.append(query.user_id)
        if query.updated_after is not None:
            where.append("updated_at >= %s")
            params.append(query.updated_after)
        if query.updated_before is not None:
            where.append("updated_at < %s")
            params.append(query.updated_before)
        for key, value in (query.metadata or {}).items():
            # jsonb equality: numbers by value, objects regardless of key order, true is not 1
            where.append("(metadata -> %s)::jsonb = %s::jsonb")
            params.extend([key, _jsonb_text(value)])
        if query.cursor:
            updated, sid = decode_cursor(query.cursor, float, str)
            where.append("(updated_at, id) < (%s, %s)")
            params.extend([updated, sid])
        sql = (
            f"SELECT {_COLS} FROM {self._sql('{s}')}.sessions WHERE {' AND '.join(where)} "
            "ORDER BY updated_at DESC, id DESC LIMIT %s"
        )
        rows = yield Q(sql, [*params, limit + 1])
        items = [self._info(r) for r in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            cursor = encode_cursor(rows[limit - 1][4], rows[limit - 1][0])
        return Page(items, cursor)

    def _p_purge_expired(self) -> Plan[int]:
        total = 0
        now = self.clock()
        while True:
            yield BEGIN
            dead = yield Q(self._sql(_PURGE_LOCK), {"now": now, "batch": PURGE_BATCH})
            if dead:
                yield Q(self._sql(_PURGE), {"nss": [r[0] for r in dead], "sids": [r[1] for r in dead]})
            yield COMMIT
            total += len(dead)
            if len(dead) < PURGE_BATCH:
                return total

    def _p_read(
        self,
        ns: str,
        sid: str,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> Plan[list[Message]]:
        if last == 0 or limit == 0:
            return []
        where = "namespace = %(ns)s AND session_id = %(sid)s"
        params: dict[str, Any] = {"ns": ns, "sid": sid, "now": self.clock()}
        if start is not None:
            where += " AND seq >= %(start)s"
            params["start"] = start
        if stop is not None:
            where += " AND seq < %(stop)s"
            params["stop"] = stop
        base = f"SELECT seq, body FROM {{s}}.messages WHERE {where} AND {{LIVE_SESSION}}"
        if last is not None:
            rows = yield Q(self._sql(base + " ORDER BY seq DESC LIMIT %(n)s"), {**params, "n": last})
            rows.reverse()
            if limit is not None:
                rows = rows[:limit]
        elif limit is not None:
            rows = yield Q(self._sql(base + " ORDER BY seq LIMIT %(n)s"), {**params, "n": limit})
        else:
            rows = yield Q(self._sql(base + " ORDER BY seq"), params)
        return [self._decode(ns, sid, seq, body) for seq, body in rows]

    def _p_get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Plan[list[Message]]:
        wanted = [i for i in dict.fromkeys(ids) if "\x00" not in i]
        if not wanted:
            return []
        rows = yield Q(
            self._sql(
                "SELECT seq, body FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s "
                "AND id = ANY(%(ids)s::text[]) AND {LIVE_SESSION} ORDER BY seq"
            ),
            {"ns": ns, "sid": sid, "ids": wanted, "now": self.clock()},
        )
        return [self._decode(ns, sid, seq, body) for seq, body in rows]

    def _p_delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Plan[int]:
        wanted = [i for i in dict.fromkeys(ids) if "\x00" not in i]
        if not wanted:
            return 0
        rows = yield Q(self._sql(_DELETE_MESSAGES), {"ns": ns, "sid": sid, "ids": wanted, "now": self.clock()})
        return int(rows[0][0])

    def _p_pop_messages(
        self, ns: str, sid: str, index: int | None, count: int, ids: Sequence[str] | None
    ) -> Plan[list[Message]]:
        params: dict[str, Any] = {"ns": ns, "sid": sid, "now": self.clock()}
        if ids is not None:  # one statement: RETURNING names exactly the rows this statement deleted
            wanted = [i for i in dict.fromkeys(ids) if "\x00" not in i]
            if not wanted:
                return []
            rows = yield Q(self._sql(_POP_IDS), {**params, "ids": wanted})
            return [self._decode(ns, sid, seq, body) for seq, body in rows]
        index = index or 0
        yield BEGIN
        locked = yield Q(self._sql(_POP_LOCK), params)
        span = pop_range(int(locked[0][0]), index, count) if locked else None
        if span is None:
            yield COMMIT
            return []
        size, (start, stop) = int(locked[0][0]), span
        backwards = start > size - stop  # nearer the end: walk the primary key backwards
        params.update(n=stop - start, off=size - stop if backwards else start)
        rows = yield Q(self._sql(_POP.replace("{ORDER}", "DESC" if backwards else "ASC")), params)
        yield COMMIT
        return [self._decode(ns, sid, seq, body) for seq, body in rows]

    def _p_count(self, ns: str, sid: str) -> Plan[int]:
        rows = yield Q(
            self._sql("SELECT message_count FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE}"),
            {"ns": ns, "sid": sid, "now": self.clock()},
        )
        return int(rows[0][0]) if rows else 0

    def _p_clear(self, ns: str, sid: str) -> Plan[int]:
        rows = yield Q(self._sql(_CLEAR), {"ns": ns, "sid": sid, "now": self.clock()})
        return int(rows[0][0])

    def _p_put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> Plan[None]:
        text = json.dumps(data, ensure_ascii=False)
        rows = yield Q(
            self._sql(_PUT_RECORD),
            {"ns": ns, "sid": sid, "kind": kind, "key": key, "data": text, "now": self.clock()},
        )
        if not rows:
            raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")

    def _p_get_records(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, last: int | None = None
    ) -> Plan[list[tuple[str, dict[str, Any]]]]:
        if last == 0:
            return []
        base = (
            "SELECT key, data FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s"
            " AND {LIVE_SESSION}"
        )
        params: dict[str, Any] = {"ns": ns, "sid": sid, "kind": kind, "now": self.clock()}
        if keys is not None:
            params["keys"] = list(dict.fromkeys(keys))
            base += " AND key = ANY(%(keys)s::text[])"
        if last is not None:
            rows = yield Q(self._sql(base + " ORDER BY key DESC LIMIT %(n)s"), {**params, "n": last})
            rows.reverse()
        else:
            rows = yield Q(self._sql(base + " ORDER BY key"), params)
        return [(key, json.loads(data)) for key, data in rows]

    def _p_delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> Plan[int]:
        sql = "WITH d AS (DELETE FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s"
        params: dict[str, Any] = {"ns": ns, "sid": sid, "kind": kind}
        if keys is not None:
            sql += " AND key = ANY(%(keys)s::text[])"
            params["keys"] = list(dict.fromkeys(keys))
        rows = yield Q(self._sql(sql + " RETURNING 1) SELECT count(*) FROM d"), params)
        return int(rows[0][0])

    def _p_find_messages(
        self,
        namespace: str,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        text: str | None = None,
        after: datetime | float | None = None,
        before: datetime | float | None = None,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Plan[Page[Message]]:
        limit = check_limit(limit, maximum=MAX_PAGE)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidFilter("metadata filter must be a dict of key -> value (equality)")
        if text is not None and not isinstance(text, str):
            raise InvalidFilter(f"text must be a str, got {type(text).__name__}")
        if isinstance(session_ids, str):
            raise InvalidFilter("session_ids must be a list of session ids, not one str")
        where = ["m.namespace = %(ns)s"]
        params: dict[str, Any] = {"ns": namespace, "now": self.clock()}
        if user_id is not None:
            where.append("m.user_id = %(user)s")
            params["user"] = user_id
        if session_ids is not None:
            where.append("m.session_id = ANY(%(sids)s::text[])")
            params["sids"] = list(session_ids)
        low, high = _epoch(after, "after"), _epoch(before, "before")
        if low is not None:
            where.append("m.created_at >= %(after)s")
            params["after"] = low
        if high is not None:
            where.append("m.created_at < %(before)s")
            params["before"] = high
        for n, (key, value) in enumerate((metadata or {}).items()):
            where.append(f"m.metadata -> %(mk{n})s = %(mv{n})s::jsonb")
            params[f"mk{n}"], params[f"mv{n}"] = key, _jsonb_text(value)
        where.append(
            "EXISTS (SELECT 1 FROM {s}.sessions s WHERE s.namespace = m.namespace AND s.id = m.session_id "
            "AND (s.expires_at IS NULL OR s.expires_at > %(now)s))"
        )
        if text is not None and text.strip():
            key = "ts_rank(m.search, q.query)::float8"
            source = "{s}.messages m, websearch_to_tsquery({cfg}, %(text)s) AS q(query)"
            where.append("m.search @@ q.query")
            params["text"] = text.replace("\x00", "")
        else:
            key = "m.created_at"
            source = "{s}.messages m"
        inner = f"SELECT {key} AS k, m.session_id, m.seq, m.body FROM {source} WHERE {' AND '.join(where)}"
        outer = f"SELECT k, session_id, seq, body FROM ({inner}) x"
        if cursor:
            ck, csid, cseq = _decode_find_cursor(cursor)
            outer += " WHERE (k, session_id, seq) < (%(ck)s, %(csid)s, %(cseq)s)"
            params.update(ck=ck, csid=csid, cseq=cseq)
        outer += " ORDER BY k DESC, session_id DESC, seq DESC LIMIT %(n)s"
        params["n"] = limit + 1
        rows = yield Q(self._sql(outer), params)
        items = [self._decode(namespace, sid, seq, body) for _, sid, seq, body in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            k, sid, seq, _ = rows[limit - 1]
            next_cursor = _encode_find_cursor(k, sid, seq)
        return Page(items, next_cursor)

    def _p_ping(self) -> Plan[None]:
        yield Q("SELECT 1")

    def _p_stats(self) -> Plan[dict[str, Any]]:
        versions = yield Q(self._sql("SELECT component, version FROM {s}.schema_versions"))
        counts = yield Q(
            self._sql("SELECT count(*), COALESCE(sum(message_count), 0) FROM {s}.sessions WHERE {LIVE}"),
            {"now": self.clock()},
        )
        server = yield Q("SHOW server_version")
        return {
            "schema": self.schema,
            "schema_versions": dict(versions),
            "sessions": int(counts[0][0]),
            "messages": int(counts[0][1]),
            "server_version": server[0][0],
            "has_vector": self.has_vector,
        }

    # -- the contract (sync face) ------------------------------------------------------------------------------------
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        return self.run_plan(self._p_get_session, ns, sid)

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        return self.run_plan(self._p_ensure_session, ns, sid, options)

    def delete_session(self, ns: str, sid: str) -> bool:
        return self.run_plan(self._p_delete_session, ns, sid)

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        return self.run_plan(self._p_list_sessions, query)

    def purge_expired(self) -> int:
        return self.run_plan(self._p_purge_expired)

    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return self.run_plan(self._p_append, ns, sid, records, options)

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return self.run_plan(self._p_replace, ns, sid, records, options)

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
        return self.run_plan(self._p_read, ns, sid, start, stop, last, limit)

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        return self.run_plan(self._p_get_messages, ns, sid, ids)

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        return self.run_plan(self._p_delete_messages, ns, sid, ids)

    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        return self.run_plan(self._p_pop_messages, ns, sid, index, count, ids)

    def count(self, ns: str, sid: str) -> int:
        return self.run_plan(self._p_count, ns, sid)

    def clear(self, ns: str, sid: str) -> int:
        return self.run_plan(self._p_clear, ns, sid)

    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        self.run_plan(self._p_put_record, ns, sid, kind, key, data)

    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self.run_plan(self._p_get_records, ns, sid, kind, keys, last)

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        return self.run_plan(self._p_delete_records, ns, sid, kind, keys)

    def find_messages(
        self,
        namespace: str,
        *,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        text: str | None = None,
        after: datetime | float | None = None,
        before: datetime | float | None = None,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Message]:
        """Messages across the namespace's live sessions, filtered by user, sessions, ``created_at`` range
        (``after <= t < before``), message metadata equality and full-text ``text`` (web-search syntax: words,
        "quoted phrases", -exclusions, OR). With ``text`` pages are ordered by relevance, else newest first."""
        return self.run_plan(
            self._p_find_messages, namespace, user_id, session_ids, text, after, before, metadata, limit, cursor
        )

    def ping(self) -> None:
        self.run_plan(self._p_ping)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.run_plan(self._p_stats)}

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    @property
    def aio(self) -> PostgresAsyncStore | Any:
        """The native async face (psycopg ``AsyncConnectionPool``); for a single shared sync connection,
        a thread-offloading face."""
        if self._conn is not None:
            return super().aio
        if self._aio_face is None:
            self._aio_face = PostgresAsyncStore(self)
        return self._aio_face

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pool in self._owned:  # only pools this store created; the async one is closed by aio.close()
            with contextlib.suppress(Exception):
                pool.close(timeout=1.0)
        self._owned.clear()

    async def _aclose(self) -> None:
        apool, owned = self._apool, self._apool_owned
        self._apool = None
        if apool is not None and owned:
            with contextlib.suppress(Exception):
                if self._apool_loop is asyncio.get_running_loop():
                    await apool.close(timeout=1.0)
        await asyncio.to_thread(self.close)

    async def _apool_get(self) -> AsyncConnectionPool[Any] | _LoopConnections:
        if self._closed:
            raise PoolClosed("store closed")
        loop = asyncio.get_running_loop()
        pool = self._apool
        if pool is None or (self._apool_owned and self._apool_loop is not loop):
            # an async pool belongs to one event loop; a store used from a new loop gets a new pool
            if self._pool is not None and self._pool not in self._owned:
                conninfo, kwargs = self._pool.conninfo, dict(self._pool.kwargs or {})
            else:
                conninfo, kwargs = self._conninfo, dict(self._kwargs)
            pool = _LoopConnections(conninfo, kwargs, self.max_size, self.pool_timeout)
            self._apool, self._apool_loop, self._apool_owned = pool, loop, True
        if pool.closed:
            await pool.open(wait=False)
        return pool

    def __repr__(self) -> str:
        return f"<PostgresStore {self._display} schema={self.schema}>"



class _LoopConnections:
    """Idle async connections of ONE event loop, with no background tasks.

    Why not an ``AsyncConnectionPool`` made on the user's behalf: its maintenance workers catch ``CancelledError``,
    so a pool still open when its event loop ends makes ``asyncio.run()`` wait forever while cancelling them (seen in
    CI). Pools the user hands in are theirs to close; the ones memvault makes per loop are these. Same interface as
    the parts of ``AsyncConnectionPool`` the store uses, and the same transaction rule on return: commit when the
    block succeeded, roll back when it raised; broken connections are dropped.
    """

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, timeout: float) -> None:
        self.conninfo, self.kwargs = conninfo, kwargs
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self.closed = False

    async def open(self, wait: bool = False) -> None:
        self.closed = False

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                return conn
            await conn.close()
        return await psycopg.AsyncConnection.connect(self.conninfo, **self.kwargs)

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self.closed:
            raise PoolClosed("store closed")
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout if timeout is not None else self._timeout)
        except asyncio.TimeoutError:
            raise PoolTimeout(f"no connection free within {self._timeout:g}s") from None
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            conn = await self._take()
            try:
                yield conn
            except BaseException:
                if not conn.closed and not conn.broken:
                    with contextlib.suppress(psycopg.Error):
                        await conn.rollback()
                raise
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.commit()
        except BaseException:
            if conn is not None:
                await conn.close()
            raise
        else:
            if self.closed or conn.broken:
                await conn.close()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    async def close(self, timeout: float | None = None) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(psycopg.Error):
                await conn.close()


class PostgresAsyncStore:
    """The native async face of a :class:`PostgresStore`: the same plans, run on an ``AsyncConnectionPool``."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    @contextlib.asynccontextmanager
    async def _checkout(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = await self._store._apool_get()
        async with pool.connection(timeout=self._store.pool_timeout) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled async connection for extensions; errors are translated."""
        try:
            async with self._checkout() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout, PoolClosed) as exc:
            raise self._store._fail(exc) from None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def run_plan(self, plan_fn: Callable[..., Plan[R]], *args: Any) -> R:
        """Execute a plan on a pooled async connection, retrying transient failures."""
        store = self._store
        attempt = 0
        while True:
            attempt += 1
            if store._down_since is not None:  # the breaker is open: fail at once, or probe when a probe is due
                try:
                    if time.monotonic() < store._next_probe:
                        raise store._still_down()
                    await asyncio.to_thread(store._probe)
                except _Unreachable as exc:
                    raise store._fail(exc) from None
            try:
                async with self._checkout() as conn:
                    return await _drive_async(conn, plan_fn(*args))
            except (psycopg.Error, PoolTimeout, PoolClosed) as exc:
                if not store._retry(exc, attempt):
                    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
                        await asyncio.to_thread(store._suspect, exc)
                    raise store._fail(exc) from None

    async def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        return await self.run_plan(self._store._p_get_session, ns, sid)

    async def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        return await self.run_plan(self._store._p_ensure_session, ns, sid, options)

    async def delete_session(self, ns: str, sid: str) -> bool:
        return await self.run_plan(self._store._p_delete_session, ns, sid)

    async def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        return await self.run_plan(self._store._p_list_sessions, query)

    async def purge_expired(self) -> int:
        return await self.run_plan(self._store._p_purge_expired)

    async def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return await self.run_plan(self._store._p_append, ns, sid, records, options)

    async def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return await self.run_plan(self._store._p_replace, ns, sid, records, options)

    async def read(
        self,
        ns: str,
        sid: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        return await self.run_plan(self._store._p_read, ns, sid, start, stop, last, limit)

    async def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        return await self.run_plan(self._store._p_get_messages, ns, sid, ids)

    async def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        return await self.run_plan(self._store._p_delete_messages, ns, sid, ids)

    async def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        return await self.run_plan(self._store._p_pop_messages, ns, sid, index, count, ids)

    async def count(self, ns: str, sid: str) -> int:
        return await self.run_plan(self._store._p_count, ns, sid)

    async def clear(self, ns: str, sid: str) -> int:
        return await self.run_plan(self._store._p_clear, ns, sid)

    async def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        await self.run_plan(self._store._p_put_record, ns, sid, kind, key, data)

    async def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return await self.run_plan(self._store._p_get_records, ns, sid, kind, keys, last)

    async def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        return await self.run_plan(self._store._p_delete_records, ns, sid, kind, keys)

    async def find_messages(
        self,
        namespace: str,
        *,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        text: str | None = None,
        after: datetime | float | None = None,
        before: datetime | float | None = None,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Message]:
        return await self.run_plan(
            self._store._p_find_messages, namespace, user_id, session_ids, text, after, before, metadata, limit, cursor
        )

    async def ping(self) -> None:
        await self.run_plan(self._store._p_ping)

    async def stats(self) -> dict[str, Any]:
        return {"backend": self._store.backend, "url": self._store.url, **await self.run_plan(self._store._p_stats)}

    async def close(self) -> None:
        await self._store._aclose()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # anything without a plan (migrate, ...) runs the sync method in a worker thread
        method = getattr(self._store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        return f"<PostgresAsyncStore {self._store.url}>"


__all__ = ["BEGIN", "COMMIT", "MIGRATIONS", "PostgresAsyncStore", "PostgresStore", "Q"]
