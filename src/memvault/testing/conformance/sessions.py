"""Checks: sessions (get-or-create, delete, info), listing (order, cursors, filters), lifecycle, validation that
lives in the store (cursors, records of missing sessions)."""

from __future__ import annotations

from functools import partial
from typing import Any

from memvault.contract import AppendOptions, SessionQuery
from memvault.errors import InvalidCursor, InvalidMetadata, SessionNotFound
from memvault.model import SessionInfo
from memvault.testing.conformance.helpers import OPTS, body_bytes, rec, recs
from memvault.testing.conformance.kit import Context, check, eq, ok, raises

# -- sessions -------------------------------------------------------------------------------------------------------


@check("sessions")
def ensure_get_and_delete(ctx: Context) -> None:
    """ensure_session creates a session with the given fields once; get_session sees it; delete_session removes it
    (True once, then False) and a later ensure starts a fresh one."""
    s, ns, now = ctx.s, ctx.ns, ctx.clock.now
    eq(s.get_session(ns, "a"), None, "get_session of a session never written")
    meta = {"topic": "travel", "n": 1, "nested": {"ok": [1, 2.5, None]}}
    info = s.ensure_session(ns, "a", AppendOptions(user_id="u1", metadata=meta))
    eq((info.id, info.namespace, info.user_id, info.metadata), ("a", ns, "u1", meta), "ensure_session's SessionInfo")
    eq((info.message_count, info.last_seq, info.size_bytes, info.expires_at), (0, 0, 0, None),
       "a new session's (message_count, last_seq, size_bytes, expires_at)")
    eq(info.backend, ctx.store.backend, "SessionInfo.backend")
    ok(info.created_at.tzinfo is not None and info.updated_at.tzinfo is not None, "timestamps must be tz-aware")
    ok(abs(info.created_at.timestamp() - now) < 1e-3 and abs(info.updated_at.timestamp() - now) < 1e-3,
       f"created_at/updated_at must come from the store's clock ({now}), got {info.created_at}, {info.updated_at}")
    got = s.get_session(ns, "a")
    ok(got is not None, "get_session after ensure_session")
    assert got is not None
    eq((got.id, got.user_id, got.metadata, got.message_count), ("a", "u1", meta, 0), "get_session's SessionInfo")
    ctx.clock.advance(5)
    again = s.ensure_session(ns, "a", AppendOptions(user_id="u2", metadata={"other": True}))
    eq((again.user_id, again.metadata, again.created_at), ("u1", meta, info.created_at),
       "ensure_session of an existing session keeps the fields it was created with")
    eq(s.delete_session(ns, "a"), True, "delete_session of an existing session")
    eq(s.get_session(ns, "a"), None, "get_session after delete_session")
    eq(s.delete_session(ns, "a"), False, "delete_session twice")
    eq(s.delete_session(ns, "never"), False, "delete_session of a session never written")
    fresh = s.ensure_session(ns, "a", AppendOptions(user_id="u3"))
    eq((fresh.user_id, fresh.metadata, fresh.last_seq), ("u3", {}, 0), "ensure_session after delete: a fresh session")


@check("sessions")
def info_tracks_messages(ctx: Context) -> None:
    """SessionInfo counts messages, tracks last_seq and body bytes, and moves updated_at on every write."""
    s, ns = ctx.s, ctx.ns
    batch = [rec("m1", "héllo"), rec("m2", "hi 🚀")]
    s.append(ns, "i", batch, AppendOptions(user_id="u"))
    info = s.get_session(ns, "i")
    assert info is not None
    eq((info.message_count, info.last_seq), (2, 2), "(message_count, last_seq) after appending 2")
    ok(info.size_bytes >= body_bytes(batch) // 2 and info.size_bytes > 0,
       f"size_bytes must count the stored messages (bodies: {body_bytes(batch)} bytes), got {info.size_bytes}")
    created = info.created_at
    ctx.clock.advance(10)
    s.append(ns, "i", [rec("m3", "x" * 1000)], OPTS)
    later = s.get_session(ns, "i")
    assert later is not None
    eq((later.message_count, later.last_seq, later.created_at), (3, 3, created), "after a third append")
    ok(later.size_bytes >= info.size_bytes + 1000, f"size_bytes must grow with a 1000-char message: "
       f"{info.size_bytes} -> {later.size_bytes}")
    eq(later.updated_at.timestamp(), ctx.clock.now, "updated_at after a write (the store's clock)")
    s.delete_messages(ns, "i", ["m3"])
    shrunk = s.get_session(ns, "i")
    assert shrunk is not None
    eq(shrunk.message_count, 2, "message_count after delete_messages")
    ok(shrunk.size_bytes < later.size_bytes, f"size_bytes must shrink when messages are deleted: "
       f"{later.size_bytes} -> {shrunk.size_bytes}")


