"""Plans and the two drivers that run them.

A *plan* is a generator that yields :class:`Q` (one SQL statement and its parameters) and receives the statement's
rows, or yields :data:`BEGIN` / :data:`COMMIT` around statements that must share a transaction. :func:`drive_sync`
runs a plan on a ``psycopg.Connection``, :func:`drive_async` runs the very same plan on an ``AsyncConnection``:
the SQL of every operation is written once (:mod:`memvault.backends.postgres.plans`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg.pq import TransactionStatus

R = TypeVar("R")

@dataclass(frozen=True)
class Q:
    """One statement of a plan. The plan receives its result rows (a list of tuples; empty for no result set)."""

    sql: str
    params: Sequence[Any] | Mapping[str, Any] | None = None
    #: parameters and results in PostgreSQL's binary format: bytea travels as is instead of as hex text (a 1 MiB
    #: value is written ~8x and read ~6x faster)
    binary: bool = False


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: yielded by a plan: the statements until COMMIT run in one transaction (rolled back if anything fails)
BEGIN = _Marker("BEGIN")
COMMIT = _Marker("COMMIT")

Plan = Generator[Any, Any, R]
RETRY = (
    psycopg.errors.UniqueViolation,  # two writers raced to insert the same message id: the retry sees the winner
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


def _owns_transaction(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether a plan run on ``conn`` ends the transaction it works in (not autocommit, none open before)."""
    return not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE


def drive_sync(conn: psycopg.Connection[Any], plan: Plan[R]) -> R:
    """Run ``plan`` on ``conn``; each BEGIN..COMMIT span is one transaction. On a non-autocommit connection the
    plan's work is committed at its end, unless the caller had a transaction open: then it joins that one."""
    stack: list[Any] = []
    send: Any = None
    ours = _owns_transaction(conn)
    try:
        while True:
            try:
                step = plan.send(send)
            except StopIteration as stop:
                result: R = stop.value
                break
            if step is BEGIN:
                tx = conn.transaction()
                tx.__enter__()
                stack.append(tx)
                send = None
            elif step is COMMIT:
                stack.pop().__exit__(None, None, None)
                send = None
            else:
                cur = conn.execute(step.sql, step.params, binary=step.binary)
                send = cur.fetchall() if cur.description is not None else []
        while stack:
            stack.pop().__exit__(None, None, None)
        if ours:
            conn.commit()
        return result
    except BaseException as exc:
        while stack:
            with contextlib.suppress(Exception):
                stack.pop().__exit__(type(exc), exc, exc.__traceback__)
        if ours and not conn.broken:
            with contextlib.suppress(Exception):
                conn.rollback()
        raise
    finally:
        plan.close()


async def drive_async(conn: psycopg.AsyncConnection[Any], plan: Plan[R]) -> R:
    """The async twin of :func:`drive_sync` (same plan, awaited I/O)."""
    stack: list[Any] = []
    send: Any = None
    ours = _owns_transaction(conn)
    try:
        while True:
            try:
                step = plan.send(send)
            except StopIteration as stop:
                result: R = stop.value
                break
            if step is BEGIN:
                tx = conn.transaction()
                await tx.__aenter__()
                stack.append(tx)
                send = None
            elif step is COMMIT:
                await stack.pop().__aexit__(None, None, None)
                send = None
            else:
                cur = await conn.execute(step.sql, step.params, binary=step.binary)
                send = await cur.fetchall() if cur.description is not None else []
        while stack:
            await stack.pop().__aexit__(None, None, None)
        if ours:
            await conn.commit()
        return result
    except BaseException as exc:
        while stack:
            with contextlib.suppress(Exception):
                await stack.pop().__aexit__(type(exc), exc, exc.__traceback__)
        if ours and not conn.broken:
            with contextlib.suppress(Exception):
                await conn.rollback()
        raise
    finally:
        plan.close()


__all__ = ["BEGIN", "COMMIT", "RETRY", "Plan", "Q", "drive_async", "drive_sync"]
