"""The one serialization layer for payloads at rest: compression, then AEAD encryption, stacked, tagged per payload.

A sealed payload is ``MAGIC | version | flags | [key id | nonce] | data``. ``flags`` names the compression (low
nibble: none, zstd, gzip) and the cipher (high nibble: none, AES-256-GCM, ChaCha20-Poly1305) of this payload, so
payloads written with different settings, keys or codecs are read side by side, and an untagged payload (written
before any codec was on) is read as it is. The AEAD's associated data is the header plus a *context* naming where
the payload belongs (namespace, session, kind and key, or message id), so a ciphertext moved to another place or
another tenant does not open.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Any

from memvault.codecs.keys import CIPHERS, KEY_ID_BYTES, KeyProvider, cipher_of, key_id
from memvault.errors import (
    CodecUnavailable,
    CorruptData,
    EncryptionKeyMissing,
    InvalidEncryptionKey,
    WrongEncryptionKey,
)

MAGIC = b"\x00MVC"
VERSION = 1
_COMPRESSIONS = {None: 0, "zstd": 1, "gzip": 2}
_COMPRESSION_NAMES = {v: k for k, v in _COMPRESSIONS.items()}
_CIPHERS = {None: 0, "aes-256-gcm": 1, "chacha20-poly1305": 2}
_CIPHER_NAMES = {v: k for k, v in _CIPHERS.items()}
NONCE_BYTES = 12
DEFAULT_THRESHOLD = 1024
_HEAD = len(MAGIC) + 2


def is_sealed(blob: bytes) -> bool:
    """True when ``blob`` carries a codec header."""
    return blob[:4] == MAGIC and len(blob) >= _HEAD


def describe(blob: bytes) -> dict[str, Any]:
    """What a payload's header says: compression, cipher, key id (hex) - for rekey and ``doctor``."""
    if not is_sealed(blob):
        return {"compression": None, "cipher": None, "key_id": None}
    flags = blob[5]
    cipher = _CIPHER_NAMES.get(flags >> 4, "?")
    kid = blob[_HEAD:_HEAD + KEY_ID_BYTES].hex() if cipher else None
    return {"compression": _COMPRESSION_NAMES.get(flags & 0x0F, "?"), "cipher": cipher, "key_id": kid}


def check_compression(name: Any) -> str | None:
    if name is not None and name not in _COMPRESSIONS:
        raise CodecUnavailable(f"compression must be one of 'zstd', 'gzip' or None, got {name!r}")
    if name == "zstd":
        _zstd()
    return name


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise CodecUnavailable("zstd compression needs the zstandard package: pip install 'memvault[zstd]'") from None
    return zstandard


