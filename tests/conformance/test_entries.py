"""Entries: every backend's ordered binary key-value space per session (checkpoints, documents, state, artifacts)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from memvault import Memory
from memvault.contract import AppendOptions, Entry, prefix_range

OPTS = AppendOptions()
KEYS = ["a", "a\x1f1", "a\x1f2", "ab", "b", "z", "é", "ö-2", "€", "😀", "\U0010fffd"]  # code point = UTF-8 order


def _seed(store: Any, sid: str = "s", kind: str = "k") -> None:
    store.put_entries("ns", sid, [Entry(kind, key, key.encode("utf-8") * 2) for key in reversed(KEYS)], OPTS)


def test_put_get_and_ordered_scans(mem: Memory) -> None:
    store = mem.store
    _seed(store)
    assert store.get_entries("ns", "s", "k", ["a", "z", "missing"]) == {"a": b"aa", "z": b"zz"}
    everything = store.scan_entries("ns", "s", "k")
    assert [k for k, _ in everything] == sorted(KEYS) == KEYS
    assert all(v == k.encode() * 2 for k, v in everything)
    assert [k for k, _ in store.scan_entries("ns", "s", "k", reverse=True)] == KEYS[::-1]
    assert [k for k, _ in store.scan_entries("ns", "s", "k", start="ab", stop="é")] == ["ab", "b", "z"]
    assert [k for k, _ in store.scan_entries("ns", "s", "k", start="b", limit=2)] == ["b", "z"]
    assert [k for k, _ in store.scan_entries("ns", "s", "k", stop="b", reverse=True, limit=2)] == ["ab", "a\x1f2"]
    start, stop = prefix_range("a\x1f")
    assert store.scan_entries("ns", "s", "k", start=start, stop=stop, keys_only=True) == [("a\x1f1", b""),
                                                                                        ("a\x1f2", b"")]
    assert store.scan_entries("ns", "s", "other") == [] and store.get_entries("ns", "s", "other", ["a"]) == {}
    assert store.scan_entries("ns", "nobody", "k") == []


def test_values_are_bytes_of_any_content_and_size(mem: Memory) -> None:
    store = mem.store
    blob = bytes(range(256)) * 4096 + b"\x00\xff"  # 1 MiB + 2, every byte value, NUL included
    store.put_entries("ns", "s", [Entry("b", "big", blob), Entry("b", "empty", b"")], OPTS)
    assert store.get_entries("ns", "s", "b", ["big", "empty"]) == {"big": blob, "empty": b""}


def test_upsert_if_absent_and_batch_order(mem: Memory) -> None:
    store = mem.store
    assert store.put_entries("ns", "s", [Entry("k", "x", b"1")], OPTS) == [True]
    assert store.put_entries("ns", "s", [Entry("k", "x", b"2")], OPTS) == [True]
    assert store.get_entries("ns", "s", "k", ["x"]) == {"x": b"2"}
    assert store.put_entries("ns", "s", [Entry("k", "x", b"3"), Entry("k", "y", b"4")], OPTS, if_absent=True) == [
        False, True]
    assert store.get_entries("ns", "s", "k", ["x", "y"]) == {"x": b"2", "y": b"4"}
    # one batch across kinds; a repeated key: last wins (first with if_absent)
    store.put_entries("ns", "s", [Entry("k", "r", b"first"), Entry("j", "r", b"other kind"),
                                  Entry("k", "r", b"second")], OPTS)
    assert store.get_entries("ns", "s", "k", ["r"]) == {"r": b"second"}
    assert store.get_entries("ns", "s", "j", ["r"]) == {"r": b"other kind"}
    assert store.put_entries("ns", "s", [Entry("k", "n", b"1"), Entry("k", "n", b"2")], OPTS, if_absent=True) == [
        True, False]
    assert store.get_entries("ns", "s", "k", ["n"]) == {"n": b"1"}


def test_deletes_by_keys_and_ranges(mem: Memory) -> None:
    store = mem.store
    _seed(store)
    assert store.delete_entries("ns", "s", "k", ["a", "missing", "a"]) == 1
    assert store.delete_entries("ns", "s", "k", start="ab", stop="é") == 3
    assert [k for k, _ in store.scan_entries("ns", "s", "k")] == ["a\x1f1", "a\x1f2", "é", "ö-2", "€", "😀",
                                                                 "\U0010fffd"]
    assert store.delete_entries("ns", "s", "k", start="€") == 3
    assert store.delete_entries("ns", "s", "k") == 4
    assert store.scan_entries("ns", "s", "k") == []


def test_entries_live_and_die_with_their_session(make_memory: Any, clock: Any) -> None:
    mem = make_memory(clock=clock)
    store = mem.store
    info = store.ensure_session("ns", "old", OPTS)
    store.put_entries("ns", "new", [Entry("k", "x", b"1")], AppendOptions(user_id="u", ttl=10))
    created = store.get_session("ns", "new")
    assert created is not None and created.user_id == "u"  # put_entries creates the session
    clock.advance(8)
    store.put_entries("ns", "new", [Entry("k", "y", b"2")], AppendOptions(ttl=10))  # a write slides the TTL
    clock.advance(8)
    assert store.get_entries("ns", "new", "k", ["x", "y"]) == {"x": b"1", "y": b"2"}
    clock.advance(3)
    assert store.get_session("ns", "new") is None
    assert store.get_entries("ns", "new", "k", ["x"]) == {} and store.scan_entries("ns", "new", "k") == []
    store.put_entries("ns", "new", [Entry("k", "z", b"3")], OPTS)  # a write to an expired session starts afresh
    assert [k for k, _ in store.scan_entries("ns", "new", "k")] == ["z"]
    store.put_entries("ns", "old", [Entry("k", "a", b"1")], OPTS)
    assert store.clear("ns", "old") == 0 and store.scan_entries("ns", "old", "k") == []
    assert store.get_session("ns", "old") is not None and info.id == "old"
    store.put_entries("ns", "old", [Entry("k", "a", b"1")], OPTS)
    assert store.delete_session("ns", "old")
    assert store.scan_entries("ns", "old", "k") == []
    store.put_entries("other-ns", "new", [Entry("k", "z", b"other tenant")], OPTS)
    assert store.get_entries("ns", "new", "k", ["z"]) == {"z": b"3"}


def test_if_absent_races_have_exactly_one_winner(mem: Memory) -> None:
    store = mem.store
    store.ensure_session("ns", "race", OPTS)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        won = store.put_entries("ns", "race", [Entry("v", "00000001", str(i).encode())], OPTS, if_absent=True)
        with lock:
            results.extend(won)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    winner = store.get_entries("ns", "race", "v", ["00000001"])["00000001"]
    assert int(winner) in range(8)


async def test_the_async_face_has_the_same_entries(mem: Memory) -> None:
    aio = mem.store.aio
    assert await aio.put_entries("ns", "a", [Entry("k", "x", b"1"), Entry("k", "y", b"2")], OPTS) == [True, True]
    assert await aio.get_entries("ns", "a", "k", ["x"]) == {"x": b"1"}
    assert await aio.scan_entries("ns", "a", "k", reverse=True) == [("y", b"2"), ("x", b"1")]
    results = await asyncio.gather(*(aio.put_entries("ns", "a", [Entry("k", "z", b"%d" % i)], OPTS, if_absent=True)
                                     for i in range(5)))
    assert sorted(r[0] for r in results) == [False] * 4 + [True]
    assert await aio.delete_entries("ns", "a", "k", start="y") == 2
    assert mem.store.scan_entries("ns", "a", "k") == [("x", b"1")]


@pytest.mark.parametrize("count", [1200])
def test_large_batches_are_one_write(mem: Memory, count: int) -> None:
    store = mem.store
    entries = [Entry("many", f"{i:06d}", b"v%d" % i) for i in range(count)]
    assert store.put_entries("ns", "s", entries, OPTS) == [True] * count
    assert len(store.scan_entries("ns", "s", "many", keys_only=True)) == count
    assert len(store.get_entries("ns", "s", "many", [e.key for e in entries])) == count
    assert store.delete_entries("ns", "s", "many", [e.key for e in entries[:700]]) == 700


def _records(*ids: str) -> list[Any]:
    from memvault import Message
    from memvault.model import encode_body

    return [encode_body(Message(role="user", content=f"text of {i}", id=i)) for i in ids]


def test_append_entries_writes_messages_and_entries_together(mem: Memory) -> None:
    store = mem.store
    store.append("ns", "t", _records("m0"), OPTS)
    seqs = store.append_entries("ns", "t", _records("m1", "m2"), [Entry("c", "k1", b"a"), Entry("c", "k1", b"b"),
                                                                  Entry("d", "k2", b"c")], OPTS)
    assert seqs == [2, 3]
    assert store.get_entries("ns", "t", "c", ["k1"]) == {"k1": b"b"}  # a repeated key: the last wins
    assert store.get_entries("ns", "t", "d", ["k2"]) == {"k2": b"c"}
    # a retry (same ids) appends nothing twice and returns the same seqs; entries are overwritten
    assert store.append_entries("ns", "t", _records("m1", "m2"), [Entry("c", "k1", b"again")], OPTS) == [2, 3]
    assert [m.id for m in store.read("ns", "t")] == ["m0", "m1", "m2"]
    assert store.get_entries("ns", "t", "c", ["k1"]) == {"k1": b"again"}
    assert store.append_entries("ns", "t", [], [Entry("c", "only", b"x")], OPTS) == []
    assert store.get_entries("ns", "t", "c", ["only"]) == {"only": b"x"}
    assert store.append_entries("ns", "fresh", _records("f1"), [], OPTS) == [1]  # creates the session
    assert store.get_session("ns", "fresh") is not None


def test_append_entries_are_never_seen_before_their_messages(mem: Memory) -> None:
    store = mem.store
    store.ensure_session("ns", "w", OPTS)
    seen_broken: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            for key, value in store.scan_entries("ns", "w", "ref"):
                ids = value.decode().split(",")
                if len(store.get_messages("ns", "w", ids)) != len(ids):
                    seen_broken.append(key)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for step in range(40):
            ids = [f"s{step}-{j}" for j in range(3)]
            store.append_entries("ns", "w", _records(*ids), [Entry("ref", f"{step:04d}", ",".join(ids).encode())], OPTS)
    finally:
        done.set()
        thread.join()
    assert not seen_broken
    assert store.count("ns", "w") == 120


async def test_append_entries_on_the_async_face(mem: Memory) -> None:
    aio = mem.store.aio
    assert await aio.append_entries("ns", "a", _records("x1", "x2"), [Entry("k", "x", b"1")], OPTS) == [1, 2]
    assert await aio.get_entries("ns", "a", "k", ["x"]) == {"x": b"1"}
    assert [m.id for m in await aio.read("ns", "a")] == ["x1", "x2"]
