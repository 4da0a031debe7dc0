"""``file:///dir`` — one append-only JSON Lines file per session, readable with ``cat`` / ``jq``; safe for several
threads and processes at once on one machine (POSIX: Linux, macOS).

Layout (every id is encoded by :func:`encode_name`, so nothing can escape ``dir``)::

    dir/memvault-files.json                   format marker
    dir/<ns>/<sid>/meta.json                  session fields and the commit point (see below)
    dir/<ns>/<sid>/messages.<gen>.jsonl       one message per line: {"seq":N, ...canonical body...}
    dir/<ns>/<sid>/records.json               {kind: {key: data}} (summaries, state)
    dir/<ns>/<sid>/lock                       flock(2) target, empty

How writes stay atomic: a writer holds an exclusive ``flock`` on the session's ``lock`` file (plus a thread lock,
because flock emulations on network file systems do not exclude threads of one process). It appends its whole
batch to the messages file, then atomically replaces ``meta.json`` (temp file + ``os.replace``), which records the
committed length of the messages file. Bytes past that length are an interrupted write: the next writer saves them
to ``messages.<gen>.jsonl.torn-<time>`` (never dropped silently) and truncates them. Readers take no lock: they read
``meta.json`` once and only the committed bytes it names, so they never block writers and never see half a batch.

Trimming (``max_messages``) only moves ``head`` (the byte offset of the oldest live line) forward; the file is
compacted into a new generation when its dead prefix outgrows its live part (amortised O(1) per append).
``delete_messages``, ``replace`` and ``clear`` rewrite the session into a new generation file, commit it through
``meta.json`` and then remove the old one, so a crash at any point leaves the previous or the new state.

Reads never load the whole session: ``last=N`` reads blocks backwards from the end; seq ranges binary-search the
file (lines are sorted by seq). Idempotent appends need the session's message ids: each process keeps an id index
per session (bounded LRU), built by one scan of the file the first time and then caught up incrementally.
Listing sessions reads every ``meta.json`` of the namespace: O(sessions) per call on this backend.

Damage costs only what is damaged (docs/backends/files.md): a damaged line is skipped by reads with a warning and
kept in the file; an unreadable records file is moved aside and the session continues without records; a damaged
commit point (``meta.jsonl``) or file structure (truncation) raises :class:`~memvault.errors.CorruptData` naming
the file and moves the session's directory aside to ``<sid>.corrupt-<utc time>`` (never overwritten). The rest of
the store keeps working.

Durability: by default nothing is fsynced (a committed write survives a crash of the process, not necessarily a
power loss); ``?fsync=true`` fsyncs the messages file, ``meta.json`` and the directory on every write.
``?lock_timeout=<seconds>`` (default 10) bounds how long a writer waits for another one.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import suppress
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from memvault.backends.files.entries import EntriesOnFiles
from memvault.backends.files.format import (
    CACHE_IDS,
    CACHE_SESSIONS,
    COMPACT_MIN,
    ENTRIES_FILE,
    FORMAT_VERSION,
    MARKER,
    MESSAGES_FILE,
    META,
    RECORDS_FILE,
    TRUE_WORDS,
    Meta,
    body_size,
    encode_name,
    line_seq,
    move_aside,
    os_errors,
    seq_prefix,
    stamp,
)
from memvault.backends.files.index import IdIndex, IdIndexes
from memvault.backends.files.io import FileIO
from memvault.backends.files.listing import ListingOnFiles
from memvault.backends.files.locking import SessionLocking
from memvault.backends.files.records import RecordsOnFiles
from memvault.caching import LRUCache, budget_lru
from memvault.config import file_path, query_options
from memvault.contract import AppendOptions, Rewrite, Store, pop_range
from memvault.errors import (
    BackendUnavailable,
    CorruptData,
    InvalidMessage,
    InvalidURL,
    SchemaVersionError,
    SessionNotFound,
)
from memvault.model import Message, Record, SessionInfo, decode_body, from_epoch
from memvault.validation import merge_session_metadata

logger = logging.getLogger("memvault.files")


class FileStore(EntriesOnFiles, RecordsOnFiles, ListingOnFiles, IdIndexes, SessionLocking, FileIO, Store):
    """Sessions as JSON Lines files under one directory."""

    backend: ClassVar[str] = "file"
    capabilities: ClassVar[frozenset[str]] = frozenset({"multiprocess", "rewrite"})

    def __init__(
        self, path: str | Path, *, fsync: bool | str = False, lock_timeout: float | str = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if fcntl is None:  # pragma: no cover - Windows
            raise BackendUnavailable("the file:// backend needs POSIX file locks (Linux, macOS); use sqlite:/// here")
        self.root = Path(path).expanduser().absolute()
        self.fsync = fsync.lower() in TRUE_WORDS if isinstance(fsync, str) else bool(fsync)
        self.lock_timeout = float(lock_timeout)
        self.bytes_read = 0  # diagnostic: bytes read from message files (tests use it to prove reads stay small)
        self.damaged_lines = 0  # diagnostic: damaged message lines skipped (and logged) by reads
        self._stripes = [threading.RLock() for _ in range(64)]
        self._cache: LRUCache[tuple[str, str], IdIndex] = budget_lru(CACHE_IDS, CACHE_SESSIONS, lambda i: len(i.ids))
        self._cache_lock = threading.Lock()
        self._closed = False
        self._open_root()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FileStore:
        merged: dict[str, Any] = {**query_options(url), **options}
        return cls(file_path(url), **merged)

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def _open_root(self) -> None:
        marker = self.root / MARKER
        try:
            if not marker.exists():
                if self.root.exists():
                    foreign = [p.name for p in self.root.iterdir() if not p.name.startswith(MARKER)]
                    # sessions are only ever written after the marker exists: re-check it (another process may
                    # have just initialised the directory) before refusing
                    if foreign and not marker.exists():
                        raise InvalidURL(
                            f"{self.root} already holds other files ({', '.join(sorted(foreign)[:3])}, ...) and is "
                            "not a memvault file store; point file:// at a new or empty directory"
                        )
                self.root.mkdir(parents=True, exist_ok=True)
                if not marker.exists():
                    body = json.dumps({"format": "memvault-files", "version": FORMAT_VERSION}).encode() + b"\n"
                    self._write_atomic(marker, body)
            self._check_marker(marker)
        except OSError as exc:
            raise BackendUnavailable(f"cannot use {self.root} as a file store: {exc}") from exc

    def _check_marker(self, marker: Path) -> None:
        try:
            data = json.loads(marker.read_bytes())
            version = data["version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptData(f"{marker} is unreadable ({exc}); restore it or remove it", path=str(marker)) from None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise SchemaVersionError(
                f"{self.root} uses file-store format v{version}; this memvault reads v{FORMAT_VERSION}: upgrade"
            )
        if version < FORMAT_VERSION:  # v1 files read as they are; the marker keeps older memvaults away from v2
            body = json.dumps({"format": "memvault-files", "version": FORMAT_VERSION}).encode() + b"\n"
            self._write_atomic(marker, body)

    def _decode(self, ns: str, sid: str, path: Path, offset: int, line: bytes) -> Message | None:
        """The message of a stored line, or None (logged) when the line is damaged: one bad line never takes the
        rest of the session offline, and it stays in the file (never dropped) for inspection."""
        seq = line_seq(line)
        try:
            if seq is None:
                raise CorruptData("not a stored message")
            return decode_body(line, session_id=sid, seq=seq)
        except CorruptData as exc:
            self.damaged_lines += 1
            logger.warning("%s: skipping the damaged line at byte %d of session %r/%r (%s); the other lines are "
                           "served", path, offset, ns, sid, exc)
            return None

    def _decoded(self, ns: str, sid: str, path: Path, lines: Sequence[tuple[int, bytes]]) -> list[Message]:
        return [m for offset, line in lines if (m := self._decode(ns, sid, path, offset, line)) is not None]

    # -- sessions on disk ----------------------------------------------------------------------------------------
    def _dir(self, ns: str, sid: str) -> Path:
        if self._closed:
            raise BackendUnavailable(f"file store {self.root} is closed")
        return self.root / encode_name(ns) / encode_name(sid)

    def _load_meta(self, d: Path, ns: str | None = None, sid: str | None = None) -> Meta | None:
        path = d / META
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        meta = Meta.parse(raw, path)
        if (ns is not None and meta.namespace != ns) or (sid is not None and meta.id != sid):
            raise CorruptData(
                f"{path} belongs to session {meta.namespace!r}/{meta.id!r}, not {ns!r}/{sid!r}", path=str(path)
            )
        return meta

    def _alive(self, meta: Meta, now: float | None = None) -> bool:
        return meta.expires_at is None or meta.expires_at > (self.clock() if now is None else now)

    def _info(self, meta: Meta) -> SessionInfo:
        return SessionInfo(
            id=meta.id,
            namespace=meta.namespace,
            user_id=meta.user_id,
            created_at=from_epoch(meta.created_at),
            updated_at=from_epoch(meta.updated_at),
            message_count=meta.count,
            size_bytes=meta.size,
            metadata=meta.metadata,
            expires_at=from_epoch(meta.expires_at),
            backend=self.backend,
            last_seq=meta.last_seq,
        )

    def _commit(self, d: Path, meta: Meta) -> None:
        """Make ``meta`` the session's committed state: overwrite the older slot of ``meta.jsonl`` in place, or
        write a new file when there is none yet or the state outgrew its slots."""
        meta.n += 1
        path = d / META
        if meta.slot >= 0:
            data = meta.slot_bytes(meta.slot_size)
            if data is not None:
                fd = os.open(path, os.O_WRONLY)
                try:
                    self._pwrite(fd, data, (1 - meta.slot) * meta.slot_size)
                    self._sync(fd)
                finally:
                    os.close(fd)
                meta.slot = 1 - meta.slot
                return
        line = meta.slot_line()
        size = 512
        while size < len(line) * 3 // 2 + 1:  # room for counters to grow without coming back to this slower path
            size *= 2
        data = meta.slot_bytes(size, line)
        assert data is not None
        self._write_atomic(path, data + data)
        meta.slot, meta.slot_size = 0, size

    @overload
    def _open_messages(self, d: Path, meta: Meta, *, write: Literal[True]) -> int: ...
    @overload
    def _open_messages(self, d: Path, meta: Meta, *, write: bool) -> int | None: ...

    def _open_messages(self, d: Path, meta: Meta, *, write: bool) -> int | None:
        """An fd on the committed messages file, after checking it against ``meta``. Writers also set aside an
        interrupted write's bytes. Returns None (lock-free readers only) when a concurrent rewrite removed it."""
        path = d / meta.file
        try:
            fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
        except FileNotFoundError:
            if not write:
                return None
            raise CorruptData(
                f"{path} is missing (meta.json expects {meta.bytes} bytes in it)", path=str(path)
            ) from None
        try:
            size = os.fstat(fd).st_size
            if size < meta.bytes:
                raise CorruptData(
                    f"{path} holds {size} bytes but {meta.bytes} were committed: the file was truncated",
                    path=str(path),
                )
            if meta.bytes > meta.head and self._pread(fd, 1, meta.bytes - 1, path) != b"\n":
                raise CorruptData(
                    f"{path} does not end a line at its committed length {meta.bytes}: it was overwritten or edited",
                    path=str(path),
                )
            if write and size > meta.bytes:
                torn = path.with_name(f"{path.name}.torn-{stamp()}")
                torn.write_bytes(self._pread(fd, size - meta.bytes, meta.bytes, path))
                os.ftruncate(fd, meta.bytes)
                logger.warning(
                    "%s: %d bytes of an interrupted write were not committed; saved them to %s",
                    path,
                    size - meta.bytes,
                    torn,
                )
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _new_file(self, d: Path, name: str, data: bytes = b"") -> None:
        """Create ``d/name`` holding ``data`` (a new name: cheaper and safer than replacing a file)."""
        path = d / name
        try:
            existing = path.stat().st_size
        except FileNotFoundError:
            existing = 0
        if existing:  # left by a writer that crashed before committing
            torn = path.with_name(f"{path.name}.torn-{stamp()}")
            os.rename(path, torn)
            logger.warning("%s held %d uncommitted bytes; moved them to %s", path, existing, torn)
        with open(path, "wb") as f:
            f.write(data)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())

    def _quarantine(self, ns: str, sid: str, d: Path, exc: CorruptData) -> CorruptData:
        """Move a corrupt session's directory aside (never over anything) and say where it went."""
        target = move_aside(d)
        self._forget(ns, sid)
        logger.warning("corrupt session %r/%r: %s; moved %s aside to %s", ns, sid, exc, d, target)
        moved = target / Path(exc.path).name if exc.path else target
        return CorruptData(
            f"{exc} The session's files were moved to {target} for inspection (the bad file is now {moved}); "
            "the session starts empty on its next write.",
            path=exc.path,
            moved_to=str(target),
        )

    def _forget(self, ns: str, sid: str) -> None:
        with self._cache_lock:
            self._cache.pop((ns, sid), None)

    # -- writes --------------------------------------------------------------------------------------------------
    def _fresh(self, d: Path, ns: str, sid: str, meta: Meta | None, options: AppendOptions, now: float) -> Meta:
        """A new, uncommitted session replacing ``meta`` (absent or expired); its empty messages file exists."""
        metadata = dict(options.metadata or {})
        try:
            json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise InvalidMessage(f"session metadata must be JSON-serializable text: {exc}") from None
        fresh = Meta(
            namespace=ns,
            id=sid,
            uid=uuid.uuid4().hex,
            user_id=options.user_id,
            metadata=metadata,
            created_at=now,
            updated_at=now,
            expires_at=None,
            gen=1 if meta is None else meta.gen + 1,
            rgen=0 if meta is None else meta.rgen,
            egen=0 if meta is None else meta.egen,  # ebytes 0: the next entry write starts generation egen + 1
            n=0 if meta is None else meta.n,
            slot=-1 if meta is None else meta.slot,
            slot_size=0 if meta is None else meta.slot_size,
        )
        self._new_file(d, fresh.file)
        return fresh

    def _live_or_fresh(
        self, d: Path, ns: str, sid: str, meta: Meta | None, options: AppendOptions
    ) -> tuple[Meta, Meta | None]:
        """(the live session, the expired one it replaces if any)."""
        now = self.clock()
        if meta is not None and self._alive(meta, now):
            return meta, None
        return self._fresh(d, ns, sid, meta, options, now), meta

    def _touch(self, meta: Meta, options: AppendOptions) -> None:
        now = self.clock()
        meta.updated_at = max(meta.updated_at, now)
        meta.expires_at = None if options.ttl is None else now + options.ttl

    def _sweep(self, d: Path, meta: Meta) -> None:
        """After a commit that changed generations: remove the files the committed state superseded, also those
        of a writer that died between its commit and its cleanup. Uncommitted newer files stay (they are moved
        aside as ``.torn-`` if their generation number comes up)."""
        for entry in os.scandir(d):
            name = entry.name
            if match := MESSAGES_FILE.fullmatch(name):
                stale = int(match.group(1)) < meta.gen
            elif match := RECORDS_FILE.fullmatch(name):
                stale = int(match.group(1)) <= meta.rgen and int(match.group(1)) != meta.records
            elif match := ENTRIES_FILE.fullmatch(name):
                number = int(match.group(1))
                stale = number < meta.egen or (number == meta.egen and meta.ebytes == 0)
            else:
                stale = ".tmp-" in name  # only writers holding the lock create these
            if stale:
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def _trim(self, fd: int, meta: Meta, path: Path, max_messages: int | None) -> None:
        """Drop the oldest messages beyond ``max_messages`` by moving ``head`` forward."""
        if max_messages is None or meta.count <= max_messages:
            return
        excess = meta.count - max_messages
        for offset, line in self._iter_lines(fd, meta.head, meta.bytes, path, block=4096):
            seq = line_seq(line)
            meta.size -= body_size(line, seq) if seq is not None else len(line)
            meta.count -= 1
            meta.head = offset + len(line) + 1
            excess -= 1
            if not excess:
                break

    def _rewrite(self, d: Path, meta: Meta, lines: list[bytes]) -> Meta:
        """A new generation holding ``lines`` (committed by the caller)."""
        new = meta.copy(gen=meta.gen + 1, head=0, bytes=sum(len(x) for x in lines))
        self._new_file(d, new.file, b"".join(lines))
        return new

    def _maybe_compact(self, d: Path, meta: Meta, fd: int, index: IdIndex | None) -> Meta:
        dead, live = meta.head, meta.bytes - meta.head
        if dead < COMPACT_MIN or dead < live:
            return meta
        new = meta.copy(gen=meta.gen + 1, head=0, bytes=live)
        self._new_file(d, new.file, self._pread(fd, live, meta.head, d / meta.file) if live else b"")
        if index is not None:  # same lines, shifted by the dead prefix
            index.drop_before(meta.head)
            index.gen, index.upto = new.gen, live
            index.order = deque((off - dead, mid) for off, mid in index.order)
            index.ids = {mid: (seq, off - dead, n) for mid, (seq, off, n) in index.ids.items()}
        return new

    @os_errors
    def append(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        def op(d: Path, meta: Meta | None) -> list[int]:
            meta, old = self._live_or_fresh(d, ns, sid, meta, options)
            fd = self._open_messages(d, meta, write=True)
            try:
                index = self._index(d, meta, fd)
                try:
                    seqs = self._append(d, meta, old, fd, index, records, options)
                except BaseException:
                    self._forget(ns, sid)
                    raise
            finally:
                os.close(fd)
            return seqs

        return self._write(ns, sid, True, op, [])

    def _append(
        self,
        d: Path,
        meta: Meta,
        old: Meta | None,
        fd: int,
        index: IdIndex,
        records: Sequence[Record],
        options: AppendOptions,
    ) -> list[int]:
        seqs: list[int] = []
        chunks: list[bytes] = []
        added: list[tuple[str, int, int, int]] = []
        batch: dict[str, int] = {}
        pos = meta.bytes
        for record in records:
            known = index.ids.get(record.id)
            if known is not None or record.id in batch:
                seqs.append(known[0] if known is not None else batch[record.id])
                continue
            meta.last_seq += 1
            body = record.body.encode("utf-8")
            line = seq_prefix(meta.last_seq) + body[1:] + b"\n"
            chunks.append(line)
            added.append((record.id, meta.last_seq, pos, len(line)))
            batch[record.id] = meta.last_seq
            seqs.append(meta.last_seq)
            pos += len(line)
            meta.count += 1
            meta.size += len(body)
        if chunks:
            self._pwrite(fd, b"".join(chunks), meta.bytes)
            self._sync(fd)
            meta.bytes = pos
        self._trim(fd, meta, d / meta.file, options.max_messages)
        self._touch(meta, options)
        for mid, seq, offset, length in added:
            index.add(mid, seq, offset, length)
        index.upto = meta.bytes
        index.drop_before(meta.head)
        committed = self._maybe_compact(d, meta, fd, index)
        self._commit(d, committed)
        if old is not None or committed.gen != meta.gen:
            self._sweep(d, committed)
        return seqs

    @os_errors
    def replace(self, ns: str, sid: str, records: Sequence[Record], options: AppendOptions) -> list[int]:
        def op(d: Path, meta: Meta | None) -> list[int]:
            meta, _ = self._live_or_fresh(d, ns, sid, meta, options)
            seqs: list[int] = []
            lines: list[tuple[bytes, int]] = []
            batch: dict[str, int] = {}
            for record in records:
                if record.id in batch:
                    seqs.append(batch[record.id])
                    continue
                meta.last_seq += 1
                body = record.body.encode("utf-8")
                lines.append((seq_prefix(meta.last_seq) + body[1:] + b"\n", len(body)))
                batch[record.id] = meta.last_seq
                seqs.append(meta.last_seq)
            if options.max_messages is not None:
                lines = lines[-options.max_messages :]
            new = self._rewrite(d, meta, [line for line, _ in lines])
            new.count, new.size = len(lines), sum(size for _, size in lines)
            self._touch(new, options)
            self._commit(d, new)
            self._forget(ns, sid)
            self._sweep(d, new)
            return seqs

        return self._write(ns, sid, True, op, [])

    @os_errors
    def ensure_session(self, ns: str, sid: str, options: AppendOptions) -> SessionInfo:
        def op(d: Path, meta: Meta | None) -> SessionInfo:
            meta, old = self._live_or_fresh(d, ns, sid, meta, options)
            self._touch(meta, options)
            self._commit(d, meta)
            if old is not None:
                self._sweep(d, meta)
            return self._info(meta)

        return self._write(ns, sid, True, op, None)

    @os_errors
    def update_metadata(self, ns: str, sid: str, metadata: Mapping[str, Any], replace: bool) -> SessionInfo:
        def op(d: Path, meta: Meta | None) -> SessionInfo | None:
            if meta is None or not self._alive(meta):
                return None
            meta.metadata = merge_session_metadata(meta.metadata, json.loads(json.dumps(dict(metadata))), replace)
            meta.updated_at = max(meta.updated_at, self.clock())
            self._commit(d, meta)
            return self._info(meta)

        info = self._write(ns, sid, False, op, None)
        if info is None:
            raise SessionNotFound(f"no session {sid!r} in namespace {ns!r} (never written, deleted or expired)")
        return info

    @os_errors
    def delete_messages(self, ns: str, sid: str, ids: Sequence[str]) -> int:
        def op(d: Path, meta: Meta | None) -> int:
            if meta is None or not self._alive(meta):
                return 0
            return self._delete_locked(ns, sid, d, meta, ids)

        return self._write(ns, sid, False, op, 0)

    @os_errors
    def list_kinds(self, ns: str, sid: str) -> dict[str, list[str]]:
        records = sorted(k for k in self._record_kinds(ns, sid))
        none: list[str] = []
        entries = self._read_table(ns, sid, lambda table, _: sorted(k for k, t in table.kinds.items() if t), none)
        return {"records": records, "entries": entries}

    @os_errors
    def rewrite(self, ns: str, sid: str, changes: Sequence[Rewrite]) -> int:
        by_space: dict[str, list[Rewrite]] = {"message": [], "record": [], "entry": []}
        for change in changes:
            by_space[change.space].append(change)

        def op(d: Path, meta: Meta | None) -> int:
            if meta is None or not self._alive(meta):
                return 0
            done = self._rewrite_records(d, meta, by_space["record"]) if by_space["record"] else 0
            if by_space["entry"]:
                done += self._rewrite_entries(ns, sid, d, meta, by_space["entry"])
            if by_space["message"]:
                done += self._rewrite_messages(ns, sid, d, meta, by_space["message"])
            return done

        return self._write(ns, sid, False, op, 0)

    def _rewrite_messages(self, ns: str, sid: str, d: Path, meta: Meta, changes: Sequence[Rewrite]) -> int:
        """The message part of rewrite, with the session's lock held: a new generation with those bodies
        replaced (a line whose seq is not the expected one is left alone)."""
        fd = self._open_messages(d, meta, write=True)
        try:
            index = self._index(d, meta, fd)
            wanted = {index.ids[c.key][1]: c for c in changes if c.key in index.ids}  # offset -> change
            if not wanted:
                return 0
            path = d / meta.file
            lines: list[bytes] = []
            delta = done = 0
            for offset, line in self._iter_lines(fd, meta.head, meta.bytes, path, block=1 << 20):
                change = wanted.get(offset)
                seq = line_seq(line) if change is not None else None
                if change is not None and seq is not None and seq == change.old:
                    new = seq_prefix(seq) + change.new.encode("utf-8")[1:]
                    delta += body_size(new, seq) - body_size(line, seq)
                    line = new
                    done += 1
                lines.append(line + b"\n")
        finally:
            os.close(fd)
        if not done:
            return 0
        new_meta = self._rewrite(d, meta, lines)
        new_meta.size += delta
        self._commit(d, new_meta)
        self._forget(ns, sid)  # offsets moved
        self._sweep(d, new_meta)
        return done

    @os_errors
    def pop_messages(
        self, ns: str, sid: str, *, index: int | None = None, count: int = 1, ids: Sequence[str] | None = None
    ) -> list[Message]:
        def op(d: Path, meta: Meta | None) -> list[Message]:
            if meta is None or not self._alive(meta):
                return []
            span = None if ids is not None else pop_range(meta.count, index or 0, count)
            if ids is None and span is None:
                return []
            start, stop = span or (0, 0)
            path = d / meta.file
            fd = self._open_messages(d, meta, write=True)
            try:
                if ids is not None:
                    known = self._index(d, meta, fd).ids
                    found = sorted({known[i] for i in ids if i in known})
                    lines = [(offset, self._pread(fd, length, offset, path)[:-1]) for _, offset, length in found
                             if meta.head <= offset and offset + length <= meta.bytes]
                elif start > meta.count - stop:  # nearer the end: read backwards
                    lines = self._tail(fd, meta.head, meta.bytes, meta.count - start, path)[: stop - start]
                else:
                    lines = []
                    for position, item in enumerate(self._iter_lines(fd, meta.head, meta.bytes, path)):
                        if position >= start:
                            lines.append(item)
                        if position + 1 >= stop:
                            break
                messages = self._decoded(ns, sid, path, lines)
            finally:
                os.close(fd)
            self._delete_locked(ns, sid, d, meta, [m.id for m in messages])
            return messages

        return self._write(ns, sid, False, op, [])

    def _delete_locked(self, ns: str, sid: str, d: Path, meta: Meta, ids: Sequence[str]) -> int:
        """delete_messages with the session's lock held."""
        fd = self._open_messages(d, meta, write=True)
        try:
            index = self._index(d, meta, fd)
            doomed = {index.ids[i][1] for i in set(ids) if i in index.ids}
            if not doomed:
                return 0
            path = d / meta.file
            kept: list[bytes] = []
            removed = 0
            # the kept lines keep their ids and seqs, only their offsets shift: carry the index over so the
            # next append does not rescan the whole session
            id_at = {offset: mid for offset, mid in index.order}
            carried: IdIndex | None = IdIndex(meta.uid, meta.gen + 1, 0)
            position = 0
            for offset, line in self._iter_lines(fd, meta.head, meta.bytes, path, block=1 << 20):
                if offset in doomed:
                    seq = line_seq(line)
                    removed += body_size(line, seq) if seq is not None else len(line)
                    continue
                kept.append(line + b"\n")
                mid = id_at.get(offset)
                if carried is not None and mid is not None:
                    carried.add(mid, index.ids[mid][0], position, len(line) + 1)
                else:
                    carried = None
                position += len(line) + 1
        finally:
            os.close(fd)
        new = self._rewrite(d, meta, kept)
        new.count -= len(doomed)
        new.size -= removed
        new.updated_at = max(new.updated_at, self.clock())
        self._commit(d, new)
        if carried is not None and carried.gen == new.gen and new.uid == carried.uid:
            carried.upto = new.bytes
            self._remember((ns, sid), carried)
        else:
            self._forget(ns, sid)
        self._sweep(d, new)
        return len(doomed)

    @os_errors
    def clear(self, ns: str, sid: str) -> int:
        def op(d: Path, meta: Meta | None) -> int:
            if meta is None or not self._alive(meta):
                return 0
            new = self._rewrite(d, meta, [])
            new.count = new.size = new.records = new.ebytes = 0
            new.updated_at = max(new.updated_at, self.clock())
            self._commit(d, new)
            self._forget(ns, sid)
            self._sweep(d, new)
            return meta.count

        return self._write(ns, sid, False, op, 0)

    @os_errors
    def delete_session(self, ns: str, sid: str) -> bool:
        with self._locked(ns, sid, create=False) as d:
            if d is None:
                return False
            try:
                meta = self._load_meta(d, ns, sid)
                existed = meta is not None and self._alive(meta)
            except CorruptData as exc:  # the caller wants it gone: delete rather than keep a copy around
                logger.warning("deleting corrupt session %r/%r: %s", ns, sid, exc)
                existed = True
            gone = d.with_name(f"{d.name}.deleted-{uuid.uuid4().hex[:12]}")
            os.rename(d, gone)
            self._forget(ns, sid)
        shutil.rmtree(gone, ignore_errors=True)
        return existed

    # -- reads ---------------------------------------------------------------------------------------------------
    @os_errors
    def get_session(self, ns: str, sid: str) -> SessionInfo | None:
        return self._read(ns, sid, lambda d, meta, fd: self._info(meta), None, file=False)

    @os_errors
    def count(self, ns: str, sid: str) -> int:
        return self._read(ns, sid, lambda d, meta, fd: meta.count, 0, file=False)

    @os_errors
    def read(
        self,
        ns: str,
        sid: str,
        *,
        start: int | None = None,
        stop: int | None = None,
        last: int | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        def op(d: Path, meta: Meta, fd: int) -> list[Message]:
            path = d / meta.file
            if meta.bytes == meta.head or last == 0 or limit == 0:
                return []
            if start is not None and (start > meta.last_seq or (stop is not None and stop <= start)):
                return []
            lo = meta.head if start is None else self._lower_bound(fd, meta.head, meta.bytes, start, path)
            hi = meta.bytes if stop is None else self._lower_bound(fd, lo, meta.bytes, stop, path)
            if lo >= hi:
                return []
            if last is not None:
                lines = self._tail(fd, lo, hi, last, path)
                if limit is not None:
                    lines = lines[:limit]
            else:
                lines = []
                for item in self._iter_lines(fd, lo, hi, path, block=16384 if limit else 1 << 20):
                    lines.append(item)
                    if limit is not None and len(lines) >= limit:
                        break
            messages = self._decoded(ns, sid, path, lines)
            for a, b in pairwise(messages):
                if b.seq <= a.seq:  # type: ignore[operator]
                    raise CorruptData(f"{path}: seq {b.seq} follows seq {a.seq} (lines out of order)", path=str(path))
            return messages

        return self._read(ns, sid, op, [])

    @os_errors
    def get_messages(self, ns: str, sid: str, ids: Sequence[str]) -> list[Message]:
        def op(d: Path, meta: Meta, fd: int) -> list[Message]:
            path = d / meta.file
            with self._stripes[hash((ns, sid)) % len(self._stripes)]:
                index = self._index(d, meta, fd)
                found = sorted({index.ids[i] for i in ids if i in index.ids})
            messages = []
            for _, offset, length in found:
                if offset < meta.head or offset + length > meta.bytes:
                    continue
                message = self._decode(ns, sid, path, offset, self._pread(fd, length, offset, path)[:-1])
                if message is not None:
                    messages.append(message)
            return messages

        return self._read(ns, sid, op, [])

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def ping(self) -> None:
        if self._closed:
            raise BackendUnavailable(f"file store {self.root} is closed")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BackendUnavailable(f"{self.root} is not writable by this process")

    @os_errors
    def stats(self) -> dict[str, Any]:
        """Counts from every ``meta.json`` (O(sessions)), plus sessions moved aside as corrupt."""
        sessions = messages = stored = 0
        namespaces = quarantined = 0
        for ns_dir in self._namespaces():
            namespaces += 1
            for entry in os.scandir(ns_dir):
                if ".corrupt-" in entry.name:
                    quarantined += 1
                    continue
                if "." in entry.name:
                    continue
                try:
                    meta = self._load_meta(Path(entry.path))
                except CorruptData:
                    quarantined += 1
                    continue
                if meta is not None:
                    sessions += 1
                    messages += meta.count
                    stored += meta.bytes - meta.head
        return {
            **super().stats(),
            "path": str(self.root),
            "format_version": FORMAT_VERSION,
            "namespaces": namespaces,
            "sessions": sessions,
            "messages": messages,
            "message_file_bytes": stored,
            "quarantined_sessions": quarantined,
            "fsync": self.fsync,
        }

    def close(self) -> None:
        self._closed = True
        with self._cache_lock:
            self._cache.clear()
