"""RunnableWithMessageHistory with a fake chat model: one process talks, a SECOND process continues the session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.backends import BACKENDS

pytestmark = pytest.mark.filterwarnings("ignore::langchain_core._api.deprecation.LangChainDeprecationWarning")

# The chain both processes build. The recorder shows which messages reached the model; the fake model answers
# from its script. Style "key": input_messages_key + history_messages_key; style "list": messages in, no keys.
CHAIN = textwrap.dedent(
    """
    import json, sys
    from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables import RunnableLambda
    from langchain_core.runnables.history import RunnableWithMessageHistory
    from langchain_memvault import MemvaultChatMessageHistory

    SEEN = []
    MEMORIES = {}

    def history_factory(target):
        if target is None:  # the embedded default (MEMVAULT_HOME)
            return lambda session_id: MemvaultChatMessageHistory(session_id)
        from memvault import Memory
        key = json.dumps(target, sort_keys=True)
        if key not in MEMORIES:
            MEMORIES[key] = Memory(target["url"], **target["options"])
        return lambda session_id: MemvaultChatMessageHistory(session_id, memory=MEMORIES[key])

    def record(value):
        msgs = value.to_messages() if hasattr(value, "to_messages") else value
        SEEN.append([(m.type, m.content) for m in msgs])
        return value

    def build(style, target, answers):
        if style == "key":
            model = FakeListChatModel(responses=answers)
            prompt = ChatPromptTemplate.from_messages(
                [("system", "You are terse."), MessagesPlaceholder("history"), ("human", "{question}")]
            )
            chain = prompt | RunnableLambda(record) | model
            return RunnableWithMessageHistory(
                chain,
                history_factory(target),
                input_messages_key="question",
                history_messages_key="history",
            )
        model = GenericFakeChatModel(messages=iter([AIMessage(a) for a in answers]))
        chain = RunnableLambda(record) | model
        return RunnableWithMessageHistory(chain, history_factory(target))

    def ask(chain, style, text, session_id, use_async=False):
        value = {"question": text} if style == "key" else [HumanMessage(text)]
        config = {"configurable": {"session_id": session_id}}
        if use_async:
            import asyncio
            return asyncio.run(chain.ainvoke(value, config=config)).content
        return chain.invoke(value, config=config).content
    """
)

SECOND_PROCESS = "import warnings\nwarnings.simplefilter('ignore')\n" + CHAIN + textwrap.dedent(
    """
    style, target, session_id = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    chain = build(style, target, ["Your name is Ada."])
    answer = ask(chain, style, "What is my name?", session_id, use_async=True)
    print(json.dumps({"answer": answer, "seen": SEEN[-1]}))
    """
)


# every backend another process can reach ("memory://" lives in one process only); "default" = no URL at all
TARGETS = ["default", *sorted(name for name in BACKENDS if name != "memory")]


@pytest.mark.slow
@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("style", ["key", "list"])
def test_second_process_continues_the_session(
    style: str, target_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("MEMVAULT_HOME", str(home))
    monkeypatch.delenv("MEMVAULT_URL", raising=False)
    target = None
    if target_name != "default":
        url, options = BACKENDS[target_name](request, f"rw{uuid.uuid4().hex[:10]}", tmp_path)
        target = {"url": url, "options": options}
    namespace: dict[str, Any] = {}
    exec(compile(CHAIN, "chain", "exec"), namespace)
    chain = namespace["build"](style, target, ["Hello Ada.", "Noted: you like tea."])
    assert namespace["ask"](chain, style, "My name is Ada.", "s1") == "Hello Ada."
    assert namespace["ask"](chain, style, "I like tea.", "s1") == "Noted: you like tea."
    # the second turn already saw the first one
    assert ("human", "My name is Ada.") in namespace["SEEN"][1]
    # another session stays separate
    assert namespace["ask"](namespace["build"](style, target, ["?"]), style, "hi", "other") == "?"

    script = tmp_path / "second.py"
    script.write_text(SECOND_PROCESS)
    env = {**os.environ, "MEMVAULT_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, str(script), style, json.dumps(target), "s1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["answer"] == "Your name is Ada."
    seen = [tuple(m) for m in out["seen"]]
    history = [m for m in seen if m[0] != "system"]
    assert history == [
        ("human", "My name is Ada."),
        ("ai", "Hello Ada."),
        ("human", "I like tea."),
        ("ai", "Noted: you like tea."),
        ("human", "What is my name?"),
    ]
    assert ("human", "hi") not in seen

    # and the second process's turn is now stored for the first one
    stored = namespace["history_factory"](target)("s1").messages
    assert [m.content for m in stored][-2:] == ["What is my name?", "Your name is Ada."]
    for mem in namespace["MEMORIES"].values():
        mem.close()
