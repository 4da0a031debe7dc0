"""Checkpoint threads: the storage behind LangGraph's checkpointer, framework-free, on every backend.

A thread IS a session (``thread_id`` -> session id, in the Memory's namespace). What a checkpoint holds lives in the
session's entries (``memvault.contract``), written once per step with one atomic ``put_entries``:

- ``lg.ckpt`` ``<ns>\\x1f<checkpoint id>``: the parent id, the channel versions and two opaque typed payloads (the
  checkpoint structure and its metadata, as the caller's serializer made them).
- ``lg.blob`` ``<ns>\\x1f<channel>\\x1f<version>``: one channel value at one version (typed payload), written only for
  the channels a step changed. A channel holding a list of messages is not stored whole: its messages are the
  session's own memvault messages, appended once, and its blob is the list of seq ranges that make it up
  (:class:`MessageList`), so a step that adds k messages writes O(k) bytes whatever the thread's length, and
  ``recall``, ``context``, export and the CLI see the conversation.
- ``lg.write`` ``<ns>\\x1f<checkpoint id>\\x1f<task id>\\x1f<idx>``: a pending write (channel, task path, typed
  payload). Regular writes are kept first-wins per (task id, idx); special ones (idx < 0) are replaced.

Ids are the caller's: checkpoint ids sort by time (uuid6), so key order is checkpoint order. Every operation is a
generator of store calls (:mod:`memvault.drive`), run sync or async.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memvault.contract import AppendOptions, Entry, prefix_range
from memvault.drive import Call, Op
from memvault.errors import CorruptData, InvalidFilter
from memvault.model import Message, encode_body
from memvault.validation import validate_id

CKPT, BLOB, WRITE = "lg.ckpt", "lg.blob", "lg.write"
MESSAGES_TYPE = "memvault.messages"  # the type tag of a MessageList blob
EMPTY_TYPE = "empty"  # a channel emptied at this version (LangGraph's own tag)
SEP = "\x1f"
PAGE = 200
INLINE_NEW = 64  # a put with at most this many new messages names them by id in its blobs and commits once
THREAD_METADATA = {"langgraph": "thread"}

Typed = tuple[str, bytes]
Versions = dict[str, str | int | float]


def _esc(part: str) -> str:
    """A key component that cannot contain the separator (nor NUL, which PostgreSQL text refuses)."""
    return part.replace("\\", "\\\\").replace(SEP, "\\s").replace("\x00", "\\0")


def _unesc(part: str) -> str:
    out, i = [], 0
    while i < len(part):
        ch = part[i]
        if ch == "\\" and i + 1 < len(part):
            nxt = part[i + 1]
            out.append({"\\": "\\", "s": SEP, "0": "\x00"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _key(*parts: str) -> str:
    return SEP.join(_esc(p) for p in parts)


def _split(key: str) -> list[str]:
    return [_unesc(p) for p in key.split(SEP)]


def _pack(header: dict[str, Any], *payloads: bytes) -> bytes:
    head = dict(header, n=[len(p) for p in payloads])
    return json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n" + b"".join(payloads)


def _unpack(value: bytes, where: str) -> tuple[dict[str, Any], list[bytes]]:
    try:
        cut = value.index(b"\n")
        header = json.loads(value[:cut])
        payloads, pos = [], cut + 1
        for size in header["n"]:
            payloads.append(value[pos : pos + size])
            pos += size
        if not isinstance(header, dict) or pos != len(value):
            raise ValueError("payload lengths do not add up")
        return header, payloads
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptData(f"checkpoint entry {where} is unreadable ({exc})") from None


def version_text(version: str | int | float) -> str:
    return json.dumps(version)


# -- what callers hand in and get back ---------------------------------------------------------------------------


@dataclass
class MessageList:
    """A channel value that is a list of messages: ``prefix`` (seq ranges of messages already in the thread's log)
    followed by ``items``, each either the seq of a logged message or a new :class:`~memvault.Message` to append.
    A step that appends k messages hands in the previous ranges and k items: O(k), whatever the list's length. On
    the way out: ``spans`` (the whole list as seq ranges) and, when read, ``messages``."""

    items: list[int | Message] = field(default_factory=list)
    prefix: list[list[int]] = field(default_factory=list)
    spans: list[list[int]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def seqs(self) -> list[int]:
        return expand(self.spans)


def ranges(seqs: Sequence[int], into: list[list[int]] | None = None) -> list[list[int]]:
    """``[1,2,3,7,8,5]`` -> ``[[1,3],[7,8],[5,5]]`` (runs in list order, inclusive), appended to a copy of ``into``."""
    out: list[list[int]] = [list(r) for r in into] if into else []
    for seq in seqs:
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


def _refs(items: Sequence[int | str | Message], prefix: Sequence[Sequence[int]]) -> list[list[int] | str]:
    """A MessageList blob's ``r``: seq ranges, and the ids of messages whose seqs are not known yet."""
    out: list[list[int] | str] = [list(r) for r in prefix]
    for item in items:
        if isinstance(item, (Message, str)):
            out.append(item if isinstance(item, str) else item.id)
        elif out and isinstance(out[-1], list) and item == out[-1][1] + 1:
            out[-1][1] = item
        else:
            out.append([item, item])
    return out


def expand(spans: Iterable[Sequence[int]]) -> list[int]:
    return [seq for lo, hi in spans for seq in range(lo, hi + 1)]


@dataclass
class StoredWrite:
    task_id: str
    idx: int
    channel: str
    value: Typed
    task_path: str = ""


@dataclass
class StoredCheckpoint:
    """A checkpoint as stored: ``values`` maps channel -> Typed or MessageList (channels whose blob the caller
    asked to skip are absent); ``writes`` are in LangGraph's ``(task_path, task_id, idx)`` order."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    checkpoint: Typed
    metadata: Typed
    versions: Versions
    values: dict[str, Typed | MessageList] = field(default_factory=dict)
    writes: list[StoredWrite] = field(default_factory=list)


def _parse_checkpoint(thread_id: str, key: str, value: bytes) -> StoredCheckpoint:
    parts = _split(key)
    header, (ckpt, meta) = _unpack(value, f"{thread_id}/{key!r}")
    return StoredCheckpoint(
        thread_id=thread_id,
        checkpoint_ns=parts[0],
        checkpoint_id=parts[1],
        parent_id=header.get("p"),
        checkpoint=(header["ct"], ckpt),
        metadata=(header["mt"], meta),
        versions=header.get("v") or {},
    )


# -- the service -------------------------------------------------------------------------------------------------


class Checkpoints:
    """Checkpoint threads in one namespace of a store. ``options`` apply to every thread session this creates
    (``ttl``: sliding expiry of a thread; ``user_id``)."""

    def __init__(self, namespace: str, *, ttl: float | None = None, user_id: str | None = None,
                 max_message_bytes: int | None = None) -> None:
        self.namespace = namespace
        self.options = AppendOptions(user_id=user_id, metadata=THREAD_METADATA, ttl=ttl)
        self.max_message_bytes = max_message_bytes

    def _sid(self, thread_id: str) -> str:
        return validate_id(thread_id, "thread_id")

    # -- writes --------------------------------------------------------------------------------------------------
    def put(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_id: str | None,
        checkpoint: Typed,
        metadata: Typed,
        versions: Versions,
        values: Mapping[str, Typed | MessageList],
        new_versions: Mapping[str, str | int | float],
    ) -> Op[dict[str, MessageList]]:
        """Store one checkpoint: ``values`` holds a value for each channel of ``new_versions`` (a channel missing
        from ``values`` was emptied). The usual step (a few new messages) is one atomic write of the new messages,
        the blobs and the checkpoint (``append_entries``; the blobs name the new messages by id). A large batch of
        new messages is appended first, then the blobs and the checkpoint name them by seq ranges. Appends are
        idempotent on message ids, so a retried put stores nothing twice. Returns the stored MessageLists with
        their seqs (none when the store could not say, e.g. a spooled write)."""
        sid = self._sid(thread_id)
        fresh: list[Message] = []
        for given in values.values():
            if isinstance(given, MessageList):
                fresh.extend(item for item in given.items if isinstance(item, Message))
        records = [encode_body(m, self.max_message_bytes) for m in fresh]
        by_seq = len(fresh) > INLINE_NEW
        seqs_of: dict[int, int] = {}
        if by_seq:
            seqs = yield Call("append", (self.namespace, sid, records, self.options))
            seqs_of = {id(m): s for m, s in zip(fresh, seqs, strict=True)}
        entries: list[Entry] = []
        lists: dict[str, MessageList] = {}
        for channel, version in new_versions.items():
            key = _key(checkpoint_ns, channel, version_text(version))
            value = values.get(channel)
            if value is None:
                entries.append(Entry(BLOB, key, _pack({"t": EMPTY_TYPE})))
            elif isinstance(value, MessageList):
                refs = _refs([seqs_of[id(i)] if by_seq and isinstance(i, Message) else i for i in value.items],
                             value.prefix)
                lists[channel] = value
                entries.append(Entry(BLOB, key, _pack({"t": MESSAGES_TYPE, "r": refs})))
            else:
                entries.append(Entry(BLOB, key, _pack({"t": value[0]}, value[1])))
        header = {"p": parent_id, "ct": checkpoint[0], "mt": metadata[0], "v": dict(versions)}
        entries.append(Entry(CKPT, _key(checkpoint_ns, checkpoint_id), _pack(header, checkpoint[1], metadata[1])))
        if by_seq:
            yield Call("put_entries", (self.namespace, sid, entries, self.options))
        else:
            seqs = yield Call("append_entries", (self.namespace, sid, records, entries, self.options))
            seqs_of = {id(m): s for m, s in zip(fresh, seqs, strict=True)}
        if any(s is None for s in seqs_of.values()):
            return {}
        for value in lists.values():
            value.spans = ranges([i if isinstance(i, int) else seqs_of[id(i)] for i in value.items], into=value.prefix)
        return lists

    def put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str, task_path: str,
        writes: Sequence[tuple[int, str, Typed]],
    ) -> Op[None]:
        """Store a task's pending writes ``(idx, channel, value)``: idx >= 0 keeps the first write of each (task,
        idx) (a retried task changes nothing), idx < 0 (errors, interrupts, ...) replaces."""
        sid = self._sid(thread_id)
        keep: list[Entry] = []
        replace: list[Entry] = []
        for idx, channel, value in writes:
            key = _key(checkpoint_ns, checkpoint_id, task_id, f"{idx:+012d}")
            entry = Entry(WRITE, key, _pack({"c": channel, "t": value[0], "path": task_path}, value[1]))
            (replace if idx < 0 else keep).append(entry)
        if keep:
            yield Call("put_entries", (self.namespace, sid, keep, self.options), {"if_absent": True})
        if replace:
            yield Call("put_entries", (self.namespace, sid, replace, self.options))

    # -- reads ---------------------------------------------------------------------------------------------------
    def latest_id(self, thread_id: str, checkpoint_ns: str) -> Op[str | None]:
        start, stop = prefix_range(_esc(checkpoint_ns) + SEP)
        rows = yield Call("scan_entries", (self.namespace, self._sid(thread_id), CKPT),
                          {"start": start, "stop": stop, "reverse": True, "limit": 1, "keys_only": True})
        return _split(rows[0][0])[1] if rows else None

    def get(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None = None, *,
        skip: frozenset[tuple[str, str]] = frozenset(), channels: frozenset[str] | None = None,
        with_writes: bool = True,
    ) -> Op[StoredCheckpoint | None]:
        """A checkpoint (the newest of the namespace when ``checkpoint_id`` is None) with its values and writes.
        ``skip``: (channel, version text) pairs the caller already holds decoded; ``channels``: load only these."""
        sid = self._sid(thread_id)
        if checkpoint_id is None:
            start, stop = prefix_range(_esc(checkpoint_ns) + SEP)
            rows = yield Call("scan_entries", (self.namespace, sid, CKPT),
                              {"start": start, "stop": stop, "reverse": True, "limit": 1})
            if not rows:
                return None
            key, value = rows[0]
        else:
            key = _key(checkpoint_ns, checkpoint_id)
            found = yield Call("get_entries", (self.namespace, sid, CKPT, [key]))
            if key not in found:
                return None
            value = found[key]
        stored = _parse_checkpoint(thread_id, key, value)
        yield from self._load_values(sid, stored, skip, channels)
        if with_writes:
            yield from self._load_writes(sid, stored)
        return stored

    def _load_values(self, sid: str, stored: StoredCheckpoint, skip: frozenset[tuple[str, str]],
                     channels: frozenset[str] | None = None) -> Op[None]:
        wanted = {}
        for channel, version in stored.versions.items():
            text = version_text(version)
            if (channel, text) not in skip and (channels is None or channel in channels):
                wanted[_key(stored.checkpoint_ns, channel, text)] = channel
        if not wanted:
            return
        found = yield Call("get_entries", (self.namespace, sid, BLOB, list(wanted)))
        lists: list[MessageList] = []
        for key, channel in wanted.items():
            raw = found.get(key)
            if raw is None:
                continue
            header, payloads = _unpack(raw, f"{stored.thread_id}/{key!r}")
            if header["t"] == EMPTY_TYPE:
                continue
            if header["t"] == MESSAGES_TYPE:
                value = MessageList(spans=header["r"])
                stored.values[channel] = value
                lists.append(value)
            else:
                stored.values[channel] = (header["t"], payloads[0])
        if lists:
            yield from self._read_messages(sid, lists)

    def _read_messages(self, sid: str, lists: Sequence[MessageList]) -> Op[None]:
        """Fill ``messages`` of each list from the thread's log (the messages a blob names by id first, then one
        read per contiguous run of seqs) and turn its ``spans`` into seq ranges."""
        ids = sorted({ref for lst in lists for ref in lst.spans if isinstance(ref, str)})
        by_seq: dict[int, Message] = {}
        seq_of: dict[str, int] = {}
        if ids:
            found = yield Call("get_messages", (self.namespace, sid, ids))
            for message in found:
                by_seq[message.seq or 0] = message
                seq_of[message.id] = message.seq or 0
            if len(seq_of) < len(ids):
                lost = [i for i in ids if i not in seq_of]
                raise CorruptData(f"thread {sid!r}: messages {lost[:5]} of a checkpoint are missing from its log")
        for lst in lists:
            lst.spans = ranges([s for ref in lst.spans
                                for s in ([seq_of[ref]] if isinstance(ref, str) else range(ref[0], ref[1] + 1))])
        needed = sorted({seq for lst in lists for seq in lst.seqs} - by_seq.keys())
        for lo, hi in ranges(needed):
            start = lo
            while start <= hi:
                page = yield Call("read", (self.namespace, sid), {"start": start, "stop": hi + 1, "limit": 1000})
                if not page:
                    break
                for message in page:
                    by_seq[message.seq or 0] = message
                start = (page[-1].seq or 0) + 1
        for lst in lists:
            missing = [s for s in lst.seqs if s not in by_seq]
            if missing:
                raise CorruptData(f"thread {sid!r}: messages {missing[:5]} of a checkpoint are missing from its log")
            lst.messages = [by_seq[s] for s in lst.seqs]

    def _load_writes(self, sid: str, stored: StoredCheckpoint) -> Op[None]:
        start, stop = prefix_range(_key(stored.checkpoint_ns, stored.checkpoint_id) + SEP)
        rows = yield Call("scan_entries", (self.namespace, sid, WRITE), {"start": start, "stop": stop})
        writes = []
        for key, value in rows:
            parts = _split(key)
            header, payloads = _unpack(value, f"{stored.thread_id}/{key!r}")
            writes.append(StoredWrite(parts[2], int(parts[3]), header["c"], (header["t"], payloads[0]),
                                      header.get("path", "")))
        writes.sort(key=lambda w: (w.task_path, w.task_id, w.idx))
        stored.writes = writes

    def checkpoints(
        self, thread_id: str, checkpoint_ns: str | None = None, *, before: str | None = None,
    ) -> Op[list[StoredCheckpoint]]:
        """The thread's checkpoints (of ``checkpoint_ns``, or of every namespace), newest first, without values
        or writes (see :meth:`complete`)."""
        sid = self._sid(thread_id)
        if checkpoint_ns is not None:
            start, stop = prefix_range(_esc(checkpoint_ns) + SEP)
            if before is not None:
                stop = _key(checkpoint_ns, before)
            rows = yield Call("scan_entries", (self.namespace, sid, CKPT),
                              {"start": start, "stop": stop, "reverse": True})
        else:
            rows = yield Call("scan_entries", (self.namespace, sid, CKPT))
        found = [_parse_checkpoint(thread_id, key, value) for key, value in rows]
        if before is not None:
            found = [c for c in found if c.checkpoint_id < before]
        found.sort(key=lambda c: c.checkpoint_id, reverse=True)  # across namespaces: newest first overall
        return found

    def complete(self, stored: StoredCheckpoint, skip: frozenset[tuple[str, str]] = frozenset()) -> Op[None]:
        """Load the values and writes of a checkpoint listed by :meth:`checkpoints`."""
        sid = self._sid(stored.thread_id)
        yield from self._load_values(sid, stored, skip)
        yield from self._load_writes(sid, stored)

    def threads(self) -> Op[list[str]]:
        """Every thread of the namespace (sessions with checkpoints), most recently updated first."""
        out: list[str] = []
        cursor = None
        while True:
            from memvault.contract import SessionQuery

            page = yield Call("list_sessions", (SessionQuery(namespace=self.namespace, limit=1000, cursor=cursor),))
            for info in page.items:
                rows = yield Call("scan_entries", (self.namespace, info.id, CKPT), {"limit": 1, "keys_only": True})
                if rows:
                    out.append(info.id)
            cursor = page.next_cursor
            if cursor is None:
                return out

    # -- deletes, copies, pruning --------------------------------------------------------------------------------
    def delete_thread(self, thread_id: str) -> Op[None]:
        yield Call("delete_session", (self.namespace, self._sid(thread_id)))

    def delete_checkpoints(self, thread_id: str, doomed: Sequence[StoredCheckpoint]) -> Op[int]:
        """Delete these checkpoints with their writes (blobs other checkpoints may share are kept)."""
        sid = self._sid(thread_id)
        for stored in doomed:
            start, stop = prefix_range(_key(stored.checkpoint_ns, stored.checkpoint_id) + SEP)
            yield Call("delete_entries", (self.namespace, sid, WRITE), {"start": start, "stop": stop})
        if doomed:
            keys = [_key(s.checkpoint_ns, s.checkpoint_id) for s in doomed]
            yield Call("delete_entries", (self.namespace, sid, CKPT, keys))
        return len(doomed)

    def prune(self, thread_id: str, strategy: str) -> Op[None]:
        """``keep_latest``: only the newest checkpoint of each namespace (with its writes and the blobs it uses)
        remains; ``delete``: the thread goes. Messages stay in the log either way unless the thread goes."""
        if strategy == "delete":
            yield from self.delete_thread(thread_id)
            return
        if strategy != "keep_latest":
            raise InvalidFilter(f"prune strategy must be 'keep_latest' or 'delete', got {strategy!r}")
        sid = self._sid(thread_id)
        listed = yield from self.checkpoints(thread_id)
        latest: dict[str, StoredCheckpoint] = {}
        for stored in listed:  # newest first
            latest.setdefault(stored.checkpoint_ns, stored)
        keep = {id(s) for s in latest.values()}
        yield from self.delete_checkpoints(thread_id, [s for s in listed if id(s) not in keep])
        used = {_key(s.checkpoint_ns, ch, version_text(v)) for s in latest.values() for ch, v in s.versions.items()}
        blobs = yield Call("scan_entries", (self.namespace, sid, BLOB), {"keys_only": True})
        stale = [key for key, _ in blobs if key not in used]
        if stale:
            yield Call("delete_entries", (self.namespace, sid, BLOB, stale))

    def copy_thread(self, source: str, target: str) -> Op[None]:
        """Copy every checkpoint, blob, write and message of ``source`` into ``target`` (message seqs are
        remapped to the target's log)."""
        src, dst = self._sid(source), self._sid(target)
        info = yield Call("get_session", (self.namespace, src))
        if info is None:
            return
        seq_map: dict[int, int] = {}
        start: int | None = None
        while True:
            page = yield Call("read", (self.namespace, src), {"start": start, "limit": 500})
            if not page:
                break
            records = [encode_body(m, self.max_message_bytes) for m in page]
            seqs = yield Call("append", (self.namespace, dst, records, self.options))
            seq_map.update({m.seq or 0: s for m, s in zip(page, seqs, strict=True)})
            start = (page[-1].seq or 0) + 1
        entries: list[Entry] = []
        for kind in (BLOB, WRITE, CKPT):  # checkpoints last: a copy that stops half-way has no dangling one
            rows = yield Call("scan_entries", (self.namespace, src, kind))
            for key, value in rows:
                if kind == BLOB:
                    header, payloads = _unpack(value, f"{source}/{key!r}")
                    if header["t"] == MESSAGES_TYPE:  # seqs are the target's; ids are copied as they are
                        refs = [[ref] if isinstance(ref, str) else range(ref[0], ref[1] + 1) for ref in header["r"]]
                        header = dict(header, r=_refs([r if isinstance(r, str) else seq_map[r] for run in refs
                                                       for r in run], []))
                        header.pop("n", None)
                        value = _pack(header, *payloads)
                entries.append(Entry(kind, key, value))
        for i in range(0, len(entries), PAGE):
            yield Call("put_entries", (self.namespace, dst, entries[i : i + PAGE], self.options))


__all__ = [
    "BLOB",
    "CKPT",
    "WRITE",
    "Checkpoints",
    "MessageList",
    "StoredCheckpoint",
    "StoredWrite",
    "expand",
    "ranges",
    "version_text",
]
