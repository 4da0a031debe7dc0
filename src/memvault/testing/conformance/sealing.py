"""The codec layer over the store (``sealing``: every store, since encryption is built above the contract) and the
optional maintenance operations of ``memvault rekey`` (``rewrite``: ``Store.rewrite`` and ``Store.list_kinds``)."""

from __future__ import annotations

import os

from memvault.codecs.envelope import SEALED_EXTRA, raw_envelopes
from memvault.codecs.keys import Keyring
from memvault.codecs.payload import MAGIC, Codec
from memvault.codecs.store import SEALED_RECORD, SealedStore
from memvault.contract import Entry, Rewrite
from memvault.errors import EncryptionKeyMissing
from memvault.model import Message, encode_body
from memvault.testing.conformance.helpers import OPTS, rec
from memvault.testing.conformance.kit import Context, check, eq, ok, raises

SECRET = "qzkitsecretq"


@check("sealing")
def sealed_payloads_round_trip_and_reach_the_store_sealed(ctx: Context) -> None:
    """Through a SealedStore (what Memory(url, encryption=...) puts over the store) messages, records and entries
    come back exactly, and the store itself holds them sealed: envelopes without the text, one sealed field per
    record, entry values behind the codec header. Reading an envelope without the key is EncryptionKeyMissing, so
    the store decodes bodies with memvault.model.decode_body."""
    ns = ctx.ns
    sealed = ctx.face_of(SealedStore(ctx.store, Codec(Keyring([os.urandom(32)]), "gzip", threshold=64)))
    message = Message("user", f"the code is {SECRET}", id="m1", metadata={"k": SECRET})
    eq(sealed.append(ns, "v", [encode_body(message)], OPTS), [1], "a sealed append")
    eq(sealed.append_entries(ns, "v", [rec("m2", f"more {SECRET}")], [Entry("e", "a", SECRET.encode() * 10)], OPTS),
       [2], "a sealed append_entries")
    sealed.put_record(ns, "v", "summary", "1", {"text": SECRET})
    sealed.put_entries(ns, "v", [Entry("e", "b", SECRET.encode())], OPTS)
    got = sealed.read(ns, "v")
    eq([(m.id, m.seq, m.text, m.metadata) for m in got],
       [("m1", 1, f"the code is {SECRET}", {"k": SECRET}), ("m2", 2, f"more {SECRET}", {})], "sealed messages read back")
    eq([m.text for m in sealed.get_messages(ns, "v", ["m2"])], [f"more {SECRET}"], "get_messages through the seal")
    eq(sealed.get_records(ns, "v", "summary"), [("1", {"text": SECRET})], "a sealed record read back")
    eq(sealed.get_entries(ns, "v", "e", ["a", "b"]), {"a": SECRET.encode() * 10, "b": SECRET.encode()},
       "sealed entries read back")
    eq(sealed.scan_entries(ns, "v", "e", keys_only=True), [("a", b""), ("b", b"")], "keys_only scans are not opened")
    with raw_envelopes():
        raw = ctx.store.read(ns, "v")
    ok(all(m.text == "" and isinstance(m.extras.get(SEALED_EXTRA), bytes) and SECRET not in repr(m) for m in raw),
       f"the store holds envelopes without the text: {raw!r:.300}")
    (_, data), = ctx.store.get_records(ns, "v", "summary")
    eq(list(data), [SEALED_RECORD], "a sealed record is one sealed field")
    values = ctx.store.scan_entries(ns, "v", "e")
    ok(all(v.startswith(MAGIC) and SECRET.encode() not in v for _, v in values), "entries are stored sealed")
    raises(EncryptionKeyMissing, lambda: ctx.store.read(ns, "v"), "reading an envelope with no key")
    eq([m.text for m in sealed.pop_messages(ns, "v", index=0, count=1)], [f"the code is {SECRET}"],
       "a pop through the seal returns the opened message")


@check("rewrite", requires="rewrite")
def rewrite_is_compare_and_set(ctx: Context) -> None:
    """Store.rewrite changes a payload in place only while it is what was read (a message: still at that seq; a
    record: that data; an entry: that value), leaves seqs, updated_at and the TTL alone, keeps sizes right."""
    ns, s = ctx.ns, ctx.s
    s.append(ns, "w", [rec("a", "aaaa"), rec("b", "bbbb")], OPTS)
    s.put_record(ns, "w", "summary", "k", {"text": "old"})
    s.put_entries(ns, "w", [Entry("e", "x", b"v1")], OPTS)
    before = s.get_session(ns, "w")
    changes = [
        Rewrite("message", "", "a", 1, rec("a", "AAAA").body),
        Rewrite("message", "", "b", 5, rec("b", "stale").body),  # b is at seq 2
        Rewrite("message", "", "zz", 1, rec("zz", "absent").body),
        Rewrite("record", "summary", "k", {"text": "old"}, {"text": "new"}),
        Rewrite("record", "summary", "k", {"text": "old"}, {"text": "lost"}),  # stale once the one above is made
        Rewrite("entry", "e", "x", b"v1", b"v2"),
        Rewrite("entry", "e", "x", b"v1", b"lost"),
        Rewrite("entry", "e", "nope", b"v1", b"lost"),
    ]
    eq(s.rewrite(ns, "w", changes), 3, "changes made (the rest were stale or absent)")
    eq([(m.id, m.seq, m.text) for m in s.read(ns, "w")], [("a", 1, "AAAA"), ("b", 2, "bbbb")], "messages after")
    eq(s.get_records(ns, "w", "summary"), [("k", {"text": "new"})], "the record after")
    eq(s.get_entries(ns, "w", "e", ["x", "nope"]), {"x": b"v2"}, "the entries after")
    after = s.get_session(ns, "w")
    ok(before is not None and after is not None, "the session is there")
    assert before is not None and after is not None
    eq((after.updated_at, after.expires_at, after.message_count, after.last_seq, after.size_bytes),
       (before.updated_at, before.expires_at, 2, 2, before.size_bytes), "a rewrite moves no session fact")
    eq(s.rewrite(ns, "none", changes), 0, "a missing session: nothing")


@check("rewrite", requires="rewrite")
def list_kinds_names_what_a_session_holds(ctx: Context) -> None:
    """Store.list_kinds: the record and entry kinds of a live session, sorted, without emptied kinds."""
    ns, s = ctx.ns, ctx.s
    s.append(ns, "k", [rec("a")], OPTS)
    s.put_record(ns, "k", "summary", "1", {"t": 1})
    s.put_record(ns, "k", "notes", "1", {"t": 1})
    s.put_entries(ns, "k", [Entry("zeta", "1", b"v"), Entry("alpha", "1", b"v"), Entry("gone", "1", b"v")], OPTS)
    s.delete_entries(ns, "k", "gone")
    s.delete_records(ns, "k", "notes")
    eq(s.list_kinds(ns, "k"), {"records": ["summary"], "entries": ["alpha", "zeta"]}, "kinds of the session")
    eq(s.list_kinds(ns, "missing"), {"records": [], "entries": []}, "kinds of a missing session")
