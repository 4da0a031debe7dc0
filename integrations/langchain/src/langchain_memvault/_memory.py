"""One shared :class:`memvault.Memory` per URL, so that creating a history per request (what
``RunnableWithMessageHistory`` factories do) does not open a new connection or database handle each time."""

from __future__ import annotations

import atexit
import threading

from memvault import Memory, default_url
from memvault.errors import InvalidURL

_SHARED: dict[str, Memory] = {}
_LOCK = threading.Lock()


def shared_memory(url: str | None = None) -> Memory:
    """The process-wide Memory for ``url`` (None = the embedded default / ``MEMVAULT_URL``), opened on first use."""
    key = url or default_url()
    with _LOCK:
        mem = _SHARED.get(key)
        if mem is None or mem._closed:
            mem = _SHARED[key] = Memory(key)
        return mem


@atexit.register
def _close_shared() -> None:
    with _LOCK:
        memories = list(_SHARED.values())
        _SHARED.clear()
    for mem in memories:
        mem.close()


def resolve_memory(memory: Memory | None, url: str | None) -> Memory:
    if memory is not None and url is not None:
        raise InvalidURL("pass either memory= or url=, not both")
    if memory is not None:
        if not isinstance(memory, Memory):
            raise InvalidURL(f"memory= must be a memvault.Memory (or pass url=), got {type(memory).__name__}")
        return memory
    return shared_memory(url)
