"""Compression policy: incremental folding, failures that lose nothing, tool pairs kept whole, summarizer adapters."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field

import pytest

from memvault import Memory, Message
from memvault.compression import CompressionPolicy, ExtractiveSummarizer, RetentionPolicy, as_summarizer
from memvault.compression.summarizers import DEFAULT_PROMPT, sentence_score
from memvault.errors import InvalidPolicy, SummarizerFailed


@dataclass
class Recorder:
    """A summarizer that records what it was given and returns a checkable fold."""

    calls: list[tuple[str | None, list[int]]] = field(default_factory=list)
    id: str = "recorder"

    def summarize(self, previous, messages):
        self.calls.append((previous, [m.seq for m in messages]))
        seqs = [m.seq for m in messages]
        return f"{previous + ' + ' if previous else ''}[{seqs[0]}..{seqs[-1]}]"


def fill(session, n, start=0, words=10):
    return session.extend(
        [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "word " * words) for i in range(start, start + n)]
    )


def test_second_summary_folds_previous_summary_and_only_the_new_span():
    rec = Recorder()
    policy = CompressionPolicy(trigger_messages=10, keep_messages=4, summarizer=rec)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    for i in range(11):
        s.add("user", f"m{i}")
    assert rec.calls == [(None, list(range(1, 8)))]  # 11 > 10: fold all but the newest 4
    first = s.summaries()[-1]
    assert (first.start_seq, first.end_seq, first.text) == (1, 7, "[1..7]")
    for i in range(11, 18):
        s.add("user", f"m{i}")
    # the second run sees the previous summary and only seqs 8.. (never 1..7 again)
    assert rec.calls[1] == ("[1..7]", list(range(8, 15)))
    second = s.summaries()[-1]
    assert (second.start_seq, second.end_seq) == (1, 14)  # covers the union
    assert second.text == "[1..7] + [8..14]"
    assert second.previous == first.key and second.message_count == 14
    assert second.summarizer == "recorder" and second.tokens > 0 and second.encoding == "o200k_base"
    assert [x.end_seq for x in s.summaries()] == [7, 14]
    assert [m.seq for m in s.messages()] == list(range(1, 19))  # raw history intact


def test_token_trigger_and_token_window():
    rec = Recorder()
    policy = CompressionPolicy(trigger_tokens=200, keep_tokens=60, summarizer=rec, model="gpt-4o")
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    fill(s, 3, words=10)  # ~12 tokens each: under the trigger
    assert rec.calls == []
    for i in range(3, 30):
        s.add("user", f"turn {i} " + "word " * 10)
    assert rec.calls, "never triggered"
    summary = s.summaries(last=1)[0]
    unsummarized = s.messages(start=summary.end_seq + 1)
    assert sum(len(m.text.split()) for m in unsummarized) < 200  # the window stays under the trigger


def test_failing_summarizer_loses_nothing_logs_and_retries(caplog):
    state = {"fail": True, "calls": 0}

    def flaky(prompt: str) -> str:
        state["calls"] += 1
        if state["fail"]:
            raise RuntimeError("LLM down")
        return "summary text"

    policy = CompressionPolicy(trigger_messages=5, keep_messages=2, summarizer=flaky)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    with caplog.at_level("WARNING", logger="memvault"):
        for i in range(8):
            s.add("user", f"m{i}")  # the write itself never fails
    assert "LLM down" in caplog.text and "stay raw" in caplog.text
    assert s.summaries() == []
    assert [m.text for m in s.messages()] == [f"m{i}" for i in range(8)]
    with pytest.raises(SummarizerFailed, match="LLM down"):
        s.compress()  # an explicit run reports the failure
    assert s.summaries() == []
    state["fail"] = False
    for i in range(8, 20):  # retried on later writes (after a bounded back-off)
        s.add("user", f"m{i}")
    assert s.summaries(), "never retried"
    assert s.summaries()[-1].text == "summary text"
    assert len(s.messages()) == 20


def test_hanging_summarizer_times_out_and_loses_nothing(caplog):
    release = threading.Event()

    def hang(prompt: str) -> str:
        release.wait(5)
        return "too late"

    policy = CompressionPolicy(trigger_messages=3, keep_messages=1, summarizer=hang, timeout=0.2)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="memvault"):
        for i in range(4):
            s.add("user", f"m{i}")
    assert time.monotonic() - started < 3
    assert "timed out" in caplog.text
    release.set()
    assert s.summaries() == []
    assert len(s.messages()) == 4
    with pytest.raises(SummarizerFailed, match="timed out"):
        asyncio.run(_acompress_hang(s, release))


async def _acompress_hang(s, release):
    release.clear()
    try:
        await s.acompress()
    finally:
        release.set()


def _random_history(rng: random.Random, n: int) -> list[Message]:
    out: list[Message] = []
    while len(out) < n:
        roll = rng.random()
        if roll < 0.25:
            k = rng.randint(1, 3)
            calls = [{"id": f"c{len(out)}_{j}", "name": "lookup", "args": {"q": "x"}} for j in range(k)]
            out.append(Message("assistant", "", tool_calls=calls))
            out.extend(Message("tool", f"result {c['id']} " + "data " * rng.randint(1, 30), tool_call_id=c["id"])
                       for c in calls)
        else:
            out.append(Message(rng.choice(["user", "assistant"]), "text " * rng.randint(1, 40)))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_tool_calls_and_results_are_never_split(seed):
    rng = random.Random(seed)
    if seed == 0:
        policy = CompressionPolicy(trigger_messages=4, keep_messages=1, max_fold_messages=2)
    else:
        by_tokens = rng.random() < 0.5
        policy = CompressionPolicy(
            trigger_tokens=rng.choice([80, 150]) if by_tokens else None,
            trigger_messages=None if by_tokens else rng.choice([6, 9]),
            keep_tokens=rng.choice([30, 60]),
            keep_messages=rng.choice([None, 0 + 1, 2, 3]) if rng.random() < 0.5 else None,
            max_fold_messages=rng.choice([3, 5, 400]),
        )
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    for m in _random_history(rng, 120):
        s.add(m.role, m.content, tool_calls=m.tool_calls, tool_call_id=m.tool_call_id)
        s.compress()  # extra runs at every position
    stored = s.messages()
    by_seq = {m.seq: m for m in stored}
    summaries = s.summaries()
    assert summaries
    for summary in summaries:
        nxt = by_seq.get(summary.end_seq + 1)
        assert nxt is None or nxt.role != "tool", f"summary ends at {summary.end_seq} inside a tool call"
    # contexts never open with an orphaned tool result either
    for budget in (20, 50, 120, 400):
        ctx = mem.context("s", budget_tokens=budget)
        window = [m for m in ctx.messages if not m.id.startswith(("summary:", "recall:"))]
        if window:
            assert window[0].role != "tool"
        assert ctx.tokens <= budget


def test_retention_deletes_only_summarized_old_messages(clock):
    policy = CompressionPolicy(trigger_messages=6, keep_messages=2, retention=RetentionPolicy(delete_after_days=30))
    mem = Memory("memory://", clock=clock)
    s = mem.session("s", compress=policy)
    events = []
    mem.write_hooks.append(lambda event, ns, sid, payload: events.append((event, payload)))
    from datetime import datetime, timedelta, timezone

    now = datetime.fromtimestamp(clock(), timezone.utc)
    s.extend([Message("user", f"old {i} on May {i + 1}", created_at=now - timedelta(days=40)) for i in range(4)])
    s.extend([Message("user", f"new {i} on June {i + 1}", created_at=now) for i in range(3)])
    summary = s.summaries(last=1)[0]
    assert summary.end_seq == 5
    left = [m.text for m in s.messages()]
    assert left == ["new 0 on June 1", "new 1 on June 2", "new 2 on June 3"]  # old+summarized gone; new kept
    assert any(e == "delete_messages" and len(p) == 4 for e, p in events)


def test_policy_and_prompt_validation():
    with pytest.raises(InvalidPolicy):
        CompressionPolicy(trigger_tokens=None, trigger_messages=None)
    with pytest.raises(InvalidPolicy):
        CompressionPolicy(keep_tokens=None, keep_messages=None)
    with pytest.raises(InvalidPolicy):
        CompressionPolicy(trigger_tokens=-5)
    with pytest.raises(InvalidPolicy):
        CompressionPolicy(timeout=0)
    with pytest.raises(InvalidPolicy):
        RetentionPolicy(delete_after_days=-1)
    with pytest.raises(InvalidPolicy, match="previous"):
        as_summarizer(lambda p: p, prompt="Summarize: {messages}")
    with pytest.raises(InvalidPolicy):
        as_summarizer(42)
    mem = Memory("memory://")
    with pytest.raises(InvalidPolicy, match="compress="):
        mem.session("s").compress()
    with pytest.raises(InvalidPolicy):
        mem.session("s", compress={"trigger_tokens": 10})


class FakeChatModel:
    """Duck-typed LangChain chat model: invoke(messages) -> object with .content (here a list of blocks)."""

    model_name = "fake-chat"

    def __init__(self):
        self.seen = []

    def invoke(self, messages):
        self.seen.append(messages)
        return type("AIMessage", (), {"content": [{"type": "text", "text": "chat summary"}]})()

    async def ainvoke(self, messages):
        self.seen.append(messages)
        return type("AIMessage", (), {"content": "async chat summary"})()


class FakeLLM:
    """Duck-typed LlamaIndex LLM: complete(prompt) -> object with .text."""

    def __init__(self):
        self.prompts = []

    def complete(self, prompt):
        self.prompts.append(prompt)
        return type("CompletionResponse", (), {"text": "llm summary"})()


def test_summarizer_adapters_and_prompt_override():
    chat = FakeChatModel()
    summarizer = as_summarizer(chat, prompt="PREV={previous}\nNEW={messages}")
    msgs = [Message("user", "I moved to Lisbon in 2021", seq=3, name="alice")]
    assert summarizer.summarize("old facts", msgs) == "chat summary"
    sent = chat.seen[0][0]["content"]
    assert sent.startswith("PREV=old facts\nNEW=[") and "alice: I moved to Lisbon in 2021" in sent
    assert summarizer.id == "langchain:fake-chat"

    llm = FakeLLM()
    s2 = as_summarizer(llm)
    assert s2.summarize(None, msgs) == "llm summary"
    assert "(none yet)" in llm.prompts[0] and "Lisbon" in llm.prompts[0]
    assert DEFAULT_PROMPT.split("\n")[0] in llm.prompts[0]

    seen = []
    s3 = as_summarizer(lambda previous, messages: seen.append((previous, messages)) or "two-arg")
    assert s3.summarize("p", msgs) == "two-arg" and seen[0][0] == "p"
    assert as_summarizer(lambda prompt: prompt[:5]).summarize(None, msgs) == DEFAULT_PROMPT[:5]


async def test_async_compression_uses_native_async_summarizer():
    chat = FakeChatModel()
    policy = CompressionPolicy(trigger_messages=4, keep_messages=1, summarizer=chat)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    for i in range(6):
        await s.aadd("user", f"m{i}")
    summaries = await s.asummaries()
    assert summaries and summaries[-1].text == "async chat summary"
    assert len(await s.amessages()) == 6


def test_background_compression_sync_and_async():
    gate = threading.Event()

    def slow(prompt: str) -> str:
        gate.wait(5)
        return "bg summary"

    policy = CompressionPolicy(trigger_messages=4, keep_messages=1, summarizer=slow, background=True)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    for i in range(6):
        s.add("user", f"m{i}")  # returns immediately although the summarizer is blocked
    assert s.summaries() == []
    gate.set()
    s.wait_compression(5)
    assert s.summaries()[-1].text == "bg summary"

    async def run():
        s2 = mem.session("a", compress=policy)
        for i in range(6):
            await s2.aadd("user", f"m{i}")
        await s2.await_compression()
        return await s2.asummaries()

    assert asyncio.run(run())[-1].text == "bg summary"


def test_extractive_summarizer_keeps_facts_and_drops_small_talk():
    from datetime import datetime, timezone

    when = datetime(2023, 5, 8, tzinfo=timezone.utc)
    msgs = [
        Message("user", "Hi!", name="Caroline", created_at=when, seq=1),
        Message("user", "I went to the LGBTQ support group yesterday. It was so powerful.", name="Caroline",
                created_at=when, seq=2),
        Message("assistant", "Cool.", created_at=when, seq=3),
        Message("user", "We decided to adopt a dog named Oscar next month. I love hiking with Melanie.",
                name="Caroline", created_at=when, seq=4),
        Message("tool", "raw tool output 12345", created_at=when, seq=5),
    ]
    text = ExtractiveSummarizer().summarize(None, msgs)
    assert "support group yesterday" in text
    assert "adopt a dog named Oscar next month" in text and "I love hiking with Melanie" in text
    assert "Hi!" not in text and "Cool" not in text and "raw tool output" not in text
    assert text.startswith("[2023-05-08]\nCaroline: ") and text.count("[2023-05-08]") == 1  # date once per day
    later = datetime(2023, 6, 1, tzinfo=timezone.utc)
    folded = ExtractiveSummarizer().summarize(text, [Message("user", "My sister Ana was born in 1990.", seq=6,
                                                             created_at=later)])
    assert folded.startswith(text) and folded.endswith("[2023-06-01]\nuser: My sister Ana was born in 1990.")
    small = ExtractiveSummarizer(max_tokens=30).summarize(folded, [])
    assert len(small) < len(folded) and small
    assert sentence_score("ok") == 0 and sentence_score("Meet Bob on 5 May at 3pm") > 2


def test_real_langchain_and_llamaindex_models_work_as_summarizers():
    fake_chat = pytest.importorskip("langchain_core.language_models.fake_chat_models")
    llms = pytest.importorskip("llama_index.core.llms.mock")
    chat = fake_chat.FakeListChatModel(responses=["lc summary"])
    policy = CompressionPolicy(trigger_messages=3, keep_messages=1, summarizer=chat)
    s = Memory("memory://").session("s", compress=policy)
    for i in range(5):
        s.add("user", f"m{i}")
    assert s.summaries()[-1].text == "lc summary"
    li = as_summarizer(llms.MockLLM(max_tokens=5))
    assert li.id.startswith("llamaindex:") and isinstance(li.summarize(None, [Message("user", "x", seq=1)]), str)


def test_writes_far_from_the_trigger_skip_planning_but_compress_on_time():
    rec = Recorder()
    policy = CompressionPolicy(trigger_messages=30, keep_messages=5, summarizer=rec)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    reads = []
    original = mem.store.read
    mem.store.read = lambda *a, **k: reads.append(k) or original(*a, **k)
    s.add("user", "m0")
    assert len(reads) == 1  # the first write plans once and learns the headroom
    for i in range(1, 30):
        s.add("user", f"m{i}")
    assert len(reads) == 1 and rec.calls == []  # 30 messages: not over the trigger, no reads at all
    s.add("user", "m30")  # 31 > 30: planned and folded on exactly this write
    assert rec.calls == [(None, list(range(1, 27)))]


def test_writes_by_another_handle_are_noticed_within_the_recheck_interval():
    from memvault.compression.compressor import RECHECK_EVERY

    rec = Recorder()
    policy = CompressionPolicy(trigger_messages=10, keep_messages=2, summarizer=rec)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    s.add("user", "first")
    other = Memory(mem.store).session("s")  # e.g. another process: no compressor, so no headroom accounting
    other.extend([Message("user", f"x{i}") for i in range(20)])
    for i in range(RECHECK_EVERY + 1):
        s.add("user", f"m{i}")
        if rec.calls:
            break
    assert rec.calls and rec.calls[0][1][0] == 1
