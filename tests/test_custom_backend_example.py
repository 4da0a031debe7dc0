"""examples/custom_backend: the one-file ``jsondir://`` backend passes the conformance kit on both faces, opens by URL
after register_backend, and is found through its ``memvault.backends`` entry point when installed."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory, registry
from memvault.registry import open_store, register_backend
from memvault.testing.conformance import validate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_backend"


@pytest.fixture
def jsondir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example's module, importable as an installed one would be; memvault's backend registry restored after."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    import memvault_jsondir

    yield memvault_jsondir
    sys.modules.pop("memvault_jsondir", None)


def test_the_example_passes_the_conformance_kit_on_both_faces(jsondir: Any, tmp_path: Path) -> None:
    report = validate(lambda *, clock: jsondir.JsonDirStore(tmp_path / uuid.uuid4().hex, clock=clock))
    assert report.ok, report.summary(verbose=True)
    assert report.capabilities == frozenset() and {r.face for r in report.passed} == {"sync", "async"}
    assert len(report.passed) >= 80


def test_register_backend_makes_its_url_scheme_work(jsondir: Any, tmp_path: Path) -> None:
    register_backend("jsondir", jsondir.JsonDirStore)
    url = f"jsondir://{tmp_path / 'data'}"
    with Memory(url, embedder="hash") as mem:
        assert type(mem.store).__name__ == "JsonDirStore" and mem.backend == "jsondir"
        s = mem.session("alice", user_id="u1", metadata={"topic": "travel"})
        s.add("user", "We fly to Paris in May")
        s.add("assistant", "Noted: Paris, May.")
        assert [h.message.text for h in mem.recall("Paris", session="alice", mode="keyword", k=1)]
    with Memory(url) as again:  # a new process would see the same files
        assert [m.text for m in again.session("alice").messages()] == ["We fly to Paris in May", "Noted: Paris, May."]
        assert [i.id for i in again.sessions(user_id="u1", metadata={"topic": "travel"})] == ["alice"]


def test_the_entry_point_of_its_pyproject_is_found(jsondir: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``pip install ./examples/custom_backend`` does, without installing: a dist-info with the pyproject's
    entry points on sys.path, which memvault's registry reads the first time it meets an unknown scheme."""
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    section = pyproject.split('[project.entry-points."memvault.backends"]', 1)[1].split("\n[", 1)[0]
    points = re.findall(r'^(\w[\w+.-]*)\s*=\s*"([^"]+)"', section, re.MULTILINE)
    assert points == [("jsondir", "memvault_jsondir:JsonDirStore")]
    dist = tmp_path / "site" / "memvault_jsondir-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: memvault-jsondir\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[memvault.backends]\n" + "".join(f"{k} = {v}\n" for k, v in points))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "jsondir" not in registry.BACKENDS
    store = open_store(f"jsondir://{tmp_path / 'ep'}")
    try:
        assert isinstance(store, jsondir.JsonDirStore)
        assert registry.BACKENDS["jsondir"] == "memvault_jsondir:JsonDirStore"
    finally:
        store.close()
