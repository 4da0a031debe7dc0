"""Exclusive access to one session across threads and processes (``flock`` plus a thread stripe), and the two
ways operations run: writers under the lock, readers lock-free on a committed snapshot (retrying under the lock
before calling anything corrupt)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, overload

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from memvault.backends.files.format import LOCK, Meta
from memvault.errors import BackendUnavailable, CorruptData

T = TypeVar("T")


class SessionLocking:
    """Locking and the read/write runners of :class:`~.store.FileStore`."""

    lock_timeout: float
    _stripes: list[threading.RLock]

    if TYPE_CHECKING:  # provided by the host class (FileStore)
        def _dir(self, ns: str, sid: str) -> Path: ...
        def _load_meta(self, d: Path, ns: str | None = None, sid: str | None = None) -> Meta | None: ...
        def _alive(self, meta: Meta, now: float | None = None) -> bool: ...
        def _quarantine(self, ns: str, sid: str, d: Path, exc: CorruptData) -> CorruptData: ...
        @overload
        def _open_messages(self, d: Path, meta: Meta, *, write: Literal[True]) -> int: ...
        @overload
        def _open_messages(self, d: Path, meta: Meta, *, write: bool) -> int | None: ...
        def _open_messages(self, d: Path, meta: Meta, *, write: bool) -> int | None: ...

    def _acquire(self, fd: int, lock: Path) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.0001
        while True:
            time.sleep(delay)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"{lock} stayed locked by another writer for over {self.lock_timeout:g}s; raise "
                        "?lock_timeout= or find the stuck process"
                    ) from None
                delay = min(delay * 2, 0.002)

    @contextmanager
    def _locked(self, ns: str, sid: str, *, create: bool) -> Iterator[Path | None]:
        """Exclusive access to one session across threads and processes. Yields its directory, or None when the
        session has no directory and ``create`` is false."""
        d = self._dir(ns, sid)
        lock = d / LOCK
        with self._stripes[hash((ns, sid)) % len(self._stripes)]:
            while True:
                try:
                    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
                except FileNotFoundError:
                    if not create:
                        yield None
                        return
                    d.mkdir(parents=True, exist_ok=True)
                    continue
                try:
                    self._acquire(fd, lock)
                    # the directory may have been deleted or moved aside while we waited: then start over
                    same = os.path.samestat(os.stat(lock), os.fstat(fd))
                except FileNotFoundError:
                    same = False
                except BaseException:
                    os.close(fd)
                    raise
                if same:
                    break
                os.close(fd)
            try:
                yield d
            finally:
                os.close(fd)  # releases the flock

    def _write(self, ns: str, sid: str, create: bool, op: Callable[[Path, Meta | None], T], missing: T) -> T:
        """Run ``op(dir, meta)`` under the session lock; a corrupt session is moved aside and reported."""
        with self._locked(ns, sid, create=create) as d:
            if d is None:
                return missing
            try:
                return op(d, self._load_meta(d, ns, sid))
            except CorruptData as exc:
                raise self._quarantine(ns, sid, d, exc) from None

    def _read(self, ns: str, sid: str, op: Callable[[Path, Meta, int], T], missing: T, *, file: bool = True) -> T:
        """Run ``op(dir, meta, fd)`` on a consistent snapshot without locking (``fd`` is -1 unless ``file``). If the
        data looks corrupt, retry under the lock (a race is not corruption) and only then move the session aside."""
        d = self._dir(ns, sid)
        try:
            for _ in range(5):
                meta = self._load_meta(d, ns, sid)
                if meta is None or not self._alive(meta):
                    return missing
                fd = self._open_messages(d, meta, write=False) if file else -1
                if fd is None:
                    continue  # rewritten under our feet: take the new snapshot
                try:
                    return op(d, meta, fd)
                except FileNotFoundError:
                    continue  # a records file replaced under our feet
                finally:
                    if fd >= 0:
                        os.close(fd)
        except CorruptData:
            pass

        def locked(d: Path, meta: Meta | None) -> T:
            if meta is None or not self._alive(meta):
                return missing
            fd = self._open_messages(d, meta, write=True) if file else -1
            try:
                return op(d, meta, fd)
            except FileNotFoundError as exc:
                raise CorruptData(f"{exc.filename} is missing (meta.jsonl refers to it)", path=exc.filename) from None
            finally:
                if fd >= 0:
                    os.close(fd)

        return self._write(ns, sid, False, locked, missing)
