"""Tenant isolation on every backend: a Memory of namespace A must never read or change namespace B's data.

Namespace B (``VICTIM``) is seeded once per backend: sessions with user ids, metadata and messages, a compressed
session with stored summaries, document collections (plain, written by the LangChain vector store and by the
LlamaIndex vector store), all carrying the marker ``SECRET``. Then, from a Memory opened with
``namespace=<attacker>``, every public path is tried against B: listing (filters on B's users and metadata,
cursors taken from B's listing and built by hand), direct reads by B's ids, writes by B's ids, recall at every
scope, collections of the same name, export / import, ``context()``, the ``memvault`` CLI, and the LangChain and
LlamaIndex adapters. The attacker names include names that look like the stores' internal names: collections of
B live in the namespace ``"B#collections"`` today, so ``Memory(namespace="B#collections")`` is expected to be
refused or isolated; plus case, whitespace, zero-width, escaping and path-encoding tricks aimed at how the backends
build Redis keys / hash tags, file names and SQL rows.

The core paths are attacked from every name in ``ATTACKERS``; the CLI and the adapters (which pass the namespace
through to the same core) from the smaller ``FEW``. Every breach is a failure naming the backend, the attacker
namespace, the path and what was seen or changed. B is snapshotted and compared at the end of every test (and
re-seeded after a breach that changed it). The number of breaches (expected: 0) is printed in pytest's terminal
summary.

An attacker namespace that the library refuses (InvalidSessionId at ``Memory(namespace=...)``) is isolated by
definition: its tests pass.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from memvault import Memory, Message
from memvault.compression import CompressionPolicy
from memvault.errors import InvalidCursor, MemvaultError, SessionNotFound
from tests.backends import BACKENDS
from tests.conftest import FakeClock

VICTIM = "acme"
SECRET = "zqxjvictimsecret"  # one rare token: keyword search finds it, the hash embedder matches it
EMBEDDER = "hash"  # the CLI's --embedder hash: the same vectors from the CLI as from the API
B_USERS = ["u-acme", "u-acme-2"]
B_SESSIONS = {
    "b-only-1": {"user_id": "u-acme", "metadata": {"tenant": "acme", "secret": SECRET, "tier": 1}},
    "b-only-2": {"user_id": "u-acme-2", "metadata": {"tenant": "acme", "nested": {"secret": SECRET}}},
    "b-summary": {"user_id": "u-acme", "metadata": {"tenant": "acme", "kind": "compressed"}},
    "shared-id": {"user_id": "u-shared", "metadata": {"tenant": "acme", "secret": SECRET}},
}
B_COLLECTIONS = {"docs": 3, "shared-col": 2}
LC_COLLECTION, LI_COLLECTION = "lc-docs", "li-docs"
#: ids only B has (A owns a "shared-id" session and a "shared-col" collection of its own)
B_ONLY_IDS = {"b-only-1", "b-only-2", "b-summary", "docs", LC_COLLECTION, LI_COLLECTION}
ATTACKERS = [
    "tenant-a",
    f"{VICTIM}#collections",
    f"{VICTIM}#collections#collections",
    f"#collections{VICTIM}",
    "#collections",
    f"{VICTIM}#",
    f"{VICTIM}#COLLECTIONS",
    VICTIM.upper(),
    f"{VICTIM} ",
    f" {VICTIM}",
    f"{VICTIM}\u200b",
    f"\ufeff{VICTIM}",
    "acme\u0301",
    f"{VICTIM}/..",
    f"../{VICTIM}",
    f"{VICTIM}%00",
    "%61cme",  # the file backend's %XX encoding of other bytes
    f"{VICTIM}\\",
    f"{VICTIM}{{",
    f"{{{VICTIM}}}",
    f"ix:{{{VICTIM}}}",  # the Redis namespace-index key shape
    f"{VICTIM}\\)",  # the Redis hash-tag escape of "}"
    "default",
]


# -- the seeded world ---------------------------------------------------------------------------------------------


def cli_url(target: Any, options: dict[str, Any]) -> str:
    """A URL string the CLI can open that reaches the same data as ``Memory(target, **options)``."""
    assert isinstance(target, str), target
    extra = {k: ("none" if v is None else str(v)) for k, v in options.items() if k in ("prefix", "ttl", "schema",
                                                                                        "min_size", "max_size")}
    if not extra:
        return target
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query, safe="/:")))


@dataclass
class World:
    backend: str
    factory: Callable[..., Memory]
    url: str
    clock: FakeClock
    victim: Memory
    attackers: dict[str, Memory | MemvaultError] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, list[str]] = field(default_factory=dict)
    b_cursors: list[str] = field(default_factory=list)
    b_message_ids: list[str] = field(default_factory=list)
    b_doc_ids: list[str] = field(default_factory=list)

    def attacker(self, namespace: str) -> Memory:
        if namespace not in self.attackers:
            try:
                mem = self.factory(namespace=namespace, embedder=EMBEDDER, clock=self.clock, ttl=None)
            except MemvaultError as exc:
                self.attackers[namespace] = exc
            else:
                self.attackers[namespace] = mem
                seed_attacker(mem)
        found = self.attackers[namespace]
        if isinstance(found, MemvaultError):
            pytest.skip(f"Memory(namespace={namespace!r}) is refused ({type(found).__name__}): isolated by definition")
        return found


def seed_victim(world: World) -> None:
    mem, clock = world.victim, world.clock
    policy = CompressionPolicy(trigger_messages=4, keep_messages=1, trigger_tokens=None, keep_tokens=None)
    for sid, fields in B_SESSIONS.items():
        clock.advance(1)
        s = mem.session(sid, compress=policy if sid == "b-summary" else None, **fields)
        stored = s.extend([Message("user", f"secret of {VICTIM}: the launch code is {SECRET} {i}",
                                   metadata={"secret": SECRET, "i": i}) for i in range(6 if sid == "b-summary" else 2)])
        world.b_message_ids += [m.id for m in stored]
        s.wait_compression()
    for name, count in B_COLLECTIONS.items():
        docs = [{"id": f"{name}-{i}", "text": f"{VICTIM} document {SECRET} {i}", "metadata": {"secret": SECRET, "i": i}}
                for i in range(count)]
        world.b_doc_ids += mem.collection(name).upsert(docs)
    from langchain_memvault import MemvaultVectorStore as LcStore

    world.b_doc_ids += LcStore(memory=mem, collection_name=LC_COLLECTION).add_texts(
        [f"langchain {SECRET} text {i}" for i in range(2)], metadatas=[{"secret": SECRET}] * 2,
        ids=[f"lc-{i}" for i in range(2)])
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.memvault import MemvaultVectorStore as LiStore

    world.b_doc_ids += LiStore(memory=mem, collection_name=LI_COLLECTION).add(
        [TextNode(id_=f"li-{i}", text=f"llamaindex {SECRET} node {i}", metadata={"secret": SECRET}) for i in range(2)])
    assert mem.session("b-summary").summaries(), "the compressed session has no summary: the seed is broken"
    page = mem.sessions(limit=1)
    while page.next_cursor:
        world.b_cursors.append(page.next_cursor)
        page = mem.sessions(limit=1, cursor=page.next_cursor)
    world.exports = {sid: list(mem.export_session(sid)) for sid in B_SESSIONS}


def seed_attacker(mem: Memory) -> None:
    """A's own data: a session with B's id "shared-id", another of its own, a collection named like one of B's."""
    mem.session("shared-id", user_id="u-shared", metadata={"tenant": "a"}).add("user", "A's own shared-id message")
    mem.session("a-own", user_id="u-a").add("user", "A's own message")
    mem.collection("shared-col").upsert([{"id": "a-doc", "text": "A's own document", "metadata": {"tenant": "a"}}])


