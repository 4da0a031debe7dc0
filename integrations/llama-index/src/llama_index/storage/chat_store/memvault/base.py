"""``MemvaultChatStore``: LlamaIndex's ``BaseChatStore`` (used by ``ChatMemoryBuffer``) on memvault.

Each chat-store key is one memvault session in the store's namespace. Every method is a thin translation to
memvault's Session API; the sync methods and their async twins share one implementation (generator operations run
by ``run`` / ``arun``), the async twins use memvault's native async path.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import BaseModel, Field, PrivateAttr
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.storage.chat_store.memvault._convert import arun, call, run, to_chat_message, to_message

from memvault import Memory
from memvault.memory import Session
from memvault.shared import open_memory, owned

Op = Generator[Any, Any, Any]


class MemvaultStoreBase(BaseModel):
    """What both memvault chat stores share: the backend fields, opening the Memory, and key -> session."""

    url: str | None = Field(default=None, description="memvault backend URL (None: MEMVAULT_URL or embedded SQLite)")
    namespace: str | None = Field(default=None, description="memvault namespace (tenant) holding the keys")
    user_id: str | None = Field(default=None, description="user id recorded on sessions created by this store")

    _memory: Memory = PrivateAttr()

    def __init__(
        self,
        url: str | None = None,
        *,
        memory: Memory | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
        **memory_options: Any,
    ) -> None:
        super().__init__(url=url, namespace=namespace, user_id=user_id)
        self._memory = open_memory(url, memory, memory_options)

    @property
    def memory(self) -> Memory:
        """The underlying memvault Memory."""
        return self._memory

    def session(self, key: str) -> Session:
        """The memvault session behind ``key``."""
        return self._memory.session(key, namespace=self.namespace, user_id=self.user_id)


class MemvaultChatStore(MemvaultStoreBase, BaseChatStore):
    """A persistent ``BaseChatStore``: one memvault session per key.

    ``MemvaultChatStore()`` uses memvault's embedded default (SQLite under ``$MEMVAULT_HOME``);
    ``MemvaultChatStore(url="postgresql://…")`` any backend; ``MemvaultChatStore(memory=mem)`` shares a Memory.
    ``namespace`` scopes the keys (tenants); ``user_id`` is recorded on sessions this store creates.
    """


    @classmethod
    def class_name(cls) -> str:
        return "MemvaultChatStore"

    def close(self) -> None:
        """Release this store. A Memory it opened itself (backend options given) is closed; the process-wide shared
        Memory and a ``memory=`` you passed stay open for the other users (closing per request is safe)."""
        if owned(self._memory):
            self._memory.close()

    # -- operations, written once --------------------------------------------------------------------------------
    def _set(self, key: str, messages: list[ChatMessage]) -> Op:
        records = [to_message(m) for m in messages]
        yield call(self.session(key), "replace", records)

    def _get(self, key: str) -> Op:
        stored = yield call(self.session(key), "messages")
        return [to_chat_message(m) for m in stored]

    def _add(self, key: str, message: ChatMessage) -> Op:
        yield call(self.session(key), "extend", [to_message(message)])

    def _delete_all(self, key: str) -> Op:
        session = self.session(key)
        stored = yield call(session, "messages")
        existed = yield call(session, "delete")
        if not existed:
            return None
        return [to_chat_message(m) for m in stored]

    def _delete_at(self, key: str, idx: int) -> Op:
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise TypeError(f"idx must be an int, got {type(idx).__name__}")
        popped = yield call(self.session(key), "pop", idx)  # atomic: concurrent deletes never return one message twice
        return to_chat_message(popped[0]) if popped else None

    def _delete_last(self, key: str) -> Op:
        return (yield from self._delete_at(key, -1))

    def _keys(self) -> Op:
        keys: list[str] = []
        cursor = None
        while True:
            page = yield call(self._memory, "sessions", namespace=self.namespace, limit=1000, cursor=cursor)
            keys.extend(info.id for info in page)
            cursor = page.next_cursor
            if cursor is None:
                return keys

    # -- BaseChatStore -------------------------------------------------------------------------------------------
    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the key's history with ``messages`` atomically."""
        run(self._set(key, messages))

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The key's messages, oldest first ([] for an unknown key)."""
        return run(self._get(key))

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append one message."""
        run(self._add(key, message))

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete the key; return its messages (None if the key did not exist)."""
        return run(self._delete_all(key))

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at position ``idx`` (negative counts from the end); the rest keep their order."""
        return run(self._delete_at(key, idx))

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete and return the newest message (None if there is none)."""
        return run(self._delete_last(key))

    def get_keys(self) -> list[str]:
        """Every key (session) in this store's namespace, most recently updated first (paged listing, no scan)."""
        return run(self._keys())

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await arun(self._set(key, messages))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return await arun(self._get(key))

    async def async_add_message(self, key: str, message: ChatMessage) -> None:
        await arun(self._add(key, message))

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        return await arun(self._delete_all(key))

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        return await arun(self._delete_at(key, idx))

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        return await arun(self._delete_last(key))

    async def aget_keys(self) -> list[str]:
        return await arun(self._keys())
