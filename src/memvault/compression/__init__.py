"""Summary compression and token-budgeted context assembly (see docs/compression.md)."""

from memvault.compression.context import Context, ContextPart
from memvault.compression.policy import CompressionPolicy, RetentionPolicy
from memvault.compression.summaries import Summary
from memvault.compression.summarizers import DEFAULT_PROMPT, ExtractiveSummarizer, Summarizer, as_summarizer
from memvault.compression.tokens import ApproxCounter, TokenCounter, encoding_for_model, get_counter

__all__ = [
    "DEFAULT_PROMPT",
    "ApproxCounter",
    "CompressionPolicy",
    "Context",
    "ContextPart",
    "ExtractiveSummarizer",
    "RetentionPolicy",
    "Summarizer",
    "Summary",
    "TokenCounter",
    "as_summarizer",
    "encoding_for_model",
    "get_counter",
]
