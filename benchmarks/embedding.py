"""Embedding throughput of the offline default model on real chat messages (LoCoMo turns). Prints JSON.

    python benchmarks/embedding.py [--data ../shared/datasets/locomo10.zip] [--messages 1500] [--rounds 3] [--quick]

Interleaved in one process, round by round (the machine is shared; compare ratios, not absolute figures):
- ``memvault``: ``MiniLMEmbedder.embed`` as the indexer calls it (tokenize once, bucket rows by token length,
  16 rows per model call);
- ``fixed_128_floor``: the same onnxruntime session fed the way the model's ``tokenizer.json`` is configured
  (every row padded to 128 tokens, 32 rows per call) - what a straightforward integration does;
- ``query_ms``: one query embedding (p50 / p95).
``flops_per_s`` is the matrix-product work done per second (2 x 10.6M weights x real tokens), to compare with the
machine's float32 peak: the int8 weights are widened to float32 at load, so the model computes in float32.
``--quick`` embeds a few dozen messages once (CI checks that the benchmark runs, never its timings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _cli import parse  # noqa: E402
from _stats import percentile  # noqa: E402
from locomo_recall import load, turns  # noqa: E402

from memvault.recall.embedders import MiniLMEmbedder, normalise  # noqa: E402

WEIGHTS = 10.6e6  # MiniLM-L6 matrix weights outside the embedding tables


def fixed_128(model: MiniLMEmbedder, texts: list[str]) -> np.ndarray:
    tokenizer, session = model._load()
    out = np.empty((len(texts), model.dimension), dtype=np.float32)
    for start in range(0, len(texts), 32):
        rows = [e.ids for e in tokenizer.encode_batch(texts[start : start + 32])]
        ids = np.zeros((len(rows), 128), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = row[:128]
            mask[r, : len(row)] = 1
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[:, :, None].astype(np.float32)
        out[start : start + len(rows)] = normalise((hidden * weights).sum(axis=1) / weights.sum(axis=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "locomo10.zip"))
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parse(parser, messages=48, rounds=1)
    texts = [m.content for conv in load(Path(args.data)) for m in turns(conv)][: args.messages]
    model = MiniLMEmbedder()
    model.embed(texts[:16])  # load and warm up
    tokenizer, _ = model._load()
    tokens = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    rates: dict[str, list[float]] = {"memvault": [], "fixed_128_floor": []}
    agreement = 1.0
    for _ in range(args.rounds):
        for name, run in (("memvault", model.embed), ("fixed_128_floor", lambda t: fixed_128(model, t))):
            started = time.perf_counter()
            vectors = run(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
            if name == "memvault":
                ours = vectors
            else:
                agreement = min(agreement, float((ours * vectors).sum(axis=1).min()))
    query = []
    for text in texts[:50]:
        started = time.perf_counter()
        model.embed_query(text)
        query.append(time.perf_counter() - started)
    best = max(rates["memvault"])
    result: dict[str, Any] = {
        "benchmark": "embedding",
        "messages": len(texts),
        "tokens_mean": round(float(np.mean(tokens)), 1),
        "threads": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "batched_msgs_per_s": {k: [round(v) for v in vs] for k, vs in rates.items()},
        "memvault_vs_fixed_128": round(float(np.median(rates["memvault"]) / np.median(rates["fixed_128_floor"])), 2),
        "flops_per_s": f"{2 * WEIGHTS * sum(tokens) * best / len(texts) / 1e9:.0f} GFLOP/s",
        "min_cosine_vs_fixed_128": round(agreement, 5),
        "query_ms": {"p50": round(percentile(query, 0.5) * 1000, 2), "p95": round(percentile(query, 0.95) * 1000, 2)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
