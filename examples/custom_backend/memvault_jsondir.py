"""``jsondir:///path``: a complete memvault backend in one file, one JSON file per namespace.

A write changes the namespace's sessions in memory, then rewrites its file atomically (temp file + ``os.replace``):
a batch is all-or-nothing, also across a crash. One lock makes every call atomic within the process; no capabilities
are declared (not ``multiprocess``: two processes would overwrite each other's files). Fine for thousands of
messages, not millions. See docs/custom-backend.md; tests/test_custom_backend_example.py runs the kit on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from memvault.contract import AppendOptions, Entry, SessionQuery, Store, in_range, page_of, pop_range, session_matches
from memvault.errors import SessionNotFound
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch
from memvault.validation import merge_session_metadata

Session = dict[str, Any]  # user, meta, created, updated, expires, last_seq, messages [[seq, id, body]], records, entries


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))  # callers never share mutable objects with the store


def _empty(options: AppendOptions, now: float) -> Session:
    return {"user": options.user_id, "meta": _copy(dict(options.metadata or {})), "created": now, "updated": now,
            "expires": None, "last_seq": 0, "messages": [], "records": {}, "entries": {}}


class JsonDirStore(Store):
    backend: ClassVar[str] = "jsondir"

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(**options)  # clock= (epoch seconds; the kit injects a fake one), max_message_bytes=
        self.root = Path(path).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._cache: dict[str, dict[str, Session]] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> JsonDirStore:
        return cls(url.split("://", 1)[1], **options)

    @property
    def url(self) -> str:
        return f"jsondir://{self.root}"

    # -- storage ------------------------------------------------------------------------------------------------
    def _file(self, ns: str) -> Path:
        return self.root / f"{hashlib.sha256(ns.encode()).hexdigest()}.json"  # any namespace is a safe file name

    def _sessions(self, ns: str) -> dict[str, Session]:
        if ns not in self._cache:
            file = self._file(ns)
            self._cache[ns] = json.loads(file.read_text("utf-8"))["sessions"] if file.exists() else {}
        return self._cache[ns]

    @contextmanager
    def _write(self, ns: str) -> Iterator[dict[str, Session]]:
        """Change ``ns``'s sessions, then save them with one atomic rename; on any error forget the changes."""
        with self._lock:
            try:
                yield self._sessions(ns)
                tmp = self._file(ns).with_suffix(".tmp")
                tmp.write_text(json.dumps({"namespace": ns, "sessions": self._cache[ns]}, ensure_ascii=False), "utf-8")
                os.replace(tmp, self._file(ns))
            except BaseException:
                self._cache.pop(ns, None)  # the file still holds the last good state
                raise

    def _live(self, ns: str, sid: str) -> Session | None:
        s = self._sessions(ns).get(sid)
        return None if s is None or (s["expires"] is not None and s["expires"] <= self.clock()) else s

    def _view(self, ns: str, sid: str) -> Session:
        """The live session, or an empty one (reads of missing or expired sessions find nothing)."""
        return self._live(ns, sid) or _empty(AppendOptions(), 0.0)

    def _ensure(self, ns: str, sid: str, options: AppendOptions, *, touch: bool = True) -> Session:
        """The live session (a fresh one if it is missing or expired), its TTL slid to now + ttl."""
        now = self.clock()
        s = self._live(ns, sid)
        if s is None:  # missing or expired: a write starts a fresh session
            s = self._sessions(ns)[sid] = _empty(options, now)
        s["updated"] = max(now, s["updated"]) if touch else s["updated"]
        s["expires"] = None if options.ttl is None else now + options.ttl
        return s

    def _touch(self, s: Session) -> None:  # deletes and metadata updates move updated_at, not the TTL
        s["updated"] = max(self.clock(), s["updated"])

    def _info(self, ns: str, sid: str, s: Session) -> SessionInfo:
        return SessionInfo(
            id=sid, namespace=ns, user_id=s["user"], created_at=from_epoch(s["created"]),
            updated_at=from_epoch(s["updated"]), message_count=len(s["messages"]),
            size_bytes=sum(len(body.encode()) for _, _, body in s["messages"]), metadata=_copy(s["meta"]),
            expires_at=from_epoch(s["expires"]), backend=self.backend, last_seq=s["last_seq"])

    @staticmethod
    def _add(s: Session, records: Sequence[Record], cap: int | None) -> list[int]:
        known = {mid: seq for seq, mid, _ in s["messages"]}
        for record in records:
            if record.id not in known:  # idempotent on id: a retried append stores nothing twice
                s["last_seq"] += 1
                known[record.id] = s["last_seq"]
                s["messages"].append([s["last_seq"], record.id, record.body])
        if cap is not None and len(s["messages"]) > cap:
            del s["messages"][: len(s["messages"]) - cap]  # trim the oldest, in the same write
        return [known[record.id] for record in records]

    @staticmethod
    def _put(s: Session, entries: Sequence[Entry], if_absent: bool) -> list[bool]:
        written = []
        for entry in entries:  # in order: a key repeated in one batch, the last wins (with if_absent: the first)
            table = s["entries"].setdefault(entry.kind, {})
            written.append(not (if_absent and entry.key in table))
            if written[-1]:
                table[entry.key] = base64.b64encode(bytes(entry.value)).decode()
        return written

    # -- sessions -----------------------------------------------------------------------------------------------
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        with self._lock:
            return None if (s := self._live(ns, sid)) is None else self._info(ns, sid, s)

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        with self._write(ns):
            return self._info(ns, sid, self._ensure(ns, sid, options, touch=False))

    def delete_session(self, ns: str, sid: str) -> bool:
        with self._write(ns) as sessions:
            return self._live(ns, sid) is not None and sessions.pop(sid) is not None

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        ns = query.namespace
        with self._lock:
            infos = [self._info(ns, sid, s) for sid in list(self._sessions(ns)) if (s := self._live(ns, sid))]
        return page_of([i for i in infos if session_matches(i, query)], query)  # the contract's in-process paging

    def purge_expired(self) -> int:
        with self._lock:
            purged = 0
            on_disk = {json.loads(f.read_text("utf-8"))["namespace"] for f in self.root.glob("*.json")}
            for ns in on_disk | set(self._cache):
                if dead := [sid for sid in self._sessions(ns) if self._live(ns, sid) is None]:
                    with self._write(ns) as sessions:
                        for sid in dead:
                            del sessions[sid]
                    purged += len(dead)
            return purged

    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        with self._write(ns):
            if (s := self._live(ns, sid)) is None:
                raise SessionNotFound(f"no session {sid!r} in namespace {ns!r}")
            s["meta"] = merge_session_metadata(s["meta"], _copy(dict(metadata)), replace)  # raises when too large
            self._touch(s)
            return self._info(ns, sid, s)

    # -- messages -----------------------------------------------------------------------------------------------
    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        with self._write(ns):
            return self._add(self._ensure(ns, sid, options), records, options.max_messages)

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        with self._write(ns):
            s = self._ensure(ns, sid, options)
            s["messages"] = []
            return self._add(s, records, options.max_messages)

    def read(self, ns: str, sid: str, *, start: int | None = None, stop: int | None = None,
             last: int | None = None, limit: int | None = None) -> list[Message]:
        with self._lock:
            rows = [m for m in self._view(ns, sid)["messages"]
                    if (start is None or m[0] >= start) and (stop is None or m[0] < stop)]
        rows = rows[len(rows) - last:] if last else [] if last == 0 else rows
        return [decode_body(body, session_id=sid, seq=seq) for seq, _, body in rows[:limit]]

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        with self._lock:
            rows = [m for m in self._view(ns, sid)["messages"] if m[1] in set(ids)]
        return [decode_body(body, session_id=sid, seq=seq) for seq, _, body in rows]

    def pop_messages(self, ns: str, sid: str, *, index: int | None = None, count: int = 1,
                     ids: Sequence[str] | None = None) -> list[Message]:
        with self._write(ns):
            s = self._view(ns, sid)
            span = pop_range(len(s["messages"]), index or 0, count) if ids is None else None
            chosen = ([m for m in s["messages"] if m[1] in set(ids)] if ids is not None
                      else s["messages"][span[0]: span[1]] if span else [])
            if chosen:
                gone = {m[0] for m in chosen}
                s["messages"] = [m for m in s["messages"] if m[0] not in gone]
                self._touch(s)
        return [decode_body(body, session_id=sid, seq=seq) for seq, _, body in chosen]

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        return len(self.pop_messages(ns, sid, ids=ids))

    def count(self, ns: str, sid: str) -> int:
        with self._lock:
            return len(self._view(ns, sid)["messages"])

    def clear(self, ns: str, sid: str) -> int:
        with self._write(ns):
            if (s := self._live(ns, sid)) is None:
                return 0
            removed = len(s["messages"])
            s.update(messages=[], records={}, entries={})  # the seq counter (last_seq) stays
            self._touch(s)
            return removed

    # -- records ------------------------------------------------------------------------------------------------
    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        with self._write(ns):
            if (s := self._live(ns, sid)) is None:
                raise SessionNotFound(f"no session {sid!r} in namespace {ns!r}")
            s["records"].setdefault(kind, {})[key] = _copy(dict(data))

    def get_records(self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None,
                    last: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            table = self._view(ns, sid)["records"].get(kind, {})
            rows = sorted((k, _copy(v)) for k, v in table.items() if keys is None or k in keys)
        return rows[len(rows) - last:] if last else [] if last == 0 else rows

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        with self._write(ns):
            table = self._view(ns, sid)["records"].get(kind, {})
            doomed = list(table) if keys is None else [k for k in set(keys) if k in table]
            for key in doomed:
                del table[key]
            return len(doomed)

    # -- entries: bytes values (base64 in the JSON); keys sort by code point, which is Python's str order ----------
    def put_entries(self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *,
                    if_absent: bool = False) -> list[bool]:
        with self._write(ns):
            return self._put(self._ensure(ns, sid, options), entries, if_absent)

    def append_entries(self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry],
                       options: AppendOptions) -> list[int]:
        with self._write(ns):  # one write: the messages and the entries land together or not at all
            s = self._ensure(ns, sid, options)
            seqs = self._add(s, records, options.max_messages)
            self._put(s, entries, False)
            return seqs

    def get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> dict[str, bytes]:
        with self._lock:
            table = self._view(ns, sid)["entries"].get(kind, {})
            return {k: base64.b64decode(table[k]) for k in keys if k in table}

    def scan_entries(self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
                     reverse: bool = False, limit: int | None = None, keys_only: bool = False) -> list[tuple[str, bytes]]:
        with self._lock:
            table = self._view(ns, sid)["entries"].get(kind, {})
            keys = sorted((k for k in table if in_range(k, start, stop)), reverse=reverse)[:limit]
            return [(k, b"" if keys_only else base64.b64decode(table[k])) for k in keys]

    def delete_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *,
                       start: str | None = None, stop: str | None = None) -> int:
        with self._write(ns):
            table = self._view(ns, sid)["entries"].get(kind, {})
            doomed = [k for k in dict.fromkeys(keys) if k in table] if keys is not None else [
                k for k in table if in_range(k, start, stop)]
            for key in doomed:
                del table[key]
            return len(doomed)
