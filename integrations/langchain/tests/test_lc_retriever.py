"""MemvaultRetriever: LangChain's RetrieversIntegrationTests on every backend, plus scope, filters and metadata."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_memvault import MemvaultChatMessageHistory, MemvaultRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from memvault import Memory
from memvault.errors import InvalidFilter

CONVERSATION = [
    HumanMessage("I adopted a grey cat named Miso last spring"),
    AIMessage("Miso is a lovely name for a cat."),
    HumanMessage("My sister lives in Lisbon and works as a nurse"),
    AIMessage("Lisbon is beautiful; nursing is demanding work."),
    HumanMessage("I am allergic to peanuts, keep that in mind for recipes"),
    AIMessage("Noted: no peanuts in any recipe."),
]


def fill(memory: Memory) -> None:
    MemvaultChatMessageHistory("s1", memory=memory, user_id="u1").add_messages(CONVERSATION)
    MemvaultChatMessageHistory("s2", memory=memory, user_id="u1").add_messages(
        [HumanMessage("Book a table for two on Friday"), AIMessage("Table for two booked for Friday.")]
    )
    MemvaultChatMessageHistory("s3", memory=memory, user_id="u2").add_messages(
        [HumanMessage("My cat knocks glasses off the table"), AIMessage("Cats do that.")]
    )


class TestMemvaultRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard retriever suite, unchanged, on each backend."""

    @pytest.fixture(autouse=True)
    def _memory(self, lc_memory: Memory) -> None:
        fill(lc_memory)
        self.memory = lc_memory

    @property
    def retriever_constructor(self) -> type[MemvaultRetriever]:
        return MemvaultRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"memory": self.memory, "session_id": "s1"}

    @property
    def retriever_query_example(self) -> str:
        return "what is the name of my cat?"


def test_documents_carry_message_fields(lc_memory: Memory) -> None:
    fill(lc_memory)
    docs = MemvaultRetriever(memory=lc_memory, session_id="s1", k=2).invoke("which food allergy do I have?")
    assert docs[0].page_content == "I am allergic to peanuts, keep that in mind for recipes"
    meta = docs[0].metadata
    assert meta["role"] == "user"
    assert meta["type"] == "human"
    assert meta["session_id"] == "s1"
    assert meta["seq"] == 5
    assert datetime.fromisoformat(meta["created_at"]).tzinfo is not None
    assert meta["score"] >= docs[1].metadata["score"]
    assert set(meta["signals"]) >= {"dense", "keyword"}
    assert docs[0].id == meta["message_id"]


def test_neighbors_in_metadata(lc_memory: Memory) -> None:
    fill(lc_memory)
    doc = MemvaultRetriever(memory=lc_memory, session_id="s1", k=1, neighbors=1).invoke("peanuts allergy")[0]
    seq = doc.metadata["seq"]
    assert seq in (5, 6)
    expected = [s for s in (seq - 1, seq + 1) if 1 <= s <= 6]
    assert [n["seq"] for n in doc.metadata["neighbors"]] == expected
    texts = {n["seq"]: n["text"] for n in doc.metadata["neighbors"]}
    assert texts[seq - 1] == CONVERSATION[seq - 2].content
    assert MemvaultRetriever(memory=lc_memory, session_id="s1", k=1).invoke("peanuts")[0].metadata.get(
        "neighbors"
    ) is None


def test_scopes(lc_memory: Memory) -> None:
    fill(lc_memory)
    by_session = MemvaultRetriever(memory=lc_memory, session_id="s1", k=10).invoke("cat")
    assert {d.metadata["session_id"] for d in by_session} == {"s1"}
    by_user = MemvaultRetriever(memory=lc_memory, user_id="u1", k=20).invoke("table")
    assert {d.metadata["session_id"] for d in by_user} == {"s1", "s2"}
    everything = MemvaultRetriever(memory=lc_memory, k=20).invoke("cat")
    assert {d.metadata["session_id"] for d in everything} == {"s1", "s2", "s3"}
    assert everything[0].metadata["session_id"] in {"s1", "s3"}


async def test_filters_and_async(lc_memory: Memory) -> None:
    fill(lc_memory)
    retriever = MemvaultRetriever(memory=lc_memory, session_id="s1", k=10, filters={"role": "assistant"})
    docs = await retriever.ainvoke("cat")
    assert docs and {d.metadata["role"] for d in docs} == {"assistant"}
    future = datetime(2999, 1, 1, tzinfo=timezone.utc)
    assert await retriever.ainvoke("cat", filters={"after": future}) == []
    keyword = await retriever.ainvoke("sister Lisbon", mode="keyword", filters=None, k=1)
    assert keyword[0].page_content.startswith("My sister lives in Lisbon")


def test_bad_options(lc_memory: Memory) -> None:
    with pytest.raises(InvalidFilter):
        MemvaultRetriever(memory=lc_memory, k=2).invoke("x", bogus=1)
    with pytest.raises(InvalidFilter):
        MemvaultRetriever(memory=lc_memory, filters={"nope": 1}).invoke("x")
    with pytest.raises((InvalidFilter, ValueError)):
        MemvaultRetriever(memory=lc_memory, k=-1)
