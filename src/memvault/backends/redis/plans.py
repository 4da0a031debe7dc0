"""Every operation of the Redis backend as a plan (:mod:`.drive`): key layout, decoding and the ``_p_*`` plans.

:class:`RedisPlans` is a mixin of :class:`~memvault.backends.redis.store.RedisStore`; the host class provides
``prefix``, ``mode``, ``clock``, ``url`` and ``native_slack``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from redis.exceptions import ResponseError

from memvault.backends.redis.drive import (
    Command,
    Eval,
    Plan,
    Scan,
    as_text,
    escape_tag,
    glob_escape,
    lua_num,
    pairs,
    unescape_tag,
)
from memvault.backends.redis.scripts import (
    APPEND,
    CLEAR,
    DELETE_ENTRIES,
    DELETE_MESSAGES,
    DELETE_RECORDS,
    DELETE_SESSION,
    GET,
    GET_ENTRIES,
    GET_RECORDS,
    INDEX_DROP,
    INDEX_PAGE,
    INFO,
    POP,
    PURGE_ONE,
    PUT_RECORD,
    READ,
    REWRITE,
    SCAN_ENTRIES,
    UPDATE_METADATA,
)
from memvault.contract import MAX_PAGE, AppendOptions, Clock, Entry, Rewrite, SessionQuery
from memvault.cursors import decode_cursor, encode_cursor
from memvault.errors import BackendUnavailable, CorruptData, SessionNotFound
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch
from memvault.validation import check_limit, merge_session_metadata, metadata_matches

logger = logging.getLogger("memvault.redis")
CHUNK = 500
CAS_ATTEMPTS = 100


class _IndexWalk:
    """Newest-first pages of a namespace index (``ZRANGE … BYSCORE REV LIMIT``), resuming after ties."""

    def __init__(self, index: str, size: int) -> None:
        self.index = index
        self.size = size
        self.top = math.inf
        self.inclusive = True
        self.bottom = "-inf"
        self.offset = 0
        self.done = False

    def below(self, score: float, *, inclusive: bool) -> None:
        if score < self.top or (score == self.top and self.inclusive and not inclusive):
            self.top, self.inclusive = score, inclusive

    def command(self) -> Eval:
        top = "+inf" if self.top == math.inf else (lua_num(self.top) if self.inclusive else "(" + lua_num(self.top))
        return Eval(INDEX_PAGE, (self.index,), (top, self.bottom, self.offset, self.size))

    def advance(self, flat: Sequence[Any]) -> list[tuple[str, float]]:
        entries = [(as_text(m), float(s)) for m, s in pairs(flat)]
        if len(entries) < self.size:
            self.done = True
        if entries:
            last = entries[-1][1]
            same = sum(1 for _, score in entries if score == last)
            # every entry of the chunk scored `last` when `last` is still the top: skip them all next time
            self.offset = self.offset + same if (last == self.top and self.inclusive) else same
            self.top, self.inclusive = last, True
        return entries


class RedisPlans:
    """The plans; see the module docstring for what the host class provides."""

    if TYPE_CHECKING:  # provided by the host class (RedisStore)
        backend: ClassVar[str]
        prefix: str
        mode: str
        native_slack: float
        clock: Clock

        @property
        def url(self) -> str: ...

    # -- keys ----------------------------------------------------------------------------------------------------
    def _base(self, ns: str, sid: str) -> str:
        return f"{self.prefix}{{{escape_tag(ns)}\x1f{escape_tag(sid)}}}:"

    def _keys(self, ns: str, sid: str, n: int = 4) -> tuple[str, ...]:
        base = self._base(ns, sid)
        return (base + "s", base + "m", base + "h", base + "k")[:n]

    def _index(self, ns: str) -> str:
        return f"{self.prefix}ix:{{{escape_tag(ns)}}}"

    def _ns_of_index(self, key: str) -> str:
        return unescape_tag(key[len(self.prefix) + 4 : -1])

    def _indexed(self, script: Command, index: Command) -> Plan:
        """Run a session script and then its index update: one round trip standalone, script first on a Cluster."""
        if self.mode == "cluster":
            (result,) = yield [script]
            yield [index]
            return result
        result, _ = yield [script, index]
        return result

    # -- decoding ------------------------------------------------------------------------------------------------
    def _info(self, ns: str, sid: str, raw: Sequence[Any]) -> SessionInfo:
        try:
            if isinstance(raw, ResponseError):
                raise raw
            created, updated, expires, user, meta, last_seq, size, count = raw
            metadata = json.loads(meta) if meta else {}
            if not isinstance(metadata, dict):
                raise TypeError("metadata is not a JSON object")
            return SessionInfo(
                id=sid,
                namespace=ns,
                user_id=None if user is None else as_text(user),
                created_at=from_epoch(float(created)),
                updated_at=from_epoch(float(updated)),
                message_count=int(count),
                size_bytes=int(size or 0),
                metadata=metadata,
                expires_at=None if expires is None else from_epoch(float(expires)),
                backend=self.backend,
                last_seq=int(last_seq or 0),
            )
        except (ValueError, TypeError, OverflowError, RecursionError, UnicodeDecodeError, ResponseError) as exc:
            raise CorruptData(
                f"Redis at {self.url}: session key {self._keys(ns, sid, 1)[0]!r} holds unreadable fields ({exc}); the "
                "other sessions are unaffected: delete this session or fix its hash"
            ) from None

    def _messages(self, ns: str, sid: str, flat: Sequence[Any]) -> list[Message]:
        out = []
        for seq, body in pairs(flat):
            number = int(float(seq))
            if body is None:
                raise CorruptData(f"Redis at {self.url}: message #{number} of {ns}/{sid} has no body")
            out.append(decode_body(body, session_id=sid, seq=number, where=f"redis {ns}/{sid}#{number}"))
        return out

    # -- the plans (written once; run by the sync driver or the async one) -------------------------------------
    def _write(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions, mode: str,
               tail: Sequence[Any] = ()) -> Plan:
        now = self.clock()
        ttl = options.ttl
        if ttl is None:
            expires = native = refresh_below = ""
        else:
            expires = lua_num(now + ttl)
            native_ms = max(1000, int((ttl + self.native_slack) * 1000))
            native, refresh_below = str(native_ms), str(native_ms - int(self.native_slack * 500))
        metadata = json.dumps(dict(options.metadata), ensure_ascii=False) if options.metadata else "{}"
        args: list[Any] = [
            lua_num(now), expires, native, refresh_below, options.user_id or "", metadata, options.max_messages or 0,
            mode, sid,
        ]
        for record in records:
            args += (record.id, record.body)
        args += tail
        keys = self._keys(ns, sid)
        if self.mode == "cluster":
            (result,) = yield [Eval(APPEND, keys, tuple(args))]
            yield [("ZADD", self._index(ns), "GT", lua_num(now), sid)]
        else:
            (result,) = yield [Eval(APPEND, (*keys, self._index(ns)), tuple(args))]
        return result

    def _p_append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Plan:
        seqs = yield from self._write(ns, sid, records, options, "a")
        return [int(s) for s in seqs]

    def _p_replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Plan:
        seqs = yield from self._write(ns, sid, records, options, "r")
        return [int(s) for s in seqs]

    def _p_ensure_session(self, ns: str, sid: str, options: AppendOptions) -> Plan:
        raw = yield from self._write(ns, sid, (), options, "e")
        return self._info(ns, sid, raw)

    def _p_get_session(self, ns: str, sid: str) -> Plan:
        (raw,) = yield [Eval(INFO, self._keys(ns, sid, 2), (lua_num(self.clock()),))]
        return None if isinstance(raw, int) else self._info(ns, sid, raw)

    def _p_count(self, ns: str, sid: str) -> Plan:
        (raw,) = yield [Eval(INFO, self._keys(ns, sid, 2), (lua_num(self.clock()),))]
        return 0 if isinstance(raw, int) else int(raw[7])

    def _p_update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> Plan:
        # read, merge here (exact JSON numbers), then a compare-and-set script; a concurrent change makes it retry
        keys = self._keys(ns, sid, 2)
        for _ in range(CAS_ATTEMPTS):
            now = lua_num(self.clock())
            expected = ""
            current: dict[str, Any] = {}
            if not replace:
                (raw,) = yield [Eval(INFO, keys, (now,))]
                if isinstance(raw, int):
                    break
                expected = "{}" if raw[4] is None else as_text(raw[4])
                current = self._info(ns, sid, raw).metadata
            merged = merge_session_metadata(current, metadata, replace)
            script = Eval(UPDATE_METADATA, keys, (now, expected, json.dumps(merged, ensure_ascii=False),
                                                  "r" if replace else "m"))
            result = yield from self._indexed(script, ("ZADD", self._index(ns), "XX", "GT", now, sid))
            if not isinstance(result, int):
                return self._info(ns, sid, result)
            if result == 0:
                break
        else:
            raise BackendUnavailable(f"Redis at {self.url}: the metadata of session {sid!r} kept changing during "
                                     f"{CAS_ATTEMPTS} update attempts; retry")
        raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} (never written, deleted or expired)")

    def _p_delete_session(self, ns: str, sid: str) -> Plan:
        script = Eval(DELETE_SESSION, self._keys(ns, sid), (lua_num(self.clock()),))
        existed = yield from self._indexed(script, ("ZREM", self._index(ns), sid))
        return bool(existed)

    def _p_read(
        self,
        ns: str,
        sid: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> Plan:
        if last == 0 or limit == 0:
            return []
        args = (
            lua_num(self.clock()),
            "-inf" if start is None else str(int(start)),
            "+inf" if stop is None else f"({int(stop)}",
            "" if last is None else str(int(last)),
            "" if limit is None else str(int(limit)),
        )
        (flat,) = yield [Eval(READ, self._keys(ns, sid, 3), args)]
        return self._messages(ns, sid, flat)

    def _p_get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Plan:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        (flat,) = yield [Eval(GET, self._keys(ns, sid, 3), (lua_num(self.clock()), *wanted))]
        return sorted(self._messages(ns, sid, flat), key=lambda m: m.seq)

    def _p_delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Plan:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        now = lua_num(self.clock())
        script = Eval(DELETE_MESSAGES, self._keys(ns, sid, 3), (now, *wanted))
        deleted = yield from self._indexed(script, ("ZADD", self._index(ns), "XX", "GT", now, sid))
        return int(deleted)

    def _p_list_kinds(self, ns: str, sid: str) -> Plan:
        (s, k), (_, ez, _) = self._keys(ns, sid, 4)[::3], self._entry_keys(ns, sid)
        alive, kinds = yield [("EXISTS", s), ("SMEMBERS", k)]
        if not alive:
            return {"records": [], "entries": []}
        found: list[str] = []
        low = "-"
        while True:  # one step per kind: the first member at or after the end of the previous kind
            (first,) = yield [("ZRANGEBYLEX", ez, low, "+", "LIMIT", 0, 1)]
            if not first:
                break
            kind = as_text(first[0]).split("\x00", 1)[0]
            found.append(kind)
            low = f"[{kind}\x01"
        records = []
        for kind in sorted(as_text(x) for x in kinds):
            (n,) = yield [("HLEN", f"{self._base(ns, sid)}r:{kind}")]
            if n:
                records.append(kind)
        return {"records": records, "entries": found}

    def _p_rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> Plan:
        if not changes:
            return 0
        args: list[Any] = [lua_num(self.clock())]
        for c in changes:
            old: str | bytes
            new: str | bytes
            if c.space == "message":
                old, new = str(int(c.old)), c.new
            elif c.space == "record":  # compared as stored: the text put_record wrote for that data
                old, new = json.dumps(c.old, ensure_ascii=False), json.dumps(c.new, ensure_ascii=False)
            else:
                old, new = bytes(c.old), bytes(c.new)
            args += (c.space, c.kind, c.key, old, new)
        s, m, h = self._keys(ns, sid, 3)
        (n,) = yield [Eval(REWRITE, (s, m, h, self._entry_keys(ns, sid)[2]), tuple(args))]
        return int(n)

    def _p_pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> Plan:
        now = lua_num(self.clock())
        wanted = () if ids is None else tuple(dict.fromkeys(ids))
        if ids is not None and not wanted:
            return []
        args = (now, "" if ids is not None else str(int(index or 0)), str(int(count)), *wanted)
        flat = yield from self._indexed(Eval(POP, self._keys(ns, sid, 3), args),
                                        ("ZADD", self._index(ns), "XX", "GT", now, sid))
        return sorted(self._messages(ns, sid, flat), key=lambda m: m.seq)

    def _p_clear(self, ns: str, sid: str) -> Plan:
        now = lua_num(self.clock())
        script = Eval(CLEAR, self._keys(ns, sid), (now,))
        removed = yield from self._indexed(script, ("ZADD", self._index(ns), "XX", "GT", now, sid))
        return max(int(removed), 0)

    def _p_put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> Plan:
        text = json.dumps(data, ensure_ascii=False)
        s, _, _, k = self._keys(ns, sid)
        (ok,) = yield [Eval(PUT_RECORD, (s, k), (lua_num(self.clock()), kind, key, text))]
        if not int(ok):
            raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")

    def _p_get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> Plan:
        if keys is not None and not keys:
            return []
        wanted = () if keys is None else tuple(dict.fromkeys(keys))
        (flat,) = yield [Eval(GET_RECORDS, self._keys(ns, sid, 1), (lua_num(self.clock()), kind, *wanted))]
        rows = sorted((as_text(k), as_text(v)) for k, v in pairs(flat))
        if last is not None:
            rows = rows[-last:] if last else []
        return [(k, json.loads(v)) for k, v in rows]

    def _p_delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> Plan:
        if keys is not None and not keys:
            return 0
        s, _, _, k = self._keys(ns, sid)
        wanted = () if keys is None else tuple(dict.fromkeys(keys))
        (n,) = yield [Eval(DELETE_RECORDS, (s, k), (lua_num(self.clock()), kind, *wanted))]
        return int(n)

    # -- entries: P{T}:ev (hash "<kind>\0<key>" -> value) and P{T}:ez (the same members, for lex ranges) ----------
    def _entry_keys(self, ns: str, sid: str) -> tuple[str, str, str]:
        base = self._base(ns, sid)
        return base + "s", base + "ez", base + "ev"

    @staticmethod
    def _lex(kind: str, start: str | None, stop: str | None) -> tuple[str, str]:
        low = f"[{kind}\x00{start}" if start is not None else f"[{kind}\x00"
        high = f"({kind}\x00{stop}" if stop is not None else f"({kind}\x01"
        return low, high

    def _p_put_entries(
        self, ns: str, sid: str, entries: Sequence[Entry], options: AppendOptions, *, if_absent: bool = False
    ) -> Plan:
        tail: list[Any] = ["1" if if_absent else "0"]
        for entry in entries:
            tail += (f"{entry.kind}\x00{entry.key}", bytes(entry.value))
        flags = yield from self._write(ns, sid, (), options, "p", tail)
        return [bool(int(f)) for f in flags]

    def _p_append_entries(
        self, ns: str, sid: str, records: Sequence[Record], entries: Sequence[Entry], options: AppendOptions
    ) -> Plan:
        tail: list[Any] = [str(len(records))]
        for record in records:
            tail += (record.id, record.body)
        for entry in entries:
            tail += (f"{entry.kind}\x00{entry.key}", bytes(entry.value))
        seqs = yield from self._write(ns, sid, (), options, "b", tail)
        return [int(s) for s in seqs]

    def _p_get_entries(self, ns: str, sid: str, kind: str, keys: Sequence[str]) -> Plan:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        s, _, ev = self._entry_keys(ns, sid)
        (flat,) = yield [Eval(GET_ENTRIES, (s, ev), (lua_num(self.clock()), *(f"{kind}\x00{k}" for k in wanted)))]
        cut = len(kind) + 1
        return {as_text(field)[cut:]: bytes(value) for field, value in pairs(flat)}

    def _p_scan_entries(
        self, ns: str, sid: str, kind: str, *, start: str | None = None, stop: str | None = None,
        reverse: bool = False, limit: int | None = None, keys_only: bool = False,
    ) -> Plan:
        if limit == 0:
            return []
        low, high = self._lex(kind, start, stop)
        args = (lua_num(self.clock()), low, high, "1" if reverse else "0", "" if limit is None else str(int(limit)),
                "1" if keys_only else "0")
        (flat,) = yield [Eval(SCAN_ENTRIES, self._entry_keys(ns, sid), args)]
        cut = len(kind) + 1
        return [(as_text(field)[cut:], b"" if keys_only else bytes(value)) for field, value in pairs(flat)]

    def _p_delete_entries(
        self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None, *, start: str | None = None,
        stop: str | None = None,
    ) -> Plan:
        if keys is not None:
            wanted = list(dict.fromkeys(keys))
            if not wanted:
                return 0
            args: tuple[Any, ...] = ("k", *(f"{kind}\x00{k}" for k in wanted))
        else:
            args = ("r", *self._lex(kind, start, stop))
        (n,) = yield [Eval(DELETE_ENTRIES, self._entry_keys(ns, sid), (lua_num(self.clock()), *args))]
        return int(n)

    def _p_list_sessions(self, query: SessionQuery) -> Plan:
        limit = check_limit(query.limit, maximum=MAX_PAGE)
        cursor = decode_cursor(query.cursor, float, str) if query.cursor else None
        index = self._index(query.namespace)
        walk = _IndexWalk(index, min(max(2 * (limit + 1), 32), 1000))
        if query.updated_before is not None:
            walk.below(query.updated_before, inclusive=False)
        if cursor is not None:
            walk.below(cursor[0], inclusive=True)
        if query.updated_after is not None:
            walk.bottom = lua_num(query.updated_after)
        now = lua_num(self.clock())
        found: list[tuple[float, SessionInfo]] = []
        orphans: list[tuple[str, float]] = []
        while len(found) <= limit and not walk.done:
            (flat,) = yield [walk.command()]
            entries = walk.advance(flat)
            if cursor is not None:
                entries = [(sid, sc) for sid, sc in entries if sc < cursor[0] or (sc == cursor[0] and sid < cursor[1])]
            if not entries:
                continue
            raws = yield [Eval(INFO, self._keys(query.namespace, sid, 2), (now,), tolerant=True) for sid, _ in entries]
            for (sid, score), raw in zip(entries, raws, strict=True):
                if raw == 0:
                    orphans.append((sid, score))
                    continue
                if isinstance(raw, int):  # expired: invisible, left for purge_expired
                    continue
                try:
                    info = self._info(query.namespace, sid, raw)
                except CorruptData as exc:  # reported and left out: one damaged session never fails the page
                    logger.warning("skipping a corrupt session in a listing: %s", exc)
                    continue
                if query.user_id is not None and info.user_id != query.user_id:
                    continue
                if not metadata_matches(info.metadata, query.metadata):
                    continue
                found.append((score, info))
        if orphans:
            yield from self._drop(index, orphans)
        items = [info for _, info in found[:limit]]
        next_cursor = None
        if len(found) > limit:
            score, info = found[limit - 1]
            next_cursor = encode_cursor(score, info.id)
        return Page(items, next_cursor)

    def _drop(self, index: str, entries: Sequence[tuple[str, float]]) -> Plan:
        for i in range(0, len(entries), CHUNK):
            args = [x for sid, score in entries[i : i + CHUNK] for x in (sid, lua_num(score))]
            yield [Eval(INDEX_DROP, (index,), tuple(args))]

    def _p_purge_expired(self) -> Plan:
        now = lua_num(self.clock())
        indexes = yield Scan(glob_escape(self.prefix) + "ix:{*}")
        purged = 0
        for index in indexes:
            ns = self._ns_of_index(index)
            walk = _IndexWalk(index, CHUNK)
            gone: list[tuple[str, float]] = []
            while not walk.done:
                (flat,) = yield [walk.command()]
                entries = walk.advance(flat)
                if not entries:
                    continue
                results = yield [Eval(PURGE_ONE, self._keys(ns, sid), (now,)) for sid, _ in entries]
                for entry, result in zip(entries, results, strict=True):
                    if int(result) != 0:
                        gone.append(entry)
                    purged += int(result) == 1
            yield from self._drop(index, gone)
        return purged
