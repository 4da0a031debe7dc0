"""SealedStore: a backend behind the codec layer. Every payload is sealed before the backend sees it and opened on
the way back, through the one :class:`~memvault.codecs.payload.Codec`, whatever the backend.

What is sealed: message bodies (as envelopes, :mod:`memvault.codecs.envelope`), record data (summaries, in-process
recall vectors, artifact manifests) and entry values (checkpoints, documents, state versions, artifact chunks).
What stays in clear, because backends need it to find things: namespaces, session ids, user ids, session metadata,
message ids, record and entry keys, session times, sizes and counts.

With encryption the backend's own recall engine is not used: FTS5, tsvector and pgvector would need the text or
its vectors in clear. Recall runs in process over the decrypted scope, and its vectors are stored sealed.
Compression alone keeps the native engine (a compressed message's text is then missing only from the SQLite
keyword index; documented in docs/encryption.md).
"""

from __future__ import annotations

import base64
import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from memvault.codecs.envelope import RAW, SEALED_EXTRA, Opener, envelopes, message_context, remember, seal_body
from memvault.codecs.keys import KeyProvider, as_key_provider, key_id
from memvault.codecs.payload import DEFAULT_THRESHOLD, Codec, check_compression, is_sealed
from memvault.contract import AppendOptions, Entry, Rewrite, Store
from memvault.errors import BackendUnavailable, CorruptData, EncryptionKeyMissing, WrongEncryptionKey
from memvault.faces import AsyncStore, PlannedStore
from memvault.model import Message, Record, decode_body
from memvault.validation import INTERNAL_SEPARATOR

#: the record key that holds a sealed record's payload (record data memvault writes never has it)
SEALED_RECORD = "memvault.sealed"
#: where a store says which codecs its data uses: no secret in it, only cipher names and key ids
MARKER_NS = f"{INTERNAL_SEPARATOR}memvault"
MARKER_SID = "codecs"
MARKER_KIND = "codecs"
MARKER_KEY = "store"
#: bodies of opened envelopes kept per store (a chat turn re-reads its window of recent messages)
OPENED_CACHE = 4096
#: the calls that return messages (their envelopes are opened as the backend decodes them)
_READS = frozenset({"read", "get_messages", "pop_messages"})


def _ctx(tag: bytes, *parts: str) -> bytes:
    return tag + b"\x00" + b"\x00".join(p.encode("utf-8", "surrogatepass") for p in parts)


def sealed_record_blob(data: Mapping[str, Any]) -> bytes | None:
    """The sealed payload of a record as stored, or None when the record is clear data: sealed is exactly one
    key, ``memvault.sealed``, holding base64 of a payload with the codec header."""
    token = data.get(SEALED_RECORD) if len(data) == 1 else None
    if not isinstance(token, str):
        return None
    try:
        blob = base64.b64decode(token, validate=True)
    except ValueError:
        return None
    return blob if is_sealed(blob) else None


