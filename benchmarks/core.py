"""Core benchmark: append latency and per-turn cost by history size, per backend. Prints JSON.

per-turn = read the last 20 messages + append 2 (what a chat app does each turn). The history is held at exactly
the given size: the 2 appended messages are removed (untimed) after each turn.

    python benchmarks/core.py [--sizes 10,100,1000,10000] [--turns 200] [--backends memory,sqlite,file]

``sqlite_recall_tables``: appends of a process that never recalls, into a SQLite file where recall was used (its
tables and triggers present) against a file where it never was, interleaved in rounds; ``ratio`` is the cost
the recall tables add to every later append (goal <= 1.3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _cli import parse
from _stats import percentile

from memvault import Memory, Message


def fill(session: Any, size: int) -> None:
    batch = 1000
    for start in range(0, size, batch):
        session.extend(
            Message("user" if i % 2 == 0 else "assistant", f"message {i}: " + "lorem ipsum dolor sit amet " * 4)
            for i in range(start, min(size, start + batch))
        )


def measure(url: str, size: int, turns: int) -> dict[str, Any]:
    with Memory(url) as mem:
        s = mem.session(f"bench-{size}")
        s.clear()
        fill(s, size)
        appends: list[float] = []
        per_turn: list[float] = []
        for i in range(turns):
            t0 = time.perf_counter()
            m = s.add("user", f"append probe {i}")
            appends.append((time.perf_counter() - t0) * 1000)
            s.delete_messages([m.id])
            t0 = time.perf_counter()
            window = s.messages(last=20)
            added = s.extend([Message("user", f"question {i}"), Message("assistant", f"answer {i}")])
            per_turn.append((time.perf_counter() - t0) * 1000)
            assert len(window) == min(20, size)
            s.delete_messages([a.id for a in added])
        assert s.count() == size
        return {
            "append_p50_ms": round(percentile(appends, 0.5), 4),
            "append_p95_ms": round(percentile(appends, 0.95), 4),
            "turn_p50_ms": round(percentile(per_turn, 0.5), 4),
            "turn_p95_ms": round(percentile(per_turn, 0.95), 4),
            "turn_mean_ms": round(statistics.fmean(per_turn), 4),
        }


def recall_tables_cost(workdir: Path, appends: int, rounds: int = 10) -> dict[str, Any]:
    urls = {"without": f"sqlite:///{workdir / 'plain.db'}", "with": f"sqlite:///{workdir / 'recall.db'}"}
    for name, url in urls.items():
        with Memory(url, embedder="hash") as mem:
            mem.session("seed").add("user", "seed message about the harbour")
            if name == "with":
                mem.recall("harbour", session="seed")
                mem.recall_service.flush(60)
    samples: dict[str, list[float]] = {name: [] for name in urls}
    mems = {name: Memory(url) for name, url in urls.items()}  # recall never used in this process
    try:
        for r in range(rounds):
            for name, mem in mems.items():
                s = mem.session(f"round-{r}")
                for i in range(appends):
                    t0 = time.perf_counter()
                    s.add("user", f"we went hiking last weekend and the weather was great {i}")
                    samples[name].append((time.perf_counter() - t0) * 1000)
    finally:
        for mem in mems.values():
            mem.close()
    out: dict[str, Any] = {name: {"append_p50_ms": round(percentile(v, 0.5), 4),
                                  "append_p95_ms": round(percentile(v, 0.95), 4)} for name, v in samples.items()}
    out["ratio"] = round(out["with"]["append_p50_ms"] / out["without"]["append_p50_ms"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--backends", default="memory,sqlite,file")
    args = parse(parser, sizes="10,100", turns=10)
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="memvault-bench-"))
    urls = {"memory": "memory://bench", "sqlite": f"sqlite:///{workdir / 'bench.db'}", "file": f"file://{workdir / 'files'}"}
    report: dict[str, Any] = {"benchmark": "core", "turn": "read last 20 + append 2", "turns": args.turns, "results": {}}
    for name in args.backends.split(","):
        rows = {str(size): measure(urls[name], size, args.turns) for size in sizes}
        small, large = rows[str(sizes[0])], rows[str(sizes[-1])]
        rows["flatness_turn_p50_ratio"] = round(large["turn_p50_ms"] / small["turn_p50_ms"], 3)  # type: ignore[assignment]
        report["results"][name] = rows
    if "sqlite" in args.backends.split(","):
        report["sqlite_recall_tables"] = recall_tables_cost(workdir, args.turns)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
