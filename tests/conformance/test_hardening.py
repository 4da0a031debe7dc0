"""Bad input, tenant isolation, races and exits, on every backend (issue #11). Each test failed before its fix."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from typing import Any

import pytest

from memvault import InvalidSessionId, Memory, Message
from memvault.errors import (
    CorruptData,
    EmbeddingModelMismatch,
    InvalidCursor,
    InvalidFilter,
    InvalidMessage,
    InvalidMetadata,
    MemvaultError,
)
from memvault.recall.embedders import HashEmbedder
from memvault.testing.conformance.sessions import FILTER_CASES
from memvault.validation import INTERNAL_SEPARATOR, MAX_METADATA_DEPTH, json_equal
from tests.backends import BACKENDS, MemoryFactory


def short(value: Any) -> str:
    try:
        return repr(value)[:30]
    except RecursionError:
        return "deeply-nested"


def deep(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


# -- 1. every legal content shape is stored and indexed ------------------------------------------------------------


def test_plain_string_content_blocks_are_stored_indexed_and_recallable(mem: Memory) -> None:
    other = mem.session("other")
    other.add("user", "the zebra crossing is near the station")
    s = mem.session("blocks")
    stored = s.add("user", ["my giraffe is called Gerald", {"type": "text", "text": "it likes acacia leaves"}])
    assert s.messages()[0].content == stored.content
    assert stored.text == "my giraffe is called Gerald\nit likes acacia leaves"
    hits = mem.recall("giraffe Gerald", session="blocks", mode="keyword", k=3)
    assert [h.message.id for h in hits] == [stored.id]
    assert [h.message.text for h in mem.recall("acacia", mode="hybrid", k=1)] == [stored.text]
    assert mem.recall("zebra station", session="other", mode="keyword", k=1)[0].session_id == "other"
    docs = mem.collection("docs")  # collections keep working for the whole file
    docs.upsert([{"id": "d1", "text": "blue whale"}])
    assert [h.document.id for h in docs.search("whale", mode="keyword", k=1)] == ["d1"]


@pytest.mark.parametrize("content", [[1, 2], [None], [["nested"]], [{"text": "ok"}, 3.5], {"text": "dict"}, 42])
def test_illegal_content_shapes_are_refused(mem: Memory, content: Any) -> None:
    s = mem.session("shapes")
    s.add("user", "kept")
    with pytest.raises(InvalidMessage):
        s.add("user", content)
    assert [m.text for m in s.messages()] == ["kept"]


# -- 2. internal names live in a space no user input reaches -------------------------------------------------------


@pytest.mark.parametrize("lookalike", ["B#collections", "B#collections#collections", "B", "B "])
def test_a_namespace_named_like_an_internal_one_sees_no_collections(make_memory: MemoryFactory, lookalike: str) -> None:
    owner = make_memory(namespace="B")
    owner.collection("docs").upsert([{"id": "secret", "text": "the vault code is 4711"}])
    owner.session("chat").add("user", "hello")
    if lookalike == "B":
        return  # the owner itself: covered above
    intruder = make_memory(namespace=lookalike)
    assert intruder.collection("docs").count() == 0
    assert intruder.collection("docs").get(["secret"]) == []
    assert intruder.collection("docs").search("vault code", mode="keyword", k=5) == []
    assert [i.id for i in intruder.sessions()] == []
    intruder.collection("docs").upsert([{"id": "secret", "text": "overwritten?"}])
    assert owner.collection("docs").get(["secret"])[0].text == "the vault code is 4711"
    assert [i.id for i in owner.sessions()] == ["chat"]  # collections never show up as conversations


def test_internal_namespaces_cannot_be_named(make_memory: MemoryFactory) -> None:
    for name in (f"B{INTERNAL_SEPARATOR}collections", "a\x00b", "a\nb"):
        with pytest.raises(InvalidSessionId):
            make_memory(namespace=name)
        with pytest.raises(InvalidSessionId):
            make_memory().session("s", namespace=name)


# -- 4. metadata is validated once, before any backend sees it -------------------------------------------------


BAD_METADATA: list[Any] = [
    {"x": math.nan},
    {"x": math.inf},
    {"x": -math.inf},
    {"x": datetime.now(timezone.utc)},
    {"x": {1, 2}},
    {"x": (1, 2)},
    {"x": b"bytes"},
    {"x": "\ud800"},
    {"\ud800": 1},
    {"a\x00b": 1},
    {"x": "nul\x00"},
    {1: "int key"},
    {"x": 2**70},
    {"x": -(2**63) - 1},
    deep(MAX_METADATA_DEPTH + 1),
    deep(1000),
    ["not", "a", "dict"],
    "string",
    42,
    {"x": object()},
    {"big": "x" * (70 * 1024)},
]


@pytest.mark.parametrize("metadata", BAD_METADATA, ids=short)
def test_bad_session_metadata_is_refused_and_nothing_changes(mem: Memory, metadata: Any) -> None:
    keep = mem.session("keep", metadata={"tier": "gold"})
    keep.add("user", "hello")
    with pytest.raises(InvalidMetadata):
        mem.session("bad", metadata=metadata).add("user", "x")
    assert [i.id for i in mem.sessions()] == ["keep"]
    assert [i.id for i in mem.sessions(metadata={"tier": "gold"})] == ["keep"]
    assert mem.get_session("keep").metadata == {"tier": "gold"}


@pytest.mark.parametrize("metadata", [m for m in BAD_METADATA if not (isinstance(m, dict) and "a\x00b" in m)
                                      and m != {"x": "nul\x00"} and "big" not in (m if isinstance(m, dict) else {})],
                         ids=short)
def test_bad_message_metadata_is_refused(mem: Memory, metadata: Any) -> None:
    s = mem.session("msg")
    s.add("user", "first")
    with pytest.raises(InvalidMessage):
        s.add("user", "second", metadata=metadata)
    assert [m.text for m in s.messages()] == ["first"]


def test_metadata_at_the_limits_round_trips_exactly(mem: Memory) -> None:
    meta = {"deep": deep(MAX_METADATA_DEPTH - 1), "big": 2**63 - 1, "small": -(2**63), "f": 1e300, "tiny": 5e-324,
            "neg0": -0.0, "unicode": "naïve ☃ 😀", "list": [1, "a", None, True, 2.5], "empty": {}, "esc": "\\\"'"}
    s = mem.session("limits", metadata=meta)
    s.add("user", "x", metadata=meta)
    assert mem.get_session("limits").metadata == meta
    assert s.messages()[0].metadata == meta
    assert json.dumps(mem.get_session("limits").metadata["f"]) == "1e+300"  # a float stays a float


def test_other_json_fields_refuse_what_json_cannot_hold(mem: Memory) -> None:
    s = mem.session("fields")
    for kwargs in ({"extras": {"x": math.nan}}, {"extras": {"x": {1, 2}}}, {"tool_calls": [{"args": (1,)}]},
                   {"tool_calls": ["not a dict"]}, {"name": 5}, {"tool_call_id": b"x"}, {"extras": deep(100)},
                   {"id": "bad\nid"}, {"id": "x" * 600}, {"created_at": "2020-01-01"}):
        with pytest.raises(InvalidMessage):
            s.add("assistant", "x", **kwargs)
    assert s.messages() == []


# -- 5. listing arguments -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"updated_after": "2020-01-01"}, InvalidFilter),
        ({"updated_before": 1700000000}, InvalidFilter),
        ({"cursor": 123}, InvalidCursor),
        ({"cursor": "[" * 100_000}, InvalidCursor),
        ({"cursor": "WzEsMiwzXQ"}, InvalidCursor),  # [1,2,3]
        ({"cursor": "WyJhIiwiYiJd"}, InvalidCursor),  # ["a","b"]
        ({"cursor": "WzEuMCwiXHUwMDAwIl0"}, InvalidCursor),  # [1.0,"\u0000"]
        ({"cursor": "WzFlOTk5LCJ4Il0"}, InvalidCursor),  # [1e999,"x"]
        ({"metadata": {"k": 2**70}}, InvalidFilter),
        ({"metadata": {"a\x00b": 1}}, InvalidFilter),
        ({"metadata": {"k": math.nan}}, InvalidFilter),
        ({"metadata": {"k": {1, 2}}}, InvalidFilter),
        ({"metadata": {1: "x"}}, InvalidFilter),
        ({"metadata": ["k"]}, InvalidFilter),
        ({"metadata": {"k": deep(500)}}, InvalidFilter),
        ({"limit": True}, InvalidFilter),
        ({"limit": "10"}, InvalidFilter),
        ({"user_id": 5}, InvalidSessionId),
        ({"namespace": ""}, InvalidSessionId),
    ],
    ids=short,
)
def test_bad_listing_arguments_raise_typed_errors(mem: Memory, kwargs: dict[str, Any], error: type[Exception]) -> None:
    mem.session("a", metadata={"k": 1}).add("user", "x")
    with pytest.raises(error):
        mem.sessions(**kwargs)
    assert [i.id for i in mem.sessions()] == ["a"]


# -- 6. import validates every field before committing anything --------------------------------------------------


def _export(mem: Memory, sid: str) -> list[str]:
    return list(mem.export_session(sid))


@pytest.mark.parametrize(
    "change",
    [
        {"user_id": 42},
        {"user_id": ""},
        {"metadata": ["x"]},
        {"metadata": {"x": math.nan}},
        {"id": 7},
        {"id": "a\nb"},
        {"v": "1"},
        {"created_at": 5},
    ],
    ids=short,
)
def test_an_import_header_with_a_bad_field_stores_nothing(make_memory: MemoryFactory, change: dict[str, Any]) -> None:
    source = make_memory(namespace="src")
    source.session("orig", user_id="u1", metadata={"a": 1}).extend([Message("user", "one"), Message("user", "two")])
    lines = _export(source, "orig")
    header = json.loads(lines[0])
    header.update(change)
    target = make_memory(namespace="dst")
    with pytest.raises(MemvaultError):
        target.import_session([json.dumps(header, allow_nan=True), *lines[1:]])
    assert list(target.sessions()) == []


def test_a_bad_line_anywhere_rejects_the_whole_import(make_memory: MemoryFactory) -> None:
    source = make_memory(namespace="src")
    source.session("orig").extend([Message("user", f"m{i}") for i in range(1200)])
    lines = _export(source, "orig")
    broken = json.loads(lines[-1])
    broken["role"] = "robot"
    target = make_memory(namespace="dst")
    with pytest.raises(InvalidMessage):
        target.import_session([*lines[:-1], json.dumps(broken)])  # 1,199 good lines come first (several batches)
    assert list(target.sessions()) == []
    for junk in ([*lines, "{not json"], [*lines, "[1, 2]"], [*lines, json.dumps({"role": "user"})], [*lines, 5]):
        with pytest.raises(CorruptData):
            target.import_session(junk)  # type: ignore[arg-type]
    assert list(target.sessions()) == []
    info = target.import_session(lines)
    assert info.message_count == 1200


# -- 7. one metadata-filter semantics on every backend ---------------------------------------------------------------
# the cases are the shipped conformance kit's (memvault.testing.conformance.sessions), run here per backend


@pytest.mark.parametrize(("stored", "wanted", "expected"), FILTER_CASES, ids=short)
def test_listing_metadata_filter_is_json_equality_on_every_backend(
    mem: Memory, stored: dict[str, Any], wanted: dict[str, Any], expected: bool
) -> None:
    assert json_equal(stored, {**stored, **wanted}) is expected or "missing" in wanted
    mem.session("target", metadata=stored).add("user", "x")
    mem.session("noise", metadata={"other": 1}).add("user", "x")
    found = [i.id for i in mem.sessions(metadata=wanted)]
    assert found == (["target"] if expected else [])


# -- 8. the empty namespace --------------------------------------------------------------------------------------


def test_an_empty_namespace_is_an_error_everywhere(mem: Memory, make_memory: MemoryFactory) -> None:
    with pytest.raises(InvalidSessionId):
        make_memory(namespace="")
    for call in (lambda: mem.session("s", namespace=""), lambda: mem.sessions(namespace=""),
                 lambda: mem.get_session("s", namespace=""), lambda: mem.recall("x", namespace=""),
                 lambda: mem.collection("c", namespace="")):
        with pytest.raises(InvalidSessionId):
            call()


# -- 9. exiting without close never aborts the interpreter ---------------------------------------------------------

EXIT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from memvault import Memory
    target, options = json.loads(sys.argv[1])
    mem = Memory(target, **options)
    s = mem.session("exit")
    s.extend([{"role": "user", "content": f"message {i} about travel plans and food"} for i in range(40)])
    mem.recall("travel", session="exit", k=3)  # starts the engine and its background indexer
    for j in range(4):  # the indexer is busy embedding these when the interpreter exits
        s.extend([{"role": "user", "content": f"later message {j} {i} with more words"} for i in range(64)])
    print("done")
    """
)


