"""A user's serializer is honoured: with LangGraph's EncryptedSerializer every message is sealed by it before it
reaches memvault's message log, checkpoints read back exactly (also from a fresh saver), and no plaintext is left
in the database file."""

from __future__ import annotations

import hashlib
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.checkpoint.memvault import MemvaultSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.graph.message import add_messages
from lg_fakes import one_node_graph

from memvault import Memory

SECRET = "the launch code is 4417-alpha"


class XorCipher:
    """A CipherProtocol for the test (a keyed XOR stream from SHA-256: not real cryptography, enough to tell that
    the saver stores what the serializer produced, and only that)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def _stream(self, n: int) -> bytes:
        out = b""
        counter = 0
        while len(out) < n:
            out += hashlib.sha256(self.key + counter.to_bytes(8, "big")).digest()
            counter += 1
        return out[:n]

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "xor-test", bytes(map(operator.xor, plaintext, self._stream(len(plaintext))))

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "xor-test"
        return bytes(map(operator.xor, ciphertext, self._stream(len(ciphertext))))


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    note: str


def _answer(state: State) -> dict[str, Any]:
    return {"messages": [AIMessage(content=f"noted: {state['messages'][-1].content}")], "note": SECRET}


def _graph(saver: MemvaultSaver) -> Any:
    return one_node_graph(State, _answer, saver)


def test_an_encrypted_serializer_seals_every_message_and_reads_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sealed.db'}"
    serde = EncryptedSerializer(XorCipher(b"k" * 32))
    config = {"configurable": {"thread_id": "t1"}}
    with Memory(url) as mem:
        graph = _graph(MemvaultSaver(memory=mem, serde=serde))
        graph.invoke({"messages": [{"role": "user", "content": SECRET}]}, config)
        graph.invoke({"messages": [{"role": "user", "content": "and the second one?"}]}, config)
        texts = [m.content for m in graph.get_state(config).values["messages"]]
        assert texts == [SECRET, f"noted: {SECRET}", "and the second one?", "noted: and the second one?"]
        stored = mem.session("t1").messages()
        assert len(stored) == 4  # stored once each, in the thread's session
        assert all(SECRET not in (m.text or "") and "second one" not in (m.text or "") for m in stored)
    with Memory(url) as again:  # a fresh saver: nothing cached, everything decoded through the serializer
        state = _graph(MemvaultSaver(memory=again, serde=serde)).get_state(config)
        assert [m.content for m in state.values["messages"]] == texts and state.values["note"] == SECRET
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sealed.db"))
    assert SECRET.encode() not in raw and b"second one" not in raw
