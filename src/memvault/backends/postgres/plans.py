"""Every operation of the PostgreSQL backend as a plan (:mod:`.drive`), written once for both faces.

:class:`PostgresPlans` is a mixin of :class:`~memvault.backends.postgres.store.PostgresStore`: ``_p_<operation>``
methods that yield statements and return the operation's result; the sync store runs them with
:func:`~.drive.drive_sync`, ``store.aio`` with :func:`~.drive.drive_async`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from memvault.backends.postgres.drive import BEGIN, COMMIT, Plan, Q
from memvault.backends.postgres.sql import (
    APPEND_ENTRIES,
    CLEAR,
    COLS,
    DELETE_ENTRIES,
    DELETE_MESSAGES,
    DELETE_SESSION,
    GET,
    GET_ENTRIES,
    LOCK,
    METADATA_MERGE,
    METADATA_REPLACE,
    POP,
    POP_IDS,
    POP_LOCK,
    PURGE,
    PURGE_LOCK,
    PUT_ENTRIES,
    PUT_ENTRY,
    PUT_RECORD,
    REWRITE_ENTRIES,
    REWRITE_MESSAGES,
    REWRITE_RECORDS,
    SCAN_ENTRIES,
    UPDATE_METADATA,
    WRITE,
)
from memvault.codecs.envelope import raw_envelopes
from memvault.config import mask_url
from memvault.contract import MAX_PAGE, AppendOptions, Clock, Entry, Rewrite, SessionQuery, pop_range
from memvault.cursors import decode_cursor, encode_cursor
from memvault.errors import InvalidCursor, InvalidFilter, InvalidMessage, InvalidMetadata, SessionNotFound
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch, to_epoch
from memvault.validation import MAX_SESSION_METADATA_BYTES, check_limit

#: characters of a message's text that go into its tsvector (a tsvector holds at most 1 MB)
MAX_INDEXED_CHARS = 100_000
PURGE_BATCH = 500

def strip_nul(value: Any) -> Any:
    """``value`` with NUL characters removed from every string (jsonb and text columns cannot hold them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    return value


def jsonb_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if "\\u0000" in text:
        text = json.dumps(strip_nul(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text


def display_conninfo(conninfo: str) -> str:
    """A conninfo string (URL or ``key=value`` list) safe to show: the password is replaced by ``***``."""
    if "://" in conninfo:
        masked = mask_url(conninfo)
        parts = urlsplit(masked)
        if parts.query:
            query = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)]
            masked = urlunsplit(parts._replace(query=urlencode(query, safe="/*")))
        return masked
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", conninfo, flags=re.IGNORECASE)


def conninfo_password(conninfo: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(conninfo).get("password") or None  # type: ignore[return-value]
    except psycopg.Error:
        return None


def _encode_find_cursor(key: float, sid: str, seq: int) -> str:
    return encode_cursor("m", key, sid, seq)


def _decode_find_cursor(cursor: str) -> tuple[float, str, int]:
    tag, key, sid, seq = decode_cursor(cursor, str, float, str, int, what="find_messages page")
    if tag != "m":
        raise InvalidCursor(f"invalid cursor {cursor[:40]!r}: pass back the next_cursor of a previous find_messages page")
    return key, sid, seq


def _epoch(value: datetime | float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_epoch(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidFilter(f"{what} must be a datetime or epoch seconds, got {type(value).__name__}")


class PostgresPlans:
    """The plans; the host class provides ``clock``, ``_sql``, ``display_conninfo``, ``schema`` and ``fts_config``."""

    if TYPE_CHECKING:  # provided by the host class (PostgresStore)
        backend: ClassVar[str]
        schema: str
        has_vector: bool
        _display: str
        clock: Clock

        def _sql(self, template: str) -> str: ...

    # -- row mapping -------------------------------------------------------------------------------------------------
    def _info(self, row: Sequence[Any]) -> SessionInfo:
        sid, ns, user, created, updated, count, size, meta, expires, last_seq = row[:10]
        return SessionInfo(
            id=sid,
            namespace=ns,
            user_id=user,
            created_at=from_epoch(created),
            updated_at=from_epoch(updated),
            message_count=count,
            size_bytes=size,
            metadata=meta if isinstance(meta, dict) else json.loads(meta),
            expires_at=from_epoch(expires),
            backend=self.backend,
            last_seq=last_seq,
        )

    def _decode(self, ns: str, sid: str, seq: int, body: str) -> Message:
        return decode_body(body, session_id=sid, seq=seq, where=f"{self._display} {self.schema} {ns}/{sid}#{seq}")

    def _append_params(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> dict[str, Any]:
        now = self.clock()
        ids, bodies, roles, created, metas, texts = [], [], [], [], [], []
        for record in records:
            if "\x00" in record.id:
                raise InvalidMessage(f"message id {record.id[:40]!r} holds a NUL character; PostgreSQL refuses it")
            with raw_envelopes():  # a write derives columns from what it stores: never from an opened envelope
                message = decode_body(record.body, session_id=sid, seq=None)
            ids.append(record.id)
            bodies.append(record.body)
            roles.append(message.role)
            created.append(to_epoch(message.created_at))
            metas.append(jsonb_text(message.metadata) if message.metadata else None)
            texts.append(message.text[:MAX_INDEXED_CHARS].replace("\x00", ""))
        meta = json.dumps(dict(options.metadata or {}), ensure_ascii=False, allow_nan=False)
        return {
            "ns": ns,
            "sid": sid,
            "ids": ids,
            "bodies": bodies,
            "roles": roles,
            "created": created,
            "metas": metas,
            "texts": texts,
            "now": now,
            "expires": None if options.ttl is None else now + options.ttl,
            "user": options.user_id,
            "meta": meta,
        }

    # -- plans (the logic, written once for both faces) --------------------------------------------------------------
    def _p_write(
        self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions, replace: bool = False
    ) -> Plan[tuple[SessionInfo, list[int]]]:
        params = self._append_params(ns, sid, records, options)
        params["cap"], params["replace"] = options.max_messages, replace
        rows = yield Q(self._sql(WRITE), params)
        return self._info(rows[0]), list(rows[0][10])

    def _p_append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Plan[list[int]]:
        _, seqs = yield from self._p_write(ns, sid, records, options)
        return seqs

    def _p_replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Plan[list[int]]:
        _, seqs = yield from self._p_write(ns, sid, records, options, replace=True)
        return seqs

    def _p_ensure_session(self, ns: str, sid: str, options: AppendOptions) -> Plan[SessionInfo]:
        info, _ = yield from self._p_write(ns, sid, [], options)
        return info

    def _p_get_session(self, ns: str, sid: str) -> Plan[SessionInfo | None]:
        rows = yield Q(self._sql(GET), {"ns": ns, "sid": sid, "now": self.clock()})
        return self._info(rows[0]) if rows else None

    def _p_update_metadata(
        self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool
    ) -> Plan[SessionInfo]:
        sql = UPDATE_METADATA.replace("{MERGED}", METADATA_REPLACE if replace else METADATA_MERGE)
        params = {"ns": ns, "sid": sid, "now": self.clock(), "limit": MAX_SESSION_METADATA_BYTES,
                  "md": json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"), allow_nan=False)}
        rows = yield Q(self._sql(sql), params)
        if rows:
            return self._info(rows[0])
        live = yield Q(self._sql(GET), params)
        if not live:
            raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} (never written, deleted or expired)")
        raise InvalidMetadata(f"session metadata of {sid!r} would exceed {MAX_SESSION_METADATA_BYTES} bytes after "
                              "this update (nothing was changed)")

    def _p_delete_session(self, ns: str, sid: str) -> Plan[bool]:
        yield BEGIN
        locked = yield Q(self._sql(LOCK), (ns, sid))
        if not locked:
            yield COMMIT
            return False
        rows = yield Q(self._sql(DELETE_SESSION), {"ns": ns, "sid": sid, "now": self.clock()})
        yield COMMIT
        return bool(rows and rows[0][0])

    def _p_list_sessions(self, query: SessionQuery) -> Plan[Page[SessionInfo]]:
        limit = check_limit(query.limit, maximum=MAX_PAGE)
        where = ["namespace = %s", "(expires_at IS NULL OR expires_at > %s)"]
        params: list[Any] = [query.namespace, self.clock()]
        if query.user_id is not None:
            where.append("user_id = %s")
            params.append(query.user_id)
        if query.updated_after is not None:
            where.append("updated_at >= %s")
            params.append(query.updated_after)
        if query.updated_before is not None:
            where.append("updated_at < %s")
            params.append(query.updated_before)
        for key, value in (query.metadata or {}).items():
            # jsonb equality: numbers by value, objects regardless of key order, true is not 1
            where.append("(metadata -> %s)::jsonb = %s::jsonb")
            params.extend([key, jsonb_text(value)])
        if query.cursor:
            updated, sid = decode_cursor(query.cursor, float, str)
            where.append("(updated_at, id) < (%s, %s)")
            params.extend([updated, sid])
        sql = (
            f"SELECT {COLS} FROM {self._sql('{s}')}.sessions WHERE {' AND '.join(where)} "
            "ORDER BY updated_at DESC, id DESC LIMIT %s"
        )
        rows = yield Q(sql, [*params, limit + 1])
        items = [self._info(r) for r in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            cursor = encode_cursor(rows[limit - 1][4], rows[limit - 1][0])
        return Page(items, cursor)

    def _p_purge_expired(self) -> Plan[int]:
        total = 0
        now = self.clock()
        while True:
            yield BEGIN
            dead = yield Q(self._sql(PURGE_LOCK), {"now": now, "batch": PURGE_BATCH})
            if dead:
                yield Q(self._sql(PURGE), {"nss": [r[0] for r in dead], "sids": [r[1] for r in dead]})
            yield COMMIT
            total += len(dead)
            if len(dead) < PURGE_BATCH:
                return total

    def _p_read(
        self,
        ns: str,
        sid: str,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> Plan[list[Message]]:
        if last == 0 or limit == 0:
            return []
        where = "namespace = %(ns)s AND session_id = %(sid)s"
        params: dict[str, Any] = {"ns": ns, "sid": sid, "now": self.clock()}
        if start is not None:
            where += " AND seq >= %(start)s"
            params["start"] = start
        if stop is not None:
            where += " AND seq < %(stop)s"
            params["stop"] = stop
        base = f"SELECT seq, body FROM {{s}}.messages WHERE {where} AND {{LIVE_SESSION}}"
        if last is not None:
            rows = yield Q(self._sql(base + " ORDER BY seq DESC LIMIT %(n)s"), {**params, "n": last})
            rows.reverse()
            if limit is not None:
                rows = rows[:limit]
        elif limit is not None:
            rows = yield Q(self._sql(base + " ORDER BY seq LIMIT %(n)s"), {**params, "n": limit})
        else:
            rows = yield Q(self._sql(base + " ORDER BY seq"), params)
        return [self._decode(ns, sid, seq, body) for seq, body in rows]

    def _p_get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Plan[list[Message]]:
        wanted = [i for i in dict.fromkeys(ids) if "\x00" not in i]
        if not wanted:
            return []
        rows = yield Q(
            self._sql(
                "SELECT seq, body FROM {s}.messages WHERE namespace = %(ns)s AND session_id = %(sid)s "
                "AND id = ANY(%(ids)s::text[]) AND {LIVE_SESSION} ORDER BY seq"
            ),
            {"ns": ns, "sid": sid, "ids": wanted, "now": self.clock()},
        )
        return [self._decode(ns, sid, seq, body) for seq, body in rows]

    def _p_delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Plan[int]:
        wanted = [i for i in dict.fromkeys(ids) if "\x00" not in i]
        if not wanted:
            return 0
        rows = yield Q(self._sql(DELETE_MESSAGES), {"ns": ns, "sid": sid, "ids": wanted, "now": self.clock()})
        return int(rows[0][0])

    def _p_list_kinds(self, ns: str, sid: str) -> Plan[dict[str, list[str]]]:
        params = {"ns": ns, "sid": sid, "now": self.clock()}
        out: dict[str, list[str]] = {}
        for table in ("records", "entries"):
            rows = yield Q(self._sql(
                f"SELECT DISTINCT kind FROM {{s}}.{table} WHERE namespace = %(ns)s AND session_id = %(sid)s "
                "AND {LIVE_SESSION} ORDER BY kind"), params)
            out[table] = [r[0] for r in rows]
        return out

    def _p_rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> Plan[int]:
        base = {"ns": ns, "sid": sid, "now": self.clock()}
        done = 0
        messages = [c for c in changes if c.space == "message" and "\x00" not in c.key]
        if messages:
            params = self._append_params(ns, sid, [Record(c.key, c.new) for c in messages], AppendOptions())
            rows = yield Q(self._sql(REWRITE_MESSAGES), {
                **base, "seqs": [int(c.old) for c in messages],
                **{k: params[k] for k in ("ids", "bodies", "roles", "metas", "texts")}})
            done += int(rows[0][0])
        for space, sql, encode in (("record", REWRITE_RECORDS, lambda d: json.dumps(d, ensure_ascii=False)),
                                   ("entry", REWRITE_ENTRIES, bytes)):
            chosen = [c for c in changes if c.space == space]
            if chosen:
                rows = yield Q(self._sql(sql), {
                    **base, "kinds": [c.kind for c in chosen], "keys": [c.key for c in chosen],
                    "olds": [encode(c.old) for c in chosen], "news": [encode(c.new) for c in chosen]})
                done += len(rows)
        return done

    def _p_pop_messages(
        self, ns: str, sid: str, index: int | None, count: int, ids: Sequence[str] | None
    ) -> Plan[list[Message]]:
        params: dict[str, Any] = {"ns": ns, "sid": sid, "now": self.clock()}
        if ids is not None:  # one statement: RETURNING names exactly the rows this statement deleted
            wanted = [i for i in dict.fromkeys(ids) if "\x00" not in i]
            if not wanted:
                return []
            rows = yield Q(self._sql(POP_IDS), {**params, "ids": wanted})
            return [self._decode(ns, sid, seq, body) for seq, body in rows]
        index = index or 0
        yield BEGIN
        locked = yield Q(self._sql(POP_LOCK), params)
        span = pop_range(int(locked[0][0]), index, count) if locked else None
        if span is None:
            yield COMMIT
            return []
        size, (start, stop) = int(locked[0][0]), span
        backwards = start > size - stop  # nearer the end: walk the primary key backwards
        params.update(n=stop - start, off=size - stop if backwards else start)
        rows = yield Q(self._sql(POP.replace("{ORDER}", "DESC" if backwards else "ASC")), params)
        yield COMMIT
        return [self._decode(ns, sid, seq, body) for seq, body in rows]

    def _p_count(self, ns: str, sid: str) -> Plan[int]:
        rows = yield Q(
            self._sql("SELECT message_count FROM {s}.sessions WHERE namespace = %(ns)s AND id = %(sid)s AND {LIVE}"),
            {"ns": ns, "sid": sid, "now": self.clock()},
        )
        return int(rows[0][0]) if rows else 0

    def _p_clear(self, ns: str, sid: str) -> Plan[int]:
        rows = yield Q(self._sql(CLEAR), {"ns": ns, "sid": sid, "now": self.clock()})
        return int(rows[0][0])

    def _p_put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> Plan[None]:
        text = json.dumps(data, ensure_ascii=False)
        rows = yield Q(
            self._sql(PUT_RECORD),
            {"ns": ns, "sid": sid, "kind": kind, "key": key, "data": text, "now": self.clock()},
        )
        if not rows:
            raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")

    def _p_get_records(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, last: int | None = None
    ) -> Plan[list[tuple[str, dict[str, Any]]]]:
        if last == 0:
            return []
        base = (
            "SELECT key, data FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s"
            " AND {LIVE_SESSION}"
        )
        params: dict[str, Any] = {"ns": ns, "sid": sid, "kind": kind, "now": self.clock()}
        if keys is not None:
            params["keys"] = list(dict.fromkeys(keys))
            base += " AND key = ANY(%(keys)s::text[])"
        if last is not None:
            rows = yield Q(self._sql(base + " ORDER BY key DESC LIMIT %(n)s"), {**params, "n": last})
            rows.reverse()
        else:
            rows = yield Q(self._sql(base + " ORDER BY key"), params)
        return [(key, json.loads(data)) for key, data in rows]

    def _p_delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> Plan[int]:
        sql = "WITH d AS (DELETE FROM {s}.records WHERE namespace = %(ns)s AND session_id = %(sid)s AND kind = %(kind)s"
        params: dict[str, Any] = {"ns": ns, "sid": sid, "kind": kind, "now": self.clock()}
        if keys is not None:
            sql += " AND key = ANY(%(keys)s::text[])"
            params["keys"] = list(dict.fromkeys(keys))
        rows = yield Q(self._sql(sql + " AND {LIVE_SESSION} RETURNING 1) SELECT count(*) FROM d"), params)
        return int(rows[0][0])

    # -- entries -------------------------------------------------------------------------------------------------
    def _p_put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> Plan[list[bool]]:
        # one row per (kind, key): the last of a repeated key wins (the first with if_absent)
        chosen: dict[tuple[str, str], int] = {}
        for i, entry in enumerate(entries):
            if "\x00" in entry.kind or "\x00" in entry.key:
                raise InvalidMessage(f"entry key {entry.key[:40]!r} holds a NUL character; PostgreSQL refuses it")
            if not (if_absent and (entry.kind, entry.key) in chosen):
                chosen[(entry.kind, entry.key)] = i
        params = self._append_params(ns, sid, [], options)
        order = sorted(chosen.values())
        conflict = "DO NOTHING" if if_absent else "DO UPDATE SET value = excluded.value"
        if len(order) == 1:  # scalar parameters: a big value (an artifact chunk) passes several times faster
            one = entries[order[0]]
            params.update(kind=one.kind, key=one.key, value=bytes(one.value))
            sql = PUT_ENTRY
        else:
            params.update(kinds=[entries[i].kind for i in order], keys=[entries[i].key for i in order],
                          values=[bytes(entries[i].value) for i in order])
            sql = PUT_ENTRIES
        rows = yield Q(self._sql(sql.replace("{CONFLICT}", conflict)), params, binary=True)
        written = {(kind, key) for kind, key in rows}
        return [chosen[(e.kind, e.key)] == i and (e.kind, e.key) in written if if_absent else (e.kind, e.key) in written
                for i, e in enumerate(entries)]

    def _p_append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> Plan[list[int]]:
        last: dict[tuple[str, str], Entry] = {}
        for entry in entries:  # a repeated key: the last wins
            if "\x00" in entry.kind or "\x00" in entry.key:
                raise InvalidMessage(f"entry key {entry.key[:40]!r} holds a NUL character; PostgreSQL refuses it")
            last.pop((entry.kind, entry.key), None)
            last[(entry.kind, entry.key)] = entry
        params = self._append_params(ns, sid, records, options)
        params.update(cap=options.max_messages, kinds=[e.kind for e in last.values()],
                      keys=[e.key for e in last.values()], values=[bytes(e.value) for e in last.values()])
        rows = yield Q(self._sql(APPEND_ENTRIES), params, binary=True)
        return list(rows[0][0])

    def _p_get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> Plan[dict[str, bytes]]:
        wanted = [k for k in dict.fromkeys(keys) if "\x00" not in k]
        if not wanted:
            return {}
        rows = yield Q(self._sql(GET_ENTRIES), {"ns": ns, "sid": sid, "kind": kind, "keys": wanted, "now": self.clock()},
                       binary=True)
        return {key: bytes(value) for key, value in rows}

    def _p_scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> Plan[list[tuple[str, bytes]]]:
        span = (" AND key >= %(start)s" if start is not None else "") + (" AND key < %(stop)s" if stop is not None else "")
        sql = (SCAN_ENTRIES.replace("{VALUE}", "''::bytea" if keys_only else "value").replace("{RANGE}", span)
               .replace("{ORDER}", "DESC" if reverse else "ASC"))
        rows = yield Q(self._sql(sql), {"ns": ns, "sid": sid, "kind": kind, "start": start, "stop": stop,
                                        "limit": limit, "now": self.clock()}, binary=True)
        return [(key, bytes(value)) for key, value in rows]

    def _p_delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> Plan[int]:
        params: dict[str, Any] = {"ns": ns, "sid": sid, "kind": kind, "start": start, "stop": stop, "now": self.clock()}
        if keys is not None:
            params["keys"] = [k for k in dict.fromkeys(keys) if "\x00" not in k]
            if not params["keys"]:
                return 0
            where = " AND key = ANY(%(keys)s::text[])"
        else:
            where = (" AND key >= %(start)s" if start is not None else "") + (
                " AND key < %(stop)s" if stop is not None else "")
        rows = yield Q(self._sql(DELETE_ENTRIES.replace("{KEYS}", where)), params)
        return int(rows[0][0])

    def _p_find_messages(
        self,
        namespace: str,
        user_id: str | None = None,
        session_ids: Sequence[str] | None = None,
        text: str | None = None,
        after: datetime | float | None = None,
        before: datetime | float | None = None,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Plan[Page[Message]]:
        limit = check_limit(limit, maximum=MAX_PAGE)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidFilter("metadata filter must be a dict of key -> value (equality)")
        if text is not None and not isinstance(text, str):
            raise InvalidFilter(f"text must be a str, got {type(text).__name__}")
        if isinstance(session_ids, str):
            raise InvalidFilter("session_ids must be a list of session ids, not one str")
        where = ["m.namespace = %(ns)s"]
        params: dict[str, Any] = {"ns": namespace, "now": self.clock()}
        if user_id is not None:
            where.append("m.user_id = %(user)s")
            params["user"] = user_id
        if session_ids is not None:
            where.append("m.session_id = ANY(%(sids)s::text[])")
            params["sids"] = list(session_ids)
        low, high = _epoch(after, "after"), _epoch(before, "before")
        if low is not None:
            where.append("m.created_at >= %(after)s")
            params["after"] = low
        if high is not None:
            where.append("m.created_at < %(before)s")
            params["before"] = high
        for n, (key, value) in enumerate((metadata or {}).items()):
            where.append(f"m.metadata -> %(mk{n})s = %(mv{n})s::jsonb")
            params[f"mk{n}"], params[f"mv{n}"] = key, jsonb_text(value)
        where.append(
            "EXISTS (SELECT 1 FROM {s}.sessions s WHERE s.namespace = m.namespace AND s.id = m.session_id "
            "AND (s.expires_at IS NULL OR s.expires_at > %(now)s))"
        )
        if text is not None and text.strip():
            key = "ts_rank(m.search, q.query)::float8"
            source = "{s}.messages m, websearch_to_tsquery({cfg}, %(text)s) AS q(query)"
            where.append("m.search @@ q.query")
            params["text"] = text.replace("\x00", "")
        else:
            key = "m.created_at"
            source = "{s}.messages m"
        inner = f"SELECT {key} AS k, m.session_id, m.seq, m.body FROM {source} WHERE {' AND '.join(where)}"
        outer = f"SELECT k, session_id, seq, body FROM ({inner}) x"
        if cursor:
            ck, csid, cseq = _decode_find_cursor(cursor)
            outer += " WHERE (k, session_id, seq) < (%(ck)s, %(csid)s, %(cseq)s)"
            params.update(ck=ck, csid=csid, cseq=cseq)
        outer += " ORDER BY k DESC, session_id DESC, seq DESC LIMIT %(n)s"
        params["n"] = limit + 1
        rows = yield Q(self._sql(outer), params)
        items = [self._decode(namespace, sid, seq, body) for _, sid, seq, body in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            k, sid, seq, _ = rows[limit - 1]
            next_cursor = _encode_find_cursor(k, sid, seq)
        return Page(items, next_cursor)

    def _p_ping(self) -> Plan[None]:
        yield Q("SELECT 1")

    def _p_stats(self) -> Plan[dict[str, Any]]:
        versions = yield Q(self._sql("SELECT component, version FROM {s}.schema_versions"))
        counts = yield Q(
            self._sql("SELECT count(*), COALESCE(sum(message_count), 0) FROM {s}.sessions WHERE {LIVE}"),
            {"now": self.clock()},
        )
        server = yield Q("SHOW server_version")
        return {
            "schema": self.schema,
            "schema_versions": dict(versions),
            "sessions": int(counts[0][0]),
            "messages": int(counts[0][1]),
            "server_version": server[0][0],
            "has_vector": self.has_vector,
        }
