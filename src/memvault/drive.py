"""Run service logic written once against either face of a store.

Service operations are generators: they ``yield Call("append", ...)`` and receive the store's answer (or have the
store's exception thrown back in), or ``yield Emit(value)`` to stream a value out, or ``yield Await(x)`` to have the
async driver await a caller-supplied awaitable (the sync driver throws TypeError back in). :func:`run_sync` /
:func:`run_async` execute the calls on ``store`` or ``store.aio``; :func:`iter_sync` / :func:`iter_async` do the same
and hand out what is emitted. Each store call is timed and logged at DEBUG on the ``memvault`` logger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from memvault.contract import Store

logger = logging.getLogger("memvault")
R = TypeVar("R")
Op = Generator[Any, Any, R]


@dataclass(frozen=True)
class Call:
    """One store method call: ``getattr(store, method)(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Emit:
    """A value a streaming operation hands to its caller."""

    value: Any


@dataclass(frozen=True)
class Await:
    """An awaitable the operation needs the result of (e.g. what an async callback returned): the async drivers
    await it and send the result back; the sync drivers throw TypeError into the operation."""

    awaitable: Any


@dataclass(frozen=True)
class _Done:
    value: Any


class _Stepper:
    """Advances an operation one step at a time, feeding it store results or errors."""

    def __init__(self, store: Store, op: Op[Any]) -> None:
        self.store = store
        self.op = op
        self._send: Any = None
        self._error: BaseException | None = None
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self._started = 0.0

    def advance(self) -> Call | Emit | Await | _Done:
        try:
            if self._error is not None:
                error, self._error = self._error, None
                step = self.op.throw(error)
            else:
                step = self.op.send(self._send)
        except StopIteration as stop:
            return _Done(stop.value)
        self._send = None
        self._started = time.perf_counter()
        return step

    def done(self, call: Call, result: Any) -> None:
        self._send = result
        if self._debug:
            ms = (time.perf_counter() - self._started) * 1000
            where = "/".join(str(a) for a in call.args[:2])
            extra = ""
            if call.method in ("append", "replace") and len(call.args) > 2:
                records = call.args[2]
                extra = f" n={len(records)} bytes={sum(len(r.body) for r in records)}"
            elif isinstance(result, list):
                extra = f" n={len(result)}"
            logger.debug("%s.%s %s%s %.3fms", self.store.backend, call.method, where, extra, ms)

    def failed(self, error: BaseException) -> None:
        self._error = error

    def resolved(self, value: Any) -> None:
        self._send = value

    def refuse(self, step: Await) -> None:
        """The sync drivers cannot await: close the awaitable (no "never awaited" warning) and say so."""
        close = getattr(step.awaitable, "close", None)
        if callable(close):
            close()
        self._error = TypeError("an async callback was given to a sync method; use the a-prefixed async twin")


async def _await(stepper: _Stepper, step: Await) -> None:
    try:
        result = await step.awaitable
    except Exception as exc:
        stepper.failed(exc)
    else:
        stepper.resolved(result)


def iter_sync(store: Store, op: Op[R]) -> Generator[Any, None, R]:
    """Drive ``op`` with the synchronous store, yielding what it emits; the generator returns op's result."""
    stepper = _Stepper(store, op)
    while True:
        step = stepper.advance()
        if isinstance(step, _Done):
            return step.value
        if isinstance(step, Emit):
            yield step.value
            continue
        if isinstance(step, Await):
            stepper.refuse(step)
            continue
        try:
            result = getattr(store, step.method)(*step.args, **step.kwargs)
        except Exception as exc:  # thrown back into the operation, which may handle it
            stepper.failed(exc)
        else:
            stepper.done(step, result)


def run_sync(store: Store, op: Op[R]) -> R:
    """Drive ``op`` to completion with the synchronous store and return its result."""
    steps = iter_sync(store, op)
    try:
        emitted = next(steps)
    except StopIteration as stop:
        return stop.value
    raise TypeError(f"operation emitted {emitted!r}; streaming operations need iter_sync")


async def _step_async(stepper: _Stepper, step: Call) -> None:
    try:
        result = await getattr(stepper.store.aio, step.method)(*step.args, **step.kwargs)
    except Exception as exc:
        stepper.failed(exc)
    else:
        stepper.done(step, result)


async def run_async(store: Store, op: Op[R]) -> R:
    """Drive ``op`` to completion with ``store.aio`` and return its result."""
    stepper = _Stepper(store, op)
    while True:
        step = stepper.advance()
        if isinstance(step, _Done):
            return step.value
        if isinstance(step, Emit):
            raise TypeError(f"operation emitted {step.value!r}; streaming operations need iter_async")
        if isinstance(step, Await):
            await _await(stepper, step)
            continue
        await _step_async(stepper, step)


async def iter_async(store: Store, op: Op[Any]) -> AsyncIterator[Any]:
    """Drive a streaming ``op`` with ``store.aio``, yielding what it emits."""
    stepper = _Stepper(store, op)
    while True:
        step = stepper.advance()
        if isinstance(step, _Done):
            return
        if isinstance(step, Emit):
            yield step.value
            continue
        if isinstance(step, Await):
            await _await(stepper, step)
            continue
        await _step_async(stepper, step)


__all__ = ["Await", "Call", "Emit", "Op", "iter_async", "iter_sync", "run_async", "run_sync"]
