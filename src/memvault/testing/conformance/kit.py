"""The kit's machinery: the check registry, the context a check runs in, the sync view of an async face, the runner
and its report. The checks themselves live in the sibling modules (``sessions``, ``messages``, ...)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import inspect
import os
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, cast

from memvault.contract import Store

T = TypeVar("T")
Face = Literal["sync", "async"]
Status = Literal["passed", "failed", "skipped"]
FACES: tuple[Face, ...] = ("sync", "async")
#: the check groups, in the order they run (the last four need a capability)
GROUPS = ("sessions", "listing", "messages", "records", "entries", "ttl", "isolation", "validation", "lifecycle",
          "sealing", "async_face", "multiprocess", "native_async", "fulltext", "rewrite")
_HERE = os.path.dirname(os.path.abspath(__file__))

#: capabilities the kit knows, with what declaring one means (checks named ``<capability>.*`` run only when declared)
KNOWN_CAPABILITIES: dict[str, str] = {
    "multiprocess": "several processes (here: several store instances from the reopen hook) share one location safely",
    "native_async": "store.aio is the backend's own async client, not ThreadedAsyncStore's worker threads",
    "fulltext": "store.find_messages(namespace, text=..., user_id=..., session_ids=..., after=..., before=..., "
    "metadata=..., limit=..., cursor=...) searches messages across sessions",
    "vector": "a native vector index for recall (checked by the recall suite, not by this kit)",
    "native_ttl": "the server also expires data natively (not observable through the contract; not checked)",
    "rewrite": "Store.rewrite (in-place compare-and-set) and Store.list_kinds, which memvault rekey needs",
}


class StoreFactory(Protocol):
    """``factory(clock=...) -> Store``: a fresh, empty store on every call, reading time from ``clock``."""

    def __call__(self, *, clock: Callable[[], float]) -> Store: ...


#: ``reopen(store) -> Store``: another instance on the same data as ``store`` (own connections / file handles, as a
#: second process would have), using ``store.clock``. Needed by the ``multiprocess`` checks.
Reopen = Callable[[Store], Store]


class KitError(Exception):
    """The kit was set up in a way a check cannot run with (e.g. ``multiprocess`` declared but no ``reopen``)."""


class FakeClock:
    """An injectable clock (epoch seconds) that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- assertions with messages that say what was expected (the report shows them; no pytest rewriting here) ----------


def _short(value: Any, limit: int = 240) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def eq(got: Any, want: Any, what: str) -> None:
    """Fail unless ``got == want``."""
    if got != want:
        raise AssertionError(f"{what}: expected {_short(want)}, got {_short(got)}")


def ok(condition: object, what: str) -> None:
    """Fail unless ``condition`` is true."""
    if not condition:
        raise AssertionError(what)


def raises(error: type[BaseException], call: Callable[[], Any], what: str) -> BaseException:
    """Fail unless ``call()`` raises ``error`` (or a subclass); return the exception."""
    try:
        result = call()
    except error as exc:
        return exc
    except Exception as exc:
        raise AssertionError(f"{what}: expected {error.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{what}: expected {error.__name__}, got a result: {_short(result)}")


# -- the registry --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One conformance check: ``fn(ctx)`` raises on a contract violation."""

    name: str
    fn: Callable[[Context], None]
    doc: str
    requires: str | None = None
    faces: tuple[Face, ...] = FACES

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


CHECKS: dict[str, Check] = {}


def check(group: str, *, requires: str | None = None, faces: tuple[Face, ...] = FACES
          ) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    """Register ``fn`` as the check ``<group>.<fn name>``; ``requires``: the capability it needs."""

    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        name = f"{group}.{fn.__name__}"
        if name in CHECKS:
            raise KitError(f"check {name} is registered twice")
        doc = inspect.getdoc(fn) or ""
        CHECKS[name] = Check(name, fn, doc.split("\n\n", 1)[0].replace("\n", " "), requires, faces)
        return fn

    return register


# -- the async face seen synchronously -------------------------------------------------------------------------------