@pytest.mark.parametrize("backend_name", sorted(b for b in BACKENDS if b != "memory"))  # memory://: one process
def test_exiting_without_close_while_the_indexer_runs_exits_cleanly(
    backend_name: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    target, options = BACKENDS[backend_name](request, "exit", tmp_path)
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, json.dumps([target, options])],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "done" and "terminate called" not in done.stderr


# -- 10. pops are atomic -------------------------------------------------------------------------------------------


async def test_concurrent_pops_never_return_one_message_twice(mem: Memory) -> None:
    s = mem.session("queue")
    stored = await s.aextend([Message("user", f"m{i}") for i in range(50)])
    results = await asyncio.gather(*(s.apop() for _ in range(60)))
    popped = [m.id for r in results for m in r]
    assert sorted(popped) == sorted(m.id for m in stored)  # each exactly once, and no extra
    assert await s.acount() == 0


async def test_concurrent_pops_by_id_split_the_messages(mem: Memory) -> None:
    s = mem.session("ids")
    stored = await s.aextend([Message("user", f"m{i}") for i in range(30)])
    ids = [m.id for m in stored]
    results = await asyncio.gather(*(s.apop(ids=ids) for _ in range(8)))
    popped = [m.id for r in results for m in r]
    assert sorted(popped) == sorted(ids)
    assert await s.acount() == 0


