"""``MemvaultAsyncChatStore``: LlamaIndex's ``AsyncDBChatStore`` (required by ``llama_index.core.memory.Memory``).

How message status maps onto memvault (composed from existing contract operations, nothing new in the core):

- Every message of a key, active or archived, stays in ONE memvault session, so the whole conversation remains
  readable, exportable and recallable.
- "Archived" is a watermark: messages with ``seq <= W`` are archived. ``W`` is kept as records of kind
  ``llama_index.archived`` whose keys are zero-padded seqs; the watermark is the greatest key. Writers only ever add
  keys, so concurrent archivers can never move it backwards (a lock-free "max").
- A message added with ``status=ARCHIVED`` after active ones carries ``extras["llama_index"]["status"]``.

Over-archiving: ``Memory._manage_queue`` reads the active queue, decides how many of its oldest messages to flush,
then calls ``archive_oldest_messages(key, n)``. When several ``aput`` run at once, each would archive "the n oldest
now", i.e. n more than the others did. Here ``archive_oldest_messages`` archives the n oldest messages *of the queue
this task last read* (remembered per task in a context variable), so concurrent callers that decided on the same
messages archive the same messages, once.
"""

from __future__ import annotations

import contextvars
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from llama_index.storage.chat_store.memvault._convert import is_archived, to_chat_message, to_message
from llama_index.storage.chat_store.memvault.base import MemvaultStoreBase

from memvault import Message
from memvault.memory import Session
from memvault.shared import owned

ARCHIVE_KIND = "llama_index.archived"
_PAGE = 200
# (store id, namespace, key) -> (active messages as last read by this task, how many of them were archived since)
_SNAPSHOTS: contextvars.ContextVar[dict[tuple[int, str, str], tuple[tuple[Message, ...], int]]] = (
    contextvars.ContextVar("memvault_llama_index_snapshots", default={})  # noqa: B039 - never mutated, only replaced
)


def _status(value: Any) -> MessageStatus | None:
    return None if value is None else MessageStatus(value)


def _seq(message: Message) -> int:
    """The seq of a message read from the store (a store assigns one to every message it holds)."""
    assert message.seq is not None, f"message {message.id!r} has no seq"
    return message.seq


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise ValueError(f"{name} must be a non-negative int or None, got {value!r}")


