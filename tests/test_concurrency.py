"""Several processes append to ONE session at the same time: every message lands exactly once, seqs run 1..N without
gaps, and each writer's own order is kept. Each process opens ``Memory(url)`` itself (no shared objects), and all of
them start appending at the same moment (they wait on a "go" line after opening the store).

The URL comes from the conformance registry (``tests/backends.py``), so a backend's server fixtures are reused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from memvault import Memory
from tests.backends import BACKENDS

# backend name (as registered in tests/backends.py) -> (processes, appends per process).
# Redis and PostgreSQL helpers: add ONE line each here, e.g.  "redis": (8, 500),  "postgres": (8, 500),
WRITERS: dict[str, tuple[int, int]] = {
    "sqlite": (4, 250),
    "file": (4, 250),
    "postgres": (8, 500),
    "redis": (8, 500),
    "redis-cluster": (8, 500),
}

WORKER = r"""
import json, sys
from memvault import Memory

url, writer, n, options = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
with Memory(url, **options) as mem:
    session = mem.session("shared")
    print("ready", flush=True)
    sys.stdin.readline()  # start line: every writer begins at once
    for i in range(n):
        session.add("user", f"w{writer}-{i}", metadata={"w": writer, "i": i})
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(WRITERS))
def test_concurrent_appends_from_several_processes(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    processes, per_process = WRITERS[backend]
    target, options = BACKENDS[backend](request, f"c{uuid.uuid4().hex[:12]}", tmp_path)
    assert isinstance(target, str), "the concurrency test needs a URL that other processes can open"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, target, str(w), str(per_process), json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    try:
        for w in workers:
            line = w.stdout.readline()  # type: ignore[union-attr]
            assert line.strip() == "ready", f"a writer failed to open {target}: {w.stderr.read()}"  # type: ignore[union-attr]
        for w in workers:
            w.stdin.write("go\n")  # type: ignore[union-attr]
            w.stdin.flush()  # type: ignore[union-attr]
        for w in workers:
            out, err = w.communicate(timeout=600)
            assert w.returncode == 0 and out.strip() == "done", f"a writer failed: {err}"
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()

    total = processes * per_process
    with Memory(target, **options) as mem:
        messages = mem.session("shared").messages()
        info = mem.get_session("shared")
        tail = mem.session("shared").messages(last=10)
    assert len(messages) == total
    assert [m.seq for m in messages] == list(range(1, total + 1))  # strictly increasing, no gaps
    assert len({m.id for m in messages}) == total  # no duplicates
    assert len({m.text for m in messages}) == total
    for w in range(processes):
        mine = [m.metadata["i"] for m in messages if m.metadata["w"] == w]
        assert mine == list(range(per_process)), f"writer {w}'s messages are missing or out of order"
        assert all(m.text == f"w{w}-{m.metadata['i']}" for m in messages if m.metadata["w"] == w)
    assert (info.message_count, info.last_seq) == (total, total)
    assert [m.seq for m in tail] == list(range(total - 9, total + 1))
