"""``MemvaultSaver``: a LangGraph checkpointer on memvault, on every backend, sync and async on one class.

A thread is a memvault session; the storage logic is the core's (:mod:`memvault.checkpoints`); this module only
translates LangGraph types. A channel holding a list of LangChain messages (``add_messages``) is not re-serialized
at every step: its new messages are appended to the thread's memvault messages and the checkpoint stores which
messages make up the list, so a step costs O(new messages), and ``Memory.recall`` / ``context`` / export / the CLI
work on agent conversations. The lists a process has seen are kept decoded (an LRU of ``cache_messages`` messages),
so loading the latest state after a step decodes nothing.

With a serializer other than LangGraph's plain ``JsonPlusSerializer`` (e.g. ``EncryptedSerializer``) the messages are
still stored once, but each one is sealed by that serializer: nothing readable reaches the message log (and recall
over those messages is then off; see docs/langgraph.md for memvault's own encryption at rest).
"""

from __future__ import annotations

import base64
import contextlib
import operator
import random
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from cachetools import LRUCache
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_memvault import from_memvault, to_memvault
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.memvault.migrate import copy_checkpoints
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from memvault import Memory, Message
from memvault.checkpoints import Checkpoints, MessageList, StoredCheckpoint, expand, version_text
from memvault.drive import Op, run_async, run_sync
from memvault.shared import open_memory, owned
from memvault.validation import check_int, check_ttl, validate_namespace

__all__ = ["MemvaultSaver", "copy_checkpoints"]

SEALED = "langgraph.sealed"
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool",
          "developer": "system", "chat": "user"}


def _maybe_messages(value: Any) -> bool:
    """A cheap first look (the last item); :meth:`MemvaultSaver._split` checks every item it does not already know."""
    return isinstance(value, list) and bool(value) and isinstance(value[-1], BaseMessage)


Cached = tuple[list[BaseMessage], list[list[int]]]  # a message list as seen, and its seq ranges in the log


class MemvaultSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on memvault.

    ``MemvaultSaver()`` uses memvault's embedded default (SQLite under ``~/.memvault``); ``MemvaultSaver(url=
    "postgresql://…")`` any backend (shared per URL with the other adapters); ``MemvaultSaver(memory=mem)`` a Memory
    you own. ``namespace`` (default: the Memory's) is the tenant of the threads; ``ttl`` (seconds, sliding) expires
    idle threads; ``serde`` is LangGraph's serializer protocol (e.g. ``EncryptedSerializer``).
    """

    def __init__(
        self,
        memory: Memory | None = None,
        *,
        url: str | None = None,
        namespace: str | None = None,
        ttl: float | None = None,
        serde: SerializerProtocol | None = None,
        cache_messages: int = 100_000,
    ) -> None:
        super().__init__(serde=serde)
        self.memory = open_memory(url, memory)
        ns = self.memory.namespace if namespace is None else validate_namespace(namespace)
        self.threads = Checkpoints(ns, ttl=check_ttl(ttl), max_message_bytes=self.memory.store.max_message_bytes)
        self.plain = isinstance(self.serde, JsonPlusSerializer)
        check_int(cache_messages, "cache_messages", minimum=0)
        #: (thread, ns, channel, version text) -> (messages, ranges); and the latest cached version per channel
        self._lists: LRUCache[tuple[str, str, str, str], Cached] = LRUCache(
            maxsize=max(cache_messages, 1), getsizeof=lambda v: max(len(v[0]), 1))
        self._latest: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    @contextlib.contextmanager
    def from_conn_string(cls, conn_string: str, **options: Any) -> Iterator[MemvaultSaver]:
        """For code written for ``SqliteSaver`` / ``PostgresSaver``: any memvault URL (``sqlite:///…``,
        ``postgresql://…``, ``redis://…``, ``file:///…``); the Memory it opens is closed on exit."""
        memory = Memory(conn_string)
        try:
            yield cls(memory, **options)
        finally:
            memory.close()

    def close(self) -> None:
        """Release a Memory this saver opened itself with options (the shared or given one stays open)."""
        if owned(self.memory):
            self.memory.close()

    # -- messages <-> memvault -------------------------------------------------------------------------------------
    def _to_memvault(self, message: BaseMessage, mid: str) -> Message:
        if self.plain:
            stored = to_memvault(message)
        else:  # sealed by the user's serializer: nothing readable in the log
            kind, data = self.serde.dumps_typed(message)
            stored = Message(role=_ROLES.get(message.type, "user"), content="",
                             extras={SEALED: [kind, base64.b64encode(data).decode("ascii")]})
        stored.id = mid
        return stored

    def _from_memvault(self, message: Message) -> BaseMessage:
        sealed = message.extras.get(SEALED) if isinstance(message.extras, dict) else None
        if sealed is not None:
            return self.serde.loads_typed((sealed[0], base64.b64decode(sealed[1])))
        return from_memvault(message)

    # -- the decoded cache -----------------------------------------------------------------------------------------
    def _cached(self, thread: str, ns: str, channel: str, vtext: str) -> Cached | None:
        with self._lock:
            return self._lists.get((thread, ns, channel, vtext))

    def _remember(self, thread: str, ns: str, channel: str, vtext: str, messages: list[BaseMessage],
                  spans: list[list[int]]) -> None:
        # the list itself is kept (LangGraph's reducers build new lists; they never change a stored one in place)
        with self._lock:
            self._lists[(thread, ns, channel, vtext)] = (messages, spans)
            self._latest.setdefault((thread, ns), {})[channel] = vtext

    def _skip(self, thread: str, ns: str) -> frozenset[tuple[str, str]]:
        with self._lock:
            latest = self._latest.get((thread, ns), {})
            return frozenset((ch, v) for ch, v in latest.items() if (thread, ns, ch, v) in self._lists)

    def _forget(self, thread: str) -> None:
        with self._lock:
            for list_key in [k for k in self._lists if k[0] == thread]:
                self._lists.pop(list_key, None)
            for latest_key in [k for k in self._latest if k[0] == thread]:
                del self._latest[latest_key]

    # -- configs ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _where(config: RunnableConfig) -> tuple[str, str, str | None]:
        configurable = config["configurable"]
        return str(configurable["thread_id"]), configurable.get("checkpoint_ns", "") or "", get_checkpoint_id(config)

    @staticmethod
    def _config(thread: str, ns: str, checkpoint_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}

    # -- operations, written once (run by the sync and the async methods) --------------------------------------------
    def _tuple(self, stored: StoredCheckpoint) -> CheckpointTuple:
        thread, ns = stored.thread_id, stored.checkpoint_ns
        values: dict[str, Any] = {}
        for channel, version in stored.versions.items():
            vtext = version_text(version)
            value = stored.values.get(channel)
            if isinstance(value, MessageList):
                messages = [self._from_memvault(m) for m in value.messages]
                self._remember(thread, ns, channel, vtext, messages, value.spans)
                values[channel] = list(messages)
            elif value is not None:
                values[channel] = self.serde.loads_typed(value)
            elif (cached := self._cached(thread, ns, channel, vtext)) is not None:
                values[channel] = list(cached[0])  # a new list: the caller may change it, the cache stays
        checkpoint: Checkpoint = self.serde.loads_typed(stored.checkpoint)
        return CheckpointTuple(
            config=self._config(thread, ns, stored.checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self.serde.loads_typed(stored.metadata),
            parent_config=self._config(thread, ns, stored.parent_id) if stored.parent_id else None,
            pending_writes=[(w.task_id, w.channel, self.serde.loads_typed(w.value)) for w in stored.writes],
        )

    def _delta_history(self, config: RunnableConfig, channels: Sequence[str]) -> Op[dict[str, Any]]:
        """DeltaChannel's walk up the parent chain, loading of each ancestor only its header, its writes and the
        blobs of the channels still without a seed (upstream's default loads every ancestor whole)."""
        if not channels:
            return {}
        thread, ns, checkpoint_id = self._where(config)
        writes: dict[str, list[tuple[str, str, Any]]] = {c: [] for c in channels}
        seeds: dict[str, Any] = {}
        remaining = set(channels)
        target = yield from self.threads.get(thread, ns, checkpoint_id, channels=frozenset(), with_writes=False)
        parent = target.parent_id if target is not None else None
        while parent is not None and remaining:
            stored = yield from self.threads.get(thread, ns, parent, channels=frozenset(remaining))
            if stored is None:
                break
            for w in reversed(stored.writes):
                if w.channel in remaining:
                    writes[w.channel].append((w.task_id, w.channel, self.serde.loads_typed(w.value)))
            for channel, value in self._tuple(stored).checkpoint["channel_values"].items():
                if channel in remaining:
                    seeds[channel] = value
                    remaining.discard(channel)
            parent = stored.parent_id
        out: dict[str, Any] = {}
        for channel in channels:
            out[channel] = {"writes": writes[channel][::-1], **({"seed": seeds[channel]} if channel in seeds else {})}
        return out

    def _get_tuple(self, config: RunnableConfig) -> Op[CheckpointTuple | None]:
        thread, ns, checkpoint_id = self._where(config)
        stored = yield from self.threads.get(thread, ns, checkpoint_id, skip=self._skip(thread, ns))
        return None if stored is None else self._tuple(stored)

    def _previous(self, thread: str, ns: str, channel: str, parent: str | None) -> Op[Cached]:
        """The channel's list as this process last saw it (usually the parent's), else the parent's from the store."""
        with self._lock:
            vtext = self._latest.get((thread, ns), {}).get(channel)
        if vtext is not None and (cached := self._cached(thread, ns, channel, vtext)) is not None:
            return cached
        if parent is not None:
            stored = yield from self.threads.get(thread, ns, parent, channels=frozenset({channel}), with_writes=False)
            value = None if stored is None else stored.values.get(channel)
            if isinstance(value, MessageList):
                return [self._from_memvault(m) for m in value.messages], value.spans
        return [], []

    def _split(self, new: list[Any], prev: Cached, base: str) -> MessageList | None:
        """``new`` as a MessageList over the log: the usual step appends to the previous list (O(new messages):
        its ranges are reused as they are); otherwise each message is the seq of the same (or an equal) message
        already logged, or a new log message with an id derived from the checkpoint, so a retried put appends
        nothing twice. None when ``new`` is not a list of messages after all."""
        old, spans = prev
        n = len(old)
        if n and len(new) >= n and all(map(operator.is_, old, new[:n])):
            tail = new[n:]
            if not all(isinstance(m, BaseMessage) for m in tail):
                return None
            return MessageList(prefix=spans, items=[self._to_memvault(m, f"{base}.{k}") for k, m in enumerate(tail)])
        if not all(isinstance(m, BaseMessage) for m in new):
            return None
        seqs = expand(spans)
        by_object = {id(m): s for m, s in zip(old, seqs, strict=True)}
        by_id = {m.id: (m, s) for m, s in zip(old, seqs, strict=True) if m.id}
        items: list[int | Message] = []
        for k, message in enumerate(new):
            seq = by_object.get(id(message))
            if seq is None and message.id in by_id and by_id[message.id][0] == message:
                seq = by_id[message.id][1]
            items.append(seq if seq is not None else self._to_memvault(message, f"{base}.{k}"))
        return MessageList(items=items)

    def _put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
             new_versions: ChannelVersions) -> Op[RunnableConfig]:
        thread, ns, parent = self._where(config)
        snapshot = dict(checkpoint)
        values: dict[str, Any] = snapshot.pop("channel_values")  # type: ignore[assignment]
        stored_values: dict[str, Any] = {}
        lists: dict[str, list[BaseMessage]] = {}
        for channel in new_versions:
            if channel not in values:
                continue
            value = values[channel]
            message_list = None
            if _maybe_messages(value):
                prev = yield from self._previous(thread, ns, channel, parent)
                message_list = self._split(value, prev, f"{checkpoint['id']}.{channel}")
            if message_list is not None:
                stored_values[channel] = message_list
                lists[channel] = value
            else:
                stored_values[channel] = self.serde.dumps_typed(value)
        stored = yield from self.threads.put(
            thread, ns, checkpoint["id"], parent, self.serde.dumps_typed(snapshot),
            self.serde.dumps_typed(get_checkpoint_metadata(config, metadata)), dict(checkpoint["channel_versions"]),
            stored_values, new_versions,
        )
        if stored.keys() != lists.keys():  # the store could not give seqs (a spooled write): start over from it
            self._forget(thread)
        for channel, message_list in stored.items():
            self._remember(thread, ns, channel, version_text(new_versions[channel]), lists[channel], message_list.spans)
        return self._config(thread, ns, checkpoint["id"])

    def _put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                    task_path: str) -> Op[None]:
        thread, ns, checkpoint_id = self._where(config)
        items = [(WRITES_IDX_MAP.get(channel, idx), channel, self.serde.dumps_typed(value))
                 for idx, (channel, value) in enumerate(writes)]
        yield from self.threads.put_writes(thread, ns, str(checkpoint_id), task_id, task_path, items)

    def _list(self, config: RunnableConfig | None, filter: dict[str, Any] | None, before: RunnableConfig | None,
              limit: int | None) -> Op[list[CheckpointTuple]]:
        if limit is not None and limit <= 0:
            return []
        if config is not None:
            thread, _, only = self._where(config)
            ns: str | None = config["configurable"].get("checkpoint_ns")
            threads = [thread]
        else:
            threads, ns, only = (yield from self.threads.threads()), None, None
        before_id = get_checkpoint_id(before) if before else None
        out: list[CheckpointTuple] = []
        for thread in threads:
            listed = yield from self.threads.checkpoints(thread, ns, before=before_id)
            for stored in listed:
                if only is not None and stored.checkpoint_id != only:
                    continue
                if filter:
                    metadata = self.serde.loads_typed(stored.metadata)
                    if not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                yield from self.threads.complete(stored, self._skip(thread, stored.checkpoint_ns))
                out.append(self._tuple(stored))
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def _delete_for_runs(self, run_ids: Sequence[str]) -> Op[None]:
        wanted = set(run_ids)
        if not wanted:
            return
        for thread in (yield from self.threads.threads()):
            listed = yield from self.threads.checkpoints(thread)
            doomed = [s for s in listed if self.serde.loads_typed(s.metadata).get("run_id") in wanted]
            yield from self.threads.delete_checkpoints(thread, doomed)

    def _prune(self, thread_ids: Sequence[str], strategy: str) -> Op[None]:
        for thread in thread_ids:
            yield from self.threads.prune(str(thread), strategy)

    # -- BaseCheckpointSaver, sync ---------------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return run_sync(self.memory.store, self._get_tuple(config))

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        yield from run_sync(self.memory.store, self._list(config, filter, before, limit))

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        return run_sync(self.memory.store, self._put(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        run_sync(self.memory.store, self._put_writes(config, writes, task_id, task_path))

    def get_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Mapping[str, Any]:
        """DeltaChannel support (beta upstream): per channel, the writes since the nearest stored value (seed)."""
        return run_sync(self.memory.store, self._delta_history(config, channels))

    def delete_thread(self, thread_id: str) -> None:
        self._forget(str(thread_id))
        run_sync(self.memory.store, self.threads.delete_thread(str(thread_id)))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        run_sync(self.memory.store, self._delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        run_sync(self.memory.store, self.threads.copy_thread(str(source_thread_id), str(target_thread_id)))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread in thread_ids:
            self._forget(str(thread))
        run_sync(self.memory.store, self._prune(thread_ids, strategy))

    # -- BaseCheckpointSaver, async --------------------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await run_async(self.memory.store, self._get_tuple(config))

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        for item in await run_async(self.memory.store, self._list(config, filter, before, limit)):
            yield item

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        return await run_async(self.memory.store, self._put(config, checkpoint, metadata, new_versions))

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await run_async(self.memory.store, self._put_writes(config, writes, task_id, task_path))

    async def aget_delta_channel_history(self, *, config: RunnableConfig,
                                         channels: Sequence[str]) -> Mapping[str, Any]:
        return await run_async(self.memory.store, self._delta_history(config, channels))

    async def adelete_thread(self, thread_id: str) -> None:
        self._forget(str(thread_id))
        await run_async(self.memory.store, self.threads.delete_thread(str(thread_id)))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await run_async(self.memory.store, self._delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await run_async(self.memory.store, self.threads.copy_thread(str(source_thread_id), str(target_thread_id)))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread in thread_ids:
            self._forget(str(thread))
        await run_async(self.memory.store, self._prune(thread_ids, strategy))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Versions that sort as strings: a zero-padded counter and a random tie-breaker (as upstream's savers)."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"
