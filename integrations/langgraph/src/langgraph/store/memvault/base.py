"""``MemvaultStore``: LangGraph's ``BaseStore`` on :class:`memvault.documents.DocumentStore`.

Only translation lives here (LangGraph ops, configs and items <-> the core's); storage, search, TTL and validation
are the core's, so the sync and async paths run the same logic (the async one on the backend's native async face).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    validate_op_namespace,
)

from memvault import Memory
from memvault import documents as core
from memvault.errors import InvalidEmbedder, InvalidFilter, InvalidSessionId
from memvault.shared import open_memory, owned

#: index "embed" strings memvault resolves itself (no network): the offline MiniLM, or the hashing test embedder
_MEMVAULT_EMBEDDERS = ("default", "memvault")


class MemvaultInvalidNamespace(InvalidNamespaceError, InvalidSessionId):
    """A namespace LangGraph refuses (empty label, a '.', NUL, not a str): both LangGraph's and memvault's error."""


class MemvaultSearchItem(SearchItem):
    """A ``SearchItem`` with memvault's explanation of its score: ``signals`` maps "dense" / "keyword" to the rank,
    raw score and share of the fused score (None when the item was not ranked by a query)."""

    __slots__ = ("signals",)

    def __init__(self, *args: Any, signals: dict[str, dict[str, float]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signals = signals


def _model_id(embed: Any) -> str | None:
    if callable(embed) and not hasattr(embed, "embed_documents"):
        return f"{getattr(embed, '__module__', '?')}.{getattr(embed, '__qualname__', type(embed).__name__)}"
    return None


def search_index(index: IndexConfig | Mapping[str, Any] | str | None) -> core.SearchIndex | None:
    """The core index for LangGraph's ``index=`` config: ``{"dims", "embed", "fields"}`` plus memvault's ``"mode"``
    ("hybrid" | "dense" | "keyword"), ``"dense_weight"`` and ``"model_id"``. ``"memvault"`` or ``{"embed":
    "default"}`` is the offline MiniLM (dims inferred); ``"hash"`` / ``"hash-N"`` the hashing test embedder; any other
    ``embed`` (Embeddings, a sync or async function, ``"provider:model"``) goes through LangGraph's
    ``ensure_embeddings``."""
    if index is None:
        return None
    if isinstance(index, str):
        index = {"embed": index}
    if not isinstance(index, Mapping):
        raise InvalidEmbedder(f"index must be an IndexConfig dict, 'memvault' or None, got {type(index).__name__}")
    options = cast("Mapping[str, Any]", index)
    unknown = set(options) - {"dims", "embed", "fields", "mode", "dense_weight", "model_id", "text_fields"}
    if unknown:
        raise InvalidEmbedder(f"unknown index option(s) {sorted(unknown)}")
    embed = options.get("embed", "default")
    if isinstance(embed, str) and (embed in _MEMVAULT_EMBEDDERS or embed == "hash" or embed.startswith("hash-")):
        spec: Any = "default" if embed == "memvault" else embed
    elif embed is None:
        spec = None  # keyword search only
    else:
        try:
            spec = ensure_embeddings(embed)
        except ValueError as exc:
            raise InvalidEmbedder(str(exc)) from None
    fields = options.get("fields") or options.get("text_fields") or ["$"]
    return core.SearchIndex(embed=spec, fields=fields, dims=options.get("dims"), mode=options.get("mode", "hybrid"),
                            dense_weight=options.get("dense_weight", 0.5),
                            model_id=options.get("model_id") or _model_id(embed))


def ttl_policy(ttl: TTLConfig | Mapping[str, Any] | None) -> core.TTLPolicy:
    if ttl is None:
        return core.TTLPolicy()
    if not isinstance(ttl, Mapping):
        raise InvalidFilter(f"ttl must be a TTLConfig dict or None, got {type(ttl).__name__}")
    return core.TTLPolicy(default_ttl=ttl.get("default_ttl"), refresh_on_read=ttl.get("refresh_on_read", True),
                          sweep_interval_minutes=ttl.get("sweep_interval_minutes"))


def _to_core(op: Op) -> core.Operation:
    try:
        validate_op_namespace(op)
    except InvalidNamespaceError as exc:
        raise MemvaultInvalidNamespace(str(exc)) from None
    if isinstance(op, GetOp):
        return core.Get(op.namespace, op.key, op.refresh_ttl)
    if isinstance(op, PutOp):
        return core.Put(op.namespace, op.key, op.value, op.index, op.ttl)
    if isinstance(op, SearchOp):
        return core.Search(op.namespace_prefix, op.query, op.filter, op.limit, op.offset, op.refresh_ttl)
    if isinstance(op, ListNamespacesOp):
        conditions = tuple((c.match_type, tuple(c.path)) for c in op.match_conditions or ())
        return core.ListNamespaces(conditions, op.max_depth, op.limit, op.offset)
    raise InvalidFilter(f"unknown operation {type(op).__name__}")


def _item(item: core.Item) -> Item:
    return Item(value=item.value, key=item.key, namespace=item.namespace, created_at=item.created_at,
                updated_at=item.updated_at)


def _from_core(result: Any) -> Result:
    if isinstance(result, core.Item):
        return _item(result)
    if isinstance(result, list) and result and isinstance(result[0], core.Hit):
        hits: list[SearchItem] = [
            MemvaultSearchItem(namespace=h.namespace, key=h.key, value=h.value, created_at=h.created_at,
                               updated_at=h.updated_at, score=h.score, signals=h.signals) for h in result]
        return hits
    return result


class MemvaultStore(BaseStore):
    """LangGraph's long-term store on memvault: every backend, hybrid search (dense + BM25 fused, per-signal
    ``signals`` on each result), TTL with refresh on read and a sweeper, other processes' writes visible to the
    next search.

    ``MemvaultStore()`` (embedded default SQLite), ``MemvaultStore(url="postgresql://...")`` (backend options as
    keywords: ``schema=``, ``prefix=``, ...), ``MemvaultStore(memory=Memory(...))``; ``name`` separates independent
    stores of one memvault namespace (tenant). ``index``: LangGraph's ``{"dims", "embed", "fields"}`` (plus
    ``"mode"``), or ``"memvault"`` for the offline default embedder. ``ttl``: ``{"default_ttl",
    "refresh_on_read", "sweep_interval_minutes"}`` (minutes); expired items are never returned, swept or not."""

    supports_ttl = True

    def __init__(
        self,
        memory: Memory | None = None,
        *,
        url: str | None = None,
        name: str = "default",
        namespace: str | None = None,
        index: IndexConfig | Mapping[str, Any] | str | None = None,
        ttl: TTLConfig | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.memory = open_memory(url, memory, options or None)
        self._owns_memory = owned(self.memory)
        try:
            self.index_config = dict(index) if isinstance(index, Mapping) else index
            self.ttl_config = dict(ttl) if ttl is not None else None  # type: ignore[assignment]
            self.documents = core.DocumentStore(self.memory, name, namespace=namespace, index=search_index(index),
                                                ttl=ttl_policy(ttl))
        except BaseException:
            self.close()
            raise
        self._sweeper: concurrent.futures.Future[None] | None = None

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str | None = None, **kwargs: Any) -> Iterator[MemvaultStore]:
        """A store on ``conn_string`` (any memvault URL), closed (with its connections) on exit; like upstream's."""
        options = {k: kwargs.pop(k) for k in list(kwargs) if k not in ("name", "namespace", "index", "ttl")}
        memory = Memory(conn_string, **options)
        try:
            store = cls(memory=memory, **kwargs)
            store._owns_memory = True
            with store:
                yield store
        finally:
            memory.close()

    def setup(self) -> None:
        """Nothing to do (memvault creates and migrates its schema itself); kept for code written for upstream."""

    async def asetup(self) -> None:
        """See :meth:`setup`."""

    # -- BaseStore ----------------------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return [_from_core(r) for r in self.documents.batch([_to_core(op) for op in ops])]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return [_from_core(r) for r in await self.documents.abatch([_to_core(op) for op in ops])]

    # -- TTL ----------------------------------------------------------------------------------------------------
    def sweep_ttl(self) -> int:
        """Delete expired items now; returns how many."""
        return self.documents.sweep()

    async def asweep_ttl(self) -> int:
        return await self.documents.asweep()

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> concurrent.futures.Future[None]:
        """Sweep every ``sweep_interval_minutes`` (default: the TTL config's) in a daemon thread; the returned
        future completes when :meth:`stop_ttl_sweeper` stops it (done at once when no interval is configured)."""
        interval = sweep_interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not interval:
            future.set_result(None)
            return future
        if self._sweeper is not None and not self._sweeper.done():
            return self._sweeper
        self.documents.start_sweeper(interval)
        self._sweeper = future
        return future

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        stopped = self.documents.stop_sweeper(timeout)
        if stopped and self._sweeper is not None and not self._sweeper.done():
            self._sweeper.set_result(None)
        return stopped

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the sweeper; close the memvault Memory if this store opened it privately."""
        documents = getattr(self, "documents", None)
        if documents is not None:
            self.stop_ttl_sweeper()
        if getattr(self, "_owns_memory", False):
            self.memory.close()

    async def aclose(self) -> None:
        documents = getattr(self, "documents", None)
        if documents is not None:
            self.stop_ttl_sweeper()
        if getattr(self, "_owns_memory", False):
            await self.memory.aclose()

    def __enter__(self) -> MemvaultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemvaultStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"MemvaultStore({self.documents.name!r}, memory={self.memory!r})"


__all__ = ["MemvaultInvalidNamespace", "MemvaultSearchItem", "MemvaultStore", "search_index", "ttl_policy"]
