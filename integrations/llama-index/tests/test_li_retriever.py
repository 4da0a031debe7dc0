"""MemvaultRetriever: hybrid recall over conversations, scoped by session / user / namespace, sync and async."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.retrievers.memvault import MemvaultRetriever
from llama_index.storage.chat_store.memvault import MemvaultChatStore

from memvault import Memory


@pytest.fixture
def mem(make_li_memory) -> Memory:  # type: ignore[no-untyped-def]
    mem = make_li_memory(embedder="hash")
    alice = MemvaultChatStore(memory=mem, user_id="u-alice")
    alice.set_messages("alice-1", [
        ChatMessage(role="user", content="My favourite colour is blue"),
        ChatMessage(role="assistant", content="Noted, blue it is."),
        ChatMessage(role="user", content="I live in Lisbon near the river"),
    ])
    alice.set_messages("alice-2", [ChatMessage(role="chatbot", content="Your dentist appointment is on Friday")])
    MemvaultChatStore(memory=mem, user_id="u-bob").set_messages("bob-1", [
        ChatMessage(role="user", content="My favourite colour is red"),
    ])
    MemvaultChatStore(memory=mem, namespace="elsewhere").set_messages("x", [
        ChatMessage(role="user", content="favourite colour green"),
    ])
    return mem


def test_session_scope_and_node_metadata(mem: Memory) -> None:
    retriever = MemvaultRetriever(mem, session_id="alice-1", similarity_top_k=2)
    hits = retriever.retrieve("what is my favourite colour")
    assert hits[0].node.get_content() == "My favourite colour is blue"
    meta = hits[0].node.metadata
    assert meta["role"] == "user" and meta["session_id"] == "alice-1" and meta["namespace"] == "default"
    assert meta["seq"] == 1 and meta["message_id"] == hits[0].node.node_id
    assert datetime.fromisoformat(meta["created_at"]) <= datetime.now(timezone.utc)
    assert {"dense", "keyword"} <= set(meta["signals"]) and "rank" in meta["signals"]["keyword"]
    assert hits[0].score is not None and hits[0].score >= hits[1].score  # type: ignore[operator]
    assert all(h.node.metadata["session_id"] == "alice-1" for h in hits)
    assert "signals" not in hits[0].node.get_content(metadata_mode="llm")  # type: ignore[arg-type]


def test_user_and_namespace_scopes(mem: Memory) -> None:
    by_user = MemvaultRetriever(mem, user_id="u-alice", similarity_top_k=10).retrieve("dentist appointment colour")
    assert {h.node.metadata["session_id"] for h in by_user} == {"alice-1", "alice-2"}
    dentist = next(h for h in by_user if "dentist" in h.node.get_content())
    assert dentist.node.metadata["role"] == "chatbot"  # the exact LlamaIndex role survives
    everyone = MemvaultRetriever(mem, similarity_top_k=10).retrieve("favourite colour")
    assert {"alice-1", "bob-1"} <= {h.node.metadata["session_id"] for h in everyone}
    assert all(h.node.metadata["namespace"] == "default" for h in everyone)
    other = MemvaultRetriever(mem, namespace="elsewhere").retrieve("favourite colour")
    assert [h.node.get_content() for h in other] == ["favourite colour green"]


def test_modes_filters_and_neighbors(mem: Memory) -> None:
    keyword = MemvaultRetriever(mem, session_id="alice-1", mode="keyword", similarity_top_k=5).retrieve("Lisbon")
    assert [h.node.get_content() for h in keyword] == ["I live in Lisbon near the river"]
    users_only = MemvaultRetriever(mem, session_id="alice-1", filters={"role": "assistant"}, similarity_top_k=5)
    assert [h.node.metadata["role"] for h in users_only.retrieve("blue")] == ["assistant"]
    with_context = MemvaultRetriever(mem, session_id="alice-1", mode="keyword", neighbors=1).retrieve("Lisbon")
    assert [n["seq"] for n in with_context[0].node.metadata["neighbors"]] == [2]  # the turn before (last turn)


async def test_async_retrieve(mem: Memory) -> None:
    hits = await MemvaultRetriever(mem, session_id="alice-1", similarity_top_k=1).aretrieve("favourite colour")
    assert hits[0].node.get_content() == "My favourite colour is blue"
