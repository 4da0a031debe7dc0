"""Full histories kept decoded in process, so reading a whole session costs O(new messages), not O(all of them).

A chat turn through "swap one class" (LangChain's history without a window, ``session.messages()``) reads the
whole session every time. :class:`HistoryCache` keeps, per session, the messages of its last full read (converted
by ``convert``: a copy of the Message for the core, a LangChain message for that adapter) and checks it on every
read with two small calls: ``get_session`` (``created_at``, ``message_count``) and a read from the newest message
held (the *anchor*, by seq) onwards:

- the anchor is still there (same seq, same id), in a session with the same ``created_at``, and the held messages
  plus those after the anchor are as many as the session has: nothing older changed, and the messages after the
  anchor are the new ones (often none);
- anything else (a delete, pop, clear or replace; a session deleted and re-created, even at the same clock
  reading): the whole session is read again.

So another process's writes are always seen (the check goes to the store each time), and a session nobody wrote
costs two small queries. The cache is bounded by the number of messages it holds (least recently read sessions
leave first). Only in-place rewrites of message bodies (``memvault rekey``) pass the check unseen, and those keep
each message's content.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from memvault.caching import LRUCache, budget_lru
from memvault.drive import Call, Op
from memvault.errors import CorruptData
from memvault.model import Message

T = TypeVar("T")
DEFAULT_MAX_MESSAGES = 50_000  # per Memory; least recently read sessions leave first
MAX_SESSIONS = 4096


@dataclass
class _Held(Generic[T]):
    created_at: datetime
    #: the newest message held (its seq and id): re-read on every check, so a session deleted and re-created at
    #: the same clock reading, whose seqs start again, is never taken for the one held
    anchor: tuple[int, str] | None
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
        #: reads of the whole session and reads of only its newest messages (for tests and stats)
        self.full_reads = 0
        self.partial_reads = 0

    def read(self, ns: str, sid: str) -> Op[list[T]]:
        """The session's whole history, in seq order, converted."""
        key = (ns, sid)
        try:
            info = yield Call("get_session", (ns, sid))
        except CorruptData:  # the session's own record is damaged: serve its messages if they are readable
            self.forget(ns, sid)
            readable: list[Message] = yield Call("read", (ns, sid))
            if not readable:  # nothing readable (the files backend moved the session aside): say why
                raise
            return self._out([self.convert(m) for m in readable])
        if info is None:
            self.forget(ns, sid)
            return []
        with self._lock:
            held = self._held.get(key)
        if held is not None and held.anchor is not None and held.created_at == info.created_at:
            seq, mid = held.anchor
            fresh: list[Message] = yield Call("read", (ns, sid), {"start": seq})  # the anchor and what follows
            if fresh and fresh[0].seq == seq and fresh[0].id == mid:
                new = fresh[1:]
                later = sum(1 for m in new if (m.seq or 0) > info.last_seq)  # appended after get_session
                if len(held.items) + len(new) == info.message_count + later:  # nothing older went meanwhile
                    if not new:
                        return self._out(held.items)
                    self.partial_reads += 1
                    return self._out(self._keep(key, info.created_at, held.items, new))
        self.full_reads += 1
        messages: list[Message] = yield Call("read", (ns, sid))
        return self._out(self._keep(key, info.created_at, [], messages))

    def _keep(self, key: tuple[str, str], created_at: datetime, items: list[T], new: list[Message]) -> list[T]:
        items = items + [self.convert(m) for m in new]
        with self._lock:
            if new:
                self._held[key] = _Held(created_at, (new[-1].seq or 0, new[-1].id), items)
            else:
                self._held.pop(key, None)  # an empty session: nothing to anchor a check to
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
