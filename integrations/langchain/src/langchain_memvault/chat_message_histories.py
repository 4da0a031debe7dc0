"""``MemvaultChatMessageHistory``: a drop-in persistent ``BaseChatMessageHistory`` on any memvault backend."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, SystemMessage

from langchain_memvault._memory import resolve_memory
from langchain_memvault._messages import from_memvault, from_memvault_many, to_memvault_many
from memvault import Memory, Message, Session
from memvault.compression import CompressionPolicy, get_counter
from memvault.compression.context import SUMMARY_HEADER, drop_orphans, gather
from memvault.compression.summaries import latest_summary
from memvault.drive import Call, Op, run_async, run_sync
from memvault.errors import InvalidFilter, InvalidPolicy
from memvault.history import HistoryCache

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


#: per Memory, the full histories already converted to LangChain messages (memvault.history checks them against
#: the store on every read, so a turn converts only the new messages)
_CONVERTED: weakref.WeakKeyDictionary[Memory, HistoryCache[BaseMessage]] = weakref.WeakKeyDictionary()
_CONVERTED_LOCK = threading.Lock()


def _converted(memory: Memory) -> HistoryCache[BaseMessage]:
    with _CONVERTED_LOCK:
        cache = _CONVERTED.get(memory)
        if cache is None:
            cache = _CONVERTED[memory] = HistoryCache(from_memvault)
        return cache


class MemvaultChatMessageHistory(BaseChatMessageHistory):
    """Chat message history stored by memvault.

    ``MemvaultChatMessageHistory("alice")`` persists in the embedded default store (SQLite under
    ``$MEMVAULT_HOME``, or ``MEMVAULT_URL``); ``url="redis://…"`` / ``"postgresql://…"`` / ``"sqlite:///…"`` or
    ``memory=Memory(...)`` pick any backend. Every LangChain message type round-trips exactly.

    By default ``messages`` is the full history, like ``InMemoryChatMessageHistory``. Options change what it
    returns (never what is stored):

    - ``window=20`` (last 20 messages) or ``window=Window(tokens=2000)`` (the newest messages that fit 2,000
      tokens, counted offline with tiktoken; ``model=`` picks the encoding). Cost is independent of the history's
      length. A tool result whose calling message fell out of the window is left out (models reject it).
    - ``compress=CompressionPolicy(...)`` (or ``True`` for the defaults): writes fold older messages into a stored
      rolling summary (raw messages stay stored); ``messages`` returns ``[SystemMessage(summary)]`` + the messages
      the summary does not cover yet (further limited by ``window`` when given).
    - ``recall_k=3`` (with ``window`` or ``compress``): adds up to 3 older messages most relevant to the latest
      human message in the returned window (hybrid recall over this session), in conversation order, between the
      summary and the window. Tool calls and results are not recalled (they only make sense together).
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
        compress: CompressionPolicy | bool | None = None,
        recall_k: int = 0,
        model: str | None = None,
    ) -> None:
        self.window = _as_window(window)
        if not isinstance(recall_k, int) or isinstance(recall_k, bool) or recall_k < 0:
            raise InvalidFilter(f"recall_k must be a non-negative int, got {recall_k!r}")
        self.recall_k = recall_k
        if compress is True:
            compress = CompressionPolicy()
        elif compress is False:
            compress = None
        if compress is not None and not isinstance(compress, CompressionPolicy):
            raise InvalidPolicy(f"compress must be a memvault.compression.CompressionPolicy (or True), got {compress!r}")
        self.memory = resolve_memory(memory, url)
        self.session: Session = self.memory.session(
            session_id, user_id=user_id, namespace=namespace, metadata=metadata, compress=compress
        )
        self.compress = compress
        self.model = model
        self._token_counter: Any = None

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
            return run_sync(self.memory.store, _converted(self.memory).read(self.session.namespace, self.session.id))
        return self._shaped_sync()

    async def aget_messages(self) -> list[BaseMessage]:
        if self._plain():
            op = _converted(self.memory).read(self.session.namespace, self.session.id)
            return await run_async(self.memory.store, op)
        return await self._shaped_async()

    def _read_op(self) -> Op[tuple[Any, list[Message]]]:
        """[summary, verbatim window] in store calls only (written once, run sync or async)."""
        ns, sid = self.session.namespace, self.session.id
        summary = None
        if self.compress is not None:
            summary = yield from latest_summary(ns, sid)
        window = self.window
        if window is not None and window.tokens is not None:
            gathered = yield from gather(ns, sid, window.tokens, self._counter(), summary=summary)
            recent = gathered.window
            if window.messages is not None:
                recent = recent[-window.messages :]
        else:
            start = summary.end_seq + 1 if summary is not None else None
            last = window.messages if window is not None else None
            recent = yield Call("read", (ns, sid), {"start": start, "stop": None, "last": last, "limit": None})
        if window is not None or summary is not None:
            recent = drop_orphans(recent)  # a tool result without its calling message is rejected by models
        return summary, recent

    def _counter(self) -> Any:
        if self._token_counter is None:
            self._token_counter = get_counter(self.model)
        return self._token_counter

    def _recall_query(self, recent: list[Message]) -> str | None:
        if not self.recall_k or (self.window is None and self.compress is None):
            return None  # the full history is returned: there is nothing older to add
        for message in reversed(recent):
            if message.role == "user" and message.text.strip():
                return message.text
        return None

    def _recall_kwargs(self, recent: list[Message]) -> dict[str, Any]:
        # Neighbour smoothing is off here: the query's own turn sits in the recent window, and smoothing would lend
        # its (perfect) relevance to the turn just before it instead of surfacing the older turns that matter.
        return {
            "session": self.session.id,
            "namespace": self.session.namespace,
            "k": self.recall_k + len(recent),
            "mode": "hybrid",
            "neighbour_weight": 0.0,
            "degrade": True,  # vectors of another embedding model: keyword recall rather than a failing history
        }

    def _assemble(self, summary: Any, recent: list[Message], hits: list[Any] | None) -> list[BaseMessage]:
        out: list[BaseMessage] = []
        if summary is not None:
            header = SUMMARY_HEADER.format(start=summary.start_seq, end=summary.end_seq)
            out.append(SystemMessage(header + summary.text, id=f"memvault-summary-{summary.end_seq}"))
        if hits:
            first = recent[0].seq if recent and recent[0].seq is not None else None
            older: list[Message] = []
            seen: set[str] = set()
            for hit in hits:
                message = hit.message
                if message.id in seen or (first is not None and (message.seq or 0) >= first):
                    continue
                if message.role == "tool" or message.tool_calls:  # a call and its result only make sense together
                    continue
                seen.add(message.id)
                older.append(message)
                if len(older) >= self.recall_k:
                    break
            out += from_memvault_many(sorted(older, key=lambda m: m.seq or 0))
        out += from_memvault_many(recent)
        return out

    def _shaped_sync(self) -> list[BaseMessage]:
        summary, recent = run_sync(self.memory.store, self._read_op())
        query = self._recall_query(recent)
        hits = self.memory.recall(query, **self._recall_kwargs(recent)) if query else None
        return self._assemble(summary, recent, hits)

    async def _shaped_async(self) -> list[BaseMessage]:
        summary, recent = await run_async(self.memory.store, self._read_op())
        query = self._recall_query(recent)
        hits = await self.memory.arecall(query, **self._recall_kwargs(recent)) if query else None
        return self._assemble(summary, recent, hits)

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
