"""Incremental rolling-summary compression, written once as store-call generators (see :mod:`memvault.drive`).

One run = plan (read the latest summary and the unsummarized tail, bounded by the policy's sizes, never the whole
history) -> summarize (previous summary + ONLY the newly overflowed span, outside any store call, with a timeout)
-> commit (store the new summary record if no other run got there first; apply retention). A failing or slow
summarizer changes nothing stored: the span stays raw and the next write retries (with a growing back-off).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from memvault.compression.policy import CompressionPolicy
from memvault.compression.summaries import KIND, Summary, latest_summary
from memvault.compression.summarizers import Summarizer, as_summarizer
from memvault.compression.tokens import TOKENS_KEY, TokenCounter, content_tokens, get_counter, stamp
from memvault.contract import Store
from memvault.drive import Call, Op, run_async, run_sync
from memvault.errors import InvalidPolicy, SummarizerFailed
from memvault.model import Message, from_epoch, utcnow

logger = logging.getLogger("memvault.compression")
PAGE = 64
RECHECK_EVERY = 32  # writes a session may skip planning on its headroom before it is re-read anyway
Notify = Callable[[str, str, str, Any], None]


@dataclass
class Headroom:
    """Not triggered: how many more tokens / messages the unsummarized tail can take before it triggers."""

    tokens: int | None
    messages: int | None


@dataclass
class Plan:
    """What one compression run will fold: the previous summary and the overflowed span (seq order)."""

    namespace: str
    session_id: str
    previous: Summary | None
    span: list[Message]


def _window_size(tail: Sequence[Message], policy: CompressionPolicy, counter: TokenCounter) -> tuple[int, bool]:
    """How many of ``tail`` (newest first) stay verbatim, and whether the window's edge was seen in ``tail``."""
    used = 0
    for i, message in enumerate(tail):
        cost = content_tokens(message, counter)
        if (policy.keep_messages is not None and i >= policy.keep_messages) or (
            policy.keep_tokens is not None and used + cost > policy.keep_tokens
        ):
            w = i
            while w > 0 and tail[w - 1].role == "tool":  # never leave tool results without their call
                w -= 1
            return w, True
        used += cost
    return len(tail), False


def _cap(overflow: list[Message], n: int, complete: bool) -> list[Message]:
    """The oldest ``n`` of ``overflow``, moving the cut so a tool call and its results stay on one side.
    ``complete``: ``overflow`` reaches the window (whose first message is never a tool result)."""
    if len(overflow) <= n:
        return overflow
    cut = n
    while cut < len(overflow) and overflow[cut].role == "tool":
        cut += 1
    if cut == len(overflow) and not complete:  # a run of tool results longer than the slack: cut before the call instead
        cut = n
        while cut > 0 and (overflow[cut].role == "tool" or overflow[cut - 1].tool_calls):
            cut -= 1
    return overflow[:cut]


def plan(
    ns: str, sid: str, policy: CompressionPolicy, counter: TokenCounter, force: bool = False
) -> Op[Plan | Headroom | None]:
    """Decide whether to compress and what. Reads the latest summary, then the tail backwards page by page only
    until the trigger and the window edge are known, then at most ``max_fold_messages`` of the overflow."""
    previous = yield from latest_summary(ns, sid)
    after = previous.end_seq if previous else 0
    tail: list[Message] = []  # newest first
    tokens = 0
    stop: int | None = None
    exhausted = False
    while True:
        page = yield Call("read", (ns, sid), {"start": after + 1, "stop": stop, "last": PAGE})
        for message in reversed(page):
            tail.append(message)
            tokens += content_tokens(message, counter)
        exhausted = len(page) < PAGE
        over_tokens = policy.trigger_tokens is not None and tokens > policy.trigger_tokens
        over_count = policy.trigger_messages is not None and len(tail) > policy.trigger_messages
        triggered = force or over_tokens or over_count
        w, edge_seen = _window_size(tail, policy, counter)
        if exhausted or (triggered and edge_seen and len(tail) > w):
            break
        stop = page[0].seq
    if not triggered:  # the loop only ends untriggered once it has read the whole unsummarized tail
        return Headroom(
            None if policy.trigger_tokens is None else policy.trigger_tokens - tokens,
            None if policy.trigger_messages is None else policy.trigger_messages - len(tail),
        )
    if w >= len(tail):
        return None
    window_start = tail[w - 1].seq if w else None
    if exhausted:
        overflow = list(reversed(tail[w:]))
    else:  # the overflow starts before what the tail read saw: read its oldest part, a little past the cap
        overflow = yield Call(
            "read", (ns, sid), {"start": after + 1, "stop": window_start, "limit": policy.max_fold_messages + 16}
        )
    complete = exhausted or len(overflow) < policy.max_fold_messages + 16
    span = _cap(overflow, policy.max_fold_messages, complete)
    if w == 0 and len(span) == len(overflow):
        # the span reaches the newest message: a trailing tool exchange may still be receiving results
        while span and (span[-1].role == "tool" or span[-1].tool_calls):
            span.pop()
    if not span:
        return None
    return Plan(ns, sid, previous, list(span))


