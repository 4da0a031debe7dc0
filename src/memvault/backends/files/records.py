"""Records on the file store: a session's JSON records (summaries, vectors) in ``records.<rgen>.json``,
``{kind: {key: data}}``, rewritten as a new generation on every change and committed through ``meta.jsonl``.
An unreadable records file costs only the records (moved aside, never deleted)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from memvault.backends.files.format import Meta, RecordsDamaged, os_errors, stamp
from memvault.errors import CorruptData, InvalidMessage, SessionNotFound

logger = logging.getLogger("memvault.files")


class RecordsOnFiles:
    """The records operations of :class:`~.store.FileStore` (the host provides the session runners and I/O)."""

    _write: Callable[..., Any]
    _read: Callable[..., Any]
    _commit: Callable[..., Any]
    _sweep: Callable[..., Any]
    _new_file: Callable[..., Any]
    _alive: Callable[..., bool]

    def _load_records(self, d: Path, meta: Meta) -> dict[str, dict[str, Any]]:
        """{kind: {key: data}}. Raises FileNotFoundError when a concurrent write replaced the file."""
        if not meta.records:
            return {}
        path = d / meta.records_file
        raw = path.read_bytes()
        try:
            kinds = json.loads(raw)
            if not isinstance(kinds, dict) or not all(isinstance(v, dict) for v in kinds.values()):
                raise TypeError("not an object of kind -> {key: data}")
            return kinds
        except (ValueError, TypeError) as exc:
            raise CorruptData(f"{path} is not a readable records file ({exc})", path=str(path)) from None

    def _save_records(self, d: Path, meta: Meta, kinds: dict[str, dict[str, Any]]) -> None:
        """Write the records as a new generation file, commit it, then remove the previous one."""
        kinds = {kind: table for kind, table in kinds.items() if table}
        if kinds:
            meta.rgen += 1
            meta.records = meta.rgen
            body = json.dumps(kinds, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
            self._new_file(d, meta.records_file, body)
        else:
            meta.records = 0
        self._commit(d, meta)
        self._sweep(d, meta)

    @os_errors
    def put_record(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        try:
            value = json.loads(json.dumps(data, ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidMessage(f"record data must be JSON-serializable: {exc}") from None

        def op(d: Path, meta: Meta | None) -> bool:
            if meta is None or not self._alive(meta):
                return False
            kinds = self._records_locked(d, meta)
            kinds.setdefault(kind, {})[key] = value
            self._save_records(d, meta, kinds)
            return True

        if not self._write(ns, sid, False, op, False):
            raise SessionNotFound(f"session {sid!r} does not exist in namespace {ns!r}")

    def _records_locked(self, d: Path, meta: Meta) -> dict[str, dict[str, Any]]:
        """The records, with the session's lock held. An unreadable or missing records file costs only the
        records: it is moved aside (never deleted) with a warning and the session goes on with none, its messages
        untouched."""
        try:
            return self._load_records(d, meta)
        except (FileNotFoundError, CorruptData) as exc:
            path = d / meta.records_file
            aside = path.with_name(f"{path.name}.corrupt-{stamp()}")
            with suppress(FileNotFoundError):
                os.rename(path, aside)
            logger.warning("session %r/%r: records file %s unusable (%s); moved to %s, the session continues "
                           "without its records (summaries and vectors are rebuilt on demand)", meta.namespace,
                           meta.id, path, exc, aside)
            meta.records = 0
            self._commit(d, meta)
            return {}

    @os_errors
    def get_records(
        self, ns: str, sid: str, kind: str, *, keys: Sequence[str] | None = None, last: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        def pick(kinds: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
            table = kinds.get(kind, {})
            chosen = sorted(table.items()) if keys is None else sorted((k, table[k]) for k in set(keys) if k in table)
            if last is not None:
                chosen = chosen[-last:] if last else []
            return chosen

        def op(d: Path, meta: Meta, fd: int) -> list[tuple[str, dict[str, Any]]]:
            try:
                return pick(self._load_records(d, meta))
            except CorruptData as exc:
                raise RecordsDamaged from exc  # not the session's corruption: handled below, under the lock

        try:
            return self._read(ns, sid, op, [], file=False)
        except RecordsDamaged:
            def repair(d: Path, meta: Meta | None) -> list[tuple[str, dict[str, Any]]]:
                return [] if meta is None or not self._alive(meta) else pick(self._records_locked(d, meta))

            return self._write(ns, sid, False, repair, [])

    def _rewrite_records(self, d: Path, meta: Meta, changes: Sequence[Any]) -> int:
        """The record part of Store.rewrite, with the session's lock held."""
        kinds = self._records_locked(d, meta)
        done = 0
        for change in changes:
            table = kinds.get(change.kind, {})
            if change.key in table and table[change.key] == change.old:
                table[change.key] = json.loads(json.dumps(change.new, ensure_ascii=False, allow_nan=False))
                done += 1
        if done:
            self._save_records(d, meta, kinds)
        return done

    def _record_kinds(self, ns: str, sid: str) -> list[str]:
        """The kinds holding at least one record (the records file is read under the same rules as get_records)."""
        def op(d: Path, meta: Meta, fd: int) -> list[str]:
            try:
                return [k for k, t in self._load_records(d, meta).items() if t]
            except CorruptData as exc:
                raise RecordsDamaged from exc

        try:
            return self._read(ns, sid, op, [], file=False)
        except RecordsDamaged:
            def repair(d: Path, meta: Meta | None) -> list[str]:
                return [] if meta is None or not self._alive(meta) else [
                    k for k, t in self._records_locked(d, meta).items() if t]

            return self._write(ns, sid, False, repair, [])

    @os_errors
    def delete_records(self, ns: str, sid: str, kind: str, keys: Sequence[str] | None = None) -> int:
        def op(d: Path, meta: Meta | None) -> int:
            if meta is None or not self._alive(meta):
                return 0
            kinds = self._records_locked(d, meta)
            table = kinds.get(kind, {})
            doomed = list(table) if keys is None else [k for k in set(keys) if k in table]
            if not doomed:
                return 0
            for k in doomed:
                del table[k]
            self._save_records(d, meta, kinds)
            return len(doomed)

        return self._write(ns, sid, False, op, 0)
