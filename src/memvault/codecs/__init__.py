"""Encryption and compression at rest: one serialization layer over every backend.

``Memory(url, encryption=key)`` and ``Memory(url, compression="zstd")`` wrap the backend in
:class:`memvault.codecs.store.SealedStore`, which seals message bodies, records (summaries, state, vectors) and
entries (checkpoints, documents, state versions, artifact chunks) with :class:`~memvault.codecs.payload.Codec`
before the backend sees them, and opens them on the way back. See docs/encryption.md.
"""

from memvault.codecs.keys import KeyProvider, Keyring, generate_key, key_id
from memvault.codecs.payload import Codec, describe, is_sealed

__all__ = ["Codec", "KeyProvider", "Keyring", "describe", "generate_key", "is_sealed", "key_id"]
