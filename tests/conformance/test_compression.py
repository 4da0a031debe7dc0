"""Compression on every backend: summaries are records any store keeps, raw history stays, context fits the budget."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from memvault import Message
from memvault.compression import CompressionPolicy, RetentionPolicy
from memvault.compression.tokens import TOKENS_KEY


class Recorder:
    id = "recorder"

    def __init__(self):
        self.calls = []

    def summarize(self, previous, messages):
        seqs = [m.seq for m in messages]
        self.calls.append((previous, seqs))
        return f"{previous + ' + ' if previous else ''}[{seqs[0]}..{seqs[-1]}] " + " ".join(m.text for m in messages)


def test_compression_keeps_raw_history_and_stores_incremental_summaries(mem):
    rec = Recorder()
    s = mem.session("c", compress=CompressionPolicy(trigger_messages=8, keep_messages=3, summarizer=rec))
    texts = [f"message {i}: Bob paid {i * 3} euros on May {i + 1}" for i in range(20)]
    for t in texts:
        s.add("user", t)
    assert [m.text for m in s.messages()] == texts  # nothing lost, order kept
    assert all(TOKENS_KEY in m.extras for m in s.messages())  # counts stored with the messages
    summaries = s.summaries()
    assert [(x.start_seq, x.end_seq) for x in summaries] == [(1, 6), (1, 12)]
    assert rec.calls == [(None, [1, 2, 3, 4, 5, 6]), (summaries[0].text, [7, 8, 9, 10, 11, 12])]
    latest = s.summaries(last=1)[0]
    assert latest == summaries[-1] and latest.previous == summaries[0].key and latest.message_count == 12
    # a new Memory on the same store reads the same summaries back (they are stored, not cached)
    assert mem.session("c").summaries() == summaries


def test_context_on_every_backend_is_within_budget_and_ends_with_the_newest(mem):
    s = mem.session("ctx", compress=CompressionPolicy(trigger_tokens=400, keep_tokens=120))
    for i in range(80):
        s.add("user" if i % 2 == 0 else "assistant", f"turn {i}: Carol chose the {i}th option on 2023-06-{i % 28 + 1:02d}")
    summary = s.summaries(last=1)[0]
    for budget in (0, 1, 30, 150, 500, 2000):
        ctx = mem.context("ctx", budget_tokens=budget, model="gpt-4o")
        assert ctx.tokens <= budget
        window = [m for m in ctx.messages if m.role != "system"]
        if window:
            assert window[-1].text.startswith("turn 79:")
            assert [m.seq for m in window] == list(range(window[0].seq, window[-1].seq + 1))
            if window[0].seq <= summary.end_seq:  # the window reaches into summarized turns only after all newer ones
                assert ctx.parts["window"].detail["overlaps_summary"] == summary.end_seq - window[0].seq + 1
    assert ctx.parts["summary"].messages == 1 and ctx.messages[0].text.count("Carol") >= 1


def test_clear_and_replace_drop_summaries_of_the_old_history(mem):
    s = mem.session("cr", compress=CompressionPolicy(trigger_messages=4, keep_messages=1))
    for i in range(6):
        s.add("user", f"On Monday Dan booked flight {i}")
    assert s.summaries()
    s.replace([Message("user", "a fresh start on Friday with Eve")])
    assert s.summaries() == []
    assert [m.text for m in s.messages()] == ["a fresh start on Friday with Eve"]
    for i in range(6):
        s.add("user", f"On Tuesday Eve booked hotel {i}")
    assert s.summaries()
    s.clear()
    assert s.summaries() == [] and s.messages() == []
    assert mem.context("cr", budget_tokens=100).messages == []


def test_retention_deletes_old_summarized_messages_only(make_memory, clock):
    mem = make_memory(clock=clock)
    policy = CompressionPolicy(trigger_messages=5, keep_messages=2, retention=RetentionPolicy(delete_after_days=7))
    s = mem.session("ret", compress=policy)
    now = datetime.fromtimestamp(clock(), timezone.utc)
    s.extend([Message("user", f"old note {i} from March", created_at=now - timedelta(days=10)) for i in range(3)])
    s.extend([Message("user", f"recent note {i} from today", created_at=now) for i in range(3)])
    assert s.summaries(last=1)[0].end_seq == 4
    assert [m.text for m in s.messages()] == [f"recent note {i} from today" for i in range(3)]


async def test_async_compression_and_context(mem):
    s = mem.session("as", compress=CompressionPolicy(trigger_messages=6, keep_messages=2))
    for i in range(10):
        await s.aadd("user", f"Frank moved to Oslo in {2000 + i}")
    assert len(await s.amessages()) == 10
    summaries = await s.asummaries()
    assert summaries and summaries[-1].end_seq >= 5
    assert "Oslo" in summaries[-1].text
    ctx = await mem.acontext("as", budget_tokens=120)
    assert ctx.tokens <= 120 and ctx.messages[-1].text == "Frank moved to Oslo in 2009"
