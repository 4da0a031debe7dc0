"""``memory://`` — an in-process store for tests and ephemeral agents. ``memory://name`` shares one store per name
within the process; ``memory://`` is private to its Memory."""

from __future__ import annotations

import bisect
import copy
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from memvault.contract import AppendOptions, Entry, Rewrite, SessionQuery, Store, page_of, pop_range, session_matches
from memvault.errors import SessionNotFound
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch
from memvault.validation import merge_session_metadata


class _Entries:
    """One kind of a session's entries: values by key, plus the keys kept sorted for range scans."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.values: dict[str, bytes] = {}

    def put(self, key: str, value: bytes) -> None:
        if key not in self.values:
            bisect.insort(self.keys, key)
        self.values[key] = value

    def delete(self, key: str) -> bool:
        if self.values.pop(key, None) is None:
            return False
        del self.keys[bisect.bisect_left(self.keys, key)]
        return True

    def span(self, start: str | None, stop: str | None) -> list[str]:
        lo = 0 if start is None else bisect.bisect_left(self.keys, start)
        hi = len(self.keys) if stop is None else bisect.bisect_left(self.keys, stop)
        return self.keys[lo:hi]


@dataclass
class _Session:
    user_id: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None
    last_seq: int = 0
    size_bytes: int = 0
    seqs: list[int] = field(default_factory=list)
    rows: dict[int, Record] = field(default_factory=dict)
    by_id: dict[str, int] = field(default_factory=dict)
    records: dict[str, dict[str, str]] = field(default_factory=dict)
    entries: dict[str, _Entries] = field(default_factory=dict)


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sessions: dict[tuple[str, str], _Session] = {}


_NAMED: dict[str, _State] = {}
_NAMED_LOCK = threading.Lock()


class InMemoryStore(Store):
    """Dictionaries behind one lock. Nothing survives the process."""

    backend: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[str]] = frozenset({"rewrite"})

    def __init__(self, name: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name = name
        if name:
            with _NAMED_LOCK:
                self._state = _NAMED.setdefault(name, _State())
        else:
            self._state = _State()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> InMemoryStore:
        return cls(url.split("://", 1)[1].strip("/"), **options)

    @property
    def url(self) -> str:
        return f"memory://{self.name}"

    # -- internals -----------------------------------------------------------------------------------------------
    def _live(self, ns: str, sid: str) -> _Session | None:
        session = self._state.sessions.get((ns, sid))
        if session is not None and session.expires_at is not None and session.expires_at <= self.clock():
            return None
        return session

    def _info(self, ns: str, sid: str, s: _Session) -> SessionInfo:
        return SessionInfo(
            id=sid,
            namespace=ns,
            user_id=s.user_id,
            created_at=from_epoch(s.created_at),
            updated_at=from_epoch(s.updated_at),
            message_count=len(s.seqs),
            size_bytes=s.size_bytes,
            metadata=copy.deepcopy(s.metadata),
            expires_at=from_epoch(s.expires_at),
            backend=self.backend,
            last_seq=s.last_seq,
        )

    def _ensure(self, ns: str, sid: str, options: AppendOptions) -> _Session:
        session = self._live(ns, sid)
        now = self.clock()
        if session is None:
            session = _Session(
                user_id=options.user_id,
                metadata=dict(options.metadata or {}),
                created_at=now,
                updated_at=now,
                expires_at=None,
            )
            self._state.sessions[(ns, sid)] = session
        session.expires_at = None if options.ttl is None else now + options.ttl
        return session

    def _touch(self, session: _Session, options: AppendOptions) -> None:
        now = self.clock()
        session.updated_at = max(now, session.updated_at)
        session.expires_at = None if options.ttl is None else now + options.ttl

    def _drop(self, session: _Session, seq: int) -> None:
        record = session.rows.pop(seq)
        del session.by_id[record.id]
        session.size_bytes -= len(record.body.encode("utf-8"))

    def _add(self, session: _Session, records: Sequence[Record]) -> list[int]:
        seqs: list[int] = []
        for record in records:
            existing = session.by_id.get(record.id)
            if existing is not None:
                seqs.append(existing)
                continue
            session.last_seq += 1
            seq = session.last_seq
            session.seqs.append(seq)
            session.rows[seq] = record
            session.by_id[record.id] = seq
            session.size_bytes += len(record.body.encode("utf-8"))
            seqs.append(seq)
        return seqs

    def _cap(self, session: _Session, max_messages: int | None) -> None:
        if max_messages is not None and len(session.seqs) > max_messages:
            cut = len(session.seqs) - max_messages
            for seq in session.seqs[:cut]:
                self._drop(session, seq)
            del session.seqs[:cut]

    def _decode(self, sid: str, seq: int, record: Record) -> Message:
        return decode_body(record.body, session_id=sid, seq=seq)

    # -- sessions ------------------------------------------------------------------------------------------------
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        with self._state.lock:
            session = self._live(ns, sid)
            return None if session is None else self._info(ns, sid, session)

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        with self._state.lock:
            return self._info(ns, sid, self._ensure(ns, sid, options))

    def delete_session(self, ns: str, sid: str) -> bool:
        with self._state.lock:
            existed = self._live(ns, sid) is not None
            self._state.sessions.pop((ns, sid), None)
            return existed

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        with self._state.lock:
            infos = [
                self._info(ns, sid, s)
                for (ns, sid) in list(self._state.sessions)
                if ns == query.namespace and (s := self._live(ns, sid)) is not None
            ]
        return page_of([i for i in infos if session_matches(i, query)], query)

    def purge_expired(self) -> int:
        with self._state.lock:
            dead = [key for key in self._state.sessions if self._live(*key) is None]
            for key in dead:
                del self._state.sessions[key]
            return len(dead)

    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} (never written, deleted or expired)")
            session.metadata = merge_session_metadata(session.metadata, copy.deepcopy(dict(metadata)), replace)
            session.updated_at = max(self.clock(), session.updated_at)
            return self._info(ns, sid, session)

    # -- messages ------------------------------------------------------------------------------------------------
    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        with self._state.lock:
            session = self._ensure(ns, sid, options)
            seqs = self._add(session, records)
            self._cap(session, options.max_messages)
            self._touch(session, options)
            return seqs

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        with self._state.lock:
            session = self._ensure(ns, sid, options)
            for seq in session.seqs:
                self._drop(session, seq)
            session.seqs.clear()
            seqs = self._add(session, records)
            self._cap(session, options.max_messages)
            self._touch(session, options)
            return seqs

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
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return []
            seqs = session.seqs
            lo = 0 if start is None else bisect.bisect_left(seqs, start)
            hi = len(seqs) if stop is None else bisect.bisect_left(seqs, stop)
            if last is not None:
                lo = max(lo, hi - last)
            if limit is not None:
                hi = min(hi, lo + limit)
            chosen = [(seq, session.rows[seq]) for seq in seqs[lo:hi]]
        return [self._decode(sid, seq, record) for seq, record in chosen]

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return []
            found = sorted({session.by_id[i] for i in ids if i in session.by_id})
            chosen = [(seq, session.rows[seq]) for seq in found]
        return [self._decode(sid, seq, record) for seq, record in chosen]

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return 0
            doomed = {session.by_id[i] for i in ids if i in session.by_id}
            for seq in doomed:
                self._drop(session, seq)
            session.seqs = [seq for seq in session.seqs if seq not in doomed]
            if doomed:
                session.updated_at = max(self.clock(), session.updated_at)
            return len(doomed)

    def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return {"records": [], "entries": []}
            return {"records": sorted(k for k, t in session.records.items() if t),
                    "entries": sorted(k for k, t in session.entries.items() if t.values)}

    def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return 0
            done = 0
            for change in changes:
                if change.space == "message":
                    seq = session.by_id.get(change.key)
                    if seq is None or seq != change.old:
                        continue
                    old = session.rows[seq]
                    session.rows[seq] = Record(change.key, change.new)
                    session.size_bytes += len(change.new.encode("utf-8")) - len(old.body.encode("utf-8"))
                elif change.space == "record":
                    table = session.records.get(change.kind, {})
                    text = table.get(change.key)
                    if text is None or json.loads(text) != change.old:
                        continue
                    table[change.key] = json.dumps(change.new, ensure_ascii=False)
                else:
                    entries = session.entries.get(change.kind)
                    if entries is None or entries.values.get(change.key) != change.old:
                        continue
                    entries.put(change.key, bytes(change.new))
                done += 1
            return done

    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return []
            if ids is not None:
                doomed = sorted({session.by_id[i] for i in ids if i in session.by_id})
            else:
                span = pop_range(len(session.seqs), index or 0, count)
                doomed = [] if span is None else session.seqs[span[0] : span[1]]
            if not doomed:
                return []
            chosen = [(seq, session.rows[seq]) for seq in doomed]
            for seq in doomed:
                self._drop(session, seq)
            gone = set(doomed)
            session.seqs = [seq for seq in session.seqs if seq not in gone]
            session.updated_at = max(self.clock(), session.updated_at)
        return [self._decode(sid, seq, record) for seq, record in chosen]

    def count(self, ns: str, sid: str) -> int:
        with self._state.lock:
            session = self._live(ns, sid)
            return 0 if session is None else len(session.seqs)

    def clear(self, ns: str, sid: str) -> int:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return 0
            removed = len(session.seqs)
            session.seqs.clear()
            session.rows.clear()
            session.by_id.clear()
            session.records.clear()
            session.entries.clear()
            session.size_bytes = 0
            session.updated_at = max(self.clock(), session.updated_at)
            return removed

    # -- entries -------------------------------------------------------------------------------------------------
    def put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> list[bool]:
        with self._state.lock:
            session = self._ensure(ns, sid, options)
            written = []
            for entry in entries:
                table = session.entries.setdefault(entry.kind, _Entries())
                if if_absent and entry.key in table.values:
                    written.append(False)
                    continue
                table.put(entry.key, bytes(entry.value))
                written.append(True)
            self._touch(session, options)
            return written

    def append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> list[int]:
        with self._state.lock:  # re-entrant: both writes happen under one hold, seen together or not at all
            seqs = self.append(ns, sid, records, options)
            self.put_entries(ns, sid, entries, options)
            return seqs

    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        with self._state.lock:
            session = self._live(ns, sid)
            table = None if session is None else session.entries.get(kind)
            if table is None:
                return {}
            return {k: table.values[k] for k in keys if k in table.values}

    def scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> list[tuple[str, bytes]]:
        with self._state.lock:
            session = self._live(ns, sid)
            table = None if session is None else session.entries.get(kind)
            if table is None:
                return []
            keys = table.span(start, stop)
            if reverse:
                keys = keys[::-1]
            if limit is not None:
                keys = keys[:limit]
            return [(k, b"" if keys_only else table.values[k]) for k in keys]

    def delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> int:
        with self._state.lock:
            session = self._live(ns, sid)
            table = None if session is None else session.entries.get(kind)
            if table is None:
                return 0
            doomed = list(dict.fromkeys(keys)) if keys is not None else table.span(start, stop)
            return sum(table.delete(k) for k in doomed)

    # -- records -------------------------------------------------------------------------------------------------
    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        text = json.dumps(data, ensure_ascii=False)
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")
            session.records.setdefault(kind, {})[key] = text

    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None:
                return []
            table = session.records.get(kind, {})
            chosen = sorted(table.items()) if keys is None else sorted((k, table[k]) for k in set(keys) if k in table)
        if last is not None:
            chosen = chosen[-last:] if last else []
        return [(key, json.loads(text)) for key, text in chosen]

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        with self._state.lock:
            session = self._live(ns, sid)
            if session is None or kind not in session.records:
                return 0
            table = session.records[kind]
            doomed = list(table) if keys is None else [k for k in set(keys) if k in table]
            for key in doomed:
                del table[key]
            return len(doomed)

    def stats(self) -> dict[str, Any]:
        with self._state.lock:
            return {
                **super().stats(),
                "sessions": len(self._state.sessions),
                "messages": sum(len(s.seqs) for s in self._state.sessions.values()),
            }
