"""examples/agent_state: the trip agent resumes across runs, two copies at once never do a step twice, and what it
stored is what the CLI shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from memvault import Memory
from memvault.cli import app

AGENT = Path(__file__).resolve().parents[1] / "examples" / "agent_state" / "trip_agent.py"
PLAN = ["search flights", "compare hotels", "book the hotel", "email the itinerary"]


def _agent(url: str, steps: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(AGENT), "--url", url, "--steps", str(steps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_trip_agent_resumes_and_is_inspected_with_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trip.db'}"
    for _ in range(2):  # two runs of two steps: the second resumes where the first stopped
        proc = _agent(url, 2)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Memory(url) as mem:
        s = mem.session("trip-42")
        assert s.state.get().data == {"done": PLAN, "next": 4} and s.state.get().version == 4
        assert [m.text for m in s.messages()] == [f"Working on: {task}" for task in PLAN]
        assert s.info().metadata == {"kind": "trip", "progress": "4/4"}
        assert [v.version for v in s.artifacts.versions("logs/run.jsonl")] == [1, 2]
        runs = [[json.loads(line) for line in s.artifacts.load("logs/run.jsonl", version=v).splitlines()]
                for v in (1, 2)]
    assert [[entry["task"] for entry in run] for run in runs] == [PLAN[:2], PLAN[2:]]
    assert [entry["state_version"] for run in runs for entry in run] == [1, 2, 3, 4]
    runner = CliRunner()
    shown = runner.invoke(app, ["artifacts", "get", "trip-42", "logs/run.jsonl", "--url", url])
    assert shown.exit_code == 0, shown.output
    assert [json.loads(line)["task"] for line in shown.output.splitlines() if line.strip()] == PLAN[2:]
    show = runner.invoke(app, ["sessions", "show", "trip-42", "--url", url])
    assert show.exit_code == 0 and "state v4" in show.output and "logs/run.js" in show.output, show.output


def test_two_agents_at_once_never_do_a_step_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trip.db'}"
    agents = [_agent(url, 4) for _ in range(2)]
    for proc in agents:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Memory(url) as mem:
        s = mem.session("trip-42")
        state = s.state.get()
        assert state.data["done"] == PLAN and state.version == 4  # compare-and-set: each step claimed once
        runs = [[json.loads(line)["task"] for line in s.artifacts.load("logs/run.jsonl", version=v).splitlines()]
                for v in (1, 2)]
    assert sorted(task for run in runs for task in run) == sorted(PLAN)  # two versions: each run's own log
