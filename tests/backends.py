"""The backend registry for the conformance suite: name -> factory(request, token, tmp_path) -> (target, options).

``token`` is unique per test: a factory must give each token its own empty store (file, key prefix, schema, ...)
and reach the same data when called again with the same token. Servers (Redis, PostgreSQL) come from
session-scoped fixtures in ``tests/harness/``; a missing server is an error, never a skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from tests.harness import files, postgres, redis

Factory = Callable[[pytest.FixtureRequest, str, Path], tuple[Any, dict[str, Any]]]


def _memory(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"memory://{token}", {}


def _sqlite(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"sqlite:///{tmp_path / (token + '.db')}", {}


BACKENDS: dict[str, Factory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    **files.FACTORIES,
    **redis.FACTORIES,
    **postgres.FACTORIES,
}


MemoryFactory = Callable[..., Memory]


@contextmanager
def memory_factory(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, prefix: str = "t"
) -> Iterator[MemoryFactory]:
    """A ``factory(**options) -> Memory`` on ``backend``; every call reaches the same (fresh) data. Closes them all."""
    token = f"{prefix}{uuid.uuid4().hex[:12]}"
    opened: list[Memory] = []

    def factory(**options: Any) -> Memory:
        target, backend_options = BACKENDS[backend](request, token, tmp_path)
        mem = Memory(target, **{**backend_options, **options})
        opened.append(mem)
        return mem

    try:
        yield factory
    finally:
        for mem in opened:
            mem.close()
