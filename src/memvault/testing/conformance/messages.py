"""Checks: messages (append, idempotency, seqs, reads, get/delete/pop, count, clear, replace, the cap) and records."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from functools import partial

from memvault.contract import AppendOptions, Entry
from memvault.model import Message, encode_body
from memvault.testing.conformance.helpers import OPTS, ids, rec, recs, seqs, texts
from memvault.testing.conformance.kit import Context, check, eq, ok

# -- append ---------------------------------------------------------------------------------------------------------


@check("messages")
def append_assigns_contiguous_seqs(ctx: Context) -> None:
    """append creates the session and returns seq = last_seq + 1, + 2, ... for the batch, in order."""
    s, ns = ctx.s, ctx.ns
    eq(s.append(ns, "m", recs("a"), AppendOptions(user_id="u")), [1], "first append")
    eq(s.append(ns, "m", recs("b", "c", "d"), OPTS), [2, 3, 4], "a batch of 3")
    got = s.read(ns, "m")
    eq((ids(got), seqs(got)), (["a", "b", "c", "d"], [1, 2, 3, 4]), "read after appends")
    ok(all(m.session_id == "m" for m in got), "read messages carry their session_id")
    info = s.get_session(ns, "m")
    ok(info is not None and (info.user_id, info.message_count, info.last_seq) == ("u", 4, 4),
       f"the session append created: {info}")
    eq(s.count(ns, "m"), 4, "count")


@check("messages")
def append_is_idempotent_on_id(ctx: Context) -> None:
    """A record whose id is in the session is not stored again; its existing seq is returned (retries are safe)."""
    s, ns = ctx.s, ctx.ns
    eq(s.append(ns, "i", [rec("fixed", "original")], OPTS), [1], "first append")
    eq(s.append(ns, "i", [rec("fixed", "a retry with other text")], OPTS), [1], "appending the same id again")
    eq(s.append(ns, "i", [rec("n1"), rec("fixed"), rec("n2")], OPTS), [2, 1, 3], "a batch mixing old and new ids")
    got = s.read(ns, "i")
    eq((ids(got), texts(got)[0]), (["fixed", "n1", "n2"], "original"), "nothing stored twice, nothing overwritten")
    eq(s.count(ns, "i"), 3, "count after retries")
    eq(s.append_entries(ns, "i", [rec("n2"), rec("n3")], [], OPTS), [3, 4], "append_entries is idempotent too")
    s.delete_messages(ns, "i", ["n1"])
    eq(s.append(ns, "i", [rec("n1", "back")], OPTS), [5], "an id deleted from the session is stored again")
    s.append("kit-elsewhere", "i", [rec("fixed", "other tenant")], OPTS)
    eq(texts(s.read(ns, "i"))[0], "original", "the same id in another namespace is another message")


@check("messages")
def messages_round_trip_exactly(ctx: Context) -> None:
    """Every field of a message (content blocks, tool calls, metadata, extras, created_at) reads back exactly."""
    s, ns = ctx.s, ctx.ns
    original = Message(
        role="assistant",
        content=[
            {"type": "text", "text": "Here is the chart"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "tool_use", "id": "t1", "name": "plot", "input": {"x": [1, 2.5, None]}},
        ],
        name="bot",
        tool_calls=[{"id": "call_1", "name": "search", "args": {"q": "Paris"}, "type": "tool_call"}],
        metadata={"dia_id": "D1:3", "nested": {"ok": True, "n": 1.5}, "list": [1, "two"], "big": 2**63 - 1,
                  "neg0": -0.0, "f": 1e300, "esc": "\\\"'\x00"},
        created_at=datetime(2023, 5, 8, 13, 56, 1, 123456, tzinfo=timezone.utc),
        extras={"type": "ai", "additional_kwargs": {"x": 1}, "usage_metadata": {"input_tokens": 3}},
        id="msg-1",
    )
    tool = Message(role="tool", content="42", tool_call_id="call_1", name="search", id="msg-2",
                   created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    s.append(ns, "rich", [encode_body(original), encode_body(tool)], OPTS)
    want = [dataclasses.replace(original, session_id="rich", seq=1), dataclasses.replace(tool, session_id="rich", seq=2)]
    eq(s.read(ns, "rich"), want, "read of a rich message")
    eq(s.get_messages(ns, "rich", ["msg-2", "msg-1"]), want, "get_messages of rich messages")


@check("messages")
def unicode_ids_and_large_bodies(ctx: Context) -> None:
    """Unicode session ids and multi-megabyte bodies are stored exactly."""
    s, ns = ctx.s, ctx.ns
    sid = "ünïcødé 🚀 مرحبا 你好"
    weird = "emoji 🚀🧠, RTL مرحبا, CJK 你好, combining é, zero-width \u200b, astral \U0010fffd"
    big = "x" * (3 * 1024 * 1024) + "🚀"
    eq(s.append(ns, sid, [rec("w", weird), rec("big", big)], OPTS), [1, 2], "append to a unicode session id")
    got = s.read(ns, sid)
    eq(texts(got)[0], weird, "unicode content")
    ok(len(got) == 2 and got[1].text == big, "3 MiB content must read back exactly")
    info = s.get_session(ns, sid)
    ok(info is not None and info.id == sid and info.size_bytes > 3 * 1024 * 1024, f"info of a big session: {info}")


# -- reads ------------------------------------------------------------------------------------------------------------


@check("messages")
def read_ranges_and_tails(ctx: Context) -> None:
    """read: start <= seq < stop in seq order, ``last`` keeps the newest N of those, ``limit`` the first N."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "r", [rec(str(i)) for i in range(1, 51)], OPTS)

    def read(**kw: int) -> list[str]:
        return ids(s.read(ns, "r", **kw))

    eq(read(last=3), ["48", "49", "50"], "last=3")
    eq(read(last=0), [], "last=0")
    eq(read(last=500), [str(i) for i in range(1, 51)], "last beyond the size")
    eq(read(start=10, stop=13), ["10", "11", "12"], "start=10, stop=13")
    eq(read(start=45), ["45", "46", "47", "48", "49", "50"], "start=45")
    eq(read(stop=3), ["1", "2"], "stop=3")
    eq(read(start=5, limit=2), ["5", "6"], "start=5, limit=2")
    eq(read(limit=0), [], "limit=0")
    eq(read(stop=30, last=2), ["28", "29"], "stop=30, last=2")
    eq(read(start=100), [], "start past the end")
    eq(read(start=20, stop=20), [], "an empty range")
    s.delete_messages(ns, "r", ["11", "12"])
    eq(read(start=10, stop=14), ["10", "13"], "ranges are by seq, not by position, after deletes")
    eq(seqs(s.read(ns, "r", start=10, limit=2)), [10, 13], "seqs are kept after deletes")
    eq(s.read(ns, "nobody"), [], "read of a session never written")
    eq(s.read(ns, "nobody", last=5), [], "tail read of a session never written")


