"""The codec layer's parts: key specs, the payload format, tampering, the escape of data that looks sealed."""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault.codecs import Codec, Keyring, describe, generate_key, is_sealed, key_id
from memvault.codecs.keys import as_key_provider, parse_key
from memvault.codecs.payload import MAGIC
from memvault.errors import (
    CodecUnavailable,
    CorruptData,
    EncryptionKeyMissing,
    InvalidEncryptionKey,
    WrongEncryptionKey,
)

KEY = bytes(range(32))


def test_key_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = base64.b64encode(KEY).decode()
    assert parse_key(KEY) == parse_key(text) == parse_key(KEY.hex()) == KEY
    assert parse_key(base64.urlsafe_b64encode(KEY).decode().rstrip("=")) == KEY
    monkeypatch.setenv("MV_TEST_KEY", text)
    assert parse_key("env:MV_TEST_KEY") == KEY
    (tmp_path / "key").write_text(text + "\n")
    assert parse_key(f"file:{tmp_path / 'key'}") == KEY
    assert len(parse_key(generate_key())) == 32
    for bad in (b"short", "not base64 !!", "", "env:MV_NOT_SET_ANYWHERE", f"file:{tmp_path / 'missing'}", 42,
                base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(InvalidEncryptionKey):
            parse_key(bad)
    with pytest.raises(InvalidEncryptionKey):
        Keyring([])
    with pytest.raises(InvalidEncryptionKey):
        Keyring([KEY], cipher="rot13")


def test_keyring_shows_ids_never_keys() -> None:
    other = os.urandom(32)
    ring = as_key_provider([KEY, other])
    assert isinstance(ring, Keyring) and ring.primary() == KEY and ring.get(key_id(other)) == other
    assert ring.key_ids == [key_id(KEY).hex(), key_id(other).hex()]
    assert KEY.hex() not in repr(ring) and base64.b64encode(KEY).decode() not in repr(ring)


@pytest.mark.parametrize("cipher", ["aes-256-gcm", "chacha20-poly1305"])
@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_seal_and_open(cipher: str, compression: str | None) -> None:
    codec = Codec(Keyring([KEY], cipher=cipher), compression, threshold=64)
    data = b"hello " * 100
    blob = codec.seal(data, b"ctx")
    assert is_sealed(blob) and data[:12] not in blob
    facts = describe(blob)
    assert facts == {"compression": compression, "cipher": cipher, "key_id": key_id(KEY).hex()}
    assert codec.open(blob, b"ctx") == data
    assert Codec(Keyring([os.urandom(32), KEY])).open(blob, b"ctx") == data  # any held key opens it
    assert codec.seal(data, b"ctx") != blob  # a fresh nonce each time
    small = codec.seal(b"tiny", b"ctx")  # under the threshold: encrypted, not compressed
    assert describe(small)["compression"] is None and codec.open(small, b"ctx") == b"tiny"


def test_tampering_moving_and_missing_keys_are_typed_errors() -> None:
    codec = Codec(Keyring([KEY]))
    blob = codec.seal(b"secret", b"here")
    with pytest.raises(CorruptData):
        codec.open(blob, b"elsewhere")
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    with pytest.raises(CorruptData):
        codec.open(bytes(flipped), b"here")
    with pytest.raises(CorruptData):
        codec.open(blob[:30], b"here")
    with pytest.raises(EncryptionKeyMissing):
        Codec().open(blob, b"here")
    with pytest.raises(WrongEncryptionKey):
        Codec(Keyring([os.urandom(32)])).open(blob, b"here")
    with pytest.raises(CorruptData):
        codec.open(MAGIC + bytes((9, 0)) + b"x", b"here")  # a codec version from the future
    with pytest.raises(CorruptData):
        codec.open(MAGIC + bytes((1, 0x0F)) + b"x", b"here")  # unknown flags


def test_plain_data_that_looks_sealed_is_escaped() -> None:
    codec = Codec(None, "gzip", threshold=1 << 20)
    looks_sealed = MAGIC + b"\x01\x00 user bytes"
    stored = codec.seal(looks_sealed, b"")
    assert stored != looks_sealed and codec.open(stored, b"") == looks_sealed
    assert codec.seal(b"ordinary", b"") == b"ordinary"  # everything else is stored as given
    assert Codec().open(b"ordinary", b"") == b"ordinary"


def test_incompressible_data_is_not_compressed() -> None:
    data = os.urandom(4096)
    assert Codec(None, "zstd", threshold=16).seal(data, b"") == data


def test_unknown_or_unavailable_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CodecUnavailable):
        Codec(None, "lz4")
    blob = Codec(None, "zstd", threshold=1).seal(b"z" * 1000, b"")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if the package were not installed
    with pytest.raises(CodecUnavailable):
        Codec(None, "zstd")
    with pytest.raises(CodecUnavailable):
        Codec().open(blob, b"")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"", b"ctx"]))
def test_any_stored_bytes_open_or_fail_typed(blob: bytes, context: bytes) -> None:
    """Whatever a damaged or hostile store hands back: the data, or a typed error - never a raw exception."""
    codec = Codec(Keyring([KEY]), "zstd")
    for candidate in (blob, MAGIC + blob, MAGIC + bytes((1,)) + blob, codec.seal(b"x" * 100, context)[:len(blob)]):
        with contextlib.suppress(CorruptData, WrongEncryptionKey, CodecUnavailable):  # anything else fails the test
            codec.open(candidate, context)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=64), st.integers(), st.none(),
                 st.lists(st.text(max_size=50), max_size=3)))
def test_any_key_spec_is_a_key_or_a_typed_error(spec: object) -> None:
    try:
        ring = as_key_provider(spec)
    except InvalidEncryptionKey:
        return
    assert len(ring.primary()) == 32


def test_a_key_provider_of_ones_own(tmp_path: Path) -> None:
    """A KMS-style provider: primary() and get(key_id); memvault never needs the raw key list."""
    from memvault import Memory

    class Kms:
        def __init__(self) -> None:
            self.keys = {key_id(KEY): KEY}
            self.asked: list[bytes] = []

        def primary(self) -> bytes:
            return KEY

        def get(self, kid: bytes) -> bytes | None:
            self.asked.append(kid)
            return self.keys.get(kid)

    kms = Kms()
    url = f"sqlite:///{tmp_path / 'kms.db'}"
    with Memory(url, encryption=kms, embedder="hash") as mem:
        mem.session("s").add("user", "via the provider")
    with Memory(url, encryption=kms, embedder="hash") as mem:
        assert [m.text for m in mem.session("s").messages()] == ["via the provider"]
    assert kms.asked and set(kms.asked) == {key_id(KEY)}
    assert b"via the provider" not in (tmp_path / "kms.db").read_bytes()
