"""The adapter's import paths are PEP 420 namespace packages living next to llama-index-core's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PATHS = [
    "llama_index.storage.chat_store.memvault",
    "llama_index.vector_stores.memvault",
    "llama_index.retrievers.memvault",
    "llama_index.memory.memvault",
    "llama_index.embeddings.memvault",
]


def test_namespace_levels_have_no_init() -> None:
    for path in PATHS:
        parts = path.split(".")
        for depth in range(1, len(parts)):  # llama_index, llama_index/storage, ... but not the memvault package
            assert not (SRC.joinpath(*parts[:depth]) / "__init__.py").exists(), parts[:depth]
        assert (SRC.joinpath(*parts) / "__init__.py").exists()


def test_all_paths_import_in_a_fresh_process_with_llama_index_core() -> None:
    code = "; ".join([f"import {p}" for p in PATHS] + [
        "import llama_index.core, llama_index.core.storage.chat_store as cs",
        "import llama_index; print(len(list(llama_index.__path__)))",
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 2  # core's llama_index/ and ours, merged
