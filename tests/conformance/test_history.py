"""Whole-history reads kept decoded (memvault.history), on every backend: a second Memory on the same store plays
the other process; whatever it does, the first one's next full read is exactly what the store holds."""

from __future__ import annotations

import asyncio
from typing import Any

from memvault import Memory


def _texts(mem: Memory, sid: str) -> list[str]:
    return [m.text for m in mem.session(sid).messages()]


def _truth(mem: Memory, sid: str) -> list[str]:
    return [m.text for m in mem.session(sid).messages(start=0)]  # a read that bypasses the cache


def test_full_reads_see_every_change_made_elsewhere(make_memory: Any) -> None:
    mine, other = make_memory(embedder="hash"), make_memory(embedder="hash")
    s, o = mine.session("h"), other.session("h")
    s.extend([{"role": "user", "content": f"m{i}"} for i in range(20)])
    assert _texts(mine, "h") == [f"m{i}" for i in range(20)]
    steps = [
        lambda: o.add("user", "appended elsewhere"),
        lambda: o.delete_messages([o.messages(start=0)[3].id]),
        lambda: o.pop(0),
        lambda: (o.delete_messages([o.messages(start=0)[5].id]), o.add("user", "one out, one in")),
        lambda: o.replace([{"role": "user", "content": "replaced"}]),
        lambda: o.clear(),
        lambda: o.add("user", "after the clear"),
        lambda: other.delete_session("h"),
        lambda: o.add("user", "a new session of the same id"),
        lambda: other.import_session(list(other.export_session("h")), session_id="h2"),
    ]
    for step in steps:
        step()
        assert _texts(mine, "h") == _truth(mine, "h")
    assert _texts(mine, "h2") == ["a new session of the same id"]
    assert mine.histories.partial_reads >= 1 and mine.histories.full_reads >= 5


def test_only_new_messages_are_read_and_results_are_the_callers(make_memory: Any) -> None:
    mem = make_memory(embedder="hash")
    s = mem.session("p")
    s.extend([{"role": "user", "content": f"m{i}"} for i in range(50)])
    first = s.messages()
    assert mem.histories.full_reads == 1
    for i in range(5):
        s.add("assistant", f"reply {i}")
        got = s.messages()
        assert [m.text for m in got[-1:]] == [f"reply {i}"] and len(got) == 51 + i
        assert [m.seq for m in got] == list(range(1, 52 + i))
    assert mem.histories.full_reads == 1 and mem.histories.partial_reads == 5
    first[0].content = "changed by the caller"
    first.append(first[1])
    assert s.messages()[0].text == "m0" and len(s.messages()) == 55  # the cache is not the caller's list
    assert mem.session("never").messages() == []


def test_async_full_reads_share_the_cache(make_memory: Any) -> None:
    mem = make_memory(embedder="hash")

    async def go() -> None:
        s = mem.session("a")
        await s.aextend([{"role": "user", "content": "one"}, {"role": "user", "content": "two"}])
        assert [m.text for m in await s.amessages()] == ["one", "two"]
        await s.aadd("user", "three")
        assert [m.text for m in await s.amessages()] == ["one", "two", "three"]

    asyncio.run(go())
    assert mem.histories.partial_reads == 1 and _texts(mem, "a") == ["one", "two", "three"]


def test_a_session_recreated_at_the_same_clock_reading_is_not_the_old_one(make_memory: Any, clock: Any) -> None:
    """Deleted and re-created while the clock shows the same time: same created_at, same seqs, same count - only
    the messages differ (the check re-reads the newest one)."""
    mine, other = make_memory(embedder="hash", clock=clock), make_memory(embedder="hash", clock=clock)
    mine.session("r").extend([{"role": "user", "content": "old 1"}, {"role": "user", "content": "old 2"}])
    assert _texts(mine, "r") == ["old 1", "old 2"]
    other.delete_session("r")
    other.session("r").extend([{"role": "user", "content": "new 1"}, {"role": "user", "content": "new 2"}])
    assert _texts(mine, "r") == ["new 1", "new 2"]
    other.delete_session("r")
    other.session("r").extend([{"role": "user", "content": f"newer {i}"} for i in range(3)])
    assert _texts(mine, "r") == ["newer 0", "newer 1", "newer 2"]
