"""LangChain integration for memvault: chat message history, vector store, retriever and embeddings."""

from langchain_memvault._messages import from_memvault, to_memvault
from langchain_memvault.chat_message_histories import MemvaultChatMessageHistory, Window
from langchain_memvault.embeddings import MemvaultEmbeddings
from langchain_memvault.migrate import import_langchain_postgres, import_langchain_redis
from langchain_memvault.retrievers import MemvaultRetriever
from langchain_memvault.stores import MemvaultByteStore as MemvaultByteStore
from langchain_memvault.vectorstores import MemvaultVectorStore, MemvaultVectorStoreRetriever, translate_filter

__version__ = "0.1.0"

__all__ = [
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
