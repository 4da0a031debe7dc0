"""Versioned artifacts of a session (files, reports, images...), streamed in chunks, on every backend.

Everything lives in the session's entries (``memvault.contract``), so an artifact dies with its session:

- ``art.chunk`` ``<name>\\x1f<save id>\\x1f<index>``: the content in chunks of ``CHUNK_SIZE`` (1 MiB), written one
  chunk per call while the source is read, so neither a save from a file object nor a read through :meth:`open`
  ever holds the whole artifact in memory.
- ``art.save`` ``<name>\\x1f<save id>``: a save in progress (its last sign of life, refreshed every few chunks).
- ``art.ver`` ``<name>\\x1f<version>``: the version record (size, sha256, content type, metadata, which save holds
  its chunks). Writing it with ``put_entries(if_absent=True)`` is the commit point: a save either has its record or
  does not exist; two saves of one name racing for a version number get distinct numbers (the loser takes the
  next). Key order is version order, so the latest version is one reverse range read. A deleted version leaves an
  empty record (a tombstone) so its number, and its URL, are never given to other content.

The manifest (every name's latest version) is the set of version records: each save changes it with that one
atomic write, and a crash (kill -9) anywhere in a save leaves it as it was. What a crashed save wrote (chunks, its
progress mark) is an orphan: it is swept by the next save of that name once the save has shown no progress for
``SWEEP_GRACE`` seconds, or by :meth:`SessionArtifacts.sweep`.

Names are validated and NFC-normalised (:func:`memvault.validation.check_artifact_name`) and are only ever keys
inside the store: no file path is derived from one. Every operation is written once as a generator of store calls
(:mod:`memvault.drive`), run by the sync or the async driver.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import logging
import mimetypes
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from memvault.contract import Entry, prefix_range
from memvault.drive import Call, Op, run_async, run_sync
from memvault.errors import ArtifactNotFound, ArtifactTooLarge, CorruptData, InvalidArtifact, InvalidMetadata
from memvault.model import from_epoch
from memvault.validation import (
    MAX_SESSION_METADATA_BYTES,
    check_artifact_name,
    check_content_type,
    check_int,
    check_metadata,
    check_number,
    validate_id,
    validate_namespace,
)

if TYPE_CHECKING:
    from memvault.memory import Session

logger = logging.getLogger("memvault.artifacts")

CHUNK, SAVE, VERSION = "art.chunk", "art.save", "art.ver"
SEP = "\x1f"  # never in a name (control characters are refused)
CHUNK_SIZE = 1 << 20  # under every backend's value limits (Redis bulk strings, PostgreSQL bytea, file lines)
DEFAULT_MAX_BYTES = 1 << 30
#: seconds an unfinished save may go without progress before what it wrote counts as orphaned
SWEEP_GRACE = 15 * 60.0
HEARTBEAT = 16  # chunks between a save's progress marks
SCHEME = "memvault://"


@dataclass(frozen=True)
class ArtifactVersion:
    """One stored version of an artifact. ``url`` (``memvault://<namespace>/<session>/<name>?version=<n>``) opens
    it again through :meth:`memvault.Memory.open_artifact` of a Memory in the same namespace."""

    name: str
    version: int
    size: int
    sha256: str
    content_type: str
    created_at: datetime
    url: str
    metadata: dict[str, Any] = field(default_factory=dict)


def artifact_url(namespace: str, session_id: str, name: str, version: int) -> str:
    parts = "/".join(quote(p, safe="") for p in (namespace, session_id, name))
    return f"{SCHEME}{parts}?version={version}"


def parse_artifact_url(url: object) -> tuple[str, str, str, int]:
    """(namespace, session id, name, version) of a URL made by :func:`artifact_url`; InvalidArtifact otherwise."""
    if not isinstance(url, str) or not url.startswith(SCHEME):
        raise InvalidArtifact(f"not a memvault artifact URL: {str(url)[:80]!r} (they start with {SCHEME})")
    path, _, query = url[len(SCHEME):].partition("?")
    parts = path.split("/")
    match = re.fullmatch(r"version=([1-9][0-9]{0,17})", query)
    if len(parts) != 3 or match is None:
        raise InvalidArtifact(f"malformed artifact URL {url[:80]!r}: expected {SCHEME}<namespace>/<session>/<name>"
                              "?version=<n>")
    try:
        ns, sid, name = (unquote(p, errors="strict") for p in parts)
        return validate_namespace(ns), validate_id(sid), check_artifact_name(name), int(match.group(1))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, InvalidArtifact):
            raise
        raise InvalidArtifact(f"malformed artifact URL {url[:80]!r}: {exc}") from None


def _prefix(name: str) -> tuple[str, str | None]:
    return prefix_range(name + SEP)


def _version_key(name: str, version: int) -> str:
    return f"{name}{SEP}{version:012d}"


def _save_key(name: str, save: str) -> str:
    return f"{name}{SEP}{save}"


def _chunk_key(name: str, save: str, index: int) -> str:
    return f"{name}{SEP}{save}{SEP}{index:08d}"


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _content_type(value: object, name: str) -> str:
    if value is None:
        return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    return check_content_type(value)


def _metadata(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    meta = check_metadata(value, "artifact metadata")
    if len(_json(meta)) > MAX_SESSION_METADATA_BYTES:
        raise InvalidMetadata(f"artifact metadata encodes to more than {MAX_SESSION_METADATA_BYTES} bytes")
    return dict(meta)


class _Source:
    """What a save reads: bytes-like, a binary file object, or a path (opened here, closed when done)."""

    def __init__(self, source: object) -> None:
        self._view: memoryview | None = None
        self._file: Any = None
        self._owned = False
        self._pos = 0
        self.size: int | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            try:
                view = memoryview(source)
            except ValueError as exc:  # a released memoryview
                raise InvalidArtifact(f"cannot read the artifact's memoryview: {exc}") from None
            if not view.c_contiguous:
                raise InvalidArtifact("an artifact's memoryview must be C-contiguous (a bytes-like object); pass "
                                      "bytes(view) for a strided view (e.g. view[::2])")
            self._view = view.cast("B")
            self.size = len(self._view)
        elif isinstance(source, io.TextIOBase):
            raise InvalidArtifact(f"an artifact is read from a binary file object, not a text one "
                                  f"({type(source).__name__}): open it in binary mode ('rb') or encode the text")
        elif isinstance(source, os.PathLike):
            try:
                self._file = open(source, "rb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise InvalidArtifact(f"cannot read {os.fspath(source)!r}: {exc}") from None
            self._owned = True
            self.size = os.fstat(self._file.fileno()).st_size
        elif callable(getattr(source, "read", None)) and not isinstance(source, str):
            self._file = source
            try:
                if source.seekable():  # type: ignore[attr-defined]
                    self.size = os.fstat(source.fileno()).st_size - source.tell()  # type: ignore[attr-defined]
            except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
                self.size = None
        else:
            raise InvalidArtifact(f"an artifact is bytes, a binary file object or a pathlib.Path, not a "
                                  f"{type(source).__name__} (encode text first)")

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes, fewer only at the end."""
        if self._view is not None:
            block = bytes(self._view[self._pos : self._pos + n])
            self._pos += len(block)
            return block
        parts: list[bytes] = []
        got = 0
        while got < n:
            part = self._file.read(n - got)
            if not isinstance(part, (bytes, bytearray, memoryview)):
                # str (a text-mode file), or None (a non-blocking stream with no data yet: not an end of file)
                raise InvalidArtifact(f"the file object returned {type(part).__name__}, not bytes; pass a blocking "
                                      "file object opened in binary mode ('rb')")
            if not part:
                break
            parts.append(bytes(part))
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self._owned and self._file is not None:
            self._file.close()


def _version(record: dict[str, Any], ns: str, sid: str) -> ArtifactVersion:
    return ArtifactVersion(
        name=record["name"], version=record["version"], size=record["size"], sha256=record["sha256"],
        content_type=record["content_type"], created_at=from_epoch(record["created_at"]),
        url=artifact_url(ns, sid, record["name"], record["version"]), metadata=record.get("metadata") or {},
    )


def _record(key: str, value: bytes, where: str) -> dict[str, Any] | None:
    """A version record (None for a tombstone)."""
    if not value:
        return None
    try:
        record = json.loads(value)
        if not isinstance(record, dict) or not all(k in record for k in ("name", "version", "size", "save", "chunks")):
            raise ValueError("fields are missing")
        return record
    except (ValueError, TypeError, RecursionError) as exc:
        raise CorruptData(f"artifact version record {key.replace(SEP, '@')!r} of {where} is unreadable ({exc})") from None


class _Cursor:
    """The reading position in one artifact version, shared by the sync and the async reader: which chunk it needs
    next, and the bytes a read takes from the chunks it was given. A read from start to end checks the sha256."""

    def __init__(self, info: ArtifactVersion, record: dict[str, Any]) -> None:
        self.info = info
        self.size = int(record["size"])
        self.chunk_size = int(record.get("chunk_size") or CHUNK_SIZE)
        self.chunks = int(record["chunks"])
        self.pos = 0
        self.index = -1
        self.block = b""
        self._digest: Any = hashlib.sha256()
        self._hashed = 0  # bytes hashed so far, from the start, in order (None-like -1 after a seek backwards)
        self.closed = False

    def need(self, upto: int) -> int | None:
        """The chunk to fetch before bytes up to ``upto`` can be taken (None: nothing needed)."""
        if self.pos >= min(upto, self.size):
            return None
        index = self.pos // self.chunk_size
        return None if index == self.index else index

    def feed(self, index: int, data: bytes) -> None:
        expected = self.chunk_size if index < self.chunks - 1 else self.size - self.chunk_size * (self.chunks - 1)
        if len(data) != expected:
            raise CorruptData(f"artifact {self.info.name!r} v{self.info.version}: chunk {index} holds {len(data)} "
                              f"bytes, {expected} expected")
        self.index, self.block = index, data
        if self._hashed == index * self.chunk_size:
            self._digest.update(data)
            self._hashed += len(data)
            if self._hashed == self.size and self._digest.hexdigest() != self.info.sha256:
                raise CorruptData(f"artifact {self.info.name!r} v{self.info.version} does not match its sha256")

    def take(self, n: int) -> bytes:
        """Up to ``n`` bytes of the current chunk at the position (call after ``need`` said nothing is needed)."""
        if self.pos >= self.size:
            return b""
        offset = self.pos - self.index * self.chunk_size
        out = self.block[offset : offset + n]
        self.pos += len(out)
        return out

    def seek(self, offset: int, whence: int) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}.get(whence)
        if base is None or base + offset < 0:
            raise ValueError(f"invalid seek ({offset}, {whence})")
        self.pos = base + offset
        return self.pos

    def check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed artifact reader")