class MemvaultAsyncChatStore(MemvaultStoreBase, AsyncDBChatStore):
    """A persistent ``AsyncDBChatStore``: one memvault session per key, status as an archive watermark.

    ``Memory.from_defaults(session_id="alice", chat_store=MemvaultAsyncChatStore())`` keeps the conversation in
    memvault's embedded default; pass ``url=`` for any backend or ``memory=`` to share a memvault Memory.
    """

    @classmethod
    def class_name(cls) -> str:
        return "MemvaultAsyncChatStore"

    async def aclose(self) -> None:
        """Release this store (see :meth:`MemvaultChatStore.close`: only a Memory it opened itself is closed)."""
        if owned(self._memory):
            await self._memory.aclose()

    async def _take(self, session: Session, wanted: int, offset: int = 0) -> list[Message]:
        """Remove the ``wanted`` active messages from position ``offset`` atomically: each pop returns only what it
        removed itself, so concurrent callers never return one message twice; a caller that lost a race for some
        messages reads the queue again for the rest."""
        taken: list[Message] = []
        while len(taken) < wanted:
            targets = await self._active(session, wanted - len(taken), offset)
            if not targets:
                break
            taken.extend(await session.apop(ids=[m.id for m in targets]))
        self._remember(session, None)
        return sorted(taken, key=_seq)

    # -- the status model ------------------------------------------------------------------------------------------
    async def _watermark(self, session: Session) -> int:
        records = await self._memory.store.aio.get_records(session.namespace, session.id, ARCHIVE_KIND, last=1)
        return int(records[0][0]) if records else 0

    async def _active(self, session: Session, limit: int | None = None, offset: int = 0) -> list[Message]:
        start = await self._watermark(session) + 1
        want = None if limit is None else offset + limit
        found: list[Message] = []
        while want is None or len(found) < want:
            asked = _PAGE if want is None else want - len(found)
            page = await session.amessages(start=start, limit=asked)
            found.extend(m for m in page if not is_archived(m))  # flagged archived messages are skipped
            if len(page) < asked:
                break
            start = _seq(page[-1]) + 1
        return found[offset:want]

    async def _archived(self, session: Session) -> list[Message]:
        watermark = await self._watermark(session)
        below = await session.amessages(stop=watermark + 1) if watermark else []
        flagged = [m for m in await session.amessages(start=watermark + 1) if is_archived(m)]
        return below + flagged

    def _snapshot_key(self, session: Session) -> tuple[int, str, str]:
        return (id(self), session.namespace, session.id)

    def _remember(self, session: Session, messages: list[Message] | None) -> None:
        snapshots = dict(_SNAPSHOTS.get())
        key = self._snapshot_key(session)
        if messages is None:
            snapshots.pop(key, None)
        else:
            snapshots[key] = (tuple(messages), 0)
        _SNAPSHOTS.set(snapshots)

    # -- AsyncDBChatStore ----------------------------------------------------------------------------------------
    async def get_messages(
        self,
        key: str,
        status: MessageStatus | None = MessageStatus.ACTIVE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatMessage]:
        """Messages of ``key`` with ``status`` (None: all), oldest first, after skipping ``offset``, at most ``limit``."""
        _check_count("limit", limit)
        _check_count("offset", offset)
        status = _status(status)
        session = self.session(key)
        skip = offset or 0
        if status is MessageStatus.ACTIVE:
            stored = await self._active(session, limit, skip)
            if not skip:  # the queue as this task saw it: what archive_oldest_messages(n) counts from
                self._remember(session, stored)
        elif status is MessageStatus.ARCHIVED:
            stored = (await self._archived(session))[skip : None if limit is None else skip + limit]
        elif limit is None:
            stored = (await session.amessages())[skip:]
        else:
            stored = (await session.amessages(limit=skip + limit))[skip:]
        return [to_chat_message(m) for m in stored]

    async def count_messages(self, key: str, status: MessageStatus | None = MessageStatus.ACTIVE) -> int:
        """How many messages ``key`` has with ``status`` (None: all)."""
        status = _status(status)
        session = self.session(key)
        if status is None:
            return await session.acount()
        active = len(await self._active(session))
        if status is MessageStatus.ACTIVE:
            return active
        return await session.acount() - active

    async def add_message(self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self.add_messages(key, [message], status)

    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Append ``messages`` atomically with ``status``."""
        flag = "archived" if _status(status) is MessageStatus.ARCHIVED else None
        await self.session(key).aextend([to_message(m, status=flag) for m in messages])

    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        """Atomically replace every message of ``key`` (active and archived) with ``messages``."""
        flag = "archived" if _status(status) is MessageStatus.ARCHIVED else None
        session = self.session(key)
        await session.areplace([to_message(m, status=flag) for m in messages])
        self._remember(session, None)

    async def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the active message at position ``idx`` (as in ``get_messages(key)``) and return it."""
        _check_count("idx", idx)
        taken = await self._take(self.session(key), 1, idx)
        return to_chat_message(taken[0]) if taken else None

    async def delete_messages(self, key: str, status: MessageStatus | None = None) -> None:
        """Delete the messages of ``key`` with ``status``; None deletes the key itself."""
        status = _status(status)
        session = self.session(key)
        self._remember(session, None)
        if status is None:
            await session.adelete()
            return
        doomed = await (self._active(session) if status is MessageStatus.ACTIVE else self._archived(session))
        if doomed:
            await session.adelete_messages([m.id for m in doomed])

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Delete the ``n`` oldest active messages and return them."""
        _check_count("n", n)
        taken = await self._take(self.session(key), n) if n else []
        return [to_chat_message(m) for m in taken]

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        """Archive the ``n`` oldest active messages (of the queue this task last read) and return them."""
        _check_count("n", n)
        if not n:
            return []
        session = self.session(key)
        snap_key = self._snapshot_key(session)
        snapshot, used = _SNAPSHOTS.get().get(snap_key, ((), 0))
        targets = list(snapshot[used : used + n])
        if len(targets) < n:  # nothing (or not enough) remembered: continue from the live queue
            after = max([_seq(m) for m in snapshot] + [0])
            live = [m for m in await self._active(session, n - len(targets) + len(snapshot)) if _seq(m) > after]
            targets.extend(live[: n - len(targets)])
        if snapshot:
            snapshots = dict(_SNAPSHOTS.get())
            snapshots[snap_key] = (snapshot, used + n)
            _SNAPSHOTS.set(snapshots)
        if not targets:
            return []
        mark = max(_seq(m) for m in targets)
        aio = self._memory.store.aio
        await aio.put_record(session.namespace, session.id, ARCHIVE_KIND, f"{mark:020d}", {"seq": mark})
        marks = await aio.get_records(session.namespace, session.id, ARCHIVE_KIND)
        if len(marks) > 1:  # keep only the greatest mark; it is never deleted, so the watermark never goes back
            await aio.delete_records(session.namespace, session.id, ARCHIVE_KIND, [k for k, _ in marks[:-1]])
        return [to_chat_message(m) for m in targets]

    async def get_keys(self) -> list[str]:
        """Every key (session) in this store's namespace (paged listing, no scan)."""
        keys: list[str] = []
        cursor = None
        while True:
            page = await self._memory.asessions(namespace=self.namespace, limit=1000, cursor=cursor)
            keys.extend(info.id for info in page)
            cursor = page.next_cursor
            if cursor is None:
                return keys
