"""Encryption and compression at rest (memvault.codecs), on every backend.

The stored bytes themselves are scanned (the SQLite file and its WAL, every file of a file store, every Redis value
under the store's prefix, every PostgreSQL row of the store's schema): no plaintext may be there. Wrong and
missing keys must raise a typed error and change nothing; payloads written with different codecs and keys must
read side by side; a rekey must leave nothing under the old key; and the in-place rewrite under it is a real
compare-and-set.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.codecs import generate_key, key_id
from memvault.codecs.envelope import raw_envelopes
from memvault.codecs.keys import Keyring
from memvault.codecs.payload import Codec
from memvault.codecs.store import SealedStore
from memvault.contract import AppendOptions, Entry, Rewrite, SessionQuery, Store
from memvault.errors import BackendUnavailable, CorruptData, EncryptionKeyMissing, WrongEncryptionKey
from memvault.kv import KeyValueStore
from memvault.model import Message, Record, encode_body
from memvault.validation import internal_namespace
from tests.backends import BACKENDS

# words no backend derives from anything else (stemmers leave them as they are)
SECRETS = ("qzswordfishq", "qzzebrasauceq", "qzplatypusq", "qzwalrusq", "qzmetasecretq", "qzkvsecretq",
           "qztoolargq")
BIG = 2_500_000  # bytes: an artifact of three chunks


def raw_bytes(mem: Memory) -> bytes:
    """Everything the backend under ``mem`` has stored, as raw as a reader of the database would see it."""
    store: Any = mem.store
    while hasattr(store, "inner"):  # the codec layer, a spool: down to the backend itself
        store = store.inner
    backend = store.backend
    if backend == "sqlite":
        store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        paths = [p for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)]
        return b"".join(p.read_bytes() for p in paths if p.is_file())
    if backend == "file":
        return b"".join(p.read_bytes() for p in sorted(Path(store.root).rglob("*")) if p.is_file())
    if backend == "memory":
        return b"\n".join(_strings(store._state))
    if backend == "redis":
        client = store._sync_client()
        out = []
        for key in client.scan_iter(match=store.prefix + "*", count=1000):
            kind = client.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "string":
                out.append(client.get(key))
            elif kind == "hash":
                out += [x for pair in client.hgetall(key).items() for x in pair]
            elif kind == "zset":
                out += client.zrange(key, 0, -1)
            elif kind == "set":
                out += list(client.smembers(key))
            elif kind == "list":
                out += client.lrange(key, 0, -1)
        return b"\n".join(x if isinstance(x, bytes) else str(x).encode() for x in out)
    if backend == "postgres":
        with store.connection() as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (store.schema,)).fetchall()]
            out = []
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{store.schema}"."{table}"').fetchall():
                    out += [bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row]
        return b"\n".join(out)
    raise AssertionError(f"no raw reader for {backend}")


def _strings(obj: Any, seen: set[int] | None = None) -> list[bytes]:
    """Every str and bytes reachable from ``obj`` (the in-memory backend's state)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, str):
        return [obj.encode("utf-8", "surrogatepass")]
    if isinstance(obj, (bytes, bytearray)):
        return [bytes(obj)]
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in _strings(k, seen) + _strings(v, seen)]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [x for v in obj for x in _strings(v, seen)]
    fields = getattr(obj, "__dict__", None) or {n: getattr(obj, n) for n in getattr(type(obj), "__slots__", ())
                                                 if hasattr(obj, n)}
    return _strings(dict(fields), seen) if fields else []


def leaks(mem: Memory) -> list[str]:
    data = raw_bytes(mem)
    return [s for s in SECRETS if s.encode() in data]