def commit(
    plan_: Plan,
    text: str,
    summarizer_id: str,
    policy: CompressionPolicy,
    counter: TokenCounter,
    now: float,
    notify: Notify | None = None,
) -> Op[Summary | None]:
    """Store the new rolling summary unless another run stored one since ``plan_`` was made; apply retention."""
    ns, sid = plan_.namespace, plan_.session_id
    current = yield from latest_summary(ns, sid)
    expected = plan_.previous.key if plan_.previous else None
    if (current.key if current else None) != expected:
        logger.debug("compression of %s/%s skipped: a concurrent run stored a summary first", ns, sid)
        return None
    previous = plan_.previous
    summary = Summary(
        text=text,
        start_seq=previous.start_seq if previous else plan_.span[0].seq or 0,
        end_seq=plan_.span[-1].seq or 0,
        summarizer=summarizer_id,
        tokens=counter.count(text),
        encoding=counter.name,
        message_count=(previous.message_count if previous else 0) + len(plan_.span),
        created_at=utcnow(),
        previous=expected,
    )
    yield Call("put_record", (ns, sid, KIND, summary.key, summary.to_record()))
    logger.info(
        "summarized %s/%s seq %d..%d (%d new messages) into %d tokens with %s",
        ns, sid, summary.start_seq, summary.end_seq, len(plan_.span), summary.tokens, summarizer_id,
    )
    if policy.retention is not None and policy.retention.delete_after_days is not None:
        yield from apply_retention(ns, sid, summary.end_seq, policy, now, notify)
    return summary


def apply_retention(
    ns: str, sid: str, covered_to: int, policy: CompressionPolicy, now: float, notify: Notify | None
) -> Op[int]:
    """Delete raw messages covered by a summary (seq <= ``covered_to``) and older than the retention age."""
    retention = policy.retention
    assert retention is not None and retention.delete_after_days is not None
    cutoff = from_epoch(now) - timedelta(days=retention.delete_after_days)
    deleted = 0
    start = 0
    while True:
        page = yield Call("read", (ns, sid), {"start": start, "stop": covered_to + 1, "limit": retention.batch})
        old = [m.id for m in page if m.created_at < cutoff]
        if old:
            deleted += (yield Call("delete_messages", (ns, sid, old)))
            if notify is not None:
                notify("delete_messages", ns, sid, old)
        if len(page) < retention.batch:
            break
        start = (page[-1].seq or 0) + 1
    if deleted:
        logger.info("retention deleted %d summarized messages of %s/%s", deleted, ns, sid)
    return deleted


# -- running a summarizer with a timeout, from sync or async callers ---------------------------------------------


def _in_daemon_thread(fn: Callable[[], str]) -> concurrent.futures.Future[str]:
    """Run ``fn`` in a daemon thread: a summarizer that hangs past its timeout is abandoned, never joined."""
    future: concurrent.futures.Future[str] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=target, name="memvault-summarizer", daemon=True).start()
    return future


def _check_text(text: Any, summarizer: Summarizer) -> str:
    if not isinstance(text, str):
        raise TypeError(f"summarizer {summarizer.id} returned {type(text).__name__}, not str")
    return text.strip()