class _Position:
    """What both readers share: the position over the version's cursor, and its release."""

    _cursor: _Cursor

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._cursor.check_open()
        return self._cursor.seek(offset, whence)

    def tell(self) -> int:
        return self._cursor.pos

    def _release(self) -> None:
        self._cursor.closed = True
        self._cursor.block = b""


class ArtifactReader(_Position, io.RawIOBase):
    """A binary, seekable reader over one artifact version, fetching one chunk at a time: ``read(n)``, ``read()``,
    iteration (yields the stored chunks from the current position on), ``with``. ``info`` is its ArtifactVersion."""

    def __init__(self, cursor: _Cursor, fetch: Callable[[int], bytes]) -> None:
        super().__init__()
        self._cursor = cursor
        self._fetch = fetch
        self.info = cursor.info

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _fill(self, upto: int) -> None:
        index = self._cursor.need(upto)
        if index is not None:
            self._cursor.feed(index, self._fetch(index))

    def read(self, size: int | None = -1) -> bytes:
        self._cursor.check_open()
        end = self._cursor.size if size is None or size < 0 else self._cursor.pos + size
        parts: list[bytes] = []
        while self._cursor.pos < min(end, self._cursor.size):
            self._fill(end)
            parts.append(self._cursor.take(end - self._cursor.pos))
        return b"".join(parts)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.read(self._cursor.chunk_size - self._cursor.pos % self._cursor.chunk_size)
            if not block:
                return
            yield block

    def close(self) -> None:
        self._release()
        super().close()


