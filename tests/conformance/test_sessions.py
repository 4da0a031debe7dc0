"""The storage contract, checked on every backend in ``tests/backends.py``. A new backend must pass it unchanged."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from memvault import InvalidMessage, InvalidSessionId, Message, SessionNotFound
from memvault.errors import InvalidCursor, InvalidFilter


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


# -- ordering, seq, reads -------------------------------------------------------------------------------------------


def test_add_assigns_increasing_seq_and_reads_back_in_order(mem):
    s = mem.session("alice")
    stored = [s.add("user" if i % 2 == 0 else "assistant", f"m{i}") for i in range(7)]
    assert [m.seq for m in stored] == list(range(1, 8))
    assert all(m.session_id == "alice" for m in stored)
    got = s.messages()
    assert texts(got) == [f"m{i}" for i in range(7)]
    assert [m.seq for m in got] == list(range(1, 8))
    assert got == stored


def test_extend_is_one_batch_with_contiguous_seqs(mem):
    s = mem.session("b")
    s.add("system", "be brief")
    batch = s.extend([Message(role="user", content="q"), {"role": "assistant", "content": "a"}])
    assert [m.seq for m in batch] == [2, 3]
    assert texts(s.messages()) == ["be brief", "q", "a"]


def test_invalid_message_in_batch_stores_nothing(mem):
    s = mem.session("atomic")
    s.add("user", "keep me")
    with pytest.raises(InvalidMessage):
        s.extend([Message("user", "fine"), Message("robot", "bad role")])
    with pytest.raises(InvalidMessage):
        s.extend([Message("user", "fine"), Message("user", "x", metadata={"when": object()})])
    assert texts(s.messages()) == ["keep me"]


def test_tail_and_range_reads(mem):
    s = mem.session("tail")
    s.extend([Message("user", str(i)) for i in range(1, 51)])
    assert texts(s.messages(last=3)) == ["48", "49", "50"]
    assert texts(s.messages(last=0)) == []
    assert texts(s.messages(last=500)) == [str(i) for i in range(1, 51)]
    assert texts(s.messages(start=10, stop=13)) == ["10", "11", "12"]
    assert texts(s.messages(start=45)) == ["45", "46", "47", "48", "49", "50"]
    assert texts(s.messages(start=5, limit=2)) == ["5", "6"]
    assert texts(s.messages(stop=30, last=2)) == ["28", "29"]
    assert s.messages(start=100) == []
    with pytest.raises(InvalidFilter):
        s.messages(last=-1)


def test_unknown_session_reads_empty_and_info_raises(mem):
    s = mem.session("nobody")
    assert s.messages() == []
    assert s.count() == 0
    assert not s.exists()
    with pytest.raises(SessionNotFound):
        s.info()
    with pytest.raises(SessionNotFound):
        mem.get_session("nobody")


def test_info_counts_and_fields(mem):
    s = mem.session("info", user_id="u1", metadata={"topic": "travel"})
    s.add("user", "héllo")
    s.add("assistant", "hi")
    info = s.info()
    assert (info.id, info.namespace, info.user_id) == ("info", "default", "u1")
    assert info.message_count == 2 and s.count() == 2
    assert info.size_bytes > len("héllo") + len("hi")
    assert info.metadata == {"topic": "travel"}
    assert info.backend == mem.backend
    assert info.last_seq == 2
    assert info.created_at <= info.updated_at
    assert info.expires_at is None


def test_clear_keeps_session_and_seq_counter(mem):
    s = mem.session("c")
    s.extend([Message("user", "a"), Message("user", "b")])
    assert s.clear() == 2
    assert s.messages() == [] and s.count() == 0
    assert s.exists()
    assert s.add("user", "c").seq == 3  # seqs are never reused
    assert s.info().message_count == 1


def test_delete_session(mem):
    s = mem.session("d")
    s.add("user", "x")
    assert mem.delete_session("d") is True
    assert mem.delete_session("d") is False
    assert s.messages() == []
    assert s.add("user", "again").seq == 1  # a deleted session starts over


def test_append_is_idempotent_on_message_id(mem):
    s = mem.session("idem")
    first = s.add("user", "once", id="fixed-id")
    again = s.add("user", "once", id="fixed-id")
    assert again.seq == first.seq
    batch = s.extend([Message("user", "n1", id="n1"), Message("user", "once", id="fixed-id"), Message("user", "n2")])
    assert [m.seq for m in batch] == [2, 1, 3]
    assert texts(s.messages()) == ["once", "n1", "n2"]


def test_get_and_delete_messages_by_id_keep_order(mem):
    s = mem.session("g")
    stored = s.extend([Message("user", str(i)) for i in range(6)])
    ids = [m.id for m in stored]
    assert texts(s.get([ids[4], ids[1], "missing"])) == ["1", "4"]
    assert s.delete_messages([ids[2], ids[3], "missing"]) == 2
    remaining = s.messages()
    assert texts(remaining) == ["0", "1", "4", "5"]
    assert [m.seq for m in remaining] == [1, 2, 5, 6]
    assert s.info().message_count == 4
    assert s.add("user", "6").seq == 7


def test_replace_swaps_history_atomically(mem):
    s = mem.session("r")
    s.extend([Message("user", "old1"), Message("user", "old2")])
    new = s.replace([Message("user", "new1"), Message("assistant", "new2")])
    assert [m.seq for m in new] == [3, 4]
    assert texts(s.messages()) == ["new1", "new2"]
    assert s.count() == 2
    with pytest.raises(InvalidMessage):
        s.replace([Message("user", "ok"), Message("alien", "no")])
    assert texts(s.messages()) == ["new1", "new2"]


# -- message fidelity, unicode, size, bad input ---------------------------------------------------------------------


def test_rich_message_round_trips_exactly(mem):
    s = mem.session("rich")
    created = datetime(2023, 5, 8, 13, 56, 1, 123456, tzinfo=timezone.utc)
    original = Message(
        role="assistant",
        content=[
            {"type": "text", "text": "Here is the chart"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "tool_use", "id": "t1", "name": "plot", "input": {"x": [1, 2.5, None]}},
        ],
        name="bot",
        tool_calls=[{"id": "call_1", "name": "search", "args": {"q": "Paris"}, "type": "tool_call"}],
        metadata={"dia_id": "D1:3", "nested": {"ok": True, "n": 1.5}, "list": [1, "two"]},
        created_at=created,
        extras={"type": "ai", "additional_kwargs": {"x": 1}, "usage_metadata": {"input_tokens": 3}},
        id="msg-1",
    )
    tool = Message(role="tool", content="42", tool_call_id="call_1", name="search")
    s.extend([original, tool])
    back = s.messages()
    assert back[0] == original and back[1] == tool
    assert back[0].created_at == created


def test_unicode_and_large_content(mem):
    s = mem.session("ünïcødé 🚀 مرحبا")
    weird = "emoji 🚀🧠, RTL مرحبا, CJK 你好, combining é, zero-width \u200b, NUL-free"
    big = "x" * (3 * 1024 * 1024) + "🚀"
    s.add("user", weird)
    s.add("user", big)
    got = s.messages()
    assert got[0].content == weird
    assert got[1].content == big
    assert mem.get_session("ünïcødé 🚀 مرحبا").size_bytes > 3 * 1024 * 1024


def test_bad_content_refused_at_add_time(mem):
    s = mem.session("bad")
    s.add("user", "fine")
    with pytest.raises(InvalidMessage):
        s.add("user", "lone surrogate \ud800")
    with pytest.raises(InvalidMessage):
        s.add("user", b"bytes are not text")  # type: ignore[arg-type]
    with pytest.raises(InvalidMessage):
        s.add("user", "x", metadata={"set": {1, 2}})
    with pytest.raises(InvalidMessage):
        s.add("user", "x", metadata={"nan": float("nan")})
    with pytest.raises(InvalidMessage):
        s.add("wizard", "x")
    assert texts(s.messages()) == ["fine"]


@pytest.mark.parametrize("bad", ["", "a\x00b", "line\nbreak", "x" * 10_000, "\ud800"])
def test_invalid_session_ids_are_refused(mem, bad):
    with pytest.raises(InvalidSessionId):
        mem.session(bad)


@pytest.mark.parametrize("sid", ["../../etc/passwd", ".", "..", "/abs/path", "a/b\\c", "CON", "nul.txt", "%2e%2e", "x" * 500])
def test_path_like_session_ids_are_isolated(mem, sid):
    s = mem.session(sid)
    s.add("user", f"content of {sid}")
    other = mem.session(sid + "-other")
    other.add("user", "other")
    assert texts(mem.session(sid).messages()) == [f"content of {sid}"]
    assert mem.get_session(sid).id == sid
    assert sid in {i.id for i in mem.sessions(limit=100)}


# -- namespaces (tenants) -------------------------------------------------------------------------------------------


def test_namespaces_are_isolated(make_memory):
    a = make_memory(namespace="tenant-a")
    b = make_memory(namespace="tenant-b")
    a.session("shared-id").add("user", "secret of A")
    assert b.session("shared-id").messages() == []
    assert b.sessions().items == []
    with pytest.raises(SessionNotFound):
        b.get_session("shared-id")
    assert b.delete_session("shared-id") is False
    b.session("shared-id").add("user", "B's own")
    assert texts(a.session("shared-id").messages()) == ["secret of A"]
    assert texts(a.session("shared-id", namespace="tenant-b").messages()) == ["B's own"]


# -- listing --------------------------------------------------------------------------------------------------------


def test_list_sessions_paginates_newest_first(make_memory, clock):
    mem = make_memory(clock=clock)
    for i in range(23):
        clock.advance(1)
        mem.session(f"s{i:02d}", user_id="u1" if i % 2 else "u2").add("user", "x")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = mem.sessions(limit=10, cursor=cursor)
        pages += 1
        seen += [i.id for i in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"s{i:02d}" for i in reversed(range(23))]
    u1 = mem.sessions(user_id="u1", limit=100)
    assert [i.id for i in u1] == [f"s{i:02d}" for i in reversed(range(23)) if i % 2]


def test_list_sessions_filters_metadata_and_time(make_memory, clock):
    mem = make_memory(clock=clock)
    start = datetime.fromtimestamp(clock.now, timezone.utc)
    mem.session("paris", metadata={"topic": "travel", "n": 1, "vip": True, "o": "O'Brien"}).add("user", "x")
    clock.advance(100)
    mem.session("code", metadata={"topic": "python", "n": 2, "vip": False}).add("user", "x")
    clock.advance(100)
    mem.session("bare").add("user", "x")
    assert [i.id for i in mem.sessions(metadata={"topic": "travel"})] == ["paris"]
    assert [i.id for i in mem.sessions(metadata={"n": 2})] == ["code"]
    assert [i.id for i in mem.sessions(metadata={"vip": True})] == ["paris"]
    assert [i.id for i in mem.sessions(metadata={"o": "O'Brien"})] == ["paris"]
    assert [i.id for i in mem.sessions(metadata={"topic": "travel", "n": 2})] == []
    assert [i.id for i in mem.sessions(metadata={"missing": None})] == []
    mid = start + timedelta(seconds=50)
    assert [i.id for i in mem.sessions(updated_after=mid)] == ["bare", "code"]
    assert [i.id for i in mem.sessions(updated_before=mid)] == ["paris"]


def test_list_sessions_rejects_bad_arguments(mem):
    with pytest.raises(InvalidCursor):
        mem.sessions(cursor="not-a-cursor")
    with pytest.raises(InvalidFilter):
        mem.sessions(limit=0)


# -- TTL and caps ---------------------------------------------------------------------------------------------------


def test_sliding_ttl_expiry_and_purge(make_memory, clock):
    mem = make_memory(clock=clock, ttl=60)
    s = mem.session("ttl")
    s.add("user", "one")
    info = s.info()
    assert info.expires_at is not None
    assert info.expires_at.timestamp() == pytest.approx(clock.now + 60)
    clock.advance(50)
    s.add("user", "two")  # pushes expiry to now + 60
    clock.advance(50)
    assert texts(s.messages()) == ["one", "two"]
    mem.session("other").add("user", "short-lived")
    clock.advance(61)
    assert s.messages() == []
    assert not s.exists()
    assert mem.sessions().items == []
    assert s.count() == 0
    with pytest.raises(SessionNotFound):
        mem.get_session("ttl")
    assert mem.purge_expired() == 2
    assert mem.purge_expired() == 0
    assert s.add("user", "fresh").seq == 1


def test_write_to_expired_session_starts_fresh(make_memory, clock):
    mem = make_memory(clock=clock, ttl=10)
    s = mem.session("phoenix", metadata={"gen": 1})
    s.extend([Message("user", "old"), Message("user", "older")])
    clock.advance(11)
    assert s.add("user", "new").seq == 1
    assert texts(s.messages()) == ["new"]
    assert s.info().message_count == 1


def test_ttl_none_never_expires(make_memory, clock):
    mem = make_memory(clock=clock, ttl=None)
    mem.session("forever").add("user", "x")
    clock.advance(10 * 365 * 86400)
    assert mem.get_session("forever").expires_at is None
    assert texts(mem.session("forever").messages()) == ["x"]


def test_max_messages_cap_trims_oldest(mem):
    s = mem.session("capped", max_messages=5)
    for i in range(1, 13):
        s.add("user", str(i))
    assert s.count() == 5
    assert texts(s.messages()) == ["8", "9", "10", "11", "12"]
    assert [m.seq for m in s.messages()] == [8, 9, 10, 11, 12]
    s.extend([Message("user", "13"), Message("user", "14"), Message("user", "15")])
    assert texts(s.messages()) == ["11", "12", "13", "14", "15"]
    info = s.info()
    assert info.message_count == 5
    sizes = sum(len(json.dumps(m.content)) for m in s.messages())
    assert info.size_bytes >= sizes


# -- export / import ------------------------------------------------------------------------------------------------


def test_export_import_round_trip(mem):
    s = mem.session("exp", user_id="u9", metadata={"k": "v"})
    when = datetime(2022, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    originals = s.extend(
        [
            Message("user", "first", created_at=when, metadata={"i": 1}),
            Message("assistant", [{"type": "text", "text": "ünï 🚀"}], tool_calls=[{"id": "c", "name": "f", "args": {}}]),
            Message("tool", "result", tool_call_id="c"),
        ]
        + [Message("user", f"bulk {i}") for i in range(1200)]
    )
    lines = list(mem.export_session("exp"))
    assert len(lines) == 1 + len(originals)
    header = json.loads(lines[0])
    assert header["type"] == "session" and header["user_id"] == "u9" and header["metadata"] == {"k": "v"}
    info = mem.import_session(lines, session_id="copy")
    assert info.message_count == len(originals)
    assert info.user_id == "u9" and info.metadata == {"k": "v"}
    copied = mem.session("copy").messages()
    for a, b in zip(originals, copied, strict=True):
        assert (a.id, a.role, a.content, a.metadata, a.created_at, a.tool_calls, a.tool_call_id) == (
            b.id,
            b.role,
            b.content,
            b.metadata,
            b.created_at,
            b.tool_calls,
            b.tool_call_id,
        )
    again = mem.import_session("\n".join(lines), session_id="copy")  # idempotent: same ids are skipped
    assert again.message_count == len(originals)


def test_export_of_missing_session_raises(mem):
    with pytest.raises(SessionNotFound):
        list(mem.export_session("ghost"))


# -- records (summaries, state) -------------------------------------------------------------------------------------


def test_records_are_stored_per_session_and_cleared_with_it(mem):
    store = mem.store
    s = mem.session("rec")
    s.add("user", "x")
    ns = mem.namespace
    store.put_record(ns, "rec", "summary", "0002", {"text": "b"})
    store.put_record(ns, "rec", "summary", "0001", {"text": "a"})
    store.put_record(ns, "rec", "state", "k", {"v": [1, 2]})
    store.put_record(ns, "rec", "summary", "0002", {"text": "b2"})
    assert store.get_records(ns, "rec", "summary") == [("0001", {"text": "a"}), ("0002", {"text": "b2"})]
    assert store.get_records(ns, "rec", "summary", last=1) == [("0002", {"text": "b2"})]
    assert store.get_records(ns, "rec", "summary", keys=["0001", "zzz"]) == [("0001", {"text": "a"})]
    assert store.get_records(ns, "other", "summary") == []
    assert store.delete_records(ns, "rec", "summary", ["0001"]) == 1
    assert store.get_records(ns, "rec", "state") == [("k", {"v": [1, 2]})]
    s.clear()
    assert store.get_records(ns, "rec", "summary") == []
    assert store.get_records(ns, "rec", "state") == []
    with pytest.raises(SessionNotFound):
        store.put_record(ns, "no-such-session", "summary", "1", {})


# -- persistence and async ------------------------------------------------------------------------------------------


def test_data_survives_reopen(make_memory):
    first = make_memory()
    first.session("persist", user_id="u").add("user", "remember me")
    first.close()
    second = make_memory()
    assert texts(second.session("persist").messages()) == ["remember me"]
    assert second.get_session("persist").user_id == "u"


async def test_async_twins(make_memory):
    async with make_memory() as mem:
        s = mem.session("async", user_id="ua")
        m = await s.aadd("user", "hello")
        assert m.seq == 1
        await s.aextend([Message("assistant", "hi"), Message("user", "bye")])
        assert texts(await s.amessages(last=2)) == ["hi", "bye"]
        assert await s.acount() == 3
        assert (await s.ainfo()).user_id == "ua"
        assert [i.id for i in await mem.asessions(user_id="ua")] == ["async"]
        lines = [line async for line in mem.aexport_session("async")]
        await mem.aimport_session(lines, session_id="async-copy")
        assert texts(await mem.session("async-copy").amessages()) == ["hello", "hi", "bye"]
        assert await s.adelete_messages([m.id]) == 1
        assert await s.aclear() == 2
        assert await mem.adelete_session("async") is True
        assert (await mem.aget_session("async-copy")).message_count == 3


def test_import_lands_in_the_importers_namespace(make_memory):
    source = make_memory(namespace="tenant-a")
    source.session("conv").add("user", "from A")
    lines = list(source.export_session("conv"))
    target = make_memory(namespace="tenant-b")
    info = target.import_session(lines)
    assert info.namespace == "tenant-b"
    assert [m.text for m in target.session("conv").messages()] == ["from A"]
    assert source.session("conv").count() == 1
