"""memvault savers only (capability ``message_log``): a thread's message lists are its session's message log,
each message stored once; checkpoints name them by seq ranges (or, for the few new messages of a step, by id), so
what a step writes does not grow with the thread, and a cold instance (no cache) reads back exactly the same state
and history."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from lg_harness import SaverFactory
from test_graph_state import MessagesState, human, open_driver, view

from memvault.checkpoints import BLOB, INLINE_NEW


def _blobs(saver: Any, thread: str) -> list[tuple[str, bytes]]:
    return saver.memory.store.scan_entries(saver.threads.namespace, thread, BLOB)


@pytest.mark.requires("message_log")
@pytest.mark.parametrize("api", ["sync", "async"])
async def test_each_message_is_stored_once_and_read_back_cold(saver_factory: SaverFactory, api: str) -> None:
    thread = f"log-{uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread}}
    batch = INLINE_NEW * 2 + 3  # more new messages than one atomic write names by id: appended first, by seq
    async with AsyncExitStack() as stack:
        driver = await open_driver(stack, saver_factory, api, MessagesState)
        old = [HumanMessage(f"old {i}", id=f"o{i}") if i % 2 == 0 else AIMessage(f"reply {i}", id=f"r{i}")
               for i in range(batch)]
        await driver.update(config, {"messages": old})
        for i in range(12):
            await driver.invoke(human(f"h{i}"), config)
        expected = view((await driver.state(config)).values["messages"])
    assert len(expected) == batch + 24

    async with AsyncExitStack() as stack:  # a new instance: nothing cached
        cold = await open_driver(stack, saver_factory, api, MessagesState)
        assert view((await cold.state(config)).values["messages"]) == expected
        history = await cold.history(config)
        lengths = [len(s.values.get("messages", [])) for s in history]
        for snapshot in history:
            got = view(snapshot.values.get("messages", []))
            assert got == expected[: len(got)]  # every checkpoint is a prefix of the conversation, none is mixed up
        assert lengths[0] == len(expected) and batch in lengths

    with saver_factory.open() as saver:
        info = saver.memory.store.get_session(saver.threads.namespace, thread)
        assert info is not None and info.message_count == len(expected)  # once each, whatever the checkpoints
        sizes = sorted(len(value) for _, value in _blobs(saver, thread))
        assert sizes[-1] < 2048, sizes  # no checkpoint blob holds the conversation itself


@pytest.mark.requires("message_log")
async def test_a_step_writes_the_same_whatever_the_thread_length(saver_factory: SaverFactory) -> None:
    """The bytes a step adds to the thread's blobs do not depend on how long the thread is."""
    thread = f"flat-{uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread}}
    added: list[int] = []
    async with AsyncExitStack() as stack:
        driver = await open_driver(stack, saver_factory, "sync", MessagesState)
        with saver_factory.open() as probe:
            for i in range(60):
                before = sum(len(v) for _, v in _blobs(probe, thread))
                await driver.invoke(human(f"q{i}"), config)
                added.append(sum(len(v) for _, v in _blobs(probe, thread)) - before)
    early, late = sorted(added[5:15])[5], sorted(added[-10:])[5]
    assert late <= early + 64, (early, late)  # a few bytes for wider seq numbers at most
