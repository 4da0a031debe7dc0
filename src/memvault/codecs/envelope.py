"""Sealed message bodies: a message stored through a codec is an *envelope*, which backends store as any body.

The envelope, ``{"v": 1, "id": ..., "sealed": ...}``, keeps in clear only the message id (what a backend needs to
place a message and to make appends idempotent) and holds the whole original body, sealed, under ``"sealed"``. A
backend that decodes it (to fill columns) gets fixed stand-ins for role, time and content, so its own keyword index
(SQLite FTS5, a PostgreSQL tsvector, metadata columns) never sees the text and its role and time columns say
nothing; :class:`memvault.codecs.store.SealedStore` opens envelopes on its reads.

Decoding an envelope (``memvault.model.decode_body``): a compressed-only one is opened in place, anywhere (no key
is needed); an encrypted one is opened inside a SealedStore's reads, handed over raw inside its other calls
(:func:`raw_envelopes`), and raises EncryptionKeyMissing anywhere else - so a Memory without the key never mistakes
encrypted messages for empty ones, whichever path (a read, a native recall engine, another process) meets them.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from memvault.codecs.payload import PLAIN, Codec, describe, is_sealed
from memvault.errors import CorruptData, EncryptionKeyMissing

SEALED = "sealed"
#: the extras key under which a SealedStore receives an envelope's sealed body from the backend (``RAW``)
SEALED_EXTRA = "memvault.sealed"
#: how encrypted envelopes decode in this context: None (raise EncryptionKeyMissing), RAW (as envelope messages,
#: for writes and rekey) or an Opener (a SealedStore's reads)
RAW = "raw"
CACHED_BODY_MAX = 64 * 1024  # characters: bodies above it are opened on every read, never kept


class Opener:
    """Opens the encrypted envelopes of one session during a SealedStore read. ``cache`` (shared by the store's
    reads) maps (namespace, session, stored envelope) to the body it holds, so a message read again - the window
    of a chat turn - costs one dict lookup instead of a parse and a decryption; it keeps the newest ``limit``
    (oldest out first). The session is part of the key: an envelope copied elsewhere is opened (and refused)
    anew."""

    __slots__ = ("cache", "codec", "limit", "ns", "sid")

    def __init__(self, codec: Codec, ns: str, sid: str, cache: dict[str, tuple[str, str, str]], limit: int) -> None:
        self.codec, self.ns, self.sid, self.cache, self.limit = codec, ns, sid, cache, limit

    def cached(self, stored: str) -> str | None:
        hit = self.cache.get(stored)  # a dict read is atomic: no lock on the hot path
        return hit[2] if hit is not None and hit[0] == self.ns and hit[1] == self.sid else None

    def open(self, stored: str, token: bytes, message_id: str, where: str) -> str:
        body = self.codec.open(token, message_context(self.ns, self.sid, message_id),
                               where=where or f"{self.ns}/{self.sid}").decode("utf-8")
        remember(self.cache, stored, (self.ns, self.sid, body), self.limit)
        return body


def remember(cache: dict[str, tuple[str, str, str]], stored: str, opened: tuple[str, str, str], limit: int) -> None:
    """Keep ``opened`` (namespace, session, body) for the envelope ``stored``; the oldest entries leave first.
    Bodies above CACHED_BODY_MAX are not kept: the cache is for the many small turns of a chat."""
    if len(opened[2]) > CACHED_BODY_MAX:
        return
    cache[stored] = opened
    while len(cache) > limit:
        try:
            del cache[next(iter(cache))]
        except (KeyError, RuntimeError, StopIteration):  # another thread evicted or changed it meanwhile
            break


_mode: ContextVar[str | Opener | None] = ContextVar("memvault_envelopes", default=None)


def current_opener() -> Opener | None:
    mode = _mode.get()
    return mode if isinstance(mode, Opener) else None


@contextlib.contextmanager
def envelopes(mode: str | Opener) -> Iterator[None]:
    """Within this block (a SealedStore's call into its backend) encrypted envelopes decode as ``mode`` says.
    Context-local: other threads and tasks are not affected."""
    token = _mode.set(mode)
    try:
        yield
    finally:
        _mode.reset(token)


def raw_envelopes() -> contextlib.AbstractContextManager[None]:
    """Encrypted envelopes decode to envelope messages (their sealed body under ``extras[SEALED_EXTRA]``)."""
    return envelopes(RAW)


#: what an envelope decodes to, outside a SealedStore's reads: nothing of the message itself
STAND_INS = {"role": "user", "content": "", "created_at": "1970-01-01T00:00:00+00:00"}


def message_context(ns: str, sid: str, message_id: str) -> bytes:
    return b"msg\x00" + ns.encode("utf-8", "surrogatepass") + b"\x00" + sid.encode("utf-8", "surrogatepass") + \
        b"\x00" + message_id.encode("utf-8", "surrogatepass")


def seal_body(codec: Codec, body: str, ns: str, sid: str, message_id: str) -> str:
    """The stored form of a canonical message ``body``: the body itself when the codec leaves it as it is."""
    raw = body.encode("utf-8")
    sealed = codec.seal(raw, message_context(ns, sid, message_id))
    if sealed is raw:
        return body
    # built as text (no parse of the body): only the id is in clear; role, time and content are inside the
    # sealed body, and a backend that decodes the envelope (to fill columns) gets fixed stand-ins for them
    return (f'{{"v":1,"id":{json.dumps(message_id, ensure_ascii=False)},'
            f'"{SEALED}":"{base64.b64encode(sealed).decode("ascii")}"}}')


def token_of(data: dict[str, Any], where: str) -> bytes:
    try:
        return base64.b64decode(data[SEALED], validate=True)
    except (TypeError, ValueError):
        raise CorruptData(f"sealed message{' in ' + where if where else ''} has a malformed payload") from None


def unseal_in_place(data: dict[str, Any], where: str, stored: str) -> dict[str, Any]:
    """``decode_body``'s step for an envelope: the original body of a compressed-only one, or of an encrypted one
    inside a SealedStore's read; the envelope, marked, inside its writes; EncryptionKeyMissing anywhere else."""
    token = token_of(data, where)
    encrypted = is_sealed(token) and token[5] >> 4
    mode = _mode.get()
    if not encrypted:
        opened = json.loads(PLAIN.open(token, b"", where=where))
    elif mode is None:
        raise EncryptionKeyMissing(
            f"message {data.get('id')!r}{' in ' + where if where else ''} is stored encrypted (key id "
            f"{describe(token)['key_id']}); open Memory with encryption=<key>")
    elif mode == RAW:
        envelope = {**data, **STAND_INS, "extras": {SEALED_EXTRA: token}}
        del envelope[SEALED]
        return envelope
    else:
        opened = json.loads(mode.open(stored, token, str(data.get("id")), where))  # type: ignore[union-attr]
    if not isinstance(opened, dict) or SEALED in opened or opened.get("id") != data.get("id"):
        raise CorruptData(f"sealed message{' in ' + where if where else ''} does not hold that message")
    return opened