@check("messages")
def get_and_delete_by_id_keep_order(ctx: Context) -> None:
    """get_messages returns the existing ids in seq order; delete_messages counts what it deleted and keeps seqs."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "g", recs(*(f"id{i}" for i in range(6))), OPTS)
    eq(ids(s.get_messages(ns, "g", ["id4", "id1", "missing", "id1"])), ["id1", "id4"], "get_messages")
    eq(s.get_messages(ns, "g", []), [], "get_messages of no ids")
    eq(s.get_messages(ns, "nobody", ["id1"]), [], "get_messages of a session never written")
    eq(s.delete_messages(ns, "g", ["id2", "id3", "missing", "id2"]), 2, "delete_messages returns how many")
    remaining = s.read(ns, "g")
    eq((ids(remaining), seqs(remaining)), (["id0", "id1", "id4", "id5"], [1, 2, 5, 6]), "after delete_messages")
    eq(s.count(ns, "g"), 4, "count after delete_messages")
    info = s.get_session(ns, "g")
    ok(info is not None and (info.message_count, info.last_seq) == (4, 6), f"info after delete_messages: {info}")
    eq(s.append(ns, "g", recs("id6"), OPTS), [7], "seqs are never reused after deletes")
    eq(s.delete_messages(ns, "g", []), 0, "delete_messages of no ids")
    eq(s.delete_messages(ns, "nobody", ["id1"]), 0, "delete_messages of a session never written")


@check("messages")
def pop_by_position_follows_python(ctx: Context) -> None:
    """pop_messages(index=, count=) removes and returns up to count messages from a Python-style position."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "p", recs(*(str(i) for i in range(10))), OPTS)

    def pop(index: int, count: int = 1) -> list[str]:
        return ids(s.pop_messages(ns, "p", index=index, count=count))

    eq(pop(-1), ["9"], "pop(index=-1)")
    eq(pop(0), ["0"], "pop(index=0)")
    eq(pop(2, 3), ["3", "4", "5"], "pop(index=2, count=3)")
    eq(pop(-2, 5), ["7", "8"], "pop(index=-2, count=5): stops at the end")
    eq((pop(10), pop(-10), pop(3)), ([], [], []), "positions that do not exist")
    remaining = s.read(ns, "p")
    eq((ids(remaining), seqs(remaining)), (["1", "2", "6"], [2, 3, 7]), "what the pops left")
    popped = s.pop_messages(ns, "p", index=0, count=1)
    eq((ids(popped), seqs(popped), [m.session_id for m in popped]), (["1"], [2], ["p"]), "popped messages are whole")
    info = s.get_session(ns, "p")
    ok(info is not None and info.message_count == 2, f"message_count after pops: {info}")
    eq(s.append(ns, "p", recs("next"), OPTS), [11], "seqs are never reused after pops")
    eq(s.pop_messages(ns, "nobody", index=-1, count=1), [], "pop of a session never written")


