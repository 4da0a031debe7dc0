"""memvault — persistent agent memory for LangChain and LlamaIndex on one storage core.

>>> from memvault import Memory
>>> mem = Memory("memory://")
>>> s = mem.session("alice")
>>> s.add("user", "My favourite colour is blue").seq
1
"""

from memvault.artifacts import ArtifactVersion
from memvault.config import default_url
from memvault.contract import AppendOptions, SessionQuery, Store
from memvault.errors import (
    ArtifactNotFound,
    ArtifactTooLarge,
    BackendUnavailable,
    CorruptData,
    InvalidFilter,
    InvalidMessage,
    InvalidSessionId,
    MemvaultError,
    SessionNotFound,
    StateConflict,
)
from memvault.memory import Memory, Session
from memvault.model import Message, Page, SessionInfo
from memvault.registry import open_store
from memvault.state import State, StateEvent

__version__ = "0.1.0"

__all__ = [
    "AppendOptions",
    "ArtifactNotFound",
    "ArtifactTooLarge",
    "ArtifactVersion",
    "BackendUnavailable",
    "CorruptData",
    "InvalidFilter",
    "InvalidMessage",
    "InvalidSessionId",
    "Memory",
    "MemvaultError",
    "Message",
    "Page",
    "Session",
    "SessionInfo",
    "SessionNotFound",
    "SessionQuery",
    "State",
    "StateConflict",
    "StateEvent",
    "Store",
    "default_url",
    "open_store",
]
