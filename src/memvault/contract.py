"""The ONE storage contract every backend implements, and the small helpers backends share.

A backend is a synchronous :class:`Store`. Its asynchronous face is ``store.aio``, an :class:`AsyncStore` with the
same methods as coroutines: by default :class:`ThreadedAsyncStore` (each call in a worker thread); a backend with a
native async client (Redis, PostgreSQL) returns its own (:mod:`memvault.faces`). Services above the contract are
written once, as generators of :class:`~memvault.drive.Call` s, and run by a sync or an async driver
(:mod:`memvault.drive`), so no logic exists twice.

Semantics every backend must honour (the conformance suite in ``tests/conformance`` and the installable kit
:mod:`memvault.testing.conformance` check each; ``docs/custom-backend.md`` shows a new backend passing it):

- Sessions are keyed by ``(namespace, session_id)``; nothing leaks across namespaces.
- ``append`` is atomic for the whole batch, assigns ``seq`` = last_seq + 1, + 2, ... (strictly increasing per
  session, never reused, also across ``clear``), and is idempotent on message id: a record whose id is already in
  the session is not stored again and its existing seq is returned (this makes retries and spool replays safe).
- A session whose ``expires_at`` is in the past (by the store's clock) is invisible to every read and listing; a
  write to it starts a fresh session. ``purge_expired`` removes such sessions for good.
- Every write pushes ``expires_at`` to now + ttl (sliding TTL); ``ttl=None`` means never.
- ``max_messages`` trims the oldest messages in the same transaction as the append.
- Reads never load the whole session: ``last=N`` and seq ranges touch only what they return.
- Entries are a session's ordered binary key-value space, by ``kind``: keys sort as UTF-8 bytes (= code points),
  ``put_entries`` is atomic for the whole batch (also across kinds), ``if_absent`` never overwrites. Checkpoints,
  documents, state versions and artifact chunks are entries.
- ``update_metadata`` is one atomic read-modify-write of the session's metadata (two concurrent merges of
  different keys both land).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from memvault.cursors import decode_cursor, encode_cursor
from memvault.errors import UnsupportedOperation
from memvault.model import Message, Page, Record, SessionInfo
from memvault.validation import check_limit, metadata_matches

if TYPE_CHECKING:
    from memvault.faces import AsyncStore

Clock = Callable[[], float]
DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_PAGE = 1000


@dataclass(frozen=True)
class AppendOptions:
    """How a write treats its session: fields used when the session is created, TTL and cap applied on every write."""

    user_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    ttl: float | None = None
    max_messages: int | None = None


@dataclass(frozen=True)
class SessionQuery:
    """A filter over sessions of one namespace, ordered by ``updated_at`` newest first."""

    namespace: str
    user_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    updated_after: float | None = None
    updated_before: float | None = None
    limit: int = 50
    cursor: str | None = None


class Entry(NamedTuple):
    """One entry of a session's ordered binary key-value space: ``kind`` groups entries, ``key`` orders them."""

    kind: str
    key: str
    value: bytes


class Rewrite(NamedTuple):
    """One in-place change for :meth:`Store.rewrite`. ``space`` "message": ``key`` is the message id, ``old`` its
    seq, ``new`` its new body (str); "record": ``old`` / ``new`` are the record's data as read / to write (dicts);
    "entry": ``old`` / ``new`` are the entry's value as read / to write (bytes). ``kind`` is "" for messages."""

    space: str
    kind: str
    key: str
    old: Any
    new: Any


