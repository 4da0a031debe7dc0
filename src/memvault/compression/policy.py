"""What a session's compression does and when: trigger, verbatim window, summarizer, timeout, retention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memvault.errors import InvalidPolicy
from memvault.validation import check_text


def _positive(name: str, value: Any, *, allow_none: bool = True, real: bool = False) -> None:
    if value is None and allow_none:
        return
    kinds = (int, float) if real else (int,)
    limit = 1e10 if real else 2**63 - 1
    if (isinstance(value, bool) or not isinstance(value, kinds) or not value > 0 or not value <= limit):
        raise InvalidPolicy(f"{name} must be a positive {'number' if real else 'int'}{' or None' if allow_none else ''},"
                            f" got {str(value)[:40]!r}")


@dataclass(frozen=True)
class RetentionPolicy:
    """What happens to raw messages once a summary covers them. By default (no policy) they stay stored forever.

    ``delete_after_days``: delete raw messages that a stored summary covers AND that are older than this many days
    (by ``created_at`` and the store's clock). Messages not yet summarized are never deleted by retention.
    """

    delete_after_days: float | None = None
    batch: int = 500

    def __post_init__(self) -> None:
        _positive("delete_after_days", self.delete_after_days, real=True)
        _positive("batch", self.batch, allow_none=False)


@dataclass(frozen=True)
class CompressionPolicy:
    """When and how a session folds older messages into a rolling summary.

    Compression runs when the not-yet-summarized messages exceed ``trigger_tokens`` tokens or ``trigger_messages``
    messages. The newest messages that fit in ``keep_messages`` / ``keep_tokens`` stay verbatim; the older span
    (at most ``max_fold_messages`` per run) is folded with the previous summary into a new one. Raw messages stay
    stored unless ``retention`` says otherwise.

    ``summarizer``: None (offline extractive), a LangChain chat model, a LlamaIndex LLM, a callable, or a Summarizer;
    ``prompt`` overrides the LLM prompt (must hold ``{previous}`` and ``{messages}``). ``model`` picks the token
    encoding. ``timeout`` (seconds) bounds one summarizer call. ``background=True`` runs compression off the
    writing call (a worker thread, or a task under asyncio).
    """

    trigger_tokens: int | None = 3000
    trigger_messages: int | None = None
    keep_tokens: int | None = 1000
    keep_messages: int | None = None
    summarizer: Any = None
    prompt: str | None = None
    model: str | None = None
    timeout: float | None = 60.0
    background: bool = False
    max_fold_messages: int = 400
    retention: RetentionPolicy | None = None

    def __post_init__(self) -> None:
        if self.trigger_tokens is None and self.trigger_messages is None:
            raise InvalidPolicy("set trigger_tokens or trigger_messages (when to compress)")
        if self.keep_tokens is None and self.keep_messages is None:
            raise InvalidPolicy("set keep_tokens or keep_messages (how much recent history stays verbatim)")
        _positive("trigger_tokens", self.trigger_tokens)
        _positive("trigger_messages", self.trigger_messages)
        _positive("keep_tokens", self.keep_tokens)
        _positive("keep_messages", self.keep_messages)
        _positive("timeout", self.timeout, real=True)
        _positive("max_fold_messages", self.max_fold_messages, allow_none=False)
        if self.retention is not None and not isinstance(self.retention, RetentionPolicy):
            raise InvalidPolicy("retention must be a RetentionPolicy")
        if self.prompt is not None:
            check_text(self.prompt, "prompt", error=InvalidPolicy)
        from memvault.compression.tokens import check_model

        check_model(self.model)
        if not isinstance(self.background, bool):
            raise InvalidPolicy(f"background must be True or False, got {self.background!r}")


__all__ = ["CompressionPolicy", "RetentionPolicy"]
