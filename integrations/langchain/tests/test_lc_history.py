"""MemvaultChatMessageHistory on every backend: persistence, native sync/async, threads and loops, options."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_memvault import MemvaultChatMessageHistory, Window

from memvault import Memory
from memvault.errors import InvalidFilter, InvalidSessionId, InvalidURL

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]


class CountingStore:
    """Counts the store calls one history method makes (the 'one round trip per call' promise)."""

    def __init__(self, mem: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        store = mem.store
        for name in ("append", "read", "clear", "get_session"):
            original = getattr(store, name)

            def wrapped(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
                self.calls.append(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(store, name, wrapped)


def test_same_behaviour_as_in_memory_history(lc_memory: Memory) -> None:
    ours = MemvaultChatMessageHistory("alice", memory=lc_memory)
    reference = InMemoryChatMessageHistory()
    for history in (ours, reference):
        assert isinstance(history, BaseChatMessageHistory)
        assert history.messages == []
        history.add_user_message("hi")
        history.add_ai_message("hello")
        history.add_messages([SystemMessage("s"), HumanMessage("again"), HumanMessage("again")])
        history.add_message(AIMessage("dup", id="same"))
        history.add_message(AIMessage("dup", id="same"))  # duplicates are kept, as InMemory keeps them
    assert ours.messages == reference.messages
    ours.clear()
    reference.clear()
    assert ours.messages == reference.messages == []


def test_persists_across_memory_instances(make_lc_memory: Any) -> None:
    first = MemvaultChatMessageHistory("bob", memory=make_lc_memory())
    first.add_messages(turn(1))
    again = MemvaultChatMessageHistory("bob", memory=make_lc_memory())
    assert [m.content for m in again.messages] == ["question 1", "answer 1"]
    other = MemvaultChatMessageHistory("carol", memory=make_lc_memory())
    assert other.messages == []


async def test_native_async(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("async", memory=lc_memory)
    assert await history.aget_messages() == []
    await history.aadd_messages(turn(1))
    await history.aadd_messages(turn(2))
    assert [m.content for m in await history.aget_messages()] == ["question 1", "answer 1", "question 2", "answer 2"]
    assert history.messages == await history.aget_messages()
    await history.aclear()
    assert await history.aget_messages() == []


def test_async_methods_are_native_not_executor_defaults() -> None:
    for name in ("aget_messages", "aadd_messages", "aclear"):
        assert getattr(MemvaultChatMessageHistory, name) is not getattr(BaseChatMessageHistory, name)


def test_one_round_trip_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = Memory("memory://")
    history = MemvaultChatMessageHistory("rt", memory=mem)
    counter = CountingStore(mem, monkeypatch)
    history.add_messages(turn(1) + turn(2))
    assert counter.calls == ["append"]
    counter.calls.clear()
    assert len(history.messages) == 4
    assert counter.calls == ["get_session", "read"]  # the first full read
    counter.calls.clear()
    assert len(MemvaultChatMessageHistory("rt", memory=mem).messages) == 4  # a new object, as per turn
    assert counter.calls == ["get_session", "read"]  # nothing changed: the check (the read: the newest message)
    counter.calls.clear()
    history.add_messages(turn(3))
    assert [m.content for m in history.messages[-2:]] == ["question 3", "answer 3"]
    assert counter.calls == ["append", "get_session", "read"]  # and that read returns only the two new ones
    counter.calls.clear()
    windowed = MemvaultChatMessageHistory("rt", memory=mem, window=3)
    assert [m.content for m in windowed.messages] == ["answer 2", "question 3", "answer 3"]
    assert counter.calls == ["read"]
    counter.calls.clear()
    history.clear()
    assert counter.calls == ["clear"]


def test_threads_and_event_loops_share_one_history(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("shared", memory=lc_memory)
    errors: list[BaseException] = []

    def sync_writer(n: int) -> None:
        try:
            for i in range(10):
                history.add_messages([HumanMessage(f"t{n}-{i}")])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def loop_writer(n: int) -> None:
        async def run() -> None:
            for i in range(10):
                await history.aadd_messages([HumanMessage(f"l{n}-{i}")])
                await history.aget_messages()

        try:
            asyncio.run(run())
            asyncio.run(run())  # a second, different loop in the same thread
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sync_writer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=loop_writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    contents = [m.content for m in history.messages]
    assert len(contents) == 30 + 40
    for prefix, count in [(f"t{n}-", 10) for n in range(3)]:
        own = [c for c in contents if c.startswith(prefix)]
        assert own == [f"{prefix}{i}" for i in range(count)]  # each writer's order preserved
    for n in range(2):
        own = [c for c in contents if c.startswith(f"l{n}-")]
        assert own == [f"l{n}-{i}" for i in range(10)] * 2


def test_default_constructor_uses_embedded_default(memvault_home: Any) -> None:
    history = MemvaultChatMessageHistory("alice")
    history.add_messages(turn(1))
    assert (memvault_home / "memvault.db").exists()
    # a new Memory on the same default file sees it (what a new process would do)
    with Memory() as mem:
        assert [m.text for m in mem.session("alice").messages()] == ["question 1", "answer 1"]
    assert MemvaultChatMessageHistory("alice").messages == turn(1)


def test_url_argument(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    MemvaultChatMessageHistory("u", url=url).add_messages(turn(1))
    with Memory(url) as mem:
        assert mem.session("u").count() == 2


def test_window_by_messages(lc_memory: Memory) -> None:
    writer = MemvaultChatMessageHistory("w", memory=lc_memory)
    for i in range(5):
        writer.add_messages(turn(i))
    last3 = MemvaultChatMessageHistory("w", memory=lc_memory, window=3)
    assert [m.content for m in last3.messages] == ["answer 3", "question 4", "answer 4"]
    assert MemvaultChatMessageHistory("w", memory=lc_memory, window={"messages": 2}).messages == turn(4)
    assert len(writer.messages) == 10  # the window shapes what is read, never what is stored


async def test_window_async(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("wa", memory=lc_memory, window=Window(messages=2))
    for i in range(3):
        await history.aadd_messages(turn(i))
    assert await history.aget_messages() == turn(2)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"window": 0}, InvalidFilter),
        ({"window": -1}, InvalidFilter),
        ({"window": "10"}, InvalidFilter),
        ({"window": {"msgs": 1}}, InvalidFilter),
        ({"recall_k": -1}, InvalidFilter),
        ({"url": "memory://", "memory": Memory("memory://")}, InvalidURL),
        ({"memory": "memory://"}, InvalidURL),
    ],
)
def test_bad_options_raise_typed_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        MemvaultChatMessageHistory("x", **kwargs)


def test_bad_session_id() -> None:
    with pytest.raises(InvalidSessionId):
        MemvaultChatMessageHistory("bad\x00id", memory=Memory("memory://"))


def test_full_history_converts_only_new_messages_and_sees_other_writers(make_lc_memory: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_memvault.chat_message_histories as module

    mine, other = make_lc_memory(), make_lc_memory()
    converted: list[str] = []
    original = module.from_memvault

    def counting(message: Any) -> BaseMessage:
        converted.append(message.id)
        return original(message)

    monkeypatch.setattr(module, "from_memvault", counting)
    module._CONVERTED.pop(mine, None)  # a cache built with the counting converter
    MemvaultChatMessageHistory("c", memory=other).add_messages(turn(0) + turn(1))
    assert [m.content for m in MemvaultChatMessageHistory("c", memory=mine).messages][-1] == "answer 1"
    assert len(converted) == 4
    for i in range(2, 6):  # a turn per new history object, as RunnableWithMessageHistory makes them
        history = MemvaultChatMessageHistory("c", memory=mine)
        history.add_messages(turn(i))
        assert [m.content for m in history.messages][-2:] == [f"question {i}", f"answer {i}"]
    assert len(converted) == 4 + 2 * 4  # each message converted once
    MemvaultChatMessageHistory("c", memory=other).clear()
    MemvaultChatMessageHistory("c", memory=other).add_messages(turn(9))
    assert [m.content for m in MemvaultChatMessageHistory("c", memory=mine).messages] == ["question 9", "answer 9"]
