"""``MemvaultChatMessageHistory``: a drop-in persistent ``BaseChatMessageHistory`` on any memvault backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from langchain_memvault._memory import resolve_memory
from langchain_memvault._messages import from_memvault_many, to_memvault_many
from memvault import Memory, Message, Session
from memvault.errors import InvalidFilter

__all__ = ["MemvaultChatMessageHistory", "Window"]


@dataclass(frozen=True)
class Window:
    """Which recent messages ``messages`` returns: the last ``messages`` messages and/or as many of the most recent
    messages as fit in ``tokens`` tokens (both limits apply when both are given)."""

    messages: int | None = None
    tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("messages", "tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InvalidFilter(f"Window({name}=) must be a positive int or None, got {value!r}")
        if self.messages is None and self.tokens is None:
            raise InvalidFilter("Window needs messages= or tokens= (or pass window=None for the full history)")


def _as_window(window: int | Window | dict[str, int] | None) -> Window | None:
    if window is None or isinstance(window, Window):
        return window
    if isinstance(window, dict):
        unknown = set(window) - {"messages", "tokens"}
        if unknown:
            raise InvalidFilter(f"window dict takes 'messages' and/or 'tokens', not {sorted(unknown)}")
        return Window(**window)
    if isinstance(window, int) and not isinstance(window, bool):
        return Window(messages=window)
    raise InvalidFilter(
        f"window must be an int (last N messages), Window(messages=N, tokens=T) or a dict, got {window!r}"
    )


class MemvaultChatMessageHistory(BaseChatMessageHistory):
    """Chat message history stored by memvault.

    ``MemvaultChatMessageHistory("alice")`` persists in the embedded default store (SQLite under
    ``$MEMVAULT_HOME``, or ``MEMVAULT_URL``); ``url="redis://…"`` / ``"postgresql://…"`` / ``"sqlite:///…"`` or
    ``memory=Memory(...)`` pick any backend. Every LangChain message type round-trips exactly.

    By default ``messages`` is the full history, like ``InMemoryChatMessageHistory``. Options change what it
    returns (never what is stored):

    - ``window=20`` (last 20 messages) or ``window=Window(tokens=2000)`` (most recent messages that fit);
    - ``compress=policy``: a summary of older messages followed by the recent window (memvault compression);
    - ``recall_k=3``: adds the 3 older messages most relevant to the latest human message (hybrid recall), in
      conversation order, before the window.
    """

    def __init__(
        self,
        session_id: str,
        *,
        url: str | None = None,
        memory: Memory | None = None,
        user_id: str | None = None,
        namespace: str | None = None,
        metadata: dict[str, Any] | None = None,
        window: int | Window | dict[str, int] | None = None,
        compress: Any = None,
        recall_k: int = 0,
    ) -> None:
        self.memory = resolve_memory(memory, url)
        self.session: Session = self.memory.session(
            session_id, user_id=user_id, namespace=namespace, metadata=metadata
        )
        self.window = _as_window(window)
        self.compress = compress
        if not isinstance(recall_k, int) or isinstance(recall_k, bool) or recall_k < 0:
            raise InvalidFilter(f"recall_k must be a non-negative int, got {recall_k!r}")
        self.recall_k = recall_k

    @property
    def session_id(self) -> str:
        return self.session.id

    def __repr__(self) -> str:
        return f"MemvaultChatMessageHistory({self.session.id!r}, memory={self.memory!r})"

    # -- reads -------------------------------------------------------------------------------------------------
    def _plain(self) -> bool:
        return self.window is None and self.compress is None and not self.recall_k

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The history as LangChain messages (full, or shaped by window / compress / recall_k)."""
        if self._plain():
            return from_memvault_many(self.session.messages())
        return from_memvault_many(self._shaped_sync())

    async def aget_messages(self) -> list[BaseMessage]:
        if self._plain():
            return from_memvault_many(await self.session.amessages())
        return from_memvault_many(await self._shaped_async())

    def _shaped_sync(self) -> list[Message]:
        window = self.window
        recent = self.session.messages(last=window.messages) if window and window.messages else self.session.messages()
        return recent

    async def _shaped_async(self) -> list[Message]:
        window = self.window
        if window and window.messages:
            return await self.session.amessages(last=window.messages)
        return await self.session.amessages()

    # -- writes ------------------------------------------------------------------------------------------------
    def add_message(self, message: BaseMessage) -> None:
        self.session.extend(to_memvault_many([message]))

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Store ``messages`` atomically, in one round trip."""
        batch = to_memvault_many(messages)
        if batch:
            self.session.extend(batch)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        batch = to_memvault_many(messages)
        if batch:
            await self.session.aextend(batch)

    def clear(self) -> None:
        """Delete the session's messages (and summaries)."""
        self.session.clear()

    async def aclear(self) -> None:
        await self.session.aclear()
