"""Memory for LlamaIndex built on memvault's compression and recall.

``MemvaultMemory`` is a ``BaseMemory`` (the ``memory=`` of chat engines and agents, a drop-in for
``ChatMemoryBuffer``): ``put`` appends one message, ``get`` returns a token-budgeted context —
[rolling summary] + [recalled older turns relevant to the input] + [the newest messages that fit] — assembled by
``memvault.Memory.context``. Its cost does not grow with the conversation: it reads the latest summary and the tail
a page at a time, and token counts are stored with each message once (``ChatMemoryBuffer.get`` instead re-tokenises
the whole history for every message it drops, quadratic in the session length).

``MemvaultMemoryBlock`` is a ``BaseMemoryBlock`` for ``llama_index.core.memory.Memory``: it adds the session's
summary and the recalled older turns (including those archived out of the short-term queue) to the prompt.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.llms.types import ChatMessage, TextBlock
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.memory.types import BaseMemory
from llama_index.storage.chat_store.memvault._convert import to_chat_message, to_message
from llama_index.storage.chat_store.memvault.base import open_memory

from memvault import Memory
from memvault.memory import Session

DEFAULT_TOKEN_LIMIT = 3000
TAIL_FOR_QUERY = 4  # newest messages searched for the user turn that get() recalls for


def default_policy(token_limit: int, llm: Any = None, model: str | None = None) -> Any:
    """Compress once the unsummarised history exceeds the budget, keeping half of it verbatim."""
    from memvault.compression import CompressionPolicy

    return CompressionPolicy(trigger_tokens=token_limit, keep_tokens=max(1, token_limit // 2), summarizer=llm,
                             model=model)


def _query_text(input: Any) -> str | None:
    if input is None:
        return None
    if isinstance(input, ChatMessage):
        return "\n".join(b.text for b in input.blocks if isinstance(b, TextBlock)) or None
    return str(input) or None


class MemvaultMemory(BaseMemory):
    """A persistent, compressing chat memory: summary + recall + recent window within ``token_limit`` tokens.

    ``MemvaultMemory.from_defaults(session_id="alice")`` stores in memvault's embedded default; ``url=`` picks a
    backend, ``memory=`` shares a memvault Memory. ``llm`` (any LlamaIndex LLM) writes the rolling summaries; without
    one an offline extractive summarizer is used. ``compression=False`` disables summarising (recall + window only).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session_id: str = Field(description="memvault session holding the conversation")
    token_limit: int = Field(default=DEFAULT_TOKEN_LIMIT, description="token budget of get()")
    namespace: str | None = Field(default=None, description="memvault namespace (tenant)")
    user_id: str | None = Field(default=None, description="user id recorded on the session")
    model: str | None = Field(default=None, description="model name picking the token encoding (e.g. gpt-4o)")
    summary_share: float = Field(default=0.3, description="share of the budget the summary may use")
    recall_share: float = Field(default=0.25, description="share of the budget recalled turns may use")
    recall_k: int = Field(default=10, description="recall candidates considered per get()")

    _memory: Memory = PrivateAttr()
    _session: Session = PrivateAttr()
    _last_context: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "MemvaultMemory"

    @classmethod
    def from_defaults(
        cls,
        session_id: str = "default",
        *,
        url: str | None = None,
        memory: Memory | None = None,
        token_limit: int = DEFAULT_TOKEN_LIMIT,
        llm: Any = None,
        compression: Any = None,
        chat_history: list[ChatMessage] | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
        model: str | None = None,
        summary_share: float = 0.3,
        recall_share: float = 0.25,
        recall_k: int = 10,
        **memory_options: Any,
    ) -> MemvaultMemory:
        """Open (or continue) the session. ``compression``: a memvault CompressionPolicy, None for the default
        (summarise past ``token_limit``, keep half verbatim), False for none."""
        self = cls(session_id=session_id, token_limit=token_limit, namespace=namespace, user_id=user_id, model=model,
                   summary_share=summary_share, recall_share=recall_share, recall_k=recall_k)
        self._memory = open_memory(url, memory, memory_options)
        policy = default_policy(token_limit, llm, model) if compression is None else compression or None
        self._session = self._memory.session(session_id, namespace=namespace, user_id=user_id, compress=policy)
        if chat_history is not None:
            self.set(chat_history)
        return self

    @property
    def memory(self) -> Memory:
        return self._memory

    @property
    def session(self) -> Session:
        return self._session

    @property
    def last_context(self) -> Any:
        """The memvault Context of the last get(): ``parts`` shows the tokens spent on summary, recall, window."""
        return self._last_context

    def _context_options(self, query: str | None) -> dict[str, Any]:
        return {"query": query, "budget_tokens": self.token_limit, "model": self.model,
                "summary_share": self.summary_share, "recall_share": self.recall_share, "recall_k": self.recall_k}

    @staticmethod
    def _latest_user_text(tail: list[Any]) -> str | None:
        for message in reversed(tail):
            if message.role == "user":
                return message.text or None
        return None

    def _finish(self, context: Any) -> list[ChatMessage]:
        self._last_context = context
        return [to_chat_message(m) for m in context.messages]

    # -- BaseMemory ----------------------------------------------------------------------------------------------
    def get(self, input: str | None = None, **kwargs: Any) -> list[ChatMessage]:
        """The prompt history for ``input``: summary + recalled turns + newest messages, within ``token_limit``.

        Without ``input`` (chat engines put the user message first, then call ``get()``), recall searches for the
        newest stored user message."""
        query = _query_text(input)
        if query is None:
            query = self._latest_user_text(self._session.messages(last=TAIL_FOR_QUERY))
        return self._finish(self._session.context(**self._context_options(query)))

    async def aget(self, input: str | None = None, **kwargs: Any) -> list[ChatMessage]:
        query = _query_text(input)
        if query is None:
            query = self._latest_user_text(await self._session.amessages(last=TAIL_FOR_QUERY))
        return self._finish(await self._session.acontext(**self._context_options(query)))

    def get_all(self) -> list[ChatMessage]:
        """Every stored message (compression never deletes raw history unless its retention policy says so)."""
        return [to_chat_message(m) for m in self._session.messages()]

    async def aget_all(self) -> list[ChatMessage]:
        return [to_chat_message(m) for m in await self._session.amessages()]

    def put(self, message: ChatMessage) -> None:
        self._session.extend([to_message(message)])

    async def aput(self, message: ChatMessage) -> None:
        await self._session.aextend([to_message(message)])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        self._session.extend([to_message(m) for m in messages])

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        await self._session.aextend([to_message(m) for m in messages])

    def set(self, messages: list[ChatMessage]) -> None:
        """Atomically replace the stored history (its summaries go with it)."""
        self._session.replace([to_message(m) for m in messages])

    async def aset(self, messages: list[ChatMessage]) -> None:
        await self._session.areplace([to_message(m) for m in messages])

    def reset(self) -> None:
        """Forget the conversation: messages and summaries."""
        self._session.clear()

    async def areset(self) -> None:
        await self._session.aclear()


