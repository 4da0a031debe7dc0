"""Session state: one JSON object per session, versioned, with compare-and-set, on every backend.

Each version is its own entry (``memvault.contract``): kind ``state``, key = the version zero-padded to 20 digits
(so key order is version order), value = the JSON record ``{"v", "t", "a", "d", "c"}`` (version, time by the
store's clock, actor, data, what changed since the previous version). Writing version N + 1 with
``put_entries(if_absent=True)`` is the compare-and-set: exactly one writer wins it. The current state is the entry
with the greatest key (one reverse range read of one row); the history is the other entries, newest first, kept
to ``state_history`` versions (the latest is always kept).

Retention never frees a version number right away: a version that leaves the history becomes a tombstone (the key
with an empty value), and tombstones are deleted only ``TOMBSTONES`` versions later. A writer that read version N
and stalled meanwhile therefore still finds N + 1 taken and gets a conflict, instead of filling a freed slot below
the latest (its write would be lost). Retention runs every ``state_history // 8`` versions (amortised): one write
of tombstones, one range delete.

Every operation is a generator of store calls (:mod:`memvault.drive`), run by the sync or the async driver;
``update`` retries with jittered exponential backoff (tenacity), the same policy for both faces.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memvault.contract import Entry
from memvault.drive import Await, Call, Op, run_async, run_sync
from memvault.errors import CorruptData, InvalidFilter, StateConflict
from memvault.model import from_epoch
from memvault.validation import check_int, check_state_data, json_equal, validate_id

if TYPE_CHECKING:
    from memvault.memory import Session

KIND = "state"
#: versions kept by default (``Memory(state_history=...)``); None keeps every version
DEFAULT_HISTORY = 100
DEFAULT_RETRIES = 50
#: how many versions below the history keep their key (as an empty tombstone) before it is deleted
TOMBSTONES = 10_000

StateFn = Callable[[dict[str, Any]], "dict[str, Any] | Mapping[str, Any] | Awaitable[Mapping[str, Any]]"]


@dataclass(frozen=True)
class State:
    """A session's state: ``data`` at ``version`` (0 and ``{}`` when never set; ``updated_at`` None then)."""

    data: dict[str, Any]
    version: int
    updated_at: datetime | None
    actor: str | None = None


@dataclass(frozen=True)
class StateEvent:
    """One version in a state's history: when, by whom, which top-level keys it added, removed and changed, and the
    data it set."""

    version: int
    at: datetime
    actor: str | None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def version_key(version: int) -> str:
    return f"{version:020d}"


def _encode(version: int, at: float, actor: str | None, data: dict[str, Any], changes: dict[str, list[str]]) -> bytes:
    record = {"v": version, "t": at, "a": actor, "d": data, "c": changes}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _decode(key: str, value: bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(value)
        if not isinstance(record, dict) or not isinstance(record.get("d"), dict) or record.get("v") != int(key):
            raise ValueError("not a state record of this version")
        return record
    except (ValueError, TypeError, RecursionError) as exc:
        raise CorruptData(f"state version {key.lstrip('0') or '0'} of {where} is unreadable ({exc})") from None


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[str]]:
    return {
        "added": [k for k in new if k not in old],
        "removed": [k for k in old if k not in new],
        "changed": [k for k in new if k in old and not json_equal(old[k], new[k])],
    }


def check_history(value: object) -> int | None:
    """A state retention: None (keep every version) or a positive int."""
    return None if value is None else check_int(value, "state_history", minimum=1)