def _aead(cipher: str, key: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    except ImportError:
        raise CodecUnavailable("encryption needs the cryptography package: pip install 'memvault[encryption]'") from None
    return AESGCM(key) if cipher == "aes-256-gcm" else ChaCha20Poly1305(key)


class Codec:
    """Seals and opens payloads. ``keys`` (a KeyProvider, None: no encryption) and ``compression`` ("zstd", "gzip",
    None) apply to what this codec writes, compression only to payloads of at least ``threshold`` bytes; any
    payload is opened whatever it was written with, as long as its key is held."""

    def __init__(self, keys: KeyProvider | None = None, compression: str | None = None,
                 threshold: int = DEFAULT_THRESHOLD) -> None:
        self.keys = keys
        self.compression = check_compression(compression)
        self.threshold = threshold
        self.cipher = cipher_of(keys) if keys is not None else None
        if self.cipher is not None and self.cipher not in _CIPHERS:
            raise InvalidEncryptionKey(f"the key provider's cipher must be one of {list(CIPHERS)}, got {self.cipher!r}")
        self._aeads: dict[tuple[bytes, str], Any] = {}
        self._ids: dict[bytes, bytes] = {}
        if keys is not None:
            self._aead_for(keys.primary(), self.cipher or "aes-256-gcm")  # CodecUnavailable now, not at a write

    @property
    def encrypts(self) -> bool:
        return self.keys is not None

    @property
    def writes(self) -> bool:
        """True when this codec changes what it writes (otherwise payloads are stored as given)."""
        return self.keys is not None or self.compression is not None

    def _aead_for(self, key: bytes, cipher: str) -> Any:
        aead = self._aeads.get((key, cipher))
        if aead is None:
            aead = self._aeads[(key, cipher)] = _aead(cipher, key)
        return aead

    def _id_of(self, key: bytes) -> bytes:
        kid = self._ids.get(key)
        if kid is None:
            kid = self._ids[key] = key_id(key)
        return kid

    # -- sealing ---------------------------------------------------------------------------------------------------
    def seal(self, data: bytes, context: bytes, *, header: bool = False) -> bytes:
        """``data`` as stored: compressed when large enough (and smaller for it), then encrypted. With neither, the
        data itself - escaped behind a plain header only when it happens to begin with the codec's magic."""
        compression = 0
        if self.compression is not None and len(data) >= self.threshold:
            packed = _compress(self.compression, data)
            if len(packed) < len(data):
                data, compression = packed, _COMPRESSIONS[self.compression]
        if self.keys is None:
            if compression == 0 and not header and not data.startswith(MAGIC):
                return data
            return MAGIC + bytes((VERSION, compression)) + data
        key = self.keys.primary()
        cipher = self.cipher or "aes-256-gcm"
        head = MAGIC + bytes((VERSION, compression | (_CIPHERS[cipher] << 4))) + self._id_of(key)
        nonce = os.urandom(NONCE_BYTES)
        return head + nonce + self._aead_for(key, cipher).encrypt(nonce, data, head + b"\x00" + context)

    def open(self, blob: bytes, context: bytes, *, where: str = "") -> bytes:
        """The data ``blob`` was sealed from. EncryptionKeyMissing / WrongEncryptionKey when its key is not held,
        CorruptData when it does not authenticate (changed, or moved from another place)."""
        if not is_sealed(blob):
            return blob
        version, flags = blob[4], blob[5]
        shown = f" ({where})" if where else ""
        if version != VERSION:
            raise CorruptData(f"payload{shown} has codec version {version}; this memvault reads {VERSION}")
        compression, cipher = flags & 0x0F, flags >> 4
        if compression not in _COMPRESSION_NAMES or cipher not in _CIPHER_NAMES:
            raise CorruptData(f"payload{shown} has unknown codec flags {flags:#04x}")
        data = blob[_HEAD:]
        if cipher:
            kid = data[:KEY_ID_BYTES]
            if self.keys is None:
                raise EncryptionKeyMissing(
                    f"stored data{shown} is encrypted (key id {kid.hex()}); open Memory with encryption=<key>")
            key = self.keys.get(kid)
            if key is None:
                raise WrongEncryptionKey(
                    f"stored data{shown} was encrypted with key id {kid.hex()}, which this Memory's keys do not "
                    "include; pass that key too (encryption=[new_key, old_key])")
            nonce = data[KEY_ID_BYTES:KEY_ID_BYTES + NONCE_BYTES]
            head = blob[:_HEAD + KEY_ID_BYTES]
            try:
                data = self._aead_for(key, _CIPHER_NAMES[cipher] or "").decrypt(
                    nonce, data[KEY_ID_BYTES + NONCE_BYTES:], head + b"\x00" + context)
            except Exception as exc:  # cryptography's InvalidTag, or a truncated payload
                raise CorruptData(f"encrypted data{shown} does not authenticate: it was changed, truncated or moved "
                                  f"from elsewhere ({type(exc).__name__})") from None
        if compression:
            try:
                data = _decompress(_COMPRESSION_NAMES[compression] or "", data)
            except CodecUnavailable:
                raise
            except Exception as exc:
                raise CorruptData(f"compressed data{shown} does not decompress: {exc}") from None
        return data

    def needs_rekey(self, blob: bytes) -> bool:
        """True when ``blob`` is not sealed the way this codec writes now (another key, no encryption)."""
        if self.keys is None:
            return False
        if not is_sealed(blob) or not blob[5] >> 4:
            return True
        return blob[_HEAD:_HEAD + KEY_ID_BYTES] != self._id_of(self.keys.primary())


def _compress(name: str, data: bytes) -> bytes:
    if name == "zstd":
        return bytes(_zstd().ZstdCompressor(level=3).compress(data))
    return gzip.compress(data, compresslevel=6, mtime=0)


def _decompress(name: str, data: bytes) -> bytes:
    if name == "zstd":
        return bytes(_zstd().ZstdDecompressor().decompress(data))
    if data[:2] != b"\x1f\x8b":
        raise zlib.error("not a gzip stream")
    return gzip.decompress(data)


PLAIN = Codec()
