"""``fallback="spool"``: keep accepting writes while the backend is down, replay them in order when it is back.

``Memory(url, fallback="spool")`` wraps the backend in a :class:`SpoolStore`. When an ``append`` (or
``put_record``) fails with :class:`~memvault.errors.BackendUnavailable`, the write is stored durably in a local
SQLite file (``$MEMVAULT_HOME/spool/<hash of the URL>.db``, ``synchronous=FULL``) with a logged warning, and the
caller gets its messages back with ``seq=None`` (the backend assigns seqs on replay). Later writes to a session with
spooled entries are spooled behind them, so order is kept.

A circuit breaker keeps an outage cheap: after the first failure the breaker is open, and until the backend
answers a probe again every write goes straight to the spool (no waiting for a timeout: well under a millisecond
plus the spool's fsync) and every read fails at once with BackendUnavailable. A background thread probes the
backend (``ping``) every ``spool_retry`` seconds (default 1); when it answers, the thread replays the spool (oldest
first) and closes the breaker, so no caller waits for the replay. A read that finds the probe due probes too (then
replays inline), so reads see every acknowledged write as soon as the backend is back. Replays are exactly-once
because appends are idempotent on message ids: an entry is deleted only after the backend acknowledged it, and
replaying it twice stores nothing twice.

Appends, records and unconditional entry writes are spooled. Other writes (replace, clear, deletes, ``if_absent``
entry writes, which cannot be decided offline) are not: with entries pending for their session they raise
BackendUnavailable rather than run out of order. SpoolStore's async face runs its calls in worker threads (it does
not claim the wrapped backend's native async).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from memvault import lifecycle
from memvault.codecs.envelope import raw_envelopes
from memvault.config import memvault_home
from memvault.contract import AppendOptions, Entry, Rewrite, SessionQuery, Store
from memvault.errors import BackendUnavailable, InvalidURL, MemvaultError
from memvault.model import Message, Page, Record, SessionInfo

logger = logging.getLogger("memvault.spool")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    session   TEXT NOT NULL,
    op        TEXT NOT NULL,
    payload   TEXT NOT NULL,
    queued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_by_session ON spool (namespace, session);
CREATE TABLE IF NOT EXISTS dead (
    id        INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    session   TEXT NOT NULL,
    op        TEXT NOT NULL,
    payload   TEXT NOT NULL,
    queued_at REAL NOT NULL,
    error     TEXT NOT NULL
);
"""


def spool_path_for(store: Store) -> Path:
    """The default spool file of ``store``: one per backend URL (password masked) under ``$MEMVAULT_HOME/spool``."""
    digest = hashlib.sha256(store.url.encode("utf-8")).hexdigest()[:16]
    return memvault_home() / "spool" / f"{store.backend}-{digest}.db"


