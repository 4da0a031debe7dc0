"""Redis backend benchmark: append latency and per-turn cost by history size, side by side with the peers. JSON out.

Peers, all on the same redis-server in the same run:
- ``raw-redis-py``: RPUSH / LRANGE on one list per session — the physical floor (no ids, no seq, no TTL, no index).
- ``memvault-redis`` (and ``memvault-redis-async`` for appends through ``redis.asyncio``).
- ``llamaindex-redis``: ``llama_index.storage.chat_store.redis.RedisChatStore`` (benchmark-only dependency:
  ``pip install llama-index-storage-chat-store-redis``); its API has no tail read, so a turn reads the whole list
  (what ``ChatMemoryBuffer`` does).
- ``memvault-redis-cluster`` with ``--cluster`` (3 local masters).

per-turn = read the window the app needs (last 20) + append 2. The history is held at the given size: appended
messages are removed again (untimed).

    python benchmarks/redis_backend.py [--url redis://…] [--sizes 10,100,1000,5000] [--turns 200] [--cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from _cli import parse
from _stats import summary

from memvault import Memory, Message

TEXT = "lorem ipsum dolor sit amet " * 4


# -- servers ------------------------------------------------------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 <= 65535:
            return port


def start_server(workdir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH (apt-get install redis-server) and no --url was given")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir),
         *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def start_cluster(workdir: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    nodes = [start_server(workdir / f"n{i}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
             for i in range(3)]
    addresses = [f"127.0.0.1:{port}" for _, port in nodes]
    subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                   check=True, capture_output=True)
    for _ in range(200):
        if all(b"cluster_state:ok" in subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"],
                                                       capture_output=True).stdout for _, p in nodes):
            break
        time.sleep(0.1)
    return [p for p, _ in nodes], "redis+cluster://" + ",".join(addresses)


# -- peers: each keeps one session at the given size; the runner interleaves them turn by turn so that load from
# -- other processes on the machine hits every peer alike (ratios stay meaningful on a busy box) ----------------------


class Peer:
    turn_every = 1  # run the (expensive) turn only every n-th round

    def setup(self, size: int) -> None: ...
    def append(self, i: int) -> float: ...  # timed ms; the probe is removed again untimed
    def turn(self, i: int) -> float: ...  # timed ms; the 2 messages are removed again untimed
    def teardown(self) -> None: ...


class MemvaultPeer(Peer):
    def __init__(self, url: str) -> None:
        self.mem = Memory(url, prefix=f"bench:{uuid.uuid4().hex[:8]}:")

    def setup(self, size: int) -> None:
        self.size = size
        self.s = self.mem.session(f"bench-{size}")
        for start in range(0, size, 1000):
            self.s.extend(Message("user" if i % 2 == 0 else "assistant", f"message {i}: {TEXT}")
                          for i in range(start, min(size, start + 1000)))

    def append(self, i: int) -> float:
        t0 = time.perf_counter()
        m = self.s.add("user", f"append probe {i}")
        ms = (time.perf_counter() - t0) * 1000
        self.s.delete_messages([m.id])
        return ms

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        window = self.s.messages(last=20)
        added = self.s.extend([Message("user", f"question {i}"), Message("assistant", f"answer {i}")])
        ms = (time.perf_counter() - t0) * 1000
        assert len(window) == min(20, self.size)
        self.s.delete_messages([m.id for m in added])
        return ms

    def teardown(self) -> None:
        assert self.s.count() == self.size
        self.s.delete()


class MemvaultAsyncPeer(MemvaultPeer):
    """The same through ``redis.asyncio`` (timed inside the event loop)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loop = asyncio.new_event_loop()

    def append(self, i: int) -> float:
        async def go() -> float:
            t0 = time.perf_counter()
            m = await self.s.aadd("user", f"append probe {i}")
            ms = (time.perf_counter() - t0) * 1000
            await self.s.adelete_messages([m.id])
            return ms

        return self.loop.run_until_complete(go())

    def turn(self, i: int) -> float:
        async def go() -> float:
            t0 = time.perf_counter()
            await self.s.amessages(last=20)
            added = await self.s.aextend([Message("user", f"question {i}"), Message("assistant", f"answer {i}")])
            ms = (time.perf_counter() - t0) * 1000
            await self.s.adelete_messages([a.id for a in added])
            return ms

        return self.loop.run_until_complete(go())


