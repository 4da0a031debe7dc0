"""Shared fixtures: the backend registry every conformance test is parametrized over, and a fake clock.

A backend joins the suite by adding a factory to ``BACKENDS`` or ``FLAVOURS`` (see ``backends.py``). A factory gets
the pytest ``request`` (to pull session-scoped server fixtures) and a per-test unique token, and returns a
URL/Store/client plus options; calling it twice with the same token must reach the same data (used for "reopen" tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from memvault import Memory
from memvault.testing.conformance import FakeClock  # the shipped one (tests import it from here too)
from tests.backends import BACKENDS, FLAVOURS, MemoryFactory, memory_factory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


#: conformance modules of the store-level contract, which also run over FLAVOURS (clients and pools handed to the
#: store, the spool); every other module runs over BACKENDS only (the flavours add nothing to recall or fuzzing)
FLAVOURED_MODULES = frozenset({"test_sessions", "test_entries", "test_hardening"})


def _parametrized(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0]
        if name in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the ``backend`` fixture: every backend, plus the flavours in FLAVOURED_MODULES."""
    if "backend" not in metafunc.fixturenames or _parametrized(metafunc, "backend"):
        return
    names = sorted(BACKENDS)
    if metafunc.module.__name__.rsplit(".", 1)[-1] in FLAVOURED_MODULES:
        names += sorted(FLAVOURS)
    metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture
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
