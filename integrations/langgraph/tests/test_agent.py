"""``langchain.agents.create_agent`` on every SAVERS entry, with the scripted tool-calling model (``lg_fakes``):
a conversation continued by another process, human-in-the-loop interrupts raised in one process and resumed in
another, SummarizationMiddleware with exact time travel, and two processes at once. ``api`` runs everything through
``invoke`` (sync saver methods) or ``ainvoke`` (async ones), in this process and in the worker alike.

Workers are separate OS processes (``lg_worker.py``) that open a NEW saver on the same location for every job; the
parent closes its own instance before handing over, like a restart.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command
from lg_fakes import SUMMARIZE_KEEP, SUMMARIZE_TRIGGER, TOOL_LOG_ENV, build_agent, signatures
from lg_harness import SaverFactory, Worker

APIS = ["sync", "async"]


def thread_config(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint_id is not None:
        configurable.update(checkpoint_ns="", checkpoint_id=checkpoint_id)
    return {"configurable": configurable}


def payloads(inputs: list[str] | None, resume: Any) -> list[Any]:
    if inputs is None:
        return [Command(resume=resume)]
    return [{"messages": [{"role": "user", "content": text}]} for text in inputs]


def outcome(state: Any, result: Any) -> dict[str, Any]:
    """The same shape the worker answers with."""
    return {
        "messages": signatures(state.values.get("messages", [])),
        "interrupts": [i.value for i in (result or {}).get("__interrupt__", [])],
        "next": list(state.next),
        "checkpoint_id": state.config["configurable"]["checkpoint_id"],
    }


async def run_here(
    factory: SaverFactory,
    api: str,
    thread_id: str,
    inputs: list[str] | None = None,
    *,
    resume: Any = None,
    kind: str = "basic",
) -> dict[str, Any]:
    """Run turns in THIS process on a new saver instance (closed afterwards)."""
    config = thread_config(thread_id)
    result: Any = None
    if api == "sync":
        with factory.open() as saver:
            agent = build_agent(kind, saver)
            for payload in payloads(inputs, resume):
                result = agent.invoke(payload, config)
            return outcome(agent.get_state(config), result)
    async with factory.aopen() as saver:
        agent = build_agent(kind, saver)
        for payload in payloads(inputs, resume):
            result = await agent.ainvoke(payload, config)
        return outcome(await agent.aget_state(config), result)


def run_there(
    worker: Worker,
    factory: SaverFactory,
    api: str,
    thread_id: str,
    inputs: list[str] | None = None,
    *,
    resume: Any = None,
    kind: str = "basic",
    **extra: Any,
) -> dict[str, Any]:
    """Run turns in a worker process."""
    job: dict[str, Any] = {"saver": factory.name, "location": factory.location, "mode": api, "kind": kind, "thread_id": thread_id}
    job["resume"] = resume if inputs is None else None
    if inputs is not None:
        del job["resume"]
        job["inputs"] = inputs
    result: dict[str, Any] = worker.call("agent", **job, **extra)
    return result


def shapes(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["type"], m["content"] if m["content"] else ",".join(c["name"] for c in m.get("tool_calls", []))) for m in messages]


# ------------------------------------------------------------------------------------------------ 1. continue
@pytest.mark.requires("cross_process")
@pytest.mark.parametrize("api", APIS)
async def test_conversation_continues_in_another_process(saver_factory: SaverFactory, workers: list[Worker], api: str) -> None:
    thread = f"t-{uuid4().hex[:8]}"
    first = await run_here(saver_factory, api, thread, ["add 2 3", "hello there"])
    assert shapes(first["messages"]) == [
        ("human", "add 2 3"), ("ai", "add"), ("tool", "5"), ("ai", "done: add=5"),
        ("human", "hello there"), ("ai", "echo: hello there"),
    ]  # fmt: skip

    second = run_there(workers[0], saver_factory, api, thread, ["add 10 20"])
    assert second["messages"][:6] == first["messages"]  # exactly: ids, contents, tool calls
    assert shapes(second["messages"][6:]) == [("human", "add 10 20"), ("ai", "add"), ("tool", "30"), ("ai", "done: add=30")]
    assert second["next"] == [] and second["interrupts"] == []

    back = await run_here(saver_factory, api, thread, [])  # a third instance, back in this process
    assert back["messages"] == second["messages"] and back["checkpoint_id"] == second["checkpoint_id"]


# ------------------------------------------------------------------------------------------------ 2. interrupts
@pytest.mark.requires("cross_process")
@pytest.mark.parametrize("api", APIS)
async def test_hitl_interrupt_resumed_in_another_process(saver_factory: SaverFactory, workers: list[Worker], api: str) -> None:
    thread = f"hitl-{uuid4().hex[:8]}"
    paused = await run_here(saver_factory, api, thread, ["email bob"], kind="hitl")
    [request] = paused["interrupts"]
    assert [(a["name"], a["args"]) for a in request["action_requests"]] == [("send_email", {"to": "bob"})]
    assert paused["next"] != []
    assert shapes(paused["messages"]) == [("human", "email bob"), ("ai", "send_email")]

    done = run_there(workers[1], saver_factory, api, thread, resume={"decisions": [{"type": "approve"}]}, kind="hitl")
    assert done["interrupts"] == [] and done["next"] == []
    assert done["messages"][:2] == paused["messages"]
    assert shapes(done["messages"][2:]) == [("tool", "sent to bob"), ("ai", "done: send_email=sent to bob")]

    # a second gated call, this time rejected, paused in the worker and resumed here
    again = run_there(workers[1], saver_factory, api, thread, ["email eve"], kind="hitl")
    assert [a["args"] for a in again["interrupts"][0]["action_requests"]] == [{"to": "eve"}]
    final = await run_here(saver_factory, api, thread, resume={"decisions": [{"type": "reject", "message": "no"}]}, kind="hitl")
    assert final["next"] == [] and final["messages"][:6] == again["messages"][:6]
    rejection = final["messages"][6]
    assert rejection["type"] == "tool" and rejection["name"] == "send_email"
    assert "rejected" in rejection["content"] and rejection["content"].endswith("no")  # LangChain's wording
    assert rejection["additional_kwargs"]["lc_data"] == {"decision": "reject"}  # the middleware's marker survives
    assert shapes(final["messages"][7:]) == [("ai", "done: send_email=" + rejection["content"])]


@pytest.mark.requires("cross_process")
@pytest.mark.parametrize("api", APIS)
async def test_tool_interrupt_with_parallel_call_resumed_in_another_process(
    saver_factory: SaverFactory, workers: list[Worker], api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``interrupt()`` inside one of two parallel tool calls: the other call's result is a pending write, stored by
    the first process and used, not re-run, by the process that resumes."""
    log = tmp_path / "tools.log"
    log.write_text("")
    monkeypatch.setenv(TOOL_LOG_ENV, str(log))
    thread = f"ask-{uuid4().hex[:8]}"
    paused = run_there(workers[0], saver_factory, api, thread, ["note first & ask colour"], tool_log=str(log))
    assert paused["interrupts"] == [{"question": "colour"}]
    assert log.read_text().splitlines() == ["first"]
    # get_state already shows the finished call's ToolMessage: it applies the pending writes of finished tasks
    assert shapes(paused["messages"]) == [("human", "note first & ask colour"), ("ai", "record_note,ask_human"), ("tool", "noted first")]

    done = await run_here(saver_factory, api, thread, resume="blue")
    assert log.read_text().splitlines() == ["first"]  # the finished parallel task was not executed again
    assert done["interrupts"] == [] and done["next"] == []
    assert done["messages"][:3] == paused["messages"]
    assert shapes(done["messages"]) == [
        ("human", "note first & ask colour"), ("ai", "record_note,ask_human"),
        ("tool", "noted first"), ("tool", "human said blue"),
        ("ai", "done: record_note=noted first; ask_human=human said blue"),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------ 3. summarization
@pytest.mark.parametrize("api", APIS)
async def test_summarization_rewrites_state_and_time_travel_keeps_history(saver_factory: SaverFactory, api: str) -> None:
    thread = f"sum-{uuid4().hex[:8]}"
    recorded: list[dict[str, Any]] = []  # state after each turn
    turns = 9
    for i in range(turns):
        recorded.append(await run_here(saver_factory, api, thread, [f"turn {i} " + "words " * 5], kind="summarize"))
    sizes = [len(r["messages"]) for r in recorded]
    summarized_at = next(i for i, r in enumerate(recorded) if r["messages"][0].get("additional_kwargs"))
    assert sizes[:summarized_at] == [2 * (i + 1) for i in range(summarized_at)]
    assert 2 * summarized_at + 1 >= SUMMARIZE_TRIGGER and sizes[summarized_at] < sizes[summarized_at - 1]

    before, after = recorded[summarized_at - 1]["messages"], recorded[summarized_at]["messages"]
    summary = after[0]
    assert summary["type"] == "human" and summary["additional_kwargs"]["lc_source"] == "summarization"
    assert "SUMMARY:" in summary["content"]
    kept = after[1 : 1 + SUMMARIZE_KEEP]
    assert kept[:-1] == before[-(SUMMARIZE_KEEP - 1) :]  # the newest old messages, unchanged ids and contents
    assert kept[-1]["content"].startswith(f"turn {summarized_at} ")
    assert shapes(after[1 + SUMMARIZE_KEEP :]) == [("ai", "echo: " + kept[-1]["content"])]

    # time travel on a NEW instance: every recorded checkpoint returns exactly the messages it had
    async with AsyncExitStack() as stack:
        if api == "sync":
            saver = stack.enter_context(saver_factory.open())
            history = list(build_agent("summarize", saver).get_state_history(thread_config(thread)))
            tuples = [saver.get_tuple(thread_config(thread, r["checkpoint_id"])) for r in recorded]
        else:
            saver = await stack.enter_async_context(saver_factory.aopen())
            history = [s async for s in build_agent("summarize", saver).aget_state_history(thread_config(thread))]
            tuples = [await saver.aget_tuple(thread_config(thread, r["checkpoint_id"])) for r in recorded]
    for r, tup in zip(recorded, tuples, strict=True):
        assert tup is not None
        assert signatures(tup.checkpoint["channel_values"]["messages"]) == r["messages"]
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in history}
    for r in recorded:
        assert signatures(by_id[r["checkpoint_id"]].values["messages"]) == r["messages"]
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert max(len(s.values.get("messages", [])) for s in history) >= SUMMARIZE_TRIGGER  # the long list is still there


