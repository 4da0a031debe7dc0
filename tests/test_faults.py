"""memvault.testing.faults: FaultyStore injects errors, latency and partial failures on both faces, counts them, and
drives memvault's own behaviour (the spool replays after an outage, exactly once; Memory raises typed errors)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from memvault import BackendUnavailable, Memory, Message
from memvault.backends.inmemory import InMemoryStore
from memvault.backends.sqlite import SQLiteStore
from memvault.contract import AppendOptions, Entry
from memvault.errors import MemvaultError
from memvault.model import encode_body
from memvault.spool import SpoolStore
from memvault.testing.conformance import validate
from memvault.testing.faults import CONTRACT_METHODS, READS, WRITES, Fault, FaultyStore

OPTS = AppendOptions()


def rec(mid: str) -> Any:
    return encode_body(Message("user", f"text of {mid}", id=mid))


@pytest.fixture
def faulty() -> FaultyStore:
    return FaultyStore(InMemoryStore(), seed=7)


# -- the injector ------------------------------------------------------------------------------------------------


def test_every_nth_call_fails_before_the_store_is_touched(faulty: FaultyStore) -> None:
    faulty.fail("append", every=3)
    outcomes = []
    for i in range(7):
        try:
            faulty.append("ns", "s", [rec(f"m{i}")], OPTS)
            outcomes.append("ok")
        except BackendUnavailable as exc:
            assert "injected by FaultyStore: append (before)" in str(exc)
            outcomes.append("fail")
    assert outcomes == ["ok", "ok", "fail", "ok", "ok", "fail", "ok"]
    assert [m.id for m in faulty.read("ns", "s")] == ["m0", "m1", "m3", "m4", "m6"]  # the failed ones never landed
    assert faulty.injected == {("append", "before"): 2}
    assert faulty.calls["append"] == 7 and faulty.calls["read"] == 1


def test_a_failure_after_the_commit_loses_only_the_acknowledgement(faulty: FaultyStore) -> None:
    faulty.fail("put_entries", when="after", times=1)
    with pytest.raises(BackendUnavailable):
        faulty.put_entries("ns", "s", [Entry("k", "x", b"1")], OPTS)
    assert faulty.get_entries("ns", "s", "k", ["x"]) == {"x": b"1"}  # committed all the same
    assert faulty.put_entries("ns", "s", [Entry("k", "y", b"2")], OPTS) == [True]  # times=1: spent
    assert faulty.total("after") == 1 and faulty.rules[0].spent


def test_probability_is_reproducible_from_the_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        store = FaultyStore(InMemoryStore(), seed=seed)
        store.fail("reads", probability=0.3)
        hits = []
        for _ in range(200):
            try:
                store.count("ns", "s")
                hits.append(False)
            except BackendUnavailable:
                hits.append(True)
        return hits

    first = pattern(11)
    assert first == pattern(11)  # same seed, same faults
    assert first != pattern(12)
    assert 40 <= sum(first) <= 80  # ~30% of 200


def test_skip_times_groups_error_types_and_removal(faulty: FaultyStore) -> None:
    rule = faulty.fail("writes", error=TimeoutError, skip=2, times=2)
    results = []
    for i in range(6):
        try:
            faulty.ensure_session("ns", f"s{i}", OPTS)
            results.append("ok")
        except TimeoutError:
            results.append("timeout")
    assert results == ["ok", "ok", "timeout", "timeout", "ok", "ok"]
    assert (rule.seen, rule.fired) == (6, 2)
    faulty.remove(rule)
    custom = faulty.fail(["count", "read"], error=lambda method: MemvaultError(f"boom in {method}"))
    with pytest.raises(MemvaultError, match="boom in count"):
        faulty.count("ns", "s0")
    instance = ValueError("the very same object")
    faulty.fail("get_session", error=instance)
    with pytest.raises(ValueError) as caught:
        faulty.get_session("ns", "s0")
    assert caught.value is instance
    faulty.clear_faults()
    assert faulty.count("ns", "s0") == 0 and custom not in faulty.rules
    assert READS | WRITES | {"ping"} == CONTRACT_METHODS and "update_metadata" in WRITES
    with pytest.raises(ValueError, match="neither a store method"):
        faulty.fail("apend")
    with pytest.raises(ValueError):
        Fault(frozenset({"read"}), every=0)


def test_latency_and_outages_on_the_sync_face(faulty: FaultyStore) -> None:
    faulty.delay("read", 0.05)
    started = time.monotonic()
    for _ in range(3):
        faulty.read("ns", "s")
    assert time.monotonic() - started >= 0.15
    assert faulty.injected[("read", "delay")] == 3
    with faulty.outage():
        for call in (lambda: faulty.ping(), lambda: faulty.count("ns", "s"),
                     lambda: faulty.append("ns", "s", [rec("x")], OPTS)):
            with pytest.raises(BackendUnavailable):
                call()
    faulty.ping()  # the outage ended with the block
    assert faulty.append("ns", "s", [rec("x")], OPTS) == [1]
    assert faulty.stats()["faults"] == {"append:before": 1, "count:before": 1, "ping:before": 1, "read:delay": 3}


async def test_the_async_face_has_the_same_rules_and_sleeps_without_blocking(faulty: FaultyStore) -> None:
    aio = faulty.aio
    faulty.delay("count", 0.2)
    started = time.monotonic()
    counts = await asyncio.gather(*(aio.count("ns", "s") for _ in range(10)))
    assert counts == [0] * 10
    assert time.monotonic() - started < 1.0  # ten 0.2 s delays overlap: asyncio.sleep, not time.sleep
    faulty.fail("append", when="after", times=1)
    with pytest.raises(BackendUnavailable):
        await aio.append("ns", "a", [rec("m1")], OPTS)
    assert [m.id for m in await aio.read("ns", "a")] == ["m1"]  # the write happened, its ack was lost
    assert await aio.append("ns", "a", [rec("m1")], OPTS) == [1]  # the retry is idempotent
    with faulty.outage(), pytest.raises(BackendUnavailable):
        await aio.ping()
    assert faulty.injected == {("count", "delay"): 10, ("append", "after"): 1, ("ping", "before"): 1}


async def test_a_native_async_face_stays_native(request: pytest.FixtureRequest) -> None:
    from memvault.backends.redis import RedisStore
    from memvault.backends.redis.aio import RedisAsyncStore

    inner = RedisStore.from_url(request.getfixturevalue("redis_url"), prefix="mvt:faults:", ttl=None)
    store = FaultyStore(inner)
    try:
        assert "native_async" in store.capabilities and isinstance(inner.aio, RedisAsyncStore)
        store.fail("read", every=2)
        await store.aio.append("ns", "n", [rec("a")], OPTS)
        assert [m.id for m in await store.aio.read("ns", "n")] == ["a"]
        with pytest.raises(BackendUnavailable):
            await store.aio.read("ns", "n")
        assert await store.aio.delete_session("ns", "n")
    finally:
        await store.aio.close()


def test_without_rules_it_is_transparent_to_the_conformance_kit(tmp_path: Path) -> None:
    paths = iter(range(1000))

    def make(*, clock: Any) -> FaultyStore:
        store = FaultyStore(SQLiteStore(tmp_path / f"{next(paths)}.db", clock=clock))
        store.delay("*", 0.0005)  # latency alone changes nothing
        return store

    report = validate(make, reopen=lambda s: FaultyStore(SQLiteStore(s.inner.path, clock=s.clock)))  # type: ignore[attr-defined]
    assert report.ok, report.summary(verbose=True)
    broken = validate(lambda *, clock: _failing(clock), only=["messages.append_is_idempotent_on_id"])
    assert len(broken.failed) == 2 and all("BackendUnavailable" in (r.error or "") for r in broken.failed)


def _failing(clock: Any) -> FaultyStore:
    store = FaultyStore(InMemoryStore(clock=clock))
    store.fail("append", skip=2, times=1)
    return store


# -- memvault's behaviour under injected faults ----------------------------------------------------------------------


def eventually(call: Any, timeout: float = 10.0) -> Any:
    """``call()`` once it stops raising BackendUnavailable (the spool's breaker closes after its next probe)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_memory_raises_typed_errors_during_an_outage(tmp_path: Path) -> None:
    faulty = FaultyStore(SQLiteStore(tmp_path / "m.db"))
    with Memory(faulty, embedder="hash") as mem:
        s = mem.session("chat")
        s.add("user", "before the outage")
        with faulty.outage():
            for call in (lambda: s.add("user", "lost"), lambda: s.messages(), lambda: mem.sessions(),
                         lambda: s.info(), lambda: s.clear(), lambda: mem.delete_session("chat")):
                with pytest.raises(BackendUnavailable):
                    call()
        assert [m.text for m in s.messages()] == ["before the outage"]  # nothing half-written
        faulty.fail("append", when="after", times=1)  # the append lands, the caller sees an outage
        with pytest.raises(BackendUnavailable):
            s.add("user", "maybe", id="retry-me")
        assert s.add("user", "maybe", id="retry-me").seq == 2  # retrying with the same id is safe
        assert [m.text for m in s.messages()] == ["before the outage", "maybe"]


async def test_memory_async_twins_raise_typed_errors_too(tmp_path: Path) -> None:
    faulty = FaultyStore(SQLiteStore(tmp_path / "a.db"))
    async with Memory(faulty, embedder="hash") as mem:
        s = mem.session("chat")
        await s.aadd("user", "hello")
        faulty.fail("read", every=2)
        assert [m.text for m in await s.amessages(last=10)] == ["hello"]  # a tail read goes to the store each time
        with pytest.raises(BackendUnavailable):
            await s.amessages(last=10)
        assert faulty.injected[("read", "before")] == 1


def test_the_spool_replays_after_an_injected_outage_in_order(tmp_path: Path) -> None:
    faulty = FaultyStore(SQLiteStore(tmp_path / "db.sqlite"))
    mem = Memory(faulty, fallback="spool", spool_path=tmp_path / "spool.db", spool_retry=0.05, embedder="hash")
    try:
        spool = mem.store
        assert isinstance(spool, SpoolStore)
        s = mem.session("chat", user_id="u")
        s.add("user", "m0")
        with faulty.outage():
            spooled = [s.add("user", f"m{i}") for i in range(1, 4)] + s.extend([Message("assistant", "m4")])
            assert [m.seq for m in spooled] == [None] * 4  # acknowledged by the spool, seqs come on replay
            assert spool.pending() == 4
            with pytest.raises(BackendUnavailable):
                s.messages()  # reads fail fast while the backend is down
            deadline = time.monotonic() + 10
            while not faulty.total("before", "ping") and time.monotonic() < deadline:
                time.sleep(0.02)  # the spool's prober keeps pinging the backend, and keeps failing
            assert faulty.total("before", "ping") >= 1 and spool.pending() == 4
            assert faulty.total("before", "append") == 1  # one failed append opened the breaker: no more tries
        got = eventually(s.messages)  # the spool's prober pings, replays, closes the breaker
        assert spool.pending() == 0
        assert [m.text for m in got] == [f"m{i}" for i in range(5)] and [m.seq for m in got] == [1, 2, 3, 4, 5]
    finally:
        mem.close()


def test_a_lost_acknowledgement_is_replayed_exactly_once(tmp_path: Path) -> None:
    faulty = FaultyStore(SQLiteStore(tmp_path / "db.sqlite"))
    mem = Memory(faulty, fallback="spool", spool_path=tmp_path / "spool.db", spool_retry=0.05, embedder="hash")
    try:
        s = mem.session("chat")
        faulty.fail("append", when="after", times=1)  # stored by SQLite, then the "connection" drops
        stored = s.add("user", "once")
        assert stored.seq is None and mem.store.pending() == 1  # the spool took it over
        assert [m.text for m in eventually(s.messages)] == ["once"]  # replayed, and the replay stored nothing twice
        assert faulty.injected[("append", "after")] == 1 and faulty.calls["append"] == 2
    finally:
        mem.close()
