"""Encryption keys: what ``Memory(url, encryption=...)`` accepts, and the key ids stored with each payload.

A key is 32 random bytes (:func:`generate_key` makes one, as base64). ``encryption=`` takes a key, a list of keys
(the first encrypts, every one decrypts: that is how keys rotate) or a :class:`KeyProvider` (a KMS or vault client
of your own). A key given as text is base64 or hex, or ``env:NAME`` (read from an environment variable) or
``file:PATH`` (the file's first line). Each payload carries the key id of the key that sealed it: 8 bytes derived
from the key (HMAC-SHA256), which name the key without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from memvault.errors import InvalidEncryptionKey

KEY_BYTES = 32
KEY_ID_BYTES = 8
CIPHERS = ("aes-256-gcm", "chacha20-poly1305")


def generate_key() -> str:
    """A new random 256-bit key, as base64 text (keep it somewhere safe: without it the data is gone)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> bytes:
    """The id stored with payloads sealed by ``key``."""
    return hmac.new(key, b"memvault key id", hashlib.sha256).digest()[:KEY_ID_BYTES]


@runtime_checkable
class KeyProvider(Protocol):
    """Where keys come from: ``primary()`` seals new payloads, ``get(key_id)`` opens old ones (None: unknown)."""

    def primary(self) -> bytes: ...

    def get(self, key_id: bytes) -> bytes | None: ...


class Keyring:
    """A fixed set of keys: the first seals, all of them open. ``cipher`` is the AEAD new payloads use
    (``"aes-256-gcm"``, the default, or ``"chacha20-poly1305"``); payloads of either cipher are always readable."""

    def __init__(self, keys: Sequence[bytes], *, cipher: str = "aes-256-gcm") -> None:
        if not keys:
            raise InvalidEncryptionKey("a keyring needs at least one key")
        if cipher not in CIPHERS:
            raise InvalidEncryptionKey(f"cipher must be one of {list(CIPHERS)}, got {cipher!r}")
        self.cipher = cipher
        self._keys = {key_id(k): k for k in reversed(keys)}
        self._primary = keys[0]

    def primary(self) -> bytes:
        return self._primary

    def get(self, key_id: bytes) -> bytes | None:
        return self._keys.get(key_id)

    @property
    def key_ids(self) -> list[str]:
        """The ids of the keys held (hex), the primary first."""
        primary = key_id(self._primary)
        return [primary.hex()] + [k.hex() for k in self._keys if k != primary]

    def __repr__(self) -> str:  # never the keys themselves
        return f"Keyring(key_ids={self.key_ids}, cipher={self.cipher!r})"


def parse_key(spec: Any) -> bytes:
    """One key from bytes, base64 or hex text, ``env:NAME`` or ``file:PATH``."""
    if isinstance(spec, (bytes, bytearray, memoryview)):
        raw = bytes(spec)
        if len(raw) != KEY_BYTES:
            raise InvalidEncryptionKey(f"an encryption key is {KEY_BYTES} bytes, got {len(raw)}")
        return raw
    if not isinstance(spec, str):
        raise InvalidEncryptionKey(f"an encryption key is bytes or text, got {type(spec).__name__}")
    text = spec.strip()
    if text.startswith("env:"):
        name = text[4:]
        value = os.environ.get(name)
        if not value:
            raise InvalidEncryptionKey(f"environment variable {name!r} (named by the encryption key) is not set")
        return parse_key(value)
    if text.startswith("file:"):
        path = Path(text[5:]).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidEncryptionKey(f"cannot read the encryption key file {str(path)!r}: {exc}") from None
        return parse_key(lines[0] if lines else "")
    if len(text) == 2 * KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEncryptionKey("an encryption key given as text is base64 or hex of 32 bytes "
                                   "(memvault.generate_key() makes one), env:NAME or file:PATH") from None
    return parse_key(raw)


def as_key_provider(spec: Any, *, cipher: str | None = None) -> KeyProvider:
    """A key provider from what ``encryption=`` was given (see the module docstring)."""
    if isinstance(spec, Keyring):
        return spec if cipher is None or cipher == spec.cipher else Keyring(_keys_of(spec), cipher=cipher)
    if not isinstance(spec, (str, bytes, bytearray, memoryview)) and isinstance(spec, KeyProvider):
        return spec
    if isinstance(spec, (list, tuple)):
        return Keyring([parse_key(k) for k in spec], cipher=cipher or "aes-256-gcm")
    return Keyring([parse_key(spec)], cipher=cipher or "aes-256-gcm")


def _keys_of(ring: Keyring) -> list[bytes]:
    primary = ring.primary()
    return [primary] + [k for k in ring._keys.values() if k != primary]


def cipher_of(provider: KeyProvider) -> str:
    return getattr(provider, "cipher", "aes-256-gcm")
