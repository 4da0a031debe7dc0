"""Key rotation: re-seal every payload of a namespace under the current primary key (``memvault rekey``).

Open Memory with the new key first and the old ones after it (``encryption=[new, old]``), then run
``mem.rekey()`` (or ``mem.start_rekey()`` for a background thread). Each payload not sealed by the primary key -
an old key's, or a clear one written before encryption was turned on - is opened and written back sealed, in
place, with a compare-and-set (:meth:`memvault.contract.Store.rewrite`): a value a live writer changed meanwhile is
left to that writer, never overwritten with the older one. Resumable: each change is atomic, and a rerun skips
what is already current (reads it, writes nothing). When a run reports ``stale == 0``, the old keys can go.

The work is one operation written once as a generator of store calls, run against the backend itself with
envelopes handed over raw, so the sync and async entry points share it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from memvault.codecs.envelope import SEALED_EXTRA
from memvault.codecs.payload import is_sealed
from memvault.codecs.store import SealedStore, retire_keys, sealed_record_blob
from memvault.contract import Rewrite, SessionQuery
from memvault.drive import Call, Op
from memvault.kv import key_after
from memvault.model import Message, canonical_body
from memvault.validation import internal_namespace

#: the internal namespaces a tenant's data lives in besides its own (collections, ByteStores, document stores)
PURPOSES = ("collections", "kv", "store")
PAGE = 500
ENTRY_PAGE = 16  # entries can be 1 MiB artifact chunks: a page stays a few MiB


@dataclass
class RekeyReport:
    """What a rekey run did. ``rewritten``: payloads sealed anew; ``current``: already under the primary key;
    ``raced``: changed by a live writer between read and write (left to it; a rerun checks them again);
    ``from_clear``: of the rewritten, how many were stored in clear; ``scrubbed``: what the backend dropped of its
    own search index over that clear text (``Store.scrub_clear_index``)."""

    sessions: int = 0
    rewritten: int = 0
    current: int = 0
    raced: int = 0
    from_clear: int = 0
    by_space: dict[str, int] = field(default_factory=lambda: {"message": 0, "record": 0, "entry": 0})
    scrubbed: list[str] = field(default_factory=list)
    stopped: bool = False
    #: key ids retired by ``rekey(retire_old_keys=True)``
    retired: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every payload seen is now under the primary key."""
        return self.raced == 0


def tenant_namespaces(namespace: str) -> list[str]:
    return [namespace, *(internal_namespace(namespace, p) for p in PURPOSES)]


def rekey_op(store: SealedStore, namespaces: Iterable[str], *, page: int = PAGE,
             progress: Callable[[RekeyReport], None] | None = None,
             stop: threading.Event | None = None) -> Op[RekeyReport]:
    """The rekey of ``namespaces``, as store calls on ``store.inner`` (run them inside ``raw_envelopes()``)."""
    report = RekeyReport()
    started = time.monotonic()
    for ns in namespaces:
        seen: dict[str, float] = {}
        since: float | None = None
        for _ in range(4):  # later passes: sessions a live writer moved ahead of the listing cursor meanwhile
            pass_start = store.clock()
            listed = yield from _sessions(ns, since)
            todo = [sid for sid, updated in listed if seen.get(sid) != updated]
            for sid, updated in listed:
                seen[sid] = updated
            for sid in todo:
                if stop is not None and stop.is_set():
                    report.seconds, report.stopped = time.monotonic() - started, True
                    return report
                yield from _rekey_session(store, ns, sid, page, report)
                report.sessions += 1
                if progress is not None:
                    progress(report)
            if since is not None and not todo:
                break
            since = pass_start - 1.0  # a second of slack for clocks of other writers
    report.seconds = time.monotonic() - started
    return report


def _sessions(ns: str, updated_after: float | None) -> Op[list[tuple[str, float]]]:
    out: list[tuple[str, float]] = []
    cursor = None
    while True:
        result = yield Call("list_sessions", (SessionQuery(ns, updated_after=updated_after, limit=1000, cursor=cursor),))
        out += [(info.id, info.updated_at.timestamp()) for info in result.items]
        cursor = result.next_cursor
        if cursor is None:
            return out