class Store(ABC):
    """The storage contract. Arguments ``ns`` and ``sid`` are already validated by the caller."""

    backend: ClassVar[str] = "abstract"
    #: optional features a backend offers natively, e.g. {"fulltext", "vector", "native_async"}
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: default sliding TTL in seconds when the user gives none (None = sessions never expire)
    default_ttl: ClassVar[float | None] = None
    #: the native recall engine this store offers (a name in ``memvault.recall.service.ENGINES``); None: the
    #: in-process engine, which works on every store
    recall_engine: str | None = None
    #: every use goes through one connection the caller holds too (a psycopg connection given to the store):
    #: work in a background thread would interleave with the caller's own transactions, so services run it inline
    shared_connection: bool = False

    def __init__(self, *, clock: Clock | None = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.clock: Clock = clock or time.time
        self.max_message_bytes = max_message_bytes
        self._aio: AsyncStore | None = None

    @property
    def url(self) -> str:
        """The store's URL with any password masked."""
        return f"{self.backend}://"

    @property
    def aio(self) -> AsyncStore:
        """The asynchronous face of this store (same method names, as coroutines)."""
        if self._aio is None:
            from memvault.faces import ThreadedAsyncStore

            self._aio = ThreadedAsyncStore(self)
        return self._aio

    # -- sessions ------------------------------------------------------------------------------------------------
    @abstractmethod
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        """The session, or None when it does not exist or has expired."""

    @abstractmethod
    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        """Get-or-create (an expired session is replaced by a fresh one)."""

    @abstractmethod
    def delete_session(self, ns: str, sid: str) -> bool:
        """Remove the session with its messages and records; True if it existed."""

    @abstractmethod
    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        """A page of live sessions matching ``query``, newest ``updated_at`` first."""

    @abstractmethod
    def purge_expired(self) -> int:
        """Remove every expired session; return how many."""

    @abstractmethod
    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        """Atomically set the live session's metadata to ``metadata`` (``replace``) or to its current metadata with
        ``metadata``'s top-level keys set (merge: existing keys keep their place, new ones come last; see
        :func:`memvault.validation.merge_session_metadata`). ``updated_at`` moves to now; the TTL is left as it
        is. SessionNotFound when the session does not exist or has expired; InvalidMetadata (nothing changed) when
        the result would exceed the session metadata limit. Returns the updated info."""

    # -- messages ------------------------------------------------------------------------------------------------
    @abstractmethod
    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        """Atomically add ``records`` (creating the session if needed); return their seqs in order."""

    @abstractmethod
    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        """Atomically swap every message of the session for ``records`` (new seqs, continuing the sequence)."""

    @abstractmethod
    def read(
        self,
        ns: str,
        sid: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """Messages with ``start <= seq < stop`` in seq order; ``last`` keeps the newest N of them, ``limit`` the
        first N. Must not read more of the session than it returns."""

    @abstractmethod
    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        """The messages with these ids (those that exist), in seq order."""

    @abstractmethod
    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        """Delete messages by id; return how many were deleted. Remaining order and seqs are kept."""

    @abstractmethod
    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        """Atomically delete and return messages, in seq order: up to ``count`` starting at position ``index`` of
        the session's seq-ordered messages (``index`` < 0 counts from the end, as in Python; [] when there is no
        such position), or those of ``ids`` that exist. Exactly one of ``index`` / ``ids`` is given. Two concurrent
        pops never return the same message: what one returns, it alone deleted."""

    def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        """Maintenance (``memvault rekey``): change payloads in place, each only while it is still what was read
        (compare-and-set, so a concurrent writer's newer value is never overwritten). Each change is atomic on its
        own (the batch is not all-or-nothing); seqs, order, ``updated_at`` and the TTL are left as they are; what
        a backend derives from a message body (keyword index, metadata columns, sizes) follows the new body.
        Returns how many changes were made. Optional: the default raises UnsupportedOperation."""
        raise UnsupportedOperation(f"the {self.backend} backend cannot rewrite payloads in place")

    @abstractmethod
    def count(self, ns: str, sid: str) -> int:
        """Number of messages in the session (0 when it does not exist)."""

    @abstractmethod
    def clear(self, ns: str, sid: str) -> int:
        """Delete all messages and records of the session but keep the session and its seq counter."""

    # -- records: summaries, state, artifacts (JSON objects keyed by (kind, key) within a session) ------------------
    @abstractmethod
    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        """Insert or replace one record. The session must exist (call ensure_session first)."""

    @abstractmethod
    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Records of ``kind`` ordered by key; only ``keys`` if given; only the greatest ``last`` keys if given."""

    @abstractmethod
    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        """Delete records of ``kind`` (all of them when ``keys`` is None); return how many."""

    # -- entries: a session's ordered binary key-value space (checkpoints, documents, state, artifact chunks) ------
    @abstractmethod
    def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        """Write ``entries`` atomically, creating the session if needed (a write: it slides the TTL). With
        ``if_absent`` an entry whose (kind, key) exists is left as it is. Returns, per entry, whether it was
        written. A key repeated in the batch: the last one wins (with ``if_absent``: the first)."""

    def append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> list[int]:
        """Append ``records`` and write ``entries`` (as :meth:`put_entries`) in one atomic write; return the seqs
        of the records. Backends override this to commit once; this default appends, then writes the entries
        (interrupted in between, only the messages are stored: entries that refer to messages stay consistent)."""
        seqs = self.append(ns, sid, records, options) if records else []
        self.put_entries(ns, sid, entries, options)
        return seqs

    @abstractmethod
    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        """The values of those ``keys`` of ``kind`` that exist."""

    @abstractmethod
    def scan_entries(
        self,
        ns: str,
        sid: str,
        kind: str,
        *,
        start: str | None = None,
        stop: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
        keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        """Entries of ``kind`` with ``start <= key < stop``, in key order (``reverse``: descending), at most
        ``limit``; with ``keys_only`` the values are ``b""``. Reads only what it returns (an index range)."""

    @abstractmethod
    def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        """Delete the ``keys`` of ``kind`` (or, with no keys, those with ``start <= key < stop``: all when both
        are None); returns how many were deleted."""

    def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        """The kinds the live session holds: ``{"records": [...], "entries": [...]}``, each sorted (maintenance:
        ``memvault rekey`` visits every payload). Optional: the default raises UnsupportedOperation."""
        raise UnsupportedOperation(f"the {self.backend} backend cannot list a session's kinds")

    def scrub_clear_index(self) -> list[str]:
        """Drop what the backend derived from message text in clear for its own search (keyword index, vectors,
        index files), after the messages were encrypted in place (``memvault rekey``); returns what was dropped.
        A backend that keeps nothing derived does nothing (the default)."""
        return []

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise BackendUnavailable when the backend cannot be reached."""

    def stats(self) -> dict[str, Any]:
        """Backend facts for ``memvault doctor``: schema version, counts, paths. Cheap to compute."""
        return {"backend": self.backend, "url": self.url}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files. Idempotent."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


# -- helpers shared by backends -----------------------------------------------------------------------------------


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """``(start, stop)`` of the keys that begin with ``prefix`` (stop None: to the end)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1])
        if code < 0x10FFFF:
            chars[-1] = chr(0xE000 if code == 0xD7FF else code + 1)  # skip the surrogates no valid key holds
            return prefix, "".join(chars)
        chars.pop()
    return prefix, None


def in_range(key: str, start: str | None, stop: str | None) -> bool:
    return (start is None or key >= start) and (stop is None or key < stop)


def pop_range(size: int, index: int, count: int) -> tuple[int, int] | None:
    """The positions ``[start, stop)`` that ``pop_messages(index=, count=)`` removes from ``size`` messages."""
    start = index + size if index < 0 else index
    if count < 1 or start < 0 or start >= size:
        return None
    return start, min(start + count, size)


def session_matches(info: SessionInfo, query: SessionQuery) -> bool:
    """The in-process twin of a backend's listing WHERE clause (for backends without a query engine)."""
    updated = info.updated_at.timestamp()
    if query.user_id is not None and info.user_id != query.user_id:
        return False
    if query.updated_after is not None and updated < query.updated_after:
        return False
    if query.updated_before is not None and updated >= query.updated_before:
        return False
    return metadata_matches(info.metadata, query.metadata)


def after_cursor(info: SessionInfo, cursor: tuple[float, str] | None) -> bool:
    """True when ``info`` comes after ``cursor`` in (updated_at desc, id desc) order."""
    if cursor is None:
        return True
    updated, sid = cursor
    key = info.updated_at.timestamp()
    return key < updated or (key == updated and info.id < sid)


def page_of(infos: Sequence[SessionInfo], query: SessionQuery) -> Page[SessionInfo]:
    """Sort, apply the cursor and cut one page, for backends that filter in process."""
    limit = check_limit(query.limit, maximum=MAX_PAGE)
    cursor = decode_cursor(query.cursor, float, str) if query.cursor else None
    ordered = sorted(
        (i for i in infos if after_cursor(i, cursor)),
        key=lambda i: (i.updated_at.timestamp(), i.id),
        reverse=True,
    )
    items = ordered[:limit]
    next_cursor = None
    if len(ordered) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last.updated_at.timestamp(), last.id)
    return Page(items, next_cursor)
