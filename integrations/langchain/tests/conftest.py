"""Fixtures for the LangChain adapter's tests: a Memory on each backend of the core's registry.

Backends come from ``tests/backends.py`` (the conformance registry), so PostgreSQL and Redis run against the real
servers the core's harness starts (a missing server is an error there, never a skip).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from tests.backends import BACKENDS

MemoryFactory = Callable[..., Memory]


@pytest.fixture(params=sorted(BACKENDS))
def lc_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_lc_memory(lc_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryFactory]:
    """``make_lc_memory(**options)`` -> a Memory on the parametrized backend; every call reaches the same data."""
    token = f"lc{uuid.uuid4().hex[:12]}"
    opened: list[Memory] = []

    def factory(**options: Any) -> Memory:
        target, backend_options = BACKENDS[lc_backend](request, token, tmp_path)
        mem = Memory(target, **{**backend_options, **options})
        opened.append(mem)
        return mem

    yield factory
    for mem in opened:
        mem.close()


@pytest.fixture
def lc_memory(make_lc_memory: MemoryFactory) -> Memory:
    return make_lc_memory()


@pytest.fixture
def memvault_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated embedded default (``MEMVAULT_HOME``) for tests of the no-argument constructors."""
    home = tmp_path / "home"
    monkeypatch.setenv("MEMVAULT_HOME", str(home))
    monkeypatch.delenv("MEMVAULT_URL", raising=False)
    return home
