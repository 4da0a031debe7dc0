"""A "swap one class" chat turn with the full history, printed as JSON.

``MemvaultChatMessageHistory(session_id, url=...)`` without a window is what ``RunnableWithMessageHistory`` gets
when a user swaps ``InMemoryChatMessageHistory`` for it: each turn reads ``.messages`` (the whole session) and
appends a human and an AI message. Measured on SQLite at several history sizes, each turn by a NEW history object
(as ``get_session_history`` makes one per call), against the same turn that decodes and converts the whole session
each time (what it did before the history cache: ``session.messages(start=0)`` bypasses the cache), interleaved.
Figures: p50 per size, the ratio uncached / cached, and the flatness of the cached turn (p50 at the largest size /
p50 at the smallest).

    python benchmarks/history_turn.py [--sizes 100,1000,10000] [--turns 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _cli import parse
from _stats import percentile
from langchain_core.messages import AIMessage, HumanMessage
from langchain_memvault import MemvaultChatMessageHistory
from langchain_memvault._messages import from_memvault_many

from memvault import Memory

TEXT = "Could you remind me what we decided about the venue for Saturday, and whether Sam brings the speakers?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parse(parser, sizes="100", turns=5, rounds=1)
    sizes = [int(x) for x in args.sizes.split(",")]
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        mem = Memory(f"sqlite:///{Path(tmp) / 'h.db'}", embedder="hash")
        for size in sizes:
            s = mem.session(f"s{size}")
            for i in range(0, size, 500):
                s.extend([{"role": "user" if j % 2 == 0 else "assistant", "content": TEXT}
                          for j in range(i, min(size, i + 500))])
        samples: dict[str, list[float]] = {f"{kind}-{size}": [] for size in sizes for kind in ("cached", "uncached")}
        for _ in range(args.rounds):
            for size in sizes:
                for kind in ("cached", "uncached"):
                    gc.disable()
                    try:
                        for _ in range(args.turns):
                            t = time.perf_counter()
                            history = MemvaultChatMessageHistory(f"s{size}", memory=mem)
                            if kind == "cached":
                                got = history.messages
                            else:
                                got = from_memvault_many(history.session.messages(start=0))
                            history.add_messages([HumanMessage(TEXT), AIMessage(TEXT)])
                            samples[f"{kind}-{size}"].append(time.perf_counter() - t)
                    finally:
                        gc.enable()
                    assert len(got) >= size
        mem.close()
    for size in sizes:
        cached = percentile(samples[f"cached-{size}"], 0.5)
        uncached = percentile(samples[f"uncached-{size}"], 0.5)
        out[str(size)] = {"cached_turn_p50_ms": round(cached * 1000, 3), "uncached_turn_p50_ms": round(uncached * 1000, 3),
                          "cached_turn_p95_ms": round(percentile(samples[f"cached-{size}"], 0.95) * 1000, 3),
                          "x_faster": round(uncached / cached, 1)}
    out["flatness"] = round(out[str(sizes[-1])]["cached_turn_p50_ms"] / out[str(sizes[0])]["cached_turn_p50_ms"], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
