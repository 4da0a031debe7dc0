"""A second process for the LangGraph suite: reads JSON jobs (one per line) on stdin, answers one JSON line each.

Every job opens a NEW saver / store from the registries in ``conftest.py`` (imported by path) on the ``location`` it
is given, does its work and closes it, so what it reads must really be in storage. Answers:
``{"id": n, "ok": true, "result": ...}`` or ``{"id": n, "ok": false, "error": "<traceback>"}``.

Jobs: ``ping``; ``agent`` (run turns of a ``lg_fakes.build_agent`` agent: ``inputs`` = list of user texts, or
``resume`` = a ``Command(resume=...)`` value; ``mode`` "sync" or "async"); ``state`` (the thread's current
messages); ``store_get``; ``bytestore_mget``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

_spec = importlib.util.spec_from_file_location("lg_conftest", HERE / "conftest.py")
assert _spec is not None and _spec.loader is not None
registry = importlib.util.module_from_spec(_spec)
sys.modules["lg_conftest"] = registry  # dataclasses look their module up while the module runs
_spec.loader.exec_module(registry)

from langgraph.types import Command  # noqa: E402
from lg_fakes import TOOL_LOG_ENV, build_agent, signatures  # noqa: E402


def _config(job: dict[str, Any]) -> dict[str, Any]:
    return {"configurable": {"thread_id": job["thread_id"]}}


def _summary(agent: Any, state: Any, result: Any) -> dict[str, Any]:
    interrupts = [i.value for i in (result or {}).get("__interrupt__", [])] if isinstance(result, dict) else []
    return {
        "messages": signatures(state.values.get("messages", [])),
        "interrupts": interrupts,
        "next": list(state.next),
        "checkpoint_id": state.config["configurable"]["checkpoint_id"] if state.config else None,
    }


def _inputs(job: dict[str, Any]) -> list[Any]:
    if "resume" in job:
        return [Command(resume=job["resume"])]
    return [{"messages": [{"role": "user", "content": text}]} for text in job.get("inputs", [])]


def agent_sync(job: dict[str, Any]) -> dict[str, Any]:
    spec = registry.SAVERS[job["saver"]]
    with spec.open(job["location"]) as saver:
        agent = build_agent(job.get("kind", "basic"), saver)
        result = None
        for payload in _inputs(job):
            result = agent.invoke(payload, _config(job))
        return _summary(agent, agent.get_state(_config(job)), result)


async def agent_async(job: dict[str, Any]) -> dict[str, Any]:
    spec = registry.SAVERS[job["saver"]]
    async with spec.aopen(job["location"]) as saver:
        agent = build_agent(job.get("kind", "basic"), saver)
        result = None
        for payload in _inputs(job):
            result = await agent.ainvoke(payload, _config(job))
        return _summary(agent, await agent.aget_state(_config(job)), result)


def handle(job: dict[str, Any]) -> Any:
    op = job["op"]
    if op == "ping":
        return "pong"
    if "tool_log" in job:
        os.environ[TOOL_LOG_ENV] = job["tool_log"]
    if op in ("agent", "state"):
        if op == "state":
            job = {**job, "inputs": []}
        return asyncio.run(agent_async(job)) if job.get("mode") == "async" else agent_sync(job)
    if op == "store_get":
        with registry.STORES[job["store"]].open(job["location"]) as store:
            item = store.get(tuple(job["namespace"]), job["key"])
            return None if item is None else item.value
    if op == "bytestore_mget":
        with registry.BYTESTORES[job["bytestore"]].open(job["location"]) as bs:
            return [None if v is None else v.hex() for v in bs.mget(job["keys"])]
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            reply = {"id": job["id"], "ok": True, "result": handle(job)}
        except Exception:
            reply = {"id": job["id"], "ok": False, "error": traceback.format_exc()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
