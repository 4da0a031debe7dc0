"""Pluggable summarizers: the offline extractive default, LangChain chat models, LlamaIndex LLMs, plain callables.

A summarizer folds the previous rolling summary and ONLY the newly overflowed messages into a new summary. Framework
objects are recognised by duck typing (``.invoke(messages).content`` for LangChain chat models,
``.complete(prompt).text`` for LlamaIndex LLMs), so the core never imports a framework.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from memvault.compression.tokens import TokenCounter, get_counter
from memvault.errors import InvalidPolicy
from memvault.model import Message

DEFAULT_PROMPT = """You maintain a running summary of a conversation between a user and an AI assistant.
Fold the new messages into the previous summary. Keep every name, number, date, decision, preference, commitment
and open question; drop greetings and small talk. Write short factual sentences, at most {max_words} words.

Previous summary:
{previous}

New messages:
{messages}

Updated summary:"""

_PLACEHOLDERS = ("{previous}", "{messages}")


@runtime_checkable
class Summarizer(Protocol):
    """``summarize(previous, messages)`` -> the new summary text. ``id`` names it in stored summaries."""

    id: str

    def summarize(self, previous: str | None, messages: Sequence[Message]) -> str: ...


def format_transcript(messages: Sequence[Message]) -> str:
    """Messages as ``[date] speaker: text`` lines (tool calls shown by name, tool results by their text)."""
    lines = []
    for message in messages:
        speaker = message.name or message.role
        text = message.text.strip()
        if message.tool_calls:
            names = ", ".join(str(c.get("name") or c.get("function", {}).get("name") or "tool") for c in message.tool_calls)
            text = f"{text} [calls {names}]".strip()
        lines.append(f"[{message.created_at.date().isoformat()}] {speaker}: {text}")
    return "\n".join(lines)


def check_prompt(prompt: str) -> str:
    missing = [p for p in _PLACEHOLDERS if p not in prompt]
    if missing:
        raise InvalidPolicy(f"summary prompt must contain {' and '.join(missing)} (and may use {{max_words}})")
    return prompt


def render_prompt(prompt: str, previous: str | None, messages: Sequence[Message], max_words: int) -> str:
    return (
        prompt.replace("{previous}", previous or "(none yet)")
        .replace("{messages}", format_transcript(messages))
        .replace("{max_words}", str(max_words))
    )


def _text_of(result: Any) -> str:
    """The text of an LLM answer: a str, LangChain ``.content`` (str or blocks), LlamaIndex ``.text``/``.message``."""
    if isinstance(result, str):
        return result
    content = getattr(result, "content", None)
    if content is None and getattr(result, "message", None) is not None:
        content = getattr(result.message, "content", None)
    if content is None:
        content = getattr(result, "text", None)
    if isinstance(content, list):
        content = "\n".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if b)
    if not isinstance(content, str):
        raise TypeError(f"summarizer returned {type(result).__name__}, not text")
    return content


@dataclass
class PromptSummarizer:
    """Summarizes with an LLM through a prompt. ``call(prompt) -> text``; ``acall`` is used by async callers."""

    call: Callable[[str], Any]
    id: str
    prompt: str = DEFAULT_PROMPT
    max_words: int = 250
    acall: Callable[[str], Any] | None = None

    def render(self, previous: str | None, messages: Sequence[Message]) -> str:
        return render_prompt(self.prompt, previous, messages, self.max_words)

    def summarize(self, previous: str | None, messages: Sequence[Message]) -> str:
        return _text_of(self.call(self.render(previous, messages))).strip()

    async def asummarize(self, previous: str | None, messages: Sequence[Message]) -> str:
        if self.acall is None:
            raise TypeError("no async call")
        return _text_of(await self.acall(self.render(previous, messages))).strip()


# -- the offline default ------------------------------------------------------------------------------------------

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_DATE = re.compile(
    rf"\b(?:{_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow|yesterday|"
    r"tonight|weekend|last (?:week|month|year|night)|next (?:week|month|year)|ago)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|hundred|thousand)\b", re.I)
_DECISION = re.compile(
    r"\b(?:decid\w*|agree\w*|plan\w*|will|going to|gonna|chose|choose|pick\w*|book\w*|schedul\w*|promis\w*|"
    r"must|need to|let's|deadline|remind\w*|bought|started|joined|moved|adopt\w*|signed up)\b",
    re.IGNORECASE,
)
_PREFERENCE = re.compile(
    r"\b(?:like[sd]?|love[sd]?|prefer\w*|favou?rite|hate[sd]?|enjoy\w*|want\w*|wish\w*|allergic|"
    r"can't stand|dislike\w*|passion\w*|dream\w*|fan of|into)\b",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(r"^(?:hi|hey|hello|thanks|thank you|wow|cool|great|nice|ok|okay|sure|bye)\b[\s!.,]*$", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])|\n+")
_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*")
_COMMON_CAPS = frozenset({"I", "I'm", "I've", "I'll", "I'd", "The", "This", "That", "It", "My", "We", "You", "Oh"})


def sentence_score(sentence: str) -> float:
    """How much a sentence carries: names, numbers, dates, decisions and preferences each add weight."""
    if len(sentence) < 12 or _SMALL_TALK.match(sentence):
        return 0.0
    score = 0.0
    names = [w for w in _WORDS.findall(sentence)[1:] if w[0].isupper() and w not in _COMMON_CAPS]
    score += min(len(names), 2) * 1.0
    score += 1.5 if _NUMBER.search(sentence) else 0.0
    score += 1.5 if _DATE.search(sentence) else 0.0
    score += 1.2 if _DECISION.search(sentence) else 0.0
    score += 1.2 if _PREFERENCE.search(sentence) else 0.0
    return score


@dataclass
class ExtractiveSummarizer:
    """The offline default: keeps the sentences that carry names, numbers, dates, decisions and preferences.

    Output is grouped by day: a ``[YYYY-MM-DD]`` line, then one ``speaker: sentence`` line per kept sentence (the
    date is written once per day, not per line, to save tokens). Folding merges the previous summary's lines with
    the new ones; when the result would exceed ``max_tokens`` the lowest-scoring lines go first (older before newer
    on ties) and the survivors keep their chronological order.
    """

    max_tokens: int = 600
    min_score: float = 1.0
    counter: TokenCounter | None = None
    id: str = "extractive-v1"

    def summarize(self, previous: str | None, messages: Sequence[Message]) -> str:
        counter = self.counter or get_counter(None)
        items = self.parse(previous or "")
        seen = {self._norm(line) for _, line in items}
        for message in messages:
            if message.role in ("system", "tool"):
                continue
            speaker = message.name or message.role
            day = message.created_at.date().isoformat()
            for sentence in _SENTENCE.split(message.text):
                sentence = " ".join(sentence.split())
                if sentence_score(sentence) < self.min_score:
                    continue
                line = f"{speaker}: {sentence}"
                norm = self._norm(line)
                if norm not in seen:
                    seen.add(norm)
                    items.append((day, line))
        return self._fit(items, counter)

    @staticmethod
    def parse(text: str) -> list[tuple[str, str]]:
        """``(day, "speaker: sentence")`` items of a summary this class wrote (other lines keep the last day)."""
        items: list[tuple[str, str]] = []
        day = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            if line.startswith("[") and line.endswith("]") and len(line) <= 40:
                day = line[1:-1]
                continue
            items.append((day, line))
        return items

    @staticmethod
    def render(items: Sequence[tuple[str, str]]) -> str:
        out: list[str] = []
        day = None
        for item_day, line in items:
            if item_day != day:
                day = item_day
                if day:
                    out.append(f"[{day}]")
            out.append(line)
        return "\n".join(out)

    @staticmethod
    def _norm(line: str) -> str:
        body = line.split(": ", 1)[-1]
        return re.sub(r"\W+", " ", body).strip().lower()

    def _fit(self, items: list[tuple[str, str]], counter: TokenCounter) -> str:
        text = self.render(items)
        if counter.count(text) <= self.max_tokens:
            return text
        costs = [counter.count(line) + 1 for _, line in items]
        days = {day for day, _ in items}
        total = sum(costs) + 6 * len(days)  # about 6 tokens per date line
        order = sorted(range(len(items)), key=lambda i: (sentence_score(items[i][1].split(": ", 1)[-1]), i))
        dropped: set[int] = set()
        for i in order:
            if total <= self.max_tokens:
                break
            dropped.add(i)
            total -= costs[i]
        kept = [item for i, item in enumerate(items) if i not in dropped]
        text = self.render(kept)
        while kept and counter.count(text) > self.max_tokens:  # date lines were estimated: trim the weakest
            weakest = min(range(len(kept)), key=lambda i: (sentence_score(kept[i][1].split(": ", 1)[-1]), i))
            kept.pop(weakest)
            text = self.render(kept)
        return text


# -- adapting what the user passes --------------------------------------------------------------------------------


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def as_summarizer(obj: Any = None, *, prompt: str | None = None, max_words: int = 250) -> Summarizer:
    """Turn ``obj`` into a :class:`Summarizer`.

    - None or ``"extractive"``: the offline :class:`ExtractiveSummarizer`.
    - A Summarizer (has ``summarize(previous, messages)``): used as is.
    - A LangChain chat model (``invoke``/``ainvoke``): sent ``[system: prompt]`` and its ``.content`` is the summary.
    - A LlamaIndex LLM (``complete``/``acomplete``): sent the prompt; its ``.text`` is the summary.
    - A plain callable ``fn(prompt) -> str`` (or ``fn(previous, messages) -> str`` if it takes two arguments).
    """
    if prompt is not None:
        check_prompt(prompt)
    if obj is None or obj == "extractive":
        return ExtractiveSummarizer()
    if isinstance(obj, Summarizer) and not hasattr(obj, "invoke"):
        return obj
    text_prompt = prompt or DEFAULT_PROMPT
    kind = type(obj).__name__
    if hasattr(obj, "invoke") and callable(obj.invoke):
        chat = obj

        def call(text: str) -> Any:
            return chat.invoke([{"role": "user", "content": text}])

        acall = None
        if hasattr(chat, "ainvoke"):

            async def acall(text: str) -> Any:
                return await chat.ainvoke([{"role": "user", "content": text}])

        model = getattr(chat, "model_name", None) or getattr(chat, "model", None) or kind
        return PromptSummarizer(call, f"langchain:{model}", text_prompt, max_words, acall)
    if hasattr(obj, "complete") and callable(obj.complete):
        llm = obj
        acomplete = None
        if hasattr(llm, "acomplete"):

            async def acomplete(text: str) -> Any:
                return await llm.acomplete(text)

        model = getattr(getattr(llm, "metadata", None), "model_name", None) or getattr(llm, "model", None) or kind
        return PromptSummarizer(lambda text: llm.complete(text), f"llamaindex:{model}", text_prompt, max_words,
                                acomplete)
    if callable(obj):
        name = getattr(obj, "__qualname__", kind)
        if _positional_arity(obj) >= 2:
            return _Callable2(obj, f"callable:{name}")
        return PromptSummarizer(obj, f"callable:{name}", text_prompt, max_words)
    raise InvalidPolicy(
        f"cannot summarize with a {kind}: pass a LangChain chat model, a LlamaIndex LLM, a callable "
        "fn(prompt) -> str, an object with summarize(previous, messages), or None for the offline default"
    )


@dataclass
class _Callable2:
    fn: Callable[[str | None, Sequence[Message]], Any]
    id: str

    def summarize(self, previous: str | None, messages: Sequence[Message]) -> str:
        return _text_of(self.fn(previous, list(messages))).strip()


__all__ = [
    "DEFAULT_PROMPT",
    "ExtractiveSummarizer",
    "PromptSummarizer",
    "Summarizer",
    "as_summarizer",
    "format_transcript",
    "sentence_score",
]
