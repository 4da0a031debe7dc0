"""window= (messages / tokens), compress= and recall_k= on MemvaultChatMessageHistory."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_memvault import MemvaultChatMessageHistory, Window, to_memvault

from memvault import Memory
from memvault.compression import CompressionPolicy, get_counter
from memvault.compression.tokens import message_tokens
from memvault.errors import InvalidPolicy

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")

TOPICS = [
    "the weather in Oslo this weekend",
    "a good book about Roman history",
    "how to repot a fern",
    "the rules of cricket",
    "learning to play the cello",
    "fixing a squeaky door hinge",
    "what to pack for a hiking trip",
    "the history of the printing press",
]


def chat(n: int) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        out += [HumanMessage(f"Tell me about {topic} (turn {i})", id=f"h{i}"), AIMessage(f"Here is a note on {topic}.")]
    return out


class ReadCounter:
    def __init__(self, mem: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        original = mem.store.read

        def read(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(mem.store, "read", read)


def expected_token_window(messages: list[BaseMessage], budget: int) -> list[BaseMessage]:
    counter = get_counter(None)
    used, kept = 0, []
    for message in reversed(messages):
        cost = message_tokens(to_memvault(message), counter)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    return kept[::-1]


def test_window_by_tokens(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("tok", memory=lc_memory)
    all_messages = chat(20)
    history.add_messages(all_messages)
    for budget in (40, 100, 250):
        got = MemvaultChatMessageHistory("tok", memory=lc_memory, window=Window(tokens=budget)).messages
        assert got == expected_token_window(all_messages, budget)
        assert 0 < len(got) < len(all_messages)
    both = MemvaultChatMessageHistory("tok", memory=lc_memory, window={"tokens": 250, "messages": 3}).messages
    assert both == all_messages[-3:]


async def test_window_by_tokens_async(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("tok-a", memory=lc_memory, window=Window(tokens=100))
    await history.aadd_messages(chat(10))
    assert await history.aget_messages() == expected_token_window(chat(10), 100)


@pytest.mark.parametrize("size", [20, 600])
def test_token_window_cost_does_not_grow(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    mem = Memory("memory://")
    MemvaultChatMessageHistory("big", memory=mem).add_messages(chat(size // 2))
    counter = ReadCounter(mem, monkeypatch)
    got = MemvaultChatMessageHistory("big", memory=mem, window=Window(tokens=60)).messages
    assert got
    assert counter.reads == 1


def test_window_drops_orphan_tool_results(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("tools", memory=lc_memory)
    history.add_messages(
        [
            HumanMessage("weather?"),
            AIMessage("", tool_calls=[{"name": "weather", "args": {"city": "Oslo"}, "id": "c1"}]),
            ToolMessage("rain", tool_call_id="c1"),
            AIMessage("It rains in Oslo."),
        ]
    )
    assert MemvaultChatMessageHistory("tools", memory=lc_memory, window=2).messages == [AIMessage("It rains in Oslo.")]
    assert len(MemvaultChatMessageHistory("tools", memory=lc_memory, window=3).messages) == 3


def policy() -> CompressionPolicy:
    return CompressionPolicy(trigger_messages=12, trigger_tokens=None, keep_messages=4, keep_tokens=None)


def test_compress_returns_summary_plus_recent(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("long", memory=lc_memory, compress=policy())
    all_messages = chat(15)
    for i in range(0, len(all_messages), 2):
        history.add_messages(all_messages[i : i + 2])
    got = history.messages
    summary = got[0]
    assert isinstance(summary, SystemMessage)
    assert summary.content.startswith("Summary of the earlier conversation")
    stored = history.session.summaries(last=1)[0]
    assert stored.text in summary.content
    rest = got[1:]
    assert rest == all_messages[stored.end_seq :]  # exactly the messages the summary does not cover
    assert 0 < len(rest) < 12
    assert history.session.count() == 30  # raw history kept
    assert MemvaultChatMessageHistory("long", memory=lc_memory).messages == all_messages


async def test_compress_async_with_window(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("long-a", memory=lc_memory, compress=policy(), window=2)
    all_messages = chat(15)
    for i in range(0, len(all_messages), 2):
        await history.aadd_messages(all_messages[i : i + 2])
    await history.session.await_compression()
    got = await history.aget_messages()
    assert isinstance(got[0], SystemMessage)
    assert got[1:] == all_messages[-2:]


def test_compress_under_runnable_with_message_history(lc_memory: Memory) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables import RunnableLambda

    seen: list[list[BaseMessage]] = []

    def record(value: Any) -> Any:
        seen.append(value.to_messages())
        return value

    shared_policy = policy()
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    chain = RunnableWithMessageHistory(
        prompt | RunnableLambda(record) | FakeListChatModel(responses=[f"answer {i}" for i in range(20)]),
        lambda sid: MemvaultChatMessageHistory(sid, memory=lc_memory, compress=shared_policy),
        input_messages_key="q",
        history_messages_key="history",
    )
    for i in range(12):
        chain.invoke({"q": f"question {i}"}, config={"configurable": {"session_id": "rwmh"}})
    last_prompt = seen[-1]
    assert isinstance(last_prompt[0], SystemMessage)
    assert last_prompt[0].content.startswith("Summary of the earlier conversation")
    assert len(last_prompt) < 2 * 11 + 1
    assert last_prompt[-1] == HumanMessage("question 11")
    assert last_prompt[-2].content == "answer 10"


def test_recall_k_adds_relevant_older_turns(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("rec", memory=lc_memory)
    allergy = HumanMessage("I have a severe peanut allergy, remember that", id="allergy")
    history.add_messages([allergy, AIMessage("Noted, no peanuts.")])
    history.add_messages(chat(8))
    history.add_messages([HumanMessage("Suggest a dessert recipe that is safe for my allergy")])
    shaped = MemvaultChatMessageHistory("rec", memory=lc_memory, window=3, recall_k=2).messages
    assert shaped[-3:] == history.messages[-3:]
    older = shaped[:-3]
    assert 1 <= len(older) <= 2
    assert allergy in older  # the exact original message, not a paraphrase
    assert all(m not in history.messages[-3:] for m in older)
    assert MemvaultChatMessageHistory("rec", memory=lc_memory, window=3).messages == history.messages[-3:]


async def test_recall_k_async_with_compress(lc_memory: Memory) -> None:
    history = MemvaultChatMessageHistory("rec-a", memory=lc_memory, compress=policy(), window=2, recall_k=1)
    allergy = HumanMessage("My cat Miso is allergic to fish", id="miso")
    await history.aadd_messages([allergy, AIMessage("Got it.")])
    for i in range(0, 16, 2):
        await history.aadd_messages(chat(8)[i : i + 2])
    await history.aadd_messages([HumanMessage("What food should I avoid for Miso?"), AIMessage("Avoid fish.")])
    await history.session.await_compression()
    got = await history.aget_messages()
    assert isinstance(got[0], SystemMessage)
    assert got[1] == allergy
    assert got[-2:] == [HumanMessage("What food should I avoid for Miso?"), AIMessage("Avoid fish.")]


def test_bad_compress_option() -> None:
    with pytest.raises(InvalidPolicy):
        MemvaultChatMessageHistory("x", memory=Memory("memory://"), compress="yes")
