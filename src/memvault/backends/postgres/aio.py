"""The native async face of :class:`~.store.PostgresStore`: the same plans, run on async connections."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.errors
from psycopg_pool import PoolClosed, PoolTimeout
from tenacity import AsyncRetrying

from memvault.backends.postgres.drive import Plan, R, drive_async
from memvault.backends.postgres.store import Unreachable, retry_wait
from memvault.faces import AsyncStore
from memvault.model import Message, Page

if TYPE_CHECKING:
    from memvault.backends.postgres.store import PostgresStore


class PostgresAsyncStore(AsyncStore):
    """The native async face of a :class:`PostgresStore`: the same plans, run on an ``AsyncConnectionPool``."""

    _store: PostgresStore

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)

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

    async def run_plan(self, plan_fn: Callable[..., Plan[R]], *args: Any, **kwargs: Any) -> R:
        """Execute a plan on a pooled async connection, retrying transient failures (as the sync face does)."""
        store = self._store

        async def attempt_once() -> R:
            if store._down_since is not None:  # the breaker is open: fail at once, or probe when one is due
                if time.monotonic() < store._next_probe:
                    raise store._still_down()
                await asyncio.to_thread(store._probe)
            async with self._checkout() as conn:
                return await drive_async(conn, plan_fn(*args, **kwargs))

        try:
            try:
                return await attempt_once()
            except Exception as exc:
                pause = store.first_retry_wait(exc)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
            async for attempt in AsyncRetrying(retry=store.should_retry, wait=retry_wait, reraise=True):
                with attempt:
                    result = await attempt_once()
            return result
        except Unreachable as exc:
            raise store._fail(exc) from None
        except (psycopg.Error, PoolTimeout, PoolClosed) as exc:
            if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
                await asyncio.to_thread(store._suspect, exc)
            raise store._fail(exc) from None

    async def _arun(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self.run_plan(getattr(self._store, f"_p_{name}"), *args, **kwargs)

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
