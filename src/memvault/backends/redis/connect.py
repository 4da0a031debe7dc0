"""Building the clients: ``redis://``, ``rediss://``, ``redis+cluster://`` and ``redis+sentinel://`` URLs, or a
client you already have (its missing sync/async twin is derived from the same settings)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from memvault.config import mask_url
from memvault.errors import InvalidURL

DEFAULT_PREFIX = "memvault:"
DEFAULT_POOL_SIZE = 50
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_SOCKET_TIMEOUT = 10.0
DEFAULT_NATIVE_SLACK = 3600.0
STORE_OPTIONS = ("prefix", "ttl", "native_slack", "clock", "max_message_bytes")


def _retry(retries: int) -> Retry:
    # redis-py's default retry backs off for seconds when a server is down; memvault fails fast instead (a retried
    # script is safe: appends are idempotent by message id).
    return Retry(ExponentialBackoff(cap=0.1, base=0.01), retries)


def _aretry(retries: int) -> AsyncRetry:
    """:func:`_retry` for the clients that type-check it as redis.asyncio's Retry (the async cluster client)."""
    return AsyncRetry(ExponentialBackoff(cap=0.1, base=0.01), retries)


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


def _redis_settings() -> set[str]:
    """Keyword settings redis-py's clients accept (standalone and cluster), for checking options early."""
    import inspect

    from redis.cluster import RedisCluster

    names: set[str] = set()
    for init in (redis.Redis.__init__, RedisCluster.__init__, redis.connection.Connection.__init__,
                 redis.connection.AbstractConnection.__init__):
        names |= {p.name for p in inspect.signature(init).parameters.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return names - {"self"}


def parse_ttl(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.lower() in ("", "none", "never")):
        return None
    return float(value)


@dataclass
class Connector:
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


def connect_url(url: str, options: dict[str, Any]) -> tuple[Connector, dict[str, Any]]:
    """``redis://[[user]:password@]host[:port][/db]``, ``rediss://…`` (TLS), ``redis+cluster://h:p[,h:p]``,
    ``redis+sentinel://[[user]:password@]h:p[,h:p]/service[/db]``. Options (keyword or ``?query``): prefix,
    password, db, pool_size, connect_timeout, socket_timeout, retries, ttl (default for Memory; ``none`` =
    never), native_slack, sentinel_password; other query keys go to redis-py."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query))
    merged: dict[str, Any] = {**{k: v for k, v in query.items() if k in _OUR_OPTIONS}, **options}
    passthrough = {k: v for k, v in query.items() if k not in _OUR_OPTIONS}
    store_kw: dict[str, Any] = {k: merged.pop(k) for k in ("prefix", "ttl", "native_slack", "clock", "max_message_bytes") if k in merged}
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
    extra = merged  # anything else: handed to redis-py as is, if it is one of its connection settings
    unknown = sorted(set(extra) - _redis_settings())
    if unknown:
        raise InvalidURL(f"unknown Redis option(s) {unknown}: neither memvault's ({sorted(_OUR_OPTIONS)}) nor "
                         "redis-py connection settings")
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

        connector = Connector("standalone", shown, make_sync, make_async)
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
            return RedisCluster(startup_nodes=nodes, retry=_aretry(retries), **kw)

        connector = Connector("cluster", shown, make_sync, make_async, async_limit=pool_size)
    elif scheme == "redis+sentinel":
        user, pw, hosts = _netloc(parts.netloc)
        segments = [p for p in parts.path.split("/") if p]
        if not hosts or not segments:
            raise InvalidURL(f"{shown}: write redis+sentinel://[:password@]host:26379[,host:port]/service[/db]")
        service = unquote(segments[0])
        kw = {**timeouts, **extra, "retry": _retry(retries), "max_connections": pool_size, **passthrough}
        if pw is not None or password is not None:
            kw["password"] = password if password is not None else pw
        if user:
            kw["username"] = user
        kw["db"] = int(db if db is not None else (segments[1] if len(segments) > 1 else 0))
        sentinel_kw = {**timeouts}
        if sentinel_password is not None:
            sentinel_kw["password"] = sentinel_password

        def make_sync() -> Any:
            from redis.sentinel import Sentinel

            return Sentinel(hosts, sentinel_kwargs=sentinel_kw, **timeouts).master_for(service, **kw)

        def make_async() -> Any:
            from redis.asyncio.sentinel import Sentinel

            return Sentinel(hosts, sentinel_kwargs=sentinel_kw, **timeouts).master_for(service, **kw)

        connector = Connector("sentinel", shown, make_sync, make_async)
    else:
        raise InvalidURL(f"{shown}: not a Redis URL (redis://, rediss://, redis+cluster://, redis+sentinel://)")
    connector.secrets = secrets
    return connector, store_kw


def connect_client(client: Any, aclient: Any, options: dict[str, Any]) -> tuple[Connector, dict[str, Any]]:
    """Wrap a client you already have: ``redis.Redis``, ``redis.cluster.RedisCluster``, a Sentinel
    ``master_for(...)`` client, or their ``redis.asyncio`` twins. memvault never closes clients it did not
    create; the missing flavour (async for a sync client and vice versa) is built from the same settings."""
    store_kw: dict[str, Any] = {k: options.pop(k) for k in ("prefix", "ttl", "native_slack", "clock", "max_message_bytes") if k in options}
    if options:
        raise InvalidURL(f"options {sorted(options)} cannot be applied to an existing client; configure the client")
    is_async = type(client).__module__.startswith("redis.asyncio")
    sync_client, async_client = (None, client) if is_async else (client, aclient)
    mode, shown, twin = _describe(client)
    connector = Connector(
        mode,
        shown,
        make_sync=twin if is_async else None,
        make_async=twin if not is_async and aclient is None else None,
        sync_client=sync_client,
        owns_sync=sync_client is None,
        async_client=async_client,
        owns_async=async_client is None,
    )
    return connector, store_kw


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
        kw = _portable(client.nodes_manager.connection_kwargs if not is_async else client.connection_kwargs)
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
