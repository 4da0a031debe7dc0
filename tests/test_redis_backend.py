"""Redis-specific behaviour beyond the shared conformance suite, against real servers started by the harness:
key layout and hash tags, the 7-day default TTL and native expiry, listing without KEYS, orphan cleanup, script
caching, failures (down, wrong password, masked URLs), existing clients (Redis, RedisCluster, Sentinel, asyncio),
TLS, and the native async face."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from memvault import BackendUnavailable, Memory, Message
from memvault.backends.redis import RedisAsyncStore, RedisStore
from memvault.errors import CorruptData, InvalidURL
from memvault.faces import ThreadedAsyncStore
from tests.harness.redis import RedisServer, _binary, free_port


@pytest.fixture
def prefix() -> str:
    return f"mvt:{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def raw(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _keys(client: Any, prefix: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(match=prefix + "*", count=1000))


# -- layout, TTL ----------------------------------------------------------------------------------------------------


def test_keys_are_hash_tagged_per_session_and_braces_cannot_break_the_tag(redis_url, raw, prefix):
    mem = Memory(redis_url, prefix=prefix, namespace="t{e}n")
    ids = ["plain", "a}b", "{x}", "}{", "back\\slash", "a", "a}"]
    for sid in ids:
        s = mem.session(sid)
        s.add("user", f"hello {sid}")
        mem.store.put_record(mem.namespace, sid, "summary", "1", {"of": sid})
    for sid in ids:
        assert [m.text for m in mem.session(sid).messages()] == [f"hello {sid}"]
        assert mem.store.get_records(mem.namespace, sid, "summary") == [("1", {"of": sid})]
    keys = [k for k in _keys(raw, prefix) if ":ix:" not in k]
    by_tag: dict[str, set[int]] = {}
    for key in keys:
        tag = key[key.index("{") + 1 : key.index("}")]
        by_tag.setdefault(tag, set()).add(key_slot(key.encode()))
    assert len(by_tag) == len(ids)  # one distinct tag per session: no two ids collapsed into one
    assert all(len(slots) == 1 for slots in by_tag.values())  # each session's keys share one slot
    assert {i.id for i in mem.sessions(limit=100)} == set(ids)
    mem.close()


def test_default_ttl_is_seven_days_with_native_expiry(redis_url, raw, prefix):
    mem = Memory(redis_url, prefix=prefix)
    assert mem.ttl == 7 * 86400 == RedisStore.default_ttl
    before = time.time()
    mem.session("ttl").add("user", "x")
    info = mem.get_session("ttl")
    assert info.expires_at is not None
    assert before + 7 * 86400 - 5 < info.expires_at.timestamp() < time.time() + 7 * 86400 + 5
    session_keys = [k for k in _keys(raw, prefix) if ":ix:" not in k]
    assert session_keys
    for key in session_keys:  # Redis reclaims the memory itself: ttl + slack
        assert 7 * 86400 * 1000 < raw.pttl(key) <= (7 * 86400 + 3600) * 1000
    mem.session("ttl").clear()
    mem.session("ttl").add("user", "after clear")  # message keys are created anew: they get the expiry too
    mem.store.put_record(mem.namespace, "ttl", "summary", "1", {"s": 1})
    session_keys = [k for k in _keys(raw, prefix) if ":ix:" not in k]
    assert len(session_keys) == 5  # s, m, h, k, r:summary
    assert all(7 * 86400 * 1000 < raw.pttl(k) <= (7 * 86400 + 3600) * 1000 for k in session_keys)
    forever = Memory(redis_url, prefix=prefix, ttl=None)
    forever.session("ttl").add("user", "y")
    assert forever.get_session("ttl").expires_at is None
    assert all(raw.pttl(k) == -1 for k in _keys(raw, prefix) if ":ix:" not in k)
    assert Memory(f"{redis_url}?ttl=none&prefix={prefix}").ttl is None
    mem.close()
    forever.close()


def test_natively_expired_sessions_leave_no_orphans_in_listings(redis_url, raw, prefix):
    mem = Memory(redis_url, prefix=prefix)
    for sid in ("keep", "gone1", "gone2"):
        mem.session(sid).add("user", sid)
    for key in _keys(raw, prefix):
        if "gone" in key:
            raw.delete(key)  # what Redis's own expiry does to an abandoned session
    index = next(k for k in _keys(raw, prefix) if ":ix:" in k)
    assert raw.zcard(index) == 3
    assert [i.id for i in mem.sessions()] == ["keep"]
    assert raw.zcard(index) == 1  # dropped lazily by the listing
    assert mem.purge_expired() == 0
    mem.close()


def test_listing_and_purge_use_the_index_not_keys(redis_url, raw, prefix, clock):
    mem = Memory(redis_url, prefix=prefix, clock=clock, ttl=100)
    for i in range(30):
        clock.advance(1)
        mem.session(f"s{i:02d}", user_id="u" if i % 3 == 0 else None).add("user", "x")
    raw.config_resetstat()
    seen, cursor = [], None
    while True:
        page = mem.sessions(user_id="u", limit=4, cursor=cursor)
        seen += [i.id for i in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"s{i:02d}" for i in reversed(range(30)) if i % 3 == 0]
    stats = raw.info("commandstats")
    assert "cmdstat_keys" not in stats and "cmdstat_scan" not in stats
    clock.advance(1000)
    assert mem.purge_expired() == 30
    assert _keys(raw, prefix) == []  # sessions, records and index entries all gone
    mem.close()


def test_scripts_are_reloaded_after_script_flush(redis_url, raw, prefix):
    mem = Memory(redis_url, prefix=prefix)
    s = mem.session("flush")
    s.add("user", "before")
    raw.script_flush()
    s.extend([Message("user", "after1"), Message("user", "after2")])  # NOSCRIPT -> EVAL, cached again
    raw.script_flush()
    assert [m.text for m in s.messages(last=2)] == ["after1", "after2"]
    mem.close()


def test_foreign_data_under_the_prefix_is_reported_not_overwritten(redis_url, raw, prefix):
    key = f"{prefix}{{default\x1fx}}:s"
    raw.set(key, "someone else's string")
    mem = Memory(redis_url, prefix=prefix)
    with pytest.raises(CorruptData, match="prefix"):
        mem.session("x").add("user", "hi")
    assert raw.get(key) == b"someone else's string"
    mem.close()


def test_bad_prefix_is_refused(redis_url):
    with pytest.raises(InvalidURL):
        Memory(redis_url, prefix="app{1}:")


# -- failures -------------------------------------------------------------------------------------------------------


def _bounded(fn: Any, seconds: float = 30.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test if it has not finished after ``seconds`` (a hang), else its error."""
    result: dict[str, BaseException | None] = {"error": None}

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the call hung instead of failing"
    return result["error"]


