"""A binary key-value store over the entries contract (what LangChain's ``ByteStore`` needs), on every backend.

Store ``name`` of tenant ``ns`` is the session ``name`` in ``internal_namespace(ns, "kv")``: entries of kind ``kv``,
key = the user's key, value = the bytes. ``mset`` is one atomic ``put_entries`` (the last value of a key repeated in
one call wins); ``yield_keys(prefix)`` pages through one key range in key order. Each operation is written once as
a generator of store calls and run by the sync or the async driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from memvault.contract import AppendOptions, Entry, Store, prefix_range
from memvault.drive import Call, Emit, Op, iter_async, iter_sync, run_async, run_sync
from memvault.errors import InvalidFilter, InvalidMessage, MessageTooLarge
from memvault.model import DEFAULT_NAMESPACE
from memvault.validation import check_document_key, internal_namespace, validate_id, validate_namespace

KIND = "kv"
PAGE = 1000
_OPTIONS = AppendOptions()  # never expires


def key_after(key: str) -> str:
    """The smallest key above ``key`` (the start of a scan's next page): keys never hold NUL (validated, and
    PostgreSQL refuses it even in a bound)."""
    return key + "\x01"


def _keys(keys: object) -> list[str]:
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        raise InvalidFilter(f"keys must be a list of str, got {type(keys).__name__}")
    return [check_document_key(k) for k in keys]


class KeyValueStore:
    """Bytes by str key; ``KeyValueStore(memory)`` or ``KeyValueStore(store, namespace=...)``; ``name`` separates
    stores of one tenant. Every method has an ``a``-prefixed coroutine twin."""

    def __init__(self, memory: Any, name: str = "default", *, namespace: str | None = None) -> None:
        store = getattr(memory, "store", memory)
        if not isinstance(store, Store):
            raise InvalidFilter(f"KeyValueStore needs a memvault Memory or Store, got {type(memory).__name__}")
        self.store: Store = store
        self.namespace = validate_namespace(namespace if namespace is not None else
                                            getattr(memory, "namespace", DEFAULT_NAMESPACE))
        self.name = validate_id(name, "store name")
        self.ns = internal_namespace(self.namespace, "kv")

    def __repr__(self) -> str:
        return f"KeyValueStore({self.name!r}, namespace={self.namespace!r}, store={self.store!r})"

    # -- operations (written once) -----------------------------------------------------------------------------
    def _mget(self, keys: Sequence[str]) -> Op[list[bytes | None]]:
        wanted = _keys(keys)
        if not wanted:
            return []
        found: dict[str, bytes] = yield Call("get_entries", (self.ns, self.name, KIND, list(dict.fromkeys(wanted))))
        return [found.get(k) for k in wanted]

    def _mset(self, pairs: Iterable[tuple[str, bytes]]) -> Op[None]:
        entries = []
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidFilter(f"mset takes (key, bytes) pairs, got {pair!r:.60}")
            key, value = check_document_key(pair[0]), pair[1]
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise InvalidMessage(f"value of {key!r} must be bytes, got {type(value).__name__}")
            if len(value) > self.store.max_message_bytes:
                raise MessageTooLarge(f"value of {key!r} is {len(value)} bytes; the limit is "
                                      f"{self.store.max_message_bytes}")
            entries.append(Entry(KIND, key, bytes(value)))
        if entries:
            yield Call("put_entries", (self.ns, self.name, entries, _OPTIONS))

    def _mdelete(self, keys: Sequence[str]) -> Op[int]:
        wanted = _keys(keys)
        if not wanted:
            return 0
        return (yield Call("delete_entries", (self.ns, self.name, KIND, wanted)))

    def _yield_keys(self, start: str | None, stop: str | None) -> Op[None]:
        while True:
            rows = yield Call("scan_entries", (self.ns, self.name, KIND),
                              {"start": start, "stop": stop, "limit": PAGE, "keys_only": True})
            for key, _ in rows:
                yield Emit(key)
            if len(rows) < PAGE:
                return
            start = key_after(rows[-1][0])

    # -- sync / async faces --------------------------------------------------------------------------------------
    def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in order (None where missing)."""
        return run_sync(self.store, self._mget(keys))

    async def amget(self, keys: Sequence[str]) -> list[bytes | None]:
        return await run_async(self.store, self._mget(keys))

    def mset(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        """Set every pair atomically."""
        run_sync(self.store, self._mset(pairs))

    async def amset(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        await run_async(self.store, self._mset(pairs))

    def mdelete(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` (missing ones are fine); returns how many existed."""
        return run_sync(self.store, self._mdelete(keys))

    async def amdelete(self, keys: Sequence[str]) -> int:
        return await run_async(self.store, self._mdelete(keys))

    @staticmethod
    def _range(prefix: str | None) -> tuple[str | None, str | None]:
        return prefix_range(check_document_key(prefix, "prefix")) if prefix else (None, None)

    def yield_keys(self, prefix: str | None = None) -> Iterator[str]:
        """Keys (starting with ``prefix``) in key order, read page by page."""
        return iter_sync(self.store, self._yield_keys(*self._range(prefix)))

    def ayield_keys(self, prefix: str | None = None) -> AsyncIterator[str]:
        return iter_async(self.store, self._yield_keys(*self._range(prefix)))


__all__ = ["KeyValueStore", "key_after"]
