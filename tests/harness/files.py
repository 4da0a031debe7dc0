"""Test harness for the files backend: conformance-suite factories (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _file(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return f"file://{tmp_path / token}", {}


#: name -> factory(request, token, tmp_path) -> (target, options); see tests/backends.py
FACTORIES: dict[str, Any] = {"file": _file}
