"""The package imports its parts on first use: the chat history does not pull in the retriever machinery."""

from __future__ import annotations

import subprocess
import sys

import langchain_memvault
import pytest


def test_the_chat_history_alone_loads_no_retriever_or_tracing() -> None:
    code = ("import sys; from langchain_memvault import MemvaultChatMessageHistory; "
            "print(sorted(m for m in ('langchain_core.retrievers', 'langsmith.run_trees', "
            "'langchain_memvault.vectorstores', 'langchain_memvault.retrievers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_resolves_and_unknown_ones_fail() -> None:
    for name in langchain_memvault.__all__:
        assert getattr(langchain_memvault, name).__name__ == name
        assert name in dir(langchain_memvault)
    with pytest.raises(AttributeError):
        langchain_memvault.NoSuchThing  # noqa: B018
