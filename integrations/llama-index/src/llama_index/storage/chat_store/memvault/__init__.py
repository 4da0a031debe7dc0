"""memvault chat stores for LlamaIndex: ``MemvaultChatStore`` (BaseChatStore) and ``MemvaultAsyncChatStore``
(AsyncDBChatStore, for ``llama_index.core.memory.Memory``)."""

from llama_index.storage.chat_store.memvault.async_db import MemvaultAsyncChatStore
from llama_index.storage.chat_store.memvault.base import MemvaultChatStore

__all__ = ["MemvaultAsyncChatStore", "MemvaultChatStore"]
