"""``redis://`` (``rediss://`` for TLS, ``redis+cluster://``, ``redis+sentinel://``) — plain Redis 7, no modules.

Layout (``P`` = prefix, default ``memvault:``; ``T`` = the session's hash tag ``<ns>\\x1f<sid>`` with ``\\``, ``{``,
``}`` escaped so an id can never break the tag). All of one session's keys share the tag, hence one Cluster slot,
so every per-session operation is ONE atomic Lua script even on a Cluster:

- ``P{T}:s`` hash: created ``c``, updated ``up``, expires ``x`` (absent = never), user ``u``, metadata ``md``,
  last seq ``ls``, body bytes ``b``.
- ``P{T}:m`` sorted set: message id -> seq. ZSCORE gives id -> seq (idempotent append, delete by id), ZRANGE
  BYSCORE gives seq ranges and tails in O(log n + k): reads never touch more of the session than they return.
- ``P{T}:h`` hash: message id -> canonical body. ``P{T}:k`` set of record kinds; ``P{T}:r:<kind>`` hash per kind.
- ``P{T}:ev`` hash ``<kind>\\0<key>`` -> entry value, ``P{T}:ez`` sorted set of the same members (score 0) for key
  ranges in byte order (ZRANGE BYLEX).
- ``P ix:{<ns>}`` sorted set per namespace: session id -> updated_at, for listing without KEYS. It lives in the
  namespace's slot, so it is updated right after the session script (same pipeline on a standalone server; a
  second round trip on a Cluster, script first so an index entry never precedes its session). Entries whose
  session is gone (natively expired) are dropped lazily by listing and by ``purge_expired``.

Visibility follows the store's clock through the stored ``x``; every write also sets a native PEXPIRE of
ttl + ``native_slack`` seconds so Redis reclaims memory even if nobody purges. Times travel as Python ``repr``
strings (Lua would round doubles to 14 digits) and are only compared, never printed, inside scripts.

Sync and async share everything: each operation is a plan (:mod:`.plans`) yielding batches of commands (one batch =
one round trip), executed by a sync (``redis.Redis``/``RedisCluster``) or an async (``redis.asyncio``) driver
(:mod:`.drive`). Modules: :mod:`.store` (this face), :mod:`.aio`, :mod:`.plans`, :mod:`.drive`, :mod:`.scripts`
(Lua), :mod:`.connect` (URLs and clients).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, ClassVar

from redis.exceptions import RedisError, ResponseError

from memvault.backends.redis.connect import (
    DEFAULT_NATIVE_SLACK,
    DEFAULT_PREFIX,
    Connector,
    connect_client,
    connect_url,
    parse_ttl,
)
from memvault.backends.redis.drive import (
    UNAVAILABLE,
    UNAVAILABLE_REPLIES,
    Plan,
    Scan,
    as_text,
    glob_escape,
    run_async,
    run_sync,
)
from memvault.backends.redis.plans import RedisPlans
from memvault.config import mask_url
from memvault.errors import BackendUnavailable, CorruptData, InvalidURL, MemvaultError
from memvault.faces import AsyncStore, PlannedStore

logger = logging.getLogger("memvault.redis")


class RedisStore(RedisPlans, PlannedStore):
    """Sessions in plain Redis 7 (standalone, Cluster or Sentinel-managed), sync and native async."""

    backend: ClassVar[str] = "redis"
    capabilities: ClassVar[frozenset[str]] = frozenset({"native_async", "multiprocess", "native_ttl", "rewrite"})
    default_ttl: ClassVar[float | None] = 7 * 86400

    def __init__(
        self,
        connector: Connector,
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
            self.default_ttl = parse_ttl(ttl)  # type: ignore[misc]
        self._aio_loop: Any = None
        self._aio_gate: asyncio.Semaphore | None = None
        self._aio_ready: Any = None  # the async Cluster client whose cluster map is loaded
        self._closed = False

    # -- construction --------------------------------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS), ``redis+cluster://h:p[,h:p]``,
        ``redis+sentinel://[[user]:password@]h:p[,h:p]/service[/db]``. Options (keyword or ``?query``): prefix,
        password, db, pool_size, connect_timeout, socket_timeout, retries, ttl (default for Memory; ``none`` =
        never), native_slack, sentinel_password; other query keys go to redis-py."""
        connector, store_kw = connect_url(url, options)
        return cls(connector, **store_kw)

    @classmethod
    def from_client(cls, client: Any, *, aclient: Any = None, **options: Any) -> RedisStore:
        """Wrap a client you already have: ``redis.Redis``, ``redis.cluster.RedisCluster``, a Sentinel
        ``master_for(...)`` client, or their ``redis.asyncio`` twins. memvault never closes clients it did not
        create; the missing flavour (async for a sync client and vice versa) is built from the same settings."""
        connector, store_kw = connect_client(client, aclient, options)
        return cls(connector, **store_kw)

    @property
    def url(self) -> str:
        if self.prefix != DEFAULT_PREFIX:
            sep = "&" if "?" in self._conn.url else "?"
            return f"{self._conn.url}{sep}prefix={self.prefix}"
        return self._conn.url

    @property
    def aio(self) -> AsyncStore:
        if self._aio is None:
            from memvault.backends.redis.aio import RedisAsyncStore

            self._aio = RedisAsyncStore(self)
        return self._aio

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
        if isinstance(exc, UNAVAILABLE):
            return self._unavailable(exc)
        if isinstance(exc, ResponseError):
            text = self._scrub(str(exc))
            if text.split(" ", 1)[0] in UNAVAILABLE_REPLIES or "OOM" in text or "NOAUTH" in text:
                return self._unavailable(exc)
            keys = getattr(exc, "memvault_keys", None)
            where = f"session key {as_text(keys[0])!r}" if keys else f"a key under prefix {self.prefix!r}"
            if "WRONGTYPE" in text or "MEMVAULT_CORRUPT" in text:
                return CorruptData(
                    f"Redis at {self.url}: {where} holds data memvault did not write ({text}); the other sessions "
                    "are unaffected. Delete that session (or its keys), and use a prefix no other application "
                    "writes to"
                )
            return MemvaultError(f"Redis at {self.url} refused a command for {where}: {text}")
        return exc

    def _run_plan(self, plan: Plan) -> Any:
        try:
            return run_sync(self._sync_client(), plan)
        except RedisError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    async def _arun_plan(self, plan: Plan) -> Any:
        try:
            client = self._async_client()
            gate = self._aio_gate
            if gate is None:
                return await run_async(client, plan)
            if self._aio_ready is not client:
                # redis-py's async RedisCluster breaks commands that race its lazy first initialize() (a
                # connection is closed under them): load the cluster map before any command runs (locked, idempotent)
                await client.initialize()
                self._aio_ready = client
            async with gate:
                return await run_async(client, plan)
        except RedisError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    # -- the sync face: the contract's methods (memvault.faces.PlannedStore) run their plans here --------------------
    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._run_plan(getattr(self, f"_p_{name}")(*args, **kwargs))

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def ping(self) -> None:
        try:
            self._sync_client().ping()
        except RedisError as exc:
            raise self._translate(exc) from exc
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def stats(self) -> dict[str, Any]:
        def op() -> Plan:
            indexes = yield Scan(glob_escape(self.prefix) + "ix:{*}")
            counts = (yield [("ZCARD", ix) for ix in indexes]) if indexes else []
            return {self._ns_of_index(ix): int(n) for ix, n in zip(indexes, counts, strict=True)}

        namespaces = self._run_plan(op())
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