class Compressor:
    """Runs a :class:`CompressionPolicy` for sessions: after writes (inline or background) and on demand."""

    def __init__(self, policy: CompressionPolicy) -> None:
        if not isinstance(policy, CompressionPolicy):
            raise InvalidPolicy(f"compress= takes a CompressionPolicy, got {type(policy).__name__}")
        self.policy = policy
        self.counter = get_counter(policy.model)
        self.summarizer = as_summarizer(policy.summarizer, prompt=policy.prompt)
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, str], Any] = {}
        self._backoff: dict[tuple[str, str], tuple[int, int]] = {}  # key -> (failures, writes to skip)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        #: key -> (tokens left, messages left, writes skipped): lets writes skip planning while far from the trigger
        self._headroom: dict[tuple[str, str], tuple[int | None, int | None, int]] = {}

    def prepare(self, messages: Sequence[Message], key: tuple[str, str] | None = None) -> None:
        """Stamp token counts into messages about to be stored (counted once, here) and spend the session's
        known headroom with them."""
        stamp(messages, self.counter)
        if key is None:
            return
        with self._lock:
            room = self._headroom.get(key)
            if room is not None:
                tokens = sum(m.extras[TOKENS_KEY][self.counter.name] for m in messages)
                left_t, left_m, skipped = room
                self._headroom[key] = (
                    None if left_t is None else left_t - tokens,
                    None if left_m is None else left_m - len(messages),
                    skipped,
                )

    def _run_plan_result(self, key: tuple[str, str], result: Plan | Headroom | None) -> Plan | None:
        with self._lock:
            if isinstance(result, Headroom):
                self._headroom[key] = (result.tokens, result.messages, 0)
                return None
            self._headroom.pop(key, None)
        return result

    # -- one run --------------------------------------------------------------------------------------------------
    def _summarize(self, plan_: Plan) -> str:
        previous = plan_.previous.text if plan_.previous else None
        timeout = self.policy.timeout
        try:
            if timeout is None:
                return _check_text(self.summarizer.summarize(previous, plan_.span), self.summarizer)
            future = _in_daemon_thread(lambda: self.summarizer.summarize(previous, plan_.span))
            return _check_text(future.result(timeout=timeout), self.summarizer)
        except concurrent.futures.TimeoutError:
            raise SummarizerFailed(f"summarizer {self.summarizer.id} timed out after {timeout}s") from None
        except Exception as exc:
            raise SummarizerFailed(f"summarizer {self.summarizer.id} failed: {exc!r}") from exc

    async def _asummarize(self, plan_: Plan) -> str:
        previous = plan_.previous.text if plan_.previous else None
        timeout = self.policy.timeout
        native = getattr(self.summarizer, "asummarize", None)
        try:
            if native is not None and getattr(self.summarizer, "acall", True) is not None:
                result = await asyncio.wait_for(native(previous, plan_.span), timeout)
            else:
                future = _in_daemon_thread(lambda: self.summarizer.summarize(previous, plan_.span))
                result = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
            return _check_text(result, self.summarizer)
        except asyncio.TimeoutError:
            raise SummarizerFailed(f"summarizer {self.summarizer.id} timed out after {timeout}s") from None
        except Exception as exc:
            raise SummarizerFailed(f"summarizer {self.summarizer.id} failed: {exc!r}") from exc

    def compress(self, store: Store, ns: str, sid: str, *, force: bool = False,
                 notify: Notify | None = None) -> Summary | None:
        """One compression run; None when nothing needed folding. Raises SummarizerFailed (nothing stored)."""
        plan_ = self._run_plan_result((ns, sid), run_sync(store, plan(ns, sid, self.policy, self.counter, force)))
        if plan_ is None:
            return None
        text = self._summarize(plan_)
        return run_sync(store, commit(plan_, text, self.summarizer.id, self.policy, self.counter, store.clock(), notify))

    async def acompress(self, store: Store, ns: str, sid: str, *, force: bool = False,
                        notify: Notify | None = None) -> Summary | None:
        result = await run_async(store, plan(ns, sid, self.policy, self.counter, force))
        plan_ = self._run_plan_result((ns, sid), result)
        if plan_ is None:
            return None
        text = await self._asummarize(plan_)
        return await run_async(store, commit(plan_, text, self.summarizer.id, self.policy, self.counter, store.clock(), notify))

    # -- after a write --------------------------------------------------------------------------------------------
    def _due(self, key: tuple[str, str]) -> bool:
        with self._lock:
            if key in self._inflight:
                return False
            failures, skip = self._backoff.get(key, (0, 0))
            if skip > 0:
                self._backoff[key] = (failures, skip - 1)
                return False
            room = self._headroom.get(key)
            if room is not None:
                left_t, left_m, skipped = room
                # still under the trigger by our own count; re-plan now and then anyway, since other processes
                # may write to the same session
                if (left_t is None or left_t >= 0) and (left_m is None or left_m >= 0) and skipped < RECHECK_EVERY:
                    self._headroom[key] = (left_t, left_m, skipped + 1)
                    return False
            return True

    def _failed(self, key: tuple[str, str], error: BaseException) -> None:
        with self._lock:
            failures = self._backoff.get(key, (0, 0))[0] + 1
            skip = min(2 ** (failures - 1) - 1, 31)  # retry on the next write, then after 1, 3, 7, ... 31 writes
            self._backoff[key] = (failures, skip)
        logger.warning("compression of %s/%s failed (%s); the messages stay raw, retrying after %d more write(s)",
                       key[0], key[1], error, skip)

    def _succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._backoff.pop(key, None)

    def _guarded(self, store: Store, key: tuple[str, str], notify: Notify | None) -> Summary | None:
        try:
            result = self.compress(store, *key, notify=notify)
        except Exception as exc:
            self._failed(key, exc)
            return None
        finally:
            with self._lock:
                self._inflight.pop(key, None)
        self._succeeded(key)
        return result

    async def _aguarded(self, store: Store, key: tuple[str, str], notify: Notify | None) -> Summary | None:
        try:
            result = await self.acompress(store, *key, notify=notify)
        except Exception as exc:
            self._failed(key, exc)
            return None
        finally:
            with self._lock:
                self._inflight.pop(key, None)
        self._succeeded(key)
        return result

    def after_write(self, store: Store, ns: str, sid: str, notify: Notify | None = None) -> None:
        """Compress if due; failures are logged and retried later, never raised into the write."""
        key = (ns, sid)
        if not self._due(key):
            return
        if not self.policy.background:
            with self._lock:
                self._inflight[key] = True
            self._guarded(store, key, notify)
            return
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="memvault-compress")
            self._inflight[key] = True  # before submit: a fast run may finish (and pop it) before submit returns
        future = self._executor.submit(self._guarded, store, key, notify)
        with self._lock:
            if key in self._inflight:
                self._inflight[key] = future

    async def aafter_write(self, store: Store, ns: str, sid: str, notify: Notify | None = None) -> None:
        key = (ns, sid)
        if not self._due(key):
            return
        with self._lock:
            self._inflight[key] = True
        if not self.policy.background:
            await self._aguarded(store, key, notify)
            return
        task = asyncio.get_running_loop().create_task(self._aguarded(store, key, notify))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def wait(self, timeout: float | None = None) -> None:
        """Block until background runs submitted from sync code have finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [f for f in self._inflight.values() if isinstance(f, concurrent.futures.Future)]
            if not pending:
                return
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            concurrent.futures.wait(pending, timeout=left)
            if deadline is not None and time.monotonic() >= deadline:
                return

    async def await_background(self) -> None:
        """Await background runs started from async code."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def compressor_for(memory: Any, policy: CompressionPolicy) -> Compressor:
    """The one Compressor of ``policy`` on ``memory``: handles opened per request share back-off and in-flight state."""
    cache: dict[int, Compressor] = memory.__dict__.setdefault("_memvault_compressors", {})
    found = cache.get(id(policy))
    if found is None or found.policy is not policy:
        found = cache[id(policy)] = Compressor(policy)
    return found


__all__ = ["Compressor", "Headroom", "Plan", "compressor_for", "apply_retention", "commit", "plan"]
