"""MemvaultMemory (BaseMemory with summary + recall + window) and MemvaultMemoryBlock (for llama_index Memory)."""

from __future__ import annotations

from collections.abc import Callable

from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.memory import Memory as LIMemory
from llama_index.memory.memvault import MemvaultMemory, MemvaultMemoryBlock
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore

from memvault import Memory
from memvault.compression import get_counter
from memvault.compression.tokens import message_tokens


def chat(n: int, start: int = 0) -> list[ChatMessage]:
    return [ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"turn {i} talking about topic {i % 7}")
            for i in range(start, start + n)]


def fill(mem: MemvaultMemory) -> None:
    mem.put_messages(chat(40))
    mem.put(ChatMessage(role="user", content="I adopted a cat named Pixel"))
    for message in chat(30, start=100):
        mem.put(message)


def test_get_is_budgeted_and_holds_summary_recall_and_window(make_li_memory: Callable[..., Memory]) -> None:
    mem = MemvaultMemory.from_defaults("alice", memory=make_li_memory(embedder="hash"), token_limit=250)
    fill(mem)
    got = mem.get("what is my cat called")
    context = mem.last_context
    assert context.tokens <= 250
    counter = get_counter(None)
    assert sum(message_tokens(m, counter) for m in context.messages) <= 250
    assert got[-1].content == chat(30, start=100)[-1].content  # the newest message is always there
    assert context.parts["summary"].messages == 1 and "Summary" in (got[0].content or "")
    assert any("Pixel" in (m.content or "") for m in got)  # recalled, though far outside the recent window
    assert len(mem.get_all()) == 71  # raw history is kept


def test_without_compression_and_set_reset(make_li_memory: Callable[..., Memory]) -> None:
    mem = MemvaultMemory.from_defaults("bob", memory=make_li_memory(embedder="hash"), token_limit=120,
                                       compression=False, chat_history=chat(3))
    assert [m.content for m in mem.get_all()] == [m.content for m in chat(3)]
    mem.put_messages(chat(40, start=3))
    assert mem.session.summaries() == []
    assert mem.last_context is None
    assert mem.get()[-1].content == chat(1, start=42)[0].content and mem.last_context.tokens <= 120
    mem.set(chat(2))
    assert len(mem.get_all()) == 2
    mem.reset()
    assert mem.get_all() == [] and mem.get() == []


async def test_async_twins_and_persistence(make_li_memory: Callable[..., Memory]) -> None:
    mem = MemvaultMemory.from_defaults("carol", memory=make_li_memory(embedder="hash"), token_limit=500)
    await mem.aput(ChatMessage(role="user", content="hello"))
    await mem.aput_messages(chat(4, start=1))
    assert len(await mem.aget_all()) == 5
    assert (await mem.aget("hello"))[-1].content == chat(1, start=4)[0].content
    again = MemvaultMemory.from_defaults("carol", memory=make_li_memory(embedder="hash"), token_limit=500)
    assert [m.content for m in again.get_all()] == [m.content for m in await mem.aget_all()]
    await mem.aset([ChatMessage(role="user", content="only")])
    assert [m.content for m in await mem.aget_all()] == ["only"]
    await mem.areset()
    assert await mem.aget_all() == []


def test_as_chat_engine_memory(make_li_memory: Callable[..., Memory]) -> None:
    mem = MemvaultMemory.from_defaults("engine", memory=make_li_memory(embedder="hash"), token_limit=400)
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=mem)
    engine.chat("My name is Dana")
    engine.chat("What is my name?")
    stored = mem.get_all()
    assert [m.role.value for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[0].content == "My name is Dana"


async def test_block_recalls_archived_turns_per_session(make_li_memory: Callable[..., Memory]) -> None:
    mem = make_li_memory(embedder="hash")
    store = MemvaultAsyncChatStore(memory=mem)
    block = MemvaultMemoryBlock(memory=mem, similarity_top_k=3)
    memories = {}
    for session, secret in (("alice", "my locker code is tulip"), ("bob", "my locker code is cactus")):
        li = LIMemory.from_defaults(session_id=session, chat_store=store, token_limit=60, token_flush_size=10,
                                    memory_blocks=[block], tokenizer_fn=lambda t: t.split())
        await li.aput(ChatMessage(role="user", content=secret))
        for message in chat(16):
            await li.aput(message)
        memories[session] = li
    for session, mine, theirs in (("alice", "tulip", "cactus"), ("bob", "cactus", "tulip")):
        li = memories[session]
        active = await li.sql_store.get_messages(session)
        assert not any(mine in (m.content or "") for m in active)  # the secret left the short-term queue
        prompt = " ".join(m.content or "" for m in await li.aget(input="what is my locker code"))
        assert mine in prompt and theirs not in prompt


def test_get_without_input_recalls_for_the_newest_user_message(make_li_memory: Callable[..., Memory]) -> None:
    mem = MemvaultMemory.from_defaults("dana", memory=make_li_memory(embedder="hash"), token_limit=250)
    fill(mem)
    mem.put(ChatMessage(role="user", content="what is my cat called"))
    assert any("Pixel" in (m.content or "") for m in mem.get())  # what a chat engine does: put, then get()
