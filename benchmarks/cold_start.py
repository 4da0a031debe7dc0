"""Cold start: adapter imports against the framework modules they subclass, and the first recall of a new process on
an indexed SQLite file. Prints JSON.

    python benchmarks/cold_start.py [--runs 7] [--messages 2000] [--quick]

Each figure is the median wall time of a new ``python -c ...`` process, cases interleaved run by run (bytecode
cached, as after an install); ``*_ratio`` = (adapter import - bare interpreter) / (framework import - bare
interpreter), goal <= 1.2. ``first_recall``: a new process opens the file and runs one hybrid recall (the
offline model loads on first use), against the same process doing a keyword-only recall (no model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _cli import parse

from memvault import Memory

IMPORTS = {
    "python": "pass",
    "memvault": "import memvault",
    "langchain_framework": "from langchain_core.chat_history import BaseChatMessageHistory",
    "langchain_adapter": "from langchain_memvault import MemvaultChatMessageHistory",
    "langgraph_framework": "from langgraph.checkpoint.base import BaseCheckpointSaver; "
                           "from langchain_core.messages import BaseMessage",
    "langgraph_adapter": "from langgraph.checkpoint.memvault import MemvaultSaver",
    "llamaindex_framework": "from llama_index.core.storage.chat_store.base import BaseChatStore",
    "llamaindex_adapter": "from llama_index.storage.chat_store.memvault import MemvaultChatStore",
}
RECALL = ("import time; t = time.perf_counter(); from memvault import Memory; "
          "Memory({url!r}).recall('what did we say about the puppy', session='s', mode={mode!r}); "
          "print(time.perf_counter() - t)")


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # bytecode cached, as installed


def wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, capture_output=True)
    return time.perf_counter() - started


def inner(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], check=True, env=ENV, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=2000)
    args = parse(parser, runs=1, messages=50)
    for code in IMPORTS.values():  # write the bytecode caches first
        wall(code)
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for _ in range(args.runs):
        for name, code in IMPORTS.items():
            times[name].append(wall(code))
    ms = {name: round(1000 * statistics.median(v), 1) for name, v in times.items()}
    report: dict[str, Any] = {"benchmark": "cold_start", "runs": args.runs, "load_avg": os.getloadavg(),
                              "import_ms": ms}
    for fw in ("langchain", "langgraph", "llamaindex"):
        report[f"{fw}_import_ratio"] = round((ms[f"{fw}_adapter"] - ms["python"])
                                             / (ms[f"{fw}_framework"] - ms["python"]), 2)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'indexed.db'}"
        with Memory(url) as mem:
            mem.session("s").extend([{"role": "user" if i % 2 else "assistant",
                                      "content": f"message {i}: we talked about the weather and a puppy"}
                                     for i in range(args.messages)])
            mem.recall("warm", session="s")
            mem.recall_service.flush(600)
        recall: dict[str, list[float]] = {"hybrid": [], "keyword": []}
        for _ in range(args.runs):
            for mode in recall:
                recall[mode].append(inner(RECALL.format(url=url, mode=mode)))
        report["first_recall_ms"] = {mode: round(1000 * statistics.median(v), 1) for mode, v in recall.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