# ------------------------------------------------------------------------------------------------ 4. concurrency
@pytest.mark.requires("cross_process")
@pytest.mark.parametrize("api", APIS)
async def test_two_processes_at_once_then_one_thread_in_turn(
    saver_factory: SaverFactory, workers: list[Worker], api: str
) -> None:
    run = uuid4().hex[:6]
    threads = [f"p0-{run}", f"p1-{run}"]
    turns = 5
    jobs = [
        w.send("agent", saver=saver_factory.name, location=saver_factory.location, mode=api, kind="basic",
               thread_id=t, inputs=[f"{t} says {i}" for i in range(turns)] + [f"add {i} {i}"])
        for i, (w, t) in enumerate(zip(workers, threads, strict=True))
    ]  # fmt: skip
    results = [w.receive(j) for w, j in zip(workers, jobs, strict=True)]
    for i, (t, r) in enumerate(zip(threads, results, strict=True)):
        humans = [m["content"] for m in r["messages"] if m["type"] == "human"]
        assert humans == [f"{t} says {k}" for k in range(turns)] + [f"add {i} {i}"]  # nothing lost, nothing mixed
        assert len(r["messages"]) == 2 * turns + 4 and r["messages"][-1]["content"] == f"done: add={2 * i}"
        here = await run_here(saver_factory, api, t, [])
        assert here["messages"] == r["messages"]

    shared = f"shared-{run}"
    run_there(workers[0], saver_factory, "sync", shared, ["one"])
    run_there(workers[1], saver_factory, "async", shared, ["two"])
    await run_here(saver_factory, api, shared, ["three"])
    last = run_there(workers[0], saver_factory, "async", shared, ["add 1 2"])
    assert shapes(last["messages"]) == [
        ("human", "one"), ("ai", "echo: one"), ("human", "two"), ("ai", "echo: two"),
        ("human", "three"), ("ai", "echo: three"), ("human", "add 1 2"), ("ai", "add"), ("tool", "3"), ("ai", "done: add=3"),
    ]  # fmt: skip
    assert len({m["id"] for m in last["messages"]}) == len(last["messages"])


