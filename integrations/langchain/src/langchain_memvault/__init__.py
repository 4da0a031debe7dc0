"""LangChain integration for memvault: chat message history, vector store, retriever and embeddings."""

from langchain_memvault._messages import from_memvault, to_memvault
from langchain_memvault.chat_message_histories import MemvaultChatMessageHistory, Window

__version__ = "0.1.0"

__all__ = [
    "MemvaultChatMessageHistory",
    "Window",
    "from_memvault",
    "to_memvault",
]
