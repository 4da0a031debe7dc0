"""Checks of the async face as such, and of the optional capabilities a store declares: ``multiprocess`` (with the
``reopen`` hook), ``native_async``, ``fulltext``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, cast

from memvault.contract import AppendOptions, Entry, SessionQuery, Store
from memvault.errors import InvalidCursor
from memvault.faces import ThreadedAsyncStore
from memvault.model import Message, encode_body
from memvault.testing.conformance.helpers import OPTS, ids, rec, recs, seqs
from memvault.testing.conformance.kit import Context, check, eq, ok, raises

#: the contract's methods (a native async face must run none of them)
CONTRACT_METHODS = (
    "get_session", "ensure_session", "delete_session", "list_sessions", "purge_expired", "update_metadata", "append",
    "replace", "read",
    "get_messages", "delete_messages", "pop_messages", "count", "clear", "put_record", "get_records",
    "delete_records", "put_entries", "append_entries", "get_entries", "scan_entries", "delete_entries",
)

# -- the async face ------------------------------------------------------------------------------------------------------


@check("async_face", faces=("async",))
def gathered_coroutines_stay_consistent(ctx: Context) -> None:
    """Coroutines of store.aio gathered on one event loop: unique seqs, every read right, each pop once."""
    ns = ctx.ns

    async def scenario(aio: Any) -> None:
        got = await asyncio.gather(*(aio.append(ns, "g", [rec(f"m{i:02d}")], OPTS) for i in range(30)))
        eq(sorted(q for r in got for q in r), list(range(1, 31)), "seqs of 30 gathered appends")
        await asyncio.gather(*(aio.append(ns, f"s{i}", recs(f"a{i}", f"b{i}"), OPTS) for i in range(10)))
        reads = await asyncio.gather(*(aio.read(ns, f"s{i}") for i in range(10)))
        eq([ids(r) for r in reads], [[f"a{i}", f"b{i}"] for i in range(10)], "gathered reads")
        infos = await asyncio.gather(*(aio.get_session(ns, f"s{i}") for i in range(10)))
        eq([i.message_count for i in infos], [2] * 10, "gathered get_session")
        pops = await asyncio.gather(*(aio.pop_messages(ns, "g", index=0, count=1) for _ in range(35)))
        eq(sorted(m.id for p in pops for m in p), [f"m{i:02d}" for i in range(30)], "gathered pops (each once)")
        won = await asyncio.gather(*(aio.put_entries(ns, "g", [Entry("k", "z", b"%d" % i)], OPTS, if_absent=True)
                                     for i in range(5)))
        eq(sorted(r[0] for r in won), [False] * 4 + [True], "gathered if_absent writes")

    ctx.run_async(scenario)


# -- multiprocess -----------------------------------------------------------------------------------------------------------


@check("multiprocess", requires="multiprocess")
def a_second_instance_sees_every_write(ctx: Context) -> None:
    """Two instances on one location (as two processes): each sees the other's writes at once, ids stay idempotent
    across them, and deletes, clears and expiry apply to both."""
    a, b, ns, clock = ctx.s, ctx.second(), ctx.ns, ctx.clock
    a.append(ns, "x", recs("m1", "m2"), AppendOptions(user_id="u", metadata={"k": 1}))
    a.put_record(ns, "x", "summary", "1", {"t": "a"})
    a.put_entries(ns, "x", [Entry("k", "e", b"v")], OPTS)
    eq(ids(b.read(ns, "x")), ["m1", "m2"], "the second instance reads the first's messages")
    info = b.get_session(ns, "x")
    ok(info is not None and (info.user_id, info.metadata, info.last_seq) == ("u", {"k": 1}, 2), f"its info: {info}")
    eq((b.get_records(ns, "x", "summary"), b.get_entries(ns, "x", "k", ["e"])), ([("1", {"t": "a"})], {"e": b"v"}),
       "records and entries through the second instance")
    eq([i.id for i in b.list_sessions(SessionQuery(namespace=ns)).items], ["x"], "listing through the second")
    eq(b.append(ns, "x", recs("m3", "m1"), OPTS), [3, 1], "the second instance continues the seqs, idempotently")
    eq(ids(a.read(ns, "x")), ["m1", "m2", "m3"], "the first sees the second's append")
    eq(b.delete_messages(ns, "x", ["m2"]), 1, "delete through the second")
    eq(a.count(ns, "x"), 2, "the first sees the delete")
    eq(b.clear(ns, "x"), 2, "clear through the second")
    eq((a.read(ns, "x"), a.get_records(ns, "x", "summary"), a.scan_entries(ns, "x", "k")), ([], [], []),
       "the first sees the clear")
    eq(a.append(ns, "x", recs("m4"), OPTS), [4], "the seq counter is shared")
    a.append(ns, "short", recs("m"), AppendOptions(ttl=10))
    clock.advance(11)
    eq(b.get_session(ns, "short"), None, "expiry as seen by the second instance (same clock)")
    eq(b.purge_expired(), 1, "purge through the second instance")
    ok(b.delete_session(ns, "x"), "delete_session through the second")
    eq(a.get_session(ns, "x"), None, "the first sees the delete_session")


@check("multiprocess", requires="multiprocess")
def committed_writes_survive_close(ctx: Context) -> None:
    """What one instance committed is there for an instance opened after it closed."""
    ns = ctx.ns
    ctx.s.append(ns, "p", recs("m1", "m2"), AppendOptions(user_id="u"))
    ctx.s.put_entries(ns, "p", [Entry("k", "e", b"v")], OPTS)
    ctx.s.close()
    b = ctx.second()
    eq(ids(b.read(ns, "p")), ["m1", "m2"], "messages after reopening")
    eq(b.get_entries(ns, "p", "k", ["e"]), {"e": b"v"}, "entries after reopening")
    info = b.get_session(ns, "p")
    ok(info is not None and info.user_id == "u", f"the session after reopening: {info}")


@check("multiprocess", requires="multiprocess")
def instances_race_safely(ctx: Context) -> None:
    """Concurrent appends, if_absent writes and pops through two instances: unique contiguous seqs, one winner,
    each message popped once."""
    a, b, ns = ctx.s, ctx.second(), ctx.ns
    both = [a, b]

    def writer(w: int) -> list[list[int]]:
        store = both[w % 2]
        return [store.append(ns, "c", recs(f"w{w}-{i}-0", f"w{w}-{i}-1"), OPTS) for i in range(6)]

    batches = [x for r in ctx.concurrently([partial(writer, w) for w in range(6)]) for x in r]
    eq(sorted(q for x in batches for q in x), list(range(1, 73)), "seqs of 36 batches through two instances")
    ok(all(x[1] == x[0] + 1 for x in batches), f"batches must stay contiguous: {batches}")
    def claim(i: int) -> bool:
        return both[i % 2].put_entries(ns, "c", [Entry("v", "k", b"%d" % i)], OPTS, if_absent=True)[0]

    won = ctx.concurrently([partial(claim, i) for i in range(8)])
    eq(sorted(won), [False] * 7 + [True], "if_absent through two instances")

    def drain(store: Store) -> list[str]:
        got: list[str] = []
        while popped := store.pop_messages(ns, "c", index=0, count=3):
            got += ids(popped)
        return got

    popped = ctx.concurrently([partial(drain, both[i % 2]) for i in range(6)])
    eq(len([m for p in popped for m in p]), 72, "pops through two instances return each message once")
    eq(len({m for p in popped for m in p}), 72, "no message popped twice")


# -- native_async -------------------------------------------------------------------------------------------------------


@check("native_async", requires="native_async", faces=("async",))
def the_async_face_runs_no_sync_method(ctx: Context) -> None:
    """store.aio is the backend's own async face: not ThreadedAsyncStore, and it never calls the sync methods."""
    store = ctx.store
    ok(not isinstance(store.aio, ThreadedAsyncStore), f"store.aio is {type(store.aio).__name__}, a thread offloader")
    called: list[str] = []

    def trap(name: str) -> Any:
        def sync_method(*args: Any, **kwargs: Any) -> Any:
            called.append(name)
            raise AssertionError(f"the async face called the sync {name}()")

        return sync_method

    for name in CONTRACT_METHODS:
        setattr(store, name, trap(name))
    try:
        s, ns = ctx.s, ctx.ns
        eq(s.append(ns, "n", recs("a", "b"), OPTS), [1, 2], "append")
        eq(ids(s.read(ns, "n", last=1)), ["b"], "read")
        ok(s.get_session(ns, "n") is not None, "get_session")
        eq(len(s.list_sessions(SessionQuery(namespace=ns)).items), 1, "list_sessions")
        s.put_entries(ns, "n", [Entry("k", "x", b"1")], OPTS)
        eq(s.scan_entries(ns, "n", "k"), [("x", b"1")], "scan_entries")
        eq(ids(s.pop_messages(ns, "n", index=0, count=1)), ["a"], "pop_messages")
        eq(s.count(ns, "n"), 1, "count")
    finally:
        for name in CONTRACT_METHODS:
            delattr(store, name)
    eq(called, [], "sync methods the async face called")


