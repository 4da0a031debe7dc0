"""The backend registry for the conformance suite: name -> factory(request, token, tmp_path) -> (target, options).

``token`` is unique per test: a factory must give each token its own empty store (file, key prefix, schema, ...)
and reach the same data when called again with the same token. Servers (Redis, PostgreSQL) come from
session-scoped fixtures in ``tests/harness/``; a missing server is an error, never a skip.

``BACKENDS`` are reached by URL (a target that is a str, options JSON-able: usable from a subprocess or an
adapter's ``url=``). ``FLAVOURS`` reach the same backends another way: a ``psycopg.Connection`` or an existing
``ConnectionPool`` given to the store, existing redis-py clients (standalone and Cluster), SQLite behind the spool
(``fallback="spool"``). ``SUITE`` (both) is what the conformance suite (the ``backend`` fixture) and the
conformance kit (``tests/test_kit.py``, via :func:`kit_factory`) run over.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.contract import Store
from memvault.registry import open_store
from memvault.testing.conformance import Reopen, StoreFactory
from tests.harness import files, postgres, redis

Factory = Callable[[pytest.FixtureRequest, str, Path], tuple[Any, dict[str, Any]]]


def _memory(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"memory://{token}", {}


def _sqlite(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"sqlite:///{tmp_path / (token + '.db')}", {}


def _sqlite_spool(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"sqlite:///{tmp_path / (token + '.db')}", {"fallback": "spool",
                                                       "spool_path": str(tmp_path / (token + ".spool.db"))}


BACKENDS: dict[str, Factory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    **files.FACTORIES,
    **redis.FACTORIES,
    **postgres.FACTORIES,
}

FLAVOURS: dict[str, Factory] = {
    "sqlite-spool": _sqlite_spool,
    **redis.FLAVOURS,
    **postgres.FLAVOURS,
}

SUITE: dict[str, Factory] = {**BACKENDS, **FLAVOURS}


MemoryFactory = Callable[..., Memory]


@contextmanager
def memory_factory(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, prefix: str = "t"
) -> Iterator[MemoryFactory]:
    """A ``factory(**options) -> Memory`` on ``backend``; every call reaches the same (fresh) data. Closes them all."""
    token = f"{prefix}{uuid.uuid4().hex[:12]}"
    opened: list[Memory] = []

    def factory(**options: Any) -> Memory:
        target, backend_options = SUITE[backend](request, token, tmp_path)
        mem = Memory(target, **{**backend_options, **options})
        opened.append(mem)
        return mem

    try:
        yield factory
    finally:
        for mem in opened:
            mem.close()


@contextmanager
def kit_factory(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[StoreFactory, Reopen]]:
    """``(factory, reopen)`` for :func:`memvault.testing.conformance.validate` on ``backend``: ``factory(clock=)``
    opens a store on a fresh token (empty), ``reopen(store)`` another instance on the same token's data."""
    tokens: dict[Store, str] = {}
    clients: list[Any] = []  # connections, pools, clients a flavour made for the stores of the current check

    def open_token(token: str, clock: Any) -> Store:
        target, options = SUITE[backend](request, token, tmp_path)
        if not isinstance(target, str):
            clients.append(target)
        store = open_store(target, **options, clock=clock)
        tokens[store] = token
        return store

    def factory(*, clock: Any) -> Store:
        # the kit asks for the next store once it has closed the previous check's: release what those used, or a
        # hundred checks would hold a hundred connections (each flavour's finalizer closes them again, harmlessly)
        while clients:
            clients.pop().close()
        return open_token(f"k{uuid.uuid4().hex[:12]}", clock)

    def reopen(store: Store) -> Store:
        return open_token(tokens[store], store.clock)

    try:
        yield factory, reopen
    finally:
        for store in tokens:
            store.close()  # the kit closed them; closing is idempotent
