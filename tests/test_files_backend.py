"""What is particular to ``file:///dir`` (the contract itself is checked by tests/conformance): the on-disk layout,
ids that look like paths, corrupt and torn files, reads that stay small, trimming and rewrites, and several stores
(as several processes would) sharing one directory."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from memvault import BackendUnavailable, CorruptData, InvalidMessage, Memory, Message, SessionNotFound
from memvault.backends.files import FileStore, encode_name
from memvault.backends.files.format import COMPACT_MIN
from memvault.errors import InvalidURL, SchemaVersionError
from memvault.model import encode_body
from tests.conftest import FakeClock


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def mem(root: Path):
    with Memory(f"file://{root}") as m:
        yield m


def sdir(root: Path, sid: str, ns: str = "default") -> Path:
    return root / encode_name(ns) / encode_name(sid)


def messages_file(root: Path, sid: str, ns: str = "default") -> Path:
    files = sorted(sdir(root, sid, ns).glob("messages.*.jsonl"))
    assert len(files) == 1, files
    return files[0]


def texts(messages: list[Message]) -> list[str]:
    return [m.text for m in messages]


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# -- layout ---------------------------------------------------------------------------------------------------------


def test_entries_are_a_readable_log_next_to_the_messages(mem, root):
    from memvault.contract import AppendOptions, Entry

    store = mem.store
    store.put_entries("default", "e", [Entry("state", "v1", b'{"n": 1}'), Entry("blob", "x", b"\xff\x00")],
                      AppendOptions())
    d = sdir(root, "e")
    log = [json.loads(line) for line in (d / "entries.1.jsonl").read_text().splitlines()]
    assert log == [{"k": "state", "key": "v1", "t": '{"n": 1}'}, {"k": "blob", "key": "x", "b": "/wA="}]
    for i in range(3000):  # rewriting one key over and over: the log is compacted, never unbounded
        store.put_entries("default", "e", [Entry("state", "v1", b"%d" % i * 40)], AppendOptions())
    assert store.get_entries("default", "e", "state", ["v1"]) == {"v1": b"2999" * 40}
    files = sorted(p.name for p in d.iterdir() if p.name.startswith("entries."))
    assert len(files) == 1 and files[0] != "entries.1.jsonl"
    assert (d / files[0]).stat().st_size < 64 * 1024 * 3
    assert store.get_entries("default", "e", "blob", ["x"]) == {"x": b"\xff\x00"}
    reopened = FileStore(root)  # another process reads the log from the start
    assert reopened.get_entries("default", "e", "state", ["v1"]) == {"v1": b"2999" * 40}
    store.clear("default", "e")
    assert store.scan_entries("default", "e", "state") == [] and reopened.scan_entries("default", "e", "state") == []


def test_a_v1_store_is_read_and_its_marker_upgraded(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "memvault-files.json").write_text('{"format": "memvault-files", "version": 1}\n')
    store = FileStore(root)
    assert json.loads((root / "memvault-files.json").read_text())["version"] == 2
    store.close()


def test_layout_is_one_readable_jsonl_file_per_session(mem, root):
    s = mem.session("alice", user_id="u1", metadata={"topic": "travel"})
    s.add("user", "Paris in spring?", metadata={"k": 1})
    s.add("assistant", "Lovely.")
    assert json.loads((root / "memvault-files.json").read_text()) == {"format": "memvault-files", "version": 2}
    d = sdir(root, "alice")
    assert sorted(p.name for p in d.iterdir()) == ["lock", "messages.1.jsonl", "meta.jsonl"]
    lines = [json.loads(line) for line in (d / "messages.1.jsonl").read_text().splitlines()]
    assert [(x["seq"], x["role"], x["content"]) for x in lines] == [
        (1, "user", "Paris in spring?"),
        (2, "assistant", "Lovely."),
    ]
    assert lines[0]["metadata"] == {"k": 1} and lines[0]["id"] == s.messages()[0].id
    slots = [json.loads(line) for line in (d / "meta.jsonl").read_text().splitlines()]
    newest = max(slots, key=lambda x: x["meta"]["n"])["meta"]
    assert (newest["id"], newest["user_id"], newest["metadata"], newest["count"], newest["last_seq"]) == (
        "alice",
        "u1",
        {"topic": "travel"},
        2,
        2,
    )


def test_encoded_names_are_plain_and_distinct():
    evil = ["../../etc/passwd", ".", "..", "/abs/path", "a/b\\c", "CON", "nul.txt", "%2e%2e", "Alice", "alice",
            "ünï 🚀", "~x", "x" * 500]  # fmt: skip
    names = [encode_name(i) for i in evil]
    assert len(set(names)) == len(evil)
    assert len({n.lower() for n in names}) == len(evil)  # distinct on case-insensitive file systems too
    for name in names:
        assert "." not in name and "/" not in name and "\\" not in name and 0 < len(name) <= 120
        assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-%ABCDEF~" for c in name)
    assert encode_name("x" * 500).startswith("~") and len(encode_name("x" * 500)) == 65
    assert encode_name("user-42_ok") == "user-42_ok"


def test_path_like_ids_never_escape_the_directory(tmp_path, root):
    before = {p.name for p in tmp_path.iterdir()}
    evil = ["../../etc/passwd", ".", "..", "/abs/path", "a/b\\c", "CON", "nul.txt", "%2e%2e", "x" * 500, "Alice"]
    with Memory(f"file://{root}") as mem:
        for ns in ["default", "../tenant", "..", "T" * 300]:
            for sid in [*evil, "alice"]:
                mem.session(sid, namespace=ns).add("user", f"{ns}|{sid}")
        for ns in ["default", "../tenant", "..", "T" * 300]:
            listed = {i.id for i in mem.sessions(namespace=ns, limit=100)}
            assert listed == {*evil, "alice"}
            for sid in evil:
                assert texts(mem.session(sid, namespace=ns).messages()) == [f"{ns}|{sid}"]
    assert {p.name for p in tmp_path.iterdir()} == before | {"store"}
    real_root = os.path.realpath(root)
    for path in root.rglob("*"):
        assert os.path.realpath(path).startswith(real_root + os.sep)
        assert not path.is_symlink()
    # namespace dirs, session dirs, and only our own file names inside them
    for ns_dir in (p for p in root.iterdir() if p.is_dir()):
        for d in ns_dir.iterdir():
            assert "." not in d.name
            assert {p.name for p in d.iterdir()} <= {"lock", "meta.jsonl", "messages.1.jsonl"}


def test_refuses_a_directory_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidURL, match="not a memvault file store"):
        Memory(f"file://{tmp_path}")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_newer_formats_are_refused(root, mem):
    mem.session("s").add("user", "x")
    meta = sdir(root, "s") / "meta.jsonl"
    raw = meta.read_bytes()
    store = mem.store
    newer = store._load_meta(sdir(root, "s"))
    newer.format = 3
    size = len(raw) // 2
    meta.write_bytes(newer.slot_bytes(size) * 2)
    with pytest.raises(SchemaVersionError, match="upgrade"):
        mem.session("s").messages()
    assert meta.exists()  # not treated as corruption: nothing is moved aside
    (root / "memvault-files.json").write_text('{"format": "memvault-files", "version": 9}')
    with pytest.raises(SchemaVersionError, match="upgrade"):
        Memory(f"file://{root}")


# -- corrupt, truncated and torn files ------------------------------------------------------------------------------


def _fill(mem: Memory, sid: str, n: int = 5) -> list[Message]:
    return mem.session(sid).extend([Message("user", f"{sid}-{i}") for i in range(n)])


def test_garbage_meta_raises_names_the_file_and_moves_the_session_aside(mem, root, caplog):
    _fill(mem, "bad")
    _fill(mem, "good")
    d = sdir(root, "bad")
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.name != "meta.jsonl"}
    (d / "meta.jsonl").write_bytes(b"\x00garbage{")
    with caplog.at_level(logging.WARNING, logger="memvault"), pytest.raises(CorruptData) as err:
        mem.session("bad").messages()
    assert err.value.path == str(d / "meta.jsonl")
    assert str(d / "meta.jsonl") in str(err.value) and "moved" in str(err.value)
    moved = Path(err.value.moved_to)
    assert moved.parent == d.parent and moved.name.startswith(d.name + ".corrupt-")
    assert not d.exists()
    assert (moved / "meta.jsonl").read_bytes() == b"\x00garbage{"  # kept as it was, for inspection
    assert {p.name: p.read_bytes() for p in moved.iterdir() if p.name != "meta.jsonl"} == before
    assert "corrupt session" in caplog.text
    # the rest of the store keeps working; the bad session starts over on its next write
    assert texts(mem.session("good").messages()) == [f"good-{i}" for i in range(5)]
    mem.session("good").add("user", "more")
    assert [i.id for i in mem.sessions()] == ["good"]
    assert mem.session("bad").add("user", "fresh").seq == 1
    assert mem.store.stats()["quarantined_sessions"] == 1


def test_listing_skips_a_corrupt_session_with_a_warning(mem, root, caplog):
    _fill(mem, "a")
    _fill(mem, "b")
    (sdir(root, "b") / "meta.jsonl").write_text("{}\n{}\n")
    with caplog.at_level(logging.WARNING, logger="memvault"):
        assert [i.id for i in mem.sessions()] == ["a"]
    assert "skipping corrupt session" in caplog.text
    assert [p.name for p in sdir(root, "b").parent.iterdir() if ".corrupt-" in p.name]
    assert mem.purge_expired() == 0
    assert texts(mem.session("a").messages(last=1)) == ["a-4"]


def test_a_damaged_line_is_skipped_and_reported_the_rest_is_served(mem, root, caplog):
    _fill(mem, "s", 6)
    path = messages_file(root, "s")
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"seq":3,' + b"x" * (len(lines[2]) - 9)  # same length: only its content is broken
    lines[4] = b"y" * len(lines[4])  # not even a seq left
    damaged = b"\n".join(lines)
    path.write_bytes(damaged)
    s = mem.session("s")
    with caplog.at_level(logging.WARNING, logger="memvault"):
        assert texts(s.messages(last=2)) == ["s-5"]  # the last two lines: one intact, one damaged
        assert texts(s.messages()) == ["s-0", "s-1", "s-3", "s-5"]
        assert texts(s.messages(start=3)) == ["s-3", "s-5"]  # the seq search steps over damaged lines
        assert texts(s.messages(start=5, stop=7)) == ["s-5"]
    assert "damaged line at byte" in caplog.text and str(path) in caplog.text
    assert mem.store.damaged_lines >= 3
    assert sdir(root, "s").exists() and path.read_bytes() == damaged  # nothing moved, nothing dropped
    s.add("user", "s-6")  # writes go on; the damaged lines stay in the file
    assert texts(s.messages(last=2)) == ["s-5", "s-6"]
    s.delete_messages([s.messages()[0].id])
    assert texts(s.messages()) == ["s-1", "s-3", "s-5", "s-6"]
    assert b"x" * 20 in messages_file(root, "s").read_bytes()  # kept through the rewrite


def test_truncated_file_raises_and_moves_aside(mem, root):
    _fill(mem, "s", 6)
    path = messages_file(root, "s")
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # cut inside the last line
    with pytest.raises(CorruptData, match="truncated") as err:
        mem.session("s").messages(last=3)
    assert err.value.path == str(path)
    moved = Path(err.value.moved_to)
    assert (moved / path.name).read_bytes() == data[:-7]
    assert mem.session("s").count() == 0  # gone from the live store, kept on disk


def test_records_file_garbage_costs_only_the_records(mem, root, caplog):
    _fill(mem, "r")
    mem.store.put_record("default", "r", "summary", "1", {"t": "x"})
    bad = sdir(root, "r") / "records.1.json"
    bad.write_text("[not json")
    with caplog.at_level(logging.WARNING, logger="memvault"):
        assert mem.store.get_records("default", "r", "summary") == []
    assert "records file" in caplog.text
    aside = [p for p in sdir(root, "r").iterdir() if p.name.startswith("records.1.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == "[not json"  # kept for inspection
    assert texts(mem.session("r").messages(last=5)) == [f"r-{i}" for i in range(5)]  # messages untouched
    mem.store.put_record("default", "r", "summary", "2", {"t": "y"})
    assert mem.store.get_records("default", "r", "summary") == [("2", {"t": "y"})]
    bad2 = sdir(root, "r") / f"records.{mem.store._load_meta(sdir(root, 'r')).records}.json"
    bad2.write_text("{")
    mem.store.put_record("default", "r", "summary", "3", {"t": "z"})  # a write repairs too
    assert mem.store.get_records("default", "r", "summary") == [("3", {"t": "z"})]


def test_quarantine_never_overwrites_an_earlier_one(mem, root):
    moved = set()
    for _ in range(2):
        _fill(mem, "s")
        (sdir(root, "s") / "meta.jsonl").write_text("garbage")
        with pytest.raises(CorruptData) as err:
            mem.get_session("s")
        moved.add(err.value.moved_to)
    assert len(moved) == 2 and all(Path(m, "meta.jsonl").read_text() == "garbage" for m in moved)


def test_torn_tail_of_an_interrupted_write_is_ignored_then_set_aside(mem, root, caplog):
    s = mem.session("s")
    _fill(mem, "s", 3)
    path = messages_file(root, "s")
    torn = b'{"seq":4,"v":1,"id":"half-written","role":"us'
    with open(path, "ab") as f:
        f.write(torn)  # a writer died in the middle of its append, before committing
    assert texts(s.messages()) == ["s-0", "s-1", "s-2"]
    assert texts(s.messages(last=1)) == ["s-2"] and s.count() == 3
    with caplog.at_level(logging.WARNING, logger="memvault"):
        assert s.add("user", "next").seq == 4
    saved = list(path.parent.glob("messages.1.jsonl.torn-*"))
    assert len(saved) == 1 and saved[0].read_bytes() == torn  # never dropped silently
    assert "interrupted write" in caplog.text
    assert texts(s.messages()) == ["s-0", "s-1", "s-2", "next"]


def test_disk_full_in_the_middle_of_an_append_commits_nothing(mem, monkeypatch):
    s = mem.session("s")
    _fill(mem, "s", 3)
    real = os.pwrite

    def half_then_full(fd: int, data, offset: int) -> int:
        real(fd, bytes(data[: len(data) // 2]), offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", half_then_full)
    with pytest.raises(BackendUnavailable, match="No space left"):
        s.extend([Message("user", "a"), Message("user", "b")])
    monkeypatch.undo()
    assert texts(s.messages()) == ["s-0", "s-1", "s-2"] and s.count() == 3
    assert [m.seq for m in s.extend([Message("user", "a"), Message("user", "b")])] == [4, 5]
    assert texts(s.messages()) == ["s-0", "s-1", "s-2", "a", "b"]


def test_a_torn_meta_slot_falls_back_to_the_other_copy(mem, root):
    s = mem.session("s")
    _fill(mem, "s", 3)
    meta = sdir(root, "s") / "meta.jsonl"
    raw = bytearray(meta.read_bytes())
    size = len(raw) // 2
    current = mem.store._load_meta(sdir(root, "s")).slot
    older = 1 - current
    raw[older * size + 30 : older * size + 40] = b"##########"  # damage the slot that is not current
    meta.write_bytes(bytes(raw))
    assert texts(s.messages()) == ["s-0", "s-1", "s-2"]
    s.add("user", "s-3")  # the next commit rewrites the damaged slot
    assert texts(s.messages(last=1)) == ["s-3"]
    raw = bytearray(meta.read_bytes())
    raw[0:size] = b"x" * size
    raw[size:] = b"y" * size
    meta.write_bytes(bytes(raw))
    with pytest.raises(CorruptData, match="no intact copy"):
        s.messages()


# -- reads stay small -----------------------------------------------------------------------------------------------


def test_tail_and_range_reads_touch_a_small_part_of_the_file(mem, root):
    s = mem.session("big")
    filler = "lorem ipsum " * 40
    for start in range(0, 3000, 500):
        s.extend([Message("user", f"{i} {filler}") for i in range(start, start + 500)])
    size = messages_file(root, "big").stat().st_size
    assert size > 1_400_000
    store: FileStore = mem.store

    def cost(**kwargs) -> tuple[int, list[Message]]:
        before = store.bytes_read
        got = s.messages(**kwargs)
        return store.bytes_read - before, got

    read, got = cost(last=20)
    assert [m.seq for m in got] == list(range(2981, 3001)) and read < 32 * 1024
    read, got = cost(start=1500, limit=20)
    assert [m.seq for m in got] == list(range(1500, 1520)) and read < 128 * 1024
    read, got = cost(start=10, stop=13)
    assert [m.seq for m in got] == [10, 11, 12] and read < 128 * 1024
    read, got = cost(stop=2000, last=5)
    assert [m.seq for m in got] == list(range(1995, 2000)) and read < 128 * 1024
    read, got = cost()
    assert len(got) == 3000 and read >= size  # the counter is real


def test_range_reads_match_the_memory_backend(root):
    rng = random.Random(7)
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    batch = [
        Message("user", "x" * rng.choice([1, 50, 3000, 20_000]) + str(i), id=f"m{i}", created_at=created)
        for i in range(400)
    ]
    with Memory(f"file://{root}") as files, Memory("memory://") as memory:
        for m in (files, memory):
            m.session("s").extend(batch)
            m.session("s").delete_messages([f"m{i}" for i in range(0, 400, 7)])  # gaps in the seqs
        for _ in range(150):
            kwargs = {k: rng.randint(0, 420) for k in rng.sample(["start", "stop", "last", "limit"], rng.randint(0, 3))}
            expected = memory.session("s").messages(**kwargs)
            assert files.session("s").messages(**kwargs) == expected, kwargs
        assert files.session("s").get(["m8", "m0", "m399"]) == memory.session("s").get(["m8", "m0", "m399"])
        assert files.get_session("s").size_bytes == memory.get_session("s").size_bytes


# -- trimming, rewrites ---------------------------------------------------------------------------------------------


def test_cap_trims_by_moving_head_and_compacts_the_file(root):
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with Memory(f"file://{root}", max_messages=10) as files, Memory("memory://", max_messages=10) as memory:
        for i in range(2000):
            for m in (files, memory):
                m.session("capped").add("user", f"{i} " + "z" * 200, id=f"m{i}", created_at=created)
        got = files.session("capped").messages()
        assert [m.seq for m in got] == list(range(1991, 2001))
        assert got == memory.session("capped").messages()
        info = files.get_session("capped")
        assert info.message_count == 10 and info.size_bytes == memory.get_session("capped").size_bytes
        size = messages_file(root, "capped").stat().st_size
        assert size < 3 * COMPACT_MIN  # dead lines are compacted away, the file does not grow forever
        assert files.store._load_meta(sdir(root, "capped")).gen > 1
        assert files.session("capped").add("user", "again", id="m5").seq == 2001  # trimmed ids are gone


def test_rewrites_leave_exactly_one_messages_file(mem, root):
    s = mem.session("s")
    stored = _fill(mem, "s", 10)
    s.delete_messages([stored[3].id])
    s.replace([Message("user", "new")])
    mem.store.put_record("default", "s", "summary", "1", {"t": "a"})
    mem.store.put_record("default", "s", "summary", "2", {"t": "b"})
    names = sorted(p.name for p in sdir(root, "s").iterdir())
    assert names == ["lock", "messages.3.jsonl", "meta.jsonl", "records.2.json"]
    assert json.loads((sdir(root, "s") / "records.2.json").read_text()) == {
        "summary": {"1": {"t": "a"}, "2": {"t": "b"}}
    }
    # files a writer killed between its commit and its cleanup would leave behind; and an uncommitted newer one
    for name in ["messages.2.jsonl", "records.1.json", "meta.jsonl.tmp-1-2", "messages.9.jsonl"]:
        (sdir(root, "s") / name).write_text("left over\n")
    s.clear()
    names = sorted(p.name for p in sdir(root, "s").iterdir())
    assert names == ["lock", "messages.4.jsonl", "messages.9.jsonl", "meta.jsonl"]
    assert (sdir(root, "s") / "messages.4.jsonl").read_bytes() == b""


def test_bad_session_metadata_is_refused_and_stores_nothing(mem, root):
    with pytest.raises(InvalidMessage, match="metadata"):
        mem.session("m", metadata={"when": object()}).add("user", "x")
    assert mem.sessions().items == []


# -- several stores (processes) and threads on one directory --------------------------------------------------------


def test_two_stores_on_one_directory_see_each_other(root):
    a, b = Memory(f"file://{root}"), Memory(f"file://{root}")
    try:
        first = a.session("s").add("user", "once", id="fixed")
        assert b.session("s").add("user", "once", id="fixed").seq == first.seq  # b's id index caught up
        b.session("s").extend([Message("user", f"b{i}", id=f"b{i}") for i in range(3)])
        assert a.session("s").add("user", "b1", id="b1").seq == 3  # and a's did too
        assert b.session("s").delete_messages(["b1"]) == 1  # rewrites the file under a's cached index
        assert a.session("s").add("user", "b1 again", id="b1").seq == 5
        assert texts(a.session("s").get(["b0", "b1", "b2"])) == ["b0", "b2", "b1 again"]
        assert texts(b.session("s").messages()) == ["once", "b0", "b2", "b1 again"]
        a.delete_session("s")
        assert b.session("s").add("user", "reborn", id="fixed").seq == 1
    finally:
        a.close()
        b.close()


def test_threads_append_to_one_session(mem):
    def writer(w: int) -> None:
        for i in range(60):
            mem.session("t").add("user", f"{w}-{i}")

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = mem.session("t").messages()
    assert [m.seq for m in got] == list(range(1, 361))
    for w in range(6):
        assert [m.text for m in got if m.text.startswith(f"{w}-")] == [f"{w}-{i}" for i in range(60)]


def test_lock_free_readers_never_see_half_a_batch(mem):
    stop = threading.Event()
    seen: list[str] = []

    def writer() -> None:
        s = mem.session("rw")
        for round_ in range(80):
            s.extend([Message("user", f"{round_}.{i}") for i in range(5)])
            if round_ % 20 == 19:
                s.replace([Message("user", f"r{round_}.{i}") for i in range(5)])
        stop.set()

    def reader() -> None:
        s = mem.session("rw")
        while not stop.is_set():
            got = s.messages()
            if len(got) % 5 or [m.seq for m in got] != sorted(m.seq for m in got):
                seen.append(f"{len(got)} messages: {[m.seq for m in got]}")
            tail = s.messages(last=5)
            if tail and len({m.text.split(".")[0] for m in tail}) != 1:
                seen.append(f"tail mixes batches: {texts(tail)}")

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == []


def test_a_stuck_writer_times_out_but_readers_go_on(root):
    with Memory(f"file://{root}?lock_timeout=0.2") as mem:
        mem.session("s").add("user", "x")
        fd = os.open(sdir(root, "s") / "lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process holding the session
        try:
            with pytest.raises(BackendUnavailable, match="lock_timeout"):
                mem.session("s").add("user", "y")
            assert texts(mem.session("s").messages()) == ["x"]  # reads take no lock
            mem.session("other").add("user", "z")  # other sessions are not blocked
        finally:
            os.close(fd)
        assert mem.session("s").add("user", "y").seq == 2


def test_url_options_and_stats(root):
    with Memory(f"file://{root}?fsync=true") as mem:
        assert mem.store.fsync is True
        _fill(mem, "a", 3)
        mem.session("b", namespace="other").add("user", "x")
        stats = mem.store.stats()
    assert stats["backend"] == "file" and stats["path"] == str(root)
    assert (stats["namespaces"], stats["sessions"], stats["messages"], stats["quarantined_sessions"]) == (2, 2, 4, 0)
    with pytest.raises(BackendUnavailable, match="closed"):
        mem.session("a").messages()


# -- crashes --------------------------------------------------------------------------------------------------------

CRASHER = r"""
import itertools, sys
from memvault import Memory, Message

