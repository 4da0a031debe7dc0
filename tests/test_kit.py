"""The conformance kit (memvault.testing.conformance) on every backend and flavour of tests/backends.py, both faces.

A missing server is a failure (the harness fixtures fail, never skip). Each run also pins the capabilities the kit
detected, so a backend that stops declaring one (and would silently skip its checks) fails here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from memvault.backends.inmemory import InMemoryStore
from memvault.contract import Store
from memvault.testing.conformance import CHECKS, FACES, FakeClock, KitError, avalidate, checks, validate
from tests.backends import SUITE, kit_factory

#: what each registry entry declares (so every extended check that applies really runs)
CAPABILITIES: dict[str, frozenset[str]] = {
    "memory": frozenset({"rewrite"}),
    "sqlite": frozenset({"multiprocess", "rewrite"}),
    "sqlite-spool": frozenset({"multiprocess", "rewrite"}),
    "file": frozenset({"multiprocess", "rewrite"}),
    "redis": frozenset({"multiprocess", "native_async", "native_ttl", "rewrite"}),
    "redis-cluster": frozenset({"multiprocess", "native_async", "native_ttl", "rewrite"}),
    "redis-client": frozenset({"multiprocess", "native_async", "native_ttl", "rewrite"}),
    "redis-cluster-client": frozenset({"multiprocess", "native_async", "native_ttl", "rewrite"}),
    "postgres": frozenset({"multiprocess", "native_async", "fulltext", "vector", "rewrite"}),
    "postgres-pool": frozenset({"multiprocess", "native_async", "fulltext", "vector", "rewrite"}),
    # one shared sync connection: its async face offloads to a worker thread
    "postgres-connection": frozenset({"multiprocess", "fulltext", "vector", "rewrite"}),
    "postgres-external": frozenset({"multiprocess", "native_async", "fulltext", "rewrite"}),
}


@pytest.mark.parametrize("backend", sorted(SUITE))
def test_the_kit_passes_on_every_backend_and_both_faces(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with kit_factory(backend, request, tmp_path) as (factory, reopen):
        report = validate(factory, reopen=reopen)
    with capsys.disabled():
        print(f"\n{report.summary()}\n  wall time {time.monotonic() - started:.1f}s")
    assert report.ok, report.summary(verbose=True)
    assert report.capabilities == CAPABILITIES[backend], report.summary()
    ran = {(r.name, r.face) for r in report.results}
    expected = {(c.name, f) for c in CHECKS.values() for f in FACES if f in c.faces}
    assert ran == expected  # every check, on every face it applies to
    for r in report.skipped:  # skipped only for a capability the store does not declare
        requires = CHECKS[r.name].requires
        assert requires is not None and requires not in report.capabilities, r


# -- the kit itself: it must catch broken stores, and say what broke ----------------------------------------------------


class ForgetfulStore(InMemoryStore):
    """Breaks two rules: appends are not idempotent, and clear() resets the seq counter."""

    def append(self, ns: str, sid: str, records: Any, options: Any) -> list[int]:
        with self._state.lock:
            session = self._ensure(ns, sid, options)
            for record in records:
                session.by_id.pop(record.id, None)
            return super().append(ns, sid, records, options)

    def clear(self, ns: str, sid: str) -> int:
        with self._state.lock:
            removed = super().clear(ns, sid)
            session = self._live(ns, sid)
            if session is not None:
                session.last_seq = 0
            return removed


def test_the_kit_names_each_broken_rule_on_both_faces() -> None:
    report = validate(lambda *, clock: ForgetfulStore(clock=clock), only=["messages", "sessions"])
    assert not report.ok
    failed = {r.id for r in report.failed}
    for face in FACES:
        assert f"messages.append_is_idempotent_on_id[{face}]" in failed
        assert f"messages.clear_keeps_session_and_seq_counter[{face}]" in failed
        assert f"messages.read_ranges_and_tails[{face}]" not in failed
    text = report.summary()
    assert "FAILED messages.append_is_idempotent_on_id[async]: AssertionError: appending the same id again: " \
           "expected [1], got [2]" in text
    assert "conformance/messages.py:" in text and "in append_is_idempotent_on_id" in text  # the failing line


class ClaimsMultiprocess(InMemoryStore):
    capabilities = frozenset({"multiprocess"})


def test_declared_capabilities_run_and_need_their_hooks() -> None:
    report = validate(lambda *, clock: ClaimsMultiprocess(clock=clock), only=["multiprocess"])
    assert {r.status for r in report.results} == {"failed"}  # declared: run, never skipped
    assert all("pass reopen=" in (r.error or "") for r in report.results)
    assert KitError.__name__ in report.failed[0].error  # type: ignore[operator]
    skipped = validate(lambda *, clock: InMemoryStore(clock=clock), only=["multiprocess", "fulltext"])
    assert skipped.ok and {r.status for r in skipped.results} == {"skipped"}
    assert {r.reason for r in skipped.results} == {"capability 'multiprocess' not declared",
                                                   "capability 'fulltext' not declared"}
    forced = validate(lambda *, clock: InMemoryStore(clock=clock), capabilities={"fulltext"}, only=["fulltext"])
    assert [r.status for r in forced.results] == ["failed", "failed"]  # given capabilities override the declared ones
    assert "find_messages" in (forced.failed[0].error or "")


def test_a_hanging_store_fails_its_check_instead_of_hanging_the_kit() -> None:
    class Hangs(InMemoryStore):
        def count(self, ns: str, sid: str) -> int:
            time.sleep(30)
            return 0

    started = time.monotonic()
    report = validate(lambda *, clock: Hangs(clock=clock), only=["messages.append_assigns_contiguous_seqs"],
                      faces=["sync"], timeout=1.0)
    assert time.monotonic() - started < 10
    assert [r.error for r in report.results] == ["TimeoutError: did not finish within 1s"]


def test_factory_errors_and_the_checks_list() -> None:
    def broken(*, clock: Any) -> Store:
        raise ConnectionError("no server")

    report = validate(broken, only=["records"], faces=["sync"])
    assert report.failed and all(r.error == "factory(clock=...) raised: ConnectionError: no server"
                                 for r in report.failed)
    assert not validate(broken, only=["lifecycle", "multiprocess"]).ok  # no store to detect capabilities from
    names = [c.name for c in checks()]
    assert len(names) == len(set(names)) == len(CHECKS) and all(c.doc for c in checks())
    clock = FakeClock(10.0)
    clock.advance(5)
    assert clock() == 15.0


async def test_avalidate_runs_from_async_code() -> None:
    report = await avalidate(lambda *, clock: InMemoryStore(clock=clock), only=["records"])
    assert report.ok and len(report.passed) == 2 * len([c for c in CHECKS if c.startswith("records.")])
