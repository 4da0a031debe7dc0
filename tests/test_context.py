"""Context assembly: never over budget (adversarial sizes), parts add up, bounded reads, recall when present."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvault import Memory, Message
from memvault.compression import CompressionPolicy, get_counter
from memvault.compression.tokens import MESSAGE_OVERHEAD, message_text
from memvault.errors import InvalidPolicy


def recount(ctx, model="gpt-4o") -> int:
    """The context's size counted from scratch (no cached or stamped counts)."""
    counter = get_counter(model)
    return sum(MESSAGE_OVERHEAD + counter.count(message_text(m)) for m in ctx.messages)


def check(ctx, budget, model="gpt-4o"):
    assert ctx.tokens <= budget
    assert recount(ctx, model) == ctx.tokens
    assert sum(p.tokens for name, p in ctx.parts.items() if name != "unused") == ctx.tokens
    assert ctx.parts["unused"].tokens == budget - ctx.tokens


@pytest.mark.parametrize("budget", [0, 1, 2, 5, 2000])
def test_empty_and_unknown_sessions(budget):
    mem = Memory("memory://")
    ctx = mem.context("nobody", budget_tokens=budget, model="gpt-4o")
    assert ctx.messages == [] and ctx.tokens == 0
    check(ctx, budget)


@pytest.mark.parametrize("budget", [0, 1, 3, 4])
def test_tiny_budgets_give_nothing(budget):
    mem = Memory("memory://")
    mem.session("s").extend([Message("user", "hello there"), Message("assistant", "hi")])
    ctx = mem.context("s", budget_tokens=budget)
    assert ctx.messages == []
    check(ctx, budget)


@pytest.mark.parametrize("budget", [10, 50, 300, 2000])
def test_one_huge_message(budget):
    mem = Memory("memory://")
    s = mem.session("s")
    s.add("user", "older question")
    huge = s.add("user", "Paris in May. " * 20_000)  # ~100K tokens
    ctx = mem.context("s", budget_tokens=budget, model="gpt-4o")
    check(ctx, budget)
    if budget < 20:  # too small to show a useful head of the message: nothing rather than a stub
        assert ctx.messages == []
        return
    assert len(ctx.messages) == 1
    shown = ctx.messages[0]
    assert shown.id == huge.id and shown.seq == huge.seq and shown.text.startswith("Paris in May.")
    assert shown.metadata["memvault"]["truncated"] and ctx.parts["window"].detail["truncated"]
    assert s.messages(last=1)[0].text == huge.text  # the stored message is untouched


def _summarized_session(mem, n=60, words=12):
    policy = CompressionPolicy(trigger_messages=20, keep_messages=5)
    s = mem.session("s", compress=policy)
    for i in range(n):
        s.add("user" if i % 2 == 0 else "assistant",
              f"On May {i % 28 + 1} 2023 Alice decided item {i} costs {i * 7} dollars " + "and more " * words)
    return s


@pytest.mark.parametrize("budget", [5, 20, 40, 80, 150, 400, 1000, 5000])
def test_budget_smaller_than_summary_and_every_size_around_it(budget):
    mem = Memory("memory://")
    s = _summarized_session(mem)
    summary = s.summaries(last=1)[0]
    assert summary.tokens > 150  # the summary alone is larger than several of the budgets
    ctx = mem.context("s", budget_tokens=budget, model="gpt-4o")
    check(ctx, budget)
    part = ctx.parts["summary"]
    assert part.detail["end_seq"] == summary.end_seq
    if part.messages:
        first = ctx.messages[0]
        assert first.role == "system" and first.text.startswith("Summary of the earlier conversation")
    window = [m for m in ctx.messages if m.role != "system"]
    if window:
        assert window[-1].seq == 60  # the newest message is always there when anything is
        if any(m.seq <= summary.end_seq for m in window):  # reaching into summarized turns only once all newer fit
            assert window[0].seq <= summary.end_seq + 1
            assert ctx.parts["window"].detail["overlaps_summary"] == sum(m.seq <= summary.end_seq for m in window)
        assert [m.seq for m in window] == list(range(window[0].seq, 61))  # contiguous


def test_parts_order_and_default_shares():
    mem = Memory("memory://")
    _summarized_session(mem, n=200)
    ctx = mem.context("s", budget_tokens=2000, model="gpt-4")
    assert ctx.encoding == "cl100k_base"
    check(ctx, 2000, "gpt-4")
    assert list(ctx.parts) == ["summary", "window", "unused"]  # no query: no recall part
    assert ctx.messages[0].id.startswith("summary:")
    assert ctx.parts["summary"].tokens <= 2000 * 0.3 + 1 or ctx.parts["window"].detail["first_seq"] == 195
    assert ctx.as_dicts()[0]["role"] == "system"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 400), min_size=0, max_size=40),
    budget=st.integers(0, 1500),
    compress=st.booleans(),
    tools=st.booleans(),
)
def test_never_over_budget_property(sizes, budget, compress, tools):
    mem = Memory("memory://")
    policy = CompressionPolicy(trigger_tokens=300, keep_tokens=100) if compress else None
    s = mem.session("p", compress=policy)
    for i, size in enumerate(sizes):
        if tools and i % 5 == 3:
            s.add("assistant", "", tool_calls=[{"id": f"t{i}", "name": "f", "args": {}}])
            s.add("tool", "r " * size, tool_call_id=f"t{i}")
        else:
            s.add("user", "w " * size)
    ctx = mem.context("p", budget_tokens=budget, model="gpt-4o")
    check(ctx, budget)
    window = [m for m in ctx.messages if not m.id.startswith(("summary:", "recall:"))]
    if window:
        assert window[0].role != "tool"


