"""Token-budgeted context assembly: [summary] + [recalled older turns] + [recent window], never over budget.

Cost per call does not grow with the conversation: one keyed read for the latest summary, the tail read backwards a
page at a time only until the window's share of the budget is full, and (when recall is installed) one recall query.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from memvault.compression.summaries import Summary, latest_summary
from memvault.compression.tokens import (
    MESSAGE_OVERHEAD,
    TOKENS_KEY,
    TokenCounter,
    get_counter,
    message_text,
    message_tokens,
)
from memvault.drive import Call, Op, run_async, run_sync
from memvault.errors import InvalidPolicy
from memvault.model import Message

logger = logging.getLogger("memvault.compression")
PAGE = 32
TRUNCATED = " …[truncated]"
SUMMARY_HEADER = "Summary of the earlier conversation (messages {start}-{end}):\n"
RECALL_HEADER = "Earlier messages relevant to the current request:\n"
MIN_USEFUL = 8  # a part that can show fewer tokens than this is left out rather than shown as a stub


@dataclass
class ContextPart:
    """How one part of the context spent the budget."""

    name: str
    tokens: int = 0
    messages: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """An assembled prompt history. ``messages`` go to the model as they are; ``tokens <= budget`` always."""

    messages: list[Message]
    tokens: int
    budget: int
    encoding: str
    parts: dict[str, ContextPart]
    summary: Summary | None = None

    def as_dicts(self) -> list[dict[str, Any]]:
        """``[{"role", "content", ...}]`` in the OpenAI chat shape (tool calls and ids kept)."""
        out = []
        for m in self.messages:
            item: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.name:
                item["name"] = m.name
            if m.tool_calls:
                item["tool_calls"] = m.tool_calls
            if m.tool_call_id:
                item["tool_call_id"] = m.tool_call_id
            out.append(item)
        return out


@dataclass
class Gathered:
    summary: Summary | None
    window: list[Message]  # oldest first, contiguous, ends with the newest message
    candidates_seen: int


def check_budget(budget_tokens: Any, summary_share: float, recall_share: float) -> None:
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 0:
        raise InvalidPolicy(f"budget_tokens must be a non-negative int, got {budget_tokens!r}")
    for name, share in (("summary_share", summary_share), ("recall_share", recall_share)):
        if not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise InvalidPolicy(f"{name} must be between 0 and 1, got {share!r}")
    if summary_share + recall_share > 1:
        raise InvalidPolicy("summary_share + recall_share must not exceed 1")


def _text_cost(text: str, counter: TokenCounter) -> int:
    return MESSAGE_OVERHEAD + counter.count(text)


_rendered: dict[tuple[str, str, str, str, int], tuple[Message | None, int]] = {}


def _summary_message(summary: Summary, cap: int, counter: TokenCounter, sid: str) -> tuple[Message | None, int]:
    """The summary as a system message costing at most ``cap`` (truncated if needed); cached per summary and cap."""
    key = (sid, summary.key, summary.created_at.isoformat(), counter.name, cap)
    found = _rendered.get(key)
    if found is None:
        if len(_rendered) > 4096:
            _rendered.clear()
        found = _rendered[key] = _render_summary(summary, cap, counter, sid)
    message, cost = found
    return (None, 0) if message is None else (replace(message, metadata=dict(message.metadata)), cost)


def _render_summary(summary: Summary, cap: int, counter: TokenCounter, sid: str) -> tuple[Message | None, int]:
    header = SUMMARY_HEADER.format(start=summary.start_seq, end=summary.end_seq)
    room = cap - MESSAGE_OVERHEAD - counter.count(header)
    if room < MIN_USEFUL:
        return None, 0
    body = summary.text
    size = summary.tokens if summary.encoding == counter.name else counter.count(body)
    if size > room:
        body = counter.truncate(body, room - counter.count(TRUNCATED)) + TRUNCATED
    text = header + body
    cost = _text_cost(text, counter)
    while cost > cap and body:  # merges at the seam can cost a token or two more than the parts
        body = body[: max(0, len(body) - 8)]
        text = header + body
        cost = _text_cost(text, counter)
    if cost > cap:
        return None, 0
    message = Message(role="system", content=text, id=f"summary:{summary.key}", session_id=sid,
                      metadata={"memvault": {"part": "summary", "start_seq": summary.start_seq,
                                             "end_seq": summary.end_seq}})
    return message, cost


def gather(
    ns: str, sid: str, window_budget: int, counter: TokenCounter, summary: Summary | None = None
) -> Op[Gathered]:
    """The newest messages that fit ``window_budget`` (read backwards a page at a time). The window may reach back
    into what ``summary`` covers: budget the summary leaves free is better spent on verbatim turns than unused."""
    window: list[Message] = []  # newest first while reading
    used = 0
    stop: int | None = None
    seen = 0
    full = False
    newest: Message | None = None
    while not full:
        page = yield Call("read", (ns, sid), {"stop": stop, "last": PAGE})
        seen += len(page)
        if newest is None and page:
            newest = page[-1]
        for message in reversed(page):
            cost = message_tokens(message, counter)
            if used + cost > window_budget:
                full = True
                break
            window.append(message)
            used += cost
        if len(page) < PAGE or not page:
            break
        stop = page[0].seq
    if not window and newest is not None and window_budget > 0:
        cut = _truncate_message(newest, window_budget, counter)  # the newest alone is over budget: show its head
        if cut is not None:
            window.append(cut)
    window.reverse()
    return Gathered(summary, window, seen)


def _truncate_message(message: Message, budget: int, counter: TokenCounter) -> Message | None:
    room = budget - MESSAGE_OVERHEAD - counter.count(TRUNCATED) - 2
    if room < MIN_USEFUL or message.tool_calls or message.role == "tool":
        return None
    head = counter.truncate(message.text, room)

    def shortened(head: str) -> Message:
        # same id and seq as the stored message, so its own count is stamped (the cache holds the full one's)
        cut = replace(message, content=head + TRUNCATED, metadata={**message.metadata, "memvault": {"truncated": True}},
                      extras={})
        cut.extras[TOKENS_KEY] = {counter.name: counter.count(message_text(cut))}
        return cut

    cut = shortened(head)
    while head and message_tokens(cut, counter) > budget:  # merges at the seam can cost a token more
        head = head[: max(0, len(head) - 8)]
        cut = shortened(head)
    return cut if head and message_tokens(cut, counter) <= budget else None


def drop_orphans(window: list[Message]) -> list[Message]:
    """Drop tool results at the start of the window whose calling assistant message is not in it."""
    i = 0
    while i < len(window) and window[i].role == "tool":
        i += 1
    return window[i:]


def _recall_message(
    hits: Sequence[Any], before_seq: int | None, budget: int, counter: TokenCounter, sid: str
) -> tuple[Message | None, int, int]:
    """One system message quoting the best hits older than the window, as many as fit ``budget``."""
    if budget < MESSAGE_OVERHEAD + counter.count(RECALL_HEADER) + MIN_USEFUL:
        return None, 0, 0
    used = MESSAGE_OVERHEAD + counter.count(RECALL_HEADER) + 1
    chosen: list[Message] = []
    seen: set[str] = set()
    for hit in hits:
        message = getattr(hit, "message", None)
        if not isinstance(message, Message) or message.id in seen:
            continue
        if before_seq is not None and message.seq is not None and message.seq >= before_seq:
            continue  # already in the window verbatim
        line = _quote(message)
        cost = counter.count(line) + 1
        if used + cost > budget:
            continue
        seen.add(message.id)
        chosen.append(message)
        used += cost
    if not chosen:
        return None, 0, 0
    chosen.sort(key=lambda m: (m.seq or 0))
    text = RECALL_HEADER + "\n".join(_quote(m) for m in chosen)
    cost = _text_cost(text, counter)
    while cost > budget and chosen:  # joins can tokenize differently than the lines alone
        chosen.pop()
        text = RECALL_HEADER + "\n".join(_quote(m) for m in chosen)
        cost = _text_cost(text, counter)
    if not chosen:
        return None, 0, 0
    message = Message(role="system", content=text, id=f"recall:{chosen[0].id}", session_id=sid,
                      metadata={"memvault": {"part": "recall", "seqs": [m.seq for m in chosen]}})
    return message, cost, len(chosen)


def _quote(message: Message) -> str:
    speaker = message.name or message.role
    text = " ".join(message.text.split())
    return f"[{message.created_at.date().isoformat()} #{message.seq}] {speaker}: {text}"


@dataclass
class Assembly:
    """The arithmetic of one context call: shares -> caps -> parts."""

    budget: int
    counter: TokenCounter
    summary_share: float
    recall_share: float
    use_recall: bool

    @property
    def summary_cap(self) -> int:
        return int(self.budget * self.summary_share)

    @property
    def recall_cap(self) -> int:
        return int(self.budget * self.recall_share) if self.use_recall else 0

    def window_budget(self, summary: Summary | None) -> int:
        reserved = self.recall_cap
        if summary is not None:
            header = self.counter.count(SUMMARY_HEADER) + MESSAGE_OVERHEAD + 8
            size = summary.tokens if summary.encoding == self.counter.name else self.counter.count(summary.text)
            reserved += min(self.summary_cap, size + header)
        return max(0, self.budget - reserved)

    def finish(self, sid: str, gathered: Gathered, hits: Sequence[Any] | None) -> Context:
        window = drop_orphans(gathered.window)
        window_tokens = sum(message_tokens(m, self.counter) for m in window)
        left = self.budget - window_tokens
        parts: dict[str, ContextPart] = {}
        messages: list[Message] = []
        summary_msg, summary_tokens = None, 0
        if gathered.summary is not None:
            cap = min(left, max(self.summary_cap, left - self.recall_cap))  # unused window share flows here
            summary_msg, summary_tokens = _summary_message(gathered.summary, cap, self.counter, sid)
            parts["summary"] = ContextPart(
                "summary", summary_tokens, 1 if summary_msg else 0,
                {"start_seq": gathered.summary.start_seq, "end_seq": gathered.summary.end_seq,
                 "stored_tokens": gathered.summary.tokens, "truncated": summary_msg is not None
                 and TRUNCATED in summary_msg.text, "dropped": summary_msg is None},
            )
            left -= summary_tokens
        recall_msg, recall_tokens, recalled = None, 0, 0
        if hits is not None:
            first_seq = window[0].seq if window else None
            recall_msg, recall_tokens, recalled = _recall_message(hits, first_seq, left, self.counter, sid)
            parts["recall"] = ContextPart("recall", recall_tokens, recalled, {"hits": len(hits)})
            left -= recall_tokens
        if gathered.summary is not None and left > 0 and (summary_msg is None or TRUNCATED in summary_msg.text):
            # recall did not use its share: give it to the summary
            bigger, bigger_tokens = _summary_message(gathered.summary, summary_tokens + left, self.counter, sid)
            if bigger is not None and bigger_tokens > summary_tokens:
                left -= bigger_tokens - summary_tokens
                summary_msg, summary_tokens = bigger, bigger_tokens
                part = parts["summary"]
                part.tokens, part.messages = summary_tokens, 1
                part.detail.update(truncated=TRUNCATED in bigger.text, dropped=False)
        covered = gathered.summary.end_seq if gathered.summary is not None and summary_msg is not None else 0
        parts["window"] = ContextPart(
            "window", window_tokens, len(window),
            {"first_seq": window[0].seq if window else None, "last_seq": window[-1].seq if window else None,
             "overlaps_summary": sum(1 for m in window if (m.seq or 0) <= covered),
             "truncated": any(m.metadata.get("memvault", {}).get("truncated") for m in window)
             if window else False},
        )
        messages = [m for m in (summary_msg, recall_msg) if m is not None] + window
        total = summary_tokens + recall_tokens + window_tokens
        if total > self.budget:  # cannot happen by construction; refuse to hand out an over-budget prompt
            raise AssertionError(f"context assembly overspent: {total} > {self.budget}")
        parts["unused"] = ContextPart("unused", self.budget - total)
        return Context(messages, total, self.budget, self.counter.name, parts, gathered.summary)


@dataclass(frozen=True)
class ContextRequest:
    """The arguments of :meth:`Memory.context`, validated."""

    namespace: str
    session_id: str
    query: str | None
    budget_tokens: int
    model: Any
    summary_share: float = 0.3
    recall_share: float = 0.25
    recall_k: int = 10

    def assembly(self, memory: Any) -> Assembly:
        check_budget(self.budget_tokens, self.summary_share, self.recall_share)
        if isinstance(self.recall_k, bool) or not isinstance(self.recall_k, int) or self.recall_k < 1:
            raise InvalidPolicy(f"recall_k must be a positive int, got {self.recall_k!r}")
        use_recall = bool(self.query) and callable(getattr(memory, "recall", None)) and self.recall_share > 0
        return Assembly(self.budget_tokens, get_counter(self.model), self.summary_share, self.recall_share,
                        use_recall)

    def recall_kwargs(self) -> dict[str, Any]:
        return {"session": self.session_id, "namespace": self.namespace, "k": self.recall_k, "degrade": True}


def _recall_failed(exc: Exception) -> None:
    logger.warning("recall failed while assembling context (%r); continuing without recalled turns", exc)


def build_context(memory: Any, request: ContextRequest) -> Context:
    """Assemble a context synchronously (see :meth:`memvault.Memory.context`)."""
    plan = request.assembly(memory)
    gathered = run_sync(memory.store, _gather_for(plan, request))
    hits = None
    if plan.use_recall:
        try:
            hits = memory.recall(request.query, **request.recall_kwargs())
        except Exception as exc:
            _recall_failed(exc)
    return plan.finish(request.session_id, gathered, hits)


async def abuild_context(memory: Any, request: ContextRequest) -> Context:
    """Async twin of :func:`build_context` (uses ``memory.arecall`` when there is one)."""
    plan = request.assembly(memory)
    gathered = await run_async(memory.store, _gather_for(plan, request))
    hits = None
    if plan.use_recall:
        try:
            arecall = getattr(memory, "arecall", None)
            if arecall is not None:
                hits = await arecall(request.query, **request.recall_kwargs())
            else:
                hits = memory.recall(request.query, **request.recall_kwargs())
        except Exception as exc:
            _recall_failed(exc)
    return plan.finish(request.session_id, gathered, hits)


def _gather_for(plan: Assembly, request: ContextRequest) -> Op[Gathered]:
    summary = yield from latest_summary(request.namespace, request.session_id)
    return (yield from gather(request.namespace, request.session_id, plan.window_budget(summary), plan.counter,
                              summary=summary))


__all__ = ["Context", "ContextPart", "ContextRequest", "abuild_context", "build_context", "drop_orphans", "gather"]
