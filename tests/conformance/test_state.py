"""Session state (versioned JSON with compare-and-set) and session metadata updates, on every backend."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory, SessionNotFound
from memvault.drive import run_sync
from memvault.errors import InvalidFilter, InvalidMetadata, InvalidSessionId, StateConflict
from memvault.state import KIND, State
from memvault.validation import MAX_SESSION_METADATA_BYTES, MAX_STATE_BYTES
from tests.backends import BACKENDS


def _stored(mem: Memory, sid: str) -> list[tuple[str, bytes]]:
    return mem.store.scan_entries(mem.namespace, sid, KIND)


def test_state_starts_empty_and_each_set_is_a_version(mem: Memory, clock: Any) -> None:
    s = mem.session("st")
    empty = s.state.get()
    assert (empty.data, empty.version, empty.updated_at) == ({}, 0, None)
    first = s.state.set({"step": 1, "plan": ["a", "b"]}, actor="planner")
    assert (first.data, first.version, first.actor) == ({"step": 1, "plan": ["a", "b"]}, 1, "planner")
    second = s.state.set({"step": 2})
    assert second.version == 2
    got = s.state.get()
    assert (got.data, got.version, got.actor) == ({"step": 2}, 2, None)
    assert got.updated_at is not None and got.updated_at == second.updated_at
    assert mem.get_session("st").message_count == 0  # state is not a message
    other = mem.session("other").state.get()
    assert other.version == 0 and other.data == {}


def test_compare_and_set_conflict_changes_nothing(mem: Memory) -> None:
    s = mem.session("cas")
    s.state.set({"n": 1})
    assert s.state.set({"n": 2}, expected_version=1).version == 2
    with pytest.raises(StateConflict) as caught:
        s.state.set({"n": 99}, expected_version=1)
    assert (caught.value.expected, caught.value.current) == (1, 2)
    with pytest.raises(StateConflict):
        s.state.set({"n": 99}, expected_version=5)
    with pytest.raises(StateConflict):
        mem.session("fresh").state.set({"n": 1}, expected_version=1)  # never set: it is at version 0
    assert mem.session("fresh").state.set({"n": 1}, expected_version=0).version == 1
    got = s.state.get()
    assert (got.data, got.version) == ({"n": 2}, 2)
    assert [e.version for e in s.state.history()] == [2, 1]


def test_update_is_a_read_modify_write(mem: Memory) -> None:
    s = mem.session("upd")
    seen: list[dict[str, Any]] = []

    def bump(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data)
        data["n"] = data.get("n", 0) + 1  # fn gets a copy: mutating it changes nothing stored
        return data

    assert s.state.update(bump).data == {"n": 1}
    assert s.state.update(bump, actor="worker-2").data == {"n": 2}
    assert seen == [{"n": 1}, {"n": 2}]
    assert s.state.history()[0].actor == "worker-2"
    with pytest.raises(TypeError):
        s.state.update(lambda d: _async_value(d))  # a coroutine function needs aupdate
    assert s.state.get().version == 2


async def _async_value(data: dict[str, Any]) -> dict[str, Any]:
    return data | {"async": True}


def test_a_lost_race_is_retried_by_update(mem: Memory) -> None:
    s = mem.session("race")
    s.state.set({"n": 0})
    calls = 0

    def meddle(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # another writer gets in between this read and this write
            mem.session("race").state.set({"n": 100, "other": True})
        return data | {"n": data["n"] + 1}

    assert s.state.update(meddle).data == {"n": 101, "other": True}
    assert calls == 2
    with pytest.raises(StateConflict):  # retries=0: the lost race is reported
        s.state.update(lambda d: mem.session("race").state.set({"n": -1}) and d, retries=0)


def test_state_data_is_validated(mem: Memory) -> None:
    s = mem.session("val")
    for bad in ({"x": float("nan")}, {"x": {1, 2}}, {1: "int key"}, ["not", "a", "dict"], "text", None,
                {"deep": _nested(40)}, {"big": "x" * (MAX_STATE_BYTES + 1)}):
        with pytest.raises(InvalidMetadata):
            s.state.set(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidMetadata):
        s.state.update(lambda d: {"when": object()})
    with pytest.raises(InvalidSessionId):
        s.state.set({"ok": 1}, actor="bad\nactor")
    with pytest.raises(InvalidFilter):
        s.state.set({"ok": 1}, expected_version=-1)
    assert s.state.get().version == 0 and not mem.session("val").exists()
    assert s.state.set({"nul": "a\x00b", "int": 2**62, "nested": _nested(20)}).data["nul"] == "a\x00b"
    assert s.state.get().data["nested"] == _nested(20)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"d": value}
    return value


def test_history_names_what_changed_and_is_bounded(make_memory: Any) -> None:
    mem = make_memory(state_history=5)
    s = mem.session("h")
    s.state.set({"a": 1, "b": 1}, actor="x")
    s.state.set({"a": 2, "c": 1})
    s.state.set({"a": 2, "c": 1, "d": [1]})
    first = s.state.history()
    assert [e.version for e in first] == [3, 2, 1]
    assert (first[2].added, first[2].removed, first[2].changed, first[2].actor) == (["a", "b"], [], [], "x")
    assert (first[1].added, first[1].removed, first[1].changed) == (["c"], ["b"], ["a"])
    assert (first[0].added, first[0].removed, first[0].changed) == (["d"], [], [])
    assert first[1].data == {"a": 2, "c": 1} and first[0].at >= first[2].at
    s.state.set({"a": True, "c": 1, "d": [1]})  # True is not 1: a change
    assert s.state.history(limit=1)[0].changed == ["a"]
    for i in range(30):
        s.state.update(lambda d, i=i: d | {"i": i})
    history = s.state.history()
    assert [e.version for e in history] == [34, 33, 32, 31, 30]
    assert [e.version for e in s.state.history(limit=2)] == [34, 33]
    assert [e.version for e in s.state.history(limit=50)] == [34, 33, 32, 31, 30]
    full = [key for key, value in _stored(mem, "h") if value]
    assert len(full) == 5  # older versions keep only their key (a tombstone), not their data
    assert s.state.get().data["i"] == 29
    unbounded = make_memory(state_history=None).session("all")
    for i in range(12):
        unbounded.state.set({"i": i})
    assert len(unbounded.state.history()) == 12
    with pytest.raises(InvalidFilter):
        make_memory(state_history=0)


def test_a_stale_writer_never_lands_below_the_latest(make_memory: Any) -> None:
    mem = make_memory(state_history=3)
    s = mem.session("stale")
    s.state.set({"n": 0})
    seen = s.state.get()  # a writer reads version 1 ... and stalls while 20 more versions are written
    for n in range(1, 21):
        s.state.set({"n": n})
    with pytest.raises(StateConflict):  # version 2 left the history long ago, but its number is still taken
        run_sync(mem.store, s.state._write(seen, {"n": "stale"}, None))
    assert s.state.get().data == {"n": 20} and s.state.get().version == 21
    assert State({}, 0, None).version == 0


def test_state_lives_and_dies_with_its_session(make_memory: Any) -> None:
    mem = make_memory()
    s = mem.session("life", user_id="u1")
    s.state.set({"x": 1})
    assert mem.get_session("life").user_id == "u1"  # the first set creates the session with its options
    s.add("user", "hello")
    assert s.clear() == 1
    assert s.state.get().version == 0  # clear drops state with the rest
    s.state.set({"x": 2})
    assert mem.delete_session("life")
    assert s.state.get() == State({}, 0, None) and _stored(mem, "life") == []
    tenant = make_memory(namespace="tenant-b")
    tenant.session("life").state.set({"other": "tenant"})
    assert s.state.get().version == 0
    assert mem.session("life").state.set({"x": 3}).version == 1
    assert tenant.session("life").state.get().data == {"other": "tenant"}


def test_state_is_read_back_by_a_new_memory(make_memory: Any) -> None:
    make_memory().session("reopen").state.set({"kept": [1, 2.5, "three", None, {"x": True}]}, actor="a")
    got = make_memory().session("reopen").state.get()
    assert (got.data, got.version, got.actor) == ({"kept": [1, 2.5, "three", None, {"x": True}]}, 1, "a")


def test_concurrent_compare_and_set_has_exactly_one_winner(mem: Memory) -> None:
    mem.session("one").state.set({"start": True})
    wins: list[int] = []
    losses: list[int] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        try:
            mem.session("one").state.set({"writer": i}, expected_version=1)
        except StateConflict:
            with lock:
                losses.append(i)
        else:
            with lock:
                wins.append(i)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7
    assert mem.session("one").state.get().data == {"writer": wins[0]}


# -- contention: 8 writers x 100 updates of one counter --------------------------------------------------------------

WRITERS, UPDATES = 8, 100
WORKER = r"""
import json, sys
from memvault import Memory

