"""Sealed message bodies: a message stored through a codec is an *envelope*, itself a valid message encoding.

The envelope keeps in clear only what a backend needs to place a message (id, role, created_at) and holds the
whole original body, sealed, under ``"sealed"``; its content is empty, so a backend's own keyword index (SQLite
FTS5, a PostgreSQL tsvector, metadata columns) never sees the text. Backends store and return envelopes like any
message; :class:`memvault.codecs.store.SealedStore` opens them.

Decoding an envelope (``memvault.model.decode_body``): a compressed-only one is opened in place, anywhere (no key
is needed); an encrypted one is handed back as is only inside a SealedStore call (:data:`raw_envelopes`), and
raises EncryptionKeyMissing anywhere else - so a Memory without the key never mistakes encrypted messages for
empty ones, whichever path (a read, a native recall engine, another process) meets them.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from memvault.codecs.payload import PLAIN, Codec, describe
from memvault.errors import CorruptData, EncryptionKeyMissing

SEALED = "sealed"
#: the extras key under which a SealedStore receives an envelope's sealed body from the backend
SEALED_EXTRA = "memvault.sealed"
_raw: ContextVar[bool] = ContextVar("memvault_raw_envelopes", default=False)


@contextlib.contextmanager
def raw_envelopes() -> Iterator[None]:
    """Within this block (a SealedStore's call into its backend), encrypted envelopes decode to envelope messages
    instead of raising. Context-local: other threads and tasks are not affected."""
    token = _raw.set(True)
    try:
        yield
    finally:
        _raw.reset(token)


def message_context(ns: str, sid: str, message_id: str) -> bytes:
    return b"msg\x00" + ns.encode("utf-8", "surrogatepass") + b"\x00" + sid.encode("utf-8", "surrogatepass") + \
        b"\x00" + message_id.encode("utf-8", "surrogatepass")


def seal_body(codec: Codec, body: str, ns: str, sid: str, message_id: str) -> str:
    """The stored form of a canonical message ``body``: the body itself when the codec leaves it as it is."""
    raw = body.encode("utf-8")
    sealed = codec.seal(raw, message_context(ns, sid, message_id))
    if sealed is raw:
        return body
    data = json.loads(body)
    envelope = {"v": data.get("v", 1), "id": data["id"], "role": data["role"], "content": "",
                "created_at": data["created_at"], SEALED: base64.b64encode(sealed).decode("ascii")}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def token_of(data: dict[str, Any], where: str) -> bytes:
    try:
        return base64.b64decode(data[SEALED], validate=True)
    except (TypeError, ValueError):
        raise CorruptData(f"sealed message{' in ' + where if where else ''} has a malformed payload") from None


def unseal_in_place(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``decode_body``'s step for an envelope: the original body of a compressed-only one; the envelope, marked for
    the SealedStore, of an encrypted one inside a SealedStore call; EncryptionKeyMissing otherwise."""
    token = token_of(data, where)
    if describe(token)["cipher"] is None:
        opened = json.loads(PLAIN.open(token, b"", where=where))
        if not isinstance(opened, dict) or SEALED in opened:
            raise CorruptData(f"sealed message{' in ' + where if where else ''} does not hold a message")
        return opened
    if not _raw.get():
        raise EncryptionKeyMissing(
            f"message {data.get('id')!r}{' in ' + where if where else ''} is stored encrypted (key id "
            f"{describe(token)['key_id']}); open Memory with encryption=<key>")
    envelope = dict(data)
    del envelope[SEALED]
    envelope["extras"] = {SEALED_EXTRA: token}
    return envelope
