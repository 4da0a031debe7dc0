"""The Lua scripts (``scripts/*.lua``) and the helpers they include (``scripts/lib/*.lua``).

A script includes only the helpers it calls (directly or through another helper): each local function costs a
closure per run (~1.5 us). Scripts are run by SHA (EVALSHA) and sent whole only on NOSCRIPT (:mod:`.drive`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

_SCRIPTS = resources.files("memvault.backends.redis") / "scripts"
HELPERS: dict[str, str] = {
    name: (_SCRIPTS / "lib" / f"{name}.lua").read_text(encoding="utf-8").rstrip()
    for name in ("base_of", "num", "state", "chunked", "wipe", "info", "touch")  # definition order
}


@dataclass(frozen=True)
class Script:
    """One Lua script: its name, full source (with the helpers it needs) and SHA1."""

    name: str
    source: str
    sha: str

    @classmethod
    def of(cls, name: str, body: str) -> Script:
        wanted: set[str] = set()
        text = body
        while True:  # helpers that the body (or another wanted helper) calls, in HELPERS order
            more = {fn for fn in HELPERS if fn not in wanted and re.search(rf"\b{fn}\(", text)}
            if not more:
                break
            wanted |= more
            text = body + "".join(HELPERS[fn] for fn in wanted)
        source = "\n".join([*(src for fn, src in HELPERS.items() if fn in wanted), body])
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    @classmethod
    def load(cls, name: str) -> Script:
        return cls.of(name, (_SCRIPTS / f"{name}.lua").read_text(encoding="utf-8"))


APPEND = Script.load("append")
INFO = Script.load("info")
READ = Script.load("read")
GET = Script.load("get")
DELETE_MESSAGES = Script.load("delete_messages")
REWRITE = Script.load("rewrite")
POP = Script.load("pop")
CLEAR = Script.load("clear")
DELETE_SESSION = Script.load("delete_session")
PURGE_ONE = Script.load("purge_one")
PUT_RECORD = Script.load("put_record")
GET_RECORDS = Script.load("get_records")
DELETE_RECORDS = Script.load("delete_records")
INDEX_PAGE = Script.load("index_page")
INDEX_DROP = Script.load("index_drop")
GET_ENTRIES = Script.load("get_entries")
SCAN_ENTRIES = Script.load("scan_entries")
DELETE_ENTRIES = Script.load("delete_entries")
UPDATE_METADATA = Script.load("update_metadata")
