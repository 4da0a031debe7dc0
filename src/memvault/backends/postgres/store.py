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
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.errors
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout
from tenacity import RetryCallState, Retrying, wait_random_exponential

from memvault.backends.postgres.drive import RETRY, Plan, R, drive_sync
from memvault.backends.postgres.plans import PostgresPlans, conninfo_password, display_conninfo
from memvault.backends.postgres.pool import LoopConnections
from memvault.backends.postgres.schema import MIGRATIONS
from memvault.backends.postgres.sql import render
from memvault.config import mask_url
from memvault.errors import BackendUnavailable, InvalidURL, SchemaVersionError
from memvault.faces import AsyncStore, PlannedStore
from memvault.model import Message, Page

logger = logging.getLogger("memvault.postgres")

DEFAULT_SCHEMA = "memvault"
MAX_RETRIES = 5
#: pauses after write conflicts, full jitter: up to 5 ms after the first attempt (run outside tenacity), then up to
#: 10 ms, 20 ms, ... 250 ms between tenacity's attempts
_FIRST_CONFLICT_WAIT = 0.005
_CONFLICT_WAIT = wait_random_exponential(multiplier=2 * _FIRST_CONFLICT_WAIT, max=0.25)


def retry_wait(state: RetryCallState) -> float:
    """Write conflicts back off (jittered, so two writers that collided do not collide again); a dead pooled
    connection is replaced at once."""
    exc = state.outcome.exception() if state.outcome is not None else None
    return _CONFLICT_WAIT(state) if isinstance(exc, RETRY) else 0.0
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: URL query keys that configure memvault rather than libpq
_OPTION_KEYS: dict[str, Callable[[str], Any]] = {
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


#: seconds between reconnect probes while the server is unreachable
PROBE_INTERVAL = 1.0


def _pool_conninfo(pool: ConnectionPool[Any] | AsyncConnectionPool[Any]) -> str:
    """A pool's conninfo. memvault opens connections and pools of its own from it, so it takes pools made with a
    conninfo string (psycopg_pool also accepts a callable there, which memvault does not support)."""
    return cast(str, pool.conninfo)


def _pool_kwargs(pool: ConnectionPool[Any] | AsyncConnectionPool[Any]) -> dict[str, Any]:
    """A copy of a pool's connection kwargs (a dict or None, as with the conninfo: no callable)."""
    return dict(cast("dict[str, Any] | None", pool.kwargs) or {})


class Unreachable(Exception):
    """Raised by a checkout while the server is known to be down (mapped to BackendUnavailable)."""


class PostgresStore(PostgresPlans, PlannedStore):
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
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess", "native_async", "fulltext", "rewrite"})

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
        self.shared_connection = connection is not None
        self._pool = pool
        self._apool: AsyncConnectionPool[Any] | LoopConnections | None = apool
        self._apool_loop: asyncio.AbstractEventLoop | None = None
        self._apool_owned = False
        if conninfo is None:
            if pool is not None:
                conninfo = _pool_conninfo(pool)
            elif apool is not None:
                conninfo = _pool_conninfo(apool)
            elif connection is not None:
                conninfo = connection.info.dsn
            else:
                raise InvalidURL("PostgresStore needs a URL, a pool or a connection")
        self._conninfo = conninfo
        self._secret = conninfo_password(conninfo)
        self._display = display_conninfo(conninfo)
        self._sql_cache: dict[str, str] = {}
        self._schema_ident = pgsql.Identifier(schema)
        self._cfg_literal = pgsql.Literal(fts_config)

        try:
            if self._pool is None and self._conn is None:
                if apool is not None:
                    # sync calls need a sync pool: derive one from the async pool's parameters
                    self._pool = ConnectionPool(
                        _pool_conninfo(apool), kwargs=_pool_kwargs(apool), min_size=0, max_size=max_size,
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
        caps = set(type(self).capabilities)
        if self._conn is not None:
            caps.discard("native_async")  # one shared sync connection: its async face offloads to a worker thread
        if self.has_vector:
            caps.add("vector")
            self.recall_engine = "postgres"  # pgvector + tsvector; without pgvector the in-process engine
        self.capabilities = frozenset(caps)  # type: ignore[misc]
        self._aio_face: AsyncStore | None = None

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
                        found[key] = _OPTION_KEYS.get(key, float)(value)
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
            text = render(template, self._schema_ident, self._cfg_literal, None)
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
        if isinstance(exc, Unreachable):
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
                conn = self._conn
                ours = not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE
                try:
                    yield conn
                except BaseException:
                    if ours and not conn.broken and conn.info.transaction_status == TransactionStatus.INTRANS:
                        conn.rollback()
                    raise
                # a plain SELECT on a non-autocommit connection opens a transaction nobody would end: later writes
                # would become savepoints inside it, never committed. What this use opened, it ends (a transaction
                # the caller had open before stays theirs to commit).
                if ours and conn.info.transaction_status == TransactionStatus.INTRANS:
                    conn.commit()
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
            raise Unreachable(f"no connection could be made within {self.unavailable_timeout:g}s")
        with pool.connection(timeout=self.pool_timeout - self.unavailable_timeout) as conn:
            yield conn

    def _went_down(self) -> None:
        with self._probe_lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self._next_probe = self._down_since + PROBE_INTERVAL
                logger.warning("postgres: %s is unreachable; calls fail fast until it answers a probe", self._display)

    def _still_down(self) -> Unreachable:
        now = time.monotonic()
        return Unreachable(f"down for {now - (self._down_since or now):.1f}s; next reconnect probe in "
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
            conninfo = _pool_conninfo(pool) if pool is not None else self._conninfo
            kwargs = _pool_kwargs(pool) if pool is not None else dict(self._kwargs)
            kwargs["connect_timeout"] = max(1, round(min(self.connect_timeout, 2.0)))
            try:
                psycopg.connect(conninfo, **kwargs).close()
            except psycopg.Error as exc:
                raise Unreachable(f"down for {now - self._down_since:.1f}s ({self._scrub(str(exc)).strip()})") from None
            self._down_since = None
            old = self._pool
            if old is not None and old in self._owned:
                fresh = ConnectionPool(old.conninfo, kwargs=_pool_kwargs(old), min_size=self.min_size,
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
        except (psycopg.Error, PoolTimeout, PoolClosed, Unreachable) as exc:
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
        if isinstance(exc, RETRY):
            return attempt < MAX_RETRIES
        if isinstance(exc, (PoolTimeout, PoolClosed, psycopg.errors.QueryCanceled, Unreachable)) or self._closed:
            return False
        return isinstance(exc, psycopg.OperationalError) and attempt < 2

    def first_retry_wait(self, exc: BaseException) -> float | None:
        """After a plan's first attempt failed with ``exc``: None to give up, else the pause before the retries.
        The first attempt runs outside tenacity (a Retrying loop costs ~15 µs a call, and nearly every call
        succeeds at once); the retries run through it, numbered from 2."""
        if not self._retry(exc, 1):
            return None
        logger.debug("postgres: retrying a plan after %s (attempt 1)", type(exc).__name__)
        return random.uniform(0, _FIRST_CONFLICT_WAIT) if isinstance(exc, RETRY) else 0.0

    def should_retry(self, state: RetryCallState) -> bool:
        """tenacity's retry predicate for the retries of :meth:`run_plan` (both faces; attempt 1 came before)."""
        exc = state.outcome.exception() if state.outcome is not None else None
        attempt = state.attempt_number + 1
        if exc is None or not self._retry(exc, attempt):
            return False
        logger.debug("postgres: retrying a plan after %s (attempt %d)", type(exc).__name__, attempt)
        return True

    def run_plan(self, plan_fn: Callable[..., Plan[R]], *args: Any, **kwargs: Any) -> R:
        """Execute a plan (see :mod:`.drive`) on a pooled connection, retrying transient failures."""
        try:
            try:
                with self._checkout() as conn:
                    return drive_sync(conn, plan_fn(*args, **kwargs))
            except Exception as exc:
                pause = self.first_retry_wait(exc)
                if pause is None:
                    raise
                time.sleep(pause)
            for attempt in Retrying(retry=self.should_retry, wait=retry_wait, reraise=True):
                with attempt, self._checkout() as conn:
                    result = drive_sync(conn, plan_fn(*args, **kwargs))
            return result
        except (psycopg.Error, PoolTimeout, PoolClosed, Unreachable) as exc:
            self._suspect(exc)
            raise self._fail(exc) from None

    def _suspect(self, exc: BaseException) -> None:
        """A call gave up on a connection error: if the server does not take a new connection either, it is down
        (open the breaker, so the next calls fail at once instead of waiting for the pool)."""
        if self._down_since is not None or self._conn is not None or self._closed:
            return
        if not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or isinstance(
                exc, psycopg.errors.QueryCanceled):
            return
        kwargs = {**_pool_kwargs(self._pool), "connect_timeout": 1} if self._pool is not None else self._kwargs
        try:
            psycopg.connect(_pool_conninfo(self._pool) if self._pool is not None else self._conninfo, **kwargs).close()
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

    def scrub_clear_index(self) -> list[str]:
        """Drop the recall vector tables (pgvector), rebuilt on demand by a Memory that recalls natively. Row
        versions of before stay in the table files until ``VACUUM FULL`` (docs/encryption.md)."""
        with self.connection() as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename LIKE 'recall\\_vectors\\_%%'",
                (self.schema,)).fetchall()]
            schema = pgsql.Identifier(self.schema).as_string(conn)
            with conn.transaction():
                for table in tables:
                    conn.execute(f"DROP TABLE IF EXISTS {schema}.{pgsql.Identifier(table).as_string(conn)}")
                if tables:
                    conn.execute(f"DELETE FROM {schema}.schema_versions WHERE component LIKE 'recall\\_%%'")
            if not conn.autocommit:
                conn.commit()
        return tables

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
                    script = render(step, self._schema_ident, self._cfg_literal, conn).replace("{schema}", schema)
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

    # -- the sync face: the contract's methods (memvault.faces.PlannedStore) run their plans here ----------------------
    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.run_plan(getattr(self, f"_p_{name}"), *args, **kwargs)

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
    def aio(self) -> AsyncStore:
        """The native async face (psycopg ``AsyncConnectionPool``); for a single shared sync connection,
        a thread-offloading face."""
        if self._conn is not None:
            return super().aio
        if self._aio_face is None:
            from memvault.backends.postgres.aio import PostgresAsyncStore

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

    async def _apool_get(self) -> AsyncConnectionPool[Any] | LoopConnections:
        if self._closed:
            raise PoolClosed("store closed")
        loop = asyncio.get_running_loop()
        pool = self._apool
        if pool is None or (self._apool_owned and self._apool_loop is not loop):
            # an async pool belongs to one event loop; a store used from a new loop gets a new pool
            if self._pool is not None and self._pool not in self._owned:
                conninfo, kwargs = _pool_conninfo(self._pool), _pool_kwargs(self._pool)
            else:
                conninfo, kwargs = self._conninfo, dict(self._kwargs)
            pool = LoopConnections(conninfo, kwargs, self.max_size, self.pool_timeout)
            self._apool, self._apool_loop, self._apool_owned = pool, loop, True
        if pool.closed:
            await pool.open(wait=False)
        return pool

    def __repr__(self) -> str:
        return f"<PostgresStore {self._display} schema={self.schema}>"
