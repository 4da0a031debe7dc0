"""Infrastructure of the LangGraph persistence suite: locations, registry entry types, factories, worker processes.

The registries themselves (``SAVERS``, ``STORES``, ``BYTESTORES``) and the fixtures live in ``conftest.py``; test
modules import types from here (never ``from conftest import``: with several test directories on one command line,
another directory's ``conftest`` module can shadow ours in ``sys.modules``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest
from langchain_core.stores import ByteStore
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[2]

Location = dict[str, Any]


class Env:
    """What ``new_location`` gets: a directory, unique tokens, the embedded PostgreSQL and cleanup registration."""

    def __init__(self, request: pytest.FixtureRequest | None, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        self._request = request
        self.tmp_path = tmp_path
        self._stack = stack

    @staticmethod
    def token() -> str:
        return uuid.uuid4().hex[:12]

    def postgres_url(self) -> str:
        if self._request is None:
            raise RuntimeError("no pytest request: PostgreSQL locations need the embedded_postgres_server fixture")
        server = self._request.getfixturevalue("embedded_postgres_server")
        return str(server.url)

    def on_close(self, callback: Callable[[], Any]) -> None:
        self._stack.callback(callback)

    def memvault_target(self, backend: str) -> tuple[Any, dict[str, Any]]:
        """A fresh memvault location on ``backend`` from the repo's backend registry (tests/backends.py): a URL and
        the options that isolate it (a Redis key prefix, a PostgreSQL schema, ...), cleaned up by the fixtures."""
        if self._request is None:
            raise RuntimeError("no pytest request: memvault locations need the repo's server fixtures")
        from tests.backends import BACKENDS

        return BACKENDS[backend](self._request, "lg" + self.token(), self.tmp_path)


# ------------------------------------------------------------------------------------------------ locations
def sqlite_location(env: Env) -> Location:
    """A SqliteSaver file, set up once here: upstream's ``setup()`` (WAL switch + CREATE TABLE in one script) fails
    with "database is locked" when two processes open a new file at the same moment, so, as a deployment would
    run it once beforehand, the location is created set up."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = str(env.tmp_path / f"lg-{env.token()}.db")
    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
    return {"path": path}


MEMORY: dict[str, Any] = {}  # in-process "storage" for the in-memory entries, by location name


def memory_location(env: Env) -> Location:
    name = f"mem-{env.token()}"
    env.on_close(lambda: MEMORY.pop(name, None))
    return {"name": name}


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first, then ``public`` (where pgvector lives)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-c search_path={schema},public"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def postgres_location(env: Env) -> Location:
    import psycopg

    url = env.postgres_url()
    schema = f"lg_{env.token()}"
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        # pgvector once, in public (as memvault's own backend does), so every schema's search_path finds it
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    env.on_close(drop)
    return {"url": with_search_path(url, schema), "schema": schema}


# ------------------------------------------------------------------------------------------------ registry entries
@dataclass(frozen=True)
class SaverSpec:
    new_location: Callable[[Env], Location]
    open: Callable[[Location], AbstractContextManager[BaseCheckpointSaver]]
    aopen: Callable[[Location], AbstractAsyncContextManager[BaseCheckpointSaver]]
    capabilities: frozenset[str] = frozenset()
    #: memvault only ("recall" capability): (location, thread_id, query) -> texts ``Memory.recall`` returns
    recall: Callable[[Location, str, str], list[str]] | None = None
    #: test function name -> why this entry is known to fail it (applied as a strict xfail)
    known_failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreSpec:
    new_location: Callable[[Env], Location]
    #: (location, index=IndexConfig | None, ttl=TTLConfig | None) -> a store; ``open`` sync-capable, ``aopen`` async
    open: Callable[..., AbstractContextManager[BaseStore]]
    aopen: Callable[..., AbstractAsyncContextManager[BaseStore]]
    capabilities: frozenset[str] = frozenset()
    #: how far apart two writes must be for their ``updated_at`` to differ (seconds)
    timestamp_resolution: float = 0.001
    #: how coarse expiry and refresh times are (seconds; SQLite's CURRENT_TIMESTAMP has whole seconds)
    ttl_resolution: float = 0.0
    #: ``ttl``: delete expired items now, returning how many (sync store / async store)
    sweep: Callable[[Any], int] = field(default=lambda store: store.sweep_ttl())
    asweep: Callable[[Any], Awaitable[int]] = field(default=lambda store: store.sweep_ttl())
    #: ``ttl_sweeper``: start / stop the background sweeper of a (sync) store opened with ``sweep_interval_minutes``
    start_sweeper: Callable[[Any], Any] = field(default=lambda store: store.start_ttl_sweeper())
    stop_sweeper: Callable[[Any], Any] = field(default=lambda store: store.stop_ttl_sweeper())
    #: test function name -> why this entry is known to fail it (applied as a strict xfail)
    known_failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ByteStoreSpec:
    new_location: Callable[[Env], Location]
    open: Callable[[Location], AbstractContextManager[ByteStore]]
    #: ``persistent``: a second instance on the location sees the data; ``cross_process`` likewise from a worker
    capabilities: frozenset[str] = frozenset()
    known_failures: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ factories
