"""History written through LlamaIndex in one process is read back by another (ChatMemoryBuffer and Memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WRITE_BUFFER = """
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.storage.chat_store.memvault import MemvaultChatStore
store = MemvaultChatStore()  # the embedded default under $MEMVAULT_HOME
buf = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="alice", token_limit=2000)
buf.put(ChatMessage(role="user", content="My favourite colour is blue"))
buf.put(ChatMessage(role="assistant", content="Noted: blue", additional_kwargs={"turn": 1}))
store.close()
"""

READ_BUFFER = """
import json
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.storage.chat_store.memvault import MemvaultChatStore
store = MemvaultChatStore()
buf = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="alice", token_limit=2000)
print(json.dumps([m.model_dump(mode="json") for m in buf.get()]))
"""

WRITE_MEMORY = """
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore
mem = Memory.from_defaults(session_id="bob", chat_store=MemvaultAsyncChatStore(), token_limit=60,
                           token_flush_size=10, tokenizer_fn=lambda t: t.split())
for i in range(12):
    mem.put(ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"message {i} " + "x " * 8))
"""

READ_MEMORY = """
import json
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore
mem = Memory.from_defaults(session_id="bob", chat_store=MemvaultAsyncChatStore(), token_limit=60,
                           tokenizer_fn=lambda t: t.split())
active = [m.content.split()[1] for m in mem.get()]
everything = [m.content.split()[1] for m in mem.get_all()]
archived = [m.content.split()[1] for m in mem.get_all(status=MessageStatus.ARCHIVED)]
print(json.dumps({"active": active, "all": everything, "archived": archived}))
"""


def python(code: str, home: Path) -> str:
    env = {**os.environ, "MEMVAULT_HOME": str(home)}
    env.pop("MEMVAULT_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_chat_memory_buffer_survives_the_process(tmp_path: Path) -> None:
    python(WRITE_BUFFER, tmp_path)
    got = json.loads(python(READ_BUFFER, tmp_path))
    assert [(m["role"], m["blocks"][0]["text"]) for m in got] == [
        ("user", "My favourite colour is blue"),
        ("assistant", "Noted: blue"),
    ]
    assert got[1]["additional_kwargs"] == {"turn": 1}


@pytest.mark.slow
def test_memory_survives_the_process_with_its_archive(tmp_path: Path) -> None:
    python(WRITE_MEMORY, tmp_path)
    got = json.loads(python(READ_MEMORY, tmp_path))
    assert got["all"] == [str(i) for i in range(12)]
    assert got["archived"] and got["active"]
    assert got["archived"] + got["active"] == got["all"]
