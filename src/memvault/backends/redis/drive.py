"""Commands, batches and the two drivers.

An operation of the Redis backend is a *plan*: a generator that yields a batch of commands (one round trip,
pipelined) or a :class:`Scan`, and receives the replies. :func:`run_sync` executes it with a ``redis.Redis`` /
``RedisCluster`` client, :func:`run_async` with their ``redis.asyncio`` twins: every operation is written once
(:mod:`.plans`).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError

from memvault.backends.redis.scripts import Script


@dataclass(frozen=True)
class Eval:
    """One script call: EVALSHA first, EVAL (which also caches the script) on NOSCRIPT."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    #: in a batch, hand this command's error back as its reply instead of failing the batch (listings: one damaged
    #: session must not hide the others)
    tolerant: bool = False

    def wire(self, cached: bool = True) -> tuple[Any, ...]:
        head = ("EVALSHA", self.script.sha) if cached else ("EVAL", self.script.source)
        return (*head, len(self.keys), *self.keys, *self.args)


@dataclass(frozen=True)
class Scan:
    """All keys matching a glob (maintenance only: purge, stats)."""

    match: str


Command = Eval | tuple[Any, ...]
Batch = list[Command]
#: a plan: yields a Batch (one round trip) or a Scan, receives the list of replies / keys
Plan = Generator[Any, Any, Any]

UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.InvalidResponse,  # something that is not Redis answers at that address
    RedisClusterException,
    OSError,
)
UNAVAILABLE_REPLIES = ("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "OOM", "READONLY", "NOAUTH", "WRONGPASS")


def _wire(command: Command, cached: bool = True) -> tuple[Any, ...]:
    return command.wire(cached) if isinstance(command, Eval) else command


def _failed(exc: BaseException, command: Command) -> BaseException:
    """``exc`` tagged with the keys of the command that raised it (so errors can name the session)."""
    if isinstance(command, Eval):
        exc.memvault_keys = command.keys  # type: ignore[attr-defined]
    return exc


def _settle(command: Command, result: Any) -> Any:
    if isinstance(result, Exception):
        if isinstance(command, Eval) and command.tolerant and isinstance(result, ResponseError):
            return _failed(result, command)
        raise _failed(result, command)
    return result


def run_sync(client: Any, plan: Plan) -> Any:
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Scan):
            reply = [as_text(key) for key in client.scan_iter(match=step.match, count=1000)]
        elif len(step) == 1:
            reply = [_one_sync(client, step[0])]
        else:
            pipe = client.pipeline(transaction=False)
            for command in step:
                pipe.execute_command(*_wire(command))
            reply = pipe.execute(raise_on_error=False)
            for i, result in enumerate(reply):
                if isinstance(result, NoScriptError):
                    try:
                        result = client.execute_command(*_wire(step[i], cached=False))
                    except ResponseError as exc:
                        result = exc
                reply[i] = _settle(step[i], result)


def _one_sync(client: Any, command: Command) -> Any:
    try:
        try:
            return client.execute_command(*_wire(command))
        except NoScriptError:
            return client.execute_command(*_wire(command, cached=False))
    except ResponseError as exc:
        return _settle(command, exc)


async def run_async(client: Any, plan: Plan) -> Any:
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration as stop:
            return stop.value
        if isinstance(step, Scan):
            reply = [as_text(key) async for key in client.scan_iter(match=step.match, count=1000)]
        elif len(step) == 1:
            reply = [await _one_async(client, step[0])]
        else:
            pipe = client.pipeline(transaction=False)
            for command in step:
                pipe.execute_command(*_wire(command))
            reply = await pipe.execute(raise_on_error=False)
            for i, result in enumerate(reply):
                if isinstance(result, NoScriptError):
                    try:
                        result = await client.execute_command(*_wire(step[i], cached=False))
                    except ResponseError as exc:
                        result = exc
                reply[i] = _settle(step[i], result)


async def _one_async(client: Any, command: Command) -> Any:
    try:
        try:
            return await client.execute_command(*_wire(command))
        except NoScriptError:
            return await client.execute_command(*_wire(command, cached=False))
    except ResponseError as exc:
        return _settle(command, exc)


def as_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def lua_num(value: float) -> str:
    return repr(float(value))


def escape_tag(part: str) -> str:
    return part.replace("\\", "\\\\").replace("{", "\\(").replace("}", "\\)")


def unescape_tag(part: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"\\": "\\", "(": "{", ")": "}"}[m.group(1)], part)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def pairs(flat: Sequence[Any]) -> list[tuple[Any, Any]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


__all__ = ["UNAVAILABLE", "UNAVAILABLE_REPLIES", "Batch", "Command", "Eval", "Plan", "Scan", "run_async", "run_sync"]
