"""LangChain integration for memvault: chat message history, vector store, retriever and embeddings.

Names are imported on first use (PEP 562): ``from langchain_memvault import MemvaultChatMessageHistory`` loads the
chat history and what it subclasses, not the retriever and vector store machinery (LangChain's tracers, langsmith).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_memvault._messages import from_memvault, to_memvault
    from langchain_memvault.chat_message_histories import MemvaultChatMessageHistory, Window
    from langchain_memvault.embeddings import MemvaultEmbeddings
    from langchain_memvault.migrate import import_langchain_postgres, import_langchain_redis
    from langchain_memvault.retrievers import MemvaultRetriever
    from langchain_memvault.stores import MemvaultByteStore
    from langchain_memvault.vectorstores import MemvaultVectorStore, MemvaultVectorStoreRetriever, translate_filter

__version__ = "0.1.0"

#: public name -> the module that defines it
_WHERE = {
    "from_memvault": "_messages",
    "to_memvault": "_messages",
    "MemvaultChatMessageHistory": "chat_message_histories",
    "Window": "chat_message_histories",
    "MemvaultEmbeddings": "embeddings",
    "import_langchain_postgres": "migrate",
    "import_langchain_redis": "migrate",
    "MemvaultRetriever": "retrievers",
    "MemvaultByteStore": "stores",
    "MemvaultVectorStore": "vectorstores",
    "MemvaultVectorStoreRetriever": "vectorstores",
    "translate_filter": "vectorstores",
}

__all__ = [
    "MemvaultByteStore",
    "MemvaultChatMessageHistory",
    "MemvaultEmbeddings",
    "MemvaultRetriever",
    "MemvaultVectorStore",
    "MemvaultVectorStoreRetriever",
    "Window",
    "from_memvault",
    "import_langchain_postgres",
    "import_langchain_redis",
    "to_memvault",
    "translate_filter",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'langchain_memvault' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"langchain_memvault.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
