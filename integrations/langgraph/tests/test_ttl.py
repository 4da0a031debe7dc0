"""Store TTL on every STORES entry declaring "ttl": default_ttl, per-item ttl (shorter, longer, None), refresh on
read (get, search) and its opt-outs, sweep counts, the background sweeper and ``omit_expired``. Our own versions of
the upstream ``tests/test_ttl.py`` (sqlite) and the TTL cases of the postgres ``test_store.py``.

TTLs are real time (upstream stores expire by the database clock), so each test is one timeline whose margins follow
the entry's ``ttl_resolution`` (SQLite: CURRENT_TIMESTAMP has whole seconds, so a refresh can land up to 1 s early
and a sweep can see a clock up to 1 s behind). Expired-but-unswept items are only asserted absent where the entry
declares ``omit_expired``: upstream stores keep returning them until a sweep.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from lg_harness import StoreFactory

pytestmark = pytest.mark.requires("ttl")

MARGIN = 0.3  # seconds of slack on each side of every expiry decision


class Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - self.now()))

    def assert_before(self, t: float, what: str) -> None:
        assert self.now() < t, f"too slow to test TTLs reliably: {what} at {self.now():.2f}s, needed before {t:.2f}s"


def minutes(seconds: float) -> float:
    return seconds / 60


def present(store: Any, ns: tuple[str, ...], key: str) -> bool:
    return store.get(ns, key, refresh_ttl=False) is not None


async def test_ttl_lifecycle(store_factory: StoreFactory) -> None:
    """One timeline, sync and async APIs side by side:

    * t=0: A, A2, B, B2, C, C2 use default_ttl T; X has ttl T/4, L has ttl 4T, P has ttl=None;
      E uses a second instance whose TTLConfig has refresh_on_read=False.
    * t=r (< T): sweep removes X only; A / A2 read (refresh by default), C / C2 found by a search with
      refresh_ttl=True, B / B2 / E read without refreshing.
    * t=s (> T): sweep removes B, B2, E only; A, A2, C, C2 (refreshed), L and P remain.
    * t=f (> r + T): sweep removes A, A2, C, C2; L and P remain.

    The schedule is computed from the entry's ttl_resolution and from how long the puts really took.
    """
    res = store_factory.spec.ttl_resolution
    puts_budget, reads_budget, checks_budget = 0.6, 0.4, 0.4
    T = puts_budget + 3 * MARGIN + 2 * res + reads_budget + checks_budget + 0.05
    ttl = {"default_ttl": minutes(T), "refresh_on_read": True}
    spec = store_factory.spec
    store = store_factory(ttl=ttl)
    no_refresh = store_factory(ttl={"default_ttl": minutes(T), "refresh_on_read": False})
    async with store_factory.aopen(ttl=ttl) as astore:
        for warm in (store, no_refresh):  # connections (and a cluster's map) are made before the clock starts
            warm.get(("warm",), "up", refresh_ttl=False)
        await astore.aget(("warm",), "up", refresh_ttl=False)
        clock = Clock()
        for key in ("A", "B", "C"):
            store.put(("ttl", "sync"), key, {"id": key})
            await astore.aput(("ttl", "async"), key + "2", {"id": key + "2"})
        store.put(("ttl", "x"), "X", {"id": "X"}, ttl=minutes(T / 4))
        store.put(("ttl", "keep"), "L", {"id": "L"}, ttl=minutes(4 * T))
        store.put(("ttl", "keep"), "P", {"id": "P"}, ttl=None)
        no_refresh.put(("ttl", "e"), "E", {"id": "E"})
        puts = clock.now()
        clock.assert_before(puts_budget, "the puts")
        # r: X (expires by puts + T/4) is sweepable; a refresh at r still outlives the sweep at s and its checks
        r = max(puts + T / 4 + MARGIN + res, puts + 2 * MARGIN + 2 * res + checks_budget) + 0.05
        s = puts + T + MARGIN + res  # everything unrefreshed with the default TTL has expired
        f = r + reads_budget + T + MARGIN + res  # the refreshed ones too
        assert r + reads_budget + MARGIN < T  # the reads at r happen before anything they read expires

        await clock.until(r)
        assert spec.sweep(store) == 1  # X
        assert store.get(("ttl", "x"), "X") is None
        assert ("ttl", "x") not in store.list_namespaces(prefix=("ttl",))
        assert store.get(("ttl", "sync"), "A") is not None  # refresh_ttl=None -> refresh_on_read=True
        assert await astore.aget(("ttl", "async"), "A2") is not None
        assert [i.key for i in store.search(("ttl", "sync"), filter={"id": "C"}, refresh_ttl=True)] == ["C"]
        assert [i.key for i in await astore.asearch(("ttl", "async"), filter={"id": "C2"}, refresh_ttl=True)] == ["C2"]
        assert store.get(("ttl", "sync"), "B", refresh_ttl=False) is not None
        assert await astore.aget(("ttl", "async"), "B2", refresh_ttl=False) is not None
        assert [i.key for i in store.search(("ttl", "sync"), filter={"id": "B"}, refresh_ttl=False)] == ["B"]
        assert no_refresh.get(("ttl", "e"), "E") is not None  # refresh_ttl=None -> refresh_on_read=False
        clock.assert_before(r + reads_budget, "the reads at r")

        await clock.until(s)
        assert spec.sweep(store) == 3  # B, B2, E
        assert await spec.asweep(astore) == 0
        assert {i.key for i in store.search(("ttl",), limit=50, refresh_ttl=False)} == {"A", "A2", "C", "C2", "L", "P"}
        assert not present(store, ("ttl", "sync"), "B") and not present(store, ("ttl", "e"), "E")
        assert await astore.aget(("ttl", "async"), "B2", refresh_ttl=False) is None
        assert ("ttl", "e") not in store.list_namespaces(prefix=("ttl",))
        clock.assert_before(s + checks_budget, "the checks at s")

        await clock.until(f)
        assert await spec.asweep(astore) == 4  # A, A2, C, C2: a refresh extends, it does not make permanent
        assert {i.key for i in store.search(("ttl",), limit=50, refresh_ttl=False)} == {"L", "P"}
        assert set(store.list_namespaces(prefix=("ttl",))) == {("ttl", "keep")}


async def test_ttl_update_restarts_the_clock_and_can_remove_it(store_factory: StoreFactory) -> None:
    """A put replaces the item's TTL: re-putting restarts it, ``ttl=None`` makes the item permanent."""
    res = store_factory.spec.ttl_resolution
    puts_budget = 0.5
    again = 2 * MARGIN + res + puts_budget + 0.1  # re-put time: its new expiry outlives the sweep below
    T = again + MARGIN + 0.1
    sweep_at = T + MARGIN + res + puts_budget  # the untouched item has surely expired
    store = store_factory(ttl={"default_ttl": minutes(T), "refresh_on_read": False})
    store.get(("warm",), "up", refresh_ttl=False)  # connections (and a cluster's map) are made before the clock starts
    clock = Clock()
    store.put(("u",), "restart", {"v": 1})
    store.put(("u",), "forever", {"v": 1})
    store.put(("u",), "expires", {"v": 1})
    clock.assert_before(puts_budget, "the puts")
    await clock.until(again)
    store.put(("u",), "restart", {"v": 2})  # a new default TTL from now: expires at again + T > sweep_at + MARGIN
    store.put(("u",), "forever", {"v": 2}, ttl=None)
    clock.assert_before(again + puts_budget, "the second puts")
    await clock.until(sweep_at)
    assert store_factory.spec.sweep(store) == 1
    assert {i.key: i.value["v"] for i in store.search(("u",))} == {"restart": 2, "forever": 2}


