"""Process exit: stop memvault's background threads before the interpreter finalizes.

A daemon thread that is inside native code (onnxruntime embedding a batch, usearch building a graph) when the
interpreter finalizes makes the process abort ("terminate called without an active exception", SIGABRT). Every
object that owns such a thread registers here; one ``atexit`` hook stops them all (dropping queued work that the
next process redoes: pending embeddings are found again on the next query) and joins them, so exiting without
``Memory.close()`` is always safe.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Protocol

logger = logging.getLogger("memvault")


class Stoppable(Protocol):
    def stop(self) -> None:
        """Stop background work promptly and join its threads."""


_LIVE: weakref.WeakSet[Stoppable] = weakref.WeakSet()
_LOCK = threading.Lock()


def register(owner: Stoppable) -> None:
    """Stop ``owner`` at interpreter exit (held weakly: a collected owner needs nothing)."""
    with _LOCK:
        _LIVE.add(owner)


def stop_all() -> None:
    """Stop every registered owner (the atexit hook; also callable from tests)."""
    with _LOCK:
        owners = list(_LIVE)
    for owner in owners:
        try:
            owner.stop()
        except Exception as exc:  # exiting anyway: report, never raise from an exit hook
            logger.debug("stopping %r at exit failed: %s", owner, exc)


atexit.register(stop_all)
