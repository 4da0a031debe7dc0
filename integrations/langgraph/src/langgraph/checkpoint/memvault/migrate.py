"""Copy the threads of any LangGraph checkpointer (``SqliteSaver``, ``PostgresSaver``, ``InMemorySaver``, ...) into
another, through the public saver interface only.

Each thread is copied oldest checkpoint first, so a :class:`~langgraph.checkpoint.memvault.MemvaultSaver` target
recognises the messages a checkpoint shares with its parent and stores every message once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

__all__ = ["copy_checkpoints"]


def _threads(source: BaseCheckpointSaver[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for item in source.list(None):
        seen.setdefault(str(item.config["configurable"]["thread_id"]), None)
    return list(seen)


def _copy_one(item: CheckpointTuple, target: BaseCheckpointSaver[Any]) -> None:
    configurable = item.config["configurable"]
    parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    config: RunnableConfig = {"configurable": {"thread_id": configurable["thread_id"],
                                               "checkpoint_ns": configurable.get("checkpoint_ns", ""),
                                               **({"checkpoint_id": parent} if parent else {})}}
    checkpoint = item.checkpoint
    stored = target.put(config, checkpoint, item.metadata, dict(checkpoint["channel_versions"]))
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in item.pending_writes or []:
        by_task.setdefault(task_id, []).append((channel, value))
    for task_id, writes in by_task.items():
        target.put_writes(stored, writes, task_id)


def copy_checkpoints(
    source: BaseCheckpointSaver[Any],
    target: BaseCheckpointSaver[Any],
    *,
    thread_ids: Iterable[str] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Copy every checkpoint (with its metadata, parent and pending writes) of ``thread_ids`` (default: every
    thread ``source.list(None)`` shows) from ``source`` to ``target``; returns how many were copied.
    ``progress(thread_id, copied)`` is called after each thread. Copying again overwrites with the same content.
    Task paths of pending writes are not part of the public interface, so they are not carried over."""
    copied = 0
    for thread in list(thread_ids) if thread_ids is not None else _threads(source):
        items = list(source.list({"configurable": {"thread_id": thread}}))
        items.sort(key=lambda t: (t.config["configurable"].get("checkpoint_ns", ""),
                                  t.config["configurable"]["checkpoint_id"]))
        for item in items:
            _copy_one(item, target)
        copied += len(items)
        if progress is not None:
            progress(thread, len(items))
    return copied