class Sealing:
    """The codec applied to one store's calls: what each contract method seals on the way in and opens on the way
    out. Shared by the sync and the async face, so the logic exists once."""

    def __init__(self, codec: Codec, where: str) -> None:
        self.codec = codec
        self.where = where
        self._opened: dict[str, tuple[str, str, str]] = {}

    # -- messages --------------------------------------------------------------------------------------------------
    def records(self, ns: str, sid: str, records: Sequence[Record]) -> list[Record]:
        out = []
        for r in records:
            stored = seal_body(self.codec, r.body, ns, sid, r.id)
            if stored is not r.body:  # the next read of the window opens nothing
                remember(self._opened, stored, (ns, sid, r.body), OPENED_CACHE)
            out.append(Record(r.id, stored))
        return out

    def message(self, ns: str, sid: str, m: Message) -> Message:
        token = m.extras.get(SEALED_EXTRA) if m.extras else None
        if not isinstance(token, bytes):
            return m
        where = f"{self.where} {ns}/{sid} message {m.id}"
        body = self.codec.open(token, message_context(ns, sid, m.id), where=where)
        opened = decode_body(body, session_id=m.session_id, seq=m.seq, where=where)
        if opened.id != m.id:
            raise CorruptData(f"sealed message {m.id} in {where} holds message {opened.id}")
        return opened

    def mode(self, name: str, args: tuple[Any, ...]) -> str | Opener:
        """How the backend decodes encrypted envelopes during this call: opened in place by a read (one parse
        per message), handed over raw by anything else - above all by writes, so that a backend deriving columns
        from a body (PostgreSQL's role, metadata and keyword vector) only ever sees the envelope."""
        if name not in _READS:
            return RAW
        return Opener(self.codec, args[0], args[1], self._opened, OPENED_CACHE)

    # -- records and entries ---------------------------------------------------------------------------------------
    def record_data(self, ns: str, sid: str, kind: str, key: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
        raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        # data that happens to hold the sealed key is put behind a header too, so it is never taken for sealed
        sealed = self.codec.seal(raw, _ctx(b"rec", ns, sid, kind, key), header=SEALED_RECORD in data)
        if sealed is raw:
            return data
        return {SEALED_RECORD: base64.b64encode(sealed).decode("ascii")}

    def open_record(self, ns: str, sid: str, kind: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
        blob = sealed_record_blob(data)
        if blob is None:  # written in clear (before any codec), even if it has a key of that name
            return data
        where = f"{self.where} {ns}/{sid} record {kind}/{key}"
        try:
            opened = json.loads(self.codec.open(blob, _ctx(b"rec", ns, sid, kind, key), where=where))
        except (ValueError, UnicodeDecodeError):
            raise CorruptData(f"sealed record {where} does not hold JSON") from None
        if not isinstance(opened, dict):
            raise CorruptData(f"sealed record {where} does not hold an object")
        return opened

    def entry_value(self, ns: str, sid: str, kind: str, key: str, value: bytes) -> bytes:
        return self.codec.seal(bytes(value), _ctx(b"ent", ns, sid, kind, key))

    def entries(self, ns: str, sid: str, entries: Sequence[Entry]) -> list[Entry]:
        return [Entry(e.kind, e.key, self.entry_value(ns, sid, e.kind, e.key, e.value)) for e in entries]

    def open_entry(self, ns: str, sid: str, kind: str, key: str, value: bytes) -> bytes:
        return self.codec.open(value, _ctx(b"ent", ns, sid, kind, key),
                               where=f"{self.where} {ns}/{sid} entry {kind}/{key}")

    def change(self, ns: str, sid: str, c: Rewrite) -> Rewrite:
        """A Rewrite with its new payload sealed (its old one is compared as stored)."""
        if c.space == "message":
            return c._replace(new=seal_body(self.codec, c.new, ns, sid, c.key))
        if c.space == "record":
            return c._replace(new=self.record_data(ns, sid, c.kind, c.key, c.new))
        return c._replace(new=self.entry_value(ns, sid, c.kind, c.key, c.new))

    # -- per method: (arguments in, result out) --------------------------------------------------------------------
    def before(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if name == "rewrite":
            ns, sid, changes = args
            return (ns, sid, [self.change(ns, sid, c) for c in changes]), kwargs
        if name in ("append", "replace"):
            ns, sid, records, *rest = args
            return (ns, sid, self.records(ns, sid, records), *rest), kwargs
        if name == "append_entries":
            ns, sid, records, entries, *rest = args
            return (ns, sid, self.records(ns, sid, records), self.entries(ns, sid, entries), *rest), kwargs
        if name == "put_record":
            ns, sid, kind, key, data = args
            return (ns, sid, kind, key, self.record_data(ns, sid, kind, key, data)), kwargs
        if name == "put_entries":
            ns, sid, entries, *rest = args
            return (ns, sid, self.entries(ns, sid, entries), *rest), kwargs
        return args, kwargs

    def after(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
        if name == "get_records":
            ns, sid, kind = args[:3]
            return [(key, self.open_record(ns, sid, kind, key, data)) for key, data in result]
        if name == "get_entries":
            ns, sid, kind = args[:3]
            return {key: self.open_entry(ns, sid, kind, key, value) for key, value in result.items()}
        if name == "scan_entries":
            if kwargs.get("keys_only"):
                return result
            ns, sid, kind = args[:3]
            return [(key, self.open_entry(ns, sid, kind, key, value)) for key, value in result]
        return result


class SealedStore(PlannedStore):
    """``inner`` with every payload passing through ``codec``. Mirrors the backend's name, clock, TTL default and
    limits; with encryption it offers no native full-text or vector search (see the module docstring)."""

    def __init__(self, inner: Store, codec: Codec) -> None:
        super().__init__(clock=inner.clock, max_message_bytes=inner.max_message_bytes)
        self.inner = inner
        self.codec = codec
        self.sealing = Sealing(codec, inner.url)
        self.backend = inner.backend  # type: ignore[misc]
        self.default_ttl = inner.default_ttl  # type: ignore[misc]
        self.shared_connection = inner.shared_connection
        if codec.encrypts:
            self.capabilities = inner.capabilities - {"fulltext", "vector"}  # type: ignore[misc]
            self.recall_engine = None
        else:
            self.capabilities = inner.capabilities  # type: ignore[misc]
            self.recall_engine = inner.recall_engine

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def aio(self) -> AsyncStore:
        if self._aio is None:
            self._aio = SealedAsyncStore(self)
        return self._aio

    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self.sealing.before(name, args, kwargs)
        with envelopes(self.sealing.mode(name, args)):
            result = getattr(self.inner, name)(*args, **kwargs)
        return self.sealing.after(name, args, kwargs, result)

    def ping(self) -> None:
        self.inner.ping()

    def stats(self) -> dict[str, Any]:
        facts = dict(self.inner.stats())
        facts["codecs"] = {"encryption": self.codec.cipher, "compression": self.codec.compression}
        return facts

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        """Compression only: the backend's extras (its transaction(), path, find_messages) for its own recall
        engine. With encryption nothing bypasses the codec."""
        if name.startswith("_") or name in ("inner", "codec", "sealing"):
            raise AttributeError(name)
        if self.codec.encrypts:
            raise AttributeError(f"{name!r}: an encrypted store offers only the storage contract")
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<SealedStore {self.inner!r} encryption={self.codec.cipher} compression={self.codec.compression}>"


class SealedAsyncStore(AsyncStore):
    """The async face: the backend's own async face (native on Redis and PostgreSQL) behind the same Sealing."""

    _store: SealedStore

    async def _arun(self, name: str, *args: Any, **kwargs: Any) -> Any:
        sealing = self._store.sealing
        args, kwargs = sealing.before(name, args, kwargs)
        with envelopes(sealing.mode(name, args)):
            result = await getattr(self._store.inner.aio, name)(*args, **kwargs)
        return sealing.after(name, args, kwargs, result)


# -- installing the layer: Memory(url, encryption=..., compression=...) ------------------------------------------------

_markers: weakref.WeakKeyDictionary[Store, dict[str, Any]] = weakref.WeakKeyDictionary()
_markers_lock = threading.Lock()


def _backend_of(store: Store) -> Store:
    """The backend under wrappers (the spool, a fault injector): the marker is read there, so opening a Memory
    neither replays a spool nor meets an injected fault."""
    while isinstance(getattr(store, "inner", None), Store):
        store = store.inner  # type: ignore[attr-defined]
    return store


def read_marker(store: Store, *, required: bool = False) -> dict[str, Any] | None:
    """What ``store`` says about the codecs its data uses ({} when nothing was ever sealed). An unreachable
    backend reads as None (not cached) unless ``required``: a Memory can still be opened during an outage."""
    store = _backend_of(store)
    with _markers_lock:
        cached = _markers.get(store)
    if cached is not None:
        return cached
    try:
        found = store.get_records(MARKER_NS, MARKER_SID, MARKER_KIND, keys=[MARKER_KEY])
    except BackendUnavailable:
        if required:
            raise
        return None
    marker = dict(found[0][1]) if found else {}
    with _markers_lock:
        _markers[store] = marker
    return marker


def _write_marker(store: Store, marker: dict[str, Any]) -> None:
    store = _backend_of(store)
    store.ensure_session(MARKER_NS, MARKER_SID, AppendOptions(ttl=None))
    store.put_record(MARKER_NS, MARKER_SID, MARKER_KIND, MARKER_KEY, marker)
    with _markers_lock:
        _markers[store] = marker


def check_keys(marker: dict[str, Any], keys: KeyProvider) -> None:
    """WrongEncryptionKey when the store's data was encrypted only with keys that ``keys`` cannot open."""
    known = marker.get("key_ids") or []
    if known and not any(keys.get(bytes.fromhex(k)) is not None for k in known):
        raise WrongEncryptionKey(
            f"this store's data is encrypted with key id(s) {', '.join(known)}; none is among this Memory's keys "
            "(nothing was read or changed)")


def install(store: Store, encryption: Any = None, compression: Any = None, *, cipher: str | None = None,
            threshold: int = DEFAULT_THRESHOLD) -> Store:
    """``store`` behind the codec layer when codecs are asked for or its data already uses them; otherwise the
    store itself (no wrapper, no cost). Raises EncryptionKeyMissing for an encrypted store opened without a key
    and WrongEncryptionKey for one opened with keys that open none of its data."""
    if isinstance(store, SealedStore):
        if encryption is None and compression is None:
            return store
        store = store.inner
    keys = as_key_provider(encryption, cipher=cipher) if encryption is not None else None
    compression = check_compression(compression)
    # with codecs asked for, the marker must be read (and written): a store's first sealed write must not
    # happen without it, or a Memory opened later without the key would not know
    found = read_marker(store, required=keys is not None or compression is not None)
    if found is None:  # unreachable now: read whatever is there safely (decompress; encrypted: a typed error)
        return SealedStore(store, Codec())
    marker = found
    if keys is None and marker.get("key_ids"):
        raise EncryptionKeyMissing(
            f"{store.url} holds encrypted data (key id(s) {', '.join(marker['key_ids'])}); open Memory with "
            "encryption=<key>")
    if keys is not None:
        check_keys(marker, keys)
        primary = key_id(keys.primary()).hex()
        if primary in (marker.get("retired") or []):
            raise WrongEncryptionKey(f"key id {primary} was retired by a rekey of this store; open it with the "
                                     "current key (nothing was read or changed)")
    if keys is None and compression is None and not marker.get("compression"):
        return store
    codec = Codec(keys, compression, threshold)
    wanted = _marked(marker, codec)
    if wanted != marker:
        _write_marker(store, wanted)
    return SealedStore(store, codec)


def _marked(marker: dict[str, Any], codec: Codec) -> dict[str, Any]:
    out = dict(marker)
    if codec.keys is not None:
        primary = key_id(codec.keys.primary()).hex()
        ids = list(out.get("key_ids") or [])
        if primary not in ids:
            out["key_ids"] = [*ids, primary]
    if codec.compression is not None:
        used = list(out.get("compression") or [])
        if codec.compression not in used:
            out["compression"] = [*used, codec.compression]
    return out


def retire_keys(store: Store, primary: bytes) -> list[str]:
    """Make ``primary`` the only key the store's marker lists (after every namespace was rekeyed); the others
    become retired: a Memory whose primary key is one of them is refused at open. Returns the retired ids."""
    marker = dict(read_marker(store, required=True) or {})
    current = key_id(primary).hex()
    retired = sorted(set(marker.get("retired") or []) | (set(marker.get("key_ids") or []) - {current}))
    marker["key_ids"], marker["retired"] = [current], retired
    _write_marker(store, marker)
    return retired