def test_server_down_raises_backend_unavailable_with_masked_url(caplog):
    port = free_port()
    url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    with caplog.at_level(logging.DEBUG, logger="memvault"):
        mem = Memory(url, connect_timeout=0.5, socket_timeout=1)
        error = _bounded(lambda: mem.session("x").add("user", "hi"))
        assert isinstance(error, BackendUnavailable)
        text = str(error)
        assert f"127.0.0.1:{port}" in text and "***" in text
        assert isinstance(_bounded(mem.ping), BackendUnavailable)
        assert isinstance(_bounded(lambda: asyncio.run(mem.session("x").aadd("user", "hi"))), BackendUnavailable)
    for shown in (text, repr(mem), repr(mem.store), mem.store.url, repr(mem.store.aio), caplog.text):
        assert "hunter2-secret" not in shown
    mem.close()


def test_silent_server_fails_within_the_command_timeout():
    """A peer that accepts TCP connections but never answers: the command timeout turns a hang into an error."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads or writes
        port = silent.getsockname()[1]
        mem = Memory(f"redis://127.0.0.1:{port}/0", connect_timeout=0.3, socket_timeout=0.5)
        error = _bounded(lambda: mem.session("x").messages())
        assert isinstance(error, BackendUnavailable), error
        assert "Timeout" in str(error)
        mem.close()


def test_password_protected_server_and_wrong_password(tmp_path, caplog):
    server = RedisServer(tmp_path / "auth", password="s3cr3t-pw").start()
    try:
        with caplog.at_level(logging.DEBUG, logger="memvault"):
            good = Memory(server.url, prefix="auth:")
            good.session("a").add("user", "ok")
            assert [m.text for m in good.session("a").messages()] == ["ok"]
            assert "s3cr3t-pw" not in repr(good) + good.store.url
            bad = Memory(server.url.replace("s3cr3t-pw", "wrong-pw"), prefix="auth:")
            error = _bounded(lambda: bad.session("a").messages())
            assert isinstance(error, BackendUnavailable)
            assert "wrong-pw" not in str(error) and "***" in str(error)
            by_option = Memory(f"redis://127.0.0.1:{server.port}/0", password="s3cr3t-pw", prefix="auth:")
            assert by_option.session("a").count() == 1
            by_query = Memory(f"redis://127.0.0.1:{server.port}/0?password=s3cr3t-pw&prefix=auth:")
            assert by_query.session("a").count() == 1
            assert "s3cr3t-pw" not in by_query.store.url + repr(by_query.store)
            by_query.close()
        assert "s3cr3t-pw" not in caplog.text and "wrong-pw" not in caplog.text
        for m in (good, bad, by_option):
            m.close()
    finally:
        server.stop()


# -- existing clients, Cluster, Sentinel, TLS -----------------------------------------------------------------------


def test_existing_standalone_clients_sync_and_async(redis_url, prefix):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    mem = Memory(client, prefix=prefix)
    assert isinstance(mem.store, RedisStore) and mem.store.mode == "standalone"
    mem.session("c").add("user", "via a client with decode_responses=True")
    mem.close()
    assert client.ping()  # memvault does not close clients it did not create

    async def main() -> None:
        aclient = aredis.Redis.from_url(redis_url)
        amem = Memory(aclient, prefix=prefix)
        s = amem.session("c")
        await s.aadd("assistant", "via an asyncio client")
        assert [m.text for m in await s.amessages()] == ["via a client with decode_responses=True", "via an asyncio client"]
        assert [m.text for m in s.messages(last=1)] == ["via an asyncio client"]  # sync twin derived from it
        await amem.aclose()
        assert await aclient.ping()
        await aclient.aclose()

    asyncio.run(main())
    client.close()


def test_existing_cluster_clients(redis_cluster_nodes, prefix):
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster_nodes])
    mem = Memory(client, prefix=prefix)
    assert mem.store.mode == "cluster" and mem.store.url.startswith("redis+cluster://")
    for i in range(20):
        mem.session(f"user{{{i}}}").add("user", f"m{i}")
    assert len(mem.sessions(limit=100)) == 20
    stats = mem.store.stats()
    assert stats["mode"] == "cluster" and stats["sessions"] == 20 and stats["server_version"]

    async def main() -> None:
        s = mem.session("user{3}")
        await s.aadd("assistant", "async on the cluster")
        assert [m.text for m in await s.amessages()] == ["m3", "async on the cluster"]
        assert isinstance(mem.store.aio, RedisAsyncStore)
        await mem.aclose()

    asyncio.run(main())
    client.close()


def _start_sentinel(workdir: Path, master_port: int) -> tuple[subprocess.Popen[bytes], int]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\nsentinel down-after-milliseconds mymaster 5000\n"
    )
    proc = subprocess.Popen([_binary("redis-server"), str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            probe = redis.Redis(port=port, socket_timeout=1)
            if probe.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster"):
                probe.close()
                return proc, port
        except redis.RedisError:
            pass
        time.sleep(0.1)
    proc.terminate()
    pytest.fail("redis sentinel did not start", pytrace=False)


def test_sentinel_url_and_sentinel_managed_client(tmp_path, prefix):
    from redis.sentinel import Sentinel

    master = RedisServer(tmp_path / "master").start()
    sentinel, port = _start_sentinel(tmp_path / "sentinel", master.port)
    try:
        mem = Memory(f"redis+sentinel://127.0.0.1:{port}/mymaster/0", prefix=prefix)
        assert mem.store.mode == "sentinel"
        mem.session("s").add("user", "through sentinel")
        client = Sentinel([("127.0.0.1", port)], socket_timeout=2).master_for("mymaster")
        other = Memory(client, prefix=prefix)
        assert other.store.mode == "sentinel"
        assert [m.text for m in other.session("s").messages()] == ["through sentinel"]

        async def main() -> None:
            await other.session("s").aadd("assistant", "async through sentinel")

        asyncio.run(main())
        assert mem.session("s").count() == 2
        mem.close()
        other.close()
        client.close()
    finally:
        sentinel.terminate()
        sentinel.wait()
        master.stop()


def test_tls_rediss_url(tmp_path, prefix):
    import trustme

    d = tmp_path / "tls"
    d.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(d / "ca.crt"))
    cert.cert_chain_pems[0].write_to_path(str(d / "server.crt"))
    cert.private_key_pem.write_to_path(str(d / "server.key"))
    tls_port = free_port()
    server = RedisServer(d / "server", args=[
        "--tls-port", str(tls_port), "--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
        "--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "no",
    ]).start()
    try:
        mem = Memory(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={d / 'ca.crt'}", prefix=prefix)
        mem.session("tls").add("user", "encrypted in transit")
        assert [m.text for m in mem.session("tls").messages()] == ["encrypted in transit"]

        async def main() -> None:
            assert await mem.session("tls").acount() == 1

        asyncio.run(main())
        mem.close()
        plain = Memory(f"redis://127.0.0.1:{server.port}/0", prefix=prefix)  # the same data over plain TCP
        assert plain.session("tls").count() == 1
        plain.close()
    finally:
        server.stop()


# -- native async ---------------------------------------------------------------------------------------------------


def test_aio_is_native_and_survives_several_event_loops(redis_url, prefix):
    mem = Memory(redis_url, prefix=prefix)
    assert isinstance(mem.store.aio, RedisAsyncStore)
    assert not isinstance(mem.store.aio, ThreadedAsyncStore)

    async def burst(start: int) -> None:
        s = mem.session("aio")
        await asyncio.gather(*(s.aadd("user", f"m{start + i}") for i in range(50)))

    asyncio.run(burst(0))
    asyncio.run(burst(50))  # a second loop: the store builds a fresh async client for it
    messages = mem.session("aio").messages()
    assert len(messages) == 100 and len({m.id for m in messages}) == 100
    assert [m.seq for m in messages] == list(range(1, 101))
    assert sorted(m.text for m in messages) == sorted(f"m{i}" for i in range(100))
    mem.close()


def test_db_option_selects_the_database(redis_url, raw, prefix):
    mem = Memory(redis_url, prefix=prefix, db=5)
    mem.session("db").add("user", "in db 5")
    assert _keys(raw, prefix) == []  # nothing in the URL's db
    kwargs = {k: v for k, v in raw.connection_pool.connection_kwargs.items() if k in ("host", "port", "password", "username")}
    other = redis.Redis(**kwargs, db=5)
    assert [k for k in _keys(other, prefix) if ":ix:" in k]
    assert mem.purge_expired() == 0 and mem.delete_session("db")
    other.close()
    mem.close()


def test_ping_stats_and_url_options(redis_url, prefix):
    mem = Memory(f"{redis_url}?prefix={prefix}&pool_size=4&socket_timeout=2")
    assert mem.store.prefix == prefix
    mem.ping()
    mem.session("a").add("user", "x")
    stats = mem.store.stats()
    assert stats["backend"] == "redis" and stats["mode"] == "standalone"
    assert stats["sessions"] == 1 and stats["namespaces"] == 1
    assert stats["server_version"].startswith(("6.", "7.", "8."))
    mem.close()
