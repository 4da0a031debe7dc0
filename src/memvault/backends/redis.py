"""``redis://`` (``rediss://`` for TLS, ``redis+cluster://``, ``redis+sentinel://``) — plain Redis 7, no modules.

Layout (``P`` = prefix, default ``memvault:``; ``T`` = the session's hash tag ``<ns>\\x1f<sid>`` with ``\\``, ``{``,
``}`` escaped so an id can never break the tag). All of one session's keys share the tag, hence one Cluster slot,
so every per-session operation is ONE atomic Lua script even on a Cluster:

- ``P{T}:s`` hash: created ``c``, updated ``up``, expires ``x`` (absent = never), user ``u``, metadata ``md``,
  last seq ``ls``, body bytes ``b``.
- ``P{T}:m`` sorted set: message id -> seq. ZSCORE gives id -> seq (idempotent append, delete by id), ZRANGE
  BYSCORE gives seq ranges and tails in O(log n + k): reads never touch more of the session than they return.
- ``P{T}:h`` hash: message id -> canonical body. ``P{T}:k`` set of record kinds; ``P{T}:r:<kind>`` hash per kind.
- ``P ix:{<ns>}`` sorted set per namespace: session id -> updated_at, for listing without KEYS. It lives in the
  namespace's slot, so it is updated right after the session script (same pipeline on a standalone server; a
  second round trip on a Cluster, script first so an index entry never precedes its session). Entries whose
  session is gone (natively expired) are dropped lazily by listing and by ``purge_expired``.

Visibility follows the store's clock through the stored ``x``; every write also sets a native PEXPIRE of
ttl + ``native_slack`` seconds so Redis reclaims memory even if nobody purges. Times travel as Python ``repr``
strings (Lua would round doubles to 14 digits) and are only compared, never printed, inside scripts.

Sync and async share everything: each operation is a generator yielding batches of commands (one batch = one round
trip) and is executed by a sync (``redis.Redis``/``RedisCluster``) or an async (``redis.asyncio``) driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, ResponseError
from redis.retry import Retry

from memvault.contract import MAX_PAGE, AppendOptions, SessionQuery, Store
from memvault.cursors import decode_cursor, encode_cursor
from memvault.errors import BackendUnavailable, CorruptData, InvalidURL, MemvaultError, SessionNotFound
from memvault.model import Message, Page, Record, SessionInfo, decode_body, from_epoch
from memvault.urls import mask_url
from memvault.validation import check_limit, metadata_matches

logger = logging.getLogger("memvault.redis")

DEFAULT_PREFIX = "memvault:"
DEFAULT_POOL_SIZE = 50
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_SOCKET_TIMEOUT = 10.0
DEFAULT_NATIVE_SLACK = 3600.0
CHUNK = 500

# -- Lua ----------------------------------------------------------------------------------------------------------

# helpers a script includes only if it calls them: each local function costs a closure per run (~1.5 us here)
_HELPERS: dict[str, str] = {
    "base_of": "local function base_of(s) return string.sub(s, 1, -2) end",
    "num": """local function num(value, what)
  local n = tonumber(value)
  if value and not n then error({err = 'MEMVAULT_CORRUPT session field ' .. what .. ' is not a number'}) end
  return n
end""",
    "state": """local function state(s, now)
  local c = redis.call('HMGET', s, 'c', 'x')
  if not c[1] then return 0 end
  local x = num(c[2], 'x')
  if x and x <= now then return 1 end
  return 2
end""",
    "chunked": """local function chunked(cmd, key, items)
  local n = 0
  for i = 1, #items, 500 do
    n = n + redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
  end
  return n
end""",
    "wipe": """local function wipe(base, with_session)
  local kinds = redis.call('SMEMBERS', base .. 'k')
  for _, kind in ipairs(kinds) do redis.call('DEL', base .. 'r:' .. kind) end
  redis.call('DEL', base .. 'm', base .. 'h', base .. 'k')
  if with_session then redis.call('DEL', base .. 's') end
end""",
    "info": """local function info(s, m)
  local r = redis.call('HMGET', s, 'c', 'up', 'x', 'u', 'md', 'ls', 'b')
  r[8] = redis.call('ZCARD', m)
  return r
end""",
    "touch": """local function touch(s, now_s)
  local up = tonumber(redis.call('HGET', s, 'up'))
  if (not up) or up < tonumber(now_s) then redis.call('HSET', s, 'up', now_s) end
end""",
}

# KEYS s m h k [ix]; ARGV now, expires|'', native_ms|'', refresh_below_ms, user|'', metadata, max|0, mode (a|r|e),
# sid, id1, body1, ... -> {seq, ...} (mode e: the session's info). With a 5th key (standalone servers) the namespace
# index is updated here too; on a Cluster the caller does it next, since the index lives in another slot.
_APPEND = r"""
local s, m, h, k = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base = string.sub(s, 1, -2)
local now_s = ARGV[1]
local cur = redis.call('HMGET', s, 'c', 'x', 'ls', 'b', 'up')
local ls, b
local fields = {}
if cur[1] and (not tonumber(cur[3] or '0') or not tonumber(cur[4] or '0') or (cur[2] and not tonumber(cur[2]))
    or not tonumber(cur[5] or '0')) then
  return redis.error_reply('MEMVAULT_CORRUPT session fields ls/b/x/up are not numbers')
