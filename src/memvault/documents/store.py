"""The document store itself: batches of operations run as one atomic write, change detection across processes, TTL sweeps, search."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from memvault.contract import Entry, Store, prefix_range
from memvault.documents.embedding import Embedding
from memvault.documents.fields import check_fields, compile_filter, texts_at_path
from memvault.documents.layout import (
    DEAD,
    DEFAULT,
    END,
    EXP,
    HEAD,
    HEADER,
    ITEM,
    LANE_RETENTION,
    LOG,
    LOG_KEEP,
    LOG_PRUNE_EVERY,
    MAX_LIMIT,
    META,
    MODES,
    NS,
    PAGE,
    SEP,
    STORE_OPTIONS,
    TTL,
    decode_header,
    decode_namespace,
    dumps,
    effective_expiry,
    encode_entry,
    item_key,
    log_key,
    namespace_key,
    split_item_key,
    time_key,
)
from memvault.documents.types import Get, Hit, Item, ListNamespaces, Operation, Put, Search, SearchIndex, TTLPolicy
from memvault.drive import Call, Op, run_async, run_sync
from memvault.errors import (
    CorruptData,
    EmbeddingModelMismatch,
    InvalidFilter,
    InvalidMetadata,
    MessageTooLarge,
)
from memvault.kv import key_after
from memvault.model import DEFAULT_NAMESPACE, from_epoch
from memvault.recall.docindex import DocIndex, Ranked, StoredItem
from memvault.validation import (
    check_document_key,
    check_document_value,
    check_int,
    check_namespace_path,
    check_number,
    check_offset,
    check_text,
    check_ttl_minutes,
    internal_namespace,
    validate_id,
    validate_namespace,
)

logger = logging.getLogger("memvault.documents")

# -- plans: validated operations with what they need embedded ---------------------------------------------------
@dataclass
class _PutPlan:
    namespace: tuple[str, ...]
    key: str
    entry_key: str
    value: bytes | None  # JSON, None = delete
    fields: Any  # header "f": None (store default), False, or a list
    texts: list[str]
    ttl: float | None  # seconds
    first: int = 0  # where this put's vectors start in the batch's matrix


@dataclass
class _Plan:
    ops: list[Operation]
    puts: list[_PutPlan] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


def _copy(value: Any) -> Any:
    """A copy of a JSON value (containers copied, leaves shared: they are immutable)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _as_item(stored: StoredItem, hit: Ranked | None = None) -> Item:
    fields = dict(
        namespace=stored.namespace, key=stored.key, value=_copy(stored.value), created_at=from_epoch(stored.created_at),
        updated_at=from_epoch(stored.updated_at), expires_at=from_epoch(stored.expires_at),
    )
    if hit is None:
        return Item(**fields)
    return Hit(**fields, score=hit.score, signals=hit.signals)


class _Lane:
    __slots__ = ("counter", "id", "used")

    def __init__(self, lane_id: str) -> None:
        self.id = lane_id
        self.counter = 0
        self.used = 0.0


