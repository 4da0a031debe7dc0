"""Offline fakes shared by the LangGraph suite, its worker processes and ``benchmarks/langgraph_checkpoint.py``.

* ``HashEmbeddings``: a deterministic character-frequency embedder (same vectors in every process, unlike the upstream
  tests' lazily seeded ``CharacterEmbeddings``), plus ``cosine`` to compute expected scores.
* ``ScriptedChatModel``: a tool-calling chat model whose reply is a pure function of the conversation, so a second
  process continuing a thread produces exactly what the first one would have.
* the agent's tools and ``build_agent(kind, checkpointer)``; ``signature(message)`` for exact, JSON-able comparisons.

Script (the last human message, commands joined by `` & `` become parallel tool calls):
``add A B`` -> ``add``, ``ask Q`` -> ``ask_human`` (raises ``interrupt``), ``email TO`` -> ``send_email`` (gated by
HITL in the ``hitl`` agent), ``note X`` -> ``record_note`` (appends to ``$LG_FAKES_TOOL_LOG``); anything else gets
``echo: <text>``. After tool results it answers ``done: name=result; ...``. A prompt starting with ``SUMMARIZE:``
(the summary prompt ``build_agent`` gives ``SummarizationMiddleware``) gets ``SUMMARY: ...``.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool

DIMS = 64
SUMMARY_PROMPT = "SUMMARIZE:\n{messages}"
TOOL_LOG_ENV = "LG_FAKES_TOOL_LOG"


# ---------------------------------------------------------------------------------------------------- embeddings
@lru_cache(maxsize=4096)
def _char_vector(char: str, dims: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(char.encode("utf-8")).digest()[:8], "big")
    rng = random.Random(seed)
    return tuple(rng.gauss(0.0, 1.0) for _ in range(dims))


def embed_text(text: str, dims: int = DIMS) -> list[float]:
    """Unit vector: the character-frequency weighted sum of fixed per-character random vectors."""
    counts = Counter(text)
    if not counts:
        return [0.0] * dims
    total = sum(counts.values())
    vec = [0.0] * dims
    for char, n in counts.items():
        for i, x in enumerate(_char_vector(char, dims)):
            vec[i] += x * n / total
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm else vec


def embed_texts(texts: Sequence[str]) -> list[list[float]]:
    """The plain-function form accepted by ``IndexConfig["embed"]``."""
    return [embed_text(t) for t in texts]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class HashEmbeddings(Embeddings):
    """Deterministic offline embeddings (``DIMS`` wide); similar strings get similar vectors."""

    def __init__(self, dims: int = DIMS) -> None:
        self.dims = dims
        self.calls = 0  # number of embed_documents / embed_query calls (tests check re-embedding)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [embed_text(t, self.dims) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return embed_text(text, self.dims)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HashEmbeddings) and other.dims == self.dims

    def __hash__(self) -> int:
        return hash(("HashEmbeddings", self.dims))


# ---------------------------------------------------------------------------------------------------- chat model
def _tool_calls_for(text: str, position: int) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for j, part in enumerate(p.strip() for p in text.split(" & ")):
        words = part.split()
        if len(words) == 3 and words[0] == "add":
            name, args = "add", {"a": int(words[1]), "b": int(words[2])}
        elif len(words) >= 2 and words[0] == "ask":
            name, args = "ask_human", {"question": " ".join(words[1:])}
        elif len(words) == 2 and words[0] == "email":
            name, args = "send_email", {"to": words[1]}
        elif len(words) >= 2 and words[0] == "note":
            name, args = "record_note", {"text": " ".join(words[1:])}
        else:
            return []  # not a command line: plain chat
        calls.append({"name": name, "args": args, "id": f"call-{position}-{j}", "type": "tool_call"})
    return calls


def scripted_reply(messages: Sequence[BaseMessage]) -> AIMessage:
    """The reply ``ScriptedChatModel`` gives to ``messages`` (a pure function of them)."""
    convo = [m for m in messages if not isinstance(m, SystemMessage)]
    if not convo:
        return AIMessage(content="echo: ")
    last = convo[-1]
    if isinstance(last, ToolMessage):
        results: list[str] = []
        for m in reversed(convo):
            if not isinstance(m, ToolMessage):
                break
            results.append(f"{m.name}={m.content}")
        return AIMessage(content="done: " + "; ".join(reversed(results)))
    text = last.text if isinstance(last.content, list) else str(last.content)
    if isinstance(last, HumanMessage) and text.startswith("SUMMARIZE:"):
        body = text[len("SUMMARIZE:") :].strip()
        echoes = body.count("echo:")
        return AIMessage(content=f"SUMMARY: {echoes} echoed turns, {len(body)} chars")
    calls = _tool_calls_for(text, len(convo))
    if calls:
        return AIMessage(content="", tool_calls=calls)
    return AIMessage(content=f"echo: {text}")


class ScriptedChatModel(BaseChatModel):
    """A fake tool-calling chat model: see the module docstring for its script."""

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=scripted_reply(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[Any, AIMessage]:
        names = [t.name if isinstance(t, BaseTool) else getattr(t, "__name__", str(t)) for t in tools]
        return self.bind(bound_tool_names=names, **kwargs)


# ---------------------------------------------------------------------------------------------------- tools
@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def ask_human(question: str) -> str:
    """Ask the human a question and wait for the answer (a LangGraph interrupt)."""
    from langgraph.types import interrupt

    answer = interrupt({"question": question})
    return f"human said {answer}"


@tool
def send_email(to: str) -> str:
    """Send an email (gated by human approval in the ``hitl`` agent)."""
    return f"sent to {to}"


@tool
def record_note(text: str) -> str:
    """Append a note to the file named by ``$LG_FAKES_TOOL_LOG`` (tests count executions with it)."""
    path = os.environ.get(TOOL_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return f"noted {text}"


TOOLS = [add, ask_human, send_email, record_note]

#: SummarizationMiddleware settings of the ``summarize`` agent: summarize once 12 messages are reached, keep 4
SUMMARIZE_TRIGGER = 12
SUMMARIZE_KEEP = 4


def one_node_graph(schema: type, node: Callable[[Any], dict[str, Any]], checkpointer: Any) -> Any:
    """START -> ``node`` -> END over ``schema``, compiled with ``checkpointer``."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(schema)
    graph.add_node(node.__name__, node)
    graph.add_edge(START, node.__name__)
    graph.add_edge(node.__name__, END)
    return graph.compile(checkpointer=checkpointer)


