"""What gets indexed for a message, and how text becomes keyword terms (unicode words, stop words out, stemmed).

Speaker and date are indexed with the text because questions name people and times ("when did Mel ...") that the
turn itself rarely repeats; measured on LoCoMo this lifts dense recall by about half (see docs/recall.md).
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import snowballstemmer

_WORD = re.compile(r"\w+", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("english")

STOP_WORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "s", "t", "d", "ll", "m", "re", "ve"]
)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return _STEMMER.stemWord(word)


def terms(text: str) -> list[str]:
    """Keyword terms of ``text``: lower-cased unicode words without stop words, Snowball-stemmed."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def day_text(when: datetime) -> str:
    return f"{when.day} {when:%B %Y}"


def message_text(message: Any) -> str:
    """The plain text of a message or document (content blocks joined)."""
    text = getattr(message, "text", None)
    return text if isinstance(text, str) else str(message)


def index_text(message: Any, *, context: bool = True) -> str:
    """The text indexed for a conversation message: ``[date] speaker: text`` (context off for documents)."""
    body = message_text(message)
    if not context:
        return body
    speaker = message.name or message.role
    return f"[{day_text(message.created_at)}] {speaker}: {body}"
