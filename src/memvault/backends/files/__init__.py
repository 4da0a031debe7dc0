"""``file:///dir`` — one append-only JSON Lines file per session; see :mod:`.store`.

Modules: :mod:`.store` (the store and its operations), :mod:`.format` (names, lines, ``meta.jsonl``), :mod:`.io`
(reads and writes of the files), :mod:`.locking` (session locks; the read and write runners), :mod:`.index` (the
id index), :mod:`.entries` (the entries log).
"""

from memvault.backends.files.format import encode_name
from memvault.backends.files.store import FileStore

__all__ = ["FileStore", "encode_name"]
