"""Every LangChain message type round-trips exactly through memvault's encoding and a real store (hypothesis)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_memvault import MemvaultChatMessageHistory, from_memvault, to_memvault

from memvault import Memory, Message
from memvault.errors import InvalidMessage
from memvault.model import decode_body, encode_body

# JSON-native values (what a JSON store can hold without changing type): no tuples, no NaN, no lone surrogates.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
keys = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=8
)
json_dicts = st.dictionaries(keys, json_values, max_size=3)
opt_id = st.none() | st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)

text_block = st.fixed_dictionaries({"type": st.just("text"), "text": text})
image_url_block = st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": st.just("https://x.test/a.png")})}
)
image_b64_block = st.fixed_dictionaries(
    {
        "type": st.just("image"),
        "source_type": st.just("base64"),
        "data": st.binary(max_size=24).map(lambda b: __import__("base64").b64encode(b).decode()),
        "mime_type": st.just("image/png"),
    }
)
content = text | st.lists(text | text_block | image_url_block | image_b64_block, max_size=4)

tool_call = st.fixed_dictionaries(
    {"name": keys, "args": json_dicts, "id": opt_id, "type": st.just("tool_call")}
)
invalid_tool_call = st.fixed_dictionaries(
    {
        "name": st.none() | keys,
        "args": st.none() | text,
        "id": opt_id,
        "error": st.none() | text,
        "type": st.just("invalid_tool_call"),
    }
)
usage = st.none() | st.builds(
    lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
common = {
    "content": content,
    "additional_kwargs": json_dicts,
    "response_metadata": json_dicts,
    "name": st.none() | keys,
    "id": opt_id,
}

messages = st.one_of(
    st.builds(HumanMessage, **common),
    st.builds(SystemMessage, **common),
    st.builds(
        AIMessage,
        **common,
        tool_calls=st.lists(tool_call, max_size=3),
        invalid_tool_calls=st.lists(invalid_tool_call, max_size=2),
        usage_metadata=usage,
    ),
    st.builds(
        ToolMessage,
        **common,
        tool_call_id=keys,
        artifact=json_values,
        status=st.sampled_from(["success", "error"]),
    ),
    st.builds(ChatMessage, **common, role=keys),
    st.builds(FunctionMessage, **{**common, "name": keys}),
    st.builds(AIMessageChunk, content=content, id=opt_id, additional_kwargs=json_dicts, usage_metadata=usage),
)


def assert_same(original: BaseMessage, restored: BaseMessage) -> None:
    assert type(restored) is type(original)
    assert restored == original
    assert restored.model_dump() == original.model_dump()


@settings(max_examples=300, deadline=None)
@given(message=messages)
def test_encoding_round_trip(message: BaseMessage) -> None:
    stored = to_memvault(message)
    # through the canonical JSON body every backend stores
    record = encode_body(stored)
    decoded = decode_body(record.body, session_id="s", seq=1)
    assert_same(message, from_memvault(decoded))
    assert_same(message, from_memvault(stored))


@pytest.fixture(scope="module")
def sqlite_memory(tmp_path_factory: pytest.TempPathFactory) -> Memory:
    mem = Memory(f"sqlite:///{tmp_path_factory.mktemp('rt') / 'rt.db'}")
    yield mem
    mem.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(messages, min_size=1, max_size=5))
def test_history_round_trip_sqlite(sqlite_memory: Memory, batch: list[BaseMessage]) -> None:
    history = MemvaultChatMessageHistory(f"s-{uuid.uuid4().hex}", memory=sqlite_memory)
    history.add_messages(batch)
    restored = history.messages
    assert len(restored) == len(batch)
    for original, back in zip(batch, restored, strict=True):
        assert_same(original, back)


def test_portable_fields_are_native(sqlite_memory: Memory) -> None:
    """Roles, text and tool calls land in memvault's own fields so recall and other adapters can read them."""
    history = MemvaultChatMessageHistory(f"s-{uuid.uuid4().hex}", memory=sqlite_memory)
    history.add_messages(
        [
            SystemMessage("be brief"),
            HumanMessage("hi"),
            AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1"}]),
            ToolMessage("found", tool_call_id="c1"),
            ChatMessage(role="assistant", content="ok"),
        ]
    )
    stored = history.session.messages()
    assert [m.role for m in stored] == ["system", "user", "assistant", "tool", "assistant"]
    assert stored[2].tool_calls == [{"name": "lookup", "args": {"q": "x"}, "id": "c1", "type": "tool_call"}]
    assert stored[3].tool_call_id == "c1"
    assert stored[1].text == "hi"


def test_foreign_messages_read_naturally() -> None:
    """Messages written through the core (or another adapter) come back as the natural LangChain types."""
    mem = Memory("memory://")
    session = mem.session("plain")
    session.extend(
        [
            Message(role="system", content="sys"),
            Message(role="user", content="q", name="bob"),
            Message(role="assistant", content="", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
            Message(role="tool", content="r", tool_call_id="1"),
            Message(role="assistant", content="a", tool_calls=[{"function": {"name": "f"}}]),
        ]
    )
    got = MemvaultChatMessageHistory("plain", memory=mem).messages
    assert [type(m).__name__ for m in got] == [
        "SystemMessage",
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert got[1].name == "bob"
    assert got[2].tool_calls[0]["name"] == "f"
    assert got[3].tool_call_id == "1"
    assert got[4].additional_kwargs == {"tool_calls": [{"function": {"name": "f"}}]}


def test_non_json_artifact_is_refused_and_nothing_is_stored() -> None:
    mem = Memory("memory://")
    history = MemvaultChatMessageHistory("bad", memory=mem)
    history.add_messages([HumanMessage("keep me")])
    bad: Any = ToolMessage("r", tool_call_id="1", artifact=object())
    with pytest.raises(InvalidMessage):
        history.add_messages([HumanMessage("lost?"), bad])
    assert [m.content for m in history.messages] == ["keep me"]
    json.dumps([m.model_dump() for m in history.messages])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(messages, min_size=1, max_size=4))
def test_history_round_trip_every_backend(lc_memory: Memory, batch: list[BaseMessage]) -> None:
    history = MemvaultChatMessageHistory(f"s-{uuid.uuid4().hex}", memory=lc_memory)
    history.add_messages(batch)
    for original, back in zip(batch, history.messages, strict=True):
        assert_same(original, back)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(messages, min_size=1, max_size=4))
async def test_history_round_trip_async(lc_memory: Memory, batch: list[BaseMessage]) -> None:
    history = MemvaultChatMessageHistory(f"s-{uuid.uuid4().hex}", memory=lc_memory)
    await history.aadd_messages(batch)
    for original, back in zip(batch, await history.aget_messages(), strict=True):
        assert_same(original, back)
