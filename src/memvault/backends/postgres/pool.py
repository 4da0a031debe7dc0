"""Loop-local async connections for the native async face (no background tasks: see the class docstring)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import PoolClosed, PoolTimeout


class LoopConnections:
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