def test_pop_positions_follow_python(mem: Memory) -> None:
    s = mem.session("pos")
    s.extend([Message("user", str(i)) for i in range(10)])
    assert [m.text for m in s.pop()] == ["9"]
    assert [m.text for m in s.pop(0)] == ["0"]
    assert [m.text for m in s.pop(2, count=3)] == ["3", "4", "5"]
    assert [m.text for m in s.pop(-2, count=5)] == ["7", "8"]
    assert s.pop(10) == [] and s.pop(-10) == [] and s.pop(3) == []
    assert [m.text for m in s.messages()] == ["1", "2", "6"]
    assert [m.seq for m in s.messages()] == [2, 3, 7]
    info = mem.get_session("pos")
    assert info.message_count == 3
    assert s.add("user", "next").seq == 11  # seqs are never reused
    assert mem.session("never").pop() == []
    with pytest.raises(InvalidFilter):
        s.pop(count=0)
    with pytest.raises(InvalidFilter):
        s.pop("1")  # type: ignore[arg-type]


# -- 3. a second embedder on the same store checks the model before writing anything -------------------------------


class OtherHash(HashEmbedder):
    """Same dimension as the app's embedder, another model: vectors that must never be mixed with the app's."""

    def __init__(self) -> None:
        super().__init__(256)
        self.model_id = "other-hash-256"


