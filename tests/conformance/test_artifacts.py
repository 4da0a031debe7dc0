"""Versioned session artifacts, streamed in chunks, on every backend."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.artifacts import CHUNK, CHUNK_SIZE, SAVE, VERSION, ArtifactVersion
from memvault.errors import ArtifactNotFound, ArtifactTooLarge, InvalidArtifact, InvalidMetadata
from tests.backends import BACKENDS

MB = 1 << 20


def _blob(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ at every chunk (a chunk mix-up shows), every byte value included."""
    block = bytes((i * 7 + seed) % 256 for i in range(4096))
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += counter.to_bytes(8, "big") + block
        counter += 1
    return bytes(out[:size])


def _entries(mem: Memory, sid: str, kind: str) -> list[str]:
    return [k for k, _ in mem.store.scan_entries(mem.namespace, sid, kind, keys_only=True)]


class Unsized(io.RawIOBase):
    """A binary stream of unknown size (not seekable), handing out at most ``step`` bytes per read."""

    def __init__(self, data: bytes, step: int = 100_000) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        part = self._data[self._pos : self._pos + min(len(buffer), self._step)]
        buffer[: len(part)] = part
        self._pos += len(part)
        return len(part)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * MB + 12345])
def test_round_trip_at_chunk_boundaries(mem: Memory, size: int) -> None:
    art = mem.session("rt").artifacts
    data = _blob(size, seed=size % 251)
    saved = art.save("report.bin", data, metadata={"by": "test"})
    assert (saved.name, saved.version, saved.size) == ("report.bin", 1, size)
    assert saved.sha256 == hashlib.sha256(data).hexdigest()
    assert saved.content_type == "application/octet-stream" and saved.metadata == {"by": "test"}
    assert art.load("report.bin") == data
    with art.open("report.bin") as reader:
        assert reader.info == saved
        blocks = list(reader)
    assert b"".join(blocks) == data and all(len(b) <= CHUNK_SIZE for b in blocks)
    assert len(blocks) == -(-size // CHUNK_SIZE)
    with art.open("report.bin") as reader:
        pieces = []
        while piece := reader.read(333_333):
            pieces.append(piece)
        assert b"".join(pieces) == data and all(len(p) == 333_333 for p in pieces[:-1])
        assert reader.read(10) == b""
    chunks = _entries(mem, "rt", CHUNK)
    assert len(chunks) == -(-size // CHUNK_SIZE)  # written in chunks, one entry each
    assert _entries(mem, "rt", SAVE) == []  # the save's progress mark is gone once it committed


def test_sources_files_paths_and_streams(mem: Memory, tmp_path: Path) -> None:
    art = mem.session("src").artifacts
    data = _blob(2 * MB + 5)
    path = tmp_path / "input.csv"
    path.write_bytes(data)
    from_path = art.save("a.csv", path)
    assert from_path.content_type == "text/csv"  # guessed from the name
    with path.open("rb") as fh:
        fh.read(5)  # a file object is read from where it stands
        assert art.save("a.csv", fh).size == len(data) - 5
    assert art.save("a.csv", Unsized(data), content_type="text/plain; charset=utf-8").version == 3
    assert art.save("a.csv", bytearray(b"ba")).size == 2 and art.save("a.csv", memoryview(b"mv")).size == 2
    assert art.load("a.csv", version=1) == data and art.load("a.csv", version=2) == data[5:]
    assert art.load("a.csv", version=3) == data and art.info("a.csv", 3).content_type == "text/plain; charset=utf-8"
    for bad in ("text is not bytes", 42, None, io.StringIO("text mode"), tmp_path / "missing.bin"):
        with pytest.raises(InvalidArtifact):
            art.save("bad.txt", bad)
    with pytest.raises(InvalidArtifact):
        art.save("bad.txt", b"x", content_type="not a mime type")
    with pytest.raises(InvalidMetadata):
        art.save("bad.txt", b"x", metadata={"x": float("nan")})
    with pytest.raises(ArtifactNotFound):
        art.load("bad.txt")
    assert not [k for k in _entries(mem, "src", CHUNK) if k.startswith("bad.txt")]  # nothing half-written left
    assert _entries(mem, "src", SAVE) == []


def test_content_types_that_cannot_be_stored_are_refused_before_anything_is_written(mem: Memory) -> None:
    """Regression (test_fuzz_artifact_args): a lone surrogate in a content type's parameters passed the MIME check
    and the save failed with a raw UnicodeEncodeError at its commit point; DEL and C1 characters were stored."""
    s = mem.session("ctype")
    art = s.artifacts
    art.save("keep.txt", b"kept")
    before = art.manifest()
    for bad in ("text/plain; a=\ud800", "\ud800/x", "text/plain; q=\x7f", "text/plain; charset=\x85",
                "text/plain; a=\x00", "text/plain\n", "text/plain; a=b\nX-Injected: 1", "a/" + "b" * 300):
        with pytest.raises(InvalidArtifact):
            art.save("bad.txt", b"x", content_type=bad)
        with pytest.raises(InvalidArtifact):
            art.save("keep.txt", b"x", content_type=bad)
    assert art.manifest() == before and art.load("keep.txt") == b"kept"
    assert [k.split("\x1f")[0] for k in _entries(mem, "ctype", CHUNK)] == ["keep.txt"]
    assert _entries(mem, "ctype", SAVE) == []
    fine = "multipart/form-data; boundary=\"é--x\""
    assert art.load(art.save("ok.txt", b"ok", content_type=fine).name) == b"ok"
    assert art.info("ok.txt").content_type == fine


def test_strided_or_released_memoryviews_are_refused_cleanly(mem: Memory) -> None:
    """Regression (test_fuzz_artifact_args): a strided memoryview (not C-contiguous) raised a raw TypeError from
    ``memoryview.cast``."""
    art = mem.session("views").artifacts
    released = memoryview(b"gone")
    released.release()
    for bad in (memoryview(b"abcdef")[::2], memoryview(b"abcdef")[::-1], released):
        with pytest.raises(InvalidArtifact):
            art.save("bad.bin", bad)
    assert art.manifest() == {} and _entries(mem, "views", CHUNK) == [] and _entries(mem, "views", SAVE) == []
    assert art.load(art.save("view.bin", memoryview(b"<<abc>>")[2:-2]).name) == b"abc"  # contiguous: fine
    assert art.load(art.save("grid.bin", memoryview(b"abcdef").cast("B", (2, 3))).name) == b"abcdef"


def test_text_mode_sources_are_refused_even_when_empty(mem: Memory, tmp_path: Path) -> None:
    """Regression (test_fuzz_artifact_args): an empty text-mode file (or a stream whose read() returned "" or None)
    was stored as an empty artifact instead of being refused like a non-empty one."""
    art = mem.session("texts").artifacts
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")

    class Returns:
        def __init__(self, value: Any) -> None:
            self.value = value

        def read(self, n: int = -1) -> Any:
            return self.value

    with path.open(encoding="utf-8") as text_file:
        for bad in (text_file, io.StringIO(""), Returns(""), Returns(None), Returns("text")):
            with pytest.raises(InvalidArtifact):
                art.save("bad.bin", bad)
    assert art.manifest() == {} and _entries(mem, "texts", CHUNK) == [] and _entries(mem, "texts", SAVE) == []
    with path.open("rb") as binary_file:
        assert art.save("empty.bin", binary_file).size == 0  # an empty binary file is an empty artifact


def test_seek_and_partial_reads(mem: Memory) -> None:
    art = mem.session("seek").artifacts
    data = _blob(3 * MB)
    art.save("x", data)
    with art.open("x") as reader:
        assert reader.seekable() and reader.readable()
        reader.seek(CHUNK_SIZE - 3)
        assert reader.read(6) == data[CHUNK_SIZE - 3 : CHUNK_SIZE + 3] and reader.tell() == CHUNK_SIZE + 3
        reader.seek(-10, io.SEEK_END)
        assert reader.read() == data[-10:]
        reader.seek(0)
        buffer = bytearray(1000)
        assert reader.readinto(buffer) == 1000 and bytes(buffer) == data[:1000]
    with pytest.raises(ValueError):
        reader.read(1)  # closed


def test_versions_manifest_and_deletes(mem: Memory) -> None:
    art = mem.session("ver").artifacts
    first = [art.save("plan.md", f"v{i}".encode()) for i in (1, 2, 3)]
    art.save("notes/a.txt", b"a")
    assert [v.version for v in first] == [1, 2, 3]
    assert [v.version for v in art.versions("plan.md")] == [1, 2, 3]
    assert art.load("plan.md") == b"v3" and art.load("plan.md", version=1) == b"v1"
    manifest = art.manifest()
    assert sorted(manifest) == ["notes/a.txt", "plan.md"]
    assert manifest["plan.md"] == first[2] and manifest["plan.md"].content_type == "text/markdown"
    assert [v.name for v in art.list()] == ["notes/a.txt", "plan.md"]
    assert art.delete("plan.md", version=2) == 1
    assert [v.version for v in art.versions("plan.md")] == [1, 3]
    with pytest.raises(ArtifactNotFound):
        art.load("plan.md", version=2)
    assert art.delete("plan.md", version=3) == 1  # the latest: the previous one is the latest again
    assert art.load("plan.md") == b"v1" and art.manifest()["plan.md"].version == 1
    assert art.save("plan.md", b"v4").version == 4  # numbers are never reused (an old URL never changes meaning)
    assert art.delete("plan.md", version=99) == 0
    assert art.delete("plan.md") == 2
    assert art.versions("plan.md") == [] and "plan.md" not in art.manifest()
    with pytest.raises(ArtifactNotFound):
        art.load("plan.md")
    assert not [k for k in _entries(mem, "ver", CHUNK) if k.startswith("plan.md\x1f")]  # its chunks are gone
    assert art.save("plan.md", b"v5").version == 5
    assert art.load("notes/a.txt") == b"a"
    with pytest.raises(InvalidArtifact):
        art.load("plan.md", version=0)


def test_deleting_big_versions_keeps_the_rest_readable(make_memory: Any) -> None:
    # on the file backend this compacts the entries log, copying the surviving chunks line by line
    art = make_memory().session("big").artifacts
    kept = _blob(CHUNK_SIZE + 99, seed=3)
    art.save("a", _blob(3 * MB, seed=1))
    art.save("b", _blob(2 * MB, seed=2))
    art.save("c", kept)
    for name in ("a", "b"):
        assert art.delete(name) == 1
        assert art.load("c") == kept
    art.save("d", _blob(MB // 2, seed=4))
    fresh = make_memory().session("big").artifacts  # a new store instance reads what is on disk or server
    assert [v.name for v in fresh.list()] == ["c", "d"]
    assert fresh.load("c") == kept and fresh.load("d") == _blob(MB // 2, seed=4)


def test_names_are_validated_and_normalised(mem: Memory) -> None:
    art = mem.session("names").artifacts
    for bad in ("", "..", "../etc/passwd", "a/../../b", "/abs/path", "C:/windows", "back\\slash", "nul\x00byte",
                "new\nline", "a//b", "trailing/", "./x", "x" * 513, "é" * 257, 7, None):
        with pytest.raises(InvalidArtifact):
            art.save(bad, b"x")  # type: ignore[arg-type]
    assert not mem.session("names").exists()  # nothing was written for any of them
    decomposed = "cafe\u0301.txt"
    saved = art.save(decomposed, b"nfc")
    assert saved.name == "caf\u00e9.txt" and art.load("caf\u00e9.txt") == b"nfc" and art.load(decomposed) == b"nfc"
    for fine in ("..hidden", "a/b/c.d", "x..y", "spaces are ok.txt", "ünïcödé/😀.png", "x" * 512):
        assert art.load(art.save(fine, b"ok").name) == b"ok"


def test_urls_open_only_in_their_namespace(make_memory: Any) -> None:
    mem = make_memory(namespace="tenant-a")
    saved = mem.session("s/1").artifacts.save("dir/report v2.pdf", _blob(CHUNK_SIZE + 7))
    assert saved.url == "memvault://tenant-a/s%2F1/dir%2Freport%20v2.pdf?version=1"
    with mem.open_artifact(saved.url) as reader:
        assert reader.read() == _blob(CHUNK_SIZE + 7) and reader.info.name == "dir/report v2.pdf"
    other = make_memory(namespace="tenant-b")
    with pytest.raises(ArtifactNotFound):
        other.open_artifact(saved.url)
    forged = saved.url.replace("tenant-a", "tenant-b")
    with pytest.raises(ArtifactNotFound):  # same session id and name in tenant b: there is no such artifact
        other.open_artifact(forged)
    other.session("s/1").artifacts.save("dir/report v2.pdf", b"tenant b's own")
    assert other.open_artifact(forged).read() == b"tenant b's own"
    assert mem.open_artifact(saved.url).read() == _blob(CHUNK_SIZE + 7)
    for bad in ("http://x/y/z?version=1", "memvault://a/b?version=1", "memvault://a/b/c", "memvault://a/b/c?version=0",
                "memvault://a/b/..?version=1", "memvault://a/b%0A/c?version=1", 42):
        with pytest.raises(InvalidArtifact):
            mem.open_artifact(bad)  # type: ignore[arg-type]
    mem.session("s/1").artifacts.delete("dir/report v2.pdf")
    with pytest.raises(ArtifactNotFound):
        mem.open_artifact(saved.url)


def test_size_limit_stores_nothing(make_memory: Any) -> None:
    mem = make_memory(max_artifact_bytes=2 * MB)
    art = mem.session("lim").artifacts
    assert art.save("ok", _blob(2 * MB)).size == 2 * MB
    with pytest.raises(ArtifactTooLarge):
        art.save("big", _blob(2 * MB + 1))
    with pytest.raises(ArtifactTooLarge):  # unknown size: found out while streaming, what was written is removed
        art.save("big", Unsized(_blob(3 * MB)))
    assert _entries(mem, "lim", SAVE) == [] and [k.split("\x1f")[0] for k in _entries(mem, "lim", CHUNK)] == ["ok"] * 2
    with pytest.raises(ArtifactNotFound):
        art.load("big")
    assert art.load("ok") == _blob(2 * MB)


def test_concurrent_saves_of_one_name_get_distinct_versions(mem: Memory) -> None:
    mem.session("conc").artifacts.save("shared.bin", b"seed")
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def saver(i: int) -> None:
        data = _blob(CHUNK_SIZE // 2 + i * 1000, seed=i)
        try:
            version = mem.session("conc").artifacts.save("shared.bin", data).version
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            return
        with lock:
            results[version] = data

    threads = [threading.Thread(target=saver, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(2, 10))
    art = mem.session("conc").artifacts
    for version, data in results.items():
        assert art.load("shared.bin", version=version) == data
    assert art.manifest()["shared.bin"].version == 9


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no clean-up runs."""


class CrashingSource(io.RawIOBase):
    def __init__(self, after: int) -> None:
        self.after, self.sent = after, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent >= self.after:
            raise Crash
        n = min(len(buffer), self.after - self.sent)
        buffer[:n] = b"z" * n
        self.sent += n
        return n


def _check_after_crash(mem: Memory, sid: str) -> None:
    art = mem.session(sid).artifacts
    assert art.manifest()["big.bin"].version == 1 and art.load("big.bin") == b"old version"
    assert [v.version for v in art.versions("big.bin")] == [1]  # no dangling version
    assert len(_entries(mem, sid, CHUNK)) > 1  # the orphaned chunks are still there ...
    later = art.save("big.bin", b"new version")  # ... and a later save works
    assert later.version == 2 and art.load("big.bin") == b"new version"
    assert art.sweep(grace=0) == 1  # the crashed save's chunks and mark go
    assert _entries(mem, sid, SAVE) == []
    assert len(_entries(mem, sid, CHUNK)) == 2  # one chunk per committed version
    assert [art.load("big.bin", version=v) for v in (1, 2)] == [b"old version", b"new version"]


def test_a_crash_mid_save_leaves_the_old_manifest(mem: Memory) -> None:
    art = mem.session("crash").artifacts
    art.save("big.bin", b"old version")
    with pytest.raises(Crash):
        art.save("big.bin", CrashingSource(5 * MB + 3))
    _check_after_crash(mem, "crash")


KILLED = r"""
import json, sys
from memvault import Memory

class Endless:
    def __init__(self):
        self.sent = 0
    def read(self, n):
        if self.sent >= 6 * (1 << 20):
            print("mid", flush=True)
            sys.stdin.readline()  # killed while waiting here: 6 chunks written, no commit
        self.sent += n
        return b"y" * n

with Memory(sys.argv[1], **json.loads(sys.argv[2])) as mem:
    art = mem.session("killed").artifacts
    art.save("big.bin", b"old version")
    print("saved", flush=True)
    art.save("big.bin", Endless())
"""


#: the backends a second process can reach by URL (in-process stores: the crash test above)
MULTIPROCESS = sorted(name for name in BACKENDS if name != "memory")


@pytest.mark.parametrize("backend", MULTIPROCESS)
def test_kill_9_during_a_save(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    target, options = BACKENDS[backend](request, f"k{uuid.uuid4().hex[:12]}", tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, target, json.dumps(options)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "saved", proc.stderr.read()  # type: ignore[union-attr]
        assert proc.stdout.readline().strip() == "mid", proc.stderr.read()  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with Memory(target, **options) as mem:
        assert len(_entries(mem, "killed", CHUNK)) == 7  # v1's chunk and the 6 of the killed save
        _check_after_crash(mem, "killed")


def test_artifacts_live_and_die_with_their_session(make_memory: Any) -> None:
    mem = make_memory()
    s = mem.session("gone")
    s.artifacts.save("a.bin", _blob(CHUNK_SIZE + 1))
    s.state.set({"x": 1})
    s.add("user", "hi")
    assert mem.delete_session("gone")
    for kind in (CHUNK, SAVE, VERSION, "state"):
        assert _entries(mem, "gone", kind) == []
    assert s.artifacts.list() == [] and s.artifacts.manifest() == {}
    with pytest.raises(ArtifactNotFound):
        s.artifacts.load("a.bin")
    s.artifacts.save("b.bin", b"b")
    assert s.clear() == 0 and s.artifacts.list() == []  # clear drops artifacts too
    reopened = make_memory().session("gone").artifacts
    reopened.save("c.bin", b"c", metadata={"k": [1, 2]})
    assert make_memory().session("gone").artifacts.info("c.bin").metadata == {"k": [1, 2]}


def test_sweep_keeps_running_saves_and_removes_abandoned_ones(make_memory: Any, clock: Any) -> None:
    mem = make_memory(clock=clock)
    art = mem.session("sw").artifacts
    art.save("keep", b"k")
    with pytest.raises(Crash):
        art.save("half", CrashingSource(2 * MB + 1))
    assert art.sweep() == 0  # it may still be running: no progress mark is older than the grace period yet
    clock.advance(3600)
    art.save("other", b"o")  # a save sweeps only its own name
    assert len(_entries(mem, "sw", CHUNK)) == 4
    assert art.sweep() == 1 and len(_entries(mem, "sw", CHUNK)) == 2
    with pytest.raises(Crash):
        art.save("half", CrashingSource(MB + 1))
    clock.advance(3600)
    assert art.save("half", b"done").version == 1  # the next save of that name sweeps the abandoned one
    assert sorted(k.split("\x1f")[0] for k in _entries(mem, "sw", CHUNK)) == ["half", "keep", "other"]


async def test_the_async_face(make_memory: Any) -> None:
    mem = make_memory()
    art = mem.session("aio").artifacts
    data = _blob(2 * MB + 3)
    saved = await art.asave("a.bin", data, content_type="image/png")
    assert isinstance(saved, ArtifactVersion) and saved.content_type == "image/png"
    assert await art.aload("a.bin") == data
    reader = await art.aopen("a.bin")
    async with reader:
        blocks = [block async for block in reader]
    assert b"".join(blocks) == data and len(blocks) == 3
    streamed = await mem.aopen_artifact(saved.url)
    assert await streamed.read(5) == data[:5] and await streamed.read() == data[5:]
    assert (await art.asave("a.bin", b"two")).version == 2
    assert [v.version for v in await art.aversions("a.bin")] == [1, 2]
    assert [v.name for v in await art.alist()] == ["a.bin"] and (await art.amanifest())["a.bin"].version == 2
    assert (await art.ainfo("a.bin", 1)).size == len(data)
    assert await art.adelete("a.bin", 1) == 1
    assert await art.asweep(grace=0) == 0
    assert art.load("a.bin") == b"two"


# -- 200 MB through a file object and open(): memory stays flat ----------------------------------------------------

STREAMED = r"""
import hashlib, json, resource, sys
from memvault import Memory

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

url, options, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
with Memory(url, **options) as mem:
    art = mem.session("big").artifacts
    art.save("warm-up", b"w" * (3 << 20))  # connections, code paths, first buffers: not counted
    assert len(art.load("warm-up")) == 3 << 20
    base = peak()
    with open(path, "rb") as source:
        saved = art.save("big.bin", source)
    after_save = peak()
digest, size = hashlib.sha256(), 0
with Memory(url, **options) as again, again.session("big").artifacts.open("big.bin") as reader:  # a fresh store
    for block in reader:
        digest.update(block)
        size += len(block)
after_load = peak()
print(json.dumps({"base": base, "save": after_save - base, "load": after_load - after_save, "size": size,
                  "sha256": digest.hexdigest(), "saved_sha256": saved.sha256}))
"""
BIG = 200 * MB


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "postgres", "redis", "sqlite"])
def test_a_200_mb_artifact_streams_in_and_out_in_little_memory(backend: str, request: pytest.FixtureRequest,
                                                                tmp_path: Path) -> None:
    target, options = BACKENDS[backend](request, f"b{uuid.uuid4().hex[:12]}", tmp_path)
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for i in range(BIG // MB):
            block = hashlib.sha256(b"%d" % i).digest() * (MB // 32)
            digest.update(block)
            fh.write(block)
    proc = subprocess.run([sys.executable, "-c", STREAMED, target, json.dumps(options), str(path)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["size"] == BIG and report["sha256"] == report["saved_sha256"] == digest.hexdigest()
    assert report["save"] < BIG // 2, report  # peak RSS growth while saving
    assert report["save"] + report["load"] < BIG // 2, report  # ... and while reading it back through open()