@check("sessions")
def update_metadata_merges_or_replaces(ctx: Context) -> None:
    """update_metadata merges top-level keys (or replaces everything) atomically, moves updated_at, keeps the TTL;
    SessionNotFound for a missing or expired session, InvalidMetadata (nothing changed) past the size limit."""
    s, ns, clock = ctx.s, ctx.ns, ctx.clock
    s.ensure_session(ns, "u", AppendOptions(user_id="u1", metadata={"a": 1, "b": {"x": 1}}, ttl=100))
    before = s.get_session(ns, "u")
    assert before is not None
    clock.advance(5)
    merged = s.update_metadata(ns, "u", {"b": 2, "c": [1, None]}, False)
    eq(merged.metadata, {"a": 1, "b": 2, "c": [1, None]}, "a merge sets the given top-level keys")
    eq(merged.updated_at.timestamp(), clock.now, "updated_at after update_metadata")
    eq((merged.expires_at, merged.user_id), (before.expires_at, "u1"), "update_metadata leaves the TTL and user")
    got = s.get_session(ns, "u")
    ok(got is not None and got.metadata == merged.metadata, f"get_session after a merge: {got}")
    eq([i.id for i in s.list_sessions(SessionQuery(namespace=ns, metadata={"b": 2})).items], ["u"],
       "the listing filter sees merged metadata")
    replaced = s.update_metadata(ns, "u", {"only": True}, True)
    eq(replaced.metadata, {"only": True}, "replace sets exactly the given metadata")
    eq([i.id for i in s.list_sessions(SessionQuery(namespace=ns, metadata={"a": 1})).items], [],
       "the listing filter forgets replaced keys")
    raises(InvalidMetadata, lambda: s.update_metadata(ns, "u", {"big": "x" * (70 * 1024)}, False),
           "a merge past the metadata size limit")
    got = s.get_session(ns, "u")
    ok(got is not None and got.metadata == {"only": True}, f"a refused update changes nothing: {got}")
    raises(SessionNotFound, lambda: s.update_metadata(ns, "never", {"a": 1}, False), "update_metadata, no session")
    eq(s.get_session(ns, "never"), None, "a refused update_metadata creates nothing")
    s.ensure_session(ns, "gone", AppendOptions(ttl=10))
    clock.advance(11)
    raises(SessionNotFound, lambda: s.update_metadata(ns, "gone", {"a": 1}, True), "update_metadata, expired")


@check("sessions")
def concurrent_metadata_merges_all_land(ctx: Context) -> None:
    """Concurrent update_metadata merges of different keys are each applied (one read-modify-write each)."""
    s, ns = ctx.s, ctx.ns
    s.ensure_session(ns, "m", AppendOptions(metadata={"base": 0}))
    def merge(i: int) -> SessionInfo:
        return s.update_metadata(ns, "m", {f"k{i}": i}, False)

    ctx.concurrently([partial(merge, i) for i in range(8)])
    info = s.get_session(ns, "m")
    ok(info is not None and info.metadata == {"base": 0, **{f"k{i}": i for i in range(8)}},
       f"8 concurrent merges of different keys: {info and info.metadata}")


# -- listing ----------------------------------------------------------------------------------------------------------


def _all_pages(s: Any, query: SessionQuery) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        page = s.list_sessions(SessionQuery(**{**query.__dict__, "cursor": cursor}))
        pages += 1
        seen += [i.id for i in page.items]
        cursor = page.next_cursor
        if cursor is None or pages > 100:
            return seen, pages


@check("listing")
def pages_newest_first(ctx: Context) -> None:
    """list_sessions pages newest updated_at first; next_cursor walks every session once, None on the last page."""
    s, ns = ctx.s, ctx.ns
    for i in range(23):
        ctx.clock.advance(1)
        s.append(ns, f"s{i:02d}", [rec(f"m{i}")], AppendOptions(user_id="u1" if i % 2 else "u2"))
    s.append("kit-other", "elsewhere", [rec("x")], OPTS)
    seen, pages = _all_pages(s, SessionQuery(namespace=ns, limit=10))
    eq(seen, [f"s{i:02d}" for i in reversed(range(23))], "all pages of limit=10, newest first")
    eq(pages, 3, "23 sessions in pages of 10")
    full = s.list_sessions(SessionQuery(namespace=ns, limit=23))
    eq((len(full.items), full.next_cursor), (23, None), "a page holding exactly everything has no next_cursor")
    odd = s.list_sessions(SessionQuery(namespace=ns, user_id="u1", limit=100))
    eq([i.id for i in odd.items], [f"s{i:02d}" for i in reversed(range(23)) if i % 2], "user_id filter")
    ctx.clock.advance(1)
    s.append(ns, "s00", [rec("again")], OPTS)  # a write moves a session to the front
    eq(s.list_sessions(SessionQuery(namespace=ns, limit=2)).items[0].id, "s00", "a written session lists first")
    s.delete_session(ns, "s01")
    ok("s01" not in _all_pages(s, SessionQuery(namespace=ns, limit=7))[0], "a deleted session is not listed")
    s.ensure_session(ns, "empty", OPTS)
    ok("empty" in [i.id for i in s.list_sessions(SessionQuery(namespace=ns, limit=5)).items],
       "a session without messages (ensure_session) is listed")
    eq(s.list_sessions(SessionQuery(namespace="kit-nobody")).items, [], "listing an empty namespace")


