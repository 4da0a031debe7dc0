"""Checks: entries (the ordered binary key-value space), TTL (sliding expiry, purge) and isolation."""

from __future__ import annotations

import threading
from functools import partial

from memvault.contract import AppendOptions, Entry, SessionQuery, Store, prefix_range
from memvault.testing.conformance.helpers import OPTS, ids, rec, recs
from memvault.testing.conformance.kit import Context, check, eq, ok

#: sorted by code point, which is also UTF-8 byte order
KEYS = ["a", "a\x1f1", "a\x1f2", "ab", "b", "z", "é", "ö-2", "€", "😀", "\U0010fffd"]

# -- entries ----------------------------------------------------------------------------------------------------------


def _seed(s: Store, ns: str, sid: str = "s", kind: str = "k") -> None:
    s.put_entries(ns, sid, [Entry(kind, key, key.encode("utf-8") * 2) for key in reversed(KEYS)], OPTS)


@check("entries")
def put_get_and_ordered_scans(ctx: Context) -> None:
    """get_entries returns the existing keys; scan_entries walks key ranges in code point order, forwards and back."""
    s, ns = ctx.s, ctx.ns
    _seed(s, ns)
    eq(s.get_entries(ns, "s", "k", ["a", "z", "missing"]), {"a": b"aa", "z": b"zz"}, "get_entries")
    everything = s.scan_entries(ns, "s", "k")
    eq([k for k, _ in everything], KEYS, "scan_entries key order (code points)")
    ok(all(v == k.encode() * 2 for k, v in everything), "scan_entries values")
    eq([k for k, _ in s.scan_entries(ns, "s", "k", reverse=True)], KEYS[::-1], "reverse scan")
    eq([k for k, _ in s.scan_entries(ns, "s", "k", start="ab", stop="é")], ["ab", "b", "z"], "start <= key < stop")
    eq([k for k, _ in s.scan_entries(ns, "s", "k", start="b", limit=2)], ["b", "z"], "start with limit")
    eq([k for k, _ in s.scan_entries(ns, "s", "k", stop="b", reverse=True, limit=2)], ["ab", "a\x1f2"],
       "reverse with stop and limit: the greatest keys below stop")
    eq([k for k, _ in s.scan_entries(ns, "s", "k", start="é", reverse=True)], KEYS[:5:-1], "reverse with start")
    start, stop = prefix_range("a\x1f")
    eq(s.scan_entries(ns, "s", "k", start=start, stop=stop, keys_only=True), [("a\x1f1", b""), ("a\x1f2", b"")],
       "a prefix scan with keys_only")
    eq(s.scan_entries(ns, "s", "k", limit=0), [], "limit=0")
    eq(s.scan_entries(ns, "s", "k", start="zz", stop="a"), [], "an empty range")
    eq((s.scan_entries(ns, "s", "other"), s.get_entries(ns, "s", "other", ["a"])), ([], {}), "a kind never written")
    eq((s.scan_entries(ns, "nobody", "k"), s.get_entries(ns, "nobody", "k", ["a"])), ([], {}), "no session")
    eq(s.get_entries(ns, "s", "k", []), {}, "get_entries of no keys")


@check("entries")
def values_are_any_bytes(ctx: Context) -> None:
    """Entry values are bytes of any content and size (NUL, 0xff, empty, over a MiB)."""
    s, ns = ctx.s, ctx.ns
    blob = bytes(range(256)) * 4096 + b"\x00\xff"
    s.put_entries(ns, "s", [Entry("b", "big", blob), Entry("b", "empty", b""), Entry("b", "nul", b"\x00")], OPTS)
    eq(s.get_entries(ns, "s", "b", ["big", "empty", "nul"]), {"big": blob, "empty": b"", "nul": b"\x00"},
       "binary values")
    eq(s.scan_entries(ns, "s", "b", start="e"), [("empty", b""), ("nul", b"\x00")], "binary values by scan")
    ok(all(isinstance(v, bytes) for v in s.get_entries(ns, "s", "b", ["big", "empty"]).values()),
       "values must come back as bytes")