def _rekey_session(store: SealedStore, ns: str, sid: str, page: int, report: RekeyReport) -> Op[None]:
    sealing, codec = store.sealing, store.codec

    def apply(changes: list[Rewrite], clear: int) -> Op[None]:
        if not changes:
            return
        report.from_clear += clear
        done = yield Call("rewrite", (ns, sid, [sealing.change(ns, sid, c) for c in changes]))
        report.rewritten += done
        report.raced += len(changes) - done
        report.by_space[changes[0].space] += done

    start: int | None = None
    while True:
        messages: list[Message] = yield Call("read", (ns, sid), {"start": start, "limit": page})
        if not messages:
            break
        changes = []
        clear = 0
        for m in messages:
            token = m.extras.get(SEALED_EXTRA) if m.extras else None
            if isinstance(token, bytes) and not codec.needs_rekey(token):
                report.current += 1
                continue
            clear += not isinstance(token, bytes)
            opened = sealing.message(ns, sid, m)
            changes.append(Rewrite("message", "", m.id, m.seq, canonical_body(opened)))
        yield from apply(changes, clear)
        start = (messages[-1].seq or 0) + 1
    kinds = yield Call("list_kinds", (ns, sid))
    for kind in kinds["records"]:
        rows = yield Call("get_records", (ns, sid, kind))
        changes = []
        for key, data in rows:
            if _current_record(codec, data):
                report.current += 1
                continue
            changes.append(Rewrite("record", kind, key, data, sealing.open_record(ns, sid, kind, key, data)))
        yield from apply(changes, sum(sealed_record_blob(c.old) is None for c in changes))
    for kind in kinds["entries"]:
        after: str | None = None
        while True:
            rows = yield Call("scan_entries", (ns, sid, kind), {"start": after, "limit": ENTRY_PAGE})
            if not rows:
                break
            changes = []
            for key, value in rows:
                if not codec.needs_rekey(value):
                    report.current += 1
                    continue
                changes.append(Rewrite("entry", kind, key, value, sealing.open_entry(ns, sid, kind, key, value)))
            yield from apply(changes, sum(not is_sealed(c.old) for c in changes))
            after = key_after(rows[-1][0])


def _current_record(codec: Any, data: dict[str, Any]) -> bool:
    blob = sealed_record_blob(data)
    return blob is not None and not codec.needs_rekey(blob)


def finish(store: SealedStore, report: RekeyReport, retire_old_keys: bool = False) -> RekeyReport:
    """After a run that was not stopped: drop the backend's own search index over clear text (idempotent; every
    such run does it, since a run interrupted after sealing but before the scrub leaves nothing clear for the next
    one to find), and with ``retire_old_keys`` (once every namespace is rekeyed) make the primary key the only one
    the store accepts."""
    if report.stopped:
        return report
    report.scrubbed = store.inner.scrub_clear_index()
    if retire_old_keys and report.complete and store.codec.keys is not None:
        report.retired = retire_keys(store.inner, store.codec.keys.primary())
    return report


class RekeyJob:
    """A rekey running in a background thread (``mem.start_rekey()``): ``report`` grows as it goes."""

    def __init__(self, target: Callable[[threading.Event, Callable[[RekeyReport], None]], RekeyReport]) -> None:
        self.report = RekeyReport()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(target,), name="memvault-rekey", daemon=True)
        self._thread.start()

    def _run(self, target: Callable[[threading.Event, Callable[[RekeyReport], None]], RekeyReport]) -> None:
        try:
            self.report = target(self._stop, self._update)
        except BaseException as exc:  # kept for wait(), which raises it in the caller's thread
            self.error = exc

    def _update(self, report: RekeyReport) -> None:
        self.report = report

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Stop after the current session (what is done stays done: a later run resumes)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> RekeyReport:
        """The final report (raises what the run raised)."""
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.report