@check("messages")
def pop_by_ids(ctx: Context) -> None:
    """pop_messages(ids=) removes and returns those of the ids that exist, in seq order."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "p", recs(*(f"m{i}" for i in range(6))), OPTS)
    eq(ids(s.pop_messages(ns, "p", ids=["m5", "m2", "missing", "m2"])), ["m2", "m5"], "pop(ids=)")
    eq(s.pop_messages(ns, "p", ids=["m5"]), [], "popping an id twice")
    eq(s.pop_messages(ns, "p", ids=[]), [], "pop(ids=[])")
    eq(ids(s.read(ns, "p")), ["m0", "m1", "m3", "m4"], "after pops by id")
    eq(s.count(ns, "p"), 4, "count after pops by id")


@check("messages")
def concurrent_pops_never_return_a_message_twice(ctx: Context) -> None:
    """Concurrent pops (by position and by ids) split the messages: each is returned exactly once."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "q", recs(*(f"m{i:02d}" for i in range(40))), OPTS)

    def drain(index: int) -> list[str]:
        got: list[str] = []
        while popped := s.pop_messages(ns, "q", index=index, count=1):
            got += ids(popped)
        return got

    results = ctx.concurrently([partial(drain, 0 if i % 2 else -1) for i in range(6)])
    popped = sorted(m for r in results for m in r)
    eq(popped, [f"m{i:02d}" for i in range(40)], "concurrent pops by position (each message exactly once)")
    everything = [f"n{i}" for i in range(30)]
    s.append(ns, "q", recs(*everything), OPTS)
    results2 = ctx.concurrently([lambda: ids(s.pop_messages(ns, "q", ids=everything)) for _ in range(6)])
    eq(sorted(m for r in results2 for m in r), sorted(everything), "concurrent pops by ids (each exactly once)")
    eq(s.count(ns, "q"), 0, "count after draining")