@check("entries")
def upsert_if_absent_and_batch_order(ctx: Context) -> None:
    """put_entries upserts; if_absent never overwrites; in one batch a repeated key: last wins (if_absent: first)."""
    s, ns = ctx.s, ctx.ns
    eq(s.put_entries(ns, "s", [Entry("k", "x", b"1")], OPTS), [True], "put a new key")
    eq(s.put_entries(ns, "s", [Entry("k", "x", b"2")], OPTS), [True], "put an existing key (upsert)")
    eq(s.get_entries(ns, "s", "k", ["x"]), {"x": b"2"}, "after the upsert")
    eq(s.put_entries(ns, "s", [Entry("k", "x", b"3"), Entry("k", "y", b"4")], OPTS, if_absent=True), [False, True],
       "if_absent with one existing key")
    eq(s.get_entries(ns, "s", "k", ["x", "y"]), {"x": b"2", "y": b"4"}, "if_absent never overwrites")
    s.put_entries(ns, "s", [Entry("k", "r", b"first"), Entry("j", "r", b"other kind"), Entry("k", "r", b"second")],
                  OPTS)
    eq(s.get_entries(ns, "s", "k", ["r"]), {"r": b"second"}, "a key repeated in one batch: the last wins")
    eq(s.get_entries(ns, "s", "j", ["r"]), {"r": b"other kind"}, "the same key in another kind is another entry")
    eq(s.put_entries(ns, "s", [Entry("k", "n", b"1"), Entry("k", "n", b"2")], OPTS, if_absent=True), [True, False],
       "a key repeated in one if_absent batch: the first wins")
    eq(s.get_entries(ns, "s", "k", ["n"]), {"n": b"1"}, "after the repeated if_absent batch")
    eq(s.put_entries(ns, "s", [], OPTS), [], "an empty batch")


@check("entries")
def deletes_by_keys_and_ranges(ctx: Context) -> None:
    """delete_entries by keys (each counted once) or by start <= key < stop (all when neither is given)."""
    s, ns = ctx.s, ctx.ns
    _seed(s, ns)
    eq(s.delete_entries(ns, "s", "k", ["a", "missing", "a"]), 1, "delete by keys")
    eq(s.delete_entries(ns, "s", "k", start="ab", stop="é"), 3, "delete a range")
    eq([k for k, _ in s.scan_entries(ns, "s", "k")], ["a\x1f1", "a\x1f2", "é", "ö-2", "€", "😀", "\U0010fffd"],
       "after the deletes")
    eq(s.delete_entries(ns, "s", "k", start="€"), 3, "delete from start to the end")
    eq(s.delete_entries(ns, "s", "k", stop="a\x1f2"), 1, "delete from the beginning to stop")
    eq(s.delete_entries(ns, "s", "k"), 3, "delete the whole kind")
    eq(s.scan_entries(ns, "s", "k"), [], "nothing left")
    eq(s.delete_entries(ns, "s", "k", []), 0, "delete no keys")
    eq(s.delete_entries(ns, "nobody", "k"), 0, "delete in a session never written")


@check("entries")
def entries_live_and_die_with_their_session(ctx: Context) -> None:
    """put_entries creates the session and slides its TTL; entries go with expiry, clear and delete_session."""
    s, ns, clock = ctx.s, ctx.ns, ctx.clock
    s.put_entries(ns, "new", [Entry("k", "x", b"1")], AppendOptions(user_id="u", ttl=10))
    created = s.get_session(ns, "new")
    ok(created is not None and created.user_id == "u", f"put_entries creates the session: {created}")
    clock.advance(8)
    s.put_entries(ns, "new", [Entry("k", "y", b"2")], AppendOptions(ttl=10))
    clock.advance(8)
    eq(s.get_entries(ns, "new", "k", ["x", "y"]), {"x": b"1", "y": b"2"}, "a put_entries slides the TTL")
    clock.advance(3)
    eq(s.get_session(ns, "new"), None, "the session after its TTL")
    eq((s.get_entries(ns, "new", "k", ["x"]), s.scan_entries(ns, "new", "k")), ({}, []), "entries after expiry")
    s.put_entries(ns, "new", [Entry("k", "z", b"3")], OPTS)
    eq([k for k, _ in s.scan_entries(ns, "new", "k")], ["z"], "a write to an expired session starts afresh")
    s.put_entries(ns, "old", [Entry("k", "a", b"1")], OPTS)
    eq(s.clear(ns, "old"), 0, "clear of a session with entries only")
    eq(s.scan_entries(ns, "old", "k"), [], "entries after clear")
    ok(s.get_session(ns, "old") is not None, "clear keeps the session")
    s.put_entries(ns, "old", [Entry("k", "a", b"1")], OPTS)
    ok(s.delete_session(ns, "old"), "delete_session of a session with entries")
    eq(s.scan_entries(ns, "old", "k"), [], "entries after delete_session")


