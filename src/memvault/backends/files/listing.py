"""Listing and purging on the file store: a namespace is a directory of session directories, each with its
``meta.jsonl``. Listing reads every session's meta (O(sessions) per call); a corrupt session found on the way is
moved aside under its lock, with a warning, and skipped."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from memvault.backends.files.format import LOCK, META, Meta, encode_name, move_aside, os_errors
from memvault.backends.files.locking import SessionLocking
from memvault.contract import SessionQuery, page_of, session_matches
from memvault.errors import BackendUnavailable, CorruptData
from memvault.model import Page, SessionInfo

logger = logging.getLogger("memvault.files")


class ListingOnFiles(SessionLocking):
    """The listing and purge operations of :class:`~.store.FileStore` (the host provides meta I/O)."""

    root: Path
    clock: Callable[[], float]
    _closed: bool
    _load_meta: Callable[..., Meta | None]
    _info: Callable[[Meta], SessionInfo]
    _alive: Callable[..., bool]
    _quarantine: Callable[..., Any]
    _forget: Callable[..., Any]

    def _scan(self, ns_dir: Path) -> Iterator[tuple[Path, Meta]]:
        """Every session of a namespace directory; corrupt ones are moved aside with a warning and skipped."""
        try:
            entries = sorted(os.scandir(ns_dir), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if "." in entry.name or not entry.is_dir():
                continue  # moved aside (.corrupt-/.deleted-) or not ours
            d = Path(entry.path)
            try:
                meta = self._load_meta(d)
            except CorruptData as exc:
                self._quarantine_listed(d, exc)
                continue
            if meta is not None:
                if encode_name(meta.id) != d.name or encode_name(meta.namespace) != ns_dir.name:
                    self._quarantine_listed(
                        d,
                        CorruptData(
                            f"{d / META} names session {meta.namespace!r}/{meta.id!r}, which lives elsewhere",
                            path=str(d / META),
                        ),
                    )
                    continue
                yield d, meta

    def _quarantine_listed(self, d: Path, exc: CorruptData) -> None:
        """Move aside a corrupt session found while listing, if it is still corrupt under its lock."""
        lock = d / LOCK
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return  # already gone
        try:
            self._acquire(fd, lock)
            if not os.path.samestat(os.stat(lock), os.fstat(fd)):
                return
            try:
                self._load_meta(d)
                return  # repaired or rewritten meanwhile
            except CorruptData:
                pass
            target = move_aside(d)
            logger.warning("skipping corrupt session in %s: %s; moved it aside to %s", d.parent, exc, target)
        except FileNotFoundError:
            return
        finally:
            os.close(fd)

    def _namespaces(self) -> list[Path]:
        return sorted(p for p in self.root.iterdir() if p.is_dir() and "." not in p.name)

    @os_errors
    def list_sessions(self, query: SessionQuery) -> Page[SessionInfo]:
        if self._closed:
            raise BackendUnavailable(f"file store {self.root} is closed")
        now = self.clock()
        infos = [
            self._info(meta)
            for _, meta in self._scan(self.root / encode_name(query.namespace))
            if meta.namespace == query.namespace and self._alive(meta, now)
        ]
        return page_of([i for i in infos if session_matches(i, query)], query)

    @os_errors
    def purge_expired(self) -> int:
        if self._closed:
            raise BackendUnavailable(f"file store {self.root} is closed")
        purged = 0
        for ns_dir in self._namespaces():
            for _, meta in list(self._scan(ns_dir)):
                if self._alive(meta):
                    continue
                with self._locked(meta.namespace, meta.id, create=False) as d:
                    if d is None:
                        continue
                    try:
                        current = self._load_meta(d, meta.namespace, meta.id)
                    except CorruptData as exc:
                        self._quarantine(meta.namespace, meta.id, d, exc)
                        continue
                    if current is None or self._alive(current):
                        continue
                    gone = d.with_name(f"{d.name}.deleted-{uuid.uuid4().hex[:12]}")
                    os.rename(d, gone)
                    self._forget(meta.namespace, meta.id)
                shutil.rmtree(gone, ignore_errors=True)
                purged += 1
        return purged

