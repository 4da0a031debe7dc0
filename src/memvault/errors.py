"""Typed errors raised by memvault. Every message says what went wrong and what to do about it."""

from __future__ import annotations


class MemvaultError(Exception):
    """Base class of every error memvault raises on purpose."""


class InvalidSessionId(MemvaultError, ValueError):
    """A session id, namespace or user id is empty, too long or holds control characters."""


class InvalidMessage(MemvaultError, ValueError):
    """A message cannot be stored: unknown role, non-JSON metadata, non-UTF-8 text, ..."""


class InvalidMetadata(InvalidMessage):
    """Session or message metadata is not storable: not a dict, non-str keys, NaN, too deep or too large, ..."""


class MessageTooLarge(InvalidMessage):
    """A message's encoding is larger than the store's ``max_message_bytes``."""


class InvalidFilter(MemvaultError, ValueError):
    """A query filter uses an unknown key or operator, or a value of the wrong type."""


class InvalidURL(MemvaultError, ValueError):
    """A backend URL has an unknown scheme or cannot be parsed."""


class InvalidCursor(MemvaultError, ValueError):
    """A pagination cursor was not produced by this store or has been tampered with."""


class SessionNotFound(MemvaultError, LookupError):
    """The session does not exist (or has expired)."""


class CorruptData(MemvaultError):
    """Stored data cannot be decoded. ``path`` names the file when there is one."""

    def __init__(self, message: str, *, path: str | None = None, moved_to: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.moved_to = moved_to


class BackendUnavailable(MemvaultError, ConnectionError):
    """The backend cannot be reached. The URL in the message has its password masked."""


class SchemaVersionError(MemvaultError):
    """The store was written by a newer memvault than this one: upgrade memvault."""


class UnsupportedOperation(MemvaultError, NotImplementedError):
    """The backend does not offer this operation."""


class InvalidPolicy(MemvaultError, ValueError):
    """A compression or retention policy, summarizer, prompt or token budget is not usable as given."""


class SummarizerFailed(MemvaultError):
    """The summarizer raised or timed out; nothing was lost (the messages stay raw) and it is retried later."""


class InvalidEmbedder(MemvaultError, ValueError):
    """``embedder=`` is not an embedder: not 'default', 'hash[-N]', an Embedder or a framework embeddings object."""


class EmbeddingModelMismatch(MemvaultError):
    """Stored vectors were made by another embedding model than the one in use: run ``mem.reindex()``."""


class StateConflict(MemvaultError):
    """``session.state.set(..., expected_version=N)`` lost a race: the state is no longer at version N (nothing
    was changed). Read it again, or use ``session.state.update(fn)``, which retries."""

    def __init__(self, message: str, *, expected: int | None = None, current: int | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.current = current


class InvalidArtifact(MemvaultError, ValueError):
    """An artifact name, URL, content type or source is not usable (``..`` components, absolute paths, control
    characters, a str instead of bytes, ...). Nothing is stored."""


class ArtifactTooLarge(InvalidArtifact):
    """An artifact is larger than ``Memory(max_artifact_bytes=...)``; nothing of it is kept."""


class ArtifactNotFound(MemvaultError, LookupError):
    """No such artifact (or version) in this session, or its URL belongs to another namespace."""


class EncryptionError(MemvaultError):
    """Base of the encryption-at-rest errors (``Memory(url, encryption=...)``). Nothing is changed when raised."""


class InvalidEncryptionKey(EncryptionError, ValueError):
    """An ``encryption=`` value is not a usable key: 32 bytes, their base64 or hex, ``env:NAME``, ``file:PATH``, a
    list of those (the first encrypts, all decrypt) or a key provider."""


class EncryptionKeyMissing(EncryptionError):
    """The store holds encrypted data and this Memory was opened without a key: pass ``encryption=<key>``."""


class WrongEncryptionKey(EncryptionError):
    """The data was encrypted with a key this Memory does not hold (its key id is in the message). Pass that key,
    e.g. as an old key during rotation: ``encryption=[new_key, old_key]``."""


class CodecUnavailable(MemvaultError):
    """A payload is compressed with a codec whose package is not installed (zstd: ``pip install
    'memvault[zstd]'``), or ``compression=`` names an unknown codec."""


__all__ = [
    "ArtifactNotFound",
    "ArtifactTooLarge",
    "BackendUnavailable",
    "CodecUnavailable",
    "CorruptData",
    "EmbeddingModelMismatch",
    "EncryptionError",
    "EncryptionKeyMissing",
    "InvalidArtifact",
    "InvalidCursor",
    "InvalidEmbedder",
    "InvalidEncryptionKey",
    "InvalidFilter",
    "InvalidMessage",
    "InvalidMetadata",
    "InvalidPolicy",
    "InvalidSessionId",
    "InvalidURL",
    "MemvaultError",
    "MessageTooLarge",
    "SchemaVersionError",
    "SessionNotFound",
    "StateConflict",
    "SummarizerFailed",
    "UnsupportedOperation",
    "WrongEncryptionKey",
]