# ------------------------------------------------------------------------------------------------ recall hook
@pytest.mark.requires("recall")
async def test_memory_recall_finds_agent_messages(saver_factory: SaverFactory, recall_hook: Any) -> None:
    """HOOK (memvault savers only): what the agent and the user said is searchable with ``Memory.recall``."""
    thread = f"recall-{uuid4().hex[:8]}"
    await run_here(saver_factory, "sync", thread, ["my favourite gemstone is tanzanite", "add 40 2"])
    texts = recall_hook(thread, "which gemstone do I like?")
    assert any("tanzanite" in t for t in texts), texts
    assert any("done: add=42" in t for t in recall_hook(thread, "what was the sum?")), "agent replies are recalled too"


def test_scripted_model_is_deterministic() -> None:
    """The fake model's script (what the cross-process tests rely on)."""
    from lg_fakes import ScriptedChatModel

    model = ScriptedChatModel()
    reply = model.invoke([HumanMessage("add 1 2 & ask why")])
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("add", {"a": 1, "b": 2}, "call-1-0"),
        ("ask_human", {"question": "why"}, "call-1-1"),
    ]
    assert model.invoke("hello").content == "echo: hello"
    assert model.bind_tools([]).invoke("SUMMARIZE:\n echo: a echo: b").content.startswith("SUMMARY: 2 echoed")
