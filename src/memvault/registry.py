"""Backend selection: a URL scheme or a client object -> the Store class that opens it.

Built-in schemes are below; third-party backends register their own through the ``memvault.backends`` entry-point
group (``scheme = "package.module:StoreClass"``, the class having ``from_url(url, **options)``).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

from memvault.config import default_url, mask_url
from memvault.contract import Store
from memvault.errors import InvalidURL, MemvaultError

logger = logging.getLogger("memvault")

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


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise InvalidURL(f"{mask_url(url)!r} is not a backend URL; expected one of {sorted(BACKENDS)} + '://...'")
    return url.split("://", 1)[0].lower()


def _load(target: str) -> type[Store]:
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
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
            _plugins()
        if scheme not in BACKENDS:
            raise InvalidURL(f"unknown backend scheme {scheme!r} in {mask_url(target)!r}; known: {sorted(BACKENDS)}")
        return _construct(_load(BACKENDS[scheme]).from_url, target, options)  # type: ignore[attr-defined]
    root = type(target).__module__.split(".")[0]
    if root in CLIENTS:
        return _construct(_load(CLIENTS[root]).from_client, target, options)  # type: ignore[attr-defined]
    raise InvalidURL(f"cannot make a store from a {type(target).__name__}; pass a URL, a Store or a client")


def _construct(factory: Any, target: Any, options: dict[str, Any]) -> Store:
    """Build a store; an option the backend does not know (a TypeError from its signature) or a malformed value
    (ValueError) is an InvalidURL naming it, not a raw exception."""
    try:
        return factory(target, **options)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, MemvaultError):
            raise
        shown = mask_url(target) if isinstance(target, str) else type(target).__name__
        raise InvalidURL(f"cannot open {shown} with options {sorted(options)}: {exc}") from None


_PLUGINS_LOADED = False


def _plugins() -> None:
    """Add the schemes of installed packages' ``memvault.backends`` entry points (once; built-ins win)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for point in entry_points(group="memvault.backends"):
        scheme = point.name.lower()
        if scheme in BACKENDS:
            logger.warning("entry point %s for scheme %r ignored: a built-in backend owns it", point.value, scheme)
            continue
        BACKENDS[scheme] = point.value


def register_backend(scheme: str, target: str | type[Store]) -> None:
    """Make ``scheme://`` open ``target`` (a Store class with ``from_url``, or ``"module:Class"``)."""
    BACKENDS[scheme.lower()] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


__all__ = ["BACKENDS", "CLIENTS", "open_store", "register_backend", "scheme_of"]
