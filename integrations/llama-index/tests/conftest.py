"""Fixtures for the LlamaIndex adapter's tests: a memvault Memory on SQLite (the default), PostgreSQL and memory.

Backends come from the core's conformance registry (``tests/backends.py``), so PostgreSQL runs against the real
server the core's harness starts (a missing server is an error there, never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memvault import Memory
from tests.backends import BACKENDS, MemoryFactory, memory_factory

LI_BACKENDS = [name for name in ("sqlite", "postgres", "memory") if name in BACKENDS]
@pytest.fixture(params=LI_BACKENDS)
def li_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_li_memory(li_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryFactory]:
    """``make_li_memory(**options)`` -> a Memory on the parametrized backend; every call reaches the same data."""
    with memory_factory(li_backend, request, tmp_path, prefix="li") as factory:
        yield factory


@pytest.fixture
def li_memory(make_li_memory: MemoryFactory) -> Memory:
    return make_li_memory()