@check("listing")
def ties_page_without_gaps_or_repeats(ctx: Context) -> None:
    """Sessions with equal updated_at are ordered by id (descending) and paged without gaps or repeats."""
    s, ns = ctx.s, ctx.ns
    names = [f"t{i}" for i in range(9)] + ["a", "z", "é", "😀"]
    for name in names:
        s.append(ns, name, [rec("m")], OPTS)  # the clock does not move: one updated_at for all
    seen, _ = _all_pages(s, SessionQuery(namespace=ns, limit=4))
    eq(seen, sorted(names, reverse=True), "pages of 4 over sessions with one updated_at (id descending, code points)")


@check("listing")
def filters_by_time_and_user(ctx: Context) -> None:
    """updated_after is inclusive, updated_before exclusive; filters combine with user_id and metadata."""
    s, ns = ctx.s, ctx.ns
    start = ctx.clock.now
    s.append(ns, "paris", [rec("m")], AppendOptions(user_id="u1", metadata={"topic": "travel", "vip": True}))
    ctx.clock.advance(100)
    s.append(ns, "code", [rec("m")], AppendOptions(user_id="u2", metadata={"topic": "python"}))
    ctx.clock.advance(100)
    s.append(ns, "bare", [rec("m")], AppendOptions(user_id="u1"))

    def listed(**query: Any) -> list[str]:
        return [i.id for i in s.list_sessions(SessionQuery(namespace=ns, limit=100, **query)).items]

    eq(listed(updated_after=start + 50), ["bare", "code"], "updated_after")
    eq(listed(updated_before=start + 50), ["paris"], "updated_before")
    eq(listed(updated_after=start + 100), ["bare", "code"], "updated_after equal to a session's time (inclusive)")
    eq(listed(updated_before=start + 100), ["paris"], "updated_before equal to a session's time (exclusive)")
    eq(listed(updated_after=start + 50, updated_before=start + 150), ["code"], "a time window")
    eq(listed(user_id="u1", updated_after=start + 50), ["bare"], "user_id and updated_after together")
    eq(listed(user_id="u1", metadata={"topic": "travel"}), ["paris"], "user_id and metadata together")
    eq(listed(user_id="u2", metadata={"topic": "travel"}), [], "user_id and metadata that match different sessions")
    eq(listed(user_id="nobody"), [], "an unknown user_id")
    page = s.list_sessions(SessionQuery(namespace=ns, user_id="u1", limit=1))
    rest = s.list_sessions(SessionQuery(namespace=ns, user_id="u1", limit=1, cursor=page.next_cursor))
    eq(([i.id for i in page.items], [i.id for i in rest.items], rest.next_cursor), (["bare"], ["paris"], None),
       "paging a filtered listing")