def test_reads_do_not_grow_with_history():
    """Structural check (not timing): the number of messages read per call is the same at 100 and 3,000."""

    def messages_read(n: int) -> tuple[int, int]:
        mem = Memory("memory://")
        policy = CompressionPolicy(trigger_tokens=1000, keep_tokens=300, max_fold_messages=10_000)
        s = mem.session("s", compress=policy)
        s.extend([Message("user", f"turn {i} with a few words") for i in range(n)])
        assert s.summaries(last=1)[0].end_seq > n - 60
        store = mem.store
        counted = {"messages": 0, "calls": 0}
        original = store.read

        def read(*args, **kwargs):
            out = original(*args, **kwargs)
            counted["messages"] += len(out)
            counted["calls"] += 1
            return out

        store.read = read
        mem.context("s", budget_tokens=500)
        return counted["messages"], counted["calls"]

    small, large = messages_read(300), messages_read(3000)
    assert small == large
    assert small[0] <= 64


@dataclass
class FakeHit:
    message: Message
    score: float


class RecallingMemory(Memory):
    """A Memory whose recall returns the stored messages containing the query's first word."""

    def recall(self, query, *, session=None, namespace=None, k=10, **_):
        word = query.split()[0].lower()
        found = [m for m in self.session(session, namespace=namespace).messages() if word in m.text.lower()]
        return [FakeHit(m, 1.0 / (i + 1)) for i, m in enumerate(found[:k])]

    async def arecall(self, query, **kwargs):
        return self.recall(query, **kwargs)


async def test_recall_part_is_filled_deduplicated_and_within_budget():
    mem = RecallingMemory("memory://")
    s = mem.session("s")
    s.add("user", "My zebra is named Stripes and she likes carrots.")
    s.extend([Message("user", f"filler turn {i} " + "blah " * 20) for i in range(100)])
    s.add("user", "Tell me about my zebra please.")
    ctx = mem.context("s", query="zebra", budget_tokens=600, model="gpt-4o")
    check(ctx, 600)
    assert list(ctx.parts) == ["recall", "window", "unused"]
    recall_msg = ctx.messages[0]
    assert recall_msg.role == "system" and "Stripes" in recall_msg.text
    assert "Tell me about my zebra" not in recall_msg.text  # in the window already: not repeated
    assert ctx.parts["recall"].messages == 1 and ctx.parts["recall"].detail["hits"] == 2
    actx = await mem.acontext("s", query="zebra", budget_tokens=600, model="gpt-4o")
    assert [m.text for m in actx.messages] == [m.text for m in ctx.messages]


def test_failing_recall_degrades_to_summary_and_window(caplog):
    class Broken(Memory):
        def recall(self, *a, **k):
            raise RuntimeError("index offline")

    mem = Broken("memory://")
    mem.session("s").add("user", "hello")
    with caplog.at_level(logging.WARNING, logger="memvault"):
        ctx = mem.context("s", query="hello", budget_tokens=100)
    assert [m.text for m in ctx.messages] == ["hello"]
    assert "index offline" in caplog.text


def test_real_recall_when_installed():
    mem = Memory("memory://", embedder="hash")
    if not callable(getattr(mem, "recall", None)):
        pytest.skip("recall is not part of this build")
    s = mem.session("s")
    s.add("user", "I adopted a greyhound called Pixel in March.")
    s.extend([Message("user", f"unrelated chatter number {i} about the weather") for i in range(80)])
    ctx = mem.context("s", query="greyhound Pixel", budget_tokens=400)
    check(ctx, 400)
    assert "recall" in ctx.parts
    assert any("Pixel" in m.text for m in ctx.messages)


def test_bad_arguments_are_typed_errors():
    mem = Memory("memory://")
    for bad in (-1, 1.5, "100", None, True):
        with pytest.raises(InvalidPolicy):
            mem.context("s", budget_tokens=bad)
    with pytest.raises(InvalidPolicy):
        mem.context("s", budget_tokens=10, summary_share=0.8, recall_share=0.5)
    with pytest.raises(InvalidPolicy):
        mem.context("s", budget_tokens=10, recall_k=0)


async def test_async_twin_matches_sync():
    mem = Memory("memory://")
    _summarized_session(mem)
    a = await mem.acontext("s", budget_tokens=700)
    b = mem.context("s", budget_tokens=700)
    assert [m.text for m in a.messages] == [m.text for m in b.messages] and a.tokens == b.tokens
    sa = mem.session("s")
    assert (await sa.acontext(budget_tokens=700)).tokens == sa.context(budget_tokens=700).tokens
