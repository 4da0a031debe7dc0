"""MemvaultChatStore (BaseChatStore): every method, sync and async, on each backend, and under ChatMemoryBuffer."""

from __future__ import annotations

import asyncio
import threading

import pytest
from llama_index.core.llms import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore, MemvaultChatStore

from memvault import Memory
from memvault.errors import InvalidMessage, InvalidSessionId


def msg(text: str, role: str = "user") -> ChatMessage:
    return ChatMessage(role=role, content=text)


def texts(messages: list[ChatMessage] | None) -> list[str | None]:
    assert messages is not None
    return [m.content for m in messages]


@pytest.fixture
def store(li_memory: Memory) -> MemvaultChatStore:
    return MemvaultChatStore(memory=li_memory)


def test_set_get_add(store: MemvaultChatStore) -> None:
    assert store.get_messages("k") == []
    store.set_messages("k", [msg("a"), msg("b", "assistant")])
    store.add_message("k", msg("c"))
    got = store.get_messages("k")
    assert texts(got) == ["a", "b", "c"]
    assert [m.role for m in got] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.USER]
    store.set_messages("k", [msg("x")])
    assert texts(store.get_messages("k")) == ["x"]


def test_set_messages_is_all_or_nothing(store: MemvaultChatStore) -> None:
    store.set_messages("k", [msg("keep 1"), msg("keep 2")])
    bad = ChatMessage(role="user", content="bad", additional_kwargs={"obj": object()})
    with pytest.raises(InvalidMessage):
        store.set_messages("k", [msg("new"), bad])
    assert texts(store.get_messages("k")) == ["keep 1", "keep 2"]


def test_set_messages_readers_never_see_a_partial_history(store: MemvaultChatStore) -> None:
    histories = [[msg(f"a{i}") for i in range(5)], [msg(f"b{i}") for i in range(7)]]
    store.set_messages("k", histories[0])
    seen: list[list[str | None]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(texts(store.get_messages("k")))

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(40):
        store.set_messages("k", histories[i % 2])
    stop.set()
    reader.join()
    allowed = [texts(h) for h in histories]
    assert seen and all(s in allowed for s in seen)


def test_delete_message_keeps_order_and_returns_chat_message(store: MemvaultChatStore) -> None:
    store.set_messages("k", [msg(t) for t in "abcde"])
    removed = store.delete_message("k", 1)
    assert isinstance(removed, ChatMessage) and removed.content == "b"
    assert texts(store.get_messages("k")) == ["a", "c", "d", "e"]
    assert store.delete_message("k", -1).content == "e"  # type: ignore[union-attr]
    assert store.delete_message("k", 10) is None
    assert store.delete_message("k", -10) is None
    assert texts(store.get_messages("k")) == ["a", "c", "d"]
    assert store.delete_last_message("k").content == "d"  # type: ignore[union-attr]
    assert texts(store.get_messages("k")) == ["a", "c"]
    assert store.delete_last_message("nobody") is None


def test_delete_messages_returns_history_and_drops_key(store: MemvaultChatStore) -> None:
    store.set_messages("k", [msg("a"), msg("b")])
    store.add_message("other", msg("z"))
    assert texts(store.delete_messages("k")) == ["a", "b"]
    assert store.get_messages("k") == []
    assert store.get_keys() == ["other"]
    assert store.delete_messages("k") is None


def test_get_keys_pages_through_many_sessions(store: MemvaultChatStore, li_memory: Memory) -> None:
    for i in range(1003):
        li_memory.session(f"s{i}").add("user", "x")
    other = MemvaultChatStore(memory=li_memory, namespace="tenant-b")
    other.add_message("only-b", msg("b"))
    keys = store.get_keys()
    assert len(keys) == 1003 and set(keys) == {f"s{i}" for i in range(1003)}
    assert other.get_keys() == ["only-b"]


def test_namespaces_isolate_keys(li_memory: Memory) -> None:
    a = MemvaultChatStore(memory=li_memory, namespace="a")
    b = MemvaultChatStore(memory=li_memory, namespace="b")
    a.add_message("k", msg("from a"))
    assert b.get_messages("k") == []
    assert texts(a.get_messages("k")) == ["from a"]


def test_rich_messages_round_trip(store: MemvaultChatStore) -> None:
    rich = [
        ChatMessage(
            role="user",
            blocks=[
                TextBlock(text="what is in this picture?"),
                ImageBlock(image=b"\x89PNG\r\n\x1a\n\x00\x00", image_mimetype="image/png"),
                ImageBlock(url="https://example.com/cat.jpg"),
            ],
        ),
        ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [{"id": "c1", "type": "function"}]}),
        ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "c1", "name": "calc"}),
        ChatMessage(role="chatbot", content="hi"),
        ChatMessage(role="developer", blocks=[]),
    ]
    store.set_messages("k", rich)
    assert store.get_messages("k") == rich


def test_bad_key_is_a_typed_error(store: MemvaultChatStore) -> None:
    with pytest.raises(InvalidSessionId):
        store.add_message("bad\x00key", msg("x"))