class _Factory:
    kind = "target"

    def __init__(self, name: str, spec: Any, env: Env) -> None:
        self.name = name
        self.spec = spec
        self.env = env
        self.capabilities: frozenset[str] = spec.capabilities
        self.location: Location = spec.new_location(env)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


class SaverFactory(_Factory):
    """``open()`` / ``aopen()``: a new saver instance on this factory's storage (same data every call);
    ``saver_factory()``: the same, closed when the test ends; ``fresh()``: a factory on new, empty storage."""

    kind = "saver"

    def open(self) -> AbstractContextManager[BaseCheckpointSaver]:
        return self.spec.open(self.location)

    def aopen(self) -> AbstractAsyncContextManager[BaseCheckpointSaver]:
        return self.spec.aopen(self.location)

    def __call__(self) -> BaseCheckpointSaver:
        return self.env._stack.enter_context(self.open())

    def fresh(self) -> SaverFactory:
        return SaverFactory(self.name, self.spec, self.env)


class StoreFactory(_Factory):
    """Like ``SaverFactory``; ``open(index=..., ttl=...)`` passes an IndexConfig / TTLConfig to the new instance."""

    kind = "store"

    def open(self, *, index: Any = None, ttl: Any = None) -> AbstractContextManager[BaseStore]:
        return self.spec.open(self.location, index=index, ttl=ttl)

    def aopen(self, *, index: Any = None, ttl: Any = None) -> AbstractAsyncContextManager[BaseStore]:
        return self.spec.aopen(self.location, index=index, ttl=ttl)

    def __call__(self, *, index: Any = None, ttl: Any = None) -> BaseStore:
        return self.env._stack.enter_context(self.open(index=index, ttl=ttl))

    def fresh(self) -> StoreFactory:
        return StoreFactory(self.name, self.spec, self.env)


class ByteStoreFactory(_Factory):
    kind = "bytestore"

    def open(self) -> AbstractContextManager[ByteStore]:
        return self.spec.open(self.location)

    def __call__(self) -> ByteStore:
        return self.env._stack.enter_context(self.open())

    def fresh(self) -> ByteStoreFactory:
        return ByteStoreFactory(self.name, self.spec, self.env)


# ------------------------------------------------------------------------------------------------ worker processes
class Worker:
    """A second Python process (``lg_worker.py``) answering JSON jobs; it opens a NEW saver/store per job."""

    def __init__(self, log_path: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), str(REPO_ROOT), env.get("PYTHONPATH", "")])
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS_DIR / "lg_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            cwd=str(REPO_ROOT),
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._ids = itertools.count()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # EOF

    def send(self, op: str, **job: Any) -> int:
        assert self.proc.stdin is not None
        job_id = next(self._ids)
        self.proc.stdin.write(json.dumps({"id": job_id, "op": op, **job}) + "\n")
        self.proc.stdin.flush()
        return job_id

    def receive(self, job_id: int, timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker gave no answer to job {job_id} in {timeout} s{self._tail()}") from None
            if not line:
                raise AssertionError(f"worker exited (code {self.proc.poll()}){self._tail()}")
            reply = json.loads(line)
            if reply["id"] != job_id:
                continue  # an answer to an abandoned job
            if not reply["ok"]:
                raise AssertionError(f"worker job {job_id} failed:\n{reply['error']}")
            return reply["result"]

    def call(self, op: str, timeout: float = 120.0, **job: Any) -> Any:
        return self.receive(self.send(op, **job), timeout)

    def _tail(self) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        return f"\n--- worker stderr ---\n{text}" if text else ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