@pytest.mark.requires("ttl_sweeper")
def test_background_sweeper_removes_expired_items(store_factory: StoreFactory) -> None:
    res = store_factory.spec.ttl_resolution
    T, interval = 0.5, 0.25
    store = store_factory(ttl={"default_ttl": minutes(T), "sweep_interval_minutes": minutes(interval)})
    store_factory.spec.start_sweeper(store)
    try:
        store.put(("sw",), "short", {"v": 1})
        store.put(("sw",), "long", {"v": 1}, ttl=minutes(60))
        deadline = time.monotonic() + T + interval + res + MARGIN + 1.0
        while present(store, ("sw",), "short") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not present(store, ("sw",), "short"), "the sweeper did not remove an expired item"
        assert present(store, ("sw",), "long")
    finally:
        store_factory.spec.stop_sweeper(store)


@pytest.mark.requires("omit_expired")
async def test_omit_expired_hides_unswept_items(store_factory: StoreFactory) -> None:
    res = store_factory.spec.ttl_resolution
    T = 0.5
    store = store_factory(ttl={"default_ttl": minutes(T), "omit_expired": True, "refresh_on_read": True})
    store.put(("omit", "gone"), "e", {"data": "gone"})
    store.put(("omit", "kept"), "k", {"data": "kept"}, ttl=None)
    store.put(("omit", "kept"), "live", {"data": "live"}, ttl=minutes(60))
    await asyncio.sleep(T + MARGIN + res)
    assert store.get(("omit", "gone"), "e", refresh_ttl=True) is None  # expired: not returned, not resurrected
    assert store.search(("omit", "gone"), refresh_ttl=True) == []
    assert {i.key for i in store.search(("omit",))} == {"k", "live"}
    assert store.list_namespaces(prefix=("omit",)) == [("omit", "kept")]
    assert store_factory.spec.sweep(store) == 1  # still there until swept, and still not resurrected
