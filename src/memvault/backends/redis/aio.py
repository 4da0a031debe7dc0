"""The native async face of :class:`~.store.RedisStore`: the same plans, run on ``redis.asyncio`` clients."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from memvault.faces import AsyncStore

if TYPE_CHECKING:
    from memvault.backends.redis.store import RedisStore


class RedisAsyncStore(AsyncStore):
    """``store.aio`` of a RedisStore: the same plans as coroutines over ``redis.asyncio``."""

    _store: RedisStore

    async def _arun(self, name: str, *args: Any, **kwargs: Any) -> Any:
        store = self._store
        return await store._arun_plan(getattr(store, f"_p_{name}")(*args, **kwargs))

    async def ping(self) -> None:
        store = self._store
        try:
            await store._async_client().ping()
        except RedisError as exc:
            raise store._translate(exc) from exc
        except OSError as exc:
            raise store._unavailable(exc) from exc

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._store.stats)

    async def close(self) -> None:
        store = self._store
        conn = store._conn
        client = conn.async_client
        if client is not None and conn.owns_async:
            conn.async_client = None
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await client.aclose()
        store.close()