@check("messages")
def concurrent_appends_get_unique_contiguous_seqs(ctx: Context) -> None:
    """Concurrent batches get distinct seqs, each batch contiguous; concurrent retries of one id store it once."""
    s, ns = ctx.s, ctx.ns

    def writer(w: int) -> list[list[int]]:
        return [s.append(ns, "c", recs(f"w{w}-{b}-0", f"w{w}-{b}-1"), OPTS) for b in range(8)]

    batches = [b for r in ctx.concurrently([partial(writer, w) for w in range(6)]) for b in r]
    eq(sorted(q for b in batches for q in b), list(range(1, 97)), "the seqs of 48 concurrent batches of 2")
    ok(all(b[1] == b[0] + 1 for b in batches), f"every batch's seqs must be contiguous: {batches}")
    same = ctx.concurrently([lambda: s.append(ns, "c", [rec("dup")], OPTS) for _ in range(6)])
    eq({tuple(r) for r in same}, {(97,)}, "six concurrent appends of one id all get its one seq")
    eq(s.count(ns, "c"), 97, "count after concurrent appends")


# -- count, clear, replace, cap ---------------------------------------------------------------------------------------------


@check("messages")
def clear_keeps_session_and_seq_counter(ctx: Context) -> None:
    """clear deletes messages, records and entries but keeps the session and its seq counter."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "c", recs("a", "b"), AppendOptions(user_id="u", metadata={"k": "v"}))
    s.put_record(ns, "c", "summary", "1", {"text": "x"})
    s.put_entries(ns, "c", [Entry("k", "x", b"1")], OPTS)
    eq(s.clear(ns, "c"), 2, "clear returns how many messages it deleted")
    eq((s.read(ns, "c"), s.count(ns, "c")), ([], 0), "messages after clear")
    eq(s.get_records(ns, "c", "summary"), [], "records after clear")
    eq(s.scan_entries(ns, "c", "k"), [], "entries after clear")
    info = s.get_session(ns, "c")
    ok(info is not None and (info.message_count, info.last_seq, info.user_id, info.metadata) == (0, 2, "u", {"k": "v"}),
       f"the session after clear: {info}")
    eq(s.append(ns, "c", recs("a"), OPTS), [3], "seqs are never reused after clear (also for an id seen before)")
    eq(s.clear(ns, "nobody"), 0, "clear of a session never written")
    eq(s.get_session(ns, "nobody"), None, "clear creates nothing")


@check("messages")
def replace_swaps_every_message(ctx: Context) -> None:
    """replace swaps all messages for the given ones atomically, with new seqs continuing the sequence."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "r", recs("old1", "old2"), OPTS)
    eq(s.replace(ns, "r", [rec("new1"), rec("old1", "old1 again")], OPTS), [3, 4], "replace's seqs")
    got = s.read(ns, "r")
    eq((ids(got), texts(got), seqs(got)), (["new1", "old1"], ["text of new1", "old1 again"], [3, 4]),
       "after replace (an old id given again is a new message)")
    eq(s.count(ns, "r"), 2, "count after replace")
    eq(s.replace(ns, "fresh", recs("f1"), AppendOptions(user_id="u")), [1], "replace creates the session")
    info = s.get_session(ns, "fresh")
    ok(info is not None and info.user_id == "u", f"the session replace created: {info}")
    eq(s.replace(ns, "r", [], OPTS), [], "replace with nothing")
    eq((s.count(ns, "r"), s.append(ns, "r", recs("after"), OPTS)), (0, [5]), "replace with nothing empties it, "
       "the seq counter goes on")


@check("messages")
def max_messages_trims_the_oldest(ctx: Context) -> None:
    """append with max_messages keeps only the newest max_messages, in the same write."""
    s, ns = ctx.s, ctx.ns
    cap = AppendOptions(max_messages=5)
    for i in range(1, 13):
        s.append(ns, "cap", recs(str(i)), cap)
    got = s.read(ns, "cap")
    eq((ids(got), seqs(got)), ([str(i) for i in range(8, 13)], list(range(8, 13))), "12 appends with a cap of 5")
    s.append(ns, "cap", recs("13", "14", "15"), cap)
    eq(ids(s.read(ns, "cap")), ["11", "12", "13", "14", "15"], "a batch with a cap")
    eq(s.append(ns, "cap", recs(*(f"b{i}" for i in range(7))), cap), list(range(16, 23)),
       "a batch larger than the cap returns every seq")
    eq(ids(s.read(ns, "cap")), [f"b{i}" for i in range(2, 7)], "a batch larger than the cap keeps its newest")
    info = s.get_session(ns, "cap")
    ok(info is not None and info.message_count == 5 and info.last_seq == 22, f"info of a capped session: {info}")
    eq(s.count(ns, "cap"), 5, "count of a capped session")


