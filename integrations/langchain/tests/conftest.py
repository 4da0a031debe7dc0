"""Fixtures for the LangChain adapter's tests: a Memory on each backend of the core's registry.

Backends come from ``tests/backends.py`` (the conformance registry), so PostgreSQL and Redis run against the real
servers the core's harness starts (a missing server is an error there, never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memvault import Memory
from tests.backends import BACKENDS, MemoryFactory, memory_factory


@pytest.fixture(params=sorted(BACKENDS))
def lc_backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_lc_memory(lc_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemoryFactory]:
    """``make_lc_memory(**options)`` -> a Memory on the parametrized backend; every call reaches the same data."""
    with memory_factory(lc_backend, request, tmp_path, prefix="lc") as factory:
        yield factory


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