class DocumentStore:
    """Namespaced documents with TTL and hybrid search; see the module docstring.

    ``DocumentStore(memory)`` (a :class:`memvault.Memory`: its store and namespace) or ``DocumentStore(store,
    namespace="acme")``; ``name`` separates independent stores of one tenant. ``index``: a :class:`SearchIndex`
    (None: no search by query; every item is still filterable). ``ttl``: a :class:`TTLPolicy`. Every operation has an
    ``a``-prefixed coroutine twin that runs the same logic on the store's async face."""

    def __init__(
        self,
        memory: Any,
        name: str = "default",
        *,
        namespace: str | None = None,
        index: SearchIndex | None = None,
        ttl: TTLPolicy | None = None,
    ) -> None:
        store = getattr(memory, "store", memory)
        if not isinstance(store, Store):
            raise InvalidFilter(f"DocumentStore needs a memvault Memory or Store, got {type(memory).__name__}")
        tenant = namespace if namespace is not None else getattr(memory, "namespace", DEFAULT_NAMESPACE)
        self.store: Store = store
        self.namespace = validate_namespace(tenant)
        self.name = validate_id(name, "store name")
        self.ns = internal_namespace(self.namespace, "store")
        if index is not None and not isinstance(index, SearchIndex):
            raise InvalidFilter(f"index must be a SearchIndex or None, got {type(index).__name__}")
        if ttl is not None and not isinstance(ttl, TTLPolicy):
            raise InvalidFilter(f"ttl must be a TTLPolicy or None, got {type(ttl).__name__}")
        self.index = index
        self.ttl = ttl or TTLPolicy()
        self.embedding = Embedding(index) if index is not None and index.embed is not None else None
        self._cache = DocIndex()
        self._swap = threading.Lock()
        self._lanes: list[_Lane] = []
        self._lane_lock = threading.Lock()
        self._lane_token = uuid.uuid4().hex[:12]
        self._lane_count = 0
        self._sweeper: threading.Thread | None = None
        self._stop_sweeper = threading.Event()

    def __repr__(self) -> str:
        return f"DocumentStore({self.name!r}, namespace={self.namespace!r}, store={self.store!r})"

    @property
    def _where(self) -> tuple[str, str]:
        return self.ns, self.name

    # -- planning (validation + what to embed) ------------------------------------------------------------------
    def _refresh(self, value: object) -> bool:
        if value is DEFAULT or value is None:
            return self.ttl.refresh_on_read
        if not isinstance(value, bool):
            raise InvalidFilter(f"refresh_ttl must be a bool or None, got {value!r}")
        return value

    def plan(self, ops: Iterable[Operation]) -> _Plan:
        """Validate ``ops`` (typed errors; nothing runs when one is bad) and list the texts and queries to embed."""
        if isinstance(ops, (str, bytes, Mapping)) or not isinstance(ops, Iterable):
            raise InvalidFilter(f"ops must be a list of operations, got {type(ops).__name__}")
        checked: list[Operation] = []
        latest: dict[str, _PutPlan] = {}
        for op in ops:
            if isinstance(op, Get):
                checked.append(Get(check_namespace_path(op.namespace), check_document_key(op.key),
                                   self._refresh(op.refresh_ttl)))
            elif isinstance(op, Put):
                put = self._plan_put(op)
                latest.pop(put.entry_key, None)  # the last put of a key in one batch wins
                latest[put.entry_key] = put
                checked.append(op)
            elif isinstance(op, Search):
                checked.append(self._check_search(op))
            elif isinstance(op, ListNamespaces):
                checked.append(self._check_list(op))
            else:
                raise InvalidFilter(f"unknown operation {type(op).__name__}: use Get, Put, Search or ListNamespaces")
        plan = _Plan(checked, list(latest.values()))
        if self.embedding is not None:
            for put in plan.puts:
                put.first = len(plan.texts)
                plan.texts.extend(put.texts)
            plan.queries = list(dict.fromkeys(
                op.query for op in checked if isinstance(op, Search) and op.query is not None
                and (op.mode or self.index.mode) != "keyword"  # type: ignore[union-attr]
            ))
        return plan

    def _plan_put(self, op: Put) -> _PutPlan:
        namespace = check_namespace_path(op.namespace)
        key = check_document_key(op.key)
        entry_key = item_key(namespace, key)
        if len(entry_key.encode("utf-8")) > 1900:
            raise InvalidMetadata("the namespace and key together are too long (over 1,900 UTF-8 bytes)")
        if op.value is None:
            return _PutPlan(namespace, key, entry_key, None, None, [], None)
        value = check_document_value(op.value)
        body = dumps(value)
        if len(body) > self.store.max_message_bytes:
            raise MessageTooLarge(f"value of {key!r} encodes to {len(body)} bytes; the store's limit is "
                                  f"{self.store.max_message_bytes}")
        ttl = check_ttl_minutes(self.ttl.default_ttl if op.ttl is DEFAULT else op.ttl, "ttl")
        index = op.index
        if index is False:
            fields: Any = False
        elif index is None:
            fields = None
        else:
            fields = check_fields(index, "index")
        texts: list[str] = []
        if self.index is not None and fields is not False:
            for path in self.index.fields if fields is None else fields:
                texts.extend(texts_at_path(value, path))
        return _PutPlan(namespace, key, entry_key, body, fields, texts, ttl)

    def _check_search(self, op: Search) -> Search:
        prefix = check_namespace_path(op.namespace_prefix, "namespace prefix", allow_empty=True)
        query = None if op.query is None else check_text(op.query, "query")
        compile_filter(op.filter)
        mode = op.mode
        if mode is not None and mode not in MODES:
            raise InvalidFilter(f"mode must be one of {MODES}, got {mode!r}")
        return Search(prefix, query, op.filter, check_int(op.limit, "limit", minimum=0, maximum=MAX_LIMIT),
                      check_offset(op.offset), self._refresh(op.refresh_ttl), mode)

    def _check_list(self, op: ListNamespaces) -> ListNamespaces:
        if isinstance(op.conditions, (str, bytes)) or not isinstance(op.conditions, (list, tuple)):
            raise InvalidFilter("conditions must be a list of ('prefix' | 'suffix', labels)")
        conditions = []
        for condition in op.conditions:
            if not isinstance(condition, (tuple, list)) or len(condition) != 2 or condition[0] not in ("prefix", "suffix"):
                raise InvalidFilter(f"a namespace condition is ('prefix' | 'suffix', labels), got {condition!r}")
            conditions.append((condition[0], check_namespace_path(condition[1], condition[0], allow_empty=True,
                                                                   wildcards=True)))
        depth = None if op.max_depth is None else check_int(op.max_depth, "max_depth", minimum=1)
        return ListNamespaces(tuple(conditions), depth, check_int(op.limit, "limit", minimum=0, maximum=MAX_LIMIT),
                              check_offset(op.offset))

    # -- the operations (written once, run by either driver) ---------------------------------------------------
    def run(self, plan: _Plan, vectors: np.ndarray | None, queries: Mapping[str, np.ndarray]) -> Op[list[Any]]:
        """Execute a plan: its reads in order (they see the store as it was before the batch), then its writes and
        the TTL refreshes its reads asked for, in ONE atomic put_entries."""
        results: list[Any] = []
        refresh: dict[str, StoredItem] = {}
        for op in plan.ops:
            if isinstance(op, Get):
                item = yield from self._get(op)
                if item is not None and op.refresh_ttl and item.ttl is not None:
                    refresh[item.entry_key] = item
                results.append(None if item is None else _as_item(item))
            elif isinstance(op, Put):
                results.append(None)
            elif isinstance(op, Search):
                hits = yield from self._search(op, queries)
                if op.refresh_ttl:
                    refresh.update((h.item.entry_key, h.item) for h in hits if h.item.ttl is not None)
                results.append([_as_item(h.item, h) for h in hits])
            else:
                results.append((yield from self._list_namespaces(op)))
        if plan.puts or refresh:
            yield from self._write(plan.puts, vectors, list(refresh.values()))
        return results

    def _acquire_lane(self, now: float) -> _Lane:
        with self._lane_lock:
            while self._lanes:
                lane = self._lanes.pop()
                if now - lane.used < LANE_RETENTION / 4:  # an older one may have been pruned by a sweep
                    return lane
            self._lane_count += 1
            return _Lane(f"{self._lane_token}.{self._lane_count}")

    def _release_lane(self, lane: _Lane, ok: bool) -> None:
        if ok:  # a failed write may or may not have landed: its counter is never reused
            with self._lane_lock:
                self._lanes.append(lane)

    def _logged(self, entries: list[Entry], changed: Sequence[str], now: float) -> Op[None]:
        """Write ``entries`` with the change log of ``changed`` in ONE atomic put_entries."""
        lane = self._acquire_lane(now)
        lane.counter += 1
        lane.used = now
        log = [
            Entry(LOG, log_key(lane.id, lane.counter), dumps({"t": now, "k": list(changed)})),
            Entry(HEAD, lane.id, f"{lane.counter} {now}".encode()),
            Entry(META, "v", os.urandom(12)),
        ]
        ok = False
        try:
            yield Call("put_entries", (*self._where, [*entries, *log], STORE_OPTIONS))
            ok = True
        finally:
            self._release_lane(lane, ok)
        if lane.counter % LOG_PRUNE_EVERY == 0 and lane.counter > LOG_KEEP:
            yield Call("delete_entries", (*self._where, LOG),
                       {"start": log_key(lane.id, 0), "stop": log_key(lane.id, lane.counter - LOG_KEEP)})

    def _write(self, puts: Sequence[_PutPlan], vectors: np.ndarray | None,
               refresh: Sequence[StoredItem] = ()) -> Op[None]:
        existing: dict[str, bytes] = {}
        if puts:
            existing = yield Call("get_entries", (*self._where, ITEM, [p.entry_key for p in puts]))
        timed = [k for k, raw in existing.items() if _has_ttl(raw)]
        refreshed: dict[str, bytes] = (yield Call("get_entries", (*self._where, TTL, timed))) if timed else {}
        now = self.store.clock()
        model = self.embedding.model_id if self.embedding is not None else None
        entries: list[Entry] = []
        changed: list[str] = []
        namespaces: set[str] = set()
        for put in puts:
            old = None
            raw = existing.get(put.entry_key)
            if raw is not None:
                try:
                    stored, _, _ = decode_header(raw, put.entry_key)
                except CorruptData as exc:
                    logger.warning("%s: overwriting it", exc)
                else:
                    old = None if "x" in stored else stored
            stamp = uuid.uuid4().hex[:16]
            if put.value is None:
                if old is not None:
                    entries.append(Entry(ITEM, put.entry_key, encode_entry({"x": now, "w": stamp})))
                    entries.append(Entry(DEAD, f"{time_key(now)}{SEP}{put.entry_key}", b""))
                    changed.append(put.entry_key)
                continue
            created = now
            expires = None if old is None else effective_expiry(old, refreshed.get(put.entry_key))
            if old is not None and (expires is None or expires > now):
                created = float(old["c"])  # an update keeps created_at (an expired item is created anew)
            header: dict[str, Any] = {"c": created, "u": now, "w": stamp, "f": put.fields}
            blob = b""
            if put.ttl is not None:
                header["t"], header["e"] = put.ttl, now + put.ttl
                entries.append(Entry(EXP, f"{time_key(now + put.ttl)}{SEP}{put.entry_key}", b""))
            if vectors is not None and put.texts:
                rows = vectors[put.first : put.first + len(put.texts)]
                header["m"], header["d"], header["n"] = model, int(rows.shape[1]), len(rows)
                blob = np.ascontiguousarray(rows, dtype="<f4").tobytes()
            entries.append(Entry(ITEM, put.entry_key, encode_entry(header, put.value, blob)))
            encoded_ns = namespace_key(put.namespace)
            if encoded_ns not in namespaces:
                namespaces.add(encoded_ns)
                entries.append(Entry(NS, encoded_ns, b""))
            changed.append(put.entry_key)
        written = {p.entry_key for p in puts}
        for item in refresh:
            if item.entry_key in written:  # replaced in this batch: its new TTL starts now anyway
                continue
            expires = now + item.ttl  # type: ignore[operator]
            entries.append(Entry(TTL, item.entry_key, dumps([expires, item.stamp])))
            entries.append(Entry(EXP, f"{time_key(expires)}{SEP}{item.entry_key}", b""))
            changed.append(item.entry_key)
        if changed:
            yield from self._logged(entries, changed, now)

    def _decode(self, entry_key: str, raw: bytes, ttl_raw: bytes | None = None, *,
                index: bool = True) -> StoredItem | None:
        """The live item of an entry (None for a tombstone); expiry from its header and ``ttl_raw``; ``index``:
        with its vectors and keyword text (what the cache needs; a get does not)."""
        header, value, blob = decode_header(raw, entry_key)
        if "x" in header:
            return None
        try:
            data = json.loads(bytes(value))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptData(f"store item {entry_key!r} holds a value that is not JSON: {exc}") from None
        namespace, key = split_item_key(entry_key)
        fields = header.get("f")
        vectors = None
        if index and header.get("n"):
            vectors = np.frombuffer(blob, dtype="<f4").reshape(int(header["n"]), int(header["d"]))
        texts: list[str] = []
        if index and self.index is not None and fields is not False:
            for path in self.index.fields if fields is None else fields:
                texts.extend(texts_at_path(data, path))
        return StoredItem(
            entry_key=entry_key, namespace=namespace, key=key, value=data, created_at=float(header["c"]),
            updated_at=float(header["u"]), expires_at=effective_expiry(header, ttl_raw),
            ttl=None if header.get("t") is None else float(header["t"]), stamp=str(header.get("w")), fields=fields,
            model=header.get("m"), vectors=vectors, text="\n".join(texts), indexed=bool(texts),
        )

    def _read_items(self, keys: Sequence[str], *, strict: bool = False,
                    index: bool = True) -> Op[dict[str, StoredItem | None]]:
        """Entry key -> its live item or None (missing, tombstone, undecodable unless ``strict``)."""
        out: dict[str, StoredItem | None] = {}
        for i in range(0, len(keys), PAGE):
            chunk = list(keys[i : i + PAGE])
            raws: dict[str, bytes] = yield Call("get_entries", (*self._where, ITEM, chunk))
            ttls: dict[str, bytes] = {}
            timed = [k for k, raw in raws.items() if _has_ttl(raw)]
            if timed:
                ttls = yield Call("get_entries", (*self._where, TTL, timed))
            for key in chunk:
                raw = raws.get(key)
                if raw is None:
                    out[key] = None
                    continue
                try:
                    out[key] = self._decode(key, raw, ttls.get(key), index=index)
                except CorruptData as exc:
                    if strict:
                        raise
                    logger.warning("%s: skipped", exc)
                    out[key] = None
        return out

    def _get(self, op: Get) -> Op[StoredItem | None]:
        entry_key = item_key(op.namespace, op.key)
        item = (yield from self._read_items([entry_key], strict=True, index=False))[entry_key]
        if item is None or (item.expires_at is not None and item.expires_at <= self.store.clock()):
            return None
        return item

    # -- the cache -----------------------------------------------------------------------------------------------
    def _sync(self) -> Op[DocIndex]:
        """The cache, caught up with everything committed before this call (see the module docstring)."""
        for _ in range(16):
            cache = self._cache
            generation = cache.generation
            token = (yield Call("get_entries", (*self._where, META, ["v"]))).get("v")
            if cache.loaded and token == cache.token:
                return cache
            if not cache.loaded:
                yield from self._load(cache, token)
                continue
            heads = _parse_heads((yield Call("scan_entries", (*self._where, HEAD))))
            now = self.store.clock()
            changed: set[str] = set()
            reload = bool(set(cache.heads) - set(heads)) and now - cache.synced_at > LANE_RETENTION / 2
            for lane, counter in heads.items():
                known = cache.heads.get(lane, 0)
                if counter <= known or reload:
                    continue
                rows = yield Call("scan_entries", (*self._where, LOG),
                                  {"start": log_key(lane, known + 1), "stop": log_key(lane, counter + 1)})
                if len(rows) != counter - known or not rows or rows[0][0] != log_key(lane, known + 1):
                    reload = True  # pruned past what this cache applied
                    break
                for _, raw in rows:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        changed.update(json.loads(raw)["k"])
            if reload:
                yield from self._load(cache, token, force=True)
                continue
            items = yield from self._read_items(sorted(changed))
            with cache.lock:
                if cache.generation != generation or self._cache is not cache:
                    continue  # another sync applied meanwhile: start over from its state
                cache.apply(items)
                cache.heads = {lane: max(counter, cache.heads.get(lane, 0)) for lane, counter in heads.items()}
                cache.token = token
                cache.synced_at = now
            if not cache.loaded:  # the apply asked for a rebuild (vectors of new dimensions)
                continue
            return cache
        return self._cache  # pathological contention: answer from the state reached; the next search catches up

    def _load(self, cache: DocIndex, token: bytes | None, *, force: bool = False) -> Op[None]:
        """Read every item into a new cache and install it, unless another sync changed ``cache`` meanwhile."""
        generation = cache.generation
        heads = _parse_heads((yield Call("scan_entries", (*self._where, HEAD))))
        now = self.store.clock()
        fresh = DocIndex()
        ttls: dict[str, bytes] = {}
        start: str | None = None
        while True:
            rows = yield Call("scan_entries", (*self._where, TTL), {"start": start, "limit": PAGE})
            ttls.update(rows)
            if len(rows) < PAGE:
                break
            start = key_after(rows[-1][0])
        start = None
        while True:
            rows = yield Call("scan_entries", (*self._where, ITEM), {"start": start, "limit": PAGE})
            batch: dict[str, StoredItem | None] = {}
            for key, raw in rows:
                try:
                    item = self._decode(key, raw, ttls.get(key))
                except CorruptData as exc:
                    logger.warning("%s: skipped", exc)
                    continue
                if item is not None:
                    batch[key] = item
            fresh.apply(batch)
            if len(rows) < PAGE:
                break
            start = key_after(rows[-1][0])
        fresh.heads, fresh.token, fresh.synced_at, fresh.loaded = heads, token, now, True
        with self._swap:
            if self._cache is cache and cache.generation == generation and (force or not cache.loaded):
                self._cache = fresh

    def _check_models(self, cache: DocIndex) -> None:
        model = self.embedding.model_id if self.embedding is not None else None
        foreign = cache.foreign_models(model)
        if foreign:
            shown = ", ".join(f"{count} by {name!r}" for name, count in sorted(foreign.items()))
            raise EmbeddingModelMismatch(
                f"store {self.name!r} holds vectors made by another embedding model ({shown}) than the one in use "
                f"({model!r}): call reindex() to re-embed them, or open the store with the original embedder"
            )

    def _search(self, op: Search, queries: Mapping[str, np.ndarray]) -> Op[list[Ranked]]:
        cache = yield from self._sync()
        if op.limit == 0:
            return []
        mode = op.mode or (self.index.mode if self.index is not None else "hybrid")
        query = op.query if self.index is not None else None  # without an index a query ranks nothing
        vector = queries.get(op.query) if op.query is not None else None
        if query is not None and mode != "keyword" and vector is not None:
            self._check_models(cache)
            if cache.dims is not None and vector.shape[0] != cache.dims:
                raise EmbeddingModelMismatch(f"the query vector has {vector.shape[0]} dimensions; the stored vectors "
                                             f"have {cache.dims}: call reindex()")
        return cache.search(op.namespace_prefix, now=self.store.clock(), limit=op.limit, offset=op.offset,
                            predicate=compile_filter(op.filter), query=query, vector=vector, mode=mode,
                            dense_weight=self.index.dense_weight if self.index is not None else 0.5)

    # -- namespaces -----------------------------------------------------------------------------------------------
    def _namespace_live(self, namespace: tuple[str, ...]) -> Op[bool]:
        """Whether ``namespace`` itself holds a live, unexpired item (reads a few keys of it, not all)."""
        start, stop = prefix_range(namespace_key(namespace) + END)
        now = self.store.clock()
        while True:
            rows = yield Call("scan_entries", (*self._where, ITEM), {"start": start, "stop": stop, "limit": 16})
            timed = []
            for key, raw in rows:
                try:
                    header, _, _ = decode_header(raw, key)
                except CorruptData:
                    continue
                if "x" in header:
                    continue
                if header.get("t") is None or float(header["e"]) > now:
                    return True
                timed.append((key, header))
            if timed:  # expired by their own header: a refresh may have moved them
                refreshed = yield Call("get_entries", (*self._where, TTL, [k for k, _ in timed]))
                for key, header in timed:
                    expires = effective_expiry(header, refreshed.get(key))
                    if expires is None or expires > now:
                        return True
            if len(rows) < 16:
                return False
            start = key_after(rows[-1][0])

    def _list_namespaces(self, op: ListNamespaces) -> Op[list[tuple[str, ...]]]:
        start = stop = None
        fixed: list[str] = []
        for kind, labels in op.conditions:  # a prefix's leading fixed labels narrow the scan to one key range
            if kind == "prefix":
                for label in labels:
                    if label == "*":
                        break
                    fixed.append(label)
                break
        if fixed:
            base = namespace_key(fixed)
            start, stop = base, prefix_range(base + SEP)[1]
        names: list[tuple[str, ...]] = []
        while True:
            rows = yield Call("scan_entries", (*self._where, NS),
                              {"start": start, "stop": stop, "limit": PAGE * 5, "keys_only": True})
            names.extend(decode_namespace(k) for k, _ in rows)
            if len(rows) < PAGE * 5:
                break
            start = key_after(rows[-1][0])
        names = sorted(n for n in names if all(_matches(n, kind, labels) for kind, labels in op.conditions))
        out: list[tuple[str, ...]] = []
        seen: set[tuple[str, ...]] = set()
        for name in names:
            shown = name[: op.max_depth] if op.max_depth else name
            if shown in seen:
                continue
            if (yield from self._namespace_live(name)):
                seen.add(shown)
                out.append(shown)
                if len(out) >= op.offset + op.limit:
                    break
        return out[op.offset : op.offset + op.limit]

    # -- sweeping -------------------------------------------------------------------------------------------------
    def _sweep(self) -> Op[int]:
        """Delete expired items (returns how many), purge tombstones, drop emptied namespaces and idle lanes."""
        now = self.store.clock()
        removed: list[str] = []
        emptied: set[tuple[str, ...]] = set()
        for kind, stop in ((EXP, time_key(now)), (DEAD, time_key(now + 1))):
            while True:
                rows = yield Call("scan_entries", (*self._where, kind), {"stop": stop, "limit": PAGE, "keys_only": True})
                if not rows:
                    break
                keys = list(dict.fromkeys(k.split(SEP, 1)[1] for k, _ in rows))
                if kind == EXP:
                    items = yield from self._read_items(keys, index=False)
                    gone = [k for k, item in items.items()
                            if item is not None and item.expires_at is not None and item.expires_at <= now]
                else:
                    raws = yield Call("get_entries", (*self._where, ITEM, keys))
                    gone = [k for k, raw in raws.items() if _is_tombstone(raw)]
                if gone:
                    yield Call("delete_entries", (*self._where, ITEM, gone))
                    yield Call("delete_entries", (*self._where, TTL, gone))
                    emptied.update(split_item_key(k)[0] for k in gone)
                    if kind == EXP:
                        removed.extend(gone)
                yield Call("delete_entries", (*self._where, kind, [k for k, _ in rows]))
                if len(rows) < PAGE:
                    break
        for namespace in sorted(emptied):
            if not (yield from self._namespace_live(namespace)):
                yield Call("delete_entries", (*self._where, NS, [namespace_key(namespace)]))
        heads = _parse_heads((yield Call("scan_entries", (*self._where, HEAD))), times=True)
        for lane, (_, used) in heads.items():
            if now - used > LANE_RETENTION:
                lo, hi = prefix_range(lane + SEP)
                yield Call("delete_entries", (*self._where, LOG), {"start": lo, "stop": hi})
                yield Call("delete_entries", (*self._where, HEAD, [lane]))
        if removed:
            yield from self._logged([], removed, now)
        return len(removed)

    # -- sync / async faces ---------------------------------------------------------------------------------------
    def _embed(self, plan: _Plan) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        if self.embedding is None:
            return None, {}
        vectors = self.embedding.vectors(plan.texts) if plan.texts else None
        return vectors, {q: self.embedding.query(q) for q in plan.queries}

    async def _aembed(self, plan: _Plan) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        if self.embedding is None:
            return None, {}
        vectors = await self.embedding.avectors(plan.texts) if plan.texts else None
        return vectors, {q: await self.embedding.aquery(q) for q in plan.queries}

    def batch(self, ops: Iterable[Operation]) -> list[Any]:
        """Run several operations: the writes first (one atomic write), then the reads in order; one result per op
        (Get: Item | None, Put: None, Search: list[Hit], ListNamespaces: list of namespaces)."""
        plan = self.plan(list(ops) if not isinstance(ops, list) else ops)
        vectors, queries = self._embed(plan)
        return run_sync(self.store, self.run(plan, vectors, queries))

    async def abatch(self, ops: Iterable[Operation]) -> list[Any]:
        plan = self.plan(list(ops) if not isinstance(ops, list) else ops)
        vectors, queries = await self._aembed(plan)
        return await run_async(self.store, self.run(plan, vectors, queries))

    def get(self, namespace: Sequence[str], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """The item, or None (never written, deleted or expired)."""
        return self.batch([Get(tuple(namespace), key, DEFAULT if refresh_ttl is None else refresh_ttl)])[0]

    async def aget(self, namespace: Sequence[str], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        return (await self.abatch([Get(tuple(namespace), key, DEFAULT if refresh_ttl is None else refresh_ttl)]))[0]

    def put(self, namespace: Sequence[str], key: str, value: Mapping[str, Any], *,
            index: Literal[False] | Sequence[str] | None = None, ttl: float | Any | None = DEFAULT) -> None:
        """Insert or replace an item (``ttl`` in minutes; None = never expires; DEFAULT = the store's default)."""
        if value is None:
            raise InvalidMetadata("value must be a dict; use delete() to remove an item")
        self.batch([Put(tuple(namespace), key, value, index, ttl)])

    async def aput(self, namespace: Sequence[str], key: str, value: Mapping[str, Any], *,
                   index: Literal[False] | Sequence[str] | None = None, ttl: float | Any | None = DEFAULT) -> None:
        if value is None:
            raise InvalidMetadata("value must be a dict; use adelete() to remove an item")
        await self.abatch([Put(tuple(namespace), key, value, index, ttl)])

    def delete(self, namespace: Sequence[str], key: str) -> None:
        self.batch([Put(tuple(namespace), key, None)])

    async def adelete(self, namespace: Sequence[str], key: str) -> None:
        await self.abatch([Put(tuple(namespace), key, None)])

    def search(self, namespace_prefix: Sequence[str] = (), *, query: str | None = None,
               filter: Mapping[str, Any] | None = None, limit: int = 10, offset: int = 0,
               refresh_ttl: bool | None = None, mode: str | None = None) -> list[Hit]:
        """Items under ``namespace_prefix`` matching ``filter`` (see :func:`compile_filter`): ranked by ``query``
        when given (``mode`` overrides the index's), else most recently updated first."""
        op = Search(tuple(namespace_prefix), query, filter, limit, offset,
                    DEFAULT if refresh_ttl is None else refresh_ttl, mode)
        return self.batch([op])[0]

    async def asearch(self, namespace_prefix: Sequence[str] = (), *, query: str | None = None,
                      filter: Mapping[str, Any] | None = None, limit: int = 10, offset: int = 0,
                      refresh_ttl: bool | None = None, mode: str | None = None) -> list[Hit]:
        op = Search(tuple(namespace_prefix), query, filter, limit, offset,
                    DEFAULT if refresh_ttl is None else refresh_ttl, mode)
        return (await self.abatch([op]))[0]

    @staticmethod
    def _list_op(prefix: Sequence[str] | None, suffix: Sequence[str] | None, max_depth: int | None, limit: int,
                 offset: int) -> ListNamespaces:
        conditions = []
        if prefix:
            conditions.append(("prefix", tuple(prefix)))
        if suffix:
            conditions.append(("suffix", tuple(suffix)))
        return ListNamespaces(tuple(conditions), max_depth, limit, offset)

    def list_namespaces(self, *, prefix: Sequence[str] | None = None, suffix: Sequence[str] | None = None,
                        max_depth: int | None = None, limit: int = 100, offset: int = 0) -> list[tuple[str, ...]]:
        """Namespaces holding live items, sorted; ``prefix``/``suffix`` labels may be "*" (any one label)."""
        return self.batch([self._list_op(prefix, suffix, max_depth, limit, offset)])[0]

    async def alist_namespaces(self, *, prefix: Sequence[str] | None = None, suffix: Sequence[str] | None = None,
                               max_depth: int | None = None, limit: int = 100,
                               offset: int = 0) -> list[tuple[str, ...]]:
        return (await self.abatch([self._list_op(prefix, suffix, max_depth, limit, offset)]))[0]

    def sweep(self) -> int:
        """Delete expired items now; returns how many."""
        return run_sync(self.store, self._sweep())

    async def asweep(self) -> int:
        return await run_async(self.store, self._sweep())

    def start_sweeper(self, interval_minutes: float | None = None) -> threading.Thread:
        """Sweep every ``interval_minutes`` (default: the TTL policy's) in a daemon thread until stop_sweeper()."""
        interval = interval_minutes if interval_minutes is not None else self.ttl.sweep_interval_minutes
        if interval is None:
            raise InvalidFilter("no sweep interval: pass interval_minutes or set TTLPolicy(sweep_interval_minutes=)")
        seconds = check_number(interval, "interval_minutes", minimum=1e-6) * 60
        if self._sweeper is not None and self._sweeper.is_alive():
            return self._sweeper
        self._stop_sweeper.clear()

        def loop() -> None:
            while not self._stop_sweeper.wait(seconds):
                try:
                    swept = self.sweep()
                    if swept:
                        logger.debug("store %r: swept %d expired items", self.name, swept)
                except Exception as exc:  # keep sweeping; an outage is logged, not fatal
                    logger.warning("store %r: sweep failed: %s", self.name, exc)

        self._sweeper = threading.Thread(target=loop, name=f"memvault-sweeper-{self.name}", daemon=True)
        self._sweeper.start()
        return self._sweeper

    def stop_sweeper(self, timeout: float | None = 10.0) -> bool:
        """Stop the background sweeper; True once it has stopped (or none ran)."""
        self._stop_sweeper.set()
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and sweeper is not threading.current_thread():
            sweeper.join(timeout)
            return not sweeper.is_alive()
        return True

    def reindex(self) -> int:
        """Re-embed every indexed item whose vectors are missing or made by another model; returns how many.
        Meant for a quiet moment: an item written concurrently by someone else may be overwritten."""
        if self.embedding is None:
            return 0
        done = 0
        start: str | None = None
        while True:
            rows = run_sync(self.store, _one(Call("scan_entries", (*self._where, ITEM), {"start": start, "limit": 500})))
            stale: list[Put] = []
            for key, raw in rows:
                try:
                    header, value, _ = decode_header(raw, key)
                except CorruptData:
                    continue
                if "x" in header or header.get("f") is False or header.get("m") == self.embedding.model_id:
                    continue
                namespace, item = split_item_key(key)
                ttl = None if header.get("t") is None else float(header["t"]) / 60
                stale.append(Put(namespace, item, json.loads(bytes(value)), header.get("f"), ttl))
            if stale:
                self.batch(stale)
                done += len(stale)
            if len(rows) < 500:
                return done
            start = key_after(rows[-1][0])

    def close(self) -> None:
        """Stop the sweeper (the store itself belongs to whoever opened it)."""
        self.stop_sweeper()


def _one(call: Call) -> Op[Any]:
    return (yield call)


def _has_ttl(raw: bytes) -> bool:
    try:
        _, hlen, _, _ = HEADER.unpack_from(raw)
        header = json.loads(raw[HEADER.size : HEADER.size + hlen])
        return isinstance(header, dict) and header.get("t") is not None
    except (struct.error, ValueError, UnicodeDecodeError):
        return False


def _is_tombstone(raw: bytes) -> bool:
    try:
        _, hlen, _, _ = HEADER.unpack_from(raw)
        header = json.loads(raw[HEADER.size : HEADER.size + hlen])
        return isinstance(header, dict) and "x" in header
    except (struct.error, ValueError, UnicodeDecodeError):
        return False


def _parse_heads(rows: Sequence[tuple[str, bytes]], *, times: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lane, raw in rows:
        try:
            counter, used = raw.decode().split(" ", 1)
            out[lane] = (int(counter), float(used)) if times else int(counter)
        except (ValueError, UnicodeDecodeError):
            logger.warning("store change log: unreadable head %r ignored", lane)
    return out


def _matches(name: tuple[str, ...], kind: str, labels: Sequence[str]) -> bool:
    if len(name) < len(labels):
        return False
    part = name[: len(labels)] if kind == "prefix" else name[len(name) - len(labels) :]
    return all(want == "*" or want == got for want, got in zip(labels, part, strict=True))


__all__ = ["DocumentStore"]