@check("entries")
def if_absent_races_have_one_winner(ctx: Context) -> None:
    """Concurrent if_absent writes of one key: exactly one reports True, and its value is stored."""
    s, ns = ctx.s, ctx.ns
    s.ensure_session(ns, "race", OPTS)
    def claim(i: int) -> bool:
        return s.put_entries(ns, "race", [Entry("v", "00000001", str(i).encode())], OPTS, if_absent=True)[0]

    won = ctx.concurrently([partial(claim, i) for i in range(8)])
    eq(sorted(won), [False] * 7 + [True], "winners of 8 concurrent if_absent writes")
    value = s.get_entries(ns, "race", "v", ["00000001"])["00000001"]
    eq(int(value), won.index(True), "the stored value is the winner's")


@check("entries")
def large_batches(ctx: Context) -> None:
    """A batch of 1,200 entries is one write; so are deletes and reads of as many keys."""
    s, ns = ctx.s, ctx.ns
    entries = [Entry("many", f"{i:06d}", b"v%d" % i) for i in range(1200)]
    eq(s.put_entries(ns, "s", entries, OPTS), [True] * 1200, "put 1,200 entries")
    eq(len(s.scan_entries(ns, "s", "many", keys_only=True)), 1200, "scan 1,200 keys")
    eq(len(s.get_entries(ns, "s", "many", [e.key for e in entries])), 1200, "get 1,200 keys")
    eq(s.delete_entries(ns, "s", "many", [e.key for e in entries[:700]]), 700, "delete 700 keys")
    eq(s.scan_entries(ns, "s", "many", limit=1), [("000700", b"v700")], "the first key left")