class EventLoopThread:
    """A persistent event loop in a daemon thread: ``run(coro)`` waits for the coroutine's result."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="memvault-kit-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"an async-face call did not finish within {self.timeout:g}s") from None

    def close(self) -> None:
        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):  # best effort at shutdown
            asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


class SyncOverAsync:
    """A synchronous view of ``store.aio``: ``view.append(...)`` runs ``await store.aio.append(...)`` on the kit's
    loop and returns the result, so every check is written once and runs on both faces. Calls made from several
    threads at once run as concurrent coroutines on that loop."""

    def __init__(self, aio: Any, runner: EventLoopThread) -> None:
        self._aio = aio
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._aio, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                result = attr(*args, **kwargs)
                return await result if inspect.isawaitable(result) else result

            return self._runner.run(run())

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        return f"<SyncOverAsync {self._aio!r}>"


# -- the context of one check run -------------------------------------------------------------------------------------


class Context:
    """What a check gets: ``s`` (the face under test, with the Store's methods), ``store`` (the Store itself),
    ``clock`` (the fake clock the store reads), ``ns`` (a namespace to use) and helpers."""

    def __init__(self, store: Store, face: Face, clock: FakeClock, runner: EventLoopThread,
                 reopen: Reopen | None) -> None:
        self.store = store
        self.face = face
        self.clock = clock
        self.runner = runner
        self.ns = "kit"
        self._reopen = reopen
        self._others: list[Store] = []
        self.s: Store = self.face_of(store)

    def face_of(self, store: Store) -> Store:
        """``store`` itself on the sync face, its async face seen synchronously on the async face."""
        if self.face == "sync":
            return store
        return cast(Store, SyncOverAsync(store.aio, self.runner))

    def second(self) -> Store:
        """Another instance on the same data (the ``reopen`` hook), on the same face; closed after the check."""
        if self._reopen is None:
            raise KitError(
                "this check needs a second store instance on the same data: pass reopen=lambda store: ... to "
                "validate() (or do not declare the capability)"
            )
        other = self._reopen(self.store)
        self._others.append(other)
        return self.face_of(other)

    def run_async(self, make: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Run ``make(store.aio)`` on the kit's event loop (for checks of the async face as such)."""
        return self.runner.run(make(self.store.aio))

    def concurrently(self, calls: Sequence[Callable[[], T]], *, timeout: float = 120.0) -> list[T]:
        """Run ``calls`` in threads started together; their results in order. Re-raises the first failure."""
        results: list[Any] = [None] * len(calls)
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(calls))

        def work(i: int) -> None:
            try:
                barrier.wait(timeout)
                results[i] = calls[i]()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(calls))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(deadline - time.monotonic(), 0.0))
        if any(t.is_alive() for t in threads):
            raise TimeoutError(f"concurrent calls did not finish within {timeout:g}s")
        if errors:
            raise errors[0]
        return results

    def close(self) -> None:
        """Close every store the check opened (through the face under test, then idempotently again)."""
        failures: list[BaseException] = []
        for store in [*self._others, self.store]:
            try:
                if self.face == "async":
                    self.runner.run(store.aio.close())
                store.close()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


# -- results and the report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one face."""

    name: str
    face: Face
    status: Status
    seconds: float = 0.0
    #: the exception, ``"Type: message"``
    error: str | None = None
    #: the line of the check that failed (``file:line in check: source``)
    where: str | None = None
    traceback: str | None = None
    #: why a check was skipped (only ever: a capability the store does not declare)
    reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}[{self.face}]"


