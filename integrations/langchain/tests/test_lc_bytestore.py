"""``MemvaultByteStore`` on every backend: typed errors that change nothing, atomic ``mset``, isolation between
tenants and store names, sync/async on one storage, and the constructors. (LangChain's standard ByteStore suites
run on every backend in ``integrations/langgraph/tests/test_bytestore.py``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_memvault import MemvaultByteStore

from memvault import Memory
from memvault.errors import InvalidFilter, InvalidMessage, InvalidSessionId, MemvaultError
from tests.backends import MemoryFactory


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.mset([("good", b"1"), ("bad", "not bytes")]), InvalidMessage),
        (lambda s: s.mset([("good", b"1"), ("nul\x00", b"x")]), InvalidSessionId),
        (lambda s: s.mset([("good", b"1"), (3, b"x")]), InvalidSessionId),
        (lambda s: s.mset([("good", b"1"), ("x" * 2000, b"x")]), InvalidSessionId),
        (lambda s: s.mset([("good", b"1"), ("only-a-key",)]), InvalidFilter),
        (lambda s: s.mget("abc"), InvalidFilter),
        (lambda s: s.mdelete([None]), InvalidSessionId),
        (lambda s: list(s.yield_keys(prefix=5)), InvalidSessionId),
    ],
)
def test_bad_arguments_raise_typed_errors_and_change_nothing(lc_memory: Memory, call: Any, error: type) -> None:
    store = MemvaultByteStore(memory=lc_memory)
    store.mset([("kept", b"0")])
    with pytest.raises(error) as raised:
        call(store)
    assert isinstance(raised.value, MemvaultError)
    assert sorted(store.yield_keys()) == ["kept"] and store.mget(["kept", "good"]) == [b"0", None]


def test_tenants_and_names_are_isolated(make_lc_memory: MemoryFactory) -> None:
    default, acme = make_lc_memory(), make_lc_memory(namespace="acme")
    a, b, c = MemvaultByteStore(memory=default), MemvaultByteStore(memory=acme), MemvaultByteStore(memory=default,
                                                                                                    name="cache")
    a.mset([("k", b"default")])
    assert b.mget(["k"]) == [None] and c.mget(["k"]) == [None]
    assert list(b.yield_keys()) == [] and list(c.yield_keys()) == []
    b.mset([("k", b"acme")])
    assert a.mget(["k"]) == [b"default"] and b.mget(["k"]) == [b"acme"]
    assert default.sessions().items == [] and acme.sessions().items == []  # kept in a reserved namespace


async def test_async_and_sync_share_one_storage(make_lc_memory: MemoryFactory) -> None:
    store = MemvaultByteStore(memory=make_lc_memory())
    await store.amset([(f"k{i:03d}", bytes([i])) for i in range(250)])
    assert store.mget(["k000", "k249"]) == [b"\x00", b"\xf9"]
    store.mdelete([f"k{i:03d}" for i in range(0, 250, 2)])
    assert len([k async for k in store.ayield_keys(prefix="k")]) == 125
    assert await store.amget(["k000", "k001"]) == [None, b"\x01"]
    await store.amdelete(["k001", "missing"])
    assert store.mget(["k001"]) == [None]


def test_constructors(memvault_home: Path, tmp_path: Path) -> None:
    with MemvaultByteStore() as default:  # the embedded default SQLite under MEMVAULT_HOME
        default.mset([("k", b"v")])
        assert "sqlite" in default.memory.store.url
    url = f"sqlite:///{tmp_path / 'b.db'}"
    with MemvaultByteStore(url=url, synchronous="full") as private:  # options: a private Memory, closed on exit
        private.mset([("k", b"private")])
    assert private.memory.closed
    with MemvaultByteStore(url=url) as shared:
        assert shared.mget(["k"]) == [b"private"]
    assert not shared.memory.closed  # the process-wide shared Memory stays open for other adapters