def snapshot(world: World) -> dict[str, Any]:
    """Everything B holds, read through B's own Memory."""
    mem = world.victim
    out: dict[str, Any] = {"listing": [(i.id, i.user_id, i.metadata, i.message_count, i.last_seq)
                                       for i in mem.sessions(limit=1000)]}
    for sid in B_SESSIONS:
        out[f"{sid} messages"] = [(m.id, m.seq, m.content, m.metadata) for m in mem.session(sid).messages()]
        out[f"{sid} summaries"] = [(x.key, x.text) for x in mem.session(sid).summaries()]
    for name in [*B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        col = mem.collection(name)
        out[f"collection {name}"] = (col.count(), [(d.id, d.text, d.metadata, d.vector)
                                                   for d in col.get(world.b_doc_ids)])
    return out


def reseed(world: World) -> None:
    """Put B back as seeded after a breach changed it (so one breach does not cascade into every later test)."""
    mem = world.victim
    for sid in B_SESSIONS:
        mem.delete_session(sid)
    for name in [*B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        mem.collection(name).clear()
    world.b_message_ids, world.b_doc_ids, world.b_cursors = [], [], []
    seed_victim(world)
    world.baseline = snapshot(world)


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    backend = request.param
    token = f"iso{uuid.uuid4().hex[:10]}"
    tmp_path = tmp_path_factory.mktemp(f"iso-{backend}")
    target, options = BACKENDS[backend](request, token, tmp_path)
    opened: list[Memory] = []
    clock = FakeClock()

    def factory(**extra: Any) -> Memory:
        mem = Memory(target, **{**options, **extra})
        opened.append(mem)
        return mem

    victim = factory(namespace=VICTIM, embedder=EMBEDDER, clock=clock, ttl=None)
    w = World(backend, factory, cli_url(target, options), clock, victim)
    seed_victim(w)
    w.baseline = snapshot(w)
    try:
        yield w
    finally:
        for mem in opened:
            mem.close()


BREACHES: list[str] = []
RUNS: dict[str, int] = {}


class _Report:
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not BREACHES and not RUNS:
            return
        tr = terminalreporter
        tr.section("memvault tenant isolation")
        tr.write_line(f"isolation breaches (A read or changed B's data): {len(BREACHES)} (expected 0) "
                      f"in {sum(RUNS.values())} attack tests")
        per: dict[tuple[str, str], int] = {}
        for line in BREACHES:
            backend, _, rest = line.partition("] namespace=")
            key = (backend.lstrip("["), rest.split(" ", 1)[0])
            per[key] = per.get(key, 0) + 1
        for (backend, namespace), count in sorted(per.items()):
            tr.write_line(f"  {backend}: {count} breach(es) from namespace={namespace}")
        for line in BREACHES[:60]:
            tr.write_line(f"    {line[:200]}")


@pytest.fixture(scope="session", autouse=True)
def _isolation_report(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("memvault-isolation-report"):
        manager.register(_Report(), "memvault-isolation-report")


class Probe:
    """Collects breaches of one test: what A saw of B's data, or what A changed."""

    def __init__(self, world: World, attacker: str) -> None:
        self.world = world
        self.attacker = attacker
        self.breaches: list[str] = []
        self.finished = False

    def breach(self, path: str, detail: str) -> None:
        line = f"[{self.world.backend}] namespace={self.attacker!r} {path}: {detail}"
        self.breaches.append(line)
        BREACHES.append(line)

    def call(self, path: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run an attack; a MemvaultError means "refused" (fine) and returns None. Other exceptions propagate."""
        try:
            return fn(*args, **kwargs)
        except MemvaultError:
            return None

    def sees(self, path: str, result: Any) -> None:
        """A breach when ``result`` holds B's marker or one of B's own ids."""
        found = leaked(result)
        if found:
            self.breach(path, f"saw B's data: {found}")

    def check_b_unchanged(self) -> None:
        now = snapshot(self.world)
        changed = [k for k in now if now[k] != self.world.baseline.get(k)]
        if changed:
            self.breach("after the attacks", f"B's data changed: {changed}")
            reseed(self.world)

    def done(self) -> None:
        """End of a test: B must be unchanged, and nothing may have leaked."""
        self.finished = True
        self.check_b_unchanged()
        assert not self.breaches, f"{len(self.breaches)} isolation breach(es):\n  " + "\n  ".join(self.breaches)


def _texts(obj: Any, out: list[str], depth: int = 0) -> None:
    """Every string reachable in a result (messages, infos, hits, documents, framework objects, containers)."""
    if depth > 12 or obj is None:
        return
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, bytes):
        out.append(obj.decode("utf-8", "replace"))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _texts(k, out, depth + 1)
            _texts(v, out, depth + 1)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            _texts(v, out, depth + 1)
    elif hasattr(obj, "get_content") and hasattr(obj, "metadata"):  # LlamaIndex nodes
        out.append(obj.get_content())
        _texts(obj.metadata, out, depth + 1)
    elif hasattr(obj, "node"):  # NodeWithScore
        _texts(obj.node, out, depth + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            _texts(getattr(obj, name), out, depth + 1)
    elif hasattr(obj, "model_dump"):  # pydantic (LangChain / LlamaIndex messages and documents)
        _texts(obj.model_dump(), out, depth + 1)
    elif hasattr(obj, "items") and callable(obj.items):  # Page
        _texts(list(obj.items), out, depth + 1)
    else:
        out.append(repr(obj))


def leaked(result: Any) -> list[str]:
    """Texts in ``result`` that hold B's marker (B's messages, metadata, documents and summaries all hold it)."""
    texts: list[str] = []
    _texts(result, texts)
    return sorted({text[:80] for text in texts if SECRET in text})[:5]


def holds_b(mem: Memory, sid: str) -> bool:
    """Whether the session ``sid`` as A reaches it holds B's marker (then it is B's data, whatever its name)."""
    try:
        return bool(leaked(mem.session(sid).messages()))
    except MemvaultError:
        return False


def b_ids_listed(mem: Memory, ids: list[str]) -> list[str]:
    """Those of ``ids`` (listed to A) that are B's sessions or collections seen through A's namespace."""
    return [sid for sid in ids if sid in B_ONLY_IDS and holds_b(mem, sid)]


@pytest.fixture
def probe(world: World, request: pytest.FixtureRequest) -> Iterator[Probe]:
    attacker = request.node.callspec.params["attacker"]
    p = Probe(world, attacker)
    RUNS[world.backend] = RUNS.get(world.backend, 0) + 1
    yield p
    if not p.finished:  # the test stopped early (skipped or raised): still put B back if it changed
        p.check_b_unchanged()


attackers = pytest.mark.parametrize("attacker", ATTACKERS)
#: the CLI and the adapters pass the namespace through to the same core: a smaller set of names keeps CI time down
FEW = ["tenant-a", f"{VICTIM}#collections", f"{VICTIM}#collections#collections", VICTIM.upper(), f"{VICTIM} ",
       f"{VICTIM}\\)", "default"]
few_attackers = pytest.mark.parametrize("attacker", FEW)


# -- listing ----------------------------------------------------------------------------------------------------------


def _walk(mem: Memory, **query: Any) -> list[Any]:
    items: list[Any] = []
    page = mem.sessions(limit=2, **query)
    items += page.items
    for _ in range(50):
        if not page.next_cursor:
            break
        page = mem.sessions(limit=2, cursor=page.next_cursor, **query)
        items += page.items
    return items


@attackers
def test_listing_never_shows_b(world: World, probe: Probe, attacker: str) -> None:
    mem = world.attacker(attacker)
    listed = probe.call("sessions()", _walk, mem) or []
    probe.sees("sessions()", listed)
    shown = b_ids_listed(mem, [i.id for i in listed])
    if shown:
        probe.breach("sessions()", f"lists B's {shown} (their messages are B's)")
    for user in [*B_USERS, "u-shared"]:
        probe.sees(f"sessions(user_id={user!r})", probe.call("sessions(user_id)", _walk, mem, user_id=user))
    for fields in B_SESSIONS.values():
        for key, value in fields["metadata"].items():
            probe.sees(f"sessions(metadata={{{key!r}: ...}})",
                       probe.call("sessions(metadata)", _walk, mem, metadata={key: value}))
    probe.done()


@attackers
def test_cursors_from_b_or_forged_never_show_b(world: World, probe: Probe, attacker: str) -> None:
    mem = world.attacker(attacker)
    forged = []
    for info in world.victim.sessions(limit=1000):
        for delta in (0.0, 1e-6, 1.0):
            for sid in (info.id, info.id + "\uffff", "\uffff"):
                raw = json.dumps([info.updated_at.timestamp() + delta, sid]).encode()
                forged.append(base64.urlsafe_b64encode(raw).decode().rstrip("="))
    forged += [base64.urlsafe_b64encode(json.dumps([1e308, "\uffff"]).encode()).decode().rstrip("="),
               base64.urlsafe_b64encode(json.dumps([float("inf"), ""]).encode()).decode().rstrip("=")]
    for cursor in [*world.b_cursors, *forged]:
        for query in ({}, {"user_id": "u-acme"}, {"metadata": {"tenant": "acme"}}):
            try:
                page = mem.sessions(limit=1000, cursor=cursor, **query)
            except InvalidCursor:
                continue
            path = f"sessions(cursor=<{'B' if cursor in world.b_cursors else 'forged'}>, {query})"
            probe.sees(path, page)
            shown = b_ids_listed(mem, [i.id for i in page])
            if shown:
                probe.breach(path, f"lists B's {shown}")
    probe.done()


# -- direct reads and writes by B's ids --------------------------------------------------------------------------------


@attackers
def test_reads_by_b_ids_never_show_b(world: World, probe: Probe, attacker: str) -> None:
    mem = world.attacker(attacker)
    for sid in [*B_SESSIONS, *B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        try:
            info = mem.get_session(sid)
        except SessionNotFound:
            info = None
        b_data = holds_b(mem, sid)
        if info is not None and b_data:
            probe.breach(f"get_session({sid!r})", f"found {info.namespace!r}/{info.id!r} "
                         f"({info.message_count} messages of B, metadata {info.metadata})")
        probe.sees(f"get_session({sid!r})", info)
        s = mem.session(sid)
        probe.sees(f"session({sid!r}).messages()", probe.call("messages", s.messages))
        probe.sees(f"session({sid!r}).messages(last=3)", probe.call("messages", s.messages, last=3))
        probe.sees(f"session({sid!r}).get(B's ids)", probe.call("get", s.get, world.b_message_ids + world.b_doc_ids))
        probe.sees(f"session({sid!r}).summaries()", probe.call("summaries", s.summaries))
        if b_data:  # the session A reaches under this name is B's
            probe.breach(f"session({sid!r}).count()", f"{probe.call('count', s.count)} of B's messages")
            probe.breach(f"session({sid!r}).exists()", f"{probe.call('exists', s.exists)} for B's session")
        probe.sees(f"session({sid!r}).info()", probe.call("info", s.info))
        probe.sees(f"export_session({sid!r})", probe.call("export", lambda sid=sid: list(mem.export_session(sid))))
        probe.sees(f"context({sid!r})", probe.call("context", mem.context, sid, query=SECRET, budget_tokens=500))
    probe.done()


@attackers
def test_writes_by_b_ids_never_change_b(world: World, probe: Probe, attacker: str) -> None:
    """A writes, clears, trims and deletes sessions named like B's: B must not change (checked after the test)."""
    mem = world.attacker(attacker)
    for sid in [*B_SESSIONS, *B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        if sid == "shared-id":
            continue
        s = mem.session(sid)
        probe.call("delete_messages", s.delete_messages, world.b_message_ids + world.b_doc_ids)
        probe.call("clear", s.clear)
        probe.call("delete_session", mem.delete_session, sid)
        probe.call("add", s.add, "user", "A writes here")
        probe.call("replace", s.replace, [Message("user", "A replaced")])
        probe.call("capped add", mem.session(sid, max_messages=1).add, "user", "A trims")
        probe.call("delete_session", mem.delete_session, sid)
    probe.call("purge_expired", mem.purge_expired)
    probe.done()


# -- recall, context ----------------------------------------------------------------------------------------------------


@attackers
def test_recall_never_shows_b(world: World, probe: Probe, attacker: str) -> None:
    mem = world.attacker(attacker)
    scopes: list[dict[str, Any]] = [{}, {"namespace": None}, *({"session": sid} for sid in B_SESSIONS),
                                    *({"session": name} for name in B_COLLECTIONS),
                                    *({"user_id": user} for user in [*B_USERS, "u-shared"]),
                                    {"filters": {"session": list(B_SESSIONS)}},
                                    {"filters": {"metadata": {"secret": SECRET}}}]
    for scope in scopes:
        for mode in ("hybrid", "keyword", "dense"):
            hits = probe.call("recall", mem.recall, SECRET, k=20, mode=mode, neighbors=1, **scope)
            probe.sees(f"recall({SECRET!r}, mode={mode!r}, {scope})", hits)
    probe.sees("context('b-summary')", probe.call("context", mem.context, "b-summary", query=SECRET))
    probe.done()


# -- collections ------------------------------------------------------------------------------------------------------


@attackers
def test_collections_never_show_or_change_b(world: World, probe: Probe, attacker: str) -> None:
    mem = world.attacker(attacker)
    for name in [*B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        col = mem.collection(name)
        probe.sees(f"collection({name!r}).get(B's doc ids)", probe.call("get", col.get, world.b_doc_ids))
        for mode in ("dense", "keyword", "hybrid"):
            probe.sees(f"collection({name!r}).search({SECRET!r}, mode={mode!r})",
                       probe.call("search", col.search, SECRET, k=10, mode=mode))
        probe.sees(f"collection({name!r}).search(where=secret)",
                   probe.call("search", col.search, SECRET, k=10, where={"secret": SECRET}))
        probe.call("delete(ids)", col.delete, world.b_doc_ids)
        probe.call("delete(where)", col.delete, where={"secret": SECRET})
        probe.call("upsert", col.upsert, [{"id": doc_id, "text": "A overwrites"} for doc_id in world.b_doc_ids[:2]])
        probe.call("delete(ids)", col.delete, world.b_doc_ids[:2])
        if name != "shared-col":
            probe.call("clear", col.clear)
    probe.done()


# -- export / import ----------------------------------------------------------------------------------------------------


@attackers
def test_import_of_b_export_lands_in_a_only(world: World, probe: Probe, attacker: str) -> None:
    mem = world.attacker(attacker)
    for sid, lines in world.exports.items():
        if sid == "shared-id":
            continue
        for session_id in (None, f"copy-{sid}"):
            info = probe.call("import_session", mem.import_session, lines, session_id=session_id)
            if info is None:
                continue
            if info.namespace != mem.namespace:
                probe.breach(f"import_session(export of B/{sid}, session_id={session_id!r})",
                             f"landed in namespace {info.namespace!r}")
            probe.call("delete_session", mem.delete_session, info.id)
        header = json.loads(lines[0])
        assert header["namespace"] == VICTIM
    # an import must not make A's copy visible to B either
    for sid in B_SESSIONS:
        info = world.victim.get_session(sid)
        if "tenant" in info.metadata and info.metadata["tenant"] != "acme":
            probe.breach(f"B's {sid!r} after A's import", f"metadata {info.metadata}")
    probe.done()


# -- the CLI ------------------------------------------------------------------------------------------------------------


@few_attackers
def test_cli_never_shows_or_changes_b(world: World, probe: Probe, attacker: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from memvault import cli
    from memvault.cli import app

    monkeypatch.setattr(cli.console, "_width", 1000)  # no folded table cells: the marker stays one word

    world.attacker(attacker)  # skips a refused namespace
    runner = CliRunner()
    base = ["--url", world.url, "--namespace", attacker]

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        return result.output + (repr(result.exception) if result.exception and not isinstance(result.exception,
                                                                                             SystemExit) else "")

    listing = run("sessions", "list", *base, "--json", "--limit", "1000")
    probe.sees("memvault sessions list --json", listing)
    shown = b_ids_listed(world.attacker(attacker), re.findall(r'"id": "([^"]*)"', listing))
    if shown:
        probe.breach("memvault sessions list", f"lists B's {shown}")
    for user in B_USERS:
        probe.sees(f"memvault sessions list --user {user}", run("sessions", "list", *base, "--json", "--user", user))
    for sid in [*B_SESSIONS, *B_COLLECTIONS]:
        probe.sees(f"memvault sessions show {sid}", run("sessions", "show", sid, *base))
        probe.sees(f"memvault sessions export {sid}", run("sessions", "export", sid, *base))
    # the query is not the marker (the CLI echoes its query): B's messages hold "launch code" and the marker
    probe.sees("memvault recall 'launch code'", run("recall", "launch code", *base, "--embedder", EMBEDDER, "-k", "20"))
    probe.sees("memvault recall 'launch code' --user u-acme",
               run("recall", "launch code", *base, "--embedder", EMBEDDER, "--user", "u-acme"))
    export = tmp_path / "b.jsonl"
    export.write_text("\n".join(world.exports["b-only-1"]) + "\n", encoding="utf-8")
    run("sessions", "import", str(export), *base)
    run("sessions", "delete", "b-only-1", *base, "--yes")
    for sid in [*B_SESSIONS, *B_COLLECTIONS]:
        if sid != "shared-id":
            run("sessions", "delete", sid, *base, "--yes")
    probe.done()


# -- LangChain -----------------------------------------------------------------------------------------------------------


@few_attackers
def test_langchain_adapters_never_show_b(world: World, probe: Probe, attacker: str) -> None:
    from langchain_memvault import MemvaultChatMessageHistory, MemvaultRetriever, MemvaultVectorStore

    mem = world.attacker(attacker)
    for sid in [*B_SESSIONS, *B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        for ns in (None, attacker):
            for options in ({}, {"window": 3}, {"window": 3, "recall_k": 3}, {"compress": True}):
                history = probe.call("history", MemvaultChatMessageHistory, sid, memory=mem, namespace=ns, **options)
                if history is not None:
                    probe.sees(f"MemvaultChatMessageHistory({sid!r}, namespace={ns!r}, {options}).messages",
                               probe.call("messages", lambda h=history: h.messages))
    for name in [*B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
        store = MemvaultVectorStore(memory=mem, collection_name=name)
        probe.sees(f"lc MemvaultVectorStore({name!r}).similarity_search",
                   probe.call("similarity_search", store.similarity_search, SECRET, k=10))
        probe.sees(f"lc MemvaultVectorStore({name!r}).hybrid_search",
                   probe.call("hybrid_search", store.hybrid_search, SECRET, k=10))
        probe.sees(f"lc MemvaultVectorStore({name!r}).get_by_ids",
                   probe.call("get_by_ids", store.get_by_ids, world.b_doc_ids))
        probe.call("delete", store.delete, world.b_doc_ids)
    for scope in ({}, {"session_id": "b-only-1"}, {"user_id": "u-acme"}, {"namespace": attacker}):
        retriever = MemvaultRetriever(memory=mem, k=10, **scope)
        probe.sees(f"lc MemvaultRetriever({scope}).invoke", probe.call("invoke", retriever.invoke, SECRET))
    probe.done()


# -- LlamaIndex ----------------------------------------------------------------------------------------------------------


@few_attackers
def test_llamaindex_adapters_never_show_b(world: World, probe: Probe, attacker: str) -> None:
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
    from llama_index.memory.memvault import MemvaultMemory
    from llama_index.retrievers.memvault import MemvaultRetriever
    from llama_index.storage.chat_store.memvault import MemvaultAsyncChatStore, MemvaultChatStore
    from llama_index.vector_stores.memvault import MemvaultVectorStore

    mem = world.attacker(attacker)
    for ns in (None, attacker):
        store = MemvaultChatStore(memory=mem, namespace=ns)
        keys = probe.call("get_keys", store.get_keys) or []
        if b_ids_listed(mem, keys):
            probe.breach(f"MemvaultChatStore(namespace={ns!r}).get_keys()", f"lists B's {b_ids_listed(mem, keys)}")
        astore = MemvaultAsyncChatStore(memory=mem, namespace=ns)
        keys = probe.call("get_keys", lambda s=astore: asyncio.run(s.get_keys())) or []
        if b_ids_listed(mem, keys):
            probe.breach(f"MemvaultAsyncChatStore(namespace={ns!r}).get_keys()", f"lists B's {b_ids_listed(mem, keys)}")
        for sid in [*B_SESSIONS, *B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION]:
            probe.sees(f"MemvaultChatStore.get_messages({sid!r})", probe.call("get_messages", store.get_messages, sid))
            probe.sees(f"MemvaultAsyncChatStore.get_messages({sid!r})",
                       probe.call("get_messages", lambda s=astore, k=sid: asyncio.run(s.get_messages(k))))
            if sid != "shared-id" and sid != "shared-col":
                probe.call("delete_messages", store.delete_messages, sid)
    for sid in B_SESSIONS:
        memory = probe.call("MemvaultMemory", MemvaultMemory.from_defaults, session_id=sid, memory=mem,
                            compression=False)
        if memory is not None:
            probe.sees(f"MemvaultMemory({sid!r}).get({SECRET!r})", probe.call("get", memory.get, SECRET))
            probe.sees(f"MemvaultMemory({sid!r}).get_all()", probe.call("get_all", memory.get_all))
    for name in ("docs", LI_COLLECTION):  # A's own collections were not written by LlamaIndex: its nodes cannot load
        vs = MemvaultVectorStore(memory=mem, collection_name=name)
        for mode in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.HYBRID):
            query = VectorStoreQuery(query_str=SECRET, similarity_top_k=10, mode=mode)
            probe.sees(f"li MemvaultVectorStore({name!r}).query({mode.value})", probe.call("query", vs.query, query))
        probe.sees(f"li MemvaultVectorStore({name!r}).get_nodes()", probe.call("get_nodes", vs.get_nodes))
        probe.sees(f"li MemvaultVectorStore({name!r}).get_nodes(B's ids)",
                   probe.call("get_nodes", vs.get_nodes, node_ids=world.b_doc_ids))
        probe.call("delete_nodes", vs.delete_nodes, node_ids=world.b_doc_ids)
    for scope in ({}, {"session_id": "b-only-1"}, {"user_id": "u-acme"}, {"namespace": attacker}):
        retriever = MemvaultRetriever(memory=mem, similarity_top_k=10, **scope)
        probe.sees(f"li MemvaultRetriever({scope}).retrieve", probe.call("retrieve", retriever.retrieve, SECRET))
    probe.done()


# -- namespaces that name B's internal storage are refused or isolated ----------------------------------------------------


def test_internal_collection_namespace_is_not_an_open_door(world: World) -> None:
    """The namespace that holds B's collections today ("B#collections") must be refused, or hold nothing of B."""
    name = f"{VICTIM}#collections"
    try:
        mem = world.factory(namespace=name, embedder=EMBEDDER, clock=world.clock, ttl=None)
    except MemvaultError:
        return
    listed = b_ids_listed(mem, [i.id for i in mem.sessions(limit=1000)])
    docs = {n: len(mem.session(n).messages()) for n in [*B_COLLECTIONS, LC_COLLECTION, LI_COLLECTION] if holds_b(mem, n)}
    assert not listed and not docs, (
        f"[{world.backend}] Memory(namespace={name!r}) sees B's collections as sessions: listing shows {listed}, "
        f"B's documents per collection {docs}"
    )