def test_a_second_embedder_on_the_same_store_writes_nothing_and_keyword_recall_still_works(
    make_memory: MemoryFactory,
) -> None:
    app = make_memory(embedder="hash")
    s = app.session("s")
    s.extend([Message("user", "the red fox jumps"), Message("user", "a blue whale sings")])
    assert app.recall("fox", session="s", k=1)[0].message.text == "the red fox jumps"
    tool = make_memory(embedder=OtherHash())  # e.g. `memvault recall` with another model than the app's
    with pytest.raises(EmbeddingModelMismatch):
        tool.recall("fox", session="s", k=1)
    with pytest.raises(EmbeddingModelMismatch):
        tool.recall("fox", k=1, mode="dense")
    assert tool.recall("fox", session="s", k=1, mode="keyword")[0].message.text == "the red fox jumps"
    assert tool.recall("whale", k=1, mode="keyword")[0].message.text == "a blue whale sings"
    assert tool.recall("fox", session="s", k=1, degrade=True)[0].message.text == "the red fox jumps"
    tool.session("s").add("user", "a green frog croaks")  # its background indexer must not embed this
    tool.recall_service.flush()
    assert app.recall("frog", session="s", k=1)[0].message.text == "a green frog croaks"  # the app keeps working
    assert app.recall("whale", k=1)[0].message.text == "a blue whale sings"
    assert tool.context("s", query="fox", budget_tokens=200).messages  # context degrades to keywords
