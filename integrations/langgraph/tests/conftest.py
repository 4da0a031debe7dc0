"""Registries and factory fixtures for the LangGraph persistence suite.

Every checkpointer, store and byte store under test comes from one of three registries below. A new implementation
joins the suite by adding ONE entry (e.g. ``SAVERS["memvault-sqlite"] = SaverSpec(...)``) and declaring what it
supports in ``capabilities``; nothing else changes.

* ``new_location(env)`` makes empty storage for one test and returns a JSON-able ``Location`` (a file path, a URL,
  a name); ``env.on_close`` registers its cleanup.
* ``open(location)`` / ``aopen(location)`` open a NEW instance on that location (every call reaches the same data):
  ``open`` one whose sync methods work, ``aopen`` (an async context manager) one whose async methods work. An
  implementation with both on one class (like ``InMemorySaver``) returns the same class from both.
* A worker process (``lg_worker.py``) imports this module by path and calls the same ``open`` / ``aopen`` with the
  same ``Location``: that is how "a second process" and "after a restart" are tested.

Capabilities. A test that needs one carries ``@pytest.mark.requires("cap", ...)``; for an entry that does not declare
it the test does not apply and is deselected at collection (counted as "deselected" in pytest's summary). Declarations are checked where they can be (e.g. "ttl" must equal ``supports_ttl``, a store without it must
refuse ``ttl=``; extended saver capabilities must match what the conformance kit detects). ``known_failures`` maps a
test function name to a reason: that test becomes a strict xfail for the entry (upstream bugs; an unexpected pass
fails the run, so a fixed bug is noticed).

Saver capabilities: ``cross_process`` (another process opening the location sees everything),
``delete_for_runs`` / ``copy_thread`` / ``prune`` (extended conformance capabilities: declared ones must be detected
by the kit AND pass; undeclared ones must not be detected), ``recall`` (``Memory.recall`` finds what agents said;
memvault only: see ``SaverSpec.recall``), ``message_log`` (memvault only: a thread's messages are its session's
message log, each stored once).

Store capabilities: ``vector`` (index config: embedding + query search), ``ttl``, ``ttl_sweeper`` (background
sweeper via the spec's hooks), ``omit_expired`` (``TTLConfig(omit_expired=True)`` hides expired-unswept items),
``cross_process``, ``recency_order`` (search without a query returns most recently updated first),
``preserves_created_at`` (an update keeps ``created_at``), ``filter_dotted_path`` (``filter={"a.b": 1}``),
``filter_nested_dict`` (``filter={"a": {"b": 1}}`` matches a nested value). ``timestamp_resolution`` and
``ttl_resolution`` (seconds) tell the timing tests how coarse the store's clock is.

Byte store capabilities: ``persistent`` (a second instance sees the data), ``cross_process``.

``LANGGRAPH_TEST_TARGETS=sqlite,memvault-sqlite`` restricts every registry to those names.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.stores import ByteStore, InMemoryByteStore
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # lg_harness / lg_fakes, also when a worker imports this file by path
    sys.path.insert(0, _HERE)

from lg_harness import (  # noqa: E402
    MEMORY,
    ByteStoreFactory,
    ByteStoreSpec,
    Env,
    Location,
    SaverFactory,
    SaverSpec,
    StoreFactory,
    StoreSpec,
    Worker,
    memory_location,
    postgres_location,
    sqlite_location,
)


# ------------------------------------------------------------------------------------------------ savers
def _shared_memory_saver(location: Location) -> InMemorySaver:
    primary = MEMORY.setdefault(location["name"], InMemorySaver())
    saver = InMemorySaver()
    saver.storage, saver.writes, saver.blobs = primary.storage, primary.writes, primary.blobs
    return saver


@contextmanager
def _open_memory_saver(location: Location) -> Iterator[BaseCheckpointSaver]:
    yield _shared_memory_saver(location)


@asynccontextmanager
async def _aopen_memory_saver(location: Location) -> AsyncIterator[BaseCheckpointSaver]:
    yield _shared_memory_saver(location)


@contextmanager
def _open_sqlite_saver(location: Location) -> Iterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(location["path"]) as saver:
        saver.setup()
        yield saver


@asynccontextmanager
async def _aopen_sqlite_saver(location: Location) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(location["path"]) as saver:
        await saver.setup()
        yield saver


@contextmanager
def _open_postgres_saver(location: Location) -> Iterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(location["url"]) as saver:
        saver.setup()
        yield saver


@asynccontextmanager
async def _aopen_postgres_saver(location: Location) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(location["url"]) as saver:
        await saver.setup()
        yield saver


def postgres_saver_location(env: Env) -> Location:
    # PostgresSaver.setup() is not safe when two processes run it first at once (CREATE TABLE IF NOT EXISTS races:
    # UniqueViolation on pg_type), so the tables are created here, before any worker opens the location
    location = postgres_location(env)
    with _open_postgres_saver(location):
        pass
    return location


# memvault, on every backend of the repo's registry (tests/backends.py): one location = URL + isolating options + a
# namespace; every open() is a NEW Memory on it (another process does the same with the same location)
MEMVAULT_BACKENDS = ("memory", "sqlite", "file", "redis", "redis-cluster", "postgres")


def memvault_location(backend: str) -> Callable[[Env], Location]:
    def make(env: Env) -> Location:
        target, options = env.memvault_target(backend)
        return {"backend": backend, "target": target, "options": options, "namespace": f"lg{env.token()}"}

    return make


def sealed_location(backend: str) -> Callable[[Env], Location]:
    """The same, with everything encrypted and large payloads compressed at rest (memvault.codecs)."""
    plain = memvault_location(backend)

    def make(env: Env) -> Location:
        from memvault.codecs import generate_key

        location = plain(env)
        location["options"] = {**location["options"], "encryption": generate_key(), "compression": "zstd"}
        return location

    return make


def _memvault_memory(location: Location) -> Any:
    from memvault import Memory

    return Memory(location["target"], namespace=location["namespace"], embedder="hash", **location["options"])


@contextmanager
def _open_memvault_saver(location: Location) -> Iterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.memvault import MemvaultSaver

    memory = _memvault_memory(location)
    try:
        yield MemvaultSaver(memory=memory)
    finally:
        memory.close()


@asynccontextmanager
async def _aopen_memvault_saver(location: Location) -> AsyncIterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.memvault import MemvaultSaver

    memory = _memvault_memory(location)
    try:
        yield MemvaultSaver(memory=memory)
    finally:
        await memory.aclose()


def _memvault_recall(location: Location, thread_id: str, query: str) -> list[str]:
    memory = _memvault_memory(location)
    try:
        return [hit.message.text for hit in memory.recall(query, session=thread_id, k=5)]
    finally:
        memory.close()


_MEMVAULT_SAVER_CAPS = frozenset({"delete_for_runs", "copy_thread", "prune", "recall", "message_log"})

SAVERS: dict[str, SaverSpec] = {
    "inmemory": SaverSpec(memory_location, _open_memory_saver, _aopen_memory_saver, frozenset()),
    "sqlite": SaverSpec(sqlite_location, _open_sqlite_saver, _aopen_sqlite_saver, frozenset({"cross_process"})),
    "postgres": SaverSpec(
        postgres_saver_location, _open_postgres_saver, _aopen_postgres_saver, frozenset({"cross_process", "prune"})
    ),
    **{
        f"memvault-{backend}": SaverSpec(
            memvault_location(backend), _open_memvault_saver, _aopen_memvault_saver,
            _MEMVAULT_SAVER_CAPS | ({"cross_process"} if backend != "memory" else set()), recall=_memvault_recall,
        )
        for backend in MEMVAULT_BACKENDS
    },
    # encrypted + compressed at rest: the whole suite again on the embedded default and on a server backend
    **{
        f"memvault-{backend}-sealed": SaverSpec(
            sealed_location(backend), _open_memvault_saver, _aopen_memvault_saver,
            _MEMVAULT_SAVER_CAPS | {"cross_process"}, recall=_memvault_recall,
        )
        for backend in ("sqlite", "postgres")
    },
}


# ------------------------------------------------------------------------------------------------ stores
def _shared_memory_store(location: Location, index: Any = None, ttl: Any = None) -> InMemoryStore:
    if ttl is not None:
        raise NotImplementedError("InMemoryStore has no TTL")
    primary = MEMORY.setdefault(location["name"], InMemoryStore())
    store = InMemoryStore(index=index)
    store._data, store._vectors = primary._data, primary._vectors
    return store


@contextmanager
def _open_memory_store(location: Location, index: Any = None, ttl: Any = None) -> Iterator[BaseStore]:
    yield _shared_memory_store(location, index, ttl)


@asynccontextmanager
async def _aopen_memory_store(location: Location, index: Any = None, ttl: Any = None) -> AsyncIterator[BaseStore]:
    yield _shared_memory_store(location, index, ttl)


def _sqlite_index(index: Any) -> Any:
    # SqliteStore reads its embedded fields from "text_fields" and ignores IndexConfig's "fields"
    if index and "fields" in index and "text_fields" not in index:
        return {**index, "text_fields": index["fields"]}
    return index


@contextmanager
def _open_sqlite_store(location: Location, index: Any = None, ttl: Any = None) -> Iterator[BaseStore]:
    from langgraph.store.sqlite import SqliteStore

    with SqliteStore.from_conn_string(location["path"], index=_sqlite_index(index), ttl=ttl) as store:
        store.setup()
        yield store


@asynccontextmanager
async def _aopen_sqlite_store(location: Location, index: Any = None, ttl: Any = None) -> AsyncIterator[BaseStore]:
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    async with AsyncSqliteStore.from_conn_string(location["path"], index=_sqlite_index(index), ttl=ttl) as store:
        await store.setup()
        yield store


def _float_ttl_migrations(store: Any) -> None:
    # Upstream stores ttl_minutes as INT, so a refresh of a sub-minute TTL rounds it to 0 minutes; upstream's own
    # tests patch the migration the same way. Only affects tables this store creates.
    store.MIGRATIONS = [m.replace("ttl_minutes INT;", "ttl_minutes FLOAT;") for m in type(store).MIGRATIONS]


@contextmanager
def _open_postgres_store(location: Location, index: Any = None, ttl: Any = None) -> Iterator[BaseStore]:
    from langgraph.store.postgres import PostgresStore

    with PostgresStore.from_conn_string(location["url"], index=index, ttl=ttl) as store:
        _float_ttl_migrations(store)
        store.setup()
        yield store


@asynccontextmanager
async def _aopen_postgres_store(location: Location, index: Any = None, ttl: Any = None) -> AsyncIterator[BaseStore]:
    from langgraph.store.postgres.aio import AsyncPostgresStore

    async with AsyncPostgresStore.from_conn_string(location["url"], index=index, ttl=ttl) as store:
        _float_ttl_migrations(store)
        await store.setup()
        yield store


# The interpreter's sqlite3 must be able to load sqlite-vec for SqliteStore's vector search (pyenv builds often can't)
_SQLITE_VECTOR = {"vector"} if hasattr(sqlite3.Connection, "enable_load_extension") else set()

STORES: dict[str, StoreSpec] = {
    "inmemory": StoreSpec(
        memory_location,
        _open_memory_store,
        _aopen_memory_store,
        frozenset({"vector", "filter_nested_dict"}),
        known_failures={
            "test_deleted_items_leave_namespace_listings": "InMemoryStore keeps listing a namespace whose last item "
            "was deleted (it leaves an empty dict behind)",
            "test_vector_batch_put_with_identical_texts": "InMemoryStore de-duplicates identical texts before "
            "embedding a batch, then fails: 'Number of embeddings (1) does not match number of indices (2)'",
        },
    ),
    "sqlite": StoreSpec(
        sqlite_location,
        _open_sqlite_store,
        _aopen_sqlite_store,
        frozenset({"ttl", "ttl_sweeper", "cross_process", "recency_order", "filter_dotted_path", *_SQLITE_VECTOR}),
        timestamp_resolution=1.05,
        ttl_resolution=1.0,
        known_failures={
            "test_vector_search_pagination": "SqliteStore's vector query keeps only limit*2 candidate rows before "
            "OFFSET, so pages past 2*limit come back empty",
        },
    ),
    "postgres": StoreSpec(
        postgres_location,
        _open_postgres_store,
        _aopen_postgres_store,
        frozenset(
            {"vector", "ttl", "ttl_sweeper", "omit_expired", "cross_process", "recency_order", "preserves_created_at"}
        ),
    ),
}


# ------------------------------------------------------------------------------------------------ byte stores
@contextmanager
def _open_memory_bytestore(location: Location) -> Iterator[ByteStore]:
    primary = MEMORY.setdefault(location["name"], InMemoryByteStore())
    store = InMemoryByteStore()
    store.store = primary.store
    yield store


BYTESTORES: dict[str, ByteStoreSpec] = {
    "inmemory": ByteStoreSpec(memory_location, _open_memory_bytestore, frozenset({"persistent"})),
    # "memvault-sqlite": ByteStoreSpec(sqlite_location, _open_memvault_bytestore, frozenset({"persistent", ...})),
}

# memvault's store and byte store on every memvault backend (entries built in lg_memvault.py)
from lg_memvault import MEMVAULT_BYTESTORES, MEMVAULT_STORES  # noqa: E402

STORES.update(MEMVAULT_STORES)
BYTESTORES.update(MEMVAULT_BYTESTORES)


def _selected(registry: dict[str, Any]) -> list[str]:
    wanted = os.environ.get("LANGGRAPH_TEST_TARGETS")
    names = sorted(registry)
    if wanted:
        names = [n for n in names if n in {w.strip() for w in wanted.split(",")}]
    return names


# ------------------------------------------------------------------------------------------------ fixtures
def _check_capabilities(request: pytest.FixtureRequest, registry: str, name: str, caps: frozenset[str]) -> None:
    needed = {c for m in request.node.iter_markers("requires") for c in m.args}
    if missing := needed - caps:
        pytest.skip(f"not applicable: {registry}[{name!r}] does not declare {sorted(missing)}")


@contextmanager
def _env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    with contextlib.ExitStack() as stack:
        yield Env(request, tmp_path, stack)


_REGISTRIES: dict[str, tuple[str, dict[str, Any]]] = {
    "saver_factory": ("SAVERS", SAVERS),
    "store_factory": ("STORES", STORES),
    "bytestore_factory": ("BYTESTORES", BYTESTORES),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect tests an entry does not declare the capabilities for (reported as deselected: they do not apply,
    e.g. "another process" for an in-process store), and apply each entry's ``known_failures`` as strict xfails (an
    unexpected pass fails the run)."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        needed = {c for m in item.iter_markers("requires") for c in m.args}
        applies = True
        for fixture, (registry_name, registry) in _REGISTRIES.items():
            name = params.get(fixture)
            if not isinstance(name, str) or name not in registry:
                continue
            if needed - registry[name].capabilities:
                applies = False
                continue
            reason = registry[name].known_failures.get(getattr(item, "originalname", item.name))
            if reason:
                item.add_marker(pytest.mark.xfail(strict=True, reason=f"known {registry_name}[{name!r}] failure: {reason}"))
        (kept if applies else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): run only for registry entries declaring them")


@pytest.fixture(params=_selected(SAVERS))
def saver_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SaverFactory]:
    name: str = request.param
    _check_capabilities(request, "SAVERS", name, SAVERS[name].capabilities)
    with _env(request, tmp_path) as env:
        yield SaverFactory(name, SAVERS[name], env)


@pytest.fixture(params=_selected(STORES))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    name: str = request.param
    _check_capabilities(request, "STORES", name, STORES[name].capabilities)
    with _env(request, tmp_path) as env:
        yield StoreFactory(name, STORES[name], env)


@pytest.fixture
def store(store_factory: StoreFactory) -> BaseStore:
    """A store without index or TTL on fresh storage (sync API)."""
    return store_factory()


@pytest.fixture
async def astore(store_factory: StoreFactory) -> AsyncIterator[BaseStore]:
    """A store without index or TTL on fresh storage (async API)."""
    async with store_factory.aopen() as s:
        yield s


@pytest.fixture(params=_selected(BYTESTORES))
def bytestore_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ByteStoreFactory]:
    name: str = request.param
    _check_capabilities(request, "BYTESTORES", name, BYTESTORES[name].capabilities)
    with _env(request, tmp_path) as env:
        yield ByteStoreFactory(name, BYTESTORES[name], env)


@pytest.fixture
def recall_hook(saver_factory: SaverFactory) -> Callable[[str, str], list[str]]:
    """HOOK for memvault savers (capability "recall"): ``recall_hook(thread_id, query)`` -> the texts
    ``Memory.recall`` finds in what the agent stored. Entries without "recall" never reach this fixture (the test
    requires the capability); an entry declaring it must also provide ``SaverSpec.recall``."""
    recall = saver_factory.spec.recall
    if recall is None:
        pytest.fail(f"SAVERS[{saver_factory.name!r}] declares 'recall' but has no SaverSpec.recall")
    location = saver_factory.location
    return lambda thread_id, query: recall(location, thread_id, query)


@pytest.fixture(scope="session")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    """Two long-lived worker processes (started once: importing LangChain costs ~2 s per process)."""
    base = tmp_path_factory.mktemp("lg-workers")
    pool = [Worker(base / f"worker-{i}.log") for i in range(2)]
    try:
        for w in pool:
            assert w.call("ping", timeout=60) == "pong"
        yield pool
    finally:
        for w in pool:
            w.close()