class SpoolStore(Store):
    """A Store that forwards to ``inner`` and spools appends locally while ``inner`` is unavailable."""

    def __init__(self, inner: Store, *, path: str | Path | None = None, retry: float = 1.0) -> None:
        super().__init__(clock=inner.clock, max_message_bytes=inner.max_message_bytes)
        self.inner = inner
        # mirror the wrapped backend so Memory and SessionInfo see the real one
        self.backend = inner.backend  # type: ignore[misc]
        # the async face is the threaded one, and only the contract is forwarded (no find_messages, no native recall
        # engine): claiming the backend's native async, full-text search or vector index would be a lie
        self.capabilities = inner.capabilities - {"native_async", "fulltext", "vector"}  # type: ignore[misc]
        self.default_ttl = inner.default_ttl  # type: ignore[misc]
        self.retry = float(retry)
        self.path = Path(path).expanduser() if path is not None else spool_path_for(inner)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._next_try = 0.0
        self._degraded = False
        self._pending = self.pending() > 0
        #: the breaker: monotonic time the backend was found unavailable (None = closed), and its prober
        self._open_since: float | None = None
        self._prober: threading.Thread | None = None
        self._stopping = threading.Event()
        lifecycle.register(self)

    @property
    def url(self) -> str:
        return self.inner.url

    def __repr__(self) -> str:
        return f"<SpoolStore {self.inner.url} spool={self.path}>"

    # -- the spool -----------------------------------------------------------------------------------------------
    def pending(self, ns: str | None = None, sid: str | None = None) -> int:
        """Entries waiting for replay (for one session if given)."""
        with self._lock:
            if ns is None:
                return int(self._db.execute("SELECT count(*) FROM spool").fetchone()[0])
            return int(
                self._db.execute("SELECT count(*) FROM spool WHERE namespace = ? AND session = ?", (ns, sid)).fetchone()[0]
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Spooled writes the backend refused on replay (kept, never dropped), with the error."""
        with self._lock:
            rows = self._db.execute("SELECT id, namespace, session, op, payload, error FROM dead ORDER BY id").fetchall()
        return [dict(zip(("id", "namespace", "session", "op", "payload", "error"), r, strict=True)) for r in rows]

    def _enqueue(self, ns: str, sid: str, op: str, payload: dict[str, Any], error: BaseException | None) -> None:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._db.execute(
                "INSERT INTO spool (namespace, session, op, payload, queued_at) VALUES (?, ?, ?, ?, ?)",
                (ns, sid, op, text, time.time()),
            )
            self._pending = True
            if not self._degraded:
                self._degraded = True
                logger.warning(
                    "%s is unavailable (%s); spooling writes to %s and replaying them when it answers",
                    self.inner.url,
                    error or "earlier writes are still spooled",
                    self.path,
                )

    def _apply(self, op: str, ns: str, sid: str, payload: dict[str, Any]) -> None:
        if op == "append":
            options = AppendOptions(**payload["options"])
            self.inner.append(ns, sid, [Record(i, b) for i, b in payload["records"]], options)
        elif op == "put_entries":
            entries = [Entry(kind, key, base64.b64decode(value)) for kind, key, value in payload["entries"]]
            self.inner.put_entries(ns, sid, entries, AppendOptions(**payload["options"]))
        elif op == "put_record":
            self.inner.put_record(ns, sid, payload["kind"], payload["key"], payload["data"])
        else:  # pragma: no cover - only the ops above are ever spooled
            raise MemvaultError(f"unknown spooled operation {op!r}")

    def flush(self) -> int:
        """Replay the spool in order; returns how many entries were replayed. Raises BackendUnavailable (and keeps
        the rest) if the backend is still down."""
        replayed = 0
        with self._lock:
            while True:
                rows = self._db.execute(
                    "SELECT id, namespace, session, op, payload, queued_at FROM spool ORDER BY id LIMIT 100"
                ).fetchall()
                if not rows:
                    break
                for entry_id, ns, sid, op, payload, queued_at in rows:
                    try:
                        with raw_envelopes():  # replayed as stored: sealed payloads stay sealed, in any caller
                            self._apply(op, ns, sid, json.loads(payload))
                    except BackendUnavailable:
                        raise
                    except MemvaultError as exc:
                        logger.error("spooled %s for %s/%s refused on replay (%s); kept in %s table 'dead'",
                                     op, ns, sid, exc, self.path)
                        self._db.execute(
                            "INSERT INTO dead VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (entry_id, ns, sid, op, payload, queued_at, str(exc)),
                        )
                    self._db.execute("DELETE FROM spool WHERE id = ?", (entry_id,))
                    replayed += 1
            self._pending = False
            if self._degraded:
                self._degraded = False
                logger.warning("%s answers again; replayed %d spooled writes from %s", self.inner.url, replayed, self.path)
        return replayed

    # -- the breaker -----------------------------------------------------------------------------------------------
    def _trip(self, exc: BaseException | None) -> None:
        """Open the breaker (the backend is unavailable) and start the background prober."""
        with self._lock:
            self._next_try = time.monotonic() + self.retry
            if self._open_since is None:
                self._open_since = time.monotonic()
                logger.warning("%s is unavailable (%s); writes go to the spool %s until it answers again",
                               self.inner.url, exc, self.path)
            if self._prober is None and not self._stopping.is_set():
                self._prober = threading.Thread(target=self._probe_loop, name="memvault-spool-probe", daemon=True)
                self._prober.start()

    def _probe_loop(self) -> None:
        try:
            while not self._stopping.wait(min(max(self.retry, 0.02), 0.25)):
                if self._open_since is None:
                    return
                if time.monotonic() >= self._next_try and self._recover():
                    return
        finally:
            with self._lock:
                self._prober = None

    def _recover(self) -> bool:
        """Probe the backend; when it answers, replay the spool and close the breaker. True when closed."""
        try:
            self.inner.ping()
            with self._lock:  # replay and close the breaker under one lock: a write in between would be spooled
                self.flush()
                if self._open_since is not None:
                    logger.warning("%s answers again after %.1fs", self.inner.url,
                                   time.monotonic() - self._open_since)
                self._open_since = None
        except BackendUnavailable:
            with self._lock:
                self._next_try = time.monotonic() + self.retry
            return False
        return True

    def _unavailable(self) -> BackendUnavailable:
        since = 0.0 if self._open_since is None else time.monotonic() - self._open_since
        return BackendUnavailable(
            f"{self.inner.url} is unavailable (for {since:.1f}s; probed every {self.retry:g}s); writes are spooled "
            f"to {self.path} and replayed when it answers"
        )

    def _settle(self) -> bool:
        """Before a read: fail at once while the breaker is open (probing inline when a probe is due); replay
        what is spooled if the backend answers. True when nothing is left spooled."""
        if self._open_since is not None and (time.monotonic() < self._next_try or not self._recover()):
            raise self._unavailable()
        if not self._pending:
            return True
        try:
            self.flush()
        except BackendUnavailable as exc:
            self._trip(exc)
            return False
        return True

    def _guard(self, ns: str, sid: str) -> None:
        """Before a write that cannot be spooled: refuse it while the backend is down or this session still has
        spooled writes (running it now would reorder them)."""
        try:
            self._settle()
        except BackendUnavailable:
            if self.pending(ns, sid):
                raise BackendUnavailable(
                    f"{self.inner.url} is unavailable and writes to session {sid!r} are spooled; retry once they "
                    "are replayed (see SpoolStore.flush)"
                ) from None
            raise
        if self.pending(ns, sid):
            raise BackendUnavailable(f"writes to session {sid!r} are still spooled; retry once they are replayed")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A call that is not spooled; a BackendUnavailable from it opens the breaker."""
        try:
            return getattr(self.inner, method)(*args, **kwargs)
        except BackendUnavailable as exc:
            self._trip(exc)
            raise

    def stop(self) -> None:
        """Stop the prober (process exit); what is spooled stays on disk for the next run."""
        self._stopping.set()
        prober = self._prober
        if prober is not None and prober is not threading.current_thread():
            prober.join(5)

    # -- spooled writes ------------------------------------------------------------------------------------------
    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        payload = {
            "records": [[r.id, r.body] for r in records],
            "options": {
                "user_id": options.user_id,
                "metadata": dict(options.metadata) if options.metadata else None,
                "ttl": options.ttl,
                "max_messages": options.max_messages,
            },
        }
        if self._open_since is not None or (self._pending and self.pending(ns, sid)):
            self._enqueue(ns, sid, "append", payload, None)  # the breaker is open, or this session has a queue
            return [None] * len(records)  # type: ignore[list-item]
        try:
            return self.inner.append(ns, sid, records, options)
        except BackendUnavailable as exc:
            self._trip(exc)
            self._enqueue(ns, sid, "append", payload, exc)
            return [None] * len(records)  # type: ignore[list-item]

    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        payload = {"kind": kind, "key": key, "data": dict(data)}
        if self._open_since is not None or (self._pending and self.pending(ns, sid)):
            self._enqueue(ns, sid, "put_record", payload, None)
            return
        try:
            self.inner.put_record(ns, sid, kind, key, data)
        except BackendUnavailable as exc:
            self._trip(exc)
            self._enqueue(ns, sid, "put_record", payload, exc)

    def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        if if_absent:  # a conditional write cannot be decided offline: never spooled
            self._guard(ns, sid)
            return self._call("put_entries", ns, sid, entries, options, if_absent=True)
        payload = {
            "entries": [[e.kind, e.key, base64.b64encode(bytes(e.value)).decode("ascii")] for e in entries],
            "options": {"user_id": options.user_id, "metadata": dict(options.metadata) if options.metadata else None,
                        "ttl": options.ttl, "max_messages": options.max_messages},
        }
        if self._open_since is not None or (self._pending and self.pending(ns, sid)):
            self._enqueue(ns, sid, "put_entries", payload, None)
            return [True] * len(entries)
        try:
            return self.inner.put_entries(ns, sid, entries, options)
        except BackendUnavailable as exc:
            self._trip(exc)
            self._enqueue(ns, sid, "put_entries", payload, exc)
            return [True] * len(entries)

    def append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> list[int]:
        if self._open_since is None and not (self._pending and self.pending(ns, sid)):
            try:
                return self.inner.append_entries(ns, sid, records, entries, options)
            except BackendUnavailable as exc:  # atomic on the backend: nothing of it is stored, spool both
                self._trip(exc)
        return super().append_entries(ns, sid, records, entries, options)  # queued: the append, then the entries

    # -- everything else: replay first, then forward ---------------------------------------------------------------
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        self._settle()
        return self._call("get_session", ns, sid)

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        self._guard(ns, sid)
        return self._call("ensure_session", ns, sid, options)

    def delete_session(self, ns: str, sid: str) -> bool:
        self._guard(ns, sid)
        return self._call("delete_session", ns, sid)

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        self._settle()
        return self._call("list_sessions", query)

    def purge_expired(self) -> int:
        self._settle()
        return self._call("purge_expired")

    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        self._guard(ns, sid)  # a read-modify-write cannot be decided offline: never spooled
        return self._call("update_metadata", ns, sid, metadata, replace)

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        self._guard(ns, sid)
        return self._call("replace", ns, sid, records, options)

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
        self._settle()
        return self._call("read", ns, sid, start=start, stop=stop, last=last, limit=limit)

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        self._settle()
        return self._call("get_messages", ns, sid, ids)

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        self._guard(ns, sid)
        return self._call("delete_messages", ns, sid, ids)

    def scrub_clear_index(self) -> list[str]:
        return self.inner.scrub_clear_index()

    def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        return dict(self._call("list_kinds", ns, sid))

    def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        self._guard(ns, sid)
        return int(self._call("rewrite", ns, sid, changes))

    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        self._guard(ns, sid)
        return self._call("pop_messages", ns, sid, index=index, count=count, ids=ids)

    def count(self, ns: str, sid: str) -> int:
        self._settle()
        return self._call("count", ns, sid)

    def clear(self, ns: str, sid: str) -> int:
        self._guard(ns, sid)
        return self._call("clear", ns, sid)

    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        self._settle()
        return self._call("get_records", ns, sid, kind, keys=keys, last=last)

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        self._guard(ns, sid)
        return self._call("delete_records", ns, sid, kind, keys)

    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        self._settle()
        return self._call("get_entries", ns, sid, kind, keys)

    def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        self._settle()
        return self._call("scan_entries", ns, sid, kind, start=start, stop=stop, reverse=reverse,
                          limit=limit, keys_only=keys_only)

    def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        self._guard(ns, sid)
        return self._call("delete_entries", ns, sid, kind, keys, start=start, stop=stop)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def ping(self) -> None:
        self._call("ping")
        self._settle()

    def stats(self) -> dict[str, Any]:
        return {**self.inner.stats(), "spool": str(self.path), "spooled": self.pending(), "dead": len(self.dead_letters())}

    def close(self) -> None:
        self.stop()
        with self._lock:
            if self._db is None:
                return
            if self._pending:
                try:
                    if self._open_since is None:
                        self.flush()
                    else:
                        self._recover()
                except BackendUnavailable:
                    pass
                if self._pending:
                    logger.warning("%d writes stay spooled in %s until the next run", self.pending(), self.path)
            self._db.close()
            self._db = None  # type: ignore[assignment]
        self.inner.close()


def with_fallback(store: Store, fallback: str, **options: Any) -> Store:
    """Wrap ``store`` for ``Memory(..., fallback=...)``. Only ``"spool"`` exists (options: spool_path, spool_retry)."""
    if fallback != "spool":
        raise InvalidURL(f"unknown fallback {fallback!r}; the only one is fallback='spool'")
    return SpoolStore(store, path=options.get("spool_path"), retry=options.get("spool_retry", 1.0))


__all__ = ["SpoolStore", "spool_path_for", "with_fallback"]