class AsyncArtifactReader(_Position):
    """The async twin of :class:`ArtifactReader`: ``await read(n)``, ``async for block in reader``, ``async with``."""

    def __init__(self, cursor: _Cursor, fetch: Callable[[int], Any]) -> None:
        self._cursor = cursor
        self._fetch = fetch
        self.info = cursor.info

    async def read(self, size: int = -1) -> bytes:
        self._cursor.check_open()
        end = self._cursor.size if size < 0 else self._cursor.pos + size
        parts: list[bytes] = []
        while self._cursor.pos < min(end, self._cursor.size):
            index = self._cursor.need(end)
            if index is not None:
                self._cursor.feed(index, await self._fetch(index))
            parts.append(self._cursor.take(end - self._cursor.pos))
        return b"".join(parts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            block = await self.read(self._cursor.chunk_size - self._cursor.pos % self._cursor.chunk_size)
            if not block:
                return
            yield block

    async def aclose(self) -> None:
        self._release()

    async def __aenter__(self) -> AsyncArtifactReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SessionArtifacts:
    """``session.artifacts``: save / load / open / list / versions / delete / manifest / sweep, each with an
    ``a``-prefixed coroutine twin."""

    def __init__(self, session: Session, max_bytes: int) -> None:
        self._session = session
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"<artifacts of session {self._session.id!r}>"

    @property
    def _where(self) -> str:
        return f"session {self._session.id!r} in namespace {self._session.namespace!r}"

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Call:
        s = self._session
        return Call(method, (s.namespace, s.id, *args), kwargs)

    def _put(self, entries: list[Entry], if_absent: bool = False) -> Call:
        s = self._session
        return Call("put_entries", (s.namespace, s.id, entries, s.options), {"if_absent": if_absent})

    def _mark(self) -> bytes:
        return _json({"t": self._session.store.clock(), "pid": os.getpid()})

    # -- operations (written once) -------------------------------------------------------------------------------
    def _save(self, name: str, source: object, content_type: object, metadata: object) -> Op[ArtifactVersion]:
        name = check_artifact_name(name)
        ctype, meta = _content_type(content_type, name), _metadata(metadata)
        reader = _Source(source)
        try:
            if reader.size is not None and reader.size > self.max_bytes:
                raise ArtifactTooLarge(f"artifact {name!r} is {reader.size} bytes; the limit is {self.max_bytes} "
                                       "(Memory(max_artifact_bytes=...)); nothing was stored")
            save = uuid.uuid4().hex
            yield self._put([Entry(SAVE, _save_key(name, save), self._mark())], if_absent=True)
            try:
                record = yield from self._write(name, save, reader, ctype, meta)
            except Exception:
                yield from self._discard(name, save)
                raise
        finally:
            reader.close()
        try:  # after the commit: clean-up only, never a reason to fail the save
            yield self._call("delete_entries", SAVE, [_save_key(name, save)])
            yield from self._sweep(name, SWEEP_GRACE)
        except Exception as exc:
            logger.warning("artifact %r saved, but its clean-up failed (%s); sweep() retries it", name, exc)
        s = self._session
        return _version(record, s.namespace, s.id)

    def _write(self, name: str, save: str, reader: _Source, ctype: str, meta: dict[str, Any]) -> Op[dict[str, Any]]:
        """Write the chunks, then commit the version record; returns the record."""
        digest, size, index = hashlib.sha256(), 0, 0
        while True:
            block = reader.read(CHUNK_SIZE)
            if not block:
                break
            size += len(block)
            if size > self.max_bytes:
                raise ArtifactTooLarge(f"artifact {name!r} is over {self.max_bytes} bytes, the limit "
                                       "(Memory(max_artifact_bytes=...)); nothing was stored")
            digest.update(block)
            yield self._put([Entry(CHUNK, _chunk_key(name, save, index), block)], if_absent=True)
            index += 1
            if index % HEARTBEAT == 0:
                yield self._put([Entry(SAVE, _save_key(name, save), self._mark())])
        mark = yield self._call("get_entries", SAVE, [_save_key(name, save)])
        if not mark:
            raise ArtifactNotFound(f"the save of artifact {name!r} stalled for over {SWEEP_GRACE:g}s and was swept "
                                   "as abandoned; save it again")
        start, stop = _prefix(name)
        newest = yield self._call("scan_entries", VERSION, start=start, stop=stop, reverse=True, limit=1,
                                  keys_only=True)
        version = int(newest[0][0].rsplit(SEP, 1)[1]) + 1 if newest else 1
        while True:
            record = {"name": name, "version": version, "size": size, "sha256": digest.hexdigest(),
                      "content_type": ctype, "created_at": self._session.store.clock(), "metadata": meta,
                      "save": save, "chunks": index, "chunk_size": CHUNK_SIZE}
            written = yield self._put([Entry(VERSION, _version_key(name, version), _json(record))], if_absent=True)
            if written[0]:
                return record
            version += 1  # another save of this name took that number

    def _discard(self, name: str, save: str) -> Op[None]:
        """Best effort: remove what an unfinished save wrote (a sweep catches what this cannot)."""
        start, stop = prefix_range(_save_key(name, save) + SEP)
        try:
            yield self._call("delete_entries", CHUNK, start=start, stop=stop)
            yield self._call("delete_entries", SAVE, [_save_key(name, save)])
        except Exception as exc:
            logger.warning("could not remove the chunks of an unfinished save of %r (%s); sweep() will", name, exc)

    def _sweep(self, name: str | None, grace: float) -> Op[int]:
        """Remove the chunks and marks of saves that never committed and have shown no progress for ``grace``
        seconds, and the chunks of deleted versions. Scans chunks, then marks, then versions: a save writes its mark
        before its chunks and its version before dropping its mark, so a live save is always seen in one of them."""
        start, stop = _prefix(name) if name is not None else (None, None)
        chunks = yield self._call("scan_entries", CHUNK, start=start, stop=stop, keys_only=True)
        marks = yield self._call("scan_entries", SAVE, start=start, stop=stop)
        versions = yield self._call("scan_entries", VERSION, start=start, stop=stop)
        now = self._session.store.clock()
        committed = set()
        for key, value in versions:
            record = _record(key, value, self._where)
            if record is not None:
                committed.add((record["name"], record["save"]))
        seen: dict[tuple[str, str], float | None] = {}
        for key, _ in chunks:
            owner, save, _ = key.rsplit(SEP, 2)
            seen.setdefault((owner, save), None)
        done_marks = []
        for key, value in marks:
            owner, save = key.rsplit(SEP, 1)
            try:
                at = float(json.loads(value)["t"])
            except (ValueError, TypeError, KeyError):
                at = float("-inf")
            if (owner, save) in committed:
                done_marks.append(key)  # the save committed, then died before dropping its mark
            else:
                seen[(owner, save)] = at
        removed = 0
        for (owner, save), last in seen.items():
            if (owner, save) in committed or (last is not None and last > now - grace):
                continue
            low, high = prefix_range(_save_key(owner, save) + SEP)
            yield self._call("delete_entries", CHUNK, start=low, stop=high)
            if last is not None:
                done_marks.append(_save_key(owner, save))
            removed += 1
        if done_marks:
            yield self._call("delete_entries", SAVE, done_marks)
        return removed

    def _records(self, name: str | None) -> Op[list[dict[str, Any]]]:
        """Live version records (of one name, or all), in key order: by name, then version."""
        start, stop = _prefix(name) if name is not None else (None, None)
        rows = yield self._call("scan_entries", VERSION, start=start, stop=stop)
        return [r for key, value in rows if (r := _record(key, value, self._where)) is not None]

    def _find(self, name: str, version: int | None) -> Op[dict[str, Any]]:
        name = check_artifact_name(name)
        if version is not None:
            version = check_int(version, "version", minimum=1, error=InvalidArtifact)
            key = _version_key(name, version)
            found = yield self._call("get_entries", VERSION, [key])
            record = _record(key, found[key], self._where) if key in found else None
        else:
            start, stop = _prefix(name)
            record = None
            while record is None:  # newest first, past the tombstones of deleted versions
                rows = yield self._call("scan_entries", VERSION, start=start, stop=stop, reverse=True, limit=16)
                for key, value in rows:
                    record = _record(key, value, self._where)
                    if record is not None:
                        break
                if record is None and len(rows) < 16:
                    break
                if rows:
                    stop = rows[-1][0]
        if record is None:
            shown = f"{name!r}" + ("" if version is None else f" version {version}")
            raise ArtifactNotFound(f"no artifact {shown} in {self._where}")
        return record

    def _chunk(self, record: dict[str, Any], index: int) -> Op[bytes]:
        key = _chunk_key(record["name"], record["save"], index)
        found = yield self._call("get_entries", CHUNK, [key])
        if key not in found:
            raise CorruptData(f"artifact {record['name']!r} v{record['version']} of {self._where} misses chunk {index}")
        return found[key]

    def _load(self, name: str, version: int | None) -> Op[bytes]:
        record = yield from self._find(name, version)
        s = self._session
        cursor = _Cursor(_version(record, s.namespace, s.id), record)
        parts = []
        for index in range(cursor.chunks):
            cursor.feed(index, (yield from self._chunk(record, index)))
            parts.append(cursor.block)
        return b"".join(parts)

    def _delete(self, name: str, version: int | None) -> Op[int]:
        name = check_artifact_name(name)
        if version is not None:
            version = check_int(version, "version", minimum=1, error=InvalidArtifact)
        doomed = [r for r in (yield from self._records(name)) if version is None or r["version"] == version]
        if not doomed:
            return 0
        # tombstones first (the versions are gone from then on), then their chunks
        yield self._put([Entry(VERSION, _version_key(name, r["version"]), b"") for r in doomed])
        for record in doomed:
            start, stop = prefix_range(_save_key(name, record["save"]) + SEP)
            yield self._call("delete_entries", CHUNK, start=start, stop=stop)
        return len(doomed)

    def _manifest(self) -> Op[dict[str, ArtifactVersion]]:
        s = self._session
        latest: dict[str, ArtifactVersion] = {}
        for record in (yield from self._records(None)):  # by name, then version: the last of each name wins
            latest[record["name"]] = _version(record, s.namespace, s.id)
        return latest

    def _versions(self, name: str) -> Op[list[ArtifactVersion]]:
        s = self._session
        return [_version(r, s.namespace, s.id) for r in (yield from self._records(check_artifact_name(name)))]

    def _opened(self, name: str, version: int | None) -> Op[tuple[_Cursor, dict[str, Any]]]:
        record = yield from self._find(name, version)
        s = self._session
        return _Cursor(_version(record, s.namespace, s.id), record), record

    # -- sync / async faces --------------------------------------------------------------------------------------
    def save(self, name: str, data_or_file: Any, content_type: str | None = None,
             metadata: Mapping[str, Any] | None = None) -> ArtifactVersion:
        """Store a new version of ``name`` from bytes, a binary file object or a ``pathlib.Path`` (read and written
        chunk by chunk). ``content_type`` defaults to a guess from the name. ArtifactTooLarge beyond
        ``max_artifact_bytes`` (nothing is kept)."""
        return run_sync(self._session.store, self._save(name, data_or_file, content_type, metadata))

    async def asave(self, name: str, data_or_file: Any, content_type: str | None = None,
                    metadata: Mapping[str, Any] | None = None) -> ArtifactVersion:
        return await run_async(self._session.store, self._save(name, data_or_file, content_type, metadata))

    def load(self, name: str, version: int | None = None) -> bytes:
        """The content of a version (the latest by default), checked against its sha256."""
        return run_sync(self._session.store, self._load(name, version))

    async def aload(self, name: str, version: int | None = None) -> bytes:
        return await run_async(self._session.store, self._load(name, version))

    def open(self, name: str, version: int | None = None) -> ArtifactReader:
        """A streaming binary reader (one chunk in memory at a time)."""
        store = self._session.store
        cursor, record = run_sync(store, self._opened(name, version))
        return ArtifactReader(cursor, lambda index: run_sync(store, self._chunk(record, index)))

    async def aopen(self, name: str, version: int | None = None) -> AsyncArtifactReader:
        store = self._session.store
        cursor, record = await run_async(store, self._opened(name, version))
        return AsyncArtifactReader(cursor, lambda index: run_async(store, self._chunk(record, index)))

    def info(self, name: str, version: int | None = None) -> ArtifactVersion:
        """The ArtifactVersion of a version (the latest by default); ArtifactNotFound if there is none."""
        return run_sync(self._session.store, self._opened(name, version))[0].info

    async def ainfo(self, name: str, version: int | None = None) -> ArtifactVersion:
        return (await run_async(self._session.store, self._opened(name, version)))[0].info

    def manifest(self) -> dict[str, ArtifactVersion]:
        """name -> latest version, as of the last committed save (each save changes it atomically)."""
        return run_sync(self._session.store, self._manifest())

    async def amanifest(self) -> dict[str, ArtifactVersion]:
        return await run_async(self._session.store, self._manifest())

    def versions(self, name: str) -> list[ArtifactVersion]:
        """Every stored version of ``name``, oldest first."""
        return run_sync(self._session.store, self._versions(name))

    async def aversions(self, name: str) -> list[ArtifactVersion]:
        return await run_async(self._session.store, self._versions(name))

    def delete(self, name: str, version: int | None = None) -> int:
        """Delete one version, or every version of ``name``; returns how many. Version numbers are never reused."""
        return run_sync(self._session.store, self._delete(name, version))

    async def adelete(self, name: str, version: int | None = None) -> int:
        return await run_async(self._session.store, self._delete(name, version))

    def sweep(self, grace: float = SWEEP_GRACE) -> int:
        """Remove what unfinished saves left behind (no progress for ``grace`` seconds; 0 = every unfinished
        save: only when none is running) and the chunks of deleted versions; returns how many saves' leftovers."""
        return run_sync(self._session.store, self._sweep(None, check_number(grace, "grace", minimum=0.0)))

    async def asweep(self, grace: float = SWEEP_GRACE) -> int:
        return await run_async(self._session.store, self._sweep(None, check_number(grace, "grace", minimum=0.0)))

    def list(self) -> list[ArtifactVersion]:
        """The latest version of every artifact, by name."""
        return list(run_sync(self._session.store, self._manifest()).values())

    async def alist(self) -> builtins.list[ArtifactVersion]:
        return list((await run_async(self._session.store, self._manifest())).values())


__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "ArtifactReader",
    "ArtifactVersion",
    "AsyncArtifactReader",
    "SessionArtifacts",
    "artifact_url",
    "parse_artifact_url",
]
