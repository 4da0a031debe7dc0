"""Full histories kept decoded in process, so reading a whole session costs O(new messages), not O(all of them).

A chat turn through "swap one class" (LangChain's history without a window, ``session.messages()``) reads the
whole session every time. :class:`HistoryCache` keeps, per session, the messages of its last full read (converted
by ``convert``: a copy of the Message for the core, a LangChain message for that adapter) and checks it on every
read with one cheap call, ``get_session``:

- same ``created_at``, ``last_seq`` and ``message_count`` as what the cache holds: nothing changed (appends move
  ``last_seq``; deletes, pops and clears move the count; a deleted and re-created session has another
  ``created_at``; ``replace`` moves ``last_seq``);
- the same session with a higher ``last_seq``: read only ``seq > cached`` and check that the counts add up (a
  delete among the old messages meanwhile makes them not add up: then the whole session is read again);
- anything else: a full read.

So another process's writes are always seen (the check goes to the store each time), and a session nobody wrote
costs one small query. The cache is bounded by the number of messages it holds (least recently read sessions
leave first). Only in-place rewrites of message bodies (``memvault rekey``) leave the three facts unchanged, and
those keep each message's content.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from memvault.caching import LRUCache, budget_lru
from memvault.drive import Call, Op
from memvault.model import Message

T = TypeVar("T")
DEFAULT_MAX_MESSAGES = 50_000  # per Memory; least recently read sessions leave first
MAX_SESSIONS = 4096


@dataclass
class _Held(Generic[T]):
    created_at: datetime
    last_seq: int
    items: list[T]


class HistoryCache(Generic[T]):
    """Per session: the messages of the last full read, converted once by ``convert`` and handed out through
    ``hand_out`` (the core copies each Message so callers never change the cache; the LangChain adapter converts
    to LangChain messages once and shares them, as LangChain's in-memory history does)."""

    def __init__(self, convert: Callable[[Message], T], hand_out: Callable[[T], T] | None = None, *,
                 max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        self.convert = convert
        self.hand_out = hand_out
        self._held: LRUCache[tuple[str, str], _Held[T]] = budget_lru(max_messages, MAX_SESSIONS,
                                                                      lambda h: len(h.items))
        self._lock = threading.Lock()
        #: reads of the whole session and reads of only its new messages (for tests and stats)
        self.full_reads = 0
        self.partial_reads = 0

    def read(self, ns: str, sid: str) -> Op[list[T]]:
        """The session's whole history, in seq order, converted."""
        info = yield Call("get_session", (ns, sid))
        key = (ns, sid)
        if info is None:
            self.forget(ns, sid)
            return []
        with self._lock:
            held = self._held.get(key)
        if held is not None and held.created_at == info.created_at:
            if held.last_seq == info.last_seq and len(held.items) == info.message_count:
                return self._out(held.items)
            if info.last_seq > held.last_seq:
                new: list[Message] = yield Call("read", (ns, sid), {"start": held.last_seq + 1})
                later = sum(1 for m in new if (m.seq or 0) > info.last_seq)  # appended after get_session
                if len(held.items) + len(new) == info.message_count + later:  # nothing older went meanwhile
                    self.partial_reads += 1
                    return self._out(self._keep(key, info.created_at, held.items, new, held.last_seq))
        self.full_reads += 1
        messages: list[Message] = yield Call("read", (ns, sid))
        return self._out(self._keep(key, info.created_at, [], messages, info.last_seq))

    def _keep(self, key: tuple[str, str], created_at: datetime, items: list[T], new: list[Message],
              last_seq: int) -> list[T]:
        items = items + [self.convert(m) for m in new]
        top = max([last_seq, *((m.seq or 0) for m in new)])  # appends read after get_session count too
        with self._lock:
            self._held[key] = _Held(created_at, top, items)
        return items

    def _out(self, items: list[T]) -> list[T]:
        return list(items) if self.hand_out is None else [self.hand_out(x) for x in items]

    def forget(self, ns: str, sid: str) -> None:
        with self._lock:
            self._held.pop((ns, sid), None)


def copy_message(message: Message) -> Message:
    """A shallow copy (content lists and metadata dicts are shared): what the core cache hands out, so a caller
    that sets a returned Message's fields never changes the cache."""
    clone = Message.__new__(Message)
    clone.__dict__.update(message.__dict__)
    return clone


def core_cache(max_messages: int = DEFAULT_MAX_MESSAGES) -> HistoryCache[Message]:
    return HistoryCache(lambda m: m, copy_message, max_messages=max_messages)


__all__ = ["HistoryCache", "copy_message", "core_cache"]
