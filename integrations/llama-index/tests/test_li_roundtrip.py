"""ChatMessage -> memvault -> ChatMessage is exact (role, blocks incl. images, additional_kwargs), property-tested."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.llms import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore, MemvaultChatStore
from llama_index.storage.chat_store.memvault._convert import to_chat_message, to_message

from memvault import Memory, Message

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text
json_value = st.recursive(
    json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=8
)
image = st.one_of(
    st.binary(min_size=1, max_size=64).map(lambda b: ImageBlock(image=b, image_mimetype="image/png")),
    st.sampled_from(["https://example.com/a.png", "https://example.com/b.jpg?x=1"]).map(lambda u: ImageBlock(url=u)),
    st.binary(min_size=1, max_size=32).map(
        lambda b: ImageBlock(url="data:image/png;base64," + base64.b64encode(b).decode())
    ),
)
block = st.one_of(text.map(lambda t: TextBlock(text=t)), image)
chat_message = st.builds(
    lambda role, blocks, kwargs: ChatMessage(role=role, blocks=blocks, additional_kwargs=kwargs),
    st.sampled_from(list(MessageRole)),
    st.lists(block, max_size=4),
    st.dictionaries(text, json_value, max_size=4),
)

_dir = Path(tempfile.mkdtemp(prefix="li-roundtrip-"))
_sqlite = Memory(f"sqlite:///{_dir / 'rt.db'}")
_memory = Memory("memory://li-roundtrip")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chat_message, min_size=1, max_size=4))
def test_round_trip_through_sqlite_and_memory(messages: list[ChatMessage]) -> None:
    for mem in (_sqlite, _memory):
        store = MemvaultChatStore(memory=mem)
        store.set_messages("rt", messages)
        assert store.get_messages("rt") == messages


@settings(max_examples=60, deadline=None)
@given(chat_message)
async def test_round_trip_through_async_store(message: ChatMessage) -> None:
    store = MemvaultAsyncChatStore(memory=_memory)
    await store.set_messages("rt-async", [message])
    assert await store.get_messages("rt-async") == [message]


@given(chat_message)
def test_codec_is_exact_and_text_is_recallable(message: ChatMessage) -> None:
    stored = to_message(message)
    assert to_chat_message(stored) == message
    texts = [b.text for b in message.blocks if isinstance(b, TextBlock)]
    assert stored.text == "\n".join(texts)


def test_messages_from_other_adapters_are_readable() -> None:
    foreign = Message(
        role="assistant",
        content=[{"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
        tool_calls=[{"id": "c1", "name": "f", "args": {}}],
        name="bot",
    )
    got = to_chat_message(foreign)
    assert got.role == MessageRole.ASSISTANT
    assert got.blocks[0] == TextBlock(text="see")
    assert isinstance(got.blocks[1], ImageBlock) and str(got.blocks[1].url) == "https://x/y.png"
    assert got.additional_kwargs == {"tool_calls": [{"id": "c1", "name": "f", "args": {}}], "name": "bot"}
