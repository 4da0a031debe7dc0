"""Backend selection by URL. ``MEMVAULT_URL`` overrides the default; the default is the embedded SQLite file
``$MEMVAULT_HOME/memvault.db`` (``MEMVAULT_HOME`` defaults to ``~/.memvault``)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from memvault.contract import Store
from memvault.errors import InvalidURL

#: scheme -> "module:Class"; each class has ``from_url(url, **options)``
BACKENDS: dict[str, str] = {
    "memory": "memvault.backends.inmemory:InMemoryStore",
    "sqlite": "memvault.backends.sqlite:SQLiteStore",
    "file": "memvault.backends.files:FileStore",
    "redis": "memvault.backends.redis:RedisStore",
    "rediss": "memvault.backends.redis:RedisStore",
    "redis+cluster": "memvault.backends.redis:RedisStore",
    "redis+sentinel": "memvault.backends.redis:RedisStore",
    "postgresql": "memvault.backends.postgres:PostgresStore",
    "postgres": "memvault.backends.postgres:PostgresStore",
}

#: module prefix of a client object -> "module:Class" whose ``from_client(obj, **options)`` wraps it
CLIENTS: dict[str, str] = {
    "redis": "memvault.backends.redis:RedisStore",
    "psycopg_pool": "memvault.backends.postgres:PostgresStore",
    "psycopg": "memvault.backends.postgres:PostgresStore",
}


def memvault_home() -> Path:
    return Path(os.environ.get("MEMVAULT_HOME") or "~/.memvault").expanduser()


def default_url() -> str:
    """``MEMVAULT_URL`` if set, else ``sqlite:///`` + ``$MEMVAULT_HOME/memvault.db``."""
    return os.environ.get("MEMVAULT_URL") or f"sqlite:///{memvault_home() / 'memvault.db'}"


def mask_url(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***`` (a raw ``@`` inside the password included)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    at = netloc.rfind("@")
    if at < 0 or ":" not in netloc[:at]:
        return url
    user = netloc[:at].split(":", 1)[0]
    return f"{scheme}://{user}:***@{netloc[at + 1 :]}{tail}"


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise InvalidURL(f"{mask_url(url)!r} is not a backend URL; expected one of {sorted(BACKENDS)} + '://...'")
    return url.split("://", 1)[0].lower()


def _load(target: str) -> type[Store]:
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise InvalidURL(f"backend {name} needs an extra package: {exc}. Try: pip install 'memvault[all]'") from exc


def open_store(target: str | Store | Any | None = None, **options: Any) -> Store:
    """A store for a URL, an existing Store, or a client object (redis-py client, psycopg pool/connection).
    ``fallback="spool"`` (with optional ``spool_path``, ``spool_retry``) wraps it in :class:`memvault.spool.SpoolStore`."""
    fallback = options.pop("fallback", None)
    if fallback is not None:
        from memvault.spool import with_fallback

        spool = {k: options.pop(k) for k in ("spool_path", "spool_retry") if k in options}
        return with_fallback(open_store(target, **options), fallback, **spool)
    if target is None:
        target = default_url()
    if isinstance(target, Store):
        return target
    if isinstance(target, str):
        scheme = scheme_of(target)
        if scheme not in BACKENDS:
            raise InvalidURL(f"unknown backend scheme {scheme!r} in {mask_url(target)!r}; known: {sorted(BACKENDS)}")
        return _load(BACKENDS[scheme]).from_url(target, **options)  # type: ignore[attr-defined,no-any-return]
    root = type(target).__module__.split(".")[0]
    if root in CLIENTS:
        return _load(CLIENTS[root]).from_client(target, **options)  # type: ignore[attr-defined,no-any-return]
    raise InvalidURL(f"cannot make a store from a {type(target).__name__}; pass a URL, a Store or a client")


def file_path(url: str) -> Path:
    """The filesystem path in ``sqlite:///rel.db``, ``sqlite:////abs.db`` (SQLAlchemy style) or ``file:///abs``."""
    rest = url.split("://", 1)[1]
    rest = rest.split("?", 1)[0]
    if url.lower().startswith("sqlite"):
        if not rest.startswith("/"):
            raise InvalidURL(f"{url!r}: write sqlite:///relative.db or sqlite:////absolute/path.db")
        rest = rest[1:]
        if not rest:
            raise InvalidURL(f"{url!r} names no database file")
    elif rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if not rest:
        raise InvalidURL(f"{url!r} names no path")
    return Path(rest).expanduser()


def query_options(url: str) -> dict[str, str]:
    """``?a=1&b=2`` of a URL as a dict."""
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query))
