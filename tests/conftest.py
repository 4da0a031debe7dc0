"""Shared fixtures: the backend registry every conformance test is parametrized over, and a fake clock.

A backend joins the suite by adding a factory to ``BACKENDS`` (see ``backends.py``). A factory gets the pytest
``request`` (to pull session-scoped server fixtures) and a per-test unique token, and returns a URL/Store/client
plus options; calling it twice with the same token must reach the same data (used for "reopen" tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from memvault import Memory
from tests.backends import BACKENDS, MemoryFactory, memory_factory


class FakeClock:
    """An injectable clock (epoch seconds) that only moves when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_memory(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[MemoryFactory]:
    """``make_memory(**options)`` -> a Memory on the parametrized backend; every call reaches the same data."""
    with memory_factory(backend, request, tmp_path) as factory:
        yield factory


@pytest.fixture
def mem(make_memory: MemoryFactory) -> Memory:
    return make_memory()
