"""The background indexer: embeds newly written messages in batches off the append path, with a visible backlog."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from memvault.model import Message

logger = logging.getLogger("memvault.recall")

Work = tuple[str, str, list[Message]]


class BackgroundIndexer:
    """A daemon thread draining ``(namespace, session, messages)`` items through ``handle`` in batches.

    ``mode="inline"`` runs ``handle`` in the writer's thread instead (simplest; adds embedding time to appends).
    """

    def __init__(self, handle: Callable[[Sequence[Work]], None], *, mode: str = "background", batch: int = 64) -> None:
        if mode not in ("background", "inline"):
            raise ValueError(f"indexer mode must be 'background' or 'inline', got {mode!r}")
        self.handle = handle
        self.mode = mode
        self.batch = batch
        self._queue: deque[Work] = deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.errors = 0
        self.last_error: BaseException | None = None

    @property
    def backlog(self) -> int:
        """Messages written but not yet embedded."""
        with self._cond:
            return self._pending

    def submit(self, ns: str, sid: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        if self.mode == "inline":
            self._run([(ns, sid, list(messages))])
            return
        with self._cond:
            if self._closed:
                return
            self._queue.append((ns, sid, list(messages)))
            self._pending += len(messages)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="memvault-indexer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self, work: Sequence[Work]) -> None:
        try:
            self.handle(work)
        except Exception as exc:  # the query path re-embeds what is missing, so a failure here loses nothing
            self.errors += 1
            self.last_error = exc
            logger.warning("background indexing of %d item(s) failed: %s", len(work), exc)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                work: list[Work] = []
                size = 0
                while self._queue and size < self.batch:
                    item = self._queue.popleft()
                    work.append(item)
                    size += len(item[2])
            self._run(work)
            with self._cond:
                self._pending -= size
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the backlog is empty; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop now: drop queued work (the query path re-embeds whatever is missing) and join the thread, which
        finishes at most its current batch."""
        with self._cond:
            self._closed = True
            self._pending -= sum(len(item[2]) for item in self._queue)
            self._queue.clear()
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