#: (stored metadata, filter, match?): the filter is JSON equality of each given key's value, on every backend
FILTER_CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"topic": "travel", "n": 1}, {"topic": "travel"}, True),
    ({"topic": "travel", "n": 1}, {"topic": "travel", "n": 2}, False),
    ({"o": "O'Brien"}, {"o": "O'Brien"}, True),
    ({"o": {"a": 1, "b": 2}}, {"o": {"b": 2, "a": 1}}, True),
    ({"o": {"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}}}, {"o": {"b": {"c": [1, {"e": 3, "d": 2}]}, "a": 1}}, True),
    ({"o": {"a": 1}}, {"o": {"a": 1, "b": 2}}, False),
    ({"o": {"a": 1, "b": 2}}, {"o": {"a": 1}}, False),
    ({"l": [1, 2]}, {"l": [2, 1]}, False),
    ({"l": [1, 2]}, {"l": [1, 2]}, True),
    ({"n": 1}, {"n": True}, False),
    ({"n": 0}, {"n": False}, False),
    ({"n": True}, {"n": True}, True),
    ({"n": False}, {"n": False}, True),
    ({"n": True}, {"n": 1}, False),
    ({"n": 1}, {"n": 1.0}, True),
    ({"n": 2.5}, {"n": 2.5}, True),
    ({"o": {"x": 1}}, {"o": {"x": True}}, False),
    ({"o": {"x": 1}}, {"o": {"x": 1.0}}, True),
    ({"s": "1"}, {"s": 1}, False),
    ({"z": None}, {"z": None}, True),
    ({"z": None}, {"missing": None}, False),
    ({"e": {}}, {"e": {}}, True),
    ({"e": []}, {"e": {}}, False),
    ({"big": 2**62}, {"big": 2**62}, True),
    ({"u": "naïve ☃ 😀"}, {"u": "naïve ☃ 😀"}, True),
]


@check("listing")
def metadata_filter_is_json_equality(ctx: Context) -> None:
    """The metadata filter of list_sessions matches a session when each given key's value is JSON-equal to the
    stored one (1 == 1.0, True != 1, objects regardless of key order, arrays in order, a missing key never)."""
    s = ctx.s
    failures = []
    for i, (stored, wanted, match) in enumerate(FILTER_CASES):
        ns = f"kit-filter-{i}"
        s.append(ns, "target", [rec("m")], AppendOptions(metadata=stored))
        s.append(ns, "noise", [rec("m")], AppendOptions(metadata={"other": 1}))
        found = [x.id for x in s.list_sessions(SessionQuery(namespace=ns, metadata=wanted)).items]
        if found != (["target"] if match else []):
            failures.append(f"stored {stored!r}, filter {wanted!r}: {'should' if match else 'should not'} match")
    ok(not failures, "metadata filter: " + "; ".join(failures))


# -- validation that lives in the store ---------------------------------------------------------------------------

BAD_CURSORS = [
    "not-a-cursor",
    "WzEsMiwzXQ",  # [1,2,3]
    "WyJhIiwiYiJd",  # ["a","b"]
    "WzEuMCwiXHUwMDAwIl0",  # [1.0,"\u0000"]
    "WzFlOTk5LCJ4Il0",  # [1e999,"x"]
    "e30",  # {}
    "W10",  # []
    "!!!!",
]


@check("validation")
def tampered_cursors_raise_invalid_cursor(ctx: Context) -> None:
    """A cursor list_sessions did not produce raises InvalidCursor (never a crash or a wrong page)."""
    s, ns = ctx.s, ctx.ns
    for i in range(3):
        s.append(ns, f"s{i}", recs(f"m{i}"), OPTS)
    good = s.list_sessions(SessionQuery(namespace=ns, limit=1)).next_cursor
    ok(isinstance(good, str), "next_cursor of a first page of 1 (of 3) must be a str")
    for bad in BAD_CURSORS:
        raises(InvalidCursor, partial(s.list_sessions, SessionQuery(namespace=ns, cursor=bad)),
               f"list_sessions(cursor={bad!r})")
    eq(len(s.list_sessions(SessionQuery(namespace=ns, cursor=good)).items), 2, "the real cursor still works")


@check("validation")
def records_need_a_live_session(ctx: Context) -> None:
    """put_record raises SessionNotFound for a session that was never written, was deleted or has expired."""
    s, ns = ctx.s, ctx.ns
    raises(SessionNotFound, lambda: s.put_record(ns, "never", "summary", "1", {}), "put_record, no session")
    s.ensure_session(ns, "gone", OPTS)
    s.delete_session(ns, "gone")
    raises(SessionNotFound, lambda: s.put_record(ns, "gone", "summary", "1", {}), "put_record after delete")
    s.ensure_session(ns, "old", AppendOptions(ttl=10))
    ctx.clock.advance(11)
    raises(SessionNotFound, lambda: s.put_record(ns, "old", "summary", "1", {}), "put_record on an expired session")
    eq(s.get_session(ns, "never"), None, "a refused put_record creates nothing")


# -- lifecycle ----------------------------------------------------------------------------------------------------------


@check("lifecycle")
def declares_ping_stats_and_closes_twice(ctx: Context) -> None:
    """The store declares its backend and capabilities, answers ping and stats, and closing twice is fine."""
    store, s = ctx.store, ctx.s
    ok(isinstance(store.backend, str) and store.backend not in ("", "abstract"), "Store.backend must name it")
    ok(isinstance(store.capabilities, frozenset) and all(isinstance(c, str) for c in store.capabilities),
       f"Store.capabilities must be a frozenset of str, got {store.capabilities!r}")
    ok(isinstance(store.url, str) and store.url, f"Store.url must name the location, got {store.url!r}")
    ok(store.clock is ctx.clock or store.clock() == ctx.clock.now, "the store must read time from the factory's clock")
    s.ping()
    stats = s.stats()
    ok(isinstance(stats, dict) and stats.get("backend") == store.backend, f"stats() must hold backend, got {stats!r}")
    eq(store.aio.store, store, "store.aio.store")
    info = s.ensure_session(ctx.ns, "before-close", OPTS)
    eq(info.id, "before-close", "ensure_session before close")
    s.close()
    s.close()

