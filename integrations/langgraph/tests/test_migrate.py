"""``copy_checkpoints``: threads written by an upstream saver (SqliteSaver, InMemorySaver) move into a memvault
saver with every checkpoint, parent, metadata and pending write: the state, the history and a pending interrupt
are the same afterwards (the interrupt resumes on the memvault side), and each message is stored once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.memvault import copy_checkpoints
from langgraph.types import Command
from lg_fakes import build_agent, signatures
from lg_harness import SaverFactory


@contextmanager
def upstream(kind: str, tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    if kind == "inmemory":
        yield InMemorySaver()
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(tmp_path / "upstream.db", check_same_thread=False)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


def snapshot(agent: Any, config: dict[str, Any]) -> tuple[Any, ...]:
    state = agent.get_state(config)
    history = [(s.config["configurable"]["checkpoint_id"], signatures(s.values.get("messages", [])), s.next,
                s.metadata.get("step")) for s in agent.get_state_history(config)]
    return signatures(state.values["messages"]), state.next, [i.value for i in state.interrupts], history


@pytest.mark.requires("message_log")
@pytest.mark.parametrize("source_kind", ["sqlite", "inmemory"])
def test_threads_move_from_an_upstream_saver(saver_factory: SaverFactory, source_kind: str, tmp_path: Path) -> None:
    done, paused = f"done-{uuid4().hex[:6]}", f"paused-{uuid4().hex[:6]}"
    cfg_done, cfg_paused = ({"configurable": {"thread_id": t}} for t in (done, paused))
    with upstream(source_kind, tmp_path) as source:
        basic, hitl = build_agent("basic", source), build_agent("hitl", source)
        for text in ["add 2 3", "hello there", "add 10 20"]:
            basic.invoke({"messages": [{"role": "user", "content": text}]}, cfg_done)
        hitl.invoke({"messages": [{"role": "user", "content": "email bob"}]}, cfg_paused)
        before = {done: snapshot(basic, cfg_done), paused: snapshot(hitl, cfg_paused)}
        assert before[paused][2], "the source thread is waiting on an interrupt"
        progress: list[tuple[str, int]] = []
        with saver_factory.open() as target:
            copied = copy_checkpoints(source, target, progress=lambda t, n: progress.append((t, n)))
            assert copied == sum(len(h[3]) for h in before.values())
            assert sorted(t for t, _ in progress) == sorted([done, paused])

    with saver_factory.open() as target:
        basic, hitl = build_agent("basic", target), build_agent("hitl", target)
        assert snapshot(basic, cfg_done) == before[done]
        assert snapshot(hitl, cfg_paused) == before[paused]
        info = target.memory.store.get_session(target.threads.namespace, done)
        assert info is not None and info.message_count == len(before[done][0])  # once each, not per checkpoint
        # the interrupt raised on the upstream saver resumes on memvault, and the thread goes on
        hitl.invoke(Command(resume={"decisions": [{"type": "approve"}]}), cfg_paused)
        after = snapshot(hitl, cfg_paused)
        assert after[2] == [] and after[0][: len(before[paused][0])] == before[paused][0]
        assert len(after[0]) > len(before[paused][0])
        # copying again changes nothing
        with upstream(source_kind, tmp_path) as source:
            if source_kind == "sqlite":
                copy_checkpoints(source, target, thread_ids=[done])
                assert snapshot(basic, cfg_done) == before[done]
