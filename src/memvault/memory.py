"""The public face: :class:`Memory` (a store plus defaults) and :class:`Session` (a handle on one conversation).

Each operation is written once as a generator of store calls (see :mod:`memvault.drive`) and exposed twice: a
plain method and an ``a``-prefixed coroutine twin.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memvault.artifacts import DEFAULT_MAX_BYTES as DEFAULT_MAX_ARTIFACT_BYTES
from memvault.artifacts import ArtifactReader, AsyncArtifactReader, SessionArtifacts, parse_artifact_url
from memvault.codecs.envelope import raw_envelopes
from memvault.codecs.payload import DEFAULT_THRESHOLD as DEFAULT_COMPRESSION_THRESHOLD
from memvault.codecs.store import install as install_codecs
from memvault.contract import MAX_PAGE, AppendOptions, SessionQuery, Store
from memvault.drive import Call, Emit, Op, iter_async, iter_sync, run_async, run_sync
from memvault.errors import (
    ArtifactNotFound,
    EmbeddingModelMismatch,
    EncryptionKeyMissing,
    InvalidFilter,
    InvalidMessage,
    InvalidMetadata,
    InvalidPolicy,
    InvalidSessionId,
    SessionNotFound,
)
from memvault.history import HistoryCache, core_cache
from memvault.model import (
    DEFAULT_NAMESPACE,
    Content,
    Message,
    Page,
    Record,
    SessionInfo,
    encode_body,
    encode_line,
    parse_export,
    session_header,
    with_seq,
)
from memvault.registry import open_store
from memvault.state import DEFAULT_HISTORY, SessionState, check_history
from memvault.validation import (
    MAX_K,
    check_cursor,
    check_ids,
    check_int,
    check_limit,
    check_max_messages,
    check_metadata_filter,
    check_non_negative,
    check_session_metadata,
    check_text,
    check_time,
    check_ttl,
    validate_id,
    validate_namespace,
)

if TYPE_CHECKING:
    from memvault.codecs.rekey import RekeyJob, RekeyReport
    from memvault.compression.compressor import Compressor
    from memvault.compression.context import Context, ContextRequest
    from memvault.compression.policy import CompressionPolicy
    from memvault.compression.summaries import Summary
    from memvault.recall.collections import Collection
    from memvault.recall.service import RecallService
    from memvault.recall.types import Hit, IndexStatus

#: ``hook(event, namespace, session_id, payload)``, run after each successful write
WriteHook = Callable[[str, str, str, Any], None]
logger = logging.getLogger("memvault")
_DEFAULT: Any = object()  # "use the store's default" (distinct from None, which means "never")
EXPORT_PAGE = 500


def _as_message(item: Message | Mapping[str, Any]) -> Message:
    if isinstance(item, Message):
        return item
    if isinstance(item, Mapping):
        try:
            return Message(**item)
        except TypeError as exc:
            raise InvalidMessage(f"cannot build a Message from {sorted(item)}: {exc}") from None
    raise InvalidMessage(f"expected a Message or a dict, got {type(item).__name__}")


class Memory:
    """Persistent agent memory over one store.

    ``Memory()`` uses the embedded default (SQLite under ``~/.memvault``, or ``MEMVAULT_URL``);
    ``Memory("redis://…")``, ``Memory("postgresql://…")``, ``Memory("file:///dir")``, ``Memory("memory://")`` pick a
    backend; an existing Store or client object works too. ``namespace`` is the tenant every handle defaults to;
    ``ttl`` (seconds, None = never) and ``max_messages`` are the defaults for sessions opened from this Memory.
    ``clock`` (epoch seconds) is injectable for tests. ``encryption`` (a key, a list of keys - the first
    encrypts, all decrypt - or a key provider) encrypts every payload at rest; ``compression`` ("zstd", "gzip")
    compresses payloads of at least ``compression_threshold`` bytes (docs/encryption.md). Other keyword options
    go to the backend.
    """

    def __init__(
        self,
        url: str | Store | Any | None = None,
        *,
        namespace: str | None = None,
        ttl: float | None = _DEFAULT,
        max_messages: int | None = None,
        clock: Any = None,
        embedder: Any = "default",
        state_history: int | None = DEFAULT_HISTORY,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        encryption: Any = None,
        compression: str | None = None,
        compression_threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
        **options: Any,
    ) -> None:
        if clock is not None:
            options["clock"] = clock
        self.namespace = DEFAULT_NAMESPACE if namespace is None else validate_namespace(namespace)
        chosen_ttl = None if ttl is _DEFAULT else check_ttl(ttl)
        self.max_messages = check_max_messages(max_messages)
        #: versions of a session's state kept in its history (None: all); the largest artifact a save accepts
        self.state_history = check_history(state_history)
        self.max_artifact_bytes = check_int(max_artifact_bytes, "max_artifact_bytes")
        self.store: Store = install_codecs(open_store(url, **options), encryption, compression,
                                           threshold=check_int(compression_threshold, "compression_threshold"))
        self.ttl: float | None = self.store.default_ttl if ttl is _DEFAULT else chosen_ttl
        self._closed = False
        #: callables ``hook(event, namespace, session_id, payload)`` run after each successful write; services
        #: (the recall indexer) subscribe here instead of touching backends. Events: "append" (stored Messages),
        #: "replace" (stored Messages), "delete_messages" (ids), "clear" (None), "delete_session" (None).
        self.write_hooks: list[WriteHook] = []
        #: the recall embedder spec ("default" = offline MiniLM, "hash", an Embedder or a framework object)
        self.embedder = embedder
        self._recall: RecallService | None = None
        self.write_hooks.append(self._recall_hook)
        #: whole histories kept decoded, checked against the store on every read (memvault.history)
        self.histories: HistoryCache[Message] = core_cache()

    def _notify(self, event: str, namespace: str, session_id: str, payload: Any) -> None:
        for hook in self.write_hooks:
            hook(event, namespace, session_id, payload)

    def __repr__(self) -> str:
        return f"Memory({self.store.url!r}, namespace={self.namespace!r})"

    @property
    def backend(self) -> str:
        return self.store.backend

    @property
    def closed(self) -> bool:
        """True once :meth:`close` (or :meth:`aclose`) has run."""
        return self._closed

    def _ns(self, namespace: str | None) -> str:
        return self.namespace if namespace is None else validate_namespace(namespace)

    # -- handles -------------------------------------------------------------------------------------------------
    def session(
        self,
        session_id: str,
        *,
        user_id: str | None = None,
        namespace: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | None = _DEFAULT,
        max_messages: int | None = _DEFAULT,
        compress: CompressionPolicy | None = None,
    ) -> Session:
        """A handle on one session. Nothing is written until the first add.

        ``compress``: a :class:`memvault.compression.CompressionPolicy` folding older messages into a stored rolling
        summary after writes (raw messages are kept unless its retention says otherwise)."""
        return Session(
            self,
            validate_id(session_id),
            namespace=self._ns(namespace),
            user_id=None if user_id is None else validate_id(user_id, "user id"),
            metadata=metadata,
            ttl=self.ttl if ttl is _DEFAULT else ttl,
            max_messages=self.max_messages if max_messages is _DEFAULT else max_messages,
            compress=compress,
        )

    # -- operations (written once) -------------------------------------------------------------------------------
    def _get_session(self, session_id: str, namespace: str | None) -> Op[SessionInfo]:
        ns, sid = self._ns(namespace), validate_id(session_id)
        info = yield Call("get_session", (ns, sid))
        if info is None:
            raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} (never written, deleted or expired)")
        return info

    def _delete_session(self, session_id: str, namespace: str | None) -> Op[bool]:
        ns, sid = self._ns(namespace), validate_id(session_id)
        existed = yield Call("delete_session", (ns, sid))
        self._notify("delete_session", ns, sid, None)
        return existed

    def _sessions(
        self,
        user_id: str | None,
        namespace: str | None,
        metadata: Mapping[str, Any] | None,
        updated_after: datetime | None,
        updated_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Op[Page[SessionInfo]]:
        query = SessionQuery(
            namespace=self._ns(namespace),
            user_id=None if user_id is None else validate_id(user_id, "user id"),
            metadata=check_metadata_filter(metadata),
            updated_after=check_time(updated_after, "updated_after"),
            updated_before=check_time(updated_before, "updated_before"),
            limit=check_limit(limit, maximum=MAX_PAGE),
            cursor=check_cursor(cursor),
        )
        return (yield Call("list_sessions", (query,)))

    def _export(self, session_id: str, namespace: str | None) -> Op[None]:
        ns, sid = self._ns(namespace), validate_id(session_id)
        info = yield Call("get_session", (ns, sid))
        if info is None:
            raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} to export")
        yield Emit(session_header(info))
        start = 0
        while True:
            page = yield Call("read", (ns, sid), {"start": start, "limit": EXPORT_PAGE})
            for message in page:
                yield Emit(encode_line(message))
            if len(page) < EXPORT_PAGE:
                return
            start = page[-1].seq + 1

    def _import(
        self, lines: Iterable[str], session_id: str | None, namespace: str | None, user_id: str | None
    ) -> Op[SessionInfo]:
        # The target namespace is the caller's (never the export header's): an import cannot cross tenants.
        ns = self._ns(namespace)
        owner = None if user_id is None else validate_id(user_id, "user id")
        sid = None if session_id is None else validate_id(session_id)
        header, messages = parse_export(lines)  # everything is validated before anything is written
        sid = sid or header.id or (messages[0].session_id if messages else None)
        if sid is None:
            raise InvalidSessionId("the export names no session id: pass session_id=")
        options = AppendOptions(user_id=owner if owner is not None else header.user_id, metadata=header.metadata,
                                ttl=self.ttl)
        records = [encode_body(m, self.store.max_message_bytes) for m in messages]
        target = (ns, sid)
        if not records:  # a header and no messages: create the empty session
            yield Call("ensure_session", (*target, options))
        for i in range(0, len(records), EXPORT_PAGE):
            seqs = yield Call("append", (*target, records[i : i + EXPORT_PAGE], options))
            self._notify("append", *target, with_seq(messages[i : i + EXPORT_PAGE], sid, seqs))
        return (yield Call("get_session", target))

    def _purge_expired(self) -> Op[int]:
        return (yield Call("purge_expired"))

    # -- sync / async faces --------------------------------------------------------------------------------------
    def get_session(self, session_id: str, namespace: str | None = None) -> SessionInfo:
        """The session's info; raises SessionNotFound if it does not exist or has expired."""
        return run_sync(self.store, self._get_session(session_id, namespace))

    async def aget_session(self, session_id: str, namespace: str | None = None) -> SessionInfo:
        return await run_async(self.store, self._get_session(session_id, namespace))

    def delete_session(self, session_id: str, namespace: str | None = None) -> bool:
        """Delete a session with all it holds; True if it existed."""
        return run_sync(self.store, self._delete_session(session_id, namespace))

    async def adelete_session(self, session_id: str, namespace: str | None = None) -> bool:
        return await run_async(self.store, self._delete_session(session_id, namespace))

    def sessions(
        self,
        *,
        user_id: str | None = None,
        namespace: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[SessionInfo]:
        """A page of sessions, most recently updated first. Pass ``page.next_cursor`` as ``cursor`` for the next."""
        op = self._sessions(user_id, namespace, metadata, updated_after, updated_before, limit, cursor)
        return run_sync(self.store, op)

    async def asessions(
        self,
        *,
        user_id: str | None = None,
        namespace: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[SessionInfo]:
        op = self._sessions(user_id, namespace, metadata, updated_after, updated_before, limit, cursor)
        return await run_async(self.store, op)

    def export_session(self, session_id: str, namespace: str | None = None) -> Iterator[str]:
        """The session as JSON Lines (a header line, then one line per message), read page by page."""
        return iter_sync(self.store, self._export(session_id, namespace))

    def aexport_session(self, session_id: str, namespace: str | None = None) -> AsyncIterator[str]:
        return iter_async(self.store, self._export(session_id, namespace))

    def import_session(
        self,
        lines: Iterable[str] | str,
        *,
        session_id: str | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
    ) -> SessionInfo:
        """Load an export (lines or one string) into this Memory's namespace (or ``namespace``). Ids and timestamps
        are kept; seqs are assigned anew; messages whose id is already in the session are skipped, so importing
        twice is harmless."""
        if isinstance(lines, str):
            lines = lines.split("\n")  # not splitlines(): U+2028, NEL, ... are text inside a line
        return run_sync(self.store, self._import(lines, session_id, namespace, user_id))

    async def aimport_session(
        self,
        lines: Iterable[str] | str,
        *,
        session_id: str | None = None,
        namespace: str | None = None,
        user_id: str | None = None,
    ) -> SessionInfo:
        if isinstance(lines, str):
            lines = lines.split("\n")  # not splitlines(): U+2028, NEL, ... are text inside a line
        return await run_async(self.store, self._import(lines, session_id, namespace, user_id))

    # -- key rotation ----------------------------------------------------------------------------------------------
    def _rekey(self, namespace: str | None, progress: Any = None, stop: Any = None) -> tuple[Any, Any]:
        from memvault.codecs.rekey import rekey_op, tenant_namespaces
        from memvault.codecs.store import SealedStore

        store = self.store
        if not isinstance(store, SealedStore) or not store.codec.encrypts:
            raise EncryptionKeyMissing("rekey needs a Memory opened with encryption=[new_key, old_key, ...]")
        return store, rekey_op(store, tenant_namespaces(self._ns(namespace)), progress=progress, stop=stop)

    def _run_rekey(self, namespace: str | None, retire: bool, progress: Any = None, stop: Any = None
                   ) -> RekeyReport:
        from memvault.codecs.rekey import finish

        store, op = self._rekey(namespace, progress, stop)
        with raw_envelopes():
            return finish(store, run_sync(store.inner, op), retire)

    def rekey(self, namespace: str | None = None, *, retire_old_keys: bool = False) -> RekeyReport:
        """Re-seal every payload of ``namespace`` (default: this Memory's, with its collections and stores) that
        is not under the primary key: an old key's, or clear data from before encryption was on. Safe with live
        writers, resumable (a rerun skips what is current). ``retire_old_keys``: once every namespace of the store
        is done, make the primary key the only one it accepts. See docs/encryption.md."""
        return self._run_rekey(namespace, retire_old_keys)

    async def arekey(self, namespace: str | None = None, *, retire_old_keys: bool = False) -> RekeyReport:
        from memvault.codecs.rekey import finish

        store, op = self._rekey(namespace)
        with raw_envelopes():
            report = await run_async(store.inner, op)
        return await asyncio.to_thread(finish, store, report, retire_old_keys)

    def start_rekey(self, namespace: str | None = None, *, retire_old_keys: bool = False) -> RekeyJob:
        """:meth:`rekey` in a background thread: ``job.report`` grows as it goes, ``job.wait()``, ``job.cancel()``."""
        from memvault.codecs.rekey import RekeyJob

        self._rekey(namespace)  # fails now, in the caller's thread, when there is no key
        return RekeyJob(lambda stop, progress: self._run_rekey(namespace, retire_old_keys, progress, stop))

    def purge_expired(self) -> int:
        """Remove expired sessions for good; returns how many."""
        return run_sync(self.store, self._purge_expired())

    async def apurge_expired(self) -> int:
        return await run_async(self.store, self._purge_expired())

    def context(
        self,
        session_id: str,
        *,
        query: str | None = None,
        budget_tokens: int = 2000,
        model: Any = None,
        namespace: str | None = None,
        summary_share: float = 0.3,
        recall_share: float = 0.25,
        recall_k: int = 10,
    ) -> Context:
        """A prompt history within ``budget_tokens``: [latest summary] + [recalled older turns relevant to
        ``query``, when recall is available] + [the newest messages]. ``ctx.messages``, ``ctx.tokens`` (never over
        the budget), ``ctx.parts`` (tokens spent per part). Cost does not grow with the session's length.
        ``model`` picks the token encoding (e.g. "gpt-4o"); see memvault.compression."""
        from memvault.compression.context import build_context

        request = self._context_request(session_id, query, budget_tokens, model, namespace, summary_share,
                                        recall_share, recall_k)
        return build_context(self, request)

    def _context_request(self, session_id: str, query: str | None, budget_tokens: int, model: Any,
                         namespace: str | None, summary_share: float, recall_share: float, recall_k: int) -> ContextRequest:
        from memvault.compression.context import ContextRequest

        if query is not None:
            check_text(query, "query")
        from memvault.compression.tokens import check_model

        check_model(model)
        check_int(recall_k, "recall_k", minimum=1, maximum=MAX_K, error=InvalidPolicy)
        return ContextRequest(self._ns(namespace), validate_id(session_id), query, budget_tokens, model,
                              summary_share, recall_share, recall_k)

    async def acontext(
        self,
        session_id: str,
        *,
        query: str | None = None,
        budget_tokens: int = 2000,
        model: Any = None,
        namespace: str | None = None,
        summary_share: float = 0.3,
        recall_share: float = 0.25,
        recall_k: int = 10,
    ) -> Context:
        from memvault.compression.context import abuild_context

        request = self._context_request(session_id, query, budget_tokens, model, namespace, summary_share,
                                        recall_share, recall_k)
        return await abuild_context(self, request)

    def ping(self) -> None:
        """Raise BackendUnavailable when the backend cannot be reached."""
        self.store.ping()

    def _artifact_at(self, url: str) -> tuple[SessionArtifacts, str, int]:
        ns, sid, name, version = parse_artifact_url(url)
        if ns != self.namespace:  # a tenant never reads another's artifacts, even with their URL
            raise ArtifactNotFound(f"{url[:120]} belongs to namespace {ns!r}; this Memory serves {self.namespace!r}")
        return self.session(sid).artifacts, name, version

    def open_artifact(self, url: str) -> ArtifactReader:
        """A streaming reader on the artifact version a ``memvault://`` URL names (ArtifactVersion.url); only for
        URLs of this Memory's namespace (ArtifactNotFound otherwise)."""
        artifacts, name, version = self._artifact_at(url)
        return artifacts.open(name, version)

    async def aopen_artifact(self, url: str) -> AsyncArtifactReader:
        artifacts, name, version = self._artifact_at(url)
        return await artifacts.aopen(name, version)

    async def aping(self) -> None:
        await self.store.aio.ping()

    # -- recall (memvault.recall) -------------------------------------------------------------------------------
    def _recall_hook(self, event: str, namespace: str, session_id: str, payload: Any) -> None:
        if self._recall is not None:  # nothing to keep fresh until recall is first used (it catches up then)
            self._recall.on_write(event, namespace, session_id, payload)

    @property
    def recall_service(self) -> RecallService:
        """The recall service (embedder, index engine, background indexer), created on first use."""
        if self._recall is None:
            from memvault.recall.service import RecallService

            self._recall = RecallService(self, self.embedder)
        return self._recall

    def recall(
        self,
        query: str,
        *,
        session: str | None = None,
        user_id: str | None = None,
        namespace: str | None = None,
        k: int = 10,
        mode: str = "hybrid",
        filters: Mapping[str, Any] | None = None,
        recency_half_life: Any = None,
        mmr: float | None = None,
        neighbors: int = 0,
        degrade: bool = False,
        **tuning: Any,
    ) -> list[Hit]:
        """Messages relevant to ``query`` within one session, a user's sessions or a namespace (default: this
        Memory's), best first, as :class:`memvault.recall.Hit` s. ``mode`` "hybrid" | "dense" | "keyword";
        ``filters`` {"role", "after", "before", "session", "metadata"}; ``recency_half_life`` (seconds or
        timedelta); ``mmr`` (lambda 0..1); ``neighbors`` (turns around each hit). ``degrade``: when the stored
        vectors are another embedding model's, fall back to keyword recall (logged) instead of raising
        EmbeddingModelMismatch. See docs/recall.md."""
        options = dict(session=session, user_id=user_id, namespace=namespace, k=k, filters=filters,
                       recency_half_life=recency_half_life, mmr=mmr, neighbors=neighbors, **tuning)
        try:
            return self.recall_service.recall(query, mode=mode, **options)
        except EmbeddingModelMismatch as exc:
            if not degrade or mode == "keyword":
                raise
            logger.warning("recall falls back to keywords: %s", exc)
            return self.recall_service.recall(query, mode="keyword", **{**options, "mmr": None})

    async def arecall(self, query: str, **options: Any) -> list[Hit]:
        """Async twin of :meth:`recall` (the search runs in a worker thread: embedding is CPU-bound)."""
        import asyncio

        return await asyncio.to_thread(lambda: self.recall(query, **options))

    def index_status(self) -> IndexStatus:
        """IndexStatus(indexed, backlog, model_id) of the recall index."""
        return self.recall_service.status()

    async def aindex_status(self) -> IndexStatus:
        import asyncio

        return await asyncio.to_thread(self.index_status)

    def reindex(self, progress: Any = None, *, namespace: str | None = None) -> int:
        """Re-embed every message of the namespace with the current embedder; ``progress(done, total)``."""
        return self.recall_service.reindex(progress, namespace=namespace)

    async def areindex(self, progress: Any = None, *, namespace: str | None = None) -> int:
        import asyncio

        return await asyncio.to_thread(self.reindex, progress, namespace=namespace)

    def collection(self, name: str, *, namespace: str | None = None, embedder: Any = None) -> Collection:
        """A document collection (for vector stores); ``embedder`` None = this Memory's."""
        from memvault.recall.collections import Collection
        from memvault.recall.embedders import CachedEmbedder, as_embedder

        chosen = self.recall_service.embedder if embedder is None else CachedEmbedder(as_embedder(embedder))
        return Collection(self.store, name, self._ns(namespace), chosen)

    def close(self) -> None:
        """Release the store's connections and files. Idempotent."""
        if not self._closed:
            self._closed = True
            if self._recall is not None:
                self._recall.close()
            self.store.close()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self._recall is not None:
                self._recall.close()
            await self.store.aio.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Memory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Session:
    """A handle on one conversation. Get one with :meth:`Memory.session`."""

    def __init__(
        self,
        memory: Memory,
        session_id: str,
        *,
        namespace: str,
        user_id: str | None,
        metadata: Mapping[str, Any] | None,
        ttl: float | None,
        max_messages: int | None,
        compress: CompressionPolicy | None = None,
    ) -> None:
        self.memory = memory
        self.compressor: Compressor | None = None
        if compress is not None:
            from memvault.compression.compressor import compressor_for

            self.compressor = compressor_for(memory, compress)
        self.id = session_id
        self.namespace = namespace
        self.user_id = user_id
        self.options = AppendOptions(
            user_id=user_id, metadata=check_session_metadata(metadata), ttl=check_ttl(ttl),
            max_messages=check_max_messages(max_messages),
        )

    def __repr__(self) -> str:
        return f"Session({self.id!r}, namespace={self.namespace!r})"

    @property
    def state(self) -> SessionState:
        """The session's versioned JSON state: ``get`` / ``set`` (compare-and-set) / ``update`` / ``history``."""
        return SessionState(self, self.memory.state_history)

    @property
    def artifacts(self) -> SessionArtifacts:
        """The session's versioned artifacts: ``save`` / ``load`` / ``open`` / ``list`` / ``versions`` / ``delete``."""
        return SessionArtifacts(self, self.memory.max_artifact_bytes)

    @property
    def store(self) -> Store:
        return self.memory.store

    # -- operations (written once) -------------------------------------------------------------------------------
    def _encode(self, messages: list[Message]) -> list[Record]:
        limit = self.store.max_message_bytes
        return [encode_body(m, limit) for m in messages]

    def _extend(self, items: Iterable[Message | Mapping[str, Any]], method: str = "append") -> Op[list[Message]]:
        messages = [_as_message(i) for i in items]
        if self.compressor is not None:
            self.compressor.prepare(messages, (self.namespace, self.id))  # token counts stamped once, at write time
        records = self._encode(messages)
        seqs = yield Call(method, (self.namespace, self.id, records, self.options))
        if method == "replace":  # summaries of the replaced history no longer describe it
            yield Call("delete_records", (self.namespace, self.id, "summary"))
        stored = with_seq(messages, self.id, seqs)
        self.memory._notify(method, self.namespace, self.id, stored)
        return stored

    def _messages(
        self, last: int | None, start: int | None, stop: int | None, limit: int | None
    ) -> Op[list[Message]]:
        check_non_negative(last=last, start=start, stop=stop, limit=limit)
        if last is None and start is None and stop is None and limit is None:  # the whole history: kept decoded
            return (yield from self.memory.histories.read(self.namespace, self.id))
        kwargs = {"start": start, "stop": stop, "last": last, "limit": limit}
        return (yield Call("read", (self.namespace, self.id), kwargs))

    def _simple(self, method: str, *args: Any) -> Op[Any]:
        result = yield Call(method, (self.namespace, self.id, *args))
        if method in ("delete_messages", "clear", "delete_session"):
            self.memory._notify(method, self.namespace, self.id, args[0] if args else None)
        return result

    def _pop(self, index: int, count: int, ids: Iterable[str] | None) -> Op[list[Message]]:
        for name, value in (("index", index), ("count", count)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidFilter(f"{name} must be an int, got {value!r}")
        if count < 1:
            raise InvalidFilter(f"count must be a positive int, got {count!r}")
        if ids is not None:
            wanted = check_ids(ids)
            kwargs: dict[str, Any] = {"ids": wanted}
        else:
            kwargs = {"index": index, "count": count}
        popped = yield Call("pop_messages", (self.namespace, self.id), kwargs)
        if popped:
            self.memory._notify("delete_messages", self.namespace, self.id, [m.id for m in popped])
        return popped

    def _info(self) -> Op[SessionInfo]:
        info = yield Call("get_session", (self.namespace, self.id))
        if info is None:
            raise SessionNotFound(f"no session {self.id!r} in namespace {self.namespace!r} (nothing added yet?)")
        return info

    @staticmethod
    def _new(role: str, content: Content, fields: dict[str, Any]) -> Message:
        given = {k: v for k, v in fields.items() if v is not None}
        return Message(role=role, content=content, **given)

    # -- sync / async faces --------------------------------------------------------------------------------------
    def add(
        self,
        role: str,
        content: Content,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        created_at: datetime | None = None,
        extras: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Message:
        """Store one message; returns it with ``seq`` assigned."""
        message = self._new(role, content, dict(name=name, metadata=metadata, tool_calls=tool_calls,
                                                tool_call_id=tool_call_id, created_at=created_at, extras=extras, id=id))
        stored = run_sync(self.store, self._extend([message]))[0]
        self._after_write()
        return stored

    async def aadd(
        self,
        role: str,
        content: Content,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        created_at: datetime | None = None,
        extras: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> Message:
        message = self._new(role, content, dict(name=name, metadata=metadata, tool_calls=tool_calls,
                                                tool_call_id=tool_call_id, created_at=created_at, extras=extras, id=id))
        stored = (await run_async(self.store, self._extend([message])))[0]
        await self._aafter_write()
        return stored

    def extend(self, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        """Store several messages atomically (all or none); returns them with seqs."""
        stored = run_sync(self.store, self._extend(messages))
        self._after_write()
        return stored

    async def aextend(self, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        stored = await run_async(self.store, self._extend(messages))
        await self._aafter_write()
        return stored

    def replace(self, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        """Atomically swap the whole history for ``messages``."""
        return run_sync(self.store, self._extend(messages, "replace"))

    async def areplace(self, messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
        return await run_async(self.store, self._extend(messages, "replace"))

    def messages(
        self, *, last: int | None = None, start: int | None = None, stop: int | None = None, limit: int | None = None
    ) -> list[Message]:
        """Messages in seq order: all, the ``last`` N, or ``start <= seq < stop`` (first ``limit``). All of them
        costs one check of the session plus the messages added since the last full read (memvault.history)."""
        return run_sync(self.store, self._messages(last, start, stop, limit))

    async def amessages(
        self, *, last: int | None = None, start: int | None = None, stop: int | None = None, limit: int | None = None
    ) -> list[Message]:
        return await run_async(self.store, self._messages(last, start, stop, limit))

    def get(self, ids: Iterable[str]) -> list[Message]:
        """The messages with these ids, in seq order."""
        return run_sync(self.store, self._simple("get_messages", check_ids(ids)))

    async def aget(self, ids: Iterable[str]) -> list[Message]:
        return await run_async(self.store, self._simple("get_messages", check_ids(ids)))

    def delete_messages(self, ids: Iterable[str]) -> int:
        """Delete messages by id; the rest keep their order and seqs."""
        return run_sync(self.store, self._simple("delete_messages", check_ids(ids)))

    async def adelete_messages(self, ids: Iterable[str]) -> int:
        return await run_async(self.store, self._simple("delete_messages", check_ids(ids)))

    def pop(self, index: int = -1, count: int = 1, *, ids: Iterable[str] | None = None) -> list[Message]:
        """Atomically remove and return ``count`` messages from position ``index`` (negative: from the end, as in
        ``list.pop``; [] when there is no such position), or the messages with ``ids``. Concurrent pops never
        return the same message: what a pop returns, it alone removed."""
        return run_sync(self.store, self._pop(index, count, ids))

    async def apop(self, index: int = -1, count: int = 1, *, ids: Iterable[str] | None = None) -> list[Message]:
        return await run_async(self.store, self._pop(index, count, ids))

    def count(self) -> int:
        return run_sync(self.store, self._simple("count"))

    async def acount(self) -> int:
        return await run_async(self.store, self._simple("count"))

    def info(self) -> SessionInfo:
        """The session's info; raises SessionNotFound before the first add."""
        return run_sync(self.store, self._info())

    async def ainfo(self) -> SessionInfo:
        return await run_async(self.store, self._info())

    def exists(self) -> bool:
        return run_sync(self.store, self._simple("get_session")) is not None

    async def aexists(self) -> bool:
        return await run_async(self.store, self._simple("get_session")) is not None

    def clear(self) -> int:
        """Delete every message (and summary) but keep the session; returns how many messages went."""
        return run_sync(self.store, self._simple("clear"))

    async def aclear(self) -> int:
        return await run_async(self.store, self._simple("clear"))

    def delete(self) -> bool:
        """Delete the session entirely."""
        return run_sync(self.store, self._simple("delete_session"))

    async def adelete(self) -> bool:
        return await run_async(self.store, self._simple("delete_session"))

    def _update_metadata(self, metadata: Mapping[str, Any], replace: bool) -> Op[SessionInfo]:
        if not isinstance(replace, bool):
            raise InvalidFilter(f"replace must be a bool, got {replace!r}")
        checked = check_session_metadata(metadata)
        if checked is None:
            raise InvalidMetadata("metadata must be a dict (pass {} with replace=True to clear it)")
        return (yield Call("update_metadata", (self.namespace, self.id, checked, replace)))

    def update_metadata(self, metadata: Mapping[str, Any], *, replace: bool = False) -> SessionInfo:
        """Merge ``metadata`` into the session's (its top-level keys are set; ``replace=True``: it becomes the
        whole metadata), atomically. SessionNotFound before the first write."""
        return run_sync(self.store, self._update_metadata(metadata, replace))

    async def aupdate_metadata(self, metadata: Mapping[str, Any], *, replace: bool = False) -> SessionInfo:
        return await run_async(self.store, self._update_metadata(metadata, replace))

    # -- compression (logic in memvault.compression) -------------------------------------------------------------
    def _after_write(self) -> None:
        if self.compressor is not None:
            self.compressor.after_write(self.store, self.namespace, self.id, self.memory._notify)

    async def _aafter_write(self) -> None:
        if self.compressor is not None:
            await self.compressor.aafter_write(self.store, self.namespace, self.id, self.memory._notify)

    def _need_compressor(self) -> Compressor:
        if self.compressor is None:
            from memvault.errors import InvalidPolicy

            raise InvalidPolicy("this session has no compression policy: open it with mem.session(id, compress=...)")
        return self.compressor

    def compress(self, *, force: bool = False) -> Summary | None:
        """Run compression now (``force``: even below the trigger). Returns the new Summary or None; raises
        SummarizerFailed if the summarizer fails (nothing is stored then)."""
        return self._need_compressor().compress(
            self.store, self.namespace, self.id, force=force, notify=self.memory._notify
        )

    async def acompress(self, *, force: bool = False) -> Summary | None:
        return await self._need_compressor().acompress(
            self.store, self.namespace, self.id, force=force, notify=self.memory._notify
        )

    def wait_compression(self, timeout: float | None = None) -> None:
        """Wait for background compression started by sync writes of this policy."""
        if self.compressor is not None:
            self.compressor.wait(timeout)

    async def await_compression(self) -> None:
        """Await background compression started by async writes of this policy."""
        if self.compressor is not None:
            await self.compressor.await_background()

    def summaries(self, *, last: int | None = None) -> list[Summary]:
        """Stored rolling summaries (memvault.compression.Summary), oldest first; ``last=1`` is the current one."""
        from memvault.compression.summaries import list_summaries

        check_non_negative(last=last)
        return run_sync(self.store, list_summaries(self.namespace, self.id, last))

    async def asummaries(self, *, last: int | None = None) -> list[Summary]:
        from memvault.compression.summaries import list_summaries

        check_non_negative(last=last)
        return await run_async(self.store, list_summaries(self.namespace, self.id, last))

    def context(self, **options: Any) -> Context:
        """:meth:`Memory.context` for this session."""
        return self.memory.context(self.id, namespace=self.namespace, **options)

    async def acontext(self, **options: Any) -> Context:
        return await self.memory.acontext(self.id, namespace=self.namespace, **options)
