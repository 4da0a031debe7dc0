"""Fault injection for your own agent's tests: :class:`FaultyStore` wraps any store and makes chosen calls fail,
stall or half-succeed, on the sync face and on the async face alike, and counts what it injected.

```python
from memvault import Memory
from memvault.backends.sqlite import SQLiteStore
from memvault.testing.faults import FaultyStore

faulty = FaultyStore(SQLiteStore("/tmp/t.db"), seed=7)
mem = Memory(faulty)
faulty.fail("append", every=3)                     # BackendUnavailable on every 3rd append
faulty.fail("writes", probability=0.1)             # any write, 10% of the time (seeded: reproducible)
faulty.fail("put_entries", when="after", times=1)  # committed, then raises: the caller never got the ack
faulty.delay("reads", 0.05)                        # 50 ms of latency on every read (asyncio.sleep on the async face)
with faulty.outage():                              # everything (ping included) is down inside the block
    ...
faulty.injected[("append", "before")]             # how many times each (method, kind) was injected
```

A rule (:class:`Fault`) matches methods by name, or by the groups ``"reads"``, ``"writes"`` and ``"*"``. Each
matching call counts towards the rule; the rule fires on every call, on every ``every``-th, or with
``probability`` (drawn from the store's seeded RNG), after ``skip`` matching calls and at most ``times`` times.
``when="before"`` raises without touching the wrapped store; ``when="after"`` lets the wrapped store commit, then
raises (a lost acknowledgement: the write happened, the caller cannot know); an "after" rule counts only the calls
that reached the wrapped store (not those a "before" rule failed). Errors default to
:class:`~memvault.errors.BackendUnavailable`; any exception class, instance or ``factory(method) -> exception`` works.
The async face (``faulty.aio``) wraps the inner store's own async face, so a native one stays native.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal

from memvault.contract import Store
from memvault.errors import BackendUnavailable
from memvault.faces import AsyncStore, PlannedStore

#: every method of the contract (the ones FaultyStore can fault), plus ping
CONTRACT_METHODS: frozenset[str] = frozenset(Store.__abstractmethods__) | {"append_entries", "ping"}
READS: frozenset[str] = frozenset({"get_session", "list_sessions", "read", "get_messages", "count", "get_records",
                                   "get_entries", "scan_entries"})
WRITES: frozenset[str] = CONTRACT_METHODS - READS - {"ping"}
GROUPS: dict[str, frozenset[str]] = {"reads": READS, "writes": WRITES, "*": CONTRACT_METHODS}

When = Literal["before", "after"]
ErrorSpec = type[BaseException] | BaseException | Callable[[str], BaseException]


@dataclass(eq=False)
class Fault:
    """One injection rule; see the module docstring. Use it as a context manager to remove it on exit."""

    methods: frozenset[str]
    error: ErrorSpec | None = BackendUnavailable
    when: When = "before"
    delay: float = 0.0
    every: int | None = None
    probability: float | None = None
    skip: int = 0
    times: int | None = None
    #: matching calls seen and injections made by this rule
    seen: int = 0
    fired: int = 0
    _owner: FaultyStore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', got {self.when!r}")
        if self.every is not None and self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        if self.delay < 0 or self.skip < 0 or (self.times is not None and self.times < 0):
            raise ValueError("delay, skip and times must not be negative")

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def _decide(self, rng: random.Random) -> bool:
        """Count one matching call; True when the rule fires on it."""
        self.seen += 1
        if self.spent or self.seen <= self.skip:
            return False
        nth = self.seen - self.skip
        if self.every is not None and nth % self.every:
            return False
        if self.probability is not None and rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def make_error(self, method: str) -> BaseException:
        spec = self.error
        if isinstance(spec, BaseException):
            return spec
        if isinstance(spec, type):
            return spec(f"injected by FaultyStore: {method} ({self.when})")
        assert spec is not None
        return spec(method)

    def __enter__(self) -> Fault:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._owner is not None:
            self._owner.remove(self)


@dataclass
class _Plan:
    delay: float = 0.0
    before: BaseException | None = None
    after: BaseException | None = None


class FaultyStore(PlannedStore):
    """Wraps ``inner`` and injects the faults of its rules into calls of either face. ``seed`` seeds the RNG of
    probabilistic rules. Transparent without rules (it passes the conformance kit)."""

    backend: ClassVar[str] = "faulty"

    def __init__(self, inner: Store, *, seed: int | None = 0) -> None:
        super().__init__(clock=inner.clock, max_message_bytes=inner.max_message_bytes)
        self.inner = inner
        self.backend = inner.backend  # type: ignore[misc]
        # the async face wraps the inner one (native stays native); recall runs in process, as a native engine
        # would bypass the faults, so no native vector index is claimed
        self.capabilities = inner.capabilities - {"vector"}  # type: ignore[misc]
        self.default_ttl = inner.default_ttl  # type: ignore[misc]
        self.recall_engine = None
        self.rules: list[Fault] = []
        #: calls per method (every call, faulted or not), and injections per (method, "before" | "after" | "delay")
        self.calls: Counter[str] = Counter()
        self.injected: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    # -- rules ---------------------------------------------------------------------------------------------------
    def add(self, rule: Fault) -> Fault:
        with self._lock:
            rule._owner = self
            self.rules.append(rule)
        return rule

    def fail(self, methods: str | Iterable[str] = "*", *, error: ErrorSpec = BackendUnavailable,
             when: When = "before", every: int | None = None, probability: float | None = None, skip: int = 0,
             times: int | None = None) -> Fault:
        """Make matching calls raise ``error`` (``when="after"``: after the wrapped store ran them)."""
        return self.add(Fault(self._methods(methods), error, when, 0.0, every, probability, skip, times))

    def delay(self, methods: str | Iterable[str] = "*", seconds: float = 0.05, *, every: int | None = None,
              probability: float | None = None, skip: int = 0, times: int | None = None) -> Fault:
        """Add ``seconds`` of latency to matching calls (``asyncio.sleep`` on the async face)."""
        return self.add(Fault(self._methods(methods), None, "before", seconds, every, probability, skip, times))

    def outage(self, methods: str | Iterable[str] = "*", *, error: ErrorSpec = BackendUnavailable) -> Fault:
        """Every matching call (ping included) fails until the rule is removed (``with faulty.outage(): ...``)."""
        return self.fail(methods, error=error)

    def remove(self, rule: Fault) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def clear_faults(self) -> None:
        """Remove every rule (the counters stay). (``clear`` is the contract's: it clears a session.)"""
        with self._lock:
            self.rules.clear()

    def total(self, kind: str | None = None, method: str | None = None) -> int:
        """Injections so far, of one kind (``"before"``, ``"after"``, ``"delay"``) and/or one method."""
        return sum(n for (m, k), n in self.injected.items()
                   if (kind is None or k == kind) and (method is None or m == method))

    def _methods(self, methods: str | Iterable[str]) -> frozenset[str]:
        names = [methods] if isinstance(methods, str) else list(methods)
        chosen: set[str] = set()
        for name in names:
            if name in GROUPS:
                chosen |= GROUPS[name]
            elif name in CONTRACT_METHODS or callable(getattr(self.inner, name, None)):
                chosen.add(name)
            else:
                raise ValueError(f"{name!r} is neither a store method nor one of {sorted(GROUPS)}")
        return frozenset(chosen)

    def _plan(self, method: str) -> _Plan:
        plan = _Plan()
        with self._lock:
            self.calls[method] += 1
            matching = [r for r in self.rules if method in r.methods]
            for rule in matching:  # delays and failures before the call; the first failing rule wins
                if rule.when != "before" or (plan.before is not None and rule.error is not None):
                    continue
                if not rule._decide(self._rng):
                    continue
                if rule.delay:
                    plan.delay += rule.delay
                    self.injected[(method, "delay")] += 1
                if rule.error is not None:
                    plan.before = rule.make_error(method)
                    self.injected[(method, "before")] += 1
            for rule in matching:  # "after" rules only see calls that reach the wrapped store
                if plan.before is None and plan.after is None and rule.when == "after" and rule._decide(self._rng):
                    plan.after = rule.make_error(method)
                    self.injected[(method, "after")] += 1
        return plan

    # -- the sync face -------------------------------------------------------------------------------------------
    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        plan = self._plan(name)
        if plan.delay:
            time.sleep(plan.delay)
        if plan.before is not None:
            raise plan.before
        result = getattr(self.inner, name)(*args, **kwargs)
        if plan.after is not None:
            raise plan.after
        return result

    def ping(self) -> None:
        self._run("ping")

    def stats(self) -> dict[str, Any]:
        return {**self.inner.stats(), "faults": {f"{m}:{k}": n for (m, k), n in sorted(self.injected.items())}}

    def close(self) -> None:
        self.inner.close()

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def aio(self) -> AsyncStore:
        if self._aio is None:
            self._aio = FaultyAsyncStore(self)
        return self._aio

    def __getattr__(self, name: str) -> Any:
        """Backend extras (``find_messages``, ...) pass through, faulted like the contract's methods."""
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(name, *args, **kwargs)

        return call

    def __repr__(self) -> str:
        return f"<FaultyStore {self.inner!r} rules={len(self.rules)}>"


class FaultyAsyncStore(AsyncStore):
    """``FaultyStore.aio``: the same rules and counters, around the inner store's own async face."""

    _store: FaultyStore

    async def _arun(self, name: str, *args: Any, **kwargs: Any) -> Any:
        store = self._store
        plan = store._plan(name)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if plan.before is not None:
            raise plan.before
        result = await getattr(store.inner.aio, name)(*args, **kwargs)
        if plan.after is not None:
            raise plan.after
        return result

    async def stats(self) -> dict[str, Any]:
        return {**await self._store.inner.aio.stats(), "faults": self._store.stats()["faults"]}

    async def close(self) -> None:
        await self._store.inner.aio.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        getattr(self._store.inner.aio, name)  # AttributeError for what the inner face lacks

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._arun(name, *args, **kwargs)

        return call


__all__ = ["CONTRACT_METHODS", "READS", "WRITES", "Fault", "FaultyAsyncStore", "FaultyStore"]
