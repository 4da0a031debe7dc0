"""Checkpointer conformance: the official ``langgraph-checkpoint-conformance`` kit on every SAVERS entry, through its
async methods (what the kit calls) and through its sync methods (a facade maps the kit's async calls onto them), plus
saver semantics the kit does not check (put_writes idempotency rules, pending-write order, version numbers, reopen).

The kit detects a capability when the saver's class overrides its async method, and reports "FULL" when every
*detected* capability passes, so a saver missing e.g. ``adelete_for_runs`` is still "FULL". Hence the explicit check
that the detected extended capabilities are exactly those the registry entry declares.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import WRITES_IDX_MAP, BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, EXTENDED_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport, ProgressCallbacks
from langgraph.checkpoint.conformance.spec import (
    test_copy_thread,
    test_delete_for_runs,
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_prune,
    test_put,
    test_put_writes,
)
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT
from lg_harness import SaverFactory

#: how many kit tests each capability has (58 base + 23 extended in kit 0.0.2)
KIT_TEST_COUNTS = {
    "put": len(test_put.ALL_PUT_TESTS),
    "put_writes": len(test_put_writes.ALL_PUT_WRITES_TESTS),
    "get_tuple": len(test_get_tuple.ALL_GET_TUPLE_TESTS),
    "list": len(test_list.ALL_LIST_TESTS),
    "delete_thread": len(test_delete_thread.ALL_DELETE_THREAD_TESTS),
    "delete_for_runs": len(test_delete_for_runs.ALL_DELETE_FOR_RUNS_TESTS),
    "copy_thread": len(test_copy_thread.ALL_COPY_THREAD_TESTS),
    "prune": len(test_prune.ALL_PRUNE_TESTS),
}

# async method the kit calls -> the sync method behind it
_SYNC_TWINS = {
    "aput": "put",
    "aput_writes": "put_writes",
    "aget_tuple": "get_tuple",
    "alist": "list",
    "adelete_thread": "delete_thread",
    "adelete_for_runs": "delete_for_runs",
    "acopy_thread": "copy_thread",
    "aprune": "prune",
}


def _forward(method: str) -> Callable[..., Any]:
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, method)(*args, **kwargs)

    call.__name__ = f"a{method}"
    return call


async def _alist_via_list(
    self: Any, config: Any, *, filter: Any = None, before: Any = None, limit: Any = None
) -> AsyncIterator[CheckpointTuple]:
    for tup in self.inner.list(config, filter=filter, before=before, limit=limit):
        yield tup


def sync_facade(saver: BaseCheckpointSaver) -> BaseCheckpointSaver:
    """A saver whose async methods call ``saver``'s SYNC methods, only for the sync methods ``saver``'s class
    implements (so the kit's capability detection sees what the sync API offers)."""
    namespace: dict[str, Any] = {}
    for amethod, method in _SYNC_TWINS.items():
        if getattr(type(saver), method) is getattr(BaseCheckpointSaver, method):
            continue
        namespace[amethod] = _alist_via_list if method == "list" else _forward(method)
    facade_type = type(f"SyncFacade_{type(saver).__name__}", (BaseCheckpointSaver,), namespace)
    facade = facade_type(serde=saver.serde)
    facade.inner = saver  # type: ignore[attr-defined]
    return facade


def _explain(report: CapabilityReport, progress: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        report.print_report()
    return f"{out.getvalue()}\n{json.dumps(report.to_dict(), indent=1)}\n--- per-test output ---\n{progress}"


@pytest.mark.parametrize("api", ["async", "sync"])
async def test_conformance_kit(saver_factory: SaverFactory, api: str) -> None:
    """FULL conformance; every base capability and every declared extended one detected and passing in full."""

    @checkpointer_test(name=f"{saver_factory.name}-{api}")
    async def factory() -> AsyncIterator[BaseCheckpointSaver]:
        fresh = saver_factory.fresh()  # the kit wants new storage per capability suite
        if api == "async":
            async with fresh.aopen() as saver:
                yield saver
        else:
            with fresh.open() as saver:
                yield sync_facade(saver)

    progress = io.StringIO()
    with contextlib.redirect_stdout(progress):
        report = await validate(factory, progress=ProgressCallbacks.verbose())
    explain = _explain(report, progress.getvalue())

    assert report.conformance_level() == "FULL", explain
    declared_extended = {c.value for c in EXTENDED_CAPABILITIES} & saver_factory.capabilities
    detected_extended = {c.value for c in EXTENDED_CAPABILITIES if report.results[c.value].detected}
    assert detected_extended == declared_extended, (
        f"extended capabilities detected {sorted(detected_extended)} != declared {sorted(declared_extended)}\n{explain}"
    )
    for cap in [c.value for c in BASE_CAPABILITIES] + sorted(declared_extended):
        result = report.results[cap]
        assert result.detected and result.passed is True, f"{cap}: {result}\n{explain}"
        assert result.tests_passed == KIT_TEST_COUNTS[cap] and result.tests_failed == 0, f"{cap}: {result}\n{explain}"


# ------------------------------------------------------------------------------------------------ semantics
def _put(
    saver: BaseCheckpointSaver,
    thread_id: str,
    *,
    ns: str = "",
    parent: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    config = generate_config(thread_id, checkpoint_ns=ns)
    if parent is not None:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    values = values or {}
    checkpoint = generate_checkpoint(channel_values=values, channel_versions={k: 1 for k in values})
    return dict(saver.put(config, checkpoint, generate_metadata(**metadata), {k: 1 for k in values}))


def test_put_writes_regular_channels_keep_the_first_write(saver_factory: SaverFactory) -> None:
    """A retried task re-sends its writes: for a regular channel the stored (task_id, idx) write is kept."""
    saver = saver_factory()
    stored = _put(saver, str(uuid4()))
    saver.put_writes(stored, [("a", "first"), ("b", 1)], "task-1")
    saver.put_writes(stored, [("a", "second"), ("b", 2)], "task-1")
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert [(w[0], w[1], w[2]) for w in tup.pending_writes or []] == [("task-1", "a", "first"), ("task-1", "b", 1)]


def test_put_writes_special_channels_are_replaced(saver_factory: SaverFactory) -> None:
    """ERROR / INTERRUPT writes (negative idx in WRITES_IDX_MAP) are upserted: the latest one wins."""
    assert WRITES_IDX_MAP[ERROR] < 0 and WRITES_IDX_MAP[INTERRUPT] < 0
    saver = saver_factory()
    stored = _put(saver, str(uuid4()))
    saver.put_writes(stored, [(ERROR, "boom 1")], "task-1")
    saver.put_writes(stored, [(ERROR, "boom 2")], "task-1")
    saver.put_writes(stored, [(INTERRUPT, {"n": 1})], "task-2")
    saver.put_writes(stored, [(INTERRUPT, {"n": 2})], "task-2")
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert sorted((w[0], w[1], json.dumps(w[2])) for w in tup.pending_writes or []) == [
        ("task-1", ERROR, '"boom 2"'),
        ("task-2", INTERRUPT, '{"n": 2}'),
    ]


def test_pending_writes_come_back_in_writes_sort_key_order(saver_factory: SaverFactory) -> None:
    """``get_tuple`` must return pending writes ordered by (task_path, task_id, idx), whatever the put order."""
    saver = saver_factory()
    stored = _put(saver, str(uuid4()))
    saver.put_writes(stored, [("x", "b0"), ("x", "b1")], "task-b", task_path="~__pregel_pull, tools~1")
    saver.put_writes(stored, [("x", "a0")], "task-a", task_path="~__pregel_pull, tools~0")
    saver.put_writes(stored, [("x", "c0")], "task-c", task_path="~__pregel_pull, model")
    tup = saver.get_tuple(stored)
    assert tup is not None
    assert [w[2] for w in tup.pending_writes or []] == ["c0", "a0", "b0", "b1"]


def test_values_round_trip_exactly(saver_factory: SaverFactory) -> None:
    """Channel values and write values of many types (messages included) and a 1 MB blob survive a reopen."""
    values: dict[str, Any] = {
        "messages": [
            HumanMessage("hi ü 😀", id="h1"),
            AIMessage("", id="a1", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]),
            ToolMessage("1", tool_call_id="c1", id="t1", name="add"),
        ],
        "blob": b"\x00\x01" * 500_000,
        # (a tuple comes back as a list from the default serializer; a NUL in a str channel value breaks
        # PostgresSaver, which stores primitive values inline in JSONB)
        "nested": {"list": [1, "two"], "set": {3}, "none": None, "float": 1.5, "big": 2**62},
        "text": "ünï\nline",
    }
    thread = str(uuid4())
    stored = _put(saver_factory(), thread, values=values, source="input", step=-1, note="ünï")
    saver_factory().put_writes(stored, [("messages", [AIMessage("w", id="a2")]), ("blob", b"\xff")], "t")
    tup = saver_factory().get_tuple(generate_config(thread))
    assert tup is not None
    assert tup.checkpoint["channel_values"] == values
    assert tup.metadata["note"] == "ünï" and tup.metadata["step"] == -1
    assert [(w[1], w[2]) for w in tup.pending_writes or []] == [("messages", [AIMessage("w", id="a2")]), ("blob", b"\xff")]


def test_list_without_namespace_spans_all_namespaces(saver_factory: SaverFactory) -> None:
    """``list`` with no checkpoint_ns key returns every namespace of the thread (newest first within each);
    ``list(None, filter=...)`` searches every thread. The order ACROSS namespaces differs between upstream savers
    (InMemorySaver groups by namespace), so only the per-namespace order is asserted."""
    saver = saver_factory()
    thread = str(uuid4())
    ids: dict[str, list[str]] = {"": [], "child:1": []}
    for ns in ["", "child:1", "", "child:1"]:
        parent = {"configurable": {"checkpoint_id": ids[ns][-1]}} if ids[ns] else None
        ids[ns].append(_put(saver, thread, ns=ns, parent=parent, tag="mine")["configurable"]["checkpoint_id"])
    listed = list(saver.list({"configurable": {"thread_id": thread}}))
    by_ns: dict[str, list[str]] = {}
    for tup in listed:
        by_ns.setdefault(tup.config["configurable"]["checkpoint_ns"], []).append(tup.checkpoint["id"])
    assert by_ns == {ns: list(reversed(v)) for ns, v in ids.items()}
    other = str(uuid4())
    _put(saver, other, tag="mine")
    _put(saver, other, tag="theirs")
    found = {(t.config["configurable"]["thread_id"], t.checkpoint["id"]) for t in saver.list(None, filter={"tag": "mine"})}
    assert {t for t, _ in found} == {thread, other} and len(found) == 5
    assert len(list(saver.list({"configurable": {"thread_id": thread}}, limit=3))) == 3


def test_get_next_version_increases(saver_factory: SaverFactory) -> None:
    saver = saver_factory()
    versions = [saver.get_next_version(None, None)]
    for _ in range(20):
        versions.append(saver.get_next_version(versions[-1], None))
    assert all(a < b for a, b in itertools.pairwise(versions)), versions
    assert len({type(v) for v in versions}) == 1


def test_second_instance_sees_everything(saver_factory: SaverFactory) -> None:
    """A new instance on the same storage (a restart) sees checkpoints, parents, metadata and pending writes."""
    thread = str(uuid4())
    with saver_factory.open() as first:
        c1 = _put(first, thread, values={"v": 1}, step=0)
        c2 = _put(first, thread, parent=c1, values={"v": 2}, step=1)
        first.put_writes(c2, [("v", 3)], "task-x", task_path="p")
    with saver_factory.open() as second:
        tup = second.get_tuple(generate_config(thread))
        assert tup is not None
        assert tup.checkpoint["id"] == c2["configurable"]["checkpoint_id"]
        assert tup.parent_config is not None
        assert tup.parent_config["configurable"]["checkpoint_id"] == c1["configurable"]["checkpoint_id"]
        assert tup.checkpoint["channel_values"] == {"v": 2}
        assert tup.metadata["step"] == 1
        assert [(w[0], w[1], w[2]) for w in tup.pending_writes or []] == [("task-x", "v", 3)]
        assert [t.checkpoint["id"] for t in second.list(generate_config(thread))] == [
            c2["configurable"]["checkpoint_id"],
            c1["configurable"]["checkpoint_id"],
        ]


async def test_async_and_sync_instances_agree(saver_factory: SaverFactory) -> None:
    """What the async API wrote, the sync API reads (and back), on two instances of the same storage."""
    thread = str(uuid4())
    async with saver_factory.aopen() as asaver:
        config = generate_config(thread)
        checkpoint = generate_checkpoint(channel_values={"k": "async"}, channel_versions={"k": 1})
        stored = await asaver.aput(config, checkpoint, generate_metadata(step=3), {"k": 1})
        await asaver.aput_writes(stored, [("k", "w")], "task-a")
        with saver_factory.open() as saver:
            tup = saver.get_tuple(config)
            assert tup is not None and tup.checkpoint["channel_values"] == {"k": "async"}
            assert [(w[1], w[2]) for w in tup.pending_writes or []] == [("k", "w")]
            child = _put(saver, thread, parent=stored, values={"k": "sync"}, step=4)
        atup = await asaver.aget_tuple(generate_config(thread))
        assert atup is not None
        assert atup.checkpoint["id"] == child["configurable"]["checkpoint_id"]
        assert atup.checkpoint["channel_values"] == {"k": "sync"}
        assert [t.metadata["step"] async for t in asaver.alist(generate_config(thread))] == [4, 3]
