"""The backend registry for the conformance suite: name -> factory(request, token, tmp_path) -> (target, options).

Servers (Redis, PostgreSQL) come from session-scoped fixtures in ``tests/servers.py``; a missing server is an error,
never a skip.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Factory = Callable[[pytest.FixtureRequest, str, Path], tuple[Any, dict[str, Any]]]


def _memory(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"memory://{token}", {}


def _sqlite(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"sqlite:///{tmp_path / (token + '.db')}", {}


BACKENDS: dict[str, Factory] = {
    "memory": _memory,
    "sqlite": _sqlite,
}
