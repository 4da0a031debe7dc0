"""MemvaultAsyncChatStore (AsyncDBChatStore): every method on each backend, under llama_index Memory, and the
concurrent-aput over-archiving case that llama-index's own SQL store gets wrong."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory as LIMemory
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore

from memvault import Memory

ACTIVE, ARCHIVED = MessageStatus.ACTIVE, MessageStatus.ARCHIVED


def msg(text: str, role: str = "user") -> ChatMessage:
    return ChatMessage(role=role, content=text)


def texts(messages: list[ChatMessage]) -> list[str | None]:
    return [m.content for m in messages]


@pytest.fixture
def store(li_memory: Memory) -> MemvaultAsyncChatStore:
    return MemvaultAsyncChatStore(memory=li_memory)


async def test_add_get_count_with_status_limit_offset(store: MemvaultAsyncChatStore) -> None:
    await store.add_messages("k", [msg(t) for t in "abcdef"])
    await store.add_message("k", msg("old"), status=ARCHIVED)
    await store.add_message("k", msg("g"))
    assert texts(await store.get_messages("k")) == list("abcdefg")
    assert texts(await store.get_messages("k", status=ARCHIVED)) == ["old"]
    assert texts(await store.get_messages("k", status=None)) == [*"abcdef", "old", "g"]
    assert texts(await store.get_messages("k", limit=2, offset=1)) == ["b", "c"]
    assert texts(await store.get_messages("k", status=None, limit=3, offset=5)) == ["f", "old", "g"]
    assert texts(await store.get_messages("k", offset=6)) == ["g"]
    assert await store.count_messages("k") == 7
    assert await store.count_messages("k", status=ARCHIVED) == 1
    assert await store.count_messages("k", status=None) == 8
    assert await store.count_messages("nobody") == 0
    with pytest.raises(ValueError):
        await store.get_messages("k", limit=-1)


async def test_archive_and_delete_oldest(store: MemvaultAsyncChatStore) -> None:
    await store.add_messages("k", [msg(t) for t in "abcdef"])
    archived = await store.archive_oldest_messages("k", 2)
    assert texts(archived) == ["a", "b"]
    assert texts(await store.get_messages("k")) == list("cdef")
    assert texts(await store.get_messages("k", status=ARCHIVED)) == ["a", "b"]
    assert texts(await store.archive_oldest_messages("k", 1)) == ["c"]
    assert texts(await store.delete_oldest_messages("k", 2)) == ["d", "e"]
    assert texts(await store.get_messages("k")) == ["f"]
    assert texts(await store.get_messages("k", status=None)) == ["a", "b", "c", "f"]
    assert texts(await store.archive_oldest_messages("k", 5)) == ["f"]  # fewer than asked: what there is
    assert await store.get_messages("k") == []
    assert await store.archive_oldest_messages("k", 3) == []
    assert await store.delete_oldest_messages("k", 3) == []


async def test_delete_message_set_messages_and_delete_by_status(store: MemvaultAsyncChatStore) -> None:
    await store.add_messages("k", [msg(t) for t in "abcd"])
    await store.archive_oldest_messages("k", 1)
    removed = await store.delete_message("k", 1)  # position in the active queue: b c d
    assert isinstance(removed, ChatMessage) and removed.content == "c"
    assert texts(await store.get_messages("k")) == ["b", "d"]
    assert await store.delete_message("k", 9) is None
    await store.delete_messages("k", status=ARCHIVED)
    assert texts(await store.get_messages("k", status=None)) == ["b", "d"]
    await store.delete_messages("k", status=ACTIVE)
    assert await store.get_messages("k", status=None) == []
    await store.set_messages("k", [msg("x"), msg("y")])
    assert texts(await store.get_messages("k")) == ["x", "y"]
    await store.set_messages("k", [msg("z")], status=ARCHIVED)
    assert await store.get_messages("k") == []
    assert texts(await store.get_messages("k", status=ARCHIVED)) == ["z"]
    await store.delete_messages("k")
    assert "k" not in await store.get_keys()


async def test_get_keys_and_namespaces(li_memory: Memory) -> None:
    a = MemvaultAsyncChatStore(memory=li_memory, namespace="a")
    b = MemvaultAsyncChatStore(memory=li_memory, namespace="b")
    for key in ("k1", "k2", "k3"):
        await a.add_message(key, msg(key))
    await b.add_message("kb", msg("b"))
    assert sorted(await a.get_keys()) == ["k1", "k2", "k3"]
    assert await b.get_keys() == ["kb"]
    assert await b.get_messages("k1") == []


async def test_round_trip_with_status_keeps_messages_exact(store: MemvaultAsyncChatStore) -> None:
    rich = ChatMessage(role="function", content="r", additional_kwargs={"name": "f", "nested": {"a": [1, None]}})
    await store.add_message("k", rich, status=ARCHIVED)
    await store.add_message("k", rich)
    assert await store.get_messages("k", status=None) == [rich, rich]


async def test_llama_index_memory_flushes_into_archive(store: MemvaultAsyncChatStore) -> None:
    mem = LIMemory.from_defaults(session_id="s", chat_store=store, token_limit=100, token_flush_size=20,
                                 chat_history_token_ratio=0.7, tokenizer_fn=lambda t: t.split())
    for i in range(30):
        await mem.aput(turn(i))
    active = await store.get_messages("s")
    archived = await store.get_messages("s", status=ARCHIVED)
    assert len(active) + len(archived) == 30
    assert texts(archived + active) == texts([turn(i) for i in range(30)])
    assert 0 < sum(len(m.content.split()) for m in active) <= 70  # type: ignore[union-attr]
    assert texts(await mem.aget()) == texts(active)
    assert len(await mem.aget_all()) == 30
    await mem.areset()
    assert await store.count_messages("s", status=None) == 0


def test_llama_index_memory_sync_face(li_memory: Memory) -> None:
    store = MemvaultAsyncChatStore(memory=li_memory)
    mem = LIMemory.from_defaults(session_id="sync", chat_store=store, chat_history=[msg("seed")])
    mem.put(msg("hello"))
    assert texts(mem.get_all()) == ["seed", "hello"]


# -- concurrent aput on one session -----------------------------------------------------------------------------


def turn(i: int) -> ChatMessage:
    return ChatMessage(role="user" if i % 2 == 0 else "assistant", content=" ".join([f"w{i}"] * 10))


def gated(base: type[AsyncDBChatStore]) -> Any:
    """``base`` whose active-queue reads wait until every concurrent aput has added its message: the interleaving
    (all add, all read the same queue, all archive) that concurrent requests on one session produce."""

    class Gated(base):  # type: ignore[valid-type, misc]
        async def get_messages(self, key: str, status: Any = ACTIVE, limit: Any = None, offset: Any = None) -> Any:
            if status == ACTIVE and GATE:
                await GATE[0].wait()
            return await super().get_messages(key, status, limit, offset)

    return Gated


GATE: list[asyncio.Barrier] = []


async def concurrent_aputs(store: AsyncDBChatStore, writers: int = 4) -> tuple[int, int]:
    mem = LIMemory.from_defaults(session_id="s", chat_store=store, token_limit=100, token_flush_size=20,
                                 chat_history_token_ratio=0.7, tokenizer_fn=lambda t: t.split())
    for i in range(6):  # 60 tokens: under the 70-token queue limit, nothing flushed yet
        await mem.aput(turn(i))
    GATE.append(asyncio.Barrier(writers))
    try:
        await asyncio.gather(*[mem.aput(turn(10 + i)) for i in range(writers)])
    finally:
        GATE.clear()
    return await store.count_messages("s", ACTIVE), await store.count_messages("s", ARCHIVED)


async def serial_reference(store: AsyncDBChatStore, writers: int = 4) -> tuple[int, int]:
    """The same 10 messages, queue managed once: what one writer would have archived."""
    mem = LIMemory.from_defaults(session_id="s", chat_store=store, token_limit=100, token_flush_size=20,
                                 chat_history_token_ratio=0.7, tokenizer_fn=lambda t: t.split())
    await store.add_messages("s", [turn(i) for i in range(6)] + [turn(10 + i) for i in range(writers)])
    await mem._manage_queue()
    return await store.count_messages("s", ACTIVE), await store.count_messages("s", ARCHIVED)


async def test_concurrent_aput_does_not_over_archive(make_li_memory: Any) -> None:
    ours = await concurrent_aputs(gated(MemvaultAsyncChatStore)(memory=make_li_memory()))
    reference = await serial_reference(MemvaultAsyncChatStore(memory=make_li_memory(), namespace="ref"))
    assert reference[0] > 0 and reference[1] > 0
    assert ours == reference
    assert sum(ours) == 10


async def test_the_same_interleaving_makes_upstream_sql_store_over_archive(tmp_path: Any) -> None:
    """Shows the scenario above is the one that matters: llama-index's SQLAlchemyChatStore archives each writer's n."""
    uri = f"sqlite+aiosqlite:///{tmp_path / 'up.db'}"
    theirs = await concurrent_aputs(gated(SQLAlchemyChatStore)(table_name="t", async_database_uri=uri))
    reference = await serial_reference(SQLAlchemyChatStore(table_name="r", async_database_uri=uri))
    assert theirs[0] < reference[0]


async def test_limit_offset_skip_messages_added_as_archived(store: MemvaultAsyncChatStore) -> None:
    await store.add_messages("k", [msg("a"), msg("b")])
    await store.add_messages("k", [msg("x1"), msg("x2"), msg("x3")], status=ARCHIVED)
    await store.add_messages("k", [msg("c"), msg("d")])
    assert texts(await store.get_messages("k", limit=3)) == ["a", "b", "c"]
    assert texts(await store.get_messages("k", limit=2, offset=2)) == ["c", "d"]
    assert texts(await store.archive_oldest_messages("k", 3)) == ["a", "b", "c"]
    assert texts(await store.get_messages("k", status=ARCHIVED)) == ["a", "b", "x1", "x2", "x3", "c"]
    assert await store.count_messages("k") == 1