@dataclass
class Report:
    """What :func:`validate` found. ``ok`` is true when no check failed; ``summary()`` names each failure."""

    store: str
    backend: str
    declared: frozenset[str]
    capabilities: frozenset[str]
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def passed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "passed"]

    @property
    def skipped(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "skipped"]

    @property
    def unchecked_capabilities(self) -> frozenset[str]:
        """Declared capabilities no check of the kit covers (e.g. ``vector``)."""
        covered = {c.requires for c in CHECKS.values() if c.requires}
        return self.capabilities - covered

    def result(self, name: str, face: Face = "sync") -> CheckResult:
        for r in self.results:
            if r.name == name and r.face == face:
                return r
        raise KeyError(f"{name}[{face}]")

    def summary(self, *, verbose: bool = False) -> str:
        """One line of counts, then one line per failed check with its exception (``verbose``: tracebacks)."""
        faces = sorted({r.face for r in self.results})
        lines = [
            f"memvault conformance: {self.store} ({self.backend}): {len(self.passed)} passed, {len(self.failed)} "
            f"failed, {len(self.skipped)} skipped on {'+'.join(faces) or 'no'} faces in {self.seconds:.1f}s; "
            f"capabilities {sorted(self.capabilities) or '[]'}"
            + (f" (declared {sorted(self.declared)})" if self.declared != self.capabilities else "")
        ]
        if self.unchecked_capabilities:
            lines.append(f"  not checked by the kit: {sorted(self.unchecked_capabilities)}")
        for r in self.failed:
            lines.append(f"  FAILED {r.id}: {r.error}")
            if r.where:
                lines.append(f"         at {r.where}")
            if verbose and r.traceback:
                lines.extend("         " + line for line in r.traceback.rstrip().splitlines())
        skipped: dict[str, list[str]] = {}
        for r in self.skipped:
            skipped.setdefault(r.reason or "", []).append(r.id)
        for reason, ids in skipped.items():
            lines.append(f"  skipped {len(ids)} ({reason})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _where(exc: BaseException) -> str | None:
    """The innermost frame of the kit's check modules in ``exc``'s traceback: the line that failed."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if path.startswith(_HERE) and not path.endswith(("kit.py",)):
            found = f"{os.path.relpath(path, os.path.dirname(_HERE))}:{frame.lineno} in {frame.name}: {frame.line}"
    return found


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the runner ---------------------------------------------------------------------------------------------------------


def select(only: Iterable[str] | None = None) -> list[Check]:
    """The registered checks, or those whose name or group matches one of ``only`` (shell-style patterns)."""
    _load_checks()
    order = {group: i for i, group in enumerate(GROUPS)}
    checks = sorted(CHECKS.values(), key=lambda c: order.get(c.group, len(order)))  # stable: file order in a group
    if only is None:
        return checks
    patterns = list(only)
    return [c for c in checks if any(fnmatch.fnmatchcase(c.name, p) or c.group == p for p in patterns)]


def _load_checks() -> None:
    from memvault.testing.conformance import (  # noqa: F401 - importing registers the checks
        entries,
        extended,
        messages,
        sealing,
        sessions,
    )


def validate(
    factory: StoreFactory,
    *,
    capabilities: Iterable[str] | None = None,
    reopen: Reopen | None = None,
    faces: Sequence[Face] = FACES,
    only: Iterable[str] | None = None,
    timeout: float = 120.0,
    progress: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run the conformance checks on stores made by ``factory`` and return a :class:`Report`.

    ``factory(clock=...)`` must return a fresh, empty store on every call (each check gets its own) that reads
    time from the given clock. Every check runs once per face in ``faces``: on the store itself ("sync") and through
    ``store.aio`` ("async", via a persistent event loop in a background thread). ``capabilities``: the optional
    features to check, by default those the store declares in ``Store.capabilities``; a check needing a capability
    is skipped only when it is not among them. ``reopen(store)`` opens a second instance on the same data (needed
    when ``multiprocess`` is declared). ``only``: check names, groups or patterns (``"entries"``,
    ``"messages.pop_*"``). ``timeout``: seconds one check may take before it counts as failed (hung).
    """
    wanted = frozenset(capabilities) if capabilities is not None else None
    chosen = select(only)
    started = time.monotonic()
    runner = EventLoopThread(timeout)
    declared: frozenset[str] | None = None
    store_name = backend = "?"
    results: list[CheckResult] = []
    try:
        for face in faces:
            if face not in FACES:
                raise KitError(f"unknown face {face!r}; faces are {FACES}")
            for chk in chosen:
                if face not in chk.faces:
                    continue
                if declared is None and (chk.requires is not None and wanted is None):
                    try:
                        probe = factory(clock=FakeClock())
                        declared, store_name, backend = frozenset(probe.capabilities), repr(probe), probe.backend
                        probe.close()
                    except Exception:  # the factory's failure is reported by the checks that need a store
                        declared = frozenset()
                caps = wanted if wanted is not None else (declared or frozenset())
                if chk.requires is not None and chk.requires not in caps:
                    result = CheckResult(chk.name, face, "skipped",
                                         reason=f"capability {chk.requires!r} not declared")
                else:
                    result, seen = _run_one(chk, face, factory, runner, reopen, timeout)
                    if seen is not None and declared is None:
                        declared, store_name, backend = seen
                results.append(result)
                if progress is not None:
                    progress(result)
    finally:
        runner.close()
    declared = declared or frozenset()
    return Report(store_name, backend, declared, wanted if wanted is not None else declared, results,
                  time.monotonic() - started)


async def avalidate(factory: StoreFactory, **options: Any) -> Report:
    """:func:`validate` from async code (runs in a worker thread; the kit brings its own event loop)."""
    return await asyncio.to_thread(validate, factory, **options)


def _run_one(chk: Check, face: Face, factory: StoreFactory, runner: EventLoopThread, reopen: Reopen | None,
             timeout: float) -> tuple[CheckResult, tuple[frozenset[str], str, str] | None]:
    outcome: dict[str, Any] = {}
    seen: tuple[frozenset[str], str, str] | None = None

    def body() -> None:
        nonlocal seen
        clock = FakeClock()
        try:
            store = factory(clock=clock)
        except BaseException as exc:
            outcome["error"] = exc
            outcome["stage"] = "factory(clock=...) raised"
            return
        seen = (frozenset(store.capabilities), repr(store), store.backend)
        ctx = Context(store, face, clock, runner, reopen)
        try:
            chk.fn(ctx)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            try:
                ctx.close()
            except BaseException as exc:
                if "error" not in outcome:
                    outcome["error"] = exc
                    outcome["stage"] = "closing the store raised"

    started = time.monotonic()
    worker = threading.Thread(target=body, name=f"memvault-kit-{chk.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    seconds = time.monotonic() - started
    if worker.is_alive():
        return CheckResult(chk.name, face, "failed", seconds, f"TimeoutError: did not finish within {timeout:g}s"), seen
    exc = outcome.get("error")
    if exc is None:
        return CheckResult(chk.name, face, "passed", seconds), seen
    text = _describe(exc)
    if "stage" in outcome:
        text = f"{outcome['stage']}: {text}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return CheckResult(chk.name, face, "failed", seconds, text, _where(exc), tb), seen


__all__ = [
    "CHECKS",
    "FACES",
    "GROUPS",
    "KNOWN_CAPABILITIES",
    "Check",
    "CheckResult",
    "Context",
    "EventLoopThread",
    "FakeClock",
    "KitError",
    "Report",
    "Reopen",
    "StoreFactory",
    "SyncOverAsync",
    "avalidate",
    "check",
    "eq",
    "ok",
    "raises",
    "select",
    "validate",
]