async def test_async_twins(store: MemvaultChatStore) -> None:
    await store.aset_messages("k", [msg(t) for t in "abcd"])
    await store.async_add_message("k", msg("e"))
    assert texts(await store.aget_messages("k")) == ["a", "b", "c", "d", "e"]
    assert (await store.adelete_message("k", 0)).content == "a"  # type: ignore[union-attr]
    assert (await store.adelete_last_message("k")).content == "e"  # type: ignore[union-attr]
    assert texts(await store.aget_messages("k")) == ["b", "c", "d"]
    assert await store.aget_keys() == ["k"]
    assert texts(await store.adelete_messages("k")) == ["b", "c", "d"]
    assert await store.aget_keys() == []
    assert await store.adelete_messages("k") is None


def test_chat_memory_buffer(store: MemvaultChatStore) -> None:
    buf = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="alice", token_limit=40)
    for i in range(20):
        buf.put(msg(f"user message number {i}"))
        buf.put(msg(f"assistant answer number {i}", "assistant"))
    assert len(store.get_messages("alice")) == 40
    window = buf.get()
    assert 0 < len(window) < 40 and window[-1].content == "assistant answer number 19"
    assert window[0].role == MessageRole.USER
    buf.reset()
    assert store.get_messages("alice") == []


async def test_chat_memory_buffer_async(store: MemvaultChatStore) -> None:
    buf = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="bob", token_limit=1000)
    await buf.aput(msg("hello"))
    await buf.aput(msg("hi there", "assistant"))
    assert texts(await buf.aget()) == ["hello", "hi there"]
    await buf.aset([msg("only")])
    assert texts(await buf.aget_all()) == ["only"]


def test_default_url_uses_memvault_home(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMVAULT_URL", raising=False)
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path))
    store = MemvaultChatStore()
    try:
        store.add_message("k", msg("persisted"))
        assert store.memory.backend == "sqlite"
        assert any(tmp_path.iterdir())
    finally:
        store.close()
    again = MemvaultChatStore(url=f"sqlite:///{tmp_path / 'memvault.db'}")
    try:
        assert texts(again.get_messages("k")) == ["persisted"]
    finally:
        again.close()


def test_serialises_without_the_connection(store: MemvaultChatStore) -> None:
    data = store.to_dict()
    assert data["class_name"] == "MemvaultChatStore"
    assert set(data) >= {"url", "namespace", "user_id"}


def test_one_memory_per_url_per_process(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = MemvaultChatStore(url), MemvaultChatStore(url=url)
    assert first.memory is second.memory  # a store per request opens no new database handle
    with pytest.raises(ValueError, match="either memory= or url="):
        MemvaultChatStore(url, memory=first.memory)
    first.close()  # per-request close: the shared Memory stays open for every other store on the URL
    assert not second.memory.closed
    second.add_message("k", ChatMessage(role="user", content="still works"))
    assert [m.content for m in MemvaultChatStore(url).get_messages("k")] == ["still works"]
    second.memory.close()  # someone closes the shared Memory itself: the next store reopens it
    assert MemvaultChatStore(url).memory is not first.memory


async def test_closing_one_async_store_keeps_the_others_working(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'shared-async.db'}"
    a, b = MemvaultAsyncChatStore(url), MemvaultAsyncChatStore(url=url)
    await a.add_message("k", ChatMessage(role="user", content="one"))
    await a.aclose()
    await b.add_message("k", ChatMessage(role="user", content="two"))
    assert [m.content for m in await b.get_messages("k")] == ["one", "two"]
    own = MemvaultChatStore(url, namespace="private", busy_timeout=5)  # backend options: a Memory of its own
    own.close()
    assert own.memory.closed and not b.memory.closed


async def test_fifty_concurrent_deletes_of_the_last_message_are_atomic(tmp_path) -> None:
    for store in (MemvaultChatStore(f"sqlite:///{tmp_path / 'pop.db'}"),
                  MemvaultAsyncChatStore(f"sqlite:///{tmp_path / 'pop-async.db'}")):
        for i in range(50):
            await store.async_add_message("q", ChatMessage(role="user", content=f"m{i}")) if isinstance(
                store, MemvaultChatStore) else await store.add_message("q", ChatMessage(role="user", content=f"m{i}"))
        if isinstance(store, MemvaultChatStore):
            got = await asyncio.gather(*(store.adelete_last_message("q") for _ in range(50)))
            left = await store.aget_messages("q")
        else:
            got = await asyncio.gather(*(store.delete_message("q", 0) for _ in range(25)),
                                       *(store.delete_oldest_messages("q", 1) for _ in range(25)))
            got = [g[0] if isinstance(g, list) and g else g for g in got]
            left = await store.get_messages("q")
        contents = [m.content for m in got if m is not None]
        assert sorted(contents) == sorted(f"m{i}" for i in range(50))  # each exactly once
        assert left == []
