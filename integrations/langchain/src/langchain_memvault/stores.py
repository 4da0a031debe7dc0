"""``MemvaultByteStore``: LangChain's ``ByteStore`` on :class:`memvault.kv.KeyValueStore` (every backend)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.stores import ByteStore

from memvault import Memory
from memvault.kv import KeyValueStore
from memvault.shared import open_memory, owned

__all__ = ["MemvaultByteStore"]


class MemvaultByteStore(ByteStore):
    """Bytes by key, persistent on any memvault backend, shared by every process on the same storage.

    ``MemvaultByteStore()`` (embedded default SQLite), ``MemvaultByteStore(url="redis://...")`` (backend options as
    keywords), ``MemvaultByteStore(memory=Memory(...))``; ``name`` separates independent stores of one memvault
    namespace (tenant). ``mset`` is atomic; async methods run on the backend's native async face."""

    def __init__(self, memory: Memory | None = None, *, url: str | None = None, name: str = "default",
                 namespace: str | None = None, **options: Any) -> None:
        self.memory = open_memory(url, memory, options or None)
        self._owns_memory = owned(self.memory)
        self.kv = KeyValueStore(self.memory, name, namespace=namespace)

    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.kv.mget(keys)

    async def amget(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.kv.amget(keys)

    def mset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        self.kv.mset(key_value_pairs)

    async def amset(self, key_value_pairs: Sequence[tuple[str, bytes]]) -> None:
        await self.kv.amset(key_value_pairs)

    def mdelete(self, keys: Sequence[str]) -> None:
        self.kv.mdelete(keys)

    async def amdelete(self, keys: Sequence[str]) -> None:
        await self.kv.amdelete(keys)

    def yield_keys(self, *, prefix: str | None = None) -> Iterator[str]:
        return self.kv.yield_keys(prefix)

    async def ayield_keys(self, *, prefix: str | None = None) -> AsyncIterator[str]:
        async for key in self.kv.ayield_keys(prefix):
            yield key

    def close(self) -> None:
        """Close the memvault Memory if this store opened it privately (a shared or given one stays open)."""
        if self._owns_memory:
            self.memory.close()

    def __enter__(self) -> MemvaultByteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemvaultByteStore({self.kv.name!r}, memory={self.memory!r})"
