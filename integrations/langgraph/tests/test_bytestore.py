"""LangChain ``ByteStore`` contract on every BYTESTORES entry: langchain-tests' standard sync and async suites, plus
binary-safety, key, ordering and persistence checks of our own."""

from __future__ import annotations

import pytest
from langchain_core.stores import ByteStore
from langchain_tests.integration_tests import BaseStoreAsyncTests, BaseStoreSyncTests
from lg_harness import ByteStoreFactory, Worker


class TestByteStoreStandardSync(BaseStoreSyncTests[bytes]):
    @pytest.fixture
    def kv_store(self, bytestore_factory: ByteStoreFactory) -> ByteStore:
        return bytestore_factory()

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"foo", b"bar", b"buzz"


class TestByteStoreStandardAsync(BaseStoreAsyncTests[bytes]):
    @pytest.fixture
    async def kv_store(self, bytestore_factory: ByteStoreFactory) -> ByteStore:
        return bytestore_factory()

    @pytest.fixture
    def three_values(self) -> tuple[bytes, bytes, bytes]:
        return b"foo", b"bar", b"buzz"


def test_values_are_binary_safe(bytestore_factory: ByteStoreFactory) -> None:
    store = bytestore_factory()
    values = {
        "nul": b"\x00" * 10,
        "all": bytes(range(256)),
        "empty": b"",
        "big": b"\xff\x00abc" * 250_000,  # 1.25 MB
        "utf8": "ünïcødé 😀".encode(),
    }
    store.mset(list(values.items()))
    assert store.mget(list(values)) == list(values.values())


def test_mget_keeps_order_and_reports_missing(bytestore_factory: ByteStoreFactory) -> None:
    store = bytestore_factory()
    store.mset([("b", b"2"), ("a", b"1")])
    assert store.mget(["missing", "a", "b", "a", "other"]) == [None, b"1", b"2", b"1", None]
    assert store.mget([]) == []


def test_keys_are_exact_strings(bytestore_factory: ByteStoreFactory) -> None:
    store = bytestore_factory()
    odd = ["a/b/c", "a b", "it's", "ключ", "50%_*?[x]", "Foo", "foo", "x\ny", "a" * 300]
    store.mset([(k, k.encode()) for k in odd])
    assert store.mget(odd) == [k.encode() for k in odd]
    assert sorted(store.yield_keys()) == sorted(odd)
    assert set(store.yield_keys(prefix="a")) == {"a/b/c", "a b", "a" * 300}
    assert list(store.yield_keys(prefix="50%_")) == ["50%_*?[x]"]  # prefix metacharacters are literal
    assert list(store.yield_keys(prefix="F")) == ["Foo"]  # case-sensitive


def test_yield_keys_prefix_over_many_keys(bytestore_factory: ByteStoreFactory) -> None:
    store = bytestore_factory()
    store.mset([(f"user:{i:04d}", b"u") for i in range(600)] + [(f"doc:{i:04d}", b"d") for i in range(400)])
    assert sum(1 for _ in store.yield_keys()) == 1000
    assert sorted(store.yield_keys(prefix="user:")) == [f"user:{i:04d}" for i in range(600)]
    assert sorted(store.yield_keys(prefix="user:01")) == [f"user:{i:04d}" for i in range(100, 200)]
    store.mdelete([f"user:{i:04d}" for i in range(0, 600, 2)])
    assert len(list(store.yield_keys(prefix="user:"))) == 300


def test_last_write_of_a_key_in_one_mset_wins(bytestore_factory: ByteStoreFactory) -> None:
    store = bytestore_factory()
    store.mset([("k", b"1"), ("k", b"2"), ("j", b"x")])
    assert store.mget(["k", "j"]) == [b"2", b"x"]


async def test_async_methods_see_sync_writes(bytestore_factory: ByteStoreFactory) -> None:
    store = bytestore_factory()
    store.mset([("s", b"sync")])
    await store.amset([("a", b"async")])
    assert await store.amget(["s", "a"]) == [b"sync", b"async"]
    assert store.mget(["a"]) == [b"async"]
    assert sorted([k async for k in store.ayield_keys()]) == ["a", "s"]
    await store.amdelete(["s"])
    assert store.mget(["s"]) == [None]


@pytest.mark.requires("persistent")
def test_second_instance_sees_writes(bytestore_factory: ByteStoreFactory) -> None:
    with bytestore_factory.open() as first:
        first.mset([("k1", b"\x00one"), ("k2", b"two")])
        first.mdelete(["k2"])
    with bytestore_factory.open() as second:
        assert second.mget(["k1", "k2"]) == [b"\x00one", None]
        assert list(second.yield_keys()) == ["k1"]
    with bytestore_factory.fresh().open() as other:
        assert list(other.yield_keys()) == []


@pytest.mark.requires("cross_process")
def test_another_process_sees_writes(bytestore_factory: ByteStoreFactory, workers: list[Worker]) -> None:
    store = bytestore_factory()
    store.mset([("k", b"\x00\xffdata")])
    got = workers[0].call(
        "bytestore_mget", bytestore=bytestore_factory.name, location=bytestore_factory.location, keys=["k", "none"]
    )
    assert got == [b"\x00\xffdata".hex(), None]