end
if (not cur[1]) or (cur[2] and tonumber(cur[2]) <= tonumber(now_s)) then
  -- a new session, or a write to an expired one: start from nothing
  for _, kind in ipairs(redis.call('SMEMBERS', k)) do redis.call('DEL', base .. 'r:' .. kind) end
  redis.call('DEL', s, m, h, k)
  fields = {'c', now_s, 'up', now_s, 'md', ARGV[6]}
  if ARGV[5] ~= '' then fields[#fields + 1] = 'u'; fields[#fields + 1] = ARGV[5] end
  ls, b = 0, 0
else
  ls, b = tonumber(cur[3] or '0'), tonumber(cur[4] or '0')
  if tonumber(cur[5] or '0') < tonumber(now_s) then fields = {'up', now_s} end
end
if ARGV[8] == 'r' then
  redis.call('DEL', m, h)
  b = 0
end
local seqs = {}
for i = 10, #ARGV, 2 do
  local id, body = ARGV[i], ARGV[i + 1]
  if redis.call('ZADD', m, 'NX', ls + 1, id) == 1 then
    ls = ls + 1
    redis.call('HSET', h, id, body)
    b = b + #body
    seqs[#seqs + 1] = ls
  else
    seqs[#seqs + 1] = tonumber(redis.call('ZSCORE', m, id))
  end
end
local cap = tonumber(ARGV[7])
if cap > 0 then
  local n = redis.call('ZCARD', m)
  if n > cap then
    local old = redis.call('ZRANGE', m, 0, n - cap - 1)
    for _, id in ipairs(old) do b = b - redis.call('HSTRLEN', h, id) end
    for i = 1, #old, 500 do redis.call('HDEL', h, unpack(old, i, math.min(i + 499, #old))) end
    redis.call('ZREMRANGEBYRANK', m, 0, n - cap - 1)
  end
end
fields[#fields + 1] = 'ls'; fields[#fields + 1] = ls
fields[#fields + 1] = 'b'; fields[#fields + 1] = b
if ARGV[2] ~= '' then
  fields[#fields + 1] = 'x'; fields[#fields + 1] = ARGV[2]
elseif cur[2] then
  redis.call('HDEL', s, 'x')
end
redis.call('HSET', s, unpack(fields))
-- native expiry: refreshed only when it ran below ttl + slack/2 (or is missing), so most appends skip it; new
-- message keys (first message, after clear/replace) have no expiry yet and are always caught by the PTTL of m
local pm = redis.call('PTTL', m)
local refresh
if ARGV[3] ~= '' then
  refresh = pm < tonumber(ARGV[4])  -- also -1 (no expiry yet) and -2 (no messages)
else
  refresh = pm > 0 or redis.call('PTTL', s) > 0
end
if refresh then
  local all = {s, m, h, k}
  for _, kind in ipairs(redis.call('SMEMBERS', k)) do all[#all + 1] = base .. 'r:' .. kind end
  for _, key in ipairs(all) do
    if ARGV[3] ~= '' then redis.call('PEXPIRE', key, ARGV[3]) else redis.call('PERSIST', key) end
  end
end
if KEYS[5] then redis.call('ZADD', KEYS[5], 'GT', now_s, ARGV[9]) end
if ARGV[8] == 'e' then
  local r = redis.call('HMGET', s, 'c', 'up', 'x', 'u', 'md', 'ls', 'b')
  r[8] = redis.call('ZCARD', m)
  return r
end
return seqs
"""

# KEYS s m; ARGV now -> 0 (missing) | 1 (expired) | info
_INFO = r"""
local st = state(KEYS[1], tonumber(ARGV[1]))
if st ~= 2 then return st end
return info(KEYS[1], KEYS[2])
"""

# KEYS s m h; ARGV now, min, max, last|'', limit|'' -> {seq, body, ...}
_READ = r"""
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local flat
if ARGV[4] ~= '' then
  local rev = redis.call('ZRANGE', m, ARGV[3], ARGV[2], 'BYSCORE', 'REV', 'LIMIT', 0, tonumber(ARGV[4]), 'WITHSCORES')
  flat = {}
  for i = #rev - 1, 1, -2 do flat[#flat + 1] = rev[i]; flat[#flat + 1] = rev[i + 1] end
  if ARGV[5] ~= '' then
    local keep = 2 * tonumber(ARGV[5])
    for i = #flat, keep + 1, -1 do flat[i] = nil end
  end
elseif ARGV[5] ~= '' then
  flat = redis.call('ZRANGE', m, ARGV[2], ARGV[3], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[5]), 'WITHSCORES')
else
  flat = redis.call('ZRANGE', m, ARGV[2], ARGV[3], 'BYSCORE', 'WITHSCORES')
end
local out, ids = {}, {}
for i = 1, #flat, 2 do ids[#ids + 1] = flat[i] end
for i = 1, #ids, 500 do
  local bodies = redis.call('HMGET', h, unpack(ids, i, math.min(i + 499, #ids)))
  for j = 1, #bodies do
    out[#out + 1] = flat[2 * (i + j - 1)]
    out[#out + 1] = bodies[j]
  end
end
return out
"""

# KEYS s m h; ARGV now, id... -> {seq, body, ...}
_GET = r"""
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local out = {}
for i = 2, #ARGV do
  local seq = redis.call('ZSCORE', m, ARGV[i])
  if seq then
    out[#out + 1] = seq
    out[#out + 1] = redis.call('HGET', h, ARGV[i])
  end
end
return out
"""

# KEYS s m h; ARGV now, id... -> deleted count
_DELETE_MESSAGES = r"""
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return 0 end
local n, freed = 0, 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', m, ARGV[i]) then
    freed = freed + redis.call('HSTRLEN', h, ARGV[i])
    redis.call('HDEL', h, ARGV[i])
    redis.call('ZREM', m, ARGV[i])
    n = n + 1
  end
end
if n > 0 then
  redis.call('HINCRBY', s, 'b', -freed)
  touch(s, ARGV[1])
end
return n
"""

# KEYS s m h; ARGV now, index|'', count, id... -> {seq, body, ...} of the removed messages: `count` from position
# `index` (as in Python), or the given ids that exist
_POP = r"""
local s, m, h = KEYS[1], KEYS[2], KEYS[3]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local flat = {}
if ARGV[2] ~= '' then
  local n = redis.call('ZCARD', m)
  local start, count = tonumber(ARGV[2]), tonumber(ARGV[3])
  if start < 0 then start = start + n end
  if count < 1 or start < 0 or start >= n then return {} end
  flat = redis.call('ZRANGE', m, start, math.min(start + count, n) - 1, 'WITHSCORES')
else
  for i = 4, #ARGV do
    local seq = redis.call('ZSCORE', m, ARGV[i])
    if seq then flat[#flat + 1] = ARGV[i]; flat[#flat + 1] = seq end
  end
end
local out, freed = {}, 0
for i = 1, #flat, 2 do
  local id = flat[i]
  local body = redis.call('HGET', h, id)
  if body then freed = freed + #body end
  out[#out + 1] = flat[i + 1]
  out[#out + 1] = body or false
  redis.call('HDEL', h, id)
  redis.call('ZREM', m, id)
end
if #out > 0 then
  redis.call('HINCRBY', s, 'b', -freed)
  touch(s, ARGV[1])
end
return out
"""

# KEYS s m h k; ARGV now -> removed message count (-1: no live session)
_CLEAR = r"""
local s, m = KEYS[1], KEYS[2]
if state(s, tonumber(ARGV[1])) ~= 2 then return -1 end
local n = redis.call('ZCARD', m)
wipe(base_of(s), false)
redis.call('HSET', s, 'b', 0)
touch(s, ARGV[1])
return n
"""

# KEYS s m h k; ARGV now -> 1 if a live session was deleted
_DELETE_SESSION = r"""
local st = state(KEYS[1], tonumber(ARGV[1]))
wipe(base_of(KEYS[1]), true)
if st == 2 then return 1 end
return 0
"""

# KEYS s m h k; ARGV now -> -1 missing, 1 purged, 0 alive
_PURGE_ONE = r"""
local st = state(KEYS[1], tonumber(ARGV[1]))
if st == 0 then return -1 end
if st == 1 then wipe(base_of(KEYS[1]), true); return 1 end
return 0
"""

# KEYS s k; ARGV now, kind, key, data -> 0 when there is no live session
_PUT_RECORD = r"""
local s, k = KEYS[1], KEYS[2]
if state(s, tonumber(ARGV[1])) ~= 2 then return 0 end
local rkey = base_of(s) .. 'r:' .. ARGV[2]
redis.call('SADD', k, ARGV[2])
redis.call('HSET', rkey, ARGV[3], ARGV[4])
local ttl = redis.call('PTTL', s)
if ttl > 0 then
  redis.call('PEXPIRE', k, ttl)
  redis.call('PEXPIRE', rkey, ttl)
end
return 1
"""

# KEYS s; ARGV now, kind, key... -> {key, data, ...}
_GET_RECORDS = r"""
local s = KEYS[1]
if state(s, tonumber(ARGV[1])) ~= 2 then return {} end
local rkey = base_of(s) .. 'r:' .. ARGV[2]
if #ARGV == 2 then return redis.call('HGETALL', rkey) end
local out = {}
for i = 3, #ARGV do
  local v = redis.call('HGET', rkey, ARGV[i])
  if v then out[#out + 1] = ARGV[i]; out[#out + 1] = v end
end
return out
"""

# KEYS s k; ARGV kind, key... -> deleted count
_DELETE_RECORDS = r"""
local k = KEYS[2]
local rkey = base_of(KEYS[1]) .. 'r:' .. ARGV[1]
local n
if #ARGV == 1 then
  n = redis.call('HLEN', rkey)
  redis.call('DEL', rkey)
else
  local keys = {}
  for i = 2, #ARGV do keys[#keys + 1] = ARGV[i] end
  n = chunked('HDEL', rkey, keys)
end
if redis.call('EXISTS', rkey) == 0 then redis.call('SREM', k, ARGV[1]) end
return n
"""

# KEYS ix; ARGV max, min, offset, count -> {sid, score, ...} newest first
_INDEX_PAGE = r"""
return redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2], 'BYSCORE', 'REV', 'LIMIT', ARGV[3], ARGV[4], 'WITHSCORES')
"""

# KEYS ix; ARGV sid, score, ... -> removed count; an entry is removed only if its score is unchanged, so a session
# written again meanwhile keeps its entry
_INDEX_DROP = r"""
local n = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if cur and tonumber(cur) == tonumber(ARGV[i + 1]) then n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return n
"""


@dataclass(frozen=True)
class _Script:
    name: str
    source: str
    sha: str

    @classmethod
    def of(cls, name: str, body: str) -> _Script:
        wanted, text = set(), body
        while True:  # helpers that the body (or another wanted helper) calls, in _HELPERS order
            more = {fn for fn in _HELPERS if fn not in wanted and re.search(rf"\b{fn}\(", text)}
            if not more:
                break
            wanted |= more
            text = body + "".join(_HELPERS[fn] for fn in wanted)
        used = [src for fn, src in _HELPERS.items() if fn in wanted]
        source = "\n".join([*used, body])
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())


APPEND = _Script.of("append", _APPEND)
INFO = _Script.of("info", _INFO)
READ = _Script.of("read", _READ)
GET = _Script.of("get", _GET)
DELETE_MESSAGES = _Script.of("delete_messages", _DELETE_MESSAGES)
CLEAR = _Script.of("clear", _CLEAR)
POP = _Script.of("pop", _POP)
DELETE_SESSION = _Script.of("delete_session", _DELETE_SESSION)
PURGE_ONE = _Script.of("purge_one", _PURGE_ONE)
PUT_RECORD = _Script.of("put_record", _PUT_RECORD)
GET_RECORDS = _Script.of("get_records", _GET_RECORDS)
DELETE_RECORDS = _Script.of("delete_records", _DELETE_RECORDS)
INDEX_PAGE = _Script.of("index_page", _INDEX_PAGE)
INDEX_DROP = _Script.of("index_drop", _INDEX_DROP)


# -- commands, batches and the two drivers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Eval:
    """One script call: EVALSHA first, EVAL (which also caches the script) on NOSCRIPT."""

    script: _Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    #: in a batch, hand this command's error back as its reply instead of failing the batch (listings: one damaged
    #: session must not hide the others)
    tolerant: bool = False

    def wire(self, cached: bool = True) -> tuple[Any, ...]:
        head = ("EVALSHA", self.script.sha) if cached else ("EVAL", self.script.source)
        return (*head, len(self.keys), *self.keys, *self.args)


@dataclass(frozen=True)
class Scan:
    """All keys matching a glob (maintenance only: purge, stats)."""

    match: str


Command = Eval | tuple[Any, ...]
Batch = list[Command]
#: an operation: yields a Batch (one round trip) or a Scan, receives the list of replies / keys
Op = Generator[Any, Any, Any]

_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.InvalidResponse,  # something that is not Redis answers at that address
    RedisClusterException,
    OSError,
)
_UNAVAILABLE_REPLIES = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "OOM", "READONLY", "NOAUTH", "WRONGPASS")


def _wire(command: Command, cached: bool = True) -> tuple[Any, ...]:
    return command.wire(cached) if isinstance(command, Eval) else command


def _failed(exc: BaseException, command: Command) -> BaseException:
    """``exc`` tagged with the keys of the command that raised it (so errors can name the session)."""
    if isinstance(command, Eval):
        exc.memvault_keys = command.keys  # type: ignore[attr-defined]
    return exc


def _settle(command: Command, result: Any) -> Any:
    if isinstance(result, Exception):
        if isinstance(command, Eval) and command.tolerant and isinstance(result, ResponseError):
            return _failed(result, command)
        raise _failed(result, command)
    return result


def _run_sync(client: Any, op: Op) -> Any:
    reply: Any = None
    while True:
        try:
            step = op.send(reply)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Scan):
            reply = [_text(key) for key in client.scan_iter(match=step.match, count=1000)]
        elif len(step) == 1:
            reply = [_one_sync(client, step[0])]
        else:
            pipe = client.pipeline(transaction=False)
            for command in step:
                pipe.execute_command(*_wire(command))
            reply = pipe.execute(raise_on_error=False)
            for i, result in enumerate(reply):
                if isinstance(result, NoScriptError):
                    try:
                        result = client.execute_command(*_wire(step[i], cached=False))
                    except ResponseError as exc:
                        result = exc
                reply[i] = _settle(step[i], result)


def _one_sync(client: Any, command: Command) -> Any:
    try:
        try:
            return client.execute_command(*_wire(command))
        except NoScriptError:
            return client.execute_command(*_wire(command, cached=False))
    except ResponseError as exc:
        return _settle(command, exc)


async def _run_async(client: Any, op: Op) -> Any:
    reply: Any = None
    while True:
        try:
            step = op.send(reply)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Scan):
            reply = [_text(key) async for key in client.scan_iter(match=step.match, count=1000)]
        elif len(step) == 1:
            reply = [await _one_async(client, step[0])]
        else:
            pipe = client.pipeline(transaction=False)
            for command in step:
                pipe.execute_command(*_wire(command))
            reply = await pipe.execute(raise_on_error=False)
            for i, result in enumerate(reply):
                if isinstance(result, NoScriptError):
                    try:
                        result = await client.execute_command(*_wire(step[i], cached=False))
                    except ResponseError as exc:
                        result = exc
                reply[i] = _settle(step[i], result)


async def _one_async(client: Any, command: Command) -> Any:
    try:
        try:
            return await client.execute_command(*_wire(command))
        except NoScriptError:
            return await client.execute_command(*_wire(command, cached=False))
    except ResponseError as exc:
        return _settle(command, exc)


# -- small helpers ------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _num(value: float) -> str:
    return repr(float(value))


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace("{", "\\(").replace("}", "\\)")


def _unescape(part: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"\\": "\\", "(": "{", ")": "}"}[m.group(1)], part)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _pairs(flat: Sequence[Any]) -> list[tuple[Any, Any]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _retry(retries: int) -> Retry:
    # redis-py's default retry backs off for seconds when a server is down; memvault fails fast instead (a retried
    # script is safe: appends are idempotent by message id).
    return Retry(ExponentialBackoff(cap=0.1, base=0.01), retries)


_OUR_OPTIONS = {
    "prefix",
    "pool_size",
    "max_connections",
    "socket_timeout",
    "connect_timeout",
    "socket_connect_timeout",
    "retries",
    "ttl",
    "native_slack",
    "password",
    "db",
    "sentinel_password",
}

#: connection settings safe to copy from a client of one flavour (sync/async) to build its twin
_PORTABLE = {
    "host",
    "port",
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "client_name",
    "health_check_interval",
    "encoding",
    "encoding_errors",
    "decode_responses",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_check_hostname",
}


def _portable(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k in _PORTABLE and v is not None}


def _parse_ttl(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() in ("", "none", "never")):
        return None
    return float(value)


@dataclass
class _Connector:
    """How to build (lazily, per flavour) the sync and async clients, and which ones memvault owns."""

    mode: str  # standalone | cluster | sentinel
    url: str  # masked
    make_sync: Callable[[], Any] | None
    make_async: Callable[[], Any] | None
    sync_client: Any = None
    owns_sync: bool = True
    async_client: Any = None
    owns_async: bool = True
    #: passwords to scrub from any error text (never shown in reprs)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: concurrent async commands allowed at once (redis-py's async cluster client raises MaxConnectionsError past
    #: its per-node pool instead of waiting, so memvault queues the excess itself)
    async_limit: int = DEFAULT_POOL_SIZE
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


# -- the store ----------------------------------------------------------------------------------------------------


class RedisStore(Store):
    """Sessions in plain Redis 7 (standalone, Cluster or Sentinel-managed), sync and native async."""

    backend: ClassVar[str] = "redis"
    capabilities: ClassVar[frozenset[str]] = frozenset({"native_async", "multiprocess", "native_ttl"})
    default_ttl: ClassVar[float | None] = 7 * 86400

    def __init__(
        self,
        connector: _Connector,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: Any = "default",
        native_slack: float = DEFAULT_NATIVE_SLACK,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise InvalidURL(f"Redis key prefix {prefix!r} must be a str without '{{' or '}}' (they form hash tags)")
        self.prefix = prefix
        self._conn = connector
        self.mode = connector.mode
        self.native_slack = float(native_slack)
        if ttl != "default":
            self.default_ttl = _parse_ttl(ttl)  # type: ignore[misc]
        self._aio_loop: Any = None
        self._aio_gate: asyncio.Semaphore | None = None
        self._closed = False

    # -- construction --------------------------------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS), ``redis+cluster://h:p[,h:p]``,
        ``redis+sentinel://[[user]:password@]h:p[,h:p]/service[/db]``. Options (keyword or ``?query``): prefix,
        password, db, pool_size, connect_timeout, socket_timeout, retries, ttl (default for Memory; ``none`` =
        never), native_slack, sentinel_password; other query keys go to redis-py."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        query = dict(parse_qsl(parts.query))
        merged: dict[str, Any] = {**{k: v for k, v in query.items() if k in _OUR_OPTIONS}, **options}
        passthrough = {k: v for k, v in query.items() if k not in _OUR_OPTIONS}
        store_kw = {k: merged.pop(k) for k in ("prefix", "ttl", "native_slack", "clock", "max_message_bytes") if k in merged}
        pool_size = int(merged.pop("pool_size", merged.pop("max_connections", DEFAULT_POOL_SIZE)))
        timeouts = {
            "socket_connect_timeout": float(
                merged.pop("connect_timeout", merged.pop("socket_connect_timeout", DEFAULT_CONNECT_TIMEOUT))
            ),
            "socket_timeout": float(merged.pop("socket_timeout", DEFAULT_SOCKET_TIMEOUT)),
        }
        retries = int(merged.pop("retries", 1))
        password = merged.pop("password", None)
        db = merged.pop("db", None)
        sentinel_password = merged.pop("sentinel_password", None)
        extra = merged  # anything else: handed to redis-py as is
        try:
            url_password = parts.password
        except ValueError:
            url_password = None
        given = (password, sentinel_password, url_password, unquote(url_password or ""))
        secrets = tuple({str(p) for p in given if p})
        # shown without memvault's own query options (the prefix is added back by .url; passwords never)
        shown = mask_url(urlunsplit((scheme, parts.netloc, parts.path, urlencode(passthrough), "")))
        for secret in secrets:
            shown = shown.replace(secret, "***")

        if scheme in ("redis", "rediss"):
            path = parts.path if db is None else f"/{int(db)}"  # an explicit db option wins over the URL's
            clean = urlunsplit((scheme, parts.netloc, path, urlencode(passthrough), ""))
            kw: dict[str, Any] = {**timeouts, **extra, "max_connections": pool_size}
            if password is not None:
                kw["password"] = password

            def make_sync() -> Any:
                pool = redis.BlockingConnectionPool.from_url(clean, retry=_retry(retries), timeout=timeouts["socket_timeout"], **kw)
                return redis.Redis(connection_pool=pool)

            def make_async() -> Any:
                pool = aredis.BlockingConnectionPool.from_url(clean, retry=_retry(retries), timeout=timeouts["socket_timeout"], **kw)
                return aredis.Redis(connection_pool=pool)

            connector = _Connector("standalone", shown, make_sync, make_async)
        elif scheme == "redis+cluster":
            user, pw, hosts = _netloc(parts.netloc)
            if not hosts:
                raise InvalidURL(f"{shown}: name at least one cluster node, e.g. redis+cluster://127.0.0.1:7000")
            ssl = passthrough.pop("ssl", "").lower() in ("1", "true", "yes")
            kw = {**timeouts, **extra, "max_connections": pool_size, **passthrough}
            if ssl:
                kw["ssl"] = True
            if pw is not None or password is not None:
                kw["password"] = password if password is not None else pw
            if user:
                kw["username"] = user

            def make_sync() -> Any:
                from redis.cluster import ClusterNode, RedisCluster

                nodes = [ClusterNode(h, p) for h, p in hosts]
                return RedisCluster(startup_nodes=nodes, retry=_retry(retries), **kw)

            def make_async() -> Any:
                from redis.asyncio.cluster import ClusterNode, RedisCluster

                nodes = [ClusterNode(h, p) for h, p in hosts]
                return RedisCluster(startup_nodes=nodes, retry=_retry(retries), **kw)

            connector = _Connector("cluster", shown, make_sync, make_async, async_limit=pool_size)
        elif scheme == "redis+sentinel":
            user, pw, hosts = _netloc(parts.netloc)
            path = [p for p in parts.path.split("/") if p]
            if not hosts or not path:
                raise InvalidURL(f"{shown}: write redis+sentinel://[:password@]host:26379[,host:port]/service[/db]")
            service = unquote(path[0])
            kw = {**timeouts, **extra, "retry": _retry(retries), "max_connections": pool_size, **passthrough}
            if pw is not None or password is not None:
                kw["password"] = password if password is not None else pw
            if user:
                kw["username"] = user
            kw["db"] = int(db if db is not None else (path[1] if len(path) > 1 else 0))
            sentinel_kw = {**timeouts}
            if sentinel_password is not None:
                sentinel_kw["password"] = sentinel_password

            def make_sync() -> Any:
                from redis.sentinel import Sentinel

                return Sentinel(hosts, sentinel_kwargs=sentinel_kw, **timeouts).master_for(service, **kw)

            def make_async() -> Any:
                from redis.asyncio.sentinel import Sentinel

                return Sentinel(hosts, sentinel_kwargs=sentinel_kw, **timeouts).master_for(service, **kw)

            connector = _Connector("sentinel", shown, make_sync, make_async)
        else:
            raise InvalidURL(f"{shown}: not a Redis URL (redis://, rediss://, redis+cluster://, redis+sentinel://)")
        connector.secrets = secrets
        return cls(connector, **store_kw)

    @classmethod
    def from_client(cls, client: Any, *, aclient: Any = None, **options: Any) -> RedisStore:
        """Wrap a client you already have: ``redis.Redis``, ``redis.cluster.RedisCluster``, a Sentinel
        ``master_for(...)`` client, or their ``redis.asyncio`` twins. memvault never closes clients it did not
        create; the missing flavour (async for a sync client and vice versa) is built from the same settings."""
        store_kw = {k: options.pop(k) for k in ("prefix", "ttl", "native_slack", "clock", "max_message_bytes") if k in options}
        if options:
            raise InvalidURL(f"options {sorted(options)} cannot be applied to an existing client; configure the client")
        is_async = type(client).__module__.startswith("redis.asyncio")
        sync_client, async_client = (None, client) if is_async else (client, aclient)
        mode, shown, twin = _describe(client)
        connector = _Connector(
            mode,
            shown,
            make_sync=twin if is_async else None,
            make_async=twin if not is_async and aclient is None else None,
            sync_client=sync_client,
            owns_sync=sync_client is None,
            async_client=async_client,
            owns_async=async_client is None,
        )
        return cls(connector, **store_kw)

    @property
    def url(self) -> str:
        if self.prefix != DEFAULT_PREFIX:
            sep = "&" if "?" in self._conn.url else "?"
            return f"{self._conn.url}{sep}prefix={self.prefix}"
        return self._conn.url

    @property
    def aio(self) -> RedisAsyncStore:
        if self._aio is None:
            self._aio = RedisAsyncStore(self)
        return self._aio  # type: ignore[no-any-return]

    # -- clients and errors --------------------------------------------------------------------------------------
    def _sync_client(self) -> Any:
        conn = self._conn
        if conn.sync_client is not None:
            return conn.sync_client
        with conn.lock:
            if conn.sync_client is not None:
                return conn.sync_client
            if self._closed:
                raise BackendUnavailable(f"Redis store {self.url} is closed")
            if conn.make_sync is None:
                raise BackendUnavailable(f"Redis store {self.url} was given only an async client; use store.aio")
            try:
                conn.sync_client = conn.make_sync()
            except (RedisError, OSError) as exc:
                raise self._unavailable(exc) from exc
        return conn.sync_client

    def _async_client(self) -> Any:
        conn = self._conn
        loop = asyncio.get_running_loop()
        if conn.async_client is not None and conn.owns_async and self._aio_loop is not loop:
            conn.async_client = None  # bound to another (possibly closed) event loop: build a fresh one
        if conn.async_client is None:
            if self._closed:
                raise BackendUnavailable(f"Redis store {self.url} is closed")
            if conn.make_async is None:
                raise BackendUnavailable(f"Redis store {self.url} was given only a sync client and cannot derive an async one")
            try:
                conn.async_client = conn.make_async()
            except (RedisError, OSError) as exc:
                raise self._unavailable(exc) from exc
            self._aio_loop = loop
            self._aio_gate = asyncio.Semaphore(conn.async_limit) if self.mode == "cluster" else None
        return conn.async_client

    def _scrub(self, text: str) -> str:
        text = mask_url(text)
        for secret in self._conn.secrets:
            text = text.replace(secret, "***")
        return text

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        detail = self._scrub(str(exc) or type(exc).__name__)
        return BackendUnavailable(
            f"Redis at {self.url} is unavailable ({type(exc).__name__}: {detail}). Check that the server "
            "is running and the URL/password are right; connect_timeout/socket_timeout options bound the wait."
        )

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, _UNAVAILABLE):
            return self._unavailable(exc)
        if isinstance(exc, ResponseError):
            text = self._scrub(str(exc))
            if text.split(" ", 1)[0] in _UNAVAILABLE_REPLIES or "OOM" in text or "NOAUTH" in text:
                return self._unavailable(exc)
            keys = getattr(exc, "memvault_keys", None)
            where = f"session key {_text(keys[0])!r}" if keys else f"a key under prefix {self.prefix!r}"
            if "WRONGTYPE" in text or "MEMVAULT_CORRUPT" in text:
                return CorruptData(
                    f"Redis at {self.url}: {where} holds data memvault did not write ({text}); the other sessions "
                    "are unaffected. Delete that session (or its keys), and use a prefix no other application "
                    "writes to"
                )
            return MemvaultError(f"Redis at {self.url} refused a command for {where}: {text}")
        return exc

    def _run(self, op: Op) -> Any:
        try:
            return _run_sync(self._sync_client(), op)
        except RedisError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    async def _arun(self, op: Op) -> Any:
        try:
            client = self._async_client()
            gate = self._aio_gate
            if gate is None:
                return await _run_async(client, op)
            async with gate:
                return await _run_async(client, op)
        except RedisError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    # -- keys ----------------------------------------------------------------------------------------------------
    def _base(self, ns: str, sid: str) -> str:
        return f"{self.prefix}{{{_escape(ns)}\x1f{_escape(sid)}}}:"

    def _keys(self, ns: str, sid: str, n: int = 4) -> tuple[str, ...]:
        base = self._base(ns, sid)
        return (base + "s", base + "m", base + "h", base + "k")[:n]

    def _index(self, ns: str) -> str:
        return f"{self.prefix}ix:{{{_escape(ns)}}}"

    def _ns_of_index(self, key: str) -> str:
        return _unescape(key[len(self.prefix) + 4 : -1])

    def _indexed(self, script: Command, index: Command) -> Op:
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
                user_id=None if user is None else _text(user),
                created_at=from_epoch(float(created)),  # type: ignore[arg-type]
                updated_at=from_epoch(float(updated)),  # type: ignore[arg-type]
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
        for seq, body in _pairs(flat):
            number = int(float(seq))
            if body is None:
                raise CorruptData(f"Redis at {self.url}: message #{number} of {ns}/{sid} has no body")
            out.append(decode_body(body, session_id=sid, seq=number, where=f"redis {ns}/{sid}#{number}"))
        return out

    # -- operations (written once; run by _run or _arun) ---------------------------------------------------------
    def _write(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions, mode: str) -> Op:
        now = self.clock()
        ttl = options.ttl
        if ttl is None:
            expires = native = refresh_below = ""
        else:
            expires = _num(now + ttl)
            native_ms = max(1000, int((ttl + self.native_slack) * 1000))
            native, refresh_below = str(native_ms), str(native_ms - int(self.native_slack * 500))
        metadata = json.dumps(dict(options.metadata), ensure_ascii=False) if options.metadata else "{}"
        args: list[Any] = [
            _num(now), expires, native, refresh_below, options.user_id or "", metadata, options.max_messages or 0,
            mode, sid,
        ]
        for record in records:
            args += (record.id, record.body)
        keys = self._keys(ns, sid)
        if self.mode == "cluster":
            (result,) = yield [Eval(APPEND, keys, tuple(args))]
            yield [("ZADD", self._index(ns), "GT", _num(now), sid)]
        else:
            (result,) = yield [Eval(APPEND, (*keys, self._index(ns)), tuple(args))]
        return result

    def _op_append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Op:
        seqs = yield from self._write(ns, sid, records, options, "a")
        return [int(s) for s in seqs]

    def _op_replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> Op:
        seqs = yield from self._write(ns, sid, records, options, "r")
        return [int(s) for s in seqs]

    def _op_ensure_session(self, ns: str, sid: str, options: AppendOptions) -> Op:
        raw = yield from self._write(ns, sid, (), options, "e")
        return self._info(ns, sid, raw)

    def _op_get_session(self, ns: str, sid: str) -> Op:
        (raw,) = yield [Eval(INFO, self._keys(ns, sid, 2), (_num(self.clock()),))]
        return None if isinstance(raw, int) else self._info(ns, sid, raw)

    def _op_count(self, ns: str, sid: str) -> Op:
        (raw,) = yield [Eval(INFO, self._keys(ns, sid, 2), (_num(self.clock()),))]
        return 0 if isinstance(raw, int) else int(raw[7])

    def _op_delete_session(self, ns: str, sid: str) -> Op:
        script = Eval(DELETE_SESSION, self._keys(ns, sid), (_num(self.clock()),))
        existed = yield from self._indexed(script, ("ZREM", self._index(ns), sid))
        return bool(existed)

    def _op_read(
        self,
        ns: str,
        sid: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> Op:
        if last == 0 or limit == 0:
            return []
        args = (
            _num(self.clock()),
            "-inf" if start is None else str(int(start)),
            "+inf" if stop is None else f"({int(stop)}",
            "" if last is None else str(int(last)),
            "" if limit is None else str(int(limit)),
        )
        (flat,) = yield [Eval(READ, self._keys(ns, sid, 3), args)]
        return self._messages(ns, sid, flat)

    def _op_get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Op:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        (flat,) = yield [Eval(GET, self._keys(ns, sid, 3), (_num(self.clock()), *wanted))]
        return sorted(self._messages(ns, sid, flat), key=lambda m: m.seq)

    def _op_delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> Op:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        now = _num(self.clock())
        script = Eval(DELETE_MESSAGES, self._keys(ns, sid, 3), (now, *wanted))
        deleted = yield from self._indexed(script, ("ZADD", self._index(ns), "XX", "GT", now, sid))
        return int(deleted)

    def _op_pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> Op:
        now = _num(self.clock())
        wanted = () if ids is None else tuple(dict.fromkeys(ids))
        if ids is not None and not wanted:
            return []
        args = (now, "" if ids is not None else str(int(index or 0)), str(int(count)), *wanted)
        flat = yield from self._indexed(Eval(POP, self._keys(ns, sid, 3), args),
                                        ("ZADD", self._index(ns), "XX", "GT", now, sid))
        return sorted(self._messages(ns, sid, flat), key=lambda m: m.seq)

    def _op_clear(self, ns: str, sid: str) -> Op:
        now = _num(self.clock())
        script = Eval(CLEAR, self._keys(ns, sid), (now,))
        removed = yield from self._indexed(script, ("ZADD", self._index(ns), "XX", "GT", now, sid))
        return max(int(removed), 0)

    def _op_put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> Op:
        text = json.dumps(data, ensure_ascii=False)
        s, _, _, k = self._keys(ns, sid)
        (ok,) = yield [Eval(PUT_RECORD, (s, k), (_num(self.clock()), kind, key, text))]
        if not int(ok):
            raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")

    def _op_get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> Op:
        if keys is not None and not keys:
            return []
        wanted = () if keys is None else tuple(dict.fromkeys(keys))
        (flat,) = yield [Eval(GET_RECORDS, self._keys(ns, sid, 1), (_num(self.clock()), kind, *wanted))]
        rows = sorted((_text(k), _text(v)) for k, v in _pairs(flat))
        if last is not None:
            rows = rows[-last:] if last else []
        return [(k, json.loads(v)) for k, v in rows]

    def _op_delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> Op:
        if keys is not None and not keys:
            return 0
        s, _, _, k = self._keys(ns, sid)
        wanted = () if keys is None else tuple(dict.fromkeys(keys))
        (n,) = yield [Eval(DELETE_RECORDS, (s, k), (kind, *wanted))]
        return int(n)

    def _op_list_sessions(self, query: SessionQuery) -> Op:
        limit = check_limit(query.limit, maximum=MAX_PAGE)
        cursor = decode_cursor(query.cursor, float, str) if query.cursor else None
        index = self._index(query.namespace)
        walk = _IndexWalk(index, min(max(2 * (limit + 1), 32), 1000))
        if query.updated_before is not None:
            walk.below(query.updated_before, inclusive=False)
        if cursor is not None:
            walk.below(cursor[0], inclusive=True)
        if query.updated_after is not None:
            walk.bottom = _num(query.updated_after)
        now = _num(self.clock())
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

    def _drop(self, index: str, entries: Sequence[tuple[str, float]]) -> Op:
        for i in range(0, len(entries), CHUNK):
            args = [x for sid, score in entries[i : i + CHUNK] for x in (sid, _num(score))]
            yield [Eval(INDEX_DROP, (index,), tuple(args))]

    def _op_purge_expired(self) -> Op:
        now = _num(self.clock())
        indexes = yield Scan(_glob_escape(self.prefix) + "ix:{*}")
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

    # -- the contract (sync face) --------------------------------------------------------------------------------
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        return self._run(self._op_get_session(ns, sid))  # type: ignore[no-any-return]

    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        return self._run(self._op_ensure_session(ns, sid, options))  # type: ignore[no-any-return]

    def delete_session(self, ns: str, sid: str) -> bool:
        return self._run(self._op_delete_session(ns, sid))  # type: ignore[no-any-return]

    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        return self._run(self._op_list_sessions(query))  # type: ignore[no-any-return]

    def purge_expired(self) -> int:
        return self._run(self._op_purge_expired())  # type: ignore[no-any-return]

    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return self._run(self._op_append(ns, sid, records, options))  # type: ignore[no-any-return]

    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        return self._run(self._op_replace(ns, sid, records, options))  # type: ignore[no-any-return]

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
        return self._run(self._op_read(ns, sid, start=start, stop=stop, last=last, limit=limit))  # type: ignore[no-any-return]

    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        return self._run(self._op_get_messages(ns, sid, ids))  # type: ignore[no-any-return]

    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        return self._run(self._op_delete_messages(ns, sid, ids))  # type: ignore[no-any-return]

    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        return self._run(self._op_pop_messages(ns, sid, index=index, count=count, ids=ids))  # type: ignore[no-any-return]

    def count(self, ns: str, sid: str) -> int:
        return self._run(self._op_count(ns, sid))  # type: ignore[no-any-return]

    def clear(self, ns: str, sid: str) -> int:
        return self._run(self._op_clear(ns, sid))  # type: ignore[no-any-return]

    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        self._run(self._op_put_record(ns, sid, kind, key, data))

    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        return self._run(self._op_get_records(ns, sid, kind, keys=keys, last=last))  # type: ignore[no-any-return]

    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        return self._run(self._op_delete_records(ns, sid, kind, keys))  # type: ignore[no-any-return]

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def ping(self) -> None:
        try:
            self._sync_client().ping()
        except RedisError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def stats(self) -> dict[str, Any]:
        def op() -> Op:
            indexes = yield Scan(_glob_escape(self.prefix) + "ix:{*}")
            counts = (yield [("ZCARD", ix) for ix in indexes]) if indexes else []
            return {self._ns_of_index(ix): int(n) for ix, n in zip(indexes, counts, strict=True)}

        namespaces = self._run(op())
        out: dict[str, Any] = {
            **super().stats(),
            "mode": self.mode,
            "prefix": self.prefix,
            "namespaces": len(namespaces),
            "sessions": sum(namespaces.values()),
            "default_ttl": self.default_ttl,
        }
        try:
            info = self._sync_client().info("server")
            if isinstance(info, dict) and "redis_version" not in info:  # a Cluster answers per node
                info = next(iter(info.values()), {})
            out["server_version"] = info.get("redis_version")
        except (RedisError, OSError, AttributeError) as exc:
            raise self._translate(exc) from exc
        return out

    def close(self) -> None:
        self._closed = True
        conn = self._conn
        if conn.sync_client is not None:
            if conn.owns_sync:
                with contextlib.suppress(RedisError, OSError):  # closing a broken connection is not an error
                    conn.sync_client.close()
            conn.sync_client = None
        if conn.async_client is not None and conn.owns_async:
            client, loop = conn.async_client, self._aio_loop
            conn.async_client = None
            # its connections belong to an event loop: release them there if it still runs (aclose() does it inline)
            if loop is not None and loop.is_running() and not loop.is_closed():
                loop.call_soon_threadsafe(lambda: loop.create_task(client.aclose()))


def _op_name(name: str) -> str:
    return "_op_" + name


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
        top = "+inf" if self.top == math.inf else (_num(self.top) if self.inclusive else "(" + _num(self.top))
        return Eval(INDEX_PAGE, (self.index,), (top, self.bottom, self.offset, self.size))

    def advance(self, flat: Sequence[Any]) -> list[tuple[str, float]]:
        entries = [(_text(m), float(s)) for m, s in _pairs(flat)]
        if len(entries) < self.size:
            self.done = True
        if entries:
            last = entries[-1][1]
            same = sum(1 for _, score in entries if score == last)
            # every entry of the chunk scored `last` when `last` is still the top: skip them all next time
            self.offset = self.offset + same if (last == self.top and self.inclusive) else same
            self.top, self.inclusive = last, True
        return entries


class RedisAsyncStore:
    """``store.aio`` of a RedisStore: the same operations as coroutines over ``redis.asyncio``."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    async def ping(self) -> None:
        store = self._store
        try:
            await store._async_client().ping()
        except RedisError as exc:
            raise store._translate(exc) from exc
        except OSError as exc:
            raise store._unavailable(exc) from exc

    async def stats(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._store.stats)

    async def close(self) -> None:
        store = self._store
        conn = store._conn
        client = conn.async_client
        if client is not None and conn.owns_async:
            conn.async_client = None
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await client.aclose()
        store.close()


def _async_method(name: str) -> Callable[..., Any]:
    async def method(self: RedisAsyncStore, *args: Any, **kwargs: Any) -> Any:
        return await self._store._arun(getattr(self._store, _op_name(name))(*args, **kwargs))

    method.__name__ = name
    method.__doc__ = f"Async twin of :meth:`RedisStore.{name}`."
    return method


for _name in (
    "get_session",
    "ensure_session",
    "delete_session",
    "list_sessions",
    "purge_expired",
    "append",
    "replace",
    "read",
    "get_messages",
    "delete_messages",
    "pop_messages",
    "count",
    "clear",
    "put_record",
    "get_records",
    "delete_records",
):
    setattr(RedisAsyncStore, _name, _async_method(_name))


# -- URLs and existing clients ------------------------------------------------------------------------------------


def _netloc(netloc: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """(username, password, [(host, port)]) of ``user:pass@h1:p1,h2:p2``."""
    user = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, pw = auth.partition(":")
        user = unquote(user) or None
        password = unquote(pw) if pw else None
    hosts = []
    for item in filter(None, netloc.split(",")):
        host, _, port = item.rpartition(":")
        if not host:
            host, port = port, "6379"
        hosts.append((host.strip("[]"), int(port)))
    return user, password, hosts


def _describe(client: Any) -> tuple[str, str, Callable[[], Any] | None]:
    """(mode, masked url, factory of the other flavour's twin) for an existing redis-py client."""
    is_async = type(client).__module__.startswith("redis.asyncio")
    target = aredis if not is_async else redis
    if hasattr(client, "get_primaries") or hasattr(client, "nodes_manager"):  # RedisCluster, sync or async
        nodes = client.get_nodes()
        hosts = ",".join(f"{n.host}:{n.port}" for n in nodes)
        kw = _portable(getattr(client, "nodes_manager", None).connection_kwargs if not is_async else client.connection_kwargs)
        kw.pop("host", None)
        kw.pop("port", None)
        kw.pop("db", None)

        def cluster_twin() -> Any:
            cluster_mod = __import__(f"{target.__name__}.cluster", fromlist=["RedisCluster", "ClusterNode"])
            startup = [cluster_mod.ClusterNode(n.host, n.port) for n in nodes]
            return cluster_mod.RedisCluster(startup_nodes=startup, retry=_retry(1), **kw)

        return "cluster", f"redis+cluster://{hosts}", cluster_twin
    pool = client.connection_pool
    kw = _portable(pool.connection_kwargs)
    service = getattr(pool, "service_name", None)
    if service is not None:  # a Sentinel-managed master client
        manager = pool.sentinel_manager
        sentinels = [(s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"]) for s in manager.sentinels]
        shown = "redis+sentinel://" + ",".join(f"{h}:{p}" for h, p in sentinels) + f"/{service}/{kw.get('db', 0)}"
        sentinel_kwargs = _portable(manager.sentinel_kwargs or {})
        conn_kwargs = _portable(manager.connection_kwargs)

        def sentinel_twin() -> Any:
            sentinel_mod = __import__(f"{target.__name__}.sentinel", fromlist=["Sentinel"])
            sentinel = sentinel_mod.Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **conn_kwargs)
            return sentinel.master_for(service, **kw)

        return "sentinel", shown, sentinel_twin
    connection_class = getattr(pool, "connection_class", None)
    ssl = connection_class is not None and "SSL" in connection_class.__name__
    if "path" in kw or "path" in pool.connection_kwargs:
        path = pool.connection_kwargs["path"]
        shown = f"unix://{path}?db={kw.get('db', 0)}"
        kw = {k: v for k, v in kw.items() if k not in ("host", "port")}
        kw["unix_socket_path"] = path
    else:
        shown = f"{'rediss' if ssl else 'redis'}://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"
    if ssl:
        kw["ssl"] = True

    def standalone_twin() -> Any:
        return target.Redis(retry=_retry(1), **kw)

    return "standalone", shown, standalone_twin


__all__ = ["DEFAULT_PREFIX", "RedisAsyncStore", "RedisStore"]