@check("entries")
def append_entries_writes_messages_and_entries_together(ctx: Context) -> None:
    """append_entries appends records and writes entries in one write; a retry stores no message twice."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "t", recs("m0"), OPTS)
    got = s.append_entries(ns, "t", recs("m1", "m2"), [Entry("c", "k1", b"a"), Entry("c", "k1", b"b"),
                                                         Entry("d", "k2", b"c")], OPTS)
    eq(got, [2, 3], "append_entries' seqs")
    eq(s.get_entries(ns, "t", "c", ["k1"]), {"k1": b"b"}, "a repeated key: the last wins")
    eq(s.get_entries(ns, "t", "d", ["k2"]), {"k2": b"c"}, "entries of another kind in the same write")
    eq(s.append_entries(ns, "t", recs("m1", "m2"), [Entry("c", "k1", b"again")], OPTS), [2, 3], "a retry")
    eq(ids(s.read(ns, "t")), ["m0", "m1", "m2"], "no message stored twice")
    eq(s.get_entries(ns, "t", "c", ["k1"]), {"k1": b"again"}, "a retry's entries overwrite")
    eq(s.append_entries(ns, "t", [], [Entry("c", "only", b"x")], OPTS), [], "entries only")
    eq(s.get_entries(ns, "t", "c", ["only"]), {"only": b"x"}, "entries written without messages")
    eq(s.append_entries(ns, "fresh", recs("f1"), [], AppendOptions(user_id="u")), [1], "messages only")
    info = s.get_session(ns, "fresh")
    ok(info is not None and info.user_id == "u", f"append_entries creates the session: {info}")


@check("entries")
def append_entries_are_never_seen_before_their_messages(ctx: Context) -> None:
    """A reader never sees an entry of append_entries before the messages written with it."""
    s, ns = ctx.s, ctx.ns
    s.ensure_session(ns, "w", OPTS)
    broken: list[str] = []
    done = threading.Event()

    def reader() -> int:
        rounds = 0
        while not done.is_set() or rounds == 0:
            rounds += 1
            for key, value in s.scan_entries(ns, "w", "ref"):
                wanted = value.decode().split(",")
                if len(s.get_messages(ns, "w", wanted)) != len(wanted):
                    broken.append(key)
        return rounds

    def writer() -> int:
        try:
            for step in range(25):
                batch = [f"s{step}-{j}" for j in range(3)]
                s.append_entries(ns, "w", recs(*batch), [Entry("ref", f"{step:04d}", ",".join(batch).encode())], OPTS)
        finally:
            done.set()
        return 0

    ctx.concurrently([reader, writer])
    eq(broken, [], "entries seen before their messages")
    eq(s.count(ns, "w"), 75, "messages written by append_entries")


# -- TTL --------------------------------------------------------------------------------------------------------------


@check("ttl")
def sliding_expiry_and_purge(ctx: Context) -> None:
    """Every write pushes expires_at to now + ttl; an expired session is invisible everywhere; purge removes it."""
    s, ns, clock = ctx.s, ctx.ns, ctx.clock
    opts = AppendOptions(ttl=60)
    s.append(ns, "t", recs("one"), opts)
    s.put_record(ns, "t", "summary", "1", {"x": 1})
    info = s.get_session(ns, "t")
    ok(info is not None and info.expires_at is not None and abs(info.expires_at.timestamp() - (clock.now + 60)) < 1e-3,
       f"expires_at must be now + ttl ({clock.now + 60}): {info}")
    clock.advance(50)
    s.append(ns, "t", recs("two"), opts)
    slid = s.get_session(ns, "t")
    ok(slid is not None and slid.expires_at is not None and abs(slid.expires_at.timestamp() - (clock.now + 60)) < 1e-3,
       f"a write slides expires_at to now + ttl: {slid}")
    clock.advance(50)
    eq(ids(s.read(ns, "t")), ["one", "two"], "alive 100s after the first write, 50s after the last")
    s.append(ns, "other", recs("x"), opts)
    s.append(ns, "forever", recs("x"), OPTS)
    clock.advance(61)
    eq(s.get_session(ns, "t"), None, "get_session of an expired session")
    eq((s.read(ns, "t"), s.read(ns, "t", last=1), s.count(ns, "t")), ([], [], 0), "reads of an expired session")
    eq(s.get_messages(ns, "t", ["one"]), [], "get_messages of an expired session")
    eq(s.get_records(ns, "t", "summary"), [], "records of an expired session")
    eq([i.id for i in s.list_sessions(SessionQuery(namespace=ns)).items], ["forever"], "listing skips expired")
    eq(s.purge_expired(), 2, "purge_expired removes both expired sessions")
    eq(s.purge_expired(), 0, "purge_expired again")
    eq(ids(s.read(ns, "forever")), ["x"], "purge keeps live sessions")
    eq(s.append(ns, "t", recs("fresh"), AppendOptions(user_id="new", ttl=60)), [1], "a write after purge starts over")


@check("ttl")
def a_write_to_an_expired_session_starts_fresh(ctx: Context) -> None:
    """A write to an expired (not yet purged) session starts a new one: seq 1, the new fields, nothing old."""
    s, ns, clock = ctx.s, ctx.ns, ctx.clock
    s.append(ns, "phoenix", recs("old", "older"), AppendOptions(user_id="u1", metadata={"gen": 1}, ttl=10))
    s.put_record(ns, "phoenix", "summary", "1", {"x": 1})
    s.put_entries(ns, "phoenix", [Entry("k", "x", b"1")], AppendOptions(ttl=10))
    clock.advance(11)
    eq(s.append(ns, "phoenix", recs("new"), AppendOptions(user_id="u2", metadata={"gen": 2}, ttl=10)), [1],
       "the first write after expiry")
    eq(ids(s.read(ns, "phoenix")), ["new"], "messages of the fresh session")
    info = s.get_session(ns, "phoenix")
    ok(info is not None and (info.user_id, info.metadata, info.message_count, info.last_seq) == ("u2", {"gen": 2}, 1, 1),
       f"the fresh session: {info}")
    eq((s.get_records(ns, "phoenix", "summary"), s.scan_entries(ns, "phoenix", "k")), ([], []), "nothing old")
    eq(s.append(ns, "phoenix", recs("old"), AppendOptions(ttl=10)), [2], "an old id is new in the fresh session")
    clock.advance(11)
    ensured = s.ensure_session(ns, "phoenix", AppendOptions(user_id="u3", ttl=10))
    eq((ensured.user_id, ensured.message_count, ensured.last_seq), ("u3", 0, 0), "ensure_session after expiry")


@check("ttl")
def expired_sessions_ignore_other_writes(ctx: Context) -> None:
    """Deletes, pops and clears of an expired session change nothing and report nothing."""
    s, ns, clock = ctx.s, ctx.ns, ctx.clock
    s.append(ns, "x", recs("a", "b"), AppendOptions(ttl=10))
    s.put_entries(ns, "x", [Entry("k", "x", b"1")], AppendOptions(ttl=10))
    s.put_record(ns, "x", "summary", "1", {"x": 1})
    clock.advance(11)
    eq(s.delete_messages(ns, "x", ["a"]), 0, "delete_messages on an expired session")
    eq(s.pop_messages(ns, "x", index=0, count=5), [], "pop_messages on an expired session")
    eq(s.pop_messages(ns, "x", ids=["b"]), [], "pop_messages(ids=) on an expired session")
    eq(s.clear(ns, "x"), 0, "clear of an expired session")
    eq(s.delete_entries(ns, "x", "k"), 0, "delete_entries on an expired session")
    eq(s.delete_records(ns, "x", "summary"), 0, "delete_records on an expired session")
    eq(s.get_session(ns, "x"), None, "still expired")
    eq(s.delete_session(ns, "x"), False, "delete_session of an expired session")


@check("ttl")
def every_write_slides_and_none_means_never(ctx: Context) -> None:
    """append, replace, put_entries, append_entries and ensure_session each set expires_at = now + ttl;
    ttl=None means never, also for a session that had a TTL."""
    s, ns, clock = ctx.s, ctx.ns, ctx.clock
    opts = AppendOptions(ttl=30)
    writes = {
        "append": lambda: s.append(ns, "w", recs(f"a{clock.now}"), opts),
        "replace": lambda: s.replace(ns, "w", recs(f"r{clock.now}"), opts),
        "put_entries": lambda: s.put_entries(ns, "w", [Entry("k", "x", b"1")], opts),
        "append_entries": lambda: s.append_entries(ns, "w", recs(f"e{clock.now}"), [Entry("k", "y", b"1")], opts),
        "ensure_session": lambda: s.ensure_session(ns, "w", opts),
    }
    s.append(ns, "w", recs("start"), opts)
    for name, write in writes.items():
        clock.advance(20)
        write()
        info = s.get_session(ns, "w")
        ok(info is not None and info.expires_at is not None
           and abs(info.expires_at.timestamp() - (clock.now + 30)) < 1e-3,
           f"{name} must slide expires_at to now + ttl ({clock.now + 30}): {info}")
    s.append(ns, "w", recs("no-ttl"), OPTS)
    info = s.get_session(ns, "w")
    ok(info is not None and info.expires_at is None, f"a write with ttl=None clears expires_at: {info}")
    clock.advance(10 * 365 * 86400)
    ok(s.get_session(ns, "w") is not None and s.count(ns, "w") > 0, "a session without TTL never expires")
    eq(s.purge_expired(), 0, "purge_expired leaves sessions without TTL")


@check("ttl")
def purge_spans_namespaces_and_keeps_the_living(ctx: Context) -> None:
    """purge_expired removes expired sessions of every namespace, with their messages, records and entries."""
    s, clock = ctx.s, ctx.clock
    short, long = AppendOptions(ttl=10), AppendOptions(ttl=1000)
    for ns, n in (("kit-a", 3), ("kit-b", 2)):
        for i in range(n):
            s.append(ns, f"dead{i}", recs("m"), short)
            s.put_entries(ns, f"dead{i}", [Entry("k", "x", b"1")], short)
        s.append(ns, "alive", recs("m"), long)
        s.put_record(ns, "alive", "summary", "1", {"x": 1})
    clock.advance(11)
    eq(s.purge_expired(), 5, "purge_expired across two namespaces")
    for ns in ("kit-a", "kit-b"):
        eq([i.id for i in s.list_sessions(SessionQuery(namespace=ns)).items], ["alive"], f"listing of {ns}")
        eq((ids(s.read(ns, "alive")), s.get_records(ns, "alive", "summary")), (["m"], [("1", {"x": 1})]),
           f"the live session of {ns}")
        s.append(ns, "dead0", recs("n"), short)
        eq((ids(s.read(ns, "dead0")), s.scan_entries(ns, "dead0", "k")), (["n"], []), "a purged session is gone")


# -- isolation -------------------------------------------------------------------------------------------------------

#: namespaces that must never see each other's sessions (the last is an internal namespace, see memvault.validation)
NAMESPACES = ["tenant-a", "tenant-b", "tenant-a ", "Tenant-a", "tenant", "tenant-a\x1fcollections"]


@check("isolation")
def namespaces_are_isolated(ctx: Context) -> None:
    """Nothing crosses namespaces: messages, ids, records, entries, listings, deletes, pops, clears."""
    s = ctx.s
    owner, sid = NAMESPACES[0], "shared"
    s.append(owner, sid, [rec("m1", "secret of A"), rec("m2")], AppendOptions(user_id="u"))
    s.put_record(owner, sid, "summary", "1", {"secret": True})
    s.put_entries(owner, sid, [Entry("k", "x", b"secret")], OPTS)
    for ns in NAMESPACES[1:]:
        what = f"namespace {ns!r}"
        eq(s.get_session(ns, sid), None, f"get_session in {what}")
        eq((s.read(ns, sid), s.count(ns, sid), s.get_messages(ns, sid, ["m1"])), ([], 0, []), f"messages in {what}")
        eq((s.get_records(ns, sid, "summary"), s.scan_entries(ns, sid, "k"), s.get_entries(ns, sid, "k", ["x"])),
           ([], [], {}), f"records and entries in {what}")
        eq(s.list_sessions(SessionQuery(namespace=ns)).items, [], f"listing {what}")
        eq(s.list_sessions(SessionQuery(namespace=ns, user_id="u")).items, [], f"listing {what} by user")
        eq((s.delete_messages(ns, sid, ["m1"]), s.pop_messages(ns, sid, index=0, count=5),
            s.pop_messages(ns, sid, ids=["m2"])), (0, [], []), f"deletes and pops in {what}")
        eq((s.clear(ns, sid), s.delete_entries(ns, sid, "k"), s.delete_records(ns, sid, "summary")), (0, 0, 0),
           f"clears in {what}")
        eq(s.delete_session(ns, sid), False, f"delete_session in {what}")
    other = NAMESPACES[1]
    eq(s.append(other, sid, [rec("m1", "B's own")], OPTS), [1], "the same session and message id in another namespace")
    s.put_entries(other, sid, [Entry("k", "x", b"B")], AppendOptions(ttl=10))
    eq([m.text for m in s.read(owner, sid)], ["secret of A", "text of m2"], "the owner's messages")
    eq(s.get_entries(owner, sid, "k", ["x"]), {"x": b"secret"}, "the owner's entries")
    eq(s.get_records(owner, sid, "summary"), [("1", {"secret": True})], "the owner's records")
    ctx.clock.advance(11)
    eq(s.purge_expired(), 1, "purging the other namespace's expired session")
    eq(s.count(owner, sid), 2, "the owner's session after another namespace's purge")


#: session ids a backend may confuse: prefixes, separators, glob and hash-tag characters, paths, unicode forms
SESSION_IDS = ["s", "s ", "S", "s:", "s:m", "s:h", "s}", "{s}", "s{", "s\\", "s/..", "../s", "s*", "s?", "[s]", "s%",
               "s_", "é", "e\u0301", "😀", ".", "..", "CON", "nul.txt", "%2e%2e", "x" * 500]


@check("isolation")
def similar_session_ids_are_distinct(ctx: Context) -> None:
    """Session ids that differ in one character, look like paths, patterns or hash tags are distinct sessions."""
    s, ns = ctx.s, ctx.ns
    for sid in SESSION_IDS:
        s.append(ns, sid, [rec("same-id", f"content of {sid}")], AppendOptions(metadata={"sid": sid}))
        s.put_entries(ns, sid, [Entry("k", "key", sid.encode())], OPTS)
    for sid in SESSION_IDS:
        eq([m.text for m in s.read(ns, sid)], [f"content of {sid}"], f"messages of session {sid!r}")
        eq(s.get_entries(ns, sid, "k", ["key"]), {"key": sid.encode()}, f"entries of session {sid!r}")
        info = s.get_session(ns, sid)
        ok(info is not None and info.id == sid and info.metadata == {"sid": sid}, f"info of {sid!r}: {info}")
    listed = [i.id for i in s.list_sessions(SessionQuery(namespace=ns, limit=100)).items]
    eq(sorted(listed), sorted(SESSION_IDS), "listing holds every session once")
    ok(s.delete_session(ns, "s"), "delete_session('s')")
    for sid in SESSION_IDS[1:]:
        eq(s.count(ns, sid), 1, f"session {sid!r} after deleting 's'")
    eq(s.clear(ns, "s:"), 1, "clear('s:')")
    eq((s.count(ns, "s:m"), s.count(ns, "s:h")), (1, 1), "sessions whose ids extend a cleared one")
