"""The two faces of a store, with the forwarding from contract methods to a backend's operations written once.

- :class:`AsyncStore` is ``store.aio``: every contract method as a coroutine, each forwarding to ``_arun(name,
  *args, **kwargs)``. :class:`ThreadedAsyncStore` runs the sync method in a worker thread (any backend); the
  PostgreSQL and Redis faces run the same plans natively on an async client.
- :class:`PlannedStore` is the sync face of a backend whose operations are *plans* (SQL statements, Redis
  commands) executed by one driver: every contract method forwards to ``_run(name, *args, **kwargs)``.

A backend that implements the contract directly (memory, SQLite, files) subclasses :class:`~memvault.contract.Store`
and gets :class:`ThreadedAsyncStore` for free.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from memvault.contract import AppendOptions, Entry, Rewrite, SessionQuery, Store
from memvault.model import Message, Page, Record, SessionInfo


class PlannedStore(Store):
    """A store whose operations run through one sync driver: ``_run(name, *args, **kwargs)``."""

    @abstractmethod
    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run the backend's operation ``name`` with these arguments and return its result."""

    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        return self._run("get_session", ns, sid)

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        return self._run("ensure_session", ns, sid, options)

    def delete_session(self, ns: str, sid: str) -> bool:
        return self._run("delete_session", ns, sid)

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        return self._run("list_sessions", query)

    def purge_expired(self) -> int:
        return self._run("purge_expired")

    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        return self._run("update_metadata", ns, sid, metadata, replace)

    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return self._run("append", ns, sid, records, options)

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return self._run("replace", ns, sid, records, options)

    def read(
        self, ns: str, sid: str, *, start: int | None = None, stop: int | None = None, last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        return self._run("read", ns, sid, start=start, stop=stop, last=last, limit=limit)

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        return self._run("get_messages", ns, sid, ids)

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        return self._run("delete_messages", ns, sid, ids)

    def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        return self._run("rewrite", ns, sid, changes)

    def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        return self._run("list_kinds", ns, sid)

    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        return self._run("pop_messages", ns, sid, index=index, count=count, ids=ids)

    def count(self, ns: str, sid: str) -> int:
        return self._run("count", ns, sid)

    def clear(self, ns: str, sid: str) -> int:
        return self._run("clear", ns, sid)

    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        self._run("put_record", ns, sid, kind, key, data)

    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self._run("get_records", ns, sid, kind, keys=keys, last=last)

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        return self._run("delete_records", ns, sid, kind, keys)

    def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        return self._run("put_entries", ns, sid, entries, options, if_absent=if_absent)

    def append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> list[int]:
        return self._run("append_entries", ns, sid, records, entries, options)

    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        return self._run("get_entries", ns, sid, kind, keys)

    def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        return self._run(
            "scan_entries", ns, sid, kind, start=start, stop=stop, reverse=reverse, limit=limit, keys_only=keys_only
        )

    def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        return self._run("delete_entries", ns, sid, kind, keys, start=start, stop=stop)


class AsyncStore:
    """The asynchronous face of a store (``store.aio``): the contract's methods as coroutines, each forwarding to
    ``_arun(name, *args, **kwargs)``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        """The sync store this face belongs to."""
        return self._store

    async def _arun(self, name: str, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        return await self._arun("get_session", ns, sid)

    async def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        return await self._arun("ensure_session", ns, sid, options)

    async def delete_session(self, ns: str, sid: str) -> bool:
        return await self._arun("delete_session", ns, sid)

    async def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        return await self._arun("list_sessions", query)

    async def purge_expired(self) -> int:
        return await self._arun("purge_expired")

    async def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        return await self._arun("update_metadata", ns, sid, metadata, replace)

    async def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return await self._arun("append", ns, sid, records, options)

    async def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return await self._arun("replace", ns, sid, records, options)

    async def read(
        self, ns: str, sid: str, *, start: int | None = None, stop: int | None = None, last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        return await self._arun("read", ns, sid, start=start, stop=stop, last=last, limit=limit)

    async def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        return await self._arun("get_messages", ns, sid, ids)

    async def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        return await self._arun("delete_messages", ns, sid, ids)

    async def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        return await self._arun("rewrite", ns, sid, changes)

    async def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        return await self._arun("list_kinds", ns, sid)

    async def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        return await self._arun("pop_messages", ns, sid, index=index, count=count, ids=ids)

    async def count(self, ns: str, sid: str) -> int:
        return await self._arun("count", ns, sid)

    async def clear(self, ns: str, sid: str) -> int:
        return await self._arun("clear", ns, sid)

    async def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        await self._arun("put_record", ns, sid, kind, key, data)

    async def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return await self._arun("get_records", ns, sid, kind, keys=keys, last=last)

    async def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        return await self._arun("delete_records", ns, sid, kind, keys)

    async def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        return await self._arun("put_entries", ns, sid, entries, options, if_absent=if_absent)

    async def append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> list[int]:
        return await self._arun("append_entries", ns, sid, records, entries, options)

    async def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        return await self._arun("get_entries", ns, sid, kind, keys)

    async def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        return await self._arun(
            "scan_entries", ns, sid, kind, start=start, stop=stop, reverse=reverse, limit=limit, keys_only=keys_only
        )

    async def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        return await self._arun("delete_entries", ns, sid, kind, keys, start=start, stop=stop)

    async def ping(self) -> None:
        await self._arun("ping")

    async def stats(self) -> dict[str, Any]:
        return await self._arun("stats")

    async def close(self) -> None:
        await self._arun("close")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._store!r}>"


class ThreadedAsyncStore(AsyncStore):
    """The async face of any sync store: each call runs in a worker thread, so the event loop never blocks."""

    async def _arun(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self._store, name), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        """Backend extras beyond the contract (e.g. ``find_messages``), offloaded the same way."""
        method = getattr(self._store, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        call.__name__ = name
        return call


__all__ = ["AsyncStore", "PlannedStore", "ThreadedAsyncStore"]
