"""Test harness for the files backend: server fixtures (if any) and conformance-suite factories."""

from __future__ import annotations

from typing import Any

#: name -> factory(request, token, tmp_path) -> (target, options); see tests/backends.py
FACTORIES: dict[str, Any] = {}