url, n, options = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
with Memory(url, **options) as mem:
    state = mem.session("counter").state
    state.get()  # connected and warmed up before the start line
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(n):
        state.update(lambda d: d | {"n": d.get("n", 0) + 1})
print("done", flush=True)
"""


def _check_counter(mem: Memory) -> None:
    got = mem.session("counter").state.get()
    assert got.data == {"n": WRITERS * UPDATES}
    assert got.version == WRITERS * UPDATES  # one version per successful update: none lost, none doubled
    history = mem.session("counter").state.history()
    assert [e.version for e in history] == list(range(800, 700, -1))
    assert all(e.changed == ["n"] and e.data == {"n": e.version} for e in history)


@pytest.mark.slow
def test_update_under_contention_loses_nothing(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                                               make_memory: Any) -> None:
    if backend == "memory" or backend not in BACKENDS:  # in-process stores and client flavours: threads
        mem = make_memory()

        def run() -> None:
            state = mem.session("counter").state
            for _ in range(UPDATES):
                state.update(lambda d: d | {"n": d.get("n", 0) + 1})

        threads = [threading.Thread(target=run) for _ in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _check_counter(mem)
        return
    target, options = BACKENDS[backend](request, f"c{uuid.uuid4().hex[:12]}", tmp_path)
    assert isinstance(target, str)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, target, str(UPDATES), json.dumps(options)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(WRITERS)]
    try:
        for w in workers:
            assert w.stdout.readline().strip() == "ready", w.stderr.read()  # type: ignore[union-attr]
        for w in workers:
            w.stdin.write("go\n")  # type: ignore[union-attr]
            w.stdin.flush()  # type: ignore[union-attr]
        for w in workers:
            out, err = w.communicate(timeout=600)
            assert w.returncode == 0 and out.strip() == "done", err
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    with Memory(target, **options) as mem:
        _check_counter(mem)


# -- session metadata -------------------------------------------------------------------------------------------------


def test_update_metadata_merges_or_replaces(mem: Memory) -> None:
    s = mem.session("md", metadata={"topic": "travel", "n": 1, "big": 10**18, "f": 1e300})
    with pytest.raises(SessionNotFound):
        s.update_metadata({"x": 1})  # nothing written yet
    s.add("user", "hi")
    info = s.update_metadata({"n": 2, "new": {"nested": [1, None, True]}})
    assert info.metadata == {"topic": "travel", "n": 2, "big": 10**18, "f": 1e300, "new": {"nested": [1, None, True]}}
    assert list(info.metadata) == ["topic", "n", "big", "f", "new"]  # existing keys keep their place
    assert mem.get_session("md").metadata == info.metadata
    assert isinstance(mem.get_session("md").metadata["f"], float)
    assert [i.id for i in mem.sessions(metadata={"n": 2})] == ["md"]
    assert mem.sessions(metadata={"n": 1}).items == []
    replaced = s.update_metadata({"only": "this"}, replace=True)
    assert replaced.metadata == {"only": "this"} == mem.get_session("md").metadata
    assert s.update_metadata({}, replace=True).metadata == {}
    assert s.update_metadata({"a": 1}).metadata == {"a": 1}
    assert info.message_count == 1 and mem.get_session("md").message_count == 1


def test_update_metadata_is_validated_and_refusals_change_nothing(mem: Memory) -> None:
    s = mem.session("mdv")
    s.add("user", "hi")
    s.update_metadata({"keep": 1})
    for bad in ({"x": float("inf")}, {"x": "a\x00b"}, {"x": object()}, "text", None, [1]):
        with pytest.raises(InvalidMetadata):
            s.update_metadata(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidFilter):
        s.update_metadata({"x": 1}, replace="yes")  # type: ignore[arg-type]
    half = "x" * (MAX_SESSION_METADATA_BYTES // 2)
    s.update_metadata({"a": half})
    with pytest.raises(InvalidMetadata):  # each part is fine, the merge would be too large
        s.update_metadata({"b": half})
    assert mem.get_session("mdv").metadata == {"keep": 1, "a": half}
    assert s.update_metadata({"b": half}, replace=True).metadata == {"b": half}
    with pytest.raises(SessionNotFound):
        mem.session("ghost").update_metadata({"x": 1})
    assert not mem.session("ghost").exists()


def test_concurrent_merges_of_different_keys_all_land(mem: Memory) -> None:
    s = mem.session("mdc")
    s.add("user", "hi")
    errors: list[BaseException] = []

    def merge(i: int) -> None:
        try:
            for j in range(5):
                mem.session("mdc").update_metadata({f"k{i}-{j}": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=merge, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert mem.get_session("mdc").metadata == {f"k{i}-{j}": i for i in range(6) for j in range(5)}


def test_update_metadata_moves_updated_at(make_memory: Any, clock: Any) -> None:
    mem = make_memory(clock=clock)
    mem.session("old").add("user", "x")
    clock.advance(10)
    mem.session("new").add("user", "y")
    clock.advance(10)
    info = mem.session("old").update_metadata({"touched": True})
    assert info.updated_at.timestamp() == pytest.approx(clock.now)
    assert [i.id for i in mem.sessions()] == ["old", "new"]


# -- the async face ----------------------------------------------------------------------------------------------------


async def test_the_async_face(mem: Memory) -> None:
    s = mem.session("async")
    assert (await s.state.aget()).version == 0
    assert (await s.state.aset({"n": 1}, actor="a")).version == 1
    with pytest.raises(StateConflict):
        await s.state.aset({"n": 5}, expected_version=0)
    assert (await s.state.aset({"n": 2}, expected_version=1)).data == {"n": 2}
    assert (await s.state.aupdate(lambda d: d | {"sync": True})).data == {"n": 2, "sync": True}
    assert (await s.state.aupdate(_async_value)).data == {"n": 2, "sync": True, "async": True}
    assert [e.version for e in await s.state.ahistory(limit=2)] == [4, 3]
    assert s.state.get().version == 4
    info = await s.aupdate_metadata({"via": "async"})
    assert info.metadata == {"via": "async"}
    assert (await s.aupdate_metadata({"x": 1}, replace=True)).metadata == {"x": 1}
    with pytest.raises(SessionNotFound):
        await mem.session("nobody").aupdate_metadata({"x": 1})
