"""Encryption and compression at rest (memvault.codecs), printed as JSON.

Turn cost on SQLite (the embedded default): a chat turn is ``session.extend([user, assistant])`` plus
``session.messages(last=20)``, on a session that already holds ``--history`` messages. The configurations (plain,
AES-256-GCM, ChaCha20-Poly1305, AES + zstd) each have their own database file and are interleaved round by round in
a shuffled order, so machine noise hits them alike; the figure that matters is each one's p50 as a ratio of the
plain one in the same run (goal: encryption <= 1.25x).

Storage: the LoCoMo conversations (``--data``) stored as messages, and each conversation's JSON as an artifact
(a large, compressible payload such as a tool's output), under plain, gzip, zstd and AES + zstd: bytes of the
VACUUMed database file, as a ratio of the plain one.

    python benchmarks/at_rest.py [--turns 300] [--rounds 5] [--history 200] [--data ../shared/datasets/locomo10.zip]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from _cli import parse
from _stats import percentile

from memvault import Memory
from memvault.codecs import Keyring, generate_key

ROOT = Path(__file__).resolve().parents[1]
KEY = generate_key()
CONFIGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "aes-256-gcm": {"encryption": KEY},
    "chacha20-poly1305": {"encryption": Keyring([base64.b64decode(KEY)], cipher="chacha20-poly1305")},
    "aes+zstd": {"encryption": KEY, "compression": "zstd"},
}
USER = "Could you remind me what we decided about the venue for Saturday, and whether Sam is bringing the speakers?"
ASSISTANT = ("You settled on the community hall on Birch Street from 6 pm; Sam said he would bring the two speakers "
             "and the long cable, and Maya offered to collect the keys on Friday afternoon.")


def turns(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    mems = {}
    for name, options in CONFIGS.items():
        mem = Memory(f"sqlite:///{tmp / (name + '.db')}", embedder="hash", **options)
        s = mem.session("bench")
        s.extend([{"role": "user" if i % 2 == 0 else "assistant", "content": USER if i % 2 == 0 else ASSISTANT}
                  for i in range(args.history)])
        mems[name] = mem
    samples: dict[str, list[float]] = {name: [] for name in CONFIGS}
    order = list(CONFIGS)
    rng = random.Random(7)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            s = mems[name].session("bench")
            gc.disable()
            try:
                for _ in range(args.turns):
                    t = time.perf_counter()
                    s.extend([{"role": "user", "content": USER}, {"role": "assistant", "content": ASSISTANT}])
                    s.messages(last=20)
                    samples[name].append(time.perf_counter() - t)
            finally:
                gc.enable()
    plain = percentile(samples["plain"], 0.5)
    out = {}
    for name, values in samples.items():
        p50 = percentile(values, 0.5)
        out[name] = {"turn_p50_ms": round(p50 * 1000, 4), "turn_p95_ms": round(percentile(values, 0.95) * 1000, 4),
                     "turn_mean_ms": round(statistics.fmean(values) * 1000, 4), "x_plain_p50": round(p50 / plain, 3)}
    for mem in mems.values():
        mem.close()
    return out


def storage(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data = Path(args.data)
    if not data.exists():
        return {"skipped": f"no dataset at {data}"}
    with zipfile.ZipFile(data) as z:
        names = sorted(n for n in z.namelist() if n.endswith(".json"))
        conversations = [(n, z.read(n)) for n in names]
    layouts = {"plain": {}, "gzip": {"compression": "gzip"}, "zstd": {"compression": "zstd"},
               "aes+zstd": {"encryption": KEY, "compression": "zstd"}, "aes": {"encryption": KEY}}
    out: dict[str, Any] = {}
    for name, options in layouts.items():
        path = tmp / f"store-{name}.db"
        with Memory(f"sqlite:///{path}", embedder="hash", compression_threshold=512, **options) as mem:
            started = time.perf_counter()
            messages = 0
            for file, raw in conversations:
                convo = json.loads(raw)
                sid = Path(file).stem
                s = mem.session(sid)
                for key in sorted(k for k in convo if k.startswith("session_") and isinstance(convo[k], list)):
                    batch = [{"role": "user", "content": t["text"], "metadata": {"speaker": t["speaker"]}}
                             for t in convo[key] if t.get("text")]
                    s.extend(batch)
                    messages += len(batch)
                s.artifacts.save("conversation.json", raw, content_type="application/json")
            seconds = time.perf_counter() - started
        db = sqlite3.connect(path)
        db.execute("VACUUM")
        db.close()
        out[name] = {"db_bytes": path.stat().st_size, "messages": messages, "artifacts": len(conversations),
                     "artifact_bytes": sum(len(r) for _, r in conversations), "write_s": round(seconds, 3)}
    base = out["plain"]["db_bytes"]
    for facts in out.values():
        facts["x_plain_bytes"] = round(facts["db_bytes"] / base, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "locomo10.zip"))
    args = parse(parser, turns=20, rounds=1, history=20)
    with tempfile.TemporaryDirectory() as tmp:
        report = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version,
                  "turn": turns(args, Path(tmp)), "storage": storage(args, Path(tmp))}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
