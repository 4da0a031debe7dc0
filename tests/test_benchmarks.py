"""Every benchmark runs end to end in its ``--quick`` mode and prints a JSON report (timings are never checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_every_benchmark_is_listed() -> None:
    assert {"core.py", "embedding.py", "recall_scale.py", "postgres_backend.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_quick(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMVAULT_BENCH_")}  # own servers, as a user's run
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"], capture_output=True, text=True,
                          timeout=600, env=env, cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stderr[-4000:]
    start = proc.stdout.index("{")
    report, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
    assert isinstance(report, dict) and report, proc.stdout[-2000:]
