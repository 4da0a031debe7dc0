"""PostgreSQL-specific behaviour beyond the conformance suite, on the embedded PostgreSQL 18 (pgvector) server:
migrations racing across processes, extension hooks, full-text/cross-session queries, the native async face,
existing pools/connections, outages, timeouts and password hygiene."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from memvault import Memory, Message
from memvault.backends.postgres import MIGRATIONS, PostgresAsyncStore, PostgresStore, Q
from memvault.contract import AppendOptions
from memvault.errors import (
    BackendUnavailable,
    InvalidCursor,
    InvalidFilter,
    InvalidMessage,
    InvalidURL,
    SchemaVersionError,
    SessionNotFound,
)
from memvault.model import encode_body
from tests.conftest import FakeClock
from tests.harness.postgres import drop_schema, start_embedded

SECRET = "s3cr3t-Pa55word"


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    name = f"mvt_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schema(postgres_url, name)


@pytest.fixture
def store(postgres_url: str, schema: str) -> Iterator[PostgresStore]:
    s = PostgresStore.from_url(postgres_url, schema=schema, min_size=0, max_size=4)
    yield s
    s.close()


def records(*texts: str, **fields: Any) -> list[Any]:
    return [encode_body(Message("user", t, **fields)) for t in texts]


OPTS = AppendOptions()


# -- schema and migrations ------------------------------------------------------------------------------------------

MIGRATE_WORKER = r"""
import sys
from memvault.backends.postgres import PostgresStore
url, schema = sys.argv[1], sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
store = PostgresStore.from_url(url, schema=schema, min_size=0)
store.migrate("ext", ["CREATE TABLE {schema}.ext_a (x int)", "ALTER TABLE {schema}.ext_a ADD COLUMN y int"])
store.close()
print("ok", flush=True)
"""


def test_processes_migrating_a_fresh_schema_at_once(postgres_url: str, schema: str) -> None:
    workers = [
        subprocess.Popen([sys.executable, "-c", MIGRATE_WORKER, postgres_url, schema],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    try:
        for w in workers:
            assert w.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
        for w in workers:
            w.stdin.write("go\n")  # type: ignore[union-attr]
            w.stdin.flush()  # type: ignore[union-attr]
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (out, err) in zip(workers, results, strict=True):
        assert w.returncode == 0 and out.strip() == "ok", err
    with psycopg.connect(postgres_url) as conn:
        versions = dict(conn.execute(f'SELECT component, version FROM "{schema}".schema_versions').fetchall())
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'ext_a' "
            "ORDER BY ordinal_position", (schema,)
        ).fetchall()
    assert versions == {"core": len(MIGRATIONS), "ext": 2}
    assert [c[0] for c in columns] == ["x", "y"]


def test_migrate_applies_only_new_steps_and_refuses_a_newer_schema(store: PostgresStore) -> None:
    steps = ["CREATE TABLE {schema}.notes (k text PRIMARY KEY, v text DEFAULT '50%')"]
    assert store.migrate("notes", steps) == 1
    with store.transaction() as conn:
        conn.execute(f"INSERT INTO {store.qualify('notes')} (k) VALUES ('a')")
    assert store.migrate("notes", steps) == 1  # nothing re-run (a re-run CREATE TABLE would fail)
    ran: list[int] = []

    def step_two(conn: psycopg.Connection[Any]) -> None:
        ran.append(1)
        conn.execute("ALTER TABLE notes ADD COLUMN n int DEFAULT 7")  # unqualified: search_path is the schema

    assert store.migrate("notes", [*steps, step_two]) == 2
    assert store.migrate("notes", [*steps, step_two]) == 2
    assert ran == [1]
    with store.connection() as conn:
        assert conn.execute(f"SELECT k, v, n FROM {store.qualify('notes')}").fetchall() == [("a", "50%", 7)]
    with pytest.raises(SchemaVersionError):
        store.migrate("notes", steps)
    assert store.stats()["schema_versions"] == {"core": len(MIGRATIONS), "notes": 2}


def test_opening_an_older_schema_upgrades_it(postgres_url: str, schema: str) -> None:
    first = PostgresStore.from_url(postgres_url, schema=schema, min_size=0)
    first.append("ns", "s", records("kept"), OPTS)
    with first.transaction() as conn:  # make it a v1 schema: no write function, jsonb metadata, no entries
        conn.execute(f"DROP FUNCTION {first.qualify('write_messages')}")
        conn.execute(f"DROP TABLE {first.qualify('entries')}")
        conn.execute(f"ALTER TABLE {first.qualify('sessions')} ALTER COLUMN metadata DROP DEFAULT")
        conn.execute(f"ALTER TABLE {first.qualify('sessions')} ALTER COLUMN metadata TYPE jsonb USING metadata::jsonb")
        conn.execute(f"UPDATE {first.qualify('schema_versions')} SET version = 1 WHERE component = 'core'")
    first.close()
    second = PostgresStore.from_url(postgres_url, schema=schema, min_size=0)
    try:
        assert second.stats()["schema_versions"]["core"] == len(MIGRATIONS)
        assert second.append("ns", "s", records("new"), OPTS) == [2]
        assert [m.text for m in second.read("ns", "s")] == ["kept", "new"]
    finally:
        second.close()


def test_transaction_rolls_back_on_error(store: PostgresStore) -> None:
    store.migrate("t", ["CREATE TABLE {schema}.t (x int)"])
    with pytest.raises(ZeroDivisionError), store.transaction() as conn:
        conn.execute(f"INSERT INTO {store.qualify('t')} VALUES (1)")
        raise ZeroDivisionError
    with store.connection() as conn:
        assert conn.execute(f"SELECT count(*) FROM {store.qualify('t')}").fetchone() == (0,)


def test_pgvector_enabled_on_the_embedded_server(store: PostgresStore) -> None:
    assert store.has_vector and "vector" in store.capabilities
    assert store.vector_schema == "public"
    store.migrate("vec", ["CREATE TABLE {schema}.emb (id int PRIMARY KEY, v vector(3))"])
    with store.transaction() as conn:
        conn.execute(f"INSERT INTO {store.qualify('emb')} VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")
        nearest = conn.execute(
            f"SELECT id FROM {store.qualify('emb')} ORDER BY v <=> '[0.9,0.1,0]' LIMIT 1"
        ).fetchone()
    assert nearest == (1,)


def test_sessions_work_on_a_database_without_pgvector(postgres_url: str) -> None:
    db = f"novec_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {db}")
    url = postgres_url.replace("/postgres?", f"/{db}?")
    try:
        with Memory(url, vector=False) as mem:
            assert mem.store.has_vector is False  # type: ignore[attr-defined]
            assert "vector" not in mem.store.capabilities
            mem.session("s").extend([Message("user", "a"), Message("assistant", "b")])
            assert [m.text for m in mem.session("s").messages(last=1)] == ["b"]
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {db} WITH (FORCE)")


# -- the write path -------------------------------------------------------------------------------------------------


def counting(plan_fn: Any, seen: list[Any]) -> Any:
    def wrapped(*args: Any) -> Any:
        plan = plan_fn(*args)
        result = None
        try:
            while True:
                step = plan.send(result)
                seen.append(step)
                result = yield step
        except StopIteration as stop:
            return stop.value

    return wrapped


def test_every_write_is_one_statement(store: PostgresStore) -> None:
    clock = FakeClock()
    store.clock = clock

    def statements(plan_fn: Any, *args: Any) -> tuple[Any, list[Any]]:
        seen: list[Any] = []
        return store.run_plan(counting(plan_fn, seen), *args), seen

    seqs, seen = statements(store._p_append, "ns", "s", records("a", "b"), OPTS)
    assert seqs == [1, 2] and len(seen) == 1 and isinstance(seen[0], Q)
    _, seen = statements(store._p_append, "ns", "s", records("c"), AppendOptions(max_messages=2))  # cap
    assert len(seen) == 1
    assert [m.text for m in store.read("ns", "s")] == ["b", "c"]
    _, seen = statements(store._p_replace, "ns", "s", records("d"), OPTS)
    assert len(seen) == 1
    assert [(m.seq, m.text) for m in store.read("ns", "s")] == [(4, "d")]
    store.append("ns", "e", records("old"), AppendOptions(ttl=5))
    clock.advance(6)
    seqs, seen = statements(store._p_append, "ns", "e", records("new"), AppendOptions(ttl=5))  # expired: fresh
    assert seqs == [1] and len(seen) == 1
    assert [m.text for m in store.read("ns", "e")] == ["new"]


def test_tail_read_walks_the_primary_key_without_sorting(store: PostgresStore) -> None:
    store.append("ns", "big", records(*[str(i) for i in range(300)]), OPTS)
    with store.connection() as conn:
        conn.execute("ANALYZE " + store.qualify("messages"))
        plan = conn.execute(
            f"EXPLAIN (FORMAT JSON) SELECT seq, body FROM {store.qualify('messages')} "
            "WHERE namespace = 'ns' AND session_id = 'big' ORDER BY seq DESC LIMIT 20"
        ).fetchone()[0]  # type: ignore[index]
    text = json.dumps(plan)
    assert "messages_pkey" in text and '"Sort"' not in text


def test_same_message_id_from_racing_writers_is_stored_once(store: PostgresStore) -> None:
    for round_ in range(5):
        sid = f"race{round_}"
        store.append("ns", sid, records("first"), OPTS)
        record = encode_body(Message("user", "dup", id=f"fixed-{round_}"))
        barrier = threading.Barrier(4)
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def write(record: Any, sid: str, barrier: threading.Barrier, results: list[Any], errors: list[Any]) -> None:
            try:
                barrier.wait()
                results.append(store.append("ns", sid, [record], OPTS))
            except BaseException as exc:  # reported below
                errors.append(exc)

        args = (record, sid, barrier, results, errors)
        threads = [threading.Thread(target=write, args=args) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert results == [[2]] * 4
        assert store.count("ns", sid) == 2
        assert [m.seq for m in store.read("ns", sid)] == [1, 2]


def test_capped_session_under_concurrent_writers(store: PostgresStore) -> None:
    cap = AppendOptions(max_messages=10)

    def write(w: int) -> None:
        for i in range(40):
            store.append("ns", "capped", records(f"{w}-{i}"), cap)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kept = store.read("ns", "capped")
    info = store.get_session("ns", "capped")
    assert info is not None
    assert [m.seq for m in kept] == list(range(151, 161))
    assert (info.message_count, info.last_seq) == (10, 160)
    assert info.size_bytes == sum(len(encode_body(m).body.encode()) for m in kept)


def test_nul_characters_round_trip_in_content_and_are_refused_where_postgres_cannot_hold_them(
    store: PostgresStore,
) -> None:
    mem = Memory(store)
    s = mem.session("nul")
    stored = s.add("tool", "before\x00after", metadata={"raw": "a\x00b"})
    back = s.messages()[0]
    assert back.content == "before\x00after" and back.metadata == {"raw": "a\x00b"} and back.id == stored.id
    with pytest.raises(InvalidMessage):
        s.add("user", "x", id="bad\x00id")
    with pytest.raises(InvalidMessage):
        mem.session("nul-meta", metadata={"k": "v\x00"}).add("user", "x")
    assert [m.text for m in s.messages()] == ["before\x00after"]


def test_purge_removes_expired_sessions_in_batches(store: PostgresStore) -> None:
    clock = FakeClock()
    store.clock = clock
    for i in range(620):
        store.ensure_session("ns", f"s{i}", AppendOptions(ttl=10))
    store.append("ns", "s0", records("x"), AppendOptions(ttl=10))
    store.ensure_session("ns", "keep", AppendOptions(ttl=None))
    clock.advance(11)
    assert store.purge_expired() == 620
    with store.connection() as conn:
        left = conn.execute(f"SELECT count(*) FROM {store.qualify('sessions')}").fetchone()
        msgs = conn.execute(f"SELECT count(*) FROM {store.qualify('messages')}").fetchone()
    assert left == (1,) and msgs == (0,)


# -- cross-session queries ------------------------------------------------------------------------------------------


@pytest.fixture
def corpus(store: PostgresStore) -> PostgresStore:
    clock = FakeClock()
    store.clock = clock
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    data = {
        ("alice", "trip"): ["We are flying to Paris in May", "Book a hotel near the Louvre", "Paris museums on Monday"],
        ("alice", "code"): ["Python asyncio question", "How do I cancel a running task?"],
        ("bob", "bob-trip"): ["Paris or Rome for a weekend?", "O'Brien recommended Rome"],
        (None, "anon"): ["paris is lovely in spring"],
    }
    n = 0
    for (user, sid), texts in data.items():
        msgs = []
        for t in texts:
            msgs.append(Message("user", t, created_at=base + timedelta(hours=n), metadata={"n": n, "even": n % 2 == 0}))
            n += 1
        store.append("ns", sid, [encode_body(m) for m in msgs], AppendOptions(user_id=user))
    store.append("other-ns", "trip", records("Paris in another tenant"), AppendOptions(user_id="alice"))
    return store


def test_find_messages_full_text_by_user_and_session(corpus: PostgresStore) -> None:
    hits = corpus.find_messages("ns", text="paris")
    assert sorted(m.text for m in hits) == sorted([
        "We are flying to Paris in May", "Paris museums on Monday", "Paris or Rome for a weekend?",
        "paris is lovely in spring",
    ])
    assert all(m.session_id and m.seq for m in hits)
    assert {m.session_id for m in corpus.find_messages("ns", text="paris", user_id="alice")} == {"trip"}
    assert [m.text for m in corpus.find_messages("ns", text="museum")] == ["Paris museums on Monday"]  # stemmed
    assert [m.text for m in corpus.find_messages("ns", text='"hotel near"')] == ["Book a hotel near the Louvre"]
    assert [m.text for m in corpus.find_messages("ns", text="paris -rome", session_ids=["bob-trip", "anon"])] == [
        "paris is lovely in spring"
    ]
    assert [m.text for m in corpus.find_messages("ns", text="O'Brien")] == ["O'Brien recommended Rome"]
    assert corpus.find_messages("ns", text="'); DROP TABLE messages; --").items == []
    assert [m.text for m in corpus.find_messages("other-ns", text="paris")] == ["Paris in another tenant"]


def test_find_messages_time_range_metadata_and_pagination(corpus: PostgresStore) -> None:
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    everything = corpus.find_messages("ns", limit=100)
    assert [m.metadata["n"] for m in everything] == list(reversed(range(8)))  # newest first
    window = corpus.find_messages("ns", after=base + timedelta(hours=2), before=base + timedelta(hours=5))
    assert [m.metadata["n"] for m in window] == [4, 3, 2]
    assert [m.metadata["n"] for m in corpus.find_messages("ns", metadata={"even": True}, user_id="alice")] == [4, 2, 0]
    assert [m.metadata["n"] for m in corpus.find_messages("ns", metadata={"n": 5})] == [5]
    for text in (None, "paris"):
        seen: list[tuple[str, int]] = []
        cursor = None
        while True:
            page = corpus.find_messages("ns", text=text, limit=2, cursor=cursor)
            seen += [(m.session_id, m.seq) for m in page]  # type: ignore[misc]
            cursor = page.next_cursor
            if cursor is None:
                break
        full = [(m.session_id, m.seq) for m in corpus.find_messages("ns", text=text, limit=100)]
        assert seen == full and len(set(seen)) == len(seen) == (8 if text is None else 4)
    with pytest.raises(InvalidCursor):
        corpus.find_messages("ns", cursor="garbage")
    with pytest.raises(InvalidFilter):
        corpus.find_messages("ns", limit=0)
    with pytest.raises(InvalidFilter):
        corpus.find_messages("ns", session_ids="trip")  # type: ignore[arg-type]


def test_find_messages_skips_expired_sessions(corpus: PostgresStore) -> None:
    corpus.append("ns", "short", records("paris for one minute"), AppendOptions(ttl=60))
    assert "paris for one minute" in [m.text for m in corpus.find_messages("ns", text="paris")]
    corpus.clock.advance(61)  # type: ignore[attr-defined]
    assert "paris for one minute" not in [m.text for m in corpus.find_messages("ns", text="paris")]


async def test_find_messages_async_twin(corpus: PostgresStore) -> None:
    page = await corpus.aio.find_messages("ns", text="paris", user_id="bob")
    assert [m.text for m in page] == ["Paris or Rome for a weekend?"]
    await corpus.aio.close()


# -- async, existing clients ----------------------------------------------------------------------------------------


async def test_async_face_is_native(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_threads(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async face must not offload to threads")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    aio = store.aio
    assert isinstance(aio, PostgresAsyncStore)
    results = await asyncio.gather(*(aio.append("ns", "a", records(f"m{i}"), OPTS) for i in range(40)))
    assert sorted(seq for r in results for seq in r) == list(range(1, 41))
    assert all(isinstance(c, psycopg.AsyncConnection) for c in store._apool._idle)  # type: ignore[union-attr]
    assert [m.seq for m in await aio.read("ns", "a", last=3)] == [38, 39, 40]
    assert (await aio.get_session("ns", "a")).message_count == 40  # type: ignore[union-attr]
    await aio.put_record("ns", "a", "summary", "1", {"t": "x"})
    assert await aio.get_records("ns", "a", "summary") == [("1", {"t": "x"})]
    with pytest.raises(SessionNotFound):
        await aio.put_record("ns", "nobody", "summary", "1", {})
    monkeypatch.undo()
    await aio.close()


def test_async_face_works_from_successive_event_loops(store: PostgresStore) -> None:
    asyncio.run(store.aio.append("ns", "loops", records("one"), OPTS))
    asyncio.run(store.aio.append("ns", "loops", records("two"), OPTS))  # a new loop gets a new async pool
    assert [m.text for m in store.read("ns", "loops")] == ["one", "two"]


def test_existing_pool_and_connection(postgres_url: str, schema: str) -> None:
    with ConnectionPool(postgres_url, min_size=1, max_size=2, open=True) as pool:  # not autocommit
        with Memory(pool, schema=schema) as mem:
            assert isinstance(mem.store, PostgresStore)
            mem.session("p").extend([Message("user", "a"), Message("user", "b")])
            assert mem.session("p").count() == 2
        assert not pool.closed  # the caller keeps ownership
        with pool.connection() as conn:
            assert conn.execute(f'SELECT count(*) FROM "{schema}".messages').fetchone() == (2,)
    with psycopg.connect(postgres_url) as conn:
        with Memory(conn, schema=schema) as mem:
            mem.session("p").add("user", "c")
            assert [m.seq for m in mem.session("p").messages()] == [1, 2, 3]
        assert not conn.closed


def test_a_given_connection_commits_every_use_even_after_reads(postgres_url: str, schema: str) -> None:
    """A non-autocommit connection given to the store: a read (recall, listing) must not leave a transaction open
    that turns later writes into savepoints nobody commits (they were invisible to every other connection, and
    a second store's write to the same rows waited on them forever)."""
    from psycopg.pq import TransactionStatus

    with psycopg.connect(postgres_url) as conn, Memory(conn, schema=schema, embedder="hash") as mem:
        s = mem.session("c")
        s.add("user", "the red fox jumps")
        assert mem.recall("fox", session="c", k=1)[0].message.text == "the red fox jumps"  # plain SELECTs
        list(mem.sessions())
        s.add("user", "a blue whale sings")
        assert conn.info.transaction_status == TransactionStatus.IDLE
        with psycopg.connect(postgres_url, autocommit=True) as other:
            assert other.execute(f'SELECT count(*) FROM "{schema}".messages').fetchone() == (2,)
            vectors = other.execute(
                "SELECT count(*) FROM pg_tables t WHERE t.schemaname = %s AND t.tablename LIKE 'recall_vectors%%'",
                (schema,)).fetchone()
            assert vectors is not None and vectors[0] >= 1
        # the connection is the caller's too: the indexer embeds in the writing thread (a thread of its own would
        # open savepoints inside the caller's transaction while the caller commits it)
        assert mem.recall_service.indexer.mode == "inline"
        with conn.transaction():  # inside the caller's own transaction the store joins it: theirs to commit
            s.add("user", "in the caller's transaction")
            assert conn.info.transaction_status == TransactionStatus.INTRANS
            assert mem.recall_service.indexer.backlog == 0  # embedded inside that transaction
        assert s.count() == 3
        assert mem.recall("caller's transaction", session="c", k=1)[0].message.text == "in the caller's transaction"


async def test_existing_async_pool(postgres_url: str, schema: str) -> None:
    async with AsyncConnectionPool(postgres_url, min_size=1, max_size=2, open=False) as apool:
        mem = Memory(apool, schema=schema)
        s = mem.session("ap")
        await s.aextend([Message("user", "a"), Message("user", "b")])
        assert mem.store._apool is apool  # type: ignore[attr-defined]
        assert [m.text for m in s.messages()] == ["a", "b"]  # the sync face works too
        await mem.aclose()
        assert not apool.closed


def test_url_options(postgres_url: str, schema: str) -> None:
    sep = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{sep}schema={schema}&max_size=3&statement_timeout=5&ttl=60&application_name=mvtest"
    store = PostgresStore.from_url(url)
    try:
        assert (store.schema, store.max_size, store.default_ttl) == (schema, 3, 60.0)
        with store.connection() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone() == ("5s",)
            assert conn.execute("SHOW application_name").fetchone() == ("mvtest",)
        with Memory(store) as mem:
            assert mem.ttl == 60.0
    finally:
        store.close()
    with pytest.raises(InvalidURL):
        PostgresStore.from_url(postgres_url, schema="bad-name; drop")
    with pytest.raises(InvalidURL):
        PostgresStore.from_url(f"{postgres_url}{sep}max_size=lots")


# -- failures and secrets -------------------------------------------------------------------------------------------

UNREACHABLE = r"""
import json, sys, time
from memvault import Memory
from memvault.errors import BackendUnavailable
t = time.monotonic()
try:
    Memory(sys.argv[1], connect_timeout=2)
except BackendUnavailable as exc:
    print(json.dumps({"error": str(exc), "seconds": time.monotonic() - t}))
"""


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback TCP server that accepts connections and never answers (a hung server, without leaving the host)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_unreachable_server_fails_fast_with_masked_url(kind: str, request: pytest.FixtureRequest) -> None:
    host = "127.0.0.1:1" if kind == "refused" else request.getfixturevalue("silent_server")
    url = f"postgresql://app:{SECRET}@{host}/db"
    done = subprocess.run([sys.executable, "-c", UNREACHABLE, url], capture_output=True, text=True, timeout=60)
    assert SECRET not in done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert "app:***@" in result["error"]
    assert host.split(":")[0] in result["error"]


def test_password_never_in_errors_logs_or_reprs(postgres_url: str, schema: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = postgres_url.replace("postgres:@", f"postgres:{SECRET}@")  # trust auth ignores it; it is still secret
    assert SECRET in url
    with Memory(url, schema=schema) as mem:
        mem.session("s").add("user", "hello")
        store = mem.store
        texts = [repr(mem), repr(store), store.url, repr(store.aio), json.dumps(store.stats())]
    assert "postgres:***@" in store.url
    try:
        store.read("default", "s")
    except BackendUnavailable as exc:  # closed store
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    else:
        raise AssertionError("a closed store must raise BackendUnavailable")
    bad = f"postgresql://app:{SECRET}@127.0.0.1:1/db?password={SECRET}"
    with pytest.raises(BackendUnavailable) as info:
        PostgresStore.from_url(bad, connect_timeout=1)
    texts += [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if SECRET in t]


def test_outage_raises_backend_unavailable_then_recovers(schema: str) -> None:
    server = start_embedded(Path(tempfile.mkdtemp(prefix="mvpg-outage-")) / "data")
    try:
        store = PostgresStore.from_url(server.url, schema=schema, connect_timeout=2, pool_timeout=2)
        store.append("ns", "s", records("before"), OPTS)
        server.stop()
        with pytest.raises(BackendUnavailable) as info:
            store.append("ns", "s", records("during"), OPTS)
        assert "PostgreSQL" in str(info.value)
        with pytest.raises(BackendUnavailable):
            asyncio.run(store.aio.read("ns", "s"))
        server.start()
        for _ in range(50):  # the breaker lets a probe through each second: the first one after the restart wins
            try:
                store.append("ns", "s", records("after"), OPTS)
                break
            except BackendUnavailable:
                time.sleep(0.1)
        assert [m.text for m in store.read("ns", "s")] == ["before", "after"]
        assert [m.text for m in asyncio.run(store.aio.read("ns", "s"))] == ["before", "after"]
        store.close()
    finally:
        server.close()


def test_statement_timeout_is_a_clear_error(postgres_url: str, schema: str) -> None:
    store = PostgresStore.from_url(postgres_url, schema=schema, statement_timeout=0.2, min_size=0)
    try:

        def slow() -> Any:
            yield Q("SELECT pg_sleep(5)")

        with pytest.raises(BackendUnavailable, match="statement_timeout"):
            store.run_plan(slow)
        assert store.count("ns", "s") == 0  # the pool still works afterwards
    finally:
        store.close()


def test_async_face_leaves_no_background_tasks_behind(postgres_url: str, schema: str) -> None:
    """A pool's maintenance tasks left on a loop make asyncio.run() hang at shutdown (psycopg_pool's workers swallow
    CancelledError); the connections memvault opens per loop must leave no task running between calls."""
    store = PostgresStore.from_url(postgres_url, schema=schema)
    store.append("ns", "s", records("one"), OPTS)

    async def use(text: str) -> set[asyncio.Task[Any]]:
        await store.aio.append("ns", "s", records(text), OPTS)
        assert (await store.aio.read("ns", "s", last=1))[0].text == text
        return asyncio.all_tasks() - {asyncio.current_task()}

    for i in range(3):  # a new loop each time, as repeated asyncio.run() calls do
        assert asyncio.run(use(f"loop {i}")) == set()
    assert [m.text for m in store.read("ns", "s")] == ["one", "loop 0", "loop 1", "loop 2"]
    store.close()


def test_append_reads_a_constant_number_of_index_entries(postgres_url: str, schema: str) -> None:
    """PL/pgSQL caches plans per connection: the v2 known-id check, planned while the table was empty, walked the
    session's primary key and filtered on id (O(session) per append) until the next ANALYZE. v3 lets the unique id
    index decide (INSERT ... ON CONFLICT), so an append touches a constant number of index entries."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        store = PostgresStore.from_client(conn, schema=schema)
        for i in range(30):  # plans are made (and cached) while the table is nearly empty
            store.append("ns", "grow", records(f"early {i}"), OPTS)
        store.append("ns", "grow", records(*(f"bulk {i}" for i in range(3000))), OPTS)

        def entries_read() -> int:
            conn.execute("SELECT pg_stat_force_next_flush()")
            row = conn.execute(
                "SELECT (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes "
                "        WHERE schemaname = %s AND relname = 'messages')"
                "     + (SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables "
                "        WHERE schemaname = %s AND relname = 'messages')",
                (schema, schema),
            ).fetchone()
            return int(row[0]) if row else 0

        before = entries_read()
        for i in range(20):
            store.append("ns", "grow", records(f"late {i}"), OPTS)
        store.append("ns", "grow", records("dup", id="fixed"), OPTS)
        store.append("ns", "grow", records("dup", id="fixed"), OPTS)  # a known id takes the conflict path
        per_append = (entries_read() - before) / 22
        assert per_append < 20, f"{per_append:.0f} index/heap entries read per append: a scan crept back in"
        assert store.count("ns", "grow") == 30 + 3000 + 20 + 1
        store.close()


def test_outage_with_spool_opens_the_breaker_so_nothing_waits(schema: str, tmp_path) -> None:
    """#11.13 with default timeouts: the first call after the server went away detects it (within the 2 s
    unavailable_timeout, not the 10 s pool timeout); after that, writes go straight to the spool and reads fail
    without touching the server; once it is back the prober replays in the background and the pool is fresh.
    (Latencies are measured in benchmarks/outage.py.)"""
    server = start_embedded(Path(tempfile.mkdtemp(prefix="mvpg-spool-")) / "data")
    try:
        mem = Memory(server.url, schema=schema, fallback="spool", spool_path=tmp_path / "spool.db", spool_retry=0.5)
        spool, inner = mem.store, mem.store.inner
        assert "native_async" not in spool.capabilities  # its async face is the threaded one
        assert inner.unavailable_timeout == 2.0
        s = mem.session("chat")
        s.add("user", "before")
        server.stop()
        assert s.add("user", "during 0").seq is None  # detected and spooled
        calls = {"append": 0, "read": 0}
        for name in calls:
            real = getattr(inner, name)

            def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                calls[_name] += 1
                return _real(*args, **kwargs)

            setattr(inner, name, spy)
        assert [s.add("user", f"during {i}").seq for i in range(1, 20)] == [None] * 19
        with pytest.raises(BackendUnavailable, match="unavailable"):
            s.messages()
        assert calls == {"append": 0, "read": 0}  # the breaker is open: the server is not even tried
        assert spool.pending() == 20
        old_pool = inner._pool
        server.start()  # the background prober finds it
        deadline = time.monotonic() + 30
        while spool.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spool.pending() == 0
        assert inner._pool is not old_pool  # the backed-off pool was replaced by a fresh one
        assert s.add("user", "after").seq is not None  # straight to the server again
        assert [m.text for m in s.messages()] == ["before", *[f"during {i}" for i in range(20)], "after"]
        mem.close()
    finally:
        server.close()


def test_outage_without_spool_fails_fast_after_the_first_call(schema: str) -> None:
    server = start_embedded(Path(tempfile.mkdtemp(prefix="mvpg-fast-")) / "data")
    try:
        store = PostgresStore.from_url(server.url, schema=schema)
        store.append("ns", "s", records("before"), OPTS)
        server.stop()
        with pytest.raises(BackendUnavailable):
            store.read("ns", "s")
        assert store._down_since is not None  # found down: the breaker is open
        for _ in range(4):
            with pytest.raises(BackendUnavailable, match="next reconnect probe"):
                store.read("ns", "s")  # no pool wait: refused at once until the next probe
        with pytest.raises(BackendUnavailable, match="next reconnect probe"):
            asyncio.run(store.aio.read("ns", "s"))
        server.start()
        for _ in range(50):
            try:
                assert [m.text for m in store.read("ns", "s")] == ["before"]
                break
            except BackendUnavailable:
                time.sleep(0.1)
        assert store._down_since is None
        assert [m.text for m in asyncio.run(store.aio.read("ns", "s"))] == ["before"]
        store.close()
    finally:
        server.close()