class RawPeer(Peer):
    """RPUSH / LRANGE on one list: the floor (no ids, seqs, TTL, index or atomic multi-key work)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    @staticmethod
    def body(text: str) -> str:
        return json.dumps({"role": "user", "content": text, "id": str(uuid.uuid4())})

    def setup(self, size: int) -> None:
        self.size = size
        self.key = f"bench:raw:{uuid.uuid4().hex}"
        for start in range(0, size, 1000):
            self.client.rpush(self.key, *(self.body(f"message {i}: {TEXT}") for i in range(start, min(size, start + 1000))))

    def append(self, i: int) -> float:
        t0 = time.perf_counter()
        self.client.rpush(self.key, self.body(f"append probe {i}"))
        ms = (time.perf_counter() - t0) * 1000
        self.client.rpop(self.key)
        return ms

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        window = [json.loads(x) for x in self.client.lrange(self.key, -20, -1)]
        self.client.rpush(self.key, self.body(f"question {i}"), self.body(f"answer {i}"))
        ms = (time.perf_counter() - t0) * 1000
        assert len(window) == min(20, self.size)
        self.client.rpop(self.key, 2)
        return ms

    def teardown(self) -> None:
        assert self.client.llen(self.key) == self.size
        self.client.delete(self.key)


class LlamaIndexPeer(Peer):
    """``RedisChatStore``: its API has no tail read, so a turn reads the whole list (as ChatMemoryBuffer does)."""

    def __init__(self, url: str) -> None:
        from llama_index.core.llms import ChatMessage
        from llama_index.storage.chat_store.redis import RedisChatStore

        self.ChatMessage = ChatMessage
        self.store = RedisChatStore(redis_url=url)

    def setup(self, size: int) -> None:
        self.size = size
        self.turn_every = 1 if size <= 100 else 5
        self.key = f"bench:llama:{uuid.uuid4().hex}"
        filler = [self.ChatMessage(role="user", content=f"message {i}: {TEXT}").model_dump_json() for i in range(size)]
        for start in range(0, size, 1000):  # bulk fill through its own client (add_message is one RPUSH each)
            self.store._redis_client.rpush(self.key, *filler[start : start + 1000])

    def append(self, i: int) -> float:
        t0 = time.perf_counter()
        self.store.add_message(self.key, self.ChatMessage(role="user", content=f"probe {i}"))
        ms = (time.perf_counter() - t0) * 1000
        self.store.delete_last_message(self.key)
        return ms

    def turn(self, i: int) -> float:
        t0 = time.perf_counter()
        history = self.store.get_messages(self.key)
        self.store.add_message(self.key, self.ChatMessage(role="user", content=f"question {i}"))
        self.store.add_message(self.key, self.ChatMessage(role="assistant", content=f"answer {i}"))
        ms = (time.perf_counter() - t0) * 1000
        assert len(history) == self.size
        self.store.delete_last_message(self.key)
        self.store.delete_last_message(self.key)
        return ms

    def teardown(self) -> None:
        self.store.delete_messages(self.key)


def run(factories: dict[str, Callable[[], Peer]], sizes: list[int], rounds: int) -> dict[str, dict[str, Any]]:
    """Every (peer, size) pair keeps its own session; each round runs all pairs in a rotating order."""
    pairs: dict[tuple[str, int], Peer] = {}
    for size in sizes:
        for name, make in factories.items():
            peer = make()
            peer.setup(size)
            pairs[(name, size)] = peer
    appends: dict[tuple[str, int], list[float]] = {key: [] for key in pairs}
    turns: dict[tuple[str, int], list[float]] = {key: [] for key in pairs}
    keys = list(pairs)
    for i in range(rounds):
        order = keys[i % len(keys):] + keys[: i % len(keys)]
        for key in order:
            appends[key].append(pairs[key].append(i))
        for key in order:
            if i % pairs[key].turn_every == 0:
                turns[key].append(pairs[key].turn(i))
    for peer in pairs.values():
        peer.teardown()
    out: dict[str, dict[str, Any]] = {name: {} for name in factories}
    for name, size in pairs:
        out[name][str(size)] = summary(appends[(name, size)], turns[(name, size)])
    return out


# -- main ---------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("MEMVAULT_BENCH_REDIS_URL"))
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--turns", type=int, default=400, help="rounds per size (each peer: 1 append + 1 turn)")
    parser.add_argument("--cluster", action="store_true", help="also run memvault on a local 3-master Cluster")
    args = parse(parser, sizes="10", turns=10)
    sizes = [int(x) for x in args.sizes.split(",")]
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="memvault-bench-redis-"))
    try:
        url = args.url
        if not url:
            proc, port = start_server(tmp / "standalone")
            procs.append(proc)
            url = f"redis://127.0.0.1:{port}/0"
        factories: dict[str, Callable[[], Peer]] = {
            "raw-redis-py": lambda: RawPeer(url),
            "memvault-redis": lambda: MemvaultPeer(url),
            "memvault-redis-async": lambda: MemvaultAsyncPeer(url),
            "llamaindex-redis": lambda: LlamaIndexPeer(url),
        }
        errors: dict[str, str] = {}
        try:
            LlamaIndexPeer(url)
        except Exception as exc:  # missing package, or it cannot run on plain Redis: a result, not a crash
            errors["llamaindex-redis"] = f"{type(exc).__name__}: {exc} (pip install llama-index-storage-chat-store-redis)"
            del factories["llamaindex-redis"]
        if args.cluster:
            cluster_procs, cluster_url = start_cluster(tmp / "cluster")
            procs += cluster_procs
            factories["memvault-redis-cluster"] = lambda: MemvaultPeer(cluster_url)
        server = redis.Redis.from_url(url).info("server")
        results: dict[str, Any] = run(factories, sizes, args.turns)
        for name, error in errors.items():
            results[name] = {"error": error}
        mv, raw = results["memvault-redis"], results["raw-redis-py"]
        first, last = str(sizes[0]), str(sizes[-1])
        ratios: dict[str, Any] = {
            f"memvault_append_p50_over_raw_rpush@{s}": round(mv[str(s)]["append_p50_ms"] / raw[str(s)]["append_p50_ms"], 2)
            for s in sizes
        }
        ratios[f"memvault_turn@{last}_over_turn@{first}"] = round(mv[last]["turn_p50_ms"] / mv[first]["turn_p50_ms"], 3)
        ratios[f"raw_turn@{last}_over_turn@{first}"] = round(raw[last]["turn_p50_ms"] / raw[first]["turn_p50_ms"], 3)
        ratios[f"memvault_turn_over_raw_turn@{last}"] = round(mv[last]["turn_p50_ms"] / raw[last]["turn_p50_ms"], 2)
        llama = results["llamaindex-redis"].get(last, {})
        if "turn_p50_ms" in llama:
            ratios[f"llamaindex_turn_over_memvault_turn@{last}"] = round(llama["turn_p50_ms"] / mv[last]["turn_p50_ms"], 1)
        append_ratio = max(v for k, v in ratios.items() if k.startswith("memvault_append_p50_over_raw"))
        goals = {
            "append_p50_within_3x_raw_rpush": append_ratio <= 3.0,
            f"turn@{last}_p50_le_2ms": mv[last]["turn_p50_ms"] <= 2.0,
            "turn_flat_le_1.3": ratios[f"memvault_turn@{last}_over_turn@{first}"] <= 1.3,
        }
        print(json.dumps({
            "benchmark": "redis_backend",
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
            "server": {"redis_version": server.get("redis_version"), "url": url.split("@")[-1]},
            "per_turn": "read last 20 (llamaindex: whole history, its API has no tail read) + append 2",
            "sizes": sizes,
            "results": results,
            "ratios": ratios,
            "goals": goals,
        }, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