# -- fulltext -----------------------------------------------------------------------------------------------------------

_CORPUS: dict[tuple[str | None, str], list[str]] = {
    ("alice", "trip"): ["We are flying to Paris in May", "Book a hotel near the Louvre", "Paris museums on Monday"],
    ("alice", "code"): ["Python asyncio question", "How do I cancel a running task?"],
    ("bob", "bob-trip"): ["Paris or Rome for a weekend?", "O'Brien recommended Rome"],
    (None, "anon"): ["paris is lovely in spring"],
}


@check("fulltext", requires="fulltext")
def find_messages_searches_across_sessions(ctx: Context) -> None:
    """find_messages: words (all of them, any case) across a namespace's live sessions, filtered by user, sessions,
    created_at range (after <= t < before) and metadata; newest first without text; cursors walk every page."""
    s, ns = ctx.s, ctx.ns
    find = cast(Any, s).find_messages
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    n = 0
    for (user, sid), lines in _CORPUS.items():
        batch = []
        for line in lines:
            batch.append(encode_body(Message("user", line, created_at=base + timedelta(hours=n),
                                             metadata={"n": n, "even": n % 2 == 0}, id=f"id{n}")))
            n += 1
        s.append(ns, sid, batch, AppendOptions(user_id=user))
    s.append("kit-other", "trip", [rec("o", "Paris in another tenant")], AppendOptions(user_id="alice"))

    def texts_of(**kw: Any) -> list[str]:
        return sorted(m.text for m in find(ns, **kw).items)

    eq(texts_of(text="paris"), sorted(["We are flying to Paris in May", "Paris museums on Monday",
                                       "Paris or Rome for a weekend?", "paris is lovely in spring"]), "text='paris'")
    hits = find(ns, text="paris").items
    ok(all(m.session_id and m.seq for m in hits), "hits carry session_id and seq")
    eq(texts_of(text="paris rome"), ["Paris or Rome for a weekend?"], "two words: both must match")
    eq({m.session_id for m in find(ns, text="paris", user_id="alice").items}, {"trip"}, "text and user_id")
    eq(texts_of(text="paris", session_ids=["bob-trip", "anon"]), ["Paris or Rome for a weekend?",
                                                                  "paris is lovely in spring"], "text and session_ids")
    eq(texts_of(text="zeppelin"), [], "a word nobody said")
    everything = find(ns, limit=100).items
    eq([m.metadata["n"] for m in everything], list(reversed(range(8))), "no text: newest created_at first")
    window = find(ns, after=base + timedelta(hours=2), before=base + timedelta(hours=5)).items
    eq([m.metadata["n"] for m in window], [4, 3, 2], "after <= created_at < before")
    eq([m.metadata["n"] for m in find(ns, metadata={"even": True}, user_id="alice").items], [4, 2, 0],
       "metadata and user_id")
    for text in (None, "paris"):
        seen: list[tuple[str | None, int | None]] = []
        cursor = None
        for _ in range(20):
            page = find(ns, text=text, limit=2, cursor=cursor)
            seen += [(m.session_id, m.seq) for m in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        full = [(m.session_id, m.seq) for m in find(ns, text=text, limit=100).items]
        eq(seen, full, f"pages of 2 (text={text!r}) walk the full result")
        eq(len(set(seen)), 8 if text is None else 4, f"pages (text={text!r}) without repeats")
    eq([m.text for m in find("kit-other", text="paris").items], ["Paris in another tenant"], "another namespace")
    s.append(ns, "short", [rec("s1", "paris for one minute")], AppendOptions(ttl=60))
    ok("paris for one minute" in texts_of(text="paris"), "a live session's message is found")
    ctx.clock.advance(61)
    ok("paris for one minute" not in texts_of(text="paris"), "an expired session's messages are not found")
    raises(InvalidCursor, lambda: find(ns, cursor="garbage"), "find_messages(cursor='garbage')")
    eq(seqs(find(ns, text="louvre").items), [2], "the seq of a hit")