# -- records ----------------------------------------------------------------------------------------------------------


@check("records")
def put_get_and_delete(ctx: Context) -> None:
    """Records are JSON objects by (kind, key) per session: upserted, read in key order (keys=, last=), deleted."""
    s, ns = ctx.s, ctx.ns
    s.ensure_session(ns, "rec", OPTS)
    s.put_record(ns, "rec", "summary", "0002", {"text": "b"})
    s.put_record(ns, "rec", "summary", "0001", {"text": "a"})
    s.put_record(ns, "rec", "state", "k", {"v": [1, 2], "nested": {"x": None, "f": 2.5, "u": "ü😀"}})
    s.put_record(ns, "rec", "summary", "0002", {"text": "b2"})
    eq(s.get_records(ns, "rec", "summary"), [("0001", {"text": "a"}), ("0002", {"text": "b2"})], "get_records")
    eq(s.get_records(ns, "rec", "summary", last=1), [("0002", {"text": "b2"})], "get_records(last=1)")
    eq(s.get_records(ns, "rec", "summary", last=5), [("0001", {"text": "a"}), ("0002", {"text": "b2"})],
       "get_records(last beyond the size)")
    eq(s.get_records(ns, "rec", "summary", keys=["0001", "zzz"]), [("0001", {"text": "a"})], "get_records(keys=)")
    eq(s.get_records(ns, "rec", "state"), [("k", {"v": [1, 2], "nested": {"x": None, "f": 2.5, "u": "ü😀"}})],
       "another kind")
    eq(s.get_records(ns, "rec", "nothing"), [], "a kind never written")
    eq(s.get_records(ns, "other", "summary"), [], "records of a session never written")
    eq(s.delete_records(ns, "rec", "summary", ["0001", "missing"]), 1, "delete_records(keys=)")
    eq(s.get_records(ns, "rec", "summary"), [("0002", {"text": "b2"})], "after delete_records(keys=)")
    eq(s.delete_records(ns, "rec", "summary"), 1, "delete_records of the whole kind")
    eq(s.get_records(ns, "rec", "state")[0][0], "k", "other kinds are kept")
    eq(s.delete_records(ns, "nobody", "summary"), 0, "delete_records of a session never written")


@check("records")
def keys_sort_by_code_point(ctx: Context) -> None:
    """Record keys are ordered by code point (= UTF-8 bytes), never by a locale."""
    s, ns = ctx.s, ctx.ns
    keys = ["B", "_", "a", "a b", "ab", "é", "€", "😀", "0010", "0002"]
    s.ensure_session(ns, "k", OPTS)
    for key in keys:
        s.put_record(ns, "k", "kind", key, {"key": key})
    eq([k for k, _ in s.get_records(ns, "k", "kind")], sorted(keys), "get_records key order")
    eq([k for k, _ in s.get_records(ns, "k", "kind", last=3)], sorted(keys)[-3:], "get_records(last=3) key order")


@check("records")
def records_live_and_die_with_their_session(ctx: Context) -> None:
    """Records go with delete_session and clear, and are not seen once their session has expired."""
    s, ns = ctx.s, ctx.ns
    s.append(ns, "d", recs("m"), OPTS)
    s.put_record(ns, "d", "summary", "1", {"t": 1})
    ok(s.delete_session(ns, "d"), "delete_session")
    s.append(ns, "d", recs("m"), OPTS)
    eq(s.get_records(ns, "d", "summary"), [], "records of a deleted session do not come back")
    s.append(ns, "t", recs("m"), AppendOptions(ttl=10))
    s.put_record(ns, "t", "summary", "1", {"t": 1})
    ctx.clock.advance(11)
    eq(s.get_records(ns, "t", "summary"), [], "records of an expired session")
    s.append(ns, "t", recs("m2"), AppendOptions(ttl=10))
    eq(s.get_records(ns, "t", "summary"), [], "records of an expired session do not come back with a new write")