def build_agent(kind: str, checkpointer: Any, store: Any = None) -> Any:
    """``create_agent`` with the scripted model: ``basic`` (tools only), ``hitl`` (approve ``send_email``) or
    ``summarize`` (SummarizationMiddleware with the scripted model as summarizer)."""
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware, SummarizationMiddleware

    middleware: list[Any] = []
    if kind == "hitl":
        middleware.append(HumanInTheLoopMiddleware(interrupt_on={"send_email": True}))
    elif kind == "summarize":
        middleware.append(
            SummarizationMiddleware(
                model=ScriptedChatModel(),
                trigger=("messages", SUMMARIZE_TRIGGER),
                keep=("messages", SUMMARIZE_KEEP),
                summary_prompt=SUMMARY_PROMPT,
            )
        )
    elif kind != "basic":
        raise ValueError(f"unknown agent kind {kind!r}")
    return create_agent(ScriptedChatModel(), TOOLS, middleware=middleware, checkpointer=checkpointer, store=store)


# ---------------------------------------------------------------------------------------------------- comparisons
def signature(message: BaseMessage) -> dict[str, Any]:
    """What must survive persistence exactly: type, id, content, tool calls, tool-call id, name, extra kwargs."""
    sig: dict[str, Any] = {"type": message.type, "id": message.id, "content": message.content}
    if isinstance(message, AIMessage):
        sig["tool_calls"] = [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        sig["tool_call_id"] = message.tool_call_id
        sig["name"] = message.name
    if message.additional_kwargs:
        sig["additional_kwargs"] = message.additional_kwargs
    return sig


def signatures(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    return [signature(m) for m in messages]


def index_config(fields: list[str] | None = None, *, embed: Any = None, dims: int = DIMS) -> dict[str, Any]:
    """An ``IndexConfig`` with the offline embedder (``embed`` may be an Embeddings or a plain function)."""
    config: dict[str, Any] = {"dims": dims, "embed": embed if embed is not None else HashEmbeddings(dims)}
    if fields is not None:
        config["fields"] = fields
    return config