class MemvaultMemoryBlock(BaseMemoryBlock[str]):
    """A block for ``llama_index.core.memory.Memory`` over a ``MemvaultAsyncChatStore``'s conversations.

    On each ``aget`` it recalls (hybrid) the calling session's older turns relevant to the recent messages —
    archived ones included, since the chat store keeps them in the same memvault session — and prepends the
    session's rolling summary when there is one. Scoped by the session id ``Memory`` passes, so sessions never see
    each other's memories. ``aput`` stores nothing: the chat store already holds every message.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = Field(default="memvault", description="block name in the memory template")
    memory: Any = Field(description="the memvault Memory the chat store writes to", exclude=True)
    namespace: str | None = Field(default=None, description="memvault namespace of the chat store")
    similarity_top_k: int = Field(default=4, description="recalled turns per request")
    query_window: int = Field(default=1, description="newest messages used as the recall query")
    mode: str = Field(default="hybrid", description="recall mode: hybrid, dense or keyword")
    include_summary: bool = Field(default=True, description="prepend the session's latest rolling summary")
    accept_short_term_memory: bool = False

    async def _aget(
        self, messages: list[ChatMessage] | None = None, session_id: str | None = None, **block_kwargs: Any
    ) -> str:
        if session_id is None or not messages:
            return ""
        recent = messages[-self.query_window :]
        query = " ".join(t for t in (_query_text(m) for m in recent) if t)
        lines: list[str] = []
        session = self.memory.session(session_id, namespace=self.namespace)
        if self.include_summary:
            summaries = await session.asummaries(last=1)
            if summaries:
                lines.append(f"Summary of earlier conversation: {summaries[-1].text}")
        if query:
            shown = {_query_text(m) for m in messages}
            hits = await self.memory.arecall(query, session=session_id, namespace=self.namespace,
                                             k=self.similarity_top_k + len(messages), mode=self.mode)
            recalled = [h.message for h in hits if h.message.text and h.message.text not in shown]
            for message in sorted(recalled[: self.similarity_top_k], key=lambda m: m.seq or 0):
                lines.append(f"[{message.created_at.date().isoformat()}] {message.role}: {message.text}")
        return "\n".join(lines)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        return None
