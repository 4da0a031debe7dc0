"""A plain ``StateGraph`` over ``add_messages`` on every SAVERS entry: RemoveMessage, REMOVE_ALL_MESSAGES,
replacement by id, ``update_state`` and forks (invoking from an older ``checkpoint_id``) return exactly the
expected state, now, through history, and from a new instance. The same with upstream's (beta) ``DeltaChannel``,
which stores messages as writes and rebuilds them with the saver's ``get_delta_channel_history``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any, TypedDict
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph.message import REMOVE_ALL_MESSAGES, _messages_delta_reducer, add_messages
from lg_fakes import one_node_graph
from lg_harness import SaverFactory


class MessagesState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class DeltaMessagesState(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer, snapshot_frequency=3)]


def respond(state: dict[str, Any]) -> dict[str, Any]:
    """Answer the last human message with a deterministic id."""
    last = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
    return {"messages": [AIMessage(f"re: {last.content}", id=f"ai-{last.id}")]}


def build(schema: type, saver: Any) -> Any:
    return one_node_graph(schema, respond, saver)


def view(messages: list[Any]) -> list[tuple[str, str, str]]:
    return [(m.type, m.id, m.content) for m in messages]


def human(mid: str) -> dict[str, list[HumanMessage]]:
    return {"messages": [HumanMessage(mid, id=mid)]}


class Driver:
    """The same calls through the sync or the async graph API."""

    def __init__(self, graph: Any, api: str) -> None:
        self.graph, self.api = graph, api

    async def invoke(self, payload: Any, config: dict[str, Any]) -> Any:
        return self.graph.invoke(payload, config) if self.api == "sync" else await self.graph.ainvoke(payload, config)

    async def update(self, config: dict[str, Any], values: dict[str, Any], as_node: str | None = None) -> Any:
        if self.api == "sync":
            return self.graph.update_state(config, values, as_node=as_node)
        return await self.graph.aupdate_state(config, values, as_node=as_node)

    async def state(self, config: dict[str, Any]) -> Any:
        return self.graph.get_state(config) if self.api == "sync" else await self.graph.aget_state(config)

    async def history(self, config: dict[str, Any]) -> list[Any]:
        if self.api == "sync":
            return list(self.graph.get_state_history(config))
        return [s async for s in self.graph.aget_state_history(config)]


async def open_driver(stack: AsyncExitStack, factory: SaverFactory, api: str, schema: type) -> Driver:
    if api == "sync":
        saver = stack.enter_context(factory.open())
    else:
        saver = await stack.enter_async_context(factory.aopen())
    return Driver(build(schema, saver), api)


Recorder = Callable[[Any], Any]


@pytest.mark.parametrize("schema", [MessagesState, DeltaMessagesState], ids=["add_messages", "delta_channel"])
@pytest.mark.parametrize("api", ["sync", "async"])
async def test_removals_replacements_and_updates(saver_factory: SaverFactory, api: str, schema: type) -> None:
    config = {"configurable": {"thread_id": f"rm-{uuid4().hex[:8]}"}}
    expected: list[tuple[str, list[tuple[str, str, str]]]] = []  # (checkpoint_id, messages) after each step
    async with AsyncExitStack() as stack:
        g = await open_driver(stack, saver_factory, api, schema)

        async def step(expect: list[tuple[str, str, str]]) -> None:
            snapshot = await g.state(config)
            assert view(snapshot.values["messages"]) == expect
            expected.append((snapshot.config["configurable"]["checkpoint_id"], expect))

        h1, a1 = ("human", "h1", "h1"), ("ai", "ai-h1", "re: h1")
        h2, a2 = ("human", "h2", "h2"), ("ai", "ai-h2", "re: h2")
        await g.invoke(human("h1"), config)
        await step([h1, a1])
        await g.invoke(human("h2"), config)
        await step([h1, a1, h2, a2])
        await g.update(config, {"messages": [RemoveMessage(id="ai-h1")]})
        await step([h1, h2, a2])
        await g.update(config, {"messages": [HumanMessage("h2 edited", id="h2")]})  # same id: replaced in place
        await step([h1, ("human", "h2", "h2 edited"), a2])
        await g.update(config, {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), HumanMessage("fresh", id="h9")]})
        await step([("human", "h9", "fresh")])
        await g.invoke(human("h3"), config)
        await step([("human", "h9", "fresh"), ("human", "h3", "h3"), ("ai", "ai-h3", "re: h3")])
        metadata = [s.metadata["source"] for s in await g.history(config)]
        assert metadata.count("update") == 3 and metadata[-1] == "input"

    async with AsyncExitStack() as stack:  # a new instance: every step's state, exactly, by checkpoint id
        g = await open_driver(stack, saver_factory, api, schema)
        for checkpoint_id, messages in expected:
            old = {"configurable": {**config["configurable"], "checkpoint_id": checkpoint_id}}
            assert view((await g.state(old)).values["messages"]) == messages
        history = {s.config["configurable"]["checkpoint_id"]: s for s in await g.history(config)}
        for checkpoint_id, messages in expected:
            assert view(history[checkpoint_id].values["messages"]) == messages


@pytest.mark.parametrize("schema", [MessagesState, DeltaMessagesState], ids=["add_messages", "delta_channel"])
@pytest.mark.parametrize("api", ["sync", "async"])
async def test_forks_from_older_checkpoints(saver_factory: SaverFactory, api: str, schema: type) -> None:
    thread = f"fork-{uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": thread}}
    async with AsyncExitStack() as stack:
        g = await open_driver(stack, saver_factory, api, schema)
        for mid in ["h1", "h2", "h3"]:
            await g.invoke(human(mid), config)
        main_head = await g.state(config)
        # the finished step after h1 (the next turn's "input" checkpoint has the same values but next=("__start__",))
        after_h1 = next(
            s for s in await g.history(config) if [m.id for m in s.values.get("messages", [])] == ["h1", "ai-h1"] and s.next == ()
        )
        assert after_h1.metadata["source"] == "loop"

        # invoke from the older checkpoint: a new branch on the same thread
        await g.invoke(human("x1"), after_h1.config)
        forked = await g.state(config)
        assert view(forked.values["messages"]) == [
            ("human", "h1", "h1"), ("ai", "ai-h1", "re: h1"), ("human", "x1", "x1"), ("ai", "ai-x1", "re: x1")
        ]  # fmt: skip
        branch = await g.history(config)
        fork_input = next(s for s in branch if s.metadata["source"] == "input" and s.parent_config is not None
                          and s.parent_config["configurable"]["checkpoint_id"] == after_h1.config["configurable"]["checkpoint_id"])  # fmt: skip
        assert [m.id for m in fork_input.values["messages"]] == ["h1", "ai-h1"]

        # the abandoned branch is intact
        assert view((await g.state(main_head.config)).values["messages"]) == [
            ("human", "h1", "h1"), ("ai", "ai-h1", "re: h1"), ("human", "h2", "h2"), ("ai", "ai-h2", "re: h2"),
            ("human", "h3", "h3"), ("ai", "ai-h3", "re: h3"),
        ]  # fmt: skip

        # update_state on an old checkpoint forks too, with that checkpoint as parent
        updated = await g.update(after_h1.config, {"messages": [HumanMessage("patched", id="h1")]})
        patched = await g.state(updated)
        assert view(patched.values["messages"]) == [("human", "h1", "patched"), ("ai", "ai-h1", "re: h1")]
        assert patched.parent_config is not None
        assert patched.parent_config["configurable"]["checkpoint_id"] == after_h1.config["configurable"]["checkpoint_id"]
        assert (await g.state(config)).config["configurable"]["checkpoint_id"] == updated["configurable"]["checkpoint_id"]
        await g.invoke(human("y1"), config)  # continuing the thread continues the newest branch
        assert [m.id for m in (await g.state(config)).values["messages"]] == ["h1", "ai-h1", "y1", "ai-y1"]


@pytest.mark.parametrize("api", ["sync", "async"])
async def test_delta_channel_long_thread_rebuilds_exactly(saver_factory: SaverFactory, api: str) -> None:
    """A DeltaChannel thread past several snapshots (every 3 updates): the saver's delta history rebuilds every
    checkpoint exactly, from a new instance; most checkpoints store no messages blob at all."""
    config = {"configurable": {"thread_id": f"delta-{uuid4().hex[:8]}"}}
    recorded: list[tuple[str, list[str]]] = []
    async with AsyncExitStack() as stack:
        g = await open_driver(stack, saver_factory, api, DeltaMessagesState)
        for i in range(10):
            await g.invoke(human(f"m{i}"), config)
            snap = await g.state(config)
            recorded.append((snap.config["configurable"]["checkpoint_id"], [m.id for m in snap.values["messages"]]))
    assert recorded[-1][1] == [x for i in range(10) for x in (f"m{i}", f"ai-m{i}")]
    async with AsyncExitStack() as stack:
        if api == "sync":
            saver = stack.enter_context(saver_factory.open())
            tuples = [saver.get_tuple({"configurable": {**config["configurable"], "checkpoint_ns": "", "checkpoint_id": c}})
                      for c, _ in recorded]  # fmt: skip
        else:
            saver = await stack.enter_async_context(saver_factory.aopen())
            tuples = [await saver.aget_tuple({"configurable": {**config["configurable"], "checkpoint_ns": "", "checkpoint_id": c}})
                      for c, _ in recorded]  # fmt: skip
        g = Driver(build(DeltaMessagesState, saver), api)
        for checkpoint_id, ids in recorded:
            state = await g.state({"configurable": {**config["configurable"], "checkpoint_id": checkpoint_id}})
            assert [m.id for m in state.values["messages"]] == ids
    stored_blobs = sum("messages" in t.checkpoint["channel_values"] for t in tuples if t is not None)
    assert 0 < stored_blobs < len(tuples)