class SessionState:
    """``session.state``: get / set (compare-and-set) / update (read-modify-write with retries) / history, each with
    an ``a``-prefixed coroutine twin."""

    def __init__(self, session: Session, history: int | None) -> None:
        self._session = session
        self.history_limit = history

    def __repr__(self) -> str:
        return f"<state of session {self._session.id!r}>"

    @property
    def _where(self) -> str:
        return f"session {self._session.id!r} in namespace {self._session.namespace!r}"

    # -- operations (written once) -------------------------------------------------------------------------------
    def _scan(self, **kwargs: Any) -> Op[list[tuple[str, bytes]]]:
        s = self._session
        return (yield Call("scan_entries", (s.namespace, s.id, KIND), kwargs))

    def _current(self) -> Op[State]:
        rows = yield from self._scan(reverse=True, limit=1)
        if not rows:
            return State({}, 0, None)
        record = _decode(rows[0][0], rows[0][1], self._where)  # the newest is never a tombstone
        return State(record["d"], record["v"], from_epoch(record["t"]), record.get("a"))

    def _write(self, current: State, data: object, actor: str | None) -> Op[State]:
        """Compare-and-set from ``current`` to version ``current.version + 1``."""
        s = self._session
        checked = check_state_data(data)
        version = current.version + 1
        at = s.store.clock()
        key = version_key(version)
        record = _encode(version, at, actor, checked, _changes(current.data, checked))
        written = yield Call("put_entries", (s.namespace, s.id, [Entry(KIND, key, record)], s.options),
                            {"if_absent": True})
        if not written[0]:
            raise StateConflict(f"the state of {self._where} moved past version {current.version} (another writer "
                                "won); nothing was changed", expected=current.version)
        keep = self.history_limit
        step = 1 if keep is None else max(1, keep // 8)
        if keep is not None and version > keep and version % step == 0:
            # the versions that left the history become tombstones; two passes' worth, so the pass of a writer
            # that crashed right after its write is caught up
            top = version - keep
            stones = [Entry(KIND, version_key(v), b"") for v in range(max(1, top - 2 * step + 1), top + 1)]
            yield Call("put_entries", (s.namespace, s.id, stones, s.options))
            if top > TOMBSTONES:
                yield Call("delete_entries", (s.namespace, s.id, KIND), {"stop": version_key(top - TOMBSTONES + 1)})
        return State(checked, version, from_epoch(at), actor)

    def _set(self, data: object, expected: int, actor: str | None) -> Op[State]:
        current = yield from self._current()
        if current.version != expected:
            raise StateConflict(f"the state of {self._where} is at version {current.version}, not {expected}; "
                                "nothing was changed", expected=expected, current=current.version)
        return (yield from self._write(current, data, actor))

    def _update_once(self, fn: StateFn, actor: str | None) -> Op[State]:
        current = yield from self._current()
        result: Any = fn(copy.deepcopy(current.data))
        if inspect.isawaitable(result):
            result = yield Await(result)
        return (yield from self._write(current, result, actor))

    def _history(self, limit: int | None) -> Op[list[StateEvent]]:
        keep = self.history_limit
        if limit is not None:
            limit = check_int(limit, "limit", minimum=1)
        wanted = min(x for x in (limit, keep) if x is not None) if (limit, keep) != (None, None) else None
        rows = yield from self._scan(reverse=True, limit=wanted)
        events = []
        newest: int | None = None
        for key, value in rows:
            if not value:
                break  # a tombstone: below the history
            record = _decode(key, value, self._where)
            newest = record["v"] if newest is None else newest
            if keep is not None and record["v"] <= newest - keep:
                break  # retention runs every few versions: what it has not deleted yet is not history
            changes = record.get("c") or {}
            events.append(StateEvent(record["v"], from_epoch(record["t"]), record.get("a"),
                                     list(changes.get("added", [])), list(changes.get("removed", [])),
                                     list(changes.get("changed", [])), record["d"]))
        return events

    # -- sync / async faces --------------------------------------------------------------------------------------
    @staticmethod
    def _actor(actor: object) -> str | None:
        return None if actor is None else validate_id(actor, "actor")

    @staticmethod
    def _policy(retries: object) -> dict[str, Any]:
        """tenacity's options for ``retries`` more attempts after a conflict: jittered exponential backoff, full
        jitter over 2 ms, 4 ms, ... up to 100 ms. (tenacity is imported here: it imports tornado when installed,
        ~30 ms of every import of memvault otherwise.)"""
        from tenacity import retry_if_exception_type, stop_after_attempt, wait_random_exponential

        attempts = check_int(retries, "retries", minimum=0, maximum=10_000, error=InvalidFilter) + 1
        return {"retry": retry_if_exception_type(StateConflict), "stop": stop_after_attempt(attempts),
                "wait": wait_random_exponential(multiplier=0.002, max=0.1), "reraise": True}

    def get(self) -> State:
        """The current state (version 0 and ``{}`` when never set)."""
        return run_sync(self._session.store, self._current())

    async def aget(self) -> State:
        return await run_async(self._session.store, self._current())

    def set(self, data: Mapping[str, Any], expected_version: int | None = None, actor: str | None = None) -> State:
        """Store ``data`` as the next version. With ``expected_version``: only if the state is still at that
        version, else StateConflict (nothing changes). Without: whatever the current version (retrying a lost
        race)."""
        who = self._actor(actor)
        if expected_version is None:
            return self.update(lambda _: data, actor=who)
        expected = check_int(expected_version, "expected_version")
        return run_sync(self._session.store, self._set(data, expected, who))

    async def aset(self, data: Mapping[str, Any], expected_version: int | None = None,
                   actor: str | None = None) -> State:
        who = self._actor(actor)
        if expected_version is None:
            return await self.aupdate(lambda _: data, actor=who)
        expected = check_int(expected_version, "expected_version")
        return await run_async(self._session.store, self._set(data, expected, who))

    def update(self, fn: StateFn, actor: str | None = None, retries: int = DEFAULT_RETRIES) -> State:
        """Read-modify-write: ``fn(data)`` (a copy of the current data) returns the new data; on a conflict the
        state is read again and ``fn`` called again, up to ``retries`` more times with jittered exponential backoff
        (then StateConflict)."""
        from tenacity import Retrying

        who = self._actor(actor)
        store = self._session.store
        return Retrying(**self._policy(retries))(lambda: run_sync(store, self._update_once(fn, who)))

    async def aupdate(self, fn: StateFn, actor: str | None = None, retries: int = DEFAULT_RETRIES) -> State:
        """Async twin of :meth:`update`; ``fn`` may be a plain function or a coroutine function."""
        from tenacity import AsyncRetrying

        who = self._actor(actor)
        store = self._session.store

        async def attempt() -> State:
            return await run_async(store, self._update_once(fn, who))

        return await AsyncRetrying(**self._policy(retries))(attempt)

    def history(self, limit: int | None = None) -> list[StateEvent]:
        """The kept versions, newest first (at most ``limit``; at most ``state_history`` are kept)."""
        return run_sync(self._session.store, self._history(limit))

    async def ahistory(self, limit: int | None = None) -> list[StateEvent]:
        return await run_async(self._session.store, self._history(limit))


__all__ = ["DEFAULT_HISTORY", "KIND", "TOMBSTONES", "SessionState", "State", "StateEvent", "check_history", "version_key"]
