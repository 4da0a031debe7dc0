"""Offline token counting: tiktoken encodings from packaged files, per-model choice, the fallback, cached counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from pytest_socket import disable_socket, enable_socket

from memvault import Memory
from memvault.compression import CompressionPolicy
from memvault.compression.tokens import (
    TOKENS_KEY,
    ApproxCounter,
    TiktokenCounter,
    content_tokens,
    encoding_for_model,
    get_counter,
    message_tokens,
)
from memvault.errors import InvalidPolicy
from memvault.model import Message

# Token ids published for these encodings (e.g. tiktoken's own README and tests): "hello world".
HELLO = {"cl100k_base": [15339, 1917], "o200k_base": [24912, 2375]}

GUARDED = textwrap.dedent(
    """
    import json, os, socket, sys

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args))
        raise OSError("network access blocked by the test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from memvault.compression.tokens import get_counter

    out = {}
    for model in ("gpt-4o", "gpt-4", "o3-mini", "gpt-3.5-turbo"):
        counter = get_counter(model)
        out[model] = [counter.name, type(counter).__name__, counter.encoding.encode_ordinary("hello world")]
    out["attempts"] = attempts
    out["env"] = os.environ.get("TIKTOKEN_CACHE_DIR")
    out["cache_files"] = sorted(os.listdir(os.environ["TIKTOKEN_CACHE_DIR"]))
    print(json.dumps(out))
    """
)


def test_encodings_load_offline_in_a_fresh_process_without_touching_the_users_cache(tmp_path):
    user_cache = tmp_path / "my-tiktoken-cache"
    user_cache.mkdir()
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(user_cache), "DATA_GYM_CACHE_DIR": str(tmp_path / "dg")}
    proc = subprocess.run([sys.executable, "-c", GUARDED], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["gpt-4o"] == ["o200k_base", "TiktokenCounter", HELLO["o200k_base"]]
    assert out["o3-mini"] == ["o200k_base", "TiktokenCounter", HELLO["o200k_base"]]
    assert out["gpt-4"] == ["cl100k_base", "TiktokenCounter", HELLO["cl100k_base"]]
    assert out["gpt-3.5-turbo"] == ["cl100k_base", "TiktokenCounter", HELLO["cl100k_base"]]
    assert out["attempts"] == []
    assert out["env"] == str(user_cache)  # the user's setting is left as it was
    assert out["cache_files"] == []  # and nothing was written into their cache
    assert not (tmp_path / "dg").exists()


def test_counting_with_sockets_disabled_in_process():
    disable_socket()
    try:
        for name in ("cl100k_base", "o200k_base"):
            counter = get_counter(name)
            assert isinstance(counter, TiktokenCounter)
            assert counter.encoding.encode_ordinary("hello world") == HELLO[name]
            assert counter.count("hello world") == 2
            # special-token text in user content is counted as ordinary text, never raises
            assert counter.count("<|endoftext|>") > 1
    finally:
        enable_socket()


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("o1", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("openai/gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("ft:gpt-3.5-turbo:acme::123", "cl100k_base"),
        ("claude-3-5-sonnet", "o200k_base"),
        ("llama3", "o200k_base"),
        (None, "o200k_base"),
        ("cl100k_base", "cl100k_base"),
    ],
)
def test_model_to_encoding(model, encoding):
    assert encoding_for_model(model) == encoding
    assert get_counter(model).name == encoding


def test_approx_counter_and_fallback_when_tiktoken_is_broken(monkeypatch, caplog):
    approx = get_counter("approx")
    assert isinstance(approx, ApproxCounter)
    text = "The quick brown fox jumps over the lazy dog. " * 20
    exact = get_counter("gpt-4o").count(text)
    assert 0.7 * exact <= approx.count(text) <= 1.6 * exact
    assert approx.count("") == 0
    cut = approx.truncate(text, 10)
    assert approx.count(cut) <= 10 and text.startswith(cut)

    import memvault.compression.tokens as tokens

    monkeypatch.setattr(tokens, "_counters", {})
    monkeypatch.setattr(tokens, "_encodings", {})
    monkeypatch.setattr(tokens, "_packaged_bpe", lambda name, h: (_ for _ in ()).throw(OSError("wheel damaged")))
    with caplog.at_level("WARNING", logger="memvault"):
        counter = get_counter("gpt-4o")
    assert isinstance(counter, ApproxCounter)
    assert "wheel damaged" in caplog.text


def test_unknown_encoding_is_a_typed_error():
    from memvault.compression.tokens import load_encoding

    with pytest.raises(InvalidPolicy, match="not available offline"):
        load_encoding("p50k_base")


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_truncate_never_exceeds(name):
    counter = get_counter(name)
    text = "naïve café 🍰 " * 50 + "2023-05-08 Caroline said hello. " * 30
    for limit in (0, 1, 2, 7, 50, 333):
        cut = counter.truncate(text, limit)
        assert counter.count(cut) <= limit
    assert counter.truncate("short", 100) == "short"


def test_counts_are_stamped_at_write_time_and_never_recounted():
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return len(text.split())

    policy = CompressionPolicy(trigger_tokens=10_000, keep_tokens=5_000, model=counting)
    mem = Memory("memory://")
    s = mem.session("s", compress=policy)
    for i in range(10):
        s.add("user", f"message number {i} about Paris")
    assert len(calls) == 10  # counted once each, at write time
    stored = s.messages()
    counter = get_counter(counting)
    assert all(m.extras[TOKENS_KEY][counter.name] == 5 for m in stored)
    calls.clear()
    for _ in range(5):
        ctx = mem.context("s", budget_tokens=500, model=counter)
        assert len(ctx.messages) == 10
    assert calls == []  # context assembly used the stamped counts
    s.compress(force=True)
    assert all(not c.startswith("message number") for c in calls)  # compression did not recount messages either


def test_unstamped_messages_are_counted_once_per_process():
    calls: list[str] = []
    counter = get_counter(lambda text: calls.append(text) or len(text))
    mem = Memory("memory://")
    s = mem.session("s")
    s.extend([Message("user", f"m{i}") for i in range(20)])
    for _ in range(3):
        mem.context("s", budget_tokens=1000, model=counter)
    assert len(calls) == 20
    m = s.messages(last=1)[0]
    assert content_tokens(m, counter) == 3 and message_tokens(m, counter) == 3 + 4
