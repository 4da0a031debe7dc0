"""memvault's entries for the STORES and BYTESTORES registries (``conftest.py`` merges them): ``MemvaultStore`` and
``MemvaultByteStore`` on every memvault backend of ``tests/backends.py`` (memory, sqlite, file, redis, redis-cluster,
postgres), each test on fresh storage (a file, a Redis key prefix, a PostgreSQL schema).

A location is ``{"backend", "target", "options"}``: a worker process opens the same Memory from it.

The shared suite checks upstream's score contract (``SearchItem.score`` = cosine of the best-matching field), which
is memvault's ``mode="dense"``; these entries open stores in that mode unless a test's index config names another.
Hybrid search (the default) is tested on every backend in ``test_memvault_store.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from langchain_core.stores import ByteStore
from langgraph.store.base import BaseStore
from lg_harness import ByteStoreSpec, Env, Location, StoreSpec

from memvault import Memory

BACKENDS = ("memory", "sqlite", "file", "redis", "redis-cluster", "postgres")
STORE_CAPABILITIES = frozenset({
    "vector", "ttl", "ttl_sweeper", "omit_expired", "recency_order", "preserves_created_at", "filter_dotted_path",
    "filter_nested_dict",
})


def memvault_location(backend: str) -> Callable[[Env], Location]:
    def new_location(env: Env) -> Location:
        from tests.backends import BACKENDS as FACTORIES

        token = f"lg{uuid.uuid4().hex[:12]}"
        target, options = FACTORIES[backend](env._request, token, env.tmp_path)  # type: ignore[arg-type]
        return {"backend": backend, "target": target, "options": options}

    return new_location


def open_memory(location: Location) -> Memory:
    return Memory(location["target"], **location["options"])


def suite_index(index: Any) -> Any:
    if isinstance(index, dict) and "mode" not in index:
        return {**index, "mode": "dense"}
    return index


@contextmanager
def open_store(location: Location, index: Any = None, ttl: Any = None) -> Iterator[BaseStore]:
    from langgraph.store.memvault import MemvaultStore

    memory = open_memory(location)
    try:
        with MemvaultStore(memory=memory, index=suite_index(index), ttl=ttl) as store:
            yield store
    finally:
        memory.close()


@asynccontextmanager
async def aopen_store(location: Location, index: Any = None, ttl: Any = None) -> AsyncIterator[BaseStore]:
    from langgraph.store.memvault import MemvaultStore

    memory = open_memory(location)
    try:
        async with MemvaultStore(memory=memory, index=suite_index(index), ttl=ttl) as store:
            yield store
    finally:
        await memory.aclose()


@contextmanager
def open_bytestore(location: Location) -> Iterator[ByteStore]:
    from langchain_memvault import MemvaultByteStore

    memory = open_memory(location)
    try:
        yield MemvaultByteStore(memory=memory)
    finally:
        memory.close()


def _cross_process(backend: str) -> set[str]:
    return set() if backend == "memory" else {"cross_process"}


MEMVAULT_STORES: dict[str, StoreSpec] = {
    f"memvault-{backend}": StoreSpec(
        memvault_location(backend),
        open_store,
        aopen_store,
        STORE_CAPABILITIES | _cross_process(backend),
        asweep=lambda store: store.asweep_ttl(),
    )
    for backend in BACKENDS
}

MEMVAULT_BYTESTORES: dict[str, ByteStoreSpec] = {
    f"memvault-{backend}": ByteStoreSpec(
        memvault_location(backend), open_bytestore, frozenset({"persistent"} | _cross_process(backend))
    )
    for backend in BACKENDS
}

__all__ = ["MEMVAULT_BYTESTORES", "MEMVAULT_STORES"]
