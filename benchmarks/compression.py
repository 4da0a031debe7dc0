"""Compression benchmark on LoCoMo: tokens sent per turn, evidence retention, per-call latency. Prints JSON.

    python benchmarks/compression.py --data ../shared/datasets/locomo10.zip [--conversations 10] [--out f.json]

The dataset is read in place from the zip (never copied into the repository). Everything runs offline: the default
extractive summarizer, tiktoken o200k_base from packaged files, and (for the recall arm) the default MiniLM int8.

(a) tokens per turn: after every turn, ``mem.context(budget_tokens=2000, model="gpt-4o")`` vs the whole history.
(b) evidence retention at the end of each conversation, per QA question: the share of its evidence turns whose text
    is in the assembled context, verbatim or as facts (>= 80% of the turn's content words present), for
    window-only, summary + window, and summary + recall + window (query = the question).
(c) per-call latency of ``context()`` at 100 / 1,000 / 5,000 messages (p50/p95, ms), with the whole-history read
    as the peer, on sqlite (the embedded default) and memory.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _cli import parse

from memvault import Memory, Message
from memvault.compression import CompressionPolicy, get_counter
from memvault.compression.tokens import message_tokens

BUDGET = 2000
MODEL = "gpt-4o"
POLICY = dict(trigger_tokens=1800, keep_tokens=1000, max_fold_messages=400)
_STOP_WORDS = (
    "the and for that this with you your have has had was were are but not just what when how about from they them"
    " their there then than its it's i'm i've i'll been being into out our ours very really also too can could would"
    " should will did does doing done like get got going some any all one yes yeah wow that's don't"
)
STOP = frozenset(_STOP_WORDS.split())


def load(path: Path, limit: int) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".json"))
        return [json.loads(z.read(n)) | {"_name": Path(n).stem} for n in names[:limit]]


def parse_when(text: str) -> datetime:
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y"):
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    return datetime(2023, 1, 1, tzinfo=timezone.utc)


def turns_of(conv: dict[str, Any]) -> list[tuple[str, Message]]:
    """(dia_id, Message) in conversation order; speaker_a -> user, speaker_b -> assistant, name = speaker."""
    out = []
    n = 1
    while f"session_{n}" in conv:
        when = parse_when(conv.get(f"session_{n}_date_time", ""))
        for turn in conv[f"session_{n}"]:
            text = turn.get("text", "")
            if turn.get("blip_caption"):
                text = f"{text} [shares a photo: {turn['blip_caption']}]"
            role = "user" if turn["speaker"] == conv["speaker_a"] else "assistant"
            out.append((turn["dia_id"], Message(role, text, name=turn["speaker"], created_at=when)))
        n += 1
    return out


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if len(w) >= 3 and w not in STOP}


def norm(text: str) -> str:
    return " ".join(text.split())


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- (a) + (b) ----------------------------------------------------------------------------------------------------


def run_conversation(conv: dict[str, Any], recall_memory: Memory | None) -> dict[str, Any]:
    turns = turns_of(conv)
    counter = get_counter(MODEL)
    compressed = Memory("memory://")
    raw = Memory("memory://")
    s = compressed.session("c", compress=CompressionPolicy(model=MODEL, **POLICY))
    r = raw.session("c")
    history_tokens = 0
    points = []
    for dia_id, message in turns:
        m = s.add(message.role, message.content, name=message.name, created_at=message.created_at,
                  metadata={"dia_id": dia_id})
        r.add(message.role, message.content, name=message.name, created_at=message.created_at,
              metadata={"dia_id": dia_id})
        history_tokens += message_tokens(m, counter)
        ctx = compressed.context("c", budget_tokens=BUDGET, model=MODEL)
        points.append((history_tokens, ctx.tokens))
    past = [(h, c) for h, c in points if h > BUDGET]
    reductions = [1 - c / h for h, c in past]
    goal_from = next((h for h, c in past if all(1 - c2 / h2 >= 0.7 for h2, c2 in past if h2 >= h)), None)
    tokens_a = {
        "turns": len(points),
        "history_tokens_end": history_tokens,
        "context_tokens_max": max(c for _, c in points),
        "points_past_2000": len(past),
        "reduction_min_past_2000": round(min(reductions), 4) if reductions else None,
        "reduction_median_past_2000": round(statistics.median(reductions), 4) if reductions else None,
        "reduction_at_end": round(reductions[-1], 4) if reductions else None,
        "share_of_points_ge_70pct": round(sum(x >= 0.7 for x in reductions) / len(reductions), 4) if reductions
        else None,
        "goal_holds_from_history_tokens": goal_from,
        "tokens_sent_total_context": sum(c for _, c in points),
        "tokens_sent_total_full_history": sum(h for h, _ in points),
        "summaries": len(s.summaries()),
    }

    # (b) evidence retention at the end, per question
    texts = {dia: norm(m.text) for dia, m in turns}
    arms: dict[str, Any] = {
        "window_only": raw.context("c", budget_tokens=BUDGET, model=MODEL, recall_share=0),
        "summary_window": compressed.context("c", budget_tokens=BUDGET, model=MODEL),
    }
    static = {name: norm("\n".join(m.text for m in ctx.messages)) for name, ctx in arms.items()}
    scores: dict[str, dict[str, list[float]]] = {
        name: {"verbatim": [], "facts": []} for name in [*arms, "summary_recall_window"]
    }
    recall_ms: list[float] = []
    questions = 0
    for qa in conv["qa"]:
        evidence = [e for e in qa.get("evidence", []) if e in texts]
        if not evidence:
            continue
        questions += 1
        contexts = dict(static)
        if recall_memory is not None:
            t0 = time.perf_counter()
            ctx = recall_memory.context(conv["_name"], query=str(qa["question"]), budget_tokens=BUDGET, model=MODEL)
            recall_ms.append((time.perf_counter() - t0) * 1000)
            assert ctx.tokens <= BUDGET
            contexts["summary_recall_window"] = norm("\n".join(m.text for m in ctx.messages))
        for name, text in contexts.items():
            bag = words(text)
            verbatim = [texts[e] in text for e in evidence]
            facts = [v or (len(words(texts[e])) > 0 and len(words(texts[e]) & bag) / len(words(texts[e])) >= 0.8)
                     for e, v in zip(evidence, verbatim, strict=True)]
            scores[name]["verbatim"].append(sum(verbatim) / len(evidence))
            scores[name]["facts"].append(sum(facts) / len(evidence))
    retention = {
        name: {k: (round(statistics.mean(v), 4) if v else None) for k, v in d.items()} for name, d in scores.items()
    }
    if recall_memory is None:
        retention["summary_recall_window"] = "pending: recall arm skipped (--no-recall) or recall not available"
    return {
        "conversation": conv["_name"],
        "questions": questions,
        "tokens": tokens_a,
        "retention": retention,
        "_scores": scores,
        "_recall_ms": recall_ms,
        "_parts": {name: {k: v.tokens for k, v in ctx.parts.items()} for name, ctx in arms.items()},
    }


def build_recall_memory(convs: list[dict[str, Any]], tmp: Path) -> Memory | None:
    mem = Memory(f"sqlite:///{tmp / 'recall.db'}")
    if not callable(getattr(mem, "recall", None)):
        return None
    for conv in convs:
        s = mem.session(conv["_name"], compress=CompressionPolicy(model=MODEL, **POLICY))
        for dia_id, m in turns_of(conv):
            s.add(m.role, m.content, name=m.name, created_at=m.created_at, metadata={"dia_id": dia_id})
    mem.recall("warm up the index", k=1)  # indexes the backlog once, outside the timed calls
    return mem


# -- (c) ----------------------------------------------------------------------------------------------------------


def latency(convs: list[dict[str, Any]], tmp: Path, sizes: list[int], calls: int) -> dict[str, Any]:
    """Sessions of each size are built first, then measured in interleaved rounds (one call per size per round),
    so load from other processes on the machine hits every size alike."""
    pool = [m for conv in convs for _, m in turns_of(conv)]
    counter = get_counter(MODEL)
    out: dict[str, Any] = {}
    for backend in ("sqlite", "memory"):
        mems = {}
        for size in sizes:
            url = f"sqlite:///{tmp / f'lat{size}.db'}" if backend == "sqlite" else "memory://"
            mem = Memory(url)
            s = mem.session("s", compress=CompressionPolicy(model=MODEL, **POLICY))
            for i in range(size):
                m = pool[i % len(pool)]
                s.add(m.role, m.content, name=m.name, created_at=m.created_at)
            mems[size] = mem
        ctx_ms: dict[int, list[float]] = {size: [] for size in sizes}
        full_ms: dict[int, list[float]] = {size: [] for size in sizes}
        tokens: dict[int, int] = {}
        for round_ in range(calls):
            for size, mem in mems.items():
                t0 = time.perf_counter()
                ctx = mem.context("s", budget_tokens=BUDGET, model=MODEL)
                ctx_ms[size].append((time.perf_counter() - t0) * 1000)
                tokens[size] = ctx.tokens
                if round_ % 4 == 0:  # the peer: what a whole-history prompt has to read and count every turn
                    t0 = time.perf_counter()
                    everything = mem.session("s").messages()
                    sum(message_tokens(m, counter) for m in everything)
                    full_ms[size].append((time.perf_counter() - t0) * 1000)
        rows = {
            size: {
                "context_p50_ms": round(p(ctx_ms[size], 0.5), 3),
                "context_p95_ms": round(p(ctx_ms[size], 0.95), 3),
                "context_tokens": tokens[size],
                "whole_history_p50_ms": round(p(full_ms[size], 0.5), 3),
            }
            for size in sizes
        }
        for mem in mems.values():
            mem.close()
        first, last = rows[sizes[0]], rows[sizes[-1]]
        out[backend] = {
            "by_history_size": rows,
            f"context_p50_ratio_{sizes[-1]}_vs_{sizes[0]}": round(last["context_p50_ms"] / first["context_p50_ms"], 3),
            f"whole_history_p50_ratio_{sizes[-1]}_vs_{sizes[0]}": round(
                last["whole_history_p50_ms"] / first["whole_history_p50_ms"], 3
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/datasets/locomo10.zip", type=Path)
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200, help="context() calls per history size in (c)")
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--no-recall", action="store_true", help="skip the summary + recall + window arm")
    parser.add_argument("--out", type=Path)
    args = parse(parser, conversations=1, calls=5, sizes="100")
    if not args.data.exists():
        sys.exit(f"dataset not found: {args.data} (pass --data path/to/locomo10.zip)")
    convs = load(args.data, args.conversations)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # latency first: the recall service's background indexer would share the GIL with the timed calls
        lat = latency(convs, tmp, [int(x) for x in args.sizes.split(",")], args.calls)
        recall_memory = None if args.no_recall else build_recall_memory(convs, tmp)
        per_conv = [run_conversation(conv, recall_memory) for conv in convs]
        if recall_memory is not None:
            recall_memory.close()
    arms = ["window_only", "summary_window", "summary_recall_window"]
    overall: dict[str, Any] = {}
    for arm in arms:
        pooled = {k: [x for c in per_conv for x in c["_scores"][arm][k]] for k in ("verbatim", "facts")}
        overall[arm] = (
            {k: round(statistics.mean(v), 4) for k, v in pooled.items()} if pooled["verbatim"]
            else "pending: recall arm skipped (--no-recall) or recall not available"
        )
    reductions_min = [c["tokens"]["reduction_min_past_2000"] for c in per_conv if c["tokens"]["reduction_min_past_2000"]]
    recall_ms = [x for c in per_conv for x in c["_recall_ms"]]
    result = {
        "benchmark": "compression",
        "dataset": str(args.data),
        "budget_tokens": BUDGET,
        "model": MODEL,
        "encoding": get_counter(MODEL).name,
        "policy": POLICY,
        "summarizer": "extractive-v1 (offline)",
        "a_tokens_per_turn": {
            "per_conversation": {c["conversation"]: c["tokens"] for c in per_conv},
            "reduction_min_over_all_points_past_2000": min(reductions_min) if reductions_min else None,
            "reduction_at_end_median": statistics.median(c["tokens"]["reduction_at_end"] for c in per_conv),
            "share_of_points_past_2000_with_ge_70pct": round(
                sum(c["tokens"]["share_of_points_ge_70pct"] * c["tokens"]["points_past_2000"] for c in per_conv)
                / sum(c["tokens"]["points_past_2000"] for c in per_conv), 4),
            "goal_holds_from_history_tokens_max": max(
                (c["tokens"]["goal_holds_from_history_tokens"] or 0) for c in per_conv),
            "total_tokens_saved": round(1 - sum(c["tokens"]["tokens_sent_total_context"] for c in per_conv)
                                        / sum(c["tokens"]["tokens_sent_total_full_history"] for c in per_conv), 4),
        },
        "b_evidence_retention": {
            "questions": sum(c["questions"] for c in per_conv),
            "overall": overall,
            "per_conversation": {c["conversation"]: c["retention"] for c in per_conv},
            "context_parts_at_end": {c["conversation"]: c["_parts"] for c in per_conv},
            "recall_context_ms_p50": round(p(recall_ms, 0.5), 2) if recall_ms else None,
        },
        "c_latency": lat,
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
