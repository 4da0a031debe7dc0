"""Process-wide Memory objects for adapters: one per URL, so building a history or chat store per request opens no
new connection, and closing one adapter never closes what the others use.

``shared_memory(url)`` gives the Memory for a URL (``None``: ``MEMVAULT_URL`` or the embedded default), opened on
first use and closed at interpreter exit (or by :func:`close_shared`). :func:`open_memory` is what every adapter
calls: a Memory the caller passed, the shared one, or a private one when backend options are given; only a private
one is the adapter's to close (:func:`owned`).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import Any

from memvault.config import default_url
from memvault.errors import InvalidURL
from memvault.memory import Memory

_SHARED: dict[str, Memory] = {}
_LOCK = threading.Lock()
_OWNED: weakref.WeakSet[Memory] = weakref.WeakSet()


def shared_memory(url: str | None = None) -> Memory:
    """The process-wide Memory for ``url``; reopened if someone closed it."""
    key = url or default_url()
    with _LOCK:
        mem = _SHARED.get(key)
        if mem is None or mem.closed:
            mem = _SHARED[key] = Memory(key)
        return mem


def is_shared(memory: Memory) -> bool:
    with _LOCK:
        return any(m is memory for m in _SHARED.values())


def open_memory(url: str | None = None, memory: Memory | None = None, options: dict[str, Any] | None = None) -> Memory:
    """The Memory an adapter works on: ``memory`` if given; else a private Memory when backend ``options`` are
    given (the adapter owns it: see :func:`owned`); else the shared one for ``url``."""
    if memory is not None:
        if url is not None:
            raise InvalidURL("pass either memory= or url=, not both")
        if not isinstance(memory, Memory):
            raise InvalidURL(f"memory= must be a memvault.Memory (or pass url=), got {type(memory).__name__}")
        return memory
    if options:
        private = Memory(url, **options)
        _OWNED.add(private)
        return private
    return shared_memory(url)


def owned(memory: Memory) -> bool:
    """True when ``memory`` was opened privately by :func:`open_memory` (so its adapter may close it)."""
    return memory in _OWNED


def close_shared() -> None:
    """Close every shared Memory (at exit; also for tests and for releasing connections on purpose)."""
    with _LOCK:
        memories = list(_SHARED.values())
        _SHARED.clear()
    for mem in memories:
        mem.close()


atexit.register(close_shared)

__all__ = ["close_shared", "is_shared", "open_memory", "owned", "shared_memory"]
