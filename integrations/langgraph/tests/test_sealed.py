"""A LangGraph agent's checkpoints, writes and messages encrypted at rest: the SQLite file holds no plaintext, and
the thread resumes only with the key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memvault import MemvaultSaver
from langgraph.graph.message import add_messages
from lg_fakes import one_node_graph

from memvault import Memory
from memvault.codecs import generate_key
from memvault.errors import EncryptionKeyMissing, WrongEncryptionKey

SECRET = "qzlanggraphsecretq"


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    notes: str


def respond(state: dict[str, Any]) -> dict[str, Any]:
    last = state["messages"][-1]
    return {"messages": [AIMessage(f"re: {last.content}")], "notes": f"noted {SECRET}"}


def graph(saver: MemvaultSaver) -> Any:
    return one_node_graph(State, respond, saver)


def test_an_agent_thread_is_encrypted_at_rest(tmp_path: Path) -> None:
    url, key = f"sqlite:///{tmp_path / 'agent.db'}", generate_key()
    config = {"configurable": {"thread_id": "t1"}}
    with Memory(url, encryption=key, compression="zstd", embedder="hash") as mem:
        app = graph(MemvaultSaver(memory=mem))
        app.invoke({"messages": [HumanMessage(f"my code is {SECRET}")]}, config)
        app.invoke({"messages": [HumanMessage("and again")]}, config)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("agent.db"))
    assert SECRET.encode() not in stored and b"and again" not in stored
    with pytest.raises(EncryptionKeyMissing):
        Memory(url, embedder="hash")
    with pytest.raises(WrongEncryptionKey):
        Memory(url, encryption=generate_key(), embedder="hash")
    with Memory(url, encryption=key, embedder="hash") as mem:
        state = graph(MemvaultSaver(memory=mem)).get_state(config).values
        assert [m.content for m in state["messages"]] == [f"my code is {SECRET}", f"re: my code is {SECRET}",
                                                          "and again", "re: and again"]
        assert state["notes"] == f"noted {SECRET}"