def _fill(mem: Memory) -> None:
    s = mem.session("vault", user_id="u1", metadata={"topic": "visible"})
    s.extend([
        {"role": "user", "content": f"my password is {SECRETS[0]}", "metadata": {"note": SECRETS[4]}},
        {"role": "assistant", "content": [{"type": "text", "text": f"noted {SECRETS[0]}"}],
         "tool_calls": [{"id": "c1", "name": "remember", "args": {"x": SECRETS[6]}}]},
    ])
    s.state.set({"secret": SECRETS[1]})
    s.state.update(lambda d: d | {"n": 1})
    s.artifacts.save("notes.txt", f"artifact {SECRETS[2]}".encode())
    s.artifacts.save("big.bin", (SECRETS[2].encode() + os.urandom(29)) * (BIG // 40))
    mem.store.put_record(mem.namespace, "vault", "summary", "0001", {"text": f"summary {SECRETS[3]}"})
    KeyValueStore(mem, "bytes").mset([("k1", f"value {SECRETS[5]}".encode())])


def _check(mem: Memory) -> None:
    s = mem.session("vault")
    got = s.messages()
    assert got[0].content == f"my password is {SECRETS[0]}" and got[0].metadata == {"note": SECRETS[4]}
    assert got[1].tool_calls == [{"id": "c1", "name": "remember", "args": {"x": SECRETS[6]}}]
    assert [m.seq for m in got] == [1, 2]
    assert s.state.get().data == {"secret": SECRETS[1], "n": 1}
    assert sorted(e.version for e in s.state.history()) == [1, 2]
    assert s.artifacts.load("notes.txt") == f"artifact {SECRETS[2]}".encode()
    big = s.artifacts.load("big.bin")
    assert len(big) == (BIG // 40) * 40 and big.startswith(SECRETS[2].encode())
    assert mem.store.get_records(mem.namespace, "vault", "summary") == [("0001", {"text": f"summary {SECRETS[3]}"})]
    assert KeyValueStore(mem, "bytes").mget(["k1"]) == [f"value {SECRETS[5]}".encode()]
    info = mem.get_session("vault")
    assert info is not None and info.user_id == "u1" and info.metadata == {"topic": "visible"}


def test_encrypted_store_round_trips_and_holds_no_plaintext(make_memory: Any) -> None:
    key = generate_key()
    mem = make_memory(encryption=key, embedder="hash")
    assert isinstance(mem.store, SealedStore) and mem.store.recall_engine is None
    _fill(mem)
    _check(mem)
    hits = mem.recall(SECRETS[0], k=2)  # in process, over the decrypted scope
    assert hits and SECRETS[0] in hits[0].message.text
    assert leaks(mem) == []
    _check(make_memory(encryption=key, embedder="hash"))  # another Memory with the key: same data


def test_plain_store_is_scanned_for_real(make_memory: Any) -> None:
    """The scanner finds what a plain store holds: the check above is not vacuous."""
    mem = make_memory(embedder="hash")
    _fill(mem)
    assert set(leaks(mem)) >= {SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[5]}


def test_missing_or_wrong_key_raises_and_changes_nothing(make_memory: Any) -> None:
    key = generate_key()
    mem = make_memory(encryption=key, embedder="hash")
    _fill(mem)
    before = _snapshot(mem)
    with pytest.raises(EncryptionKeyMissing):
        make_memory(embedder="hash")
    with pytest.raises(WrongEncryptionKey):
        make_memory(encryption=generate_key(), embedder="hash")
    # a Memory that passed the open check (it holds another key too) still cannot open this key's payloads
    other = make_memory(encryption=[generate_key(), key], embedder="hash")
    other.session("vault").messages()  # readable: the old key is held
    stranger = SealedStore(mem.store.inner, Codec(Keyring([os.urandom(32)])))
    with pytest.raises(WrongEncryptionKey):
        stranger.read(mem.namespace, "vault")
    with pytest.raises(WrongEncryptionKey):
        stranger.scan_entries(mem.namespace, "vault", "state")
    assert _snapshot(mem) == before
    _check(mem)


def _snapshot(mem: Memory) -> dict[str, Any]:
    """Every payload of the Memory's sessions as the backend holds it (sealed), with the session facts."""
    inner = mem.store.inner
    out: dict[str, Any] = {}
    for ns in (mem.namespace, internal_namespace(mem.namespace, "kv")):
        for info in inner.list_sessions(SessionQuery(ns, limit=1000)).items:
            with raw_envelopes():
                messages = [(m.id, m.seq, m.extras) for m in inner.read(ns, info.id)]
            kinds = inner.list_kinds(ns, info.id)
            out[f"{ns}/{info.id}"] = {
                "info": (info.updated_at, info.message_count, info.size_bytes, info.metadata),
                "messages": messages,
                "records": {k: inner.get_records(ns, info.id, k) for k in kinds["records"]},
                "entries": {k: inner.scan_entries(ns, info.id, k) for k in kinds["entries"]},
            }
    return out


def test_a_plain_reader_meets_encrypted_messages_with_a_typed_error(make_memory: Any) -> None:
    """A Memory that opened the store before encryption was turned on (no marker yet) still never reads an
    encrypted message as an empty one."""
    plain = make_memory(embedder="hash")
    plain.session("early").add("user", "before")
    sealed = make_memory(encryption=generate_key(), embedder="hash")
    sealed.session("vault").add("user", SECRETS[0])
    with pytest.raises(EncryptionKeyMissing):
        plain.session("vault").messages()
    assert [m.content for m in plain.session("early").messages()] == ["before"]


def test_ciphertext_moved_to_another_place_does_not_open(make_memory: Any) -> None:
    mem = make_memory(encryption=generate_key(), embedder="hash")
    inner = mem.store.inner
    mem.session("a").state.set({"who": "a"})
    mem.session("b").state.set({"who": "b"})
    key, value = inner.scan_entries(mem.namespace, "a", "state")[0]
    inner.put_entries(mem.namespace, "b", [Entry("state", key, value)], AppendOptions())
    with pytest.raises(CorruptData):
        mem.store.get_entries(mem.namespace, "b", "state", [key])
    other_tenant = internal_namespace(mem.namespace, "kv")
    inner.put_entries(other_tenant, "b", [Entry("state", key, value)], AppendOptions())
    with pytest.raises(CorruptData):
        mem.store.get_entries(other_tenant, "b", "state", [key])
    assert mem.store.get_entries(mem.namespace, "a", "state", [key])  # where it belongs, it opens


def test_mixed_codecs_and_keys_read_side_by_side(make_memory: Any) -> None:
    k1, k2 = generate_key(), generate_key()
    text = "compress me " * 400
    plain = make_memory(embedder="hash")
    plain.session("plain").add("user", text)
    plain.session("plain").state.set({"n": 0, "text": text})
    gz = make_memory(embedder="hash", compression="gzip", compression_threshold=100)
    gz.session("gzip").add("user", text)
    gz.session("gzip").state.set({"n": 1, "text": text})
    zs = make_memory(embedder="hash", compression="zstd", compression_threshold=100)
    zs.session("zstd").add("user", text)
    zs.session("zstd").artifacts.save("a.txt", text.encode())
    # a Memory with no option reads compressed data (the store says it has some)
    assert [m.content for m in make_memory(embedder="hash").session("zstd").messages()] == [text]
    e1 = make_memory(embedder="hash", encryption=k1, compression="zstd", compression_threshold=100)
    e1.session("k1").add("user", text)
    e2 = make_memory(embedder="hash", encryption=[k2, k1])
    e2.session("k2").add("user", text)
    e2.session("k2").state.set({"n": 2})
    reader = make_memory(embedder="hash", encryption=[k2, k1], compression="gzip")
    for sid in ("plain", "gzip", "zstd", "k1", "k2"):
        assert [m.content for m in reader.session(sid).messages()] == [text], sid
    assert reader.session("plain").state.get().data["n"] == 0
    assert reader.session("gzip").state.get().data["n"] == 1
    assert reader.session("k2").state.get().data == {"n": 2}
    assert reader.session("zstd").artifacts.load("a.txt") == text.encode()
    stored = raw_bytes(reader)
    assert stored.count(text.encode()) <= 2  # the plain session's message and state; none of the others


def test_rekey_moves_everything_to_the_new_key(make_memory: Any) -> None:
    k1, k2 = generate_key(), generate_key()
    plain = make_memory(embedder="hash")
    plain.session("legacy").extend([{"role": "user", "content": f"{SECRETS[0]} {i}"} for i in range(30)])
    plain.session("legacy").state.set({"s": SECRETS[1]})
    first = make_memory(embedder="hash", encryption=k1)
    _fill(first)
    rotating = make_memory(embedder="hash", encryption=[k2, k1])
    report = rotating.rekey()
    assert report.complete and report.rewritten > 0 and report.from_clear >= 31
    assert report.by_space["message"] == 32 and report.by_space["entry"] > 0 and report.by_space["record"] >= 1
    again = rotating.rekey()
    assert again.rewritten == 0 and again.current == report.rewritten + report.current
    only_new = make_memory(embedder="hash", encryption=k2)
    _check(only_new)
    assert [m.content for m in only_new.session("legacy").messages()][:2] == [f"{SECRETS[0]} 0", f"{SECRETS[0]} 1"]
    assert only_new.session("legacy").state.get().data == {"s": SECRETS[1]}
    assert leaks(only_new) == []  # (PostgreSQL keeps dead row versions in its files until VACUUM: see the docs)


def test_background_rekey_with_a_live_writer_loses_nothing(make_memory: Any) -> None:
    k1, k2 = generate_key(), generate_key()
    old = make_memory(embedder="hash", encryption=k1)
    for n in range(6):
        old.session(f"s{n}").extend([{"role": "user", "content": f"m{i}"} for i in range(20)])
        old.session(f"s{n}").state.set({"n": 0})
    new = make_memory(embedder="hash", encryption=[k2, k1])
    job = new.start_rekey()
    for n in range(6):  # a writer using the new key meanwhile
        new.session(f"s{n}").state.update(lambda d: d | {"n": d["n"] + 1})
        new.session(f"s{n}").add("user", "during")
    job.wait(120)
    new.rekey()  # what raced is checked again
    only_new = make_memory(embedder="hash", encryption=k2)
    for n in range(6):
        s = only_new.session(f"s{n}")
        assert [m.content for m in s.messages()] == [f"m{i}" for i in range(20)] + ["during"]
        assert s.state.get().data == {"n": 1}


def test_rewrite_is_compare_and_set(make_memory: Any) -> None:
    mem = make_memory(embedder="hash")
    store: Store = mem.store
    ns = mem.namespace
    s = mem.session("cas")
    a, b = s.extend([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    s.state.set({"v": 1})
    store.put_record(ns, "cas", "summary", "k", {"text": "old"})
    before = mem.get_session("cas")
    (key, value), = store.scan_entries(ns, "cas", "state", limit=1)
    a.content = "A"
    changes = [
        Rewrite("message", "", a.id, a.seq, encode_body(a).body),
        Rewrite("message", "", b.id, (b.seq or 0) + 7, encode_body(Message("user", "B", id=b.id)).body),  # stale
        Rewrite("message", "", "no-such-id", 1, encode_body(Message("user", "x", id="no-such-id")).body),
        Rewrite("record", "summary", "k", {"text": "old"}, {"text": "new"}),
        Rewrite("record", "summary", "k2", {"text": "old"}, {"text": "new"}),  # absent
        Rewrite("entry", "state", key, value, value + b" "),
        Rewrite("entry", "state", key, b"not what is stored", b"lost"),  # stale by now
    ]
    assert store.rewrite(ns, "cas", changes) == 3
    assert [m.content for m in s.messages()] == ["A", "b"] and [m.seq for m in s.messages()] == [a.seq, b.seq]
    assert store.get_records(ns, "cas", "summary") == [("k", {"text": "new"})]
    assert store.get_entries(ns, "cas", "state", [key]) == {key: value + b" "}
    after = mem.get_session("cas")
    assert after is not None and before is not None
    assert after.updated_at == before.updated_at and after.expires_at == before.expires_at
    assert after.message_count == 2 and after.size_bytes == before.size_bytes  # "a" -> "A": same size
    assert store.rewrite(ns, "nope", changes) == 0
    assert store.list_kinds(ns, "cas") == {"records": ["summary"], "entries": ["state"]}
    assert store.list_kinds(ns, "nope") == {"records": [], "entries": []}


def test_async_faces_seal_the_same(make_memory: Any) -> None:
    key = generate_key()
    mem = make_memory(encryption=key, embedder="hash")

    async def go() -> None:
        s = mem.session("aio")
        await s.aextend([{"role": "user", "content": SECRETS[0]}])
        await s.state.aset({"x": SECRETS[1]})
        assert [m.content for m in await s.amessages()] == [SECRETS[0]]
        assert (await s.state.aget()).data == {"x": SECRETS[1]}
        report = await mem.arekey()
        assert report.rewritten == 0 and report.current > 0

    asyncio.run(go())
    assert [m.content for m in make_memory(encryption=key, embedder="hash").session("aio").messages()] == [SECRETS[0]]
    assert leaks(mem) == []


def test_sealed_records_keep_their_shape_for_the_backend(make_memory: Any) -> None:
    """What the backend stores for a sealed record is one base64 field: no key of the original data."""
    mem = make_memory(encryption=generate_key(), embedder="hash")
    mem.session("r").add("user", "x")
    mem.store.put_record(mem.namespace, "r", "summary", "1", {"text": "t", "covers": [1, 2]})
    (_, data), = mem.store.inner.get_records(mem.namespace, "r", "summary")
    assert list(data) == ["memvault.sealed"] and base64.b64decode(data["memvault.sealed"])[:4] == b"\x00MVC"
    assert json.dumps(data).find("covers") == -1


def test_a_sealed_message_copied_to_another_session_does_not_open(make_memory: Any) -> None:
    mem = make_memory(encryption=generate_key(), embedder="hash")
    inner = mem.store.inner
    mem.session("a").add("user", SECRETS[0])
    assert [m.content for m in mem.session("a").messages()] == [SECRETS[0]]  # opened once: in the cache now
    with raw_envelopes():
        (envelope,) = inner.read(mem.namespace, "a")
    token = envelope.extras["memvault.sealed"]
    stored = f'{{"v":1,"id":{json.dumps(envelope.id)},"sealed":"{base64.b64encode(token).decode()}"}}'
    with raw_envelopes():
        inner.append(mem.namespace, "b", [Record(envelope.id, stored)], AppendOptions())
    try:
        got: list[Message] | None = mem.session("b").messages()
    except CorruptData:
        got = None
    assert got in (None, [])  # refused: an error, or (the file store) skipped and logged as a damaged line
    assert [m.content for m in mem.session("a").messages()] == [SECRETS[0]]


REKEY_WORKER = r"""
import json, sys, time
from memvault import Memory
url, keys, options = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
mem = Memory(url, encryption=keys, embedder="hash", **options)
job = mem.start_rekey()
while not job.done:
    print(job.report.sessions, flush=True)
    time.sleep(0.002)
print("finished", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in sorted(BACKENDS) if b != "memory"], indirect=True)  # another process
def test_rekey_killed_mid_way_loses_nothing_and_resumes(backend: str, request: pytest.FixtureRequest,
                                                        tmp_path: Path) -> None:
    target, options = BACKENDS[backend](request, f"k{uuid.uuid4().hex[:12]}", tmp_path)
    k1, k2 = generate_key(), generate_key()
    with Memory(target, encryption=k1, embedder="hash", **options) as mem:
        for n in range(40):
            s = mem.session(f"s{n:02d}")
            s.extend([{"role": "user", "content": f"{n} says {i}"} for i in range(40)])
            s.state.set({"n": n})
    worker = subprocess.Popen([sys.executable, "-c", REKEY_WORKER, target, json.dumps([k2, k1]), json.dumps(options)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in worker.stdout:  # type: ignore[union-attr]
            if line.strip() == "finished" or int(line) >= 8:
                break
        worker.send_signal(signal.SIGKILL)  # mid-way through the sessions: some rekeyed, some not, one maybe half
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
    with Memory(target, encryption=[k2, k1], embedder="hash", **options) as mem:
        report = mem.rekey()
        assert report.complete and report.rewritten > 0 and report.current > 0
    with Memory(target, encryption=k2, embedder="hash", **options) as mem:  # the old key is not needed any more
        for n in range(40):
            s = mem.session(f"s{n:02d}")
            assert [m.content for m in s.messages()] == [f"{n} says {i}" for i in range(40)]
            assert [m.seq for m in s.messages()] == list(range(1, 41))
            assert s.state.get().data == {"n": n}


@pytest.mark.parametrize("replay", ["in a read of the session", "in a read of another session", "by the prober"])
@pytest.mark.parametrize("backend", [b for b in sorted(BACKENDS) if b != "memory"], indirect=True)
def test_spooled_sealed_writes_replay_sealed_whoever_replays_them(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path, replay: str) -> None:
    """A sealed append spooled during an outage is replayed as it was sealed: from a read of its own session
    (which opens envelopes as it decodes), of another session, or from the prober thread (no codec context)."""
    target, options = BACKENDS[backend](request, f"sp{uuid.uuid4().hex[:10]}", tmp_path)
    mem = Memory(target, encryption=generate_key(), embedder="hash", fallback="spool",
                 spool_path=str(tmp_path / "spool.db"), spool_retry=3600, **options)
    spool = mem.store.inner
    backend_store = spool.inner
    mem.session("s1").add("user", "before")
    mem.session("s2").add("user", "other")
    original, failed = backend_store.append, []

    def down_once(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise BackendUnavailable("down for a moment")
        return original(*args, **kwargs)

    backend_store.append = down_once
    mem.session("s1").add("assistant", f"spooled {SECRETS[0]}", metadata={"m": SECRETS[4]})
    assert spool.pending() == 1
    spool._next_try = 0  # the probe is due: the next read replays inline
    if replay == "in a read of the session":
        assert [m.text for m in mem.session("s1").messages(start=0)] == ["before", f"spooled {SECRETS[0]}"]
    elif replay == "in a read of another session":
        assert [m.text for m in mem.session("s2").messages(start=0)] == ["other"]
    else:
        spool.flush()
    assert spool.pending() == 0 and spool.dead_letters() == []
    assert [m.text for m in mem.session("s1").messages()] == ["before", f"spooled {SECRETS[0]}"]
    assert leaks(mem) == []
    mem.close()


def test_records_and_entries_that_look_sealed_stay_as_they_were(make_memory: Any) -> None:
    """Clear data that happens to use the sealed record key is never taken for a sealed payload, before or after
    a codec is on; and a record written through a codec with that key comes back as written."""
    plain = make_memory(embedder="hash")
    plain.session("r").add("user", "x")
    ns = plain.namespace
    odd = [{"memvault.sealed": "abcd", "x": 1}, {"memvault.sealed": "hello world"}, {"memvault.sealed": 5}]
    for i, data in enumerate(odd):
        plain.store.put_record(ns, "r", "odd", str(i), data)
    gz = make_memory(embedder="hash", compression="gzip")
    assert [d for _, d in gz.store.get_records(ns, "r", "odd")] == odd
    gz.store.put_record(ns, "r", "odd3", "1", {"memvault.sealed": "compressed-only"})
    sealed = make_memory(embedder="hash", encryption=generate_key())
    assert [d for _, d in sealed.store.get_records(ns, "r", "odd")] == odd
    assert sealed.store.get_records(ns, "r", "odd3") == [("1", {"memvault.sealed": "compressed-only"})]
    sealed.store.put_record(ns, "r", "odd2", "1", {"memvault.sealed": "mine"})
    assert sealed.store.get_records(ns, "r", "odd2") == [("1", {"memvault.sealed": "mine"})]
    assert sealed.rekey().complete
    assert [d for _, d in sealed.store.get_records(ns, "r", "odd")] == odd


def test_retired_keys_are_refused_at_open(make_memory: Any) -> None:
    k1, k2 = generate_key(), generate_key()
    make_memory(embedder="hash", encryption=k1).session("s").add("user", "x")
    report = make_memory(embedder="hash", encryption=[k2, k1]).rekey(retire_old_keys=True)
    assert report.complete and report.retired == [key_id(base64.b64decode(k1)).hex()]
    with pytest.raises(WrongEncryptionKey):
        make_memory(embedder="hash", encryption=k1)
    with pytest.raises(WrongEncryptionKey):
        make_memory(embedder="hash", encryption=[k1, k2])  # the retired key as the one that would seal
    assert [m.text for m in make_memory(embedder="hash", encryption=k2).session("s").messages()] == ["x"]


def test_a_memory_opened_during_an_outage_still_never_misreads(make_memory: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened while the backend does not answer (the codec marker unreadable), a Memory without options reads
    through a keyless codec: compressed data is decompressed, encrypted data is a typed error."""
    sealed = make_memory(embedder="hash", encryption=generate_key())
    sealed.session("s").state.set({"x": SECRETS[1]})
    sealed.store.put_record(sealed.namespace, "s", "summary", "1", {"text": SECRETS[3]})
    store_type = type(sealed.store.inner)
    original = store_type.get_records
    calls: list[int] = []

    def unreachable_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(1)
            raise BackendUnavailable("not answering")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(store_type, "get_records", unreachable_once)
    blind = make_memory(embedder="hash")
    assert calls and isinstance(blind.store, SealedStore) and not blind.store.codec.encrypts
    with pytest.raises(EncryptionKeyMissing):
        blind.store.get_records(blind.namespace, "s", "summary")
    with pytest.raises(EncryptionKeyMissing):
        blind.session("s").state.get()