mem = Memory(sys.argv[1])
whole, capped = mem.session("whole"), mem.session("capped", max_messages=40)
print("ready", flush=True)
for r in itertools.count():
    tag = f"{sys.argv[2]}.{r}"
    stored = whole.extend([Message("user", f"{tag}.{i} " + "x" * (r % 300), id=f"{tag}.{i}") for i in range(5)])
    capped.extend([Message("user", f"{tag}.{i} " + "y" * 900) for i in range(3)])
    if r % 7 == 3:
        whole.delete_messages([m.id for m in stored])
    if r % 40 == 39:
        whole.replace(whole.messages(last=10))
"""


def _check_consistent(mem: Memory) -> None:
    whole = mem.session("whole").messages()
    assert mem.session("whole").count() == len(whole) and len(whole) % 5 == 0
    for k in range(0, len(whole), 5):
        batch = whole[k : k + 5]
        tags = {m.id.rsplit(".", 1)[0] for m in batch}
        assert len(tags) == 1, f"a batch was split: {[m.id for m in batch]}"
        assert [m.id.rsplit(".", 1)[1] for m in batch] == ["0", "1", "2", "3", "4"]
    assert [m.seq for m in whole] == sorted({m.seq for m in whole})
    size = sum(len(encode_body(m).body.encode()) for m in whole)
    if whole:
        assert mem.get_session("whole").size_bytes == size
    capped = mem.session("capped").messages()
    assert len(capped) <= 40 and mem.session("capped").count() == len(capped)
    if capped:
        last = capped[-1].seq
        assert [m.seq for m in capped] == list(range(last - len(capped) + 1, last + 1))


@pytest.mark.slow
def test_killed_writers_leave_a_consistent_store(root):
    rng = random.Random(3)
    url = f"file://{root}"
    Memory(url).close()
    for round_ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", CRASHER, url, f"p{round_}"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Memory(url) as mem:
            _check_consistent(mem)
            mem.session("whole").extend([Message("user", f"c{round_}.{i}", id=f"c{round_}.{i}") for i in range(5)])
            mem.session("capped", max_messages=40).add("user", "after crash")
            _check_consistent(mem)
    assert not [p for p in root.rglob("*") if ".corrupt-" in p.name]
    with Memory(url) as mem:
        assert mem.get_session("whole").message_count > 0


# -- differential: random operations against the in-memory reference -----------------------------------------------


def test_random_operations_match_the_memory_backend(root):
    """Appends (with repeated ids), caps, deletions, rewrites, records, TTL expiry and purges, through two file
    stores on one directory (as two processes would use it), must answer exactly like the in-memory store."""
    rng = random.Random(11)
    clock = FakeClock()
    created = datetime(2024, 1, 1, tzinfo=timezone.utc)
    files = [Memory(f"file://{root}", clock=clock, ttl=500), Memory(f"file://{root}", clock=clock, ttl=500)]
    reference = Memory("memory://", clock=clock, ttl=500)
    ids = [f"id{i}" for i in range(60)]

    def batch() -> list[dict]:
        return [
            {"role": "user", "content": f"{rng.random():.6f}" + "w" * rng.choice([0, 10, 2000, 40_000]),
             "id": rng.choice(ids), "created_at": created}
            for _ in range(rng.randint(1, 4))
        ]  # fmt: skip

    def both(call, *args):
        expected = call(reference, *args)
        got = call(rng.choice(files), *args)
        assert got == expected, (call, args)
        return expected

    def extend(m, sid, cap, spec, method):
        return [x.seq for x in getattr(m.session(sid, max_messages=cap), method)([Message(**x) for x in spec])]

    def put(m, sid, key, value):
        try:
            m.store.put_record(m.namespace, sid, "summary", key, value)
        except SessionNotFound:
            return "not found"
        return "ok"

    def info(m, sid):
        i = m.store.get_session(m.namespace, sid)
        return None if i is None else (i.message_count, i.size_bytes, i.last_seq, i.created_at, i.updated_at,
                                       i.expires_at)  # fmt: skip

    try:
        for _ in range(400):
            sid = rng.choice(["a", "b"])
            cap = rng.choice([None, None, 3, 25])
            op = rng.random()
            if op < 0.35:
                both(extend, sid, cap, batch(), "extend")
            elif op < 0.42:
                both(lambda m, sid, doomed: m.session(sid).delete_messages(doomed), sid, rng.sample(ids, 5))
            elif op < 0.47:
                both(extend, sid, cap, batch(), "replace")
            elif op < 0.50:
                both(lambda m, sid: m.session(sid).clear(), sid)
            elif op < 0.56:
                both(put, sid, str(rng.randint(0, 4)), {"v": rng.random()})
            elif op < 0.59:
                keys = [str(rng.randint(0, 4))]
                both(lambda m, sid, keys: m.store.delete_records(m.namespace, sid, "summary", keys), sid, keys)
            elif op < 0.62:
                clock.advance(rng.choice([10, 200, 600]))
            elif op < 0.64:
                both(lambda m, sid: m.delete_session(sid), sid)
            elif op < 0.66:
                both(lambda m: m.purge_expired())
            # after every step, reads agree
            kwargs = {k: rng.randint(0, 40) for k in rng.sample(["start", "stop", "last", "limit"], rng.randint(0, 2))}
            both(lambda m, sid, kwargs: m.session(sid).messages(**kwargs), sid, kwargs)
            both(lambda m, sid, wanted: m.session(sid).get(wanted), sid, rng.sample(ids, 6))
            both(lambda m, sid: m.store.get_records(m.namespace, sid, "summary"), sid)
            both(info, sid)
            both(lambda m: sorted((i.id, i.message_count) for i in m.sessions(limit=10)))
    finally:
        for m in files:
            m.close()
