"""Embedding for document stores: a LangChain ``Embeddings``, a function (sync or async) or a memvault embedder, with a cache of vectors by content."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from memvault.documents.types import SearchIndex
from memvault.errors import (
    InvalidEmbedder,
)
from memvault.recall.embedders import as_embedder, content_hash, normalise


# -- embedding ----------------------------------------------------------------------------------------------------
class _Function:
    """A plain function ``texts -> vectors`` as an Embedder."""

    def __init__(self, func: Callable[[list[str]], Any], model_id: str | None) -> None:
        self.func = func
        self.model_id = model_id or f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', type(func).__name__)}"
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(np.asarray(self.func(["dimension probe"])).shape[-1])
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.func(list(texts)), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class Embedding:
    """The store's embedder with a content-hash cache (a text is embedded once) and an async path that uses the
    framework object's own coroutine when it has one (``aembed_documents``), else a worker thread."""

    def __init__(self, spec: SearchIndex, max_cached: int = 50_000) -> None:
        embed = spec.embed
        if callable(embed) and not hasattr(embed, "embed") and not hasattr(embed, "embed_documents") and not hasattr(
            embed, "get_text_embedding_batch"
        ):
            self.embedder: Any = _Function(embed, spec.model_id)
        else:
            self.embedder = as_embedder(embed, model_id=spec.model_id, dimension=spec.dims)
        self.dims = spec.dims
        self.max_cached = max_cached
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return str(self.embedder.model_id)

    def _check(self, vectors: Any, count: int) -> np.ndarray:
        try:
            array = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidEmbedder(f"embedder {self.model_id} returned something that is not vectors: {exc}") from None
        if array.ndim != 2 or len(array) != count:
            raise InvalidEmbedder(f"embedder {self.model_id} returned {array.shape} for {count} texts")
        if self.dims is not None and array.shape[1] != self.dims:
            raise InvalidEmbedder(f"embedder {self.model_id} makes {array.shape[1]}-d vectors; the index says "
                                  f"dims={self.dims}")
        if not np.isfinite(array).all():
            raise InvalidEmbedder(f"embedder {self.model_id} returned non-finite numbers")
        return normalise(array) if len(array) else array

    def _lookup(self, keys: list[str]) -> tuple[dict[int, np.ndarray], dict[str, list[int]]]:
        found: dict[int, np.ndarray] = {}
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._cache.get(key)
                if vector is None:
                    missing.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    found[i] = vector
        return found, missing

    def _remember(self, found: dict[int, np.ndarray], missing: dict[str, list[int]], vectors: np.ndarray) -> None:
        with self._lock:
            for (key, rows), vector in zip(missing.items(), vectors, strict=True):
                self._cache[key] = vector
                for i in rows:
                    found[i] = vector
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)

    def _keys(self, texts: Sequence[str], query: bool) -> list[str]:
        return [("q:" if query else "d:") + content_hash(t) for t in texts]

    def _stack(self, found: dict[int, np.ndarray], count: int) -> np.ndarray:
        if not count:
            return np.zeros((0, self.dims or 0), dtype=np.float32)
        return np.stack([found[i] for i in range(count)])

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        found, missing = self._lookup(self._keys(texts, False))
        if missing:
            todo = [texts[rows[0]] for rows in missing.values()]
            self._remember(found, missing, self._check(self.embedder.embed(todo), len(todo)))
        return self._stack(found, len(texts))

    def query(self, text: str) -> np.ndarray:
        found, missing = self._lookup(self._keys([text], True))
        if missing:
            self._remember(found, missing, self._check([self.embedder.embed_query(text)], 1))
        return found[0]

    def _native(self) -> Any:
        obj = getattr(self.embedder, "obj", None)
        return obj if obj is not None and hasattr(obj, "aembed_documents") else None

    async def avectors(self, texts: Sequence[str]) -> np.ndarray:
        found, missing = self._lookup(self._keys(texts, False))
        if missing:
            todo = [texts[rows[0]] for rows in missing.values()]
            native = self._native()
            raw = await native.aembed_documents(todo) if native else await asyncio.to_thread(self.embedder.embed, todo)
            self._remember(found, missing, self._check(raw, len(todo)))
        return self._stack(found, len(texts))

    async def aquery(self, text: str) -> np.ndarray:
        found, missing = self._lookup(self._keys([text], True))
        if missing:
            native = self._native()
            raw = await native.aembed_query(text) if native else await asyncio.to_thread(self.embedder.embed_query, text)
            self._remember(found, missing, self._check([raw], 1))
        return found[0]


