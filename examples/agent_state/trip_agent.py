"""An agent that keeps its plan in session state and writes a run log as an artifact, then is inspected with the CLI.

    python examples/agent_state/trip_agent.py --url sqlite:///trip.db      # run the agent (twice: it resumes)
    memvault sessions show trip-42 --url sqlite:///trip.db                 # messages, state, artifact manifest
    memvault artifacts list trip-42 --url sqlite:///trip.db
    memvault artifacts get trip-42 logs/run.jsonl --url sqlite:///trip.db  # the latest run's log

The "model" is scripted (no network, no key): each step picks the next task of the plan. What matters is what is
stored: the plan advances with compare-and-set, so two copies of this agent running at once never do one step
twice, and each run's log is a new version of one artifact (concurrent runs get distinct versions).
"""

from __future__ import annotations

import argparse
import json
import time

from memvault import Memory, StateConflict

PLAN = ["search flights", "compare hotels", "book the hotel", "email the itinerary"]


def step(session_state: dict, task: str) -> dict:
    """The agent's work on one task (scripted): the new state after it."""
    done = [*session_state.get("done", []), task]
    return session_state | {"done": done, "next": len(done)}


def run(url: str, session_id: str = "trip-42", steps: int = 2) -> dict:
    """Do up to ``steps`` tasks of the plan; returns the state after the run."""
    with Memory(url) as mem:
        s = mem.session(session_id, metadata={"kind": "trip"})
        log: list[dict] = []
        for _ in range(steps):
            current = s.state.get()
            position = current.data.get("next", 0)
            if position >= len(PLAN):
                break
            task = PLAN[position]
            s.add("assistant", f"Working on: {task}")
            try:  # claims the step: a second agent that read the same version gets StateConflict and rereads
                new = s.state.set(step(current.data, task), expected_version=current.version, actor="trip-agent")
            except StateConflict:
                continue
            log.append({"at": time.time(), "task": task, "state_version": new.version})
        s.update_metadata({"progress": f"{s.state.get().data.get('next', 0)}/{len(PLAN)}"})
        lines = b"".join(json.dumps(entry).encode() + b"\n" for entry in log)
        version = s.artifacts.save("logs/run.jsonl", lines, content_type="application/x-ndjson")  # one per run
        print(f"run logged as {version.url} ({version.size} bytes, sha256 {version.sha256[:12]}…)")
        return s.state.get().data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="memvault URL (default: the embedded SQLite)")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(run(args.url, steps=args.steps), indent=2))


if __name__ == "__main__":
    main()
