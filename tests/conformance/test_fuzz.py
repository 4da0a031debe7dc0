"""Property-based hardening of every public argument, on every backend of the conformance registry.

Each ``test_fuzz_<target>`` drives one family of public arguments with hostile values (Hypothesis) inside ONE
Memory per backend (a fresh session id per example: opening a Memory per example is too slow on servers). The
oracle, per example:

- a call either succeeds, or raises a :class:`memvault.errors.MemvaultError` subclass. Anything else (TypeError,
  ValueError, RecursionError, UnicodeEncodeError, sqlite3 / psycopg / redis errors, ...) is a defect;
- input that the documented rules make invalid (non-str / empty / > 512 bytes / control characters / lone
  surrogates in ids, non-JSON values such as NaN, sets, bytes, tuples, datetimes, non-str keys, metadata that is
  not a dict, ...) MUST raise a MemvaultError;
- what succeeded round-trips exactly (read back, listed, exported and re-imported), and listing filters follow
  JSON equality (objects regardless of key order, arrays ordered, ``true`` only equals booleans, ``1 == 1.0``,
  strings exact) identically on every backend;
- data stored before (a few seeded sessions, a summary and a collection) never changes: it is snapshotted once
  and compared after every example;
- session state, metadata updates and artifacts (``state_args``, ``update_metadata``, ``artifact_args``,
  ``artifact_urls``; rules in docs/limits.md and docs/state-and-artifacts.md): what succeeds reads back exactly
  (``state.get()`` is the data set, its history names what changed; a merge keeps the existing keys' places; an
  artifact loads back byte-identical with the returned size and sha256, by name, version and URL), a refused call
  changes nothing (state version, session metadata and ``updated_at``, manifest, no chunk left), and a seeded state
  and seeded artifacts join the snapshot.

Defects are collected, not raised on the spot: every example runs, each distinct defect (kind + where it was
raised) is kept with its shortest witness, and the test fails at the end listing them all (with the backend, the
input, the exception type and the memvault frame). ``MEMVAULT_FUZZ_MODE=raise`` fails on the first defect instead
and lets Hypothesis shrink it.

Every target first runs the inputs the issue names (``EXPLICIT``), then the drawn examples. Under the derandomized
``ci`` profile the examples of a target are drawn once per test session (seeded by the target's name) and replayed
on every backend: drawing costs more than running them on the in-process backends, and a derandomized run would
draw the same examples on each backend anyway. ``nightly`` and ``raise`` mode run Hypothesis live per backend.

Knobs (environment): ``MEMVAULT_FUZZ_PROFILE`` = ``ci`` (default: reproducible), ``nightly`` (2,500 examples per
target and backend, random seeds; e.g. ``MEMVAULT_FUZZ_PROFILE=nightly pytest tests/conformance/test_fuzz.py``) or
``smoke``; ``MEMVAULT_FUZZ_EXAMPLES`` overrides the count of every target; ``MEMVAULT_FUZZ_REPORT`` = a path that
receives the per-target / per-backend example counts, timings and defects as JSON. The counts are also printed in
pytest's terminal summary.
"""

from __future__ import annotations

import array
import asyncio
import base64
import hashlib
import io
import json
import math
import mimetypes
import os
import re
import time
import traceback
import unicodedata
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from memvault import Memory, Message, SessionInfo
from memvault.artifacts import CHUNK, SAVE
from memvault.compression import CompressionPolicy
from memvault.errors import ArtifactNotFound, ArtifactTooLarge, MemvaultError, SessionNotFound, StateConflict
from memvault.recall import Document
from tests.backends import MemoryFactory
from tests.conftest import FakeClock

# -- profiles -------------------------------------------------------------------------------------------------------

_COMMON: dict[str, Any] = {
    "deadline": None,
    "database": None,
    "print_blob": False,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
}
#: examples per target and backend (plus the explicit ones, see EXPLICIT). "ci" is what fits the suite's CI budget
#: (measured on 2 cores: about 7 minutes for all targets on the six backends of the registry, plus about 1 minute
#: for the four state / artifact targets, at most ~6 s each per backend); "nightly" is the issue's >= 2,000 per
#: target and backend (about 4x that time).
PROFILES: dict[str, dict[str, Any]] = {
    "ci": {"max_examples": 600, "derandomize": True},
    "nightly": {"max_examples": 2500, "derandomize": False},
    "smoke": {"max_examples": 25, "derandomize": True},
}
for _name, _options in PROFILES.items():
    settings.register_profile(f"memvault-fuzz-{_name}", **_COMMON, **_options)
PROFILE = os.environ.get("MEMVAULT_FUZZ_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise pytest.UsageError(f"MEMVAULT_FUZZ_PROFILE must be one of {sorted(PROFILES)}, got {PROFILE!r}")
_BASE = settings.get_profile(f"memvault-fuzz-{PROFILE}")
#: relative cost of a target's example; servers run the same count as in-process backends
_WEIGHT: dict[str, float] = {"memory_args": 0.1}
MODE = os.environ.get("MEMVAULT_FUZZ_MODE", "collect")


def fuzz_settings(target: str) -> settings:
    override = os.environ.get("MEMVAULT_FUZZ_EXAMPLES")
    base = int(override) if override else _BASE.max_examples
    return settings(_BASE, max_examples=max(1, int(base * _WEIGHT.get(target, 1.0))))


#: live = one Hypothesis run per backend (random seeds per backend: nightly; shrinking: raise mode). Otherwise the
#: derandomized examples of a target are drawn once per test session and replayed on every backend: they would be
#: the same on each backend anyway, and drawing them costs more than running them on the in-process backends.
LIVE = MODE == "raise" or not _BASE.derandomize
_GENERATED: dict[str, list[dict[str, Any]]] = {}
GENERATION_SECONDS: dict[str, float] = {}


def generated(target: str, strategies: dict[str, st.SearchStrategy[Any]]) -> list[dict[str, Any]]:
    """The derandomized examples of ``target`` (drawn by Hypothesis once per session, then cached)."""
    if target not in _GENERATED:
        drawn: list[dict[str, Any]] = []

        @settings(fuzz_settings(target), derandomize=False)  # reproducible through the seed below
        @seed(zlib.crc32(target.encode()))
        @given(case=st.fixed_dictionaries(strategies))
        def collect(case: dict[str, Any]) -> None:
            drawn.append(case)

        started = time.perf_counter()
        collect()
        GENERATION_SECONDS[target] = time.perf_counter() - started
        _GENERATED[target] = drawn
    return _GENERATED[target]


class ReIter(list):  # type: ignore[type-arg]
    """Stands for "an iterator over these items" in a drawn example (a real iterator would be used up by the first
    backend that replays the example); tests turn it into ``iter(...)`` right before the call."""

    def __repr__(self) -> str:
        return f"iter({list.__repr__(self)})"


# -- hostile values -------------------------------------------------------------------------------------------------

SEED_NS = "fuzz-seed"
ROLES = ("system", "user", "assistant", "tool")
DIM = 8  # the "hash-8" embedder: cheap vectors

# -- JSON helpers (iterative: inputs nest 1,000 deep) ----------------------------------------------------------------


def json_problem(value: Any) -> str | None:
    """Why ``value`` is not exactly representable as JSON text (None when it is)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if type(item) is not int:
                return f"int subclass {type(item).__name__}"
            continue
        if isinstance(item, float):
            if type(item) is not float:
                return f"float subclass {type(item).__name__}"
            if not math.isfinite(item):
                return f"float {item!r}"
            continue
        if isinstance(item, str):
            if type(item) is not str:
                return f"str subclass {type(item).__name__}"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "lone surrogate"
            continue
        if type(item) is list:
            stack.extend(item)
            continue
        if type(item) is dict:
            for key, sub in item.items():
                if not isinstance(key, str) or type(key) is not str:
                    return f"non-str dict key: {type(key).__name__}"
                stack.append(key)
                stack.append(sub)
            continue
        return type(item).__name__
    return None


def _numbers_equal(a: Any, b: Any, strict: bool) -> bool:
    if strict and type(a) is not type(b):
        return False
    return bool(a == b)


def json_equal(a: Any, b: Any, *, strict: bool = False) -> bool:
    """JSON equality: objects regardless of key order, arrays ordered, booleans only equal booleans, numbers by value
    (``strict``: also by Python type), strings exactly. Anything that is not JSON equals nothing."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif x is None or y is None:
            if x is not None or y is not None:
                return False
        elif isinstance(x, (int, float)) and isinstance(y, (int, float)):
            if not _numbers_equal(x, y, strict):
                return False
        elif isinstance(x, str) and isinstance(y, str):
            if x != y:
                return False
        elif type(x) is list and type(y) is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif type(x) is dict and type(y) is dict:
            if set(x) != set(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        else:
            return False
    return True


def has_big_float(value: Any) -> bool:
    """A float >= 2**53 in magnitude: its JSON text and its binary value may compare differently with a large int."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and math.isfinite(item) and abs(item) >= 2**53:
            return True
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False


def safe_repr(value: Any, limit: int = 240) -> str:
    """repr() that survives 1,000-deep nesting and huge ints, cut to ``limit`` characters."""

    def walk(item: Any, depth: int) -> str:
        if depth > 6:
            return "…"
        if isinstance(item, dict):
            inner = ", ".join(f"{walk(k, depth + 1)}: {walk(v, depth + 1)}" for k, v in list(item.items())[:6])
            return "{" + inner + (", …" if len(item) > 6 else "") + "}"
        if isinstance(item, (list, tuple)):
            inner = ", ".join(walk(v, depth + 1) for v in list(item)[:6])
            open_, close = ("[", "]") if isinstance(item, list) else ("(", ")")
            return open_ + inner + (", …" if len(item) > 6 else "") + close
        if isinstance(item, str) and len(item) > 60:
            return f"{item[:20]!r}*{len(item)}chars"
        try:
            return repr(item)
        except Exception:
            return f"<{type(item).__name__}>"

    text = walk(value, 0)
    depth = _depth(value)
    if depth > 6:
        text += f" (nesting depth {depth})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
    return deepest


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1, as memvault.validation refuses them


def id_problem(value: Any) -> str | None:
    """The documented reasons an id (session id, namespace, user id) is refused; None when none applies."""
    if not isinstance(value, str):
        return f"not a str ({type(value).__name__})"
    if not value:
        return "empty"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "lone surrogate"
    if size > 512:
        return f"{size} UTF-8 bytes (> 512)"
    if _CONTROL.search(value):
        return "control character"
    return None


SPECIAL_CHARS = [
    "\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f", "\x80", "\x85", "\xa0", "\u2028", "\u2029", "\ufeff",
    "\u200b", "\ufffd", "\uffff", "\U0010ffff", "\ud800", "\udbff", "\udc00", "\udfff", "é", "\u0301", "🚀",
    "#", "{", "}", "\\", "/", ".", "%", "~", "*", "?", "[", "]", "'", '"', ":", "$", " ", "\u3000", "\x1e",
]
CHARS = st.characters(codec=None, exclude_categories=[], include_characters="".join(SPECIAL_CHARS))
PIECES = [
    "a", "B", "0", "-", "_", ".", "..", "/", "../", "\\", "#", "#collections", SEED_NS, "default", "{", "}", "\\(",
    "ix:", "%2e", "%", "~", "*", "\x00", "\x1f", "\n", "\ud800", "\udcff", "é", "🚀", " ", "'", '"', "$and", ":",
]
NASTY_IDS: list[Any] = [
    "", " ", "  ", "a", "../../etc/passwd", "..", ".", "/", "\\", "a/b\\c", "/abs/path", "\x00", "a\x00b", "\n",
    "\t", "\x1f", "\x7f", "\x85", "\u2028", "\ud800", "a\udcff", "\udfff\ud800", "\ufeff", "\u200b", "\U0010ffff",
    "é", "e\u0301", "X#collections", f"{SEED_NS}#collections", "default#collections", "#collections", "#", "{",
    "}", "{}", "{a}", "a}b{c", "\\(", "\\)", "ix:{default}", "%2e%2e", "%00", "%41", "~" + "0" * 64, "CON",
    "nul.txt", "*", "?", "[", "'", '"', "' OR 1=1 --", "$and", "null", "None", "true", "0", "-1", " lead",
    "trail ", "x" * 512, "x" * 513, "é" * 256, "é" * 257, "🚀" * 128, "🚀" * 129, "a" * 120, "a" * 121, "A" * 40,
    "A" * 41, "default", SEED_NS,
]


def _repeat(unit: str, count: int) -> str:
    return unit * count


SURROGATES = {"\ud800"}
#: characters that are valid in text (controls, NUL and odd code points included; no lone surrogates)
#: characters that are valid in text (controls, NUL and odd code points included; no lone surrogates)
CHARS_OK = st.characters(exclude_categories=["Cs"])
#: characters an id may hold (documented: no control characters, no lone surrogates)
CHARS_ID = st.characters(exclude_categories=["Cc", "Cs"])
TEXTS = st.one_of(
    st.text(CHARS, max_size=24),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    st.builds(_repeat, st.sampled_from(["x", "é", "🚀", "%", "A", "\x00", "\ud800"]), st.integers(100, 700)),
)
TEXTS_OK = st.one_of(
    st.text(CHARS_OK, max_size=24),
    st.lists(st.sampled_from([p for p in PIECES if p not in SURROGATES]), min_size=1, max_size=6).map("".join),
    st.builds(_repeat, st.sampled_from(["x", "é", "🚀", "\x00", "\u2028"]), st.integers(100, 2000)),
)
JUNK_IDS = st.one_of(
    st.integers(),
    st.binary(max_size=8),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
    st.tuples(st.text(max_size=2)),
    st.floats(),
    st.builds(object),
)
ID_VALUES = st.one_of(st.sampled_from(NASTY_IDS), TEXTS, TEXTS, JUNK_IDS)
IDS_OK = st.one_of(
    st.sampled_from([v for v in NASTY_IDS if id_problem(v) is None]),
    st.text(CHARS_ID, min_size=1, max_size=24),
    st.lists(st.sampled_from([p for p in PIECES if id_problem(p) is None]), min_size=1, max_size=6).map("".join),
)
IDS_BAD = st.one_of(st.sampled_from([v for v in NASTY_IDS if id_problem(v) is not None]), JUNK_IDS)

KEYS = st.one_of(
    st.text(CHARS, max_size=8),
    st.sampled_from(["", "a", "k", "a.b", "$and", "$eq", "a\x00b", "\ud800", "type", "__proto__", "🚀", "O'Brien"]),
)
KEYS_OK = st.one_of(
    st.text(CHARS_OK, max_size=8),
    st.sampled_from(["", "a", "k", "a.b", "$and", "$eq", "a\x00b", "type", "__proto__", "🚀", "O'Brien"]),
)
JUNK_KEYS = st.one_of(
    st.integers(-3, 3), st.none(), st.booleans(), st.floats(-2, 2), st.tuples(st.integers(0, 2)),
    st.binary(max_size=3), st.frozensets(st.integers(0, 2), max_size=2),
)
SCALARS_OK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**53 - 2, max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(CHARS_OK, max_size=12),
    st.sampled_from([0, -0.0, 0.0, 1, 1.0, 2**63, 2**64, 2**70, -(2**70), 1e308, -1e-308, 5e-324, 0.1, "", "\x00",
                     "a\x00b", "\u2028"]),
)
SCALARS = st.one_of(
    SCALARS_OK,
    st.text(CHARS, max_size=12),
    st.just("\ud800"),
    st.builds(pow, st.just(2), st.just(20_000)),  # over the 4,300-digit str() limit (built lazily: repr would fail)
)
JUNK_VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.binary(max_size=4),
    st.sets(st.integers(0, 3), max_size=3),
    st.frozensets(st.text(max_size=2), max_size=2),
    st.datetimes(),
    st.dates(),
    st.decimals(allow_nan=False, places=2),
    st.complex_numbers(max_magnitude=10),
    st.uuids(),
    st.timedeltas(),
    st.builds(object),
    st.just(Ellipsis),
)


def json_values(junk: bool) -> st.SearchStrategy[Any]:
    leaves = st.one_of(SCALARS, JUNK_VALUES) if junk else SCALARS_OK
    keys = st.one_of(KEYS, KEYS, JUNK_KEYS) if junk else KEYS_OK

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        options = [st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)]
        if junk:
            options.append(st.tuples(children, children))
        return st.one_of(*options)

    return st.recursive(leaves, extend, max_leaves=8)


def nest(kind: str, depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        use_list = kind == "list" or (kind == "mixed" and level % 2 == 0)
        value = [value] if use_list else {"d": value}
    return value


DEEP = st.builds(nest, st.sampled_from(["list", "dict", "mixed"]), st.integers(1, 1100))
JSON_OK = json_values(junk=False)
JSON_ANY = json_values(junk=True)
SPECIAL_METADATA: list[Any] = [
    {}, {"n": math.nan}, {"i": math.inf}, {"big": 2**70}, {"when": datetime(2020, 1, 1)},
    {"s": {1, 2}}, {"b": b"x"}, {"t": (1, 2)}, {1: "int key"}, {None: 1}, {True: 1}, {"a\x00b": 1}, {"k": "v\x00"},
    {"\ud800": 1}, {"k": "\ud800"}, {"d": Decimal("1.5")}, {"o": {"b": 2, "a": 1}}, {"f": 1e16}, {"z": -0.0},
]
NOT_DICTS: list[Any] = [[], [("a", 1)], ["ab"], "ab", "", 5, 0, True, False, (("a", 1),), frozenset(), b"", 1.5]
METADATA_OK = st.one_of(
    st.dictionaries(KEYS_OK, JSON_OK, max_size=5),
    st.sampled_from([m for m in SPECIAL_METADATA if json_problem(m) is None]),
)
METADATA_BAD = st.one_of(
    st.dictionaries(st.one_of(KEYS, JUNK_KEYS), JSON_ANY, min_size=1, max_size=5).filter(lambda m: json_problem(m)),
    st.sampled_from([m for m in SPECIAL_METADATA if json_problem(m) is not None]),
    st.builds(lambda: {"huge": 2**20_000}),
    st.sampled_from(NOT_DICTS),
    st.lists(JSON_OK, max_size=3),
)
METADATA = st.one_of(METADATA_OK, METADATA_OK, st.builds(lambda v: {"deep": v}, DEEP), METADATA_BAD, METADATA_BAD)
UTC_OFFSETS = st.builds(
    timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
)
DATETIMES = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc), UTC_OFFSETS)),
    st.sampled_from([
        datetime.min, datetime.max, datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))), datetime(1970, 1, 1), datetime(2038, 1, 19, 3, 14, 8),
    ]),
)
INTS = st.one_of(
    st.none(),
    st.integers(-3, 12),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 2**70, -(2**70), True, False, 1.5, math.nan, math.inf, "3", [1],
                     b"1", Decimal(2)]),
)


_ABSENT = object()
ABSENT = st.just(_ABSENT)  # a valid draw that leaves the argument out


def mixed(valid: dict[str, st.SearchStrategy[Any]], junk: dict[str, st.SearchStrategy[Any]], *,
          optional: tuple[str, ...] = (), max_junk: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments drawn valid-but-hostile, except at most ``max_junk`` of them drawn from ``junk`` (so most
    examples reach past argument validation). Names in ``optional`` are left out when they draw valid and a coin says
    so (the default is then used)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        count = min(draw(st.sampled_from([0, 0, 0, 1, 1, 2])), max_junk, len(junk))
        names = sorted(junk)
        bad = set(draw(st.permutations(names))[:count]) if count else set()
        out: dict[str, Any] = {}
        for name in valid:
            if name in bad:
                out[name] = draw(junk[name])
            elif name not in optional or draw(st.booleans()):
                value = draw(valid[name])
                if value is not _ABSENT:
                    out[name] = value
        return out

    return build()


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forge_cursor(updated_at: Any, sid: Any) -> str:
    """A cursor in today's wire shape (urlsafe base64 of ``[updated_at, id]``) built by hand."""
    return b64(json.dumps([updated_at, sid], ensure_ascii=False).encode("utf-8", "surrogatepass"))


# -- the harness ----------------------------------------------------------------------------------------------------


class _Abort(Exception):
    """Ends the current example after a defect was recorded."""


@dataclass
class Defect:
    backend: str
    target: str
    kind: str
    where: str
    detail: str
    witness: str
    hits: int = 1

    def line(self) -> str:
        return f"{self.kind} at {self.where}: {self.detail}\n      x{self.hits}, shortest witness: {self.witness}"


@dataclass
class TargetStats:
    examples: int = 0
    accepted: int = 0
    rejected: int = 0
    defective: int = 0
    seconds: float = 0.0
    defects: int = 0


STATS: dict[tuple[str, str], TargetStats] = {}
DEFECTS: list[Defect] = []
_SRC_MARKERS = ("/src/memvault/", "/langchain_memvault/", "/llama_index/")


def _frames(exc: BaseException) -> tuple[str, str]:
    """(deepest memvault frame, deepest frame) of ``exc``'s traceback, as ``path:line (function)``."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = "?"
    for frame in frames:
        for marker in _SRC_MARKERS:
            if marker in frame.filename:
                short = frame.filename.split(marker, 1)[1]
                ours = f"{marker.strip('/').split('/')[-1]}/{short}:{frame.lineno} ({frame.name})"
    last = frames[-1] if frames else None
    raised = f"{os.path.basename(last.filename)}:{last.lineno} ({last.name})" if last else "?"
    return ours, raised


class Example:
    """One example's checks. ``call`` returns (True, result) or (False, MemvaultError); any other exception is a
    defect that ends the example."""

    def __init__(self, fuzz: Fuzz, inputs: dict[str, Any]) -> None:
        self.fuzz = fuzz
        self.inputs = inputs
        self.cleanups: list[Callable[[], Any]] = []
        self.rejected = False
        self.defective = False

    def witness(self, label: str) -> str:
        shown = ", ".join(f"{k}={safe_repr(v)}" for k, v in self.inputs.items())
        return f"{label} with {shown}"

    def call(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        try:
            return True, fn(*args, **kwargs)
        except MemvaultError as exc:
            return False, exc
        except _Abort:
            raise
        except Exception as exc:
            ours, raised = _frames(exc)
            self.fuzz.record(self, f"raw {type(exc).__name__}", ours, f"{label}: {safe_repr(str(exc), 160)} "
                             f"(raised in {raised})", label, key=(type(exc).__name__, ours))
            raise _Abort from None

    def must(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call that has to succeed (a read of what was just written, a valid request)."""
        ok, result = self.call(label, fn, *args, **kwargs)
        if not ok:
            self.fail("refused valid input", label, f"{type(result).__name__}: {safe_repr(str(result), 160)}",
                      reason=type(result).__name__)
        return result

    def primary(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        """The call under test: a MemvaultError here counts the example as rejected."""
        ok, result = self.call(label, fn, *args, **kwargs)
        if not ok:
            self.rejected = True
        return ok, result

    def reject(self, label: str, fn: Callable[..., Any], *args: Any, why: str, **kwargs: Any) -> None:
        """A call that has to raise a MemvaultError because its input is invalid (``why``)."""
        ok, result = self.call(label, fn, *args, **kwargs)
        if ok:
            self.fail("accepted invalid input", label, f"{why}; returned {safe_repr(result, 100)}", reason=why)

    def expect(self, condition: bool, label: str, detail: str, reason: str = "") -> None:
        if not condition:
            self.fail("wrong result", label, detail, reason=reason)

    def flag(self, kind: str, label: str, detail: str, reason: str = "") -> None:
        """Record a defect and go on (to show what the bad state breaks next)."""
        coarse = re.sub(r"(non-str dict key|not a dict): \w+", r"\1", reason)
        self.fuzz.record(self, kind, label, detail, label, key=(kind, label, coarse))

    def fail(self, kind: str, label: str, detail: str, reason: str = "") -> NoReturn:
        coarse = re.sub(r"(non-str dict key|not a dict): \w+", r"\1", reason)
        self.fuzz.record(self, kind, label, detail, label, key=(kind, label, coarse))
        raise _Abort

    def cleanup(self, fn: Callable[[], Any]) -> None:
        self.cleanups.append(fn)


class Fuzz:
    """One Memory on one backend, seeded data and its snapshot, and the defect ledger of one target."""

    def __init__(self, backend: str, mem: Memory, clock: FakeClock) -> None:
        self.backend = backend
        self.mem = mem
        self.clock = clock
        self.target = "?"
        self.ledger: dict[tuple[Any, ...], Defect] = {}
        self.stats = TargetStats()
        #: more seeded data a target adds (name -> read it back), snapshotted and compared like the rest
        self.extra: dict[str, Callable[[], Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.seed()
        self.baseline = self.snapshot()

    # -- seeded data and its snapshot --------------------------------------------------------------------------
    def seed(self) -> None:
        mem = self.mem
        policy = CompressionPolicy(trigger_messages=4, keep_messages=2, trigger_tokens=None, keep_tokens=None)
        s1 = mem.session("seed-1", namespace=SEED_NS, user_id="seed-user", compress=policy,
                         metadata={"topic": "seed", "n": 1, "tags": ["a", "b"], "nested": {"x": 1.5, "ok": True}})
        for i in range(6):
            s1.add("user" if i % 2 == 0 else "assistant", f"seeded turn {i} about the blue lighthouse",
                   metadata={"i": i}, id=f"seed-1-m{i}")
        s1.wait_compression()
        s2 = mem.session("seed-2", user_id="u-seed", metadata={"k": "v"})
        s2.extend([Message("user", "default namespace seed", id="seed-2-m0"),
                   Message("tool", [{"type": "text", "text": "tool out"}], tool_call_id="c1", id="seed-2-m1")])
        docs = mem.collection("docs", namespace=SEED_NS)
        docs.upsert([{"id": f"doc-{i}", "text": f"seeded document {i}", "metadata": {"i": i, "tag": "seed"}}
                     for i in range(3)])

    def snapshot(self) -> dict[str, Any]:
        mem = self.mem
        s1 = mem.session("seed-1", namespace=SEED_NS)
        docs = mem.collection("docs", namespace=SEED_NS)
        return {
            **{name: read() for name, read in self.extra.items()},
            "seed-1 info": mem.get_session("seed-1", namespace=SEED_NS),
            "seed-1 messages": s1.messages(),
            "seed-1 summaries": s1.summaries(),
            "seed-2 info": mem.get_session("seed-2"),
            "seed-2 messages": mem.session("seed-2").messages(),
            "listing": [(i.id, i.user_id, i.metadata, i.message_count) for i in mem.sessions(namespace=SEED_NS)],
            "collection": [(d.id, d.text, d.metadata, d.vector) for d in docs.get([f"doc-{i}" for i in range(3)])],
        }

    def check_seeds(self, ex: Example) -> None:
        try:
            now = self.snapshot()
        except Exception as exc:
            ours, raised = _frames(exc)
            self.record(ex, "seeded data unreadable after example", ours,
                        f"{type(exc).__name__}: {safe_repr(str(exc), 160)} (raised in {raised})", "snapshot",
                        key=("snapshot-error", type(exc).__name__, ours))
            return
        changed = [name for name in now if now[name] != self.baseline[name]]
        if changed:
            self.record(ex, "seeded data changed", "snapshot", f"changed: {changed}", "snapshot",
                        key=("snapshot-changed", tuple(changed)))
            self.baseline = now

    # -- ledger ------------------------------------------------------------------------------------------------
    def record(self, ex: Example, kind: str, where: str, detail: str, label: str, *, key: tuple[Any, ...]) -> None:
        ex.defective = True
        witness = ex.witness(label)
        found = self.ledger.get(key)
        if found is None:
            self.ledger[key] = Defect(self.backend, self.target, kind, where, detail, witness)
        else:
            found.hits += 1
            if len(witness) < len(found.witness):
                found.witness, found.detail = witness, detail
        if MODE == "raise":
            raise AssertionError(f"[{self.backend}] {self.target}: {kind} at {where}: {detail}\n  {witness}")

    @contextmanager
    def example(self, **inputs: Any) -> Iterator[Example]:
        ex = Example(self, inputs)
        self.stats.examples += 1
        try:
            yield ex
        except _Abort:
            pass
        finally:
            for fn in reversed(ex.cleanups):
                with suppress(Exception):
                    fn()
            self.check_seeds(ex)
            if ex.defective:
                self.stats.defective += 1
            elif ex.rejected:
                self.stats.rejected += 1
            else:
                self.stats.accepted += 1

    def run(self, target: str, check: Callable[..., None], **strategies: st.SearchStrategy[Any]) -> None:
        """Run ``check(**case)`` for every example of ``target`` and fail listing the distinct defects found."""
        self.target = target
        started = time.perf_counter()
        try:
            for case in EXPLICIT.get(target, []):  # the issue's named inputs, always run first
                check(**case)
            if LIVE:
                case_strategy = st.fixed_dictionaries(strategies)

                @fuzz_settings(target)
                @given(case=case_strategy)
                def live(case: dict[str, Any]) -> None:
                    check(**case)

                live()
            else:
                for case in generated(target, strategies):
                    check(**case)
        finally:
            self.stats.seconds = time.perf_counter() - started
            self.stats.defects = len(self.ledger)
            STATS[(target, self.backend)] = self.stats
            DEFECTS.extend(self.ledger.values())
        if self.ledger:
            s = self.stats
            lines = [
                f"{len(self.ledger)} distinct defect(s) on backend {self.backend!r}, target {target!r} "
                f"({s.examples} examples: {s.accepted} accepted, {s.rejected} rejected with a MemvaultError, "
                f"{s.defective} defective):"
            ]
            for n, defect in enumerate(sorted(self.ledger.values(), key=lambda d: -d.hits), 1):
                lines.append(f"  {n}. {defect.line()}")
            pytest.fail("\n".join(lines), pytrace=False)

    def fresh(self, prefix: str = "fz") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:16]}"

    def arun(self, awaitable: Any) -> Any:
        """Run a coroutine (an async face under test) on the target's one event loop: a loop per call would make
        the store rebuild its async client each time (a Redis Cluster client rediscovers the cluster: ~80 ms)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()


class _Report:
    """Prints the example counts per target and backend at the end of the run (and writes them as JSON)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not STATS:
            return
        tr = terminalreporter
        tr.section(f"memvault fuzz: examples per target and backend (profile {PROFILE!r})")
        backends = sorted({b for _, b in STATS})
        targets = sorted({t for t, _ in STATS})
        tr.write_line(f"{'target':<18}" + "".join(f"{b:>22}" for b in backends))
        for target in targets:
            cells = []
            for b in backends:
                s = STATS.get((target, b))
                cells.append(f"{s.examples:>6} {s.seconds:>6.1f}s d={s.defects:<3}" if s else f"{'-':>22}")
            tr.write_line(f"{target:<18}" + "".join(f"{c:>22}" for c in cells))
        for b in backends:
            total = sum(s.seconds for (_, bb), s in STATS.items() if bb == b)
            count = sum(s.examples for (_, bb), s in STATS.items() if bb == b)
            tr.write_line(f"  {b}: {count} examples in {total:.1f}s")
        tr.write_line(f"  total: {sum(s.examples for s in STATS.values())} examples in "
                      f"{sum(s.seconds for s in STATS.values()):.1f}s, {len(DEFECTS)} distinct defects")
        if GENERATION_SECONDS:
            tr.write_line(f"  drawing the examples once (included in the first backend's time of each target): "
                          f"{sum(GENERATION_SECONDS.values()):.1f}s")
        path = os.environ.get("MEMVAULT_FUZZ_REPORT")
        if path:
            data = {
                "profile": PROFILE,
                "stats": [{"target": t, "backend": b, **s.__dict__} for (t, b), s in sorted(STATS.items())],
                "defects": [d.__dict__ for d in DEFECTS],
                "generation_seconds": GENERATION_SECONDS,
            }
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, ensure_ascii=False)


@pytest.fixture(scope="session", autouse=True)
def _fuzz_report(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("memvault-fuzz-report"):
        manager.register(_Report(), "memvault-fuzz-report")


@pytest.fixture
def fuzz(backend: str, make_memory: MemoryFactory) -> Iterator[Fuzz]:
    clock = FakeClock()
    harness = Fuzz(backend, make_memory(embedder=f"hash-{DIM}", clock=clock), clock)
    yield harness
    harness.close()


# -- shared checks --------------------------------------------------------------------------------------------------


def check_message(ex: Example, label: str, got: Message, want: Message) -> None:
    """``got`` (read back) is ``want`` (as returned by the write), field by field, exactly."""
    for name in ("id", "role", "content", "name", "tool_calls", "tool_call_id", "metadata", "extras", "seq",
                 "session_id"):
        a, b = getattr(got, name), getattr(want, name)
        if not json_equal(a, b, strict=True):
            loose = json_equal(a, b)
            ex.expect(False, label, f"{name}: read back {safe_repr(a, 80)}, wrote {safe_repr(b, 80)}",
                      reason=f"{name} {'number type' if loose else 'value'}")
    ex.expect(isinstance(got.created_at, datetime) and got.created_at.tzinfo is not None
              and got.created_at == utc(want.created_at), label,
              f"created_at: read back {got.created_at!r}, wrote {want.created_at!r}", reason="created_at")


def check_export_round_trip(ex: Example, mem: Memory, sid: str, ns: str | None, originals: list[Message]) -> None:
    """export -> import into a fresh id -> the same message fields; the header names the session."""
    lines = ex.must("export_session", lambda: list(mem.export_session(sid, namespace=ns)))
    ex.expect(len(lines) == 1 + len(originals), "export_session", f"{len(lines)} lines for {len(originals)} messages")
    header = ex.must("json.loads(export header)", json.loads, lines[0])
    ex.expect(header.get("id") == sid, "export header", f"id {header.get('id')!r} != {sid!r}", reason="id")
    copy = f"copy-{uuid.uuid4().hex[:12]}"
    info = ex.must("import_session(export)", mem.import_session, lines, session_id=copy, namespace=ns)
    ex.cleanup(lambda: mem.delete_session(copy, namespace=ns))
    ex.expect(info.message_count == len(originals), "import_session(export)",
              f"{info.message_count} messages imported, {len(originals)} exported")
    back = ex.must("messages() of the import", mem.session(copy, namespace=ns).messages)
    for a, b in zip(back, originals, strict=False):
        a.session_id, a.seq = b.session_id, b.seq  # seqs are assigned anew by an import
        check_message(ex, "import(export) round trip", a, b)
    joined = f"copy-{uuid.uuid4().hex[:12]}"
    info = ex.must("import_session('\\n'.join(export))", mem.import_session, "\n".join(lines), session_id=joined,
                   namespace=ns)
    ex.cleanup(lambda: mem.delete_session(joined, namespace=ns))
    ex.expect(info.message_count == len(originals), "import_session('\\n'.join(export))",
              f"{info.message_count} messages imported from the joined export, {len(originals)} exported")


# -- targets: ids ---------------------------------------------------------------------------------------------------

HELLO_LINE = json.dumps({"v": 1, "id": "hello-1", "role": "user", "content": "hello",
                         "created_at": "2024-01-01T00:00:00+00:00"})


def _rejected_everywhere(ex: Example, mem: Memory, why: str, **calls: Callable[[], Any]) -> None:
    for label, fn in calls.items():
        ex.reject(label, fn, why=why)


def test_fuzz_session_id(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(sid: Any) -> None:
        with fuzz.example(sid=sid) as ex:
            problem = id_problem(sid)
            ok, s = ex.primary("Memory.session(sid)", mem.session, sid)
            if not ok:
                _rejected_everywhere(
                    ex, mem, f"session() refused it ({type(s).__name__}); every entry point must",
                    get_session=lambda: mem.get_session(sid),
                    delete_session=lambda: mem.delete_session(sid),
                    export_session=lambda: list(mem.export_session(sid)),
                    import_session=lambda: mem.import_session([HELLO_LINE], session_id=sid),
                    recall=lambda: mem.recall("hello", session=sid),
                    context=lambda: mem.context(sid),
                )
                return
            if problem:
                ex.fail("accepted invalid input", "Memory.session(sid)", problem, reason=problem)
            ex.cleanup(lambda: mem.delete_session(sid))
            stored = ex.must("Session.add", s.add, "user", "hello fuzz")
            ex.expect(stored.session_id == sid and stored.seq == 1, "Session.add", f"returned {stored!r}")
            back = ex.must("Session.messages", s.messages)
            ex.expect(len(back) == 1, "Session.messages", f"{len(back)} messages")
            check_message(ex, "Session.messages", back[0], stored)
            got = ex.must("Session.get", s.get, [stored.id])
            ex.expect(len(got) == 1, "Session.get", f"{len(got)} messages")
            info = ex.must("Memory.get_session", mem.get_session, sid)
            ex.expect((info.id, info.namespace, info.message_count) == (sid, mem.namespace, 1), "get_session",
                      f"id={info.id!r} namespace={info.namespace!r} count={info.message_count}")
            listed = ex.must("Memory.sessions", mem.sessions, limit=1000)
            ex.expect(sid in [i.id for i in listed], "Memory.sessions", "the new session is not listed")
            check_export_round_trip(ex, mem, sid, None, back)
            hits = ex.must("Memory.recall(session=sid)", mem.recall, "hello fuzz", session=sid, k=3)
            ex.expect(all(h.session_id == sid for h in hits), "recall(session=sid)",
                      f"hits from {sorted({h.session_id for h in hits})}")
            ctx = ex.must("Memory.context", mem.context, sid, budget_tokens=200)
            ex.expect([m.text for m in ctx.messages if m.role != "system"] == ["hello fuzz"], "Memory.context",
                      f"context {[m.text for m in ctx.messages]!r}")
            ex.expect(ex.must("Memory.delete_session", mem.delete_session, sid) is True, "delete_session",
                      "returned False for an existing session")
            ok, _ = ex.call("get_session after delete", mem.get_session, sid)
            ex.expect(not ok and isinstance(_, SessionNotFound), "get_session after delete", "still found")

    fuzz.run("session_id", run, sid=ID_VALUES)


def test_fuzz_namespace(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(ns: Any) -> None:
        sid = fuzz.fresh()
        with fuzz.example(ns=ns) as ex:
            problem = id_problem(ns)
            ok, s = ex.primary("Memory.session(sid, namespace=ns)", mem.session, sid, namespace=ns)
            if not ok:
                _rejected_everywhere(
                    ex, mem, f"session(namespace=) refused it ({type(s).__name__}); every entry point must",
                    get_session=lambda: mem.get_session(sid, namespace=ns),
                    sessions=lambda: mem.sessions(namespace=ns),
                    delete_session=lambda: mem.delete_session(sid, namespace=ns),
                    export_session=lambda: list(mem.export_session(sid, namespace=ns)),
                    import_session=lambda: mem.import_session([HELLO_LINE], session_id=sid, namespace=ns),
                    recall=lambda: mem.recall("hello", namespace=ns),
                    context=lambda: mem.context(sid, namespace=ns),
                    collection=lambda: mem.collection("c", namespace=ns).count(),
                )
                return
            if problem:
                ex.fail("accepted invalid input", "Memory.session(namespace=)", problem, reason=problem)
            ex.cleanup(lambda: mem.delete_session(sid, namespace=ns))
            stored = ex.must("Session.add", s.add, "user", "hello namespace")
            back = ex.must("Session.messages", s.messages)
            ex.expect(len(back) == 1, "Session.messages", f"{len(back)} messages")
            check_message(ex, "Session.messages", back[0], stored)
            info = ex.must("get_session(namespace=ns)", mem.get_session, sid, namespace=ns)
            ex.expect(info.namespace == ns and info.id == sid, "get_session(namespace=ns)",
                      f"namespace {info.namespace!r}, id {info.id!r}", reason="namespace")
            listed = ex.must("sessions(namespace=ns)", mem.sessions, namespace=ns, limit=1000)
            ex.expect(sid in [i.id for i in listed] and all(i.namespace == ns for i in listed),
                      "sessions(namespace=ns)", f"listed {[(i.namespace, i.id) for i in listed][:5]}")
            for other in {mem.namespace, SEED_NS} - {ns}:
                ok, found = ex.call(f"get_session in {other!r}", mem.get_session, sid, namespace=other)
                ex.expect(not ok, f"get_session in {other!r}", f"the session written to {ns!r} is visible in "
                          f"{other!r}: {found!r}", reason="cross-namespace")
            check_export_round_trip(ex, mem, sid, ns, back)
            hits = ex.must("recall(namespace=ns)", mem.recall, "hello namespace", namespace=ns, k=50, mode="keyword")
            ex.expect(all(h.namespace == ns for h in hits), "recall(namespace=ns)",
                      f"hits from namespaces {sorted({h.namespace for h in hits})}", reason="cross-namespace")
            ex.expect(stored.id in [h.message.id for h in hits], "recall(namespace=ns, mode='keyword')",
                      "the message just written is not found by its own words", reason="own message not recalled")
            ok, col = ex.call("Memory.collection(namespace=ns)", mem.collection, "c", namespace=ns)
            if ok:
                ids = ex.must("Collection.upsert", col.upsert, [{"id": "d1", "text": "doc in ns", "metadata": {"n": 1}}])
                ex.cleanup(col.clear)
                docs = ex.must("Collection.get", col.get, ids)
                ex.expect([(d.id, d.text, d.metadata) for d in docs] == [("d1", "doc in ns", {"n": 1})],
                          "Collection.get", f"got {docs!r}")
            ex.expect(ex.must("delete_session(namespace=ns)", mem.delete_session, sid, namespace=ns) is True,
                      "delete_session", "returned False for an existing session")

    fuzz.run("namespace", run, ns=ID_VALUES)


def test_fuzz_user_id(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(uid: Any) -> None:
        sid = fuzz.fresh()
        with fuzz.example(uid=uid) as ex:
            problem = None if uid is None else id_problem(uid)
            ok, s = ex.primary("Memory.session(sid, user_id=uid)", mem.session, sid, user_id=uid)
            if not ok:
                _rejected_everywhere(
                    ex, mem, f"session(user_id=) refused it ({type(s).__name__}); every entry point must",
                    sessions=lambda: mem.sessions(user_id=uid),
                    recall=lambda: mem.recall("hello", user_id=uid),
                    import_session=lambda: mem.import_session([HELLO_LINE], session_id=sid, user_id=uid),
                )
                ok, _ = ex.call("get_session after refused import", mem.get_session, sid)
                ex.expect(not ok, "import_session(user_id=)", "a refused import left a session behind")
                return
            if problem:
                ex.fail("accepted invalid input", "Memory.session(user_id=)", problem, reason=problem)
            ex.cleanup(lambda: mem.delete_session(sid))
            ex.must("Session.add", s.add, "user", "hello user")
            info = ex.must("get_session", mem.get_session, sid)
            ex.expect(info.user_id == uid and (uid is None or type(info.user_id) is str), "get_session",
                      f"user_id {info.user_id!r} != {uid!r}", reason="user_id")
            if uid is not None:
                listed = ex.must("sessions(user_id=uid)", mem.sessions, user_id=uid, limit=1000)
                ex.expect(sid in [i.id for i in listed] and all(i.user_id == uid for i in listed),
                          "sessions(user_id=uid)", f"listed {[(i.id, i.user_id) for i in listed][:5]}")
                hits = ex.must("recall(user_id=uid)", mem.recall, "hello user", user_id=uid, k=5)
                owners = {h.session_id for h in hits}
                ex.expect(owners <= {i.id for i in listed}, "recall(user_id=uid)", f"hits from {sorted(owners)}")
            lines = ex.must("export_session", lambda: list(mem.export_session(sid)))
            header = json.loads(lines[0])
            ex.expect(header.get("user_id") == uid, "export header", f"user_id {header.get('user_id')!r}")
            copy = fuzz.fresh("copy")
            info2 = ex.must("import_session(export)", mem.import_session, lines, session_id=copy)
            ex.cleanup(lambda: mem.delete_session(copy))
            ex.expect(info2.user_id == uid, "import_session(export)", f"user_id {info2.user_id!r} != {uid!r}")
            if uid is not None:
                copy2 = fuzz.fresh("copy")
                info3 = ex.must("import_session(user_id=uid)", mem.import_session, [HELLO_LINE], session_id=copy2,
                                user_id=uid)
                ex.cleanup(lambda: mem.delete_session(copy2))
                ex.expect(info3.user_id == uid, "import_session(user_id=uid)", f"user_id {info3.user_id!r}")

    fuzz.run("user_id", run, uid=st.one_of(st.none(), ID_VALUES))


# -- targets: session metadata and options --------------------------------------------------------------------------


def _metadata_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"not a dict: {type(value).__name__}"
    return json_problem(dict(value))


def test_fuzz_session_metadata(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(md: Any) -> None:
        sid = fuzz.fresh()
        with fuzz.example(metadata=md) as ex:
            problem = _metadata_problem(md)
            ok, s = ex.primary("Memory.session(metadata=)", mem.session, sid, metadata=md)
            if ok:
                ex.cleanup(lambda: mem.delete_session(sid))
                ok, _ = ex.primary("Session.add (creates the session with its metadata)", s.add, "user", "x")
            if not ok:
                ok2, _ = ex.call("get_session after a refused write", mem.get_session, sid)
                ex.expect(not ok2, "Session.add", "a refused write left a session behind")
                return
            if problem:
                ex.flag("accepted invalid input", "session metadata", problem, reason=problem)
                # what the stored bad value breaks: listing the namespace with any metadata filter, exporting it
                ex.call("sessions(metadata={'other': 1}) in the namespace holding it", mem.sessions,
                        metadata={"other": 1}, limit=1000)
                ex.call("export_session of it", lambda: list(mem.export_session(sid)))
                return
            want = dict(md or {})
            info = ex.must("get_session", mem.get_session, sid)
            if not json_equal(info.metadata, want, strict=True):
                loose = json_equal(info.metadata, want)
                ex.fail("wrong result", "get_session().metadata",
                        f"read back {safe_repr(info.metadata, 100)}", reason="number type" if loose else "value")
            for key in list(want)[:3]:
                value = want[key]
                ok, listed = ex.call("sessions(metadata={key: own value})", mem.sessions, metadata={key: value},
                                     limit=1000)
                if not ok:  # a store may refuse to filter on values it can hold (NUL, > 64-bit ints, deep nesting)
                    ex.expect(extreme({key: value}), "sessions(metadata={key: own value})",
                              f"refused: {type(listed).__name__}: {listed}", reason="refused")
                    continue
                ids = [i.id for i in listed]
                ex.expect(sid in ids, "sessions(metadata={key: own value})",
                          f"the session is not found by its own metadata {key!r}={safe_repr(value, 60)}",
                          reason="own value not found")
                wrong = [i.id for i in listed if key not in i.metadata or not json_equal(i.metadata[key], value)]
                ex.expect(not wrong or has_big_float(value), "sessions(metadata=)",
                          f"{wrong} match {key!r}={safe_repr(value, 60)} but do not hold it", reason="false match")
            lines = ex.must("export_session", lambda: list(mem.export_session(sid)))
            header = ex.must("json.loads(header)", json.loads, lines[0])
            ex.expect(json_equal(header.get("metadata"), want, strict=True), "export header",
                      f"metadata {safe_repr(header.get('metadata'), 100)}")
            copy = fuzz.fresh("copy")
            info2 = ex.must("import_session(export)", mem.import_session, lines, session_id=copy)
            ex.cleanup(lambda: mem.delete_session(copy))
            ex.expect(json_equal(info2.metadata, want, strict=True), "import_session(export)",
                      f"metadata {safe_repr(info2.metadata, 100)}")

    fuzz.run("session_metadata", run, md=METADATA)


TTLS_OK = st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e9), st.sampled_from([0.5, 1, 60, 86400 * 365]))
TTLS_BAD = st.sampled_from([0, -1, -0.0, math.nan, math.inf, -math.inf, 2**70, 1e300, "60", True, False, [60],
                            timedelta(seconds=60), Decimal(60)])
MAX_MESSAGES_OK = st.sampled_from([None, 1, 2, 3, 1000, 2**63, 2**70])
MAX_MESSAGES_BAD = st.sampled_from([0, -1, True, False, 1.5, "3", math.nan, [2]])
POLICY_OK = mixed(
    {"trigger_messages": st.integers(1, 5), "keep_messages": st.integers(1, 3), "trigger_tokens": st.none(),
     "keep_tokens": st.none(), "timeout": st.sampled_from([None, 0.5, 60]), "max_fold_messages": st.integers(1, 400),
     "model": st.sampled_from([None, "gpt-4o", "gpt-3.5-turbo"]), "prompt": st.sampled_from([None,
                                                                                             "{previous} {messages}"])},
    {"trigger_messages": st.sampled_from([0, -1, 1.5, "3", math.nan, 2**70, True]),
     "keep_messages": st.sampled_from([0, -2, "1", True]), "timeout": st.sampled_from([0, -1, math.nan, math.inf, "1"]),
     "max_fold_messages": st.sampled_from([0, None, "x"]), "model": st.sampled_from(["no-such-model", "", 5, "\ud800"]),
     "prompt": st.sampled_from(["no placeholders", "{", "{previous}", 5, ""])},
    optional=("timeout", "max_fold_messages", "model", "prompt"), max_junk=1,
)
COMPRESS_OK = st.one_of(st.none(), st.none(), POLICY_OK)
COMPRESS_BAD = st.sampled_from(["yes", 1, True, object(), {"trigger_messages": 2}])
OPTIONS = mixed({"ttl": TTLS_OK, "max_messages": MAX_MESSAGES_OK, "compress": COMPRESS_OK},
                {"ttl": TTLS_BAD, "max_messages": MAX_MESSAGES_BAD, "compress": COMPRESS_BAD})


def _ttl_kind(ttl: Any) -> str:
    if ttl is None:
        return "none"
    if isinstance(ttl, bool):
        return "bool-expired" if not ttl else "bool"
    if not isinstance(ttl, (int, float)):
        return "bad"
    if math.isnan(ttl):
        return "bad"
    if math.isinf(ttl):
        return "inf" if ttl > 0 else "expired"
    if ttl <= 0:
        return "expired"
    return "huge" if ttl > 1e10 else "ok"


def test_fuzz_session_options(fuzz: Fuzz) -> None:
    mem, clock = fuzz.mem, fuzz.clock

    def run(options: dict[str, Any]) -> None:
        sid = fuzz.fresh()
        ttl, max_messages, compress = options["ttl"], options["max_messages"], options["compress"]
        with fuzz.example(**options) as ex:
            policy: Any = compress
            if isinstance(compress, dict):
                ok, policy = ex.primary("CompressionPolicy(**args)", CompressionPolicy, **compress)
                if not ok:
                    return
            ok, s = ex.primary("Memory.session(ttl=, max_messages=, compress=)", mem.session, sid, ttl=ttl,
                               max_messages=max_messages, compress=policy)
            if ok:
                ex.cleanup(lambda: mem.delete_session(sid))
                ok, _ = ex.primary("Session.extend", s.extend, [Message("user", f"m{i} about lighthouses")
                                                                  for i in range(3)])
                if ok and policy is not None:
                    ok, _ = ex.primary("Session.compress(force=True)", s.compress, force=True)
            if not ok:
                return
            kind = _ttl_kind(ttl)
            if kind == "bad":
                ex.fail("accepted invalid input", "session(ttl=)", f"ttl {ttl!r}", reason=f"ttl {type(ttl).__name__}")
            mm_ok = max_messages is None or (isinstance(max_messages, int) and max_messages >= 1)
            if not mm_ok:
                ex.fail("accepted invalid input", "session(max_messages=)", f"max_messages {max_messages!r}",
                        reason=f"max_messages {type(max_messages).__name__}")
            if isinstance(policy, CompressionPolicy) and isinstance(compress, dict):
                prompt = compress.get("prompt")
                if prompt is not None and (not isinstance(prompt, str) or "{previous}" not in prompt
                                           or "{messages}" not in prompt):
                    ex.fail("accepted invalid input", "CompressionPolicy(prompt=)", f"prompt {prompt!r}",
                            reason="prompt")
                model = compress.get("model")
                if model is not None and not isinstance(model, str):
                    ex.fail("accepted invalid input", "CompressionPolicy(model=)", f"model {model!r}", reason="model")
            elif compress is not None and not isinstance(compress, (dict, CompressionPolicy)):
                ex.fail("accepted invalid input", "session(compress=)", f"compress {compress!r}",
                        reason=f"compress {type(compress).__name__}")
            ok_info, info = ex.call("get_session", mem.get_session, sid)
            back = ex.must("Session.messages", s.messages)
            if kind in ("expired", "bool-expired"):
                ex.expect(not ok_info and back == [], "ttl <= 0", "an already expired session is visible")
                return
            ex.expect(ok_info, "get_session", f"the session is not found: {info!r}")
            cap = 3 if max_messages is None else min(3, int(max_messages))
            ex.expect([m.text for m in back] == [f"m{i} about lighthouses" for i in range(3 - cap, 3)],
                      "Session.messages", f"{[m.text for m in back]} with max_messages={max_messages!r}")
            if kind == "none":
                ex.expect(info.expires_at is None, "info.expires_at", f"{info.expires_at!r} for ttl=None")
            elif kind in ("ok", "bool"):
                want = clock.now + float(ttl)
                got = info.expires_at.timestamp() if info.expires_at else None
                ex.expect(got is not None and abs(got - want) < 1e-3, "info.expires_at",
                          f"{info.expires_at!r} for ttl={ttl!r}", reason="expires_at")
            if policy is not None:
                ex.must("Session.summaries", s.summaries)

    fuzz.run("session_options", run, options=OPTIONS)


# -- targets: message fields ----------------------------------------------------------------------------------------

BLOCKS_OK = st.one_of(
    TEXTS_OK,
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "tool_use", ""]), "text": TEXTS_OK}),
    st.dictionaries(KEYS_OK, JSON_OK, max_size=3),
    JSON_OK,
)
CONTENT_OK = st.one_of(*[TEXTS_OK] * 6, *[st.lists(BLOCKS_OK, max_size=4)] * 3, st.just(""),
                       st.builds(_repeat, st.just("x "), st.just(100_000)))
CONTENT_BAD = st.one_of(
    st.sampled_from([b"bytes", None, 5, 1.5, {"text": "dict"}, ("tuple",), {"a"}, "\ud800", "a\udcffb"]),
    st.lists(st.one_of(BLOCKS_OK, JSON_ANY), min_size=1, max_size=3).filter(lambda v: json_problem(v)),
    st.text(CHARS, min_size=1, max_size=10).filter(lambda v: json_problem(v)),
)
TOOL_CALLS_OK = st.one_of(st.none(), st.just([]), st.lists(st.dictionaries(KEYS_OK, JSON_OK, max_size=3), max_size=3))
TOOL_CALLS_BAD = st.sampled_from(["call", {"id": "c"}, [1, 2], [{"args": math.nan}], [{"x": {1, 2}}], ({"id": "c"},),
                                  [{"id": "\ud800"}]])
OPT_TEXT_OK = st.one_of(st.none(), TEXTS_OK)
OPT_TEXT_BAD = st.sampled_from([5, b"n", ["n"], "\ud800"])
OPT_DICT_OK = st.one_of(st.none(), METADATA_OK)
ROLE_BAD = st.sampled_from(["", "User", "human", "ai", "developer", " user", 5, None, b"user", "user\x00"])
CREATED_BAD = st.sampled_from(["2024-01-01T00:00:00", 1700000000, 1.5, date(2024, 1, 1)])
MESSAGE_ID_OK = st.one_of(st.none(), st.none(), IDS_OK, st.sampled_from(["a\x00b", "\x01", "x" * 5000]))
MESSAGE_ID_BAD = st.sampled_from(["", 5, b"id", "\ud800", ["id"], 1.5])
MESSAGE_FIELDS = mixed(
    {"role": st.sampled_from(ROLES), "content": CONTENT_OK, "name": OPT_TEXT_OK, "tool_calls": TOOL_CALLS_OK,
     "tool_call_id": OPT_TEXT_OK, "metadata": OPT_DICT_OK, "extras": OPT_DICT_OK,
     "created_at": st.one_of(st.none(), DATETIMES), "id": MESSAGE_ID_OK},
    {"role": ROLE_BAD, "content": CONTENT_BAD, "name": OPT_TEXT_BAD, "tool_calls": TOOL_CALLS_BAD,
     "tool_call_id": OPT_TEXT_BAD, "metadata": st.one_of(METADATA_BAD, st.builds(lambda v: {"deep": v}, DEEP)),
     "extras": st.one_of(METADATA_BAD, st.builds(lambda v: {"deep": v}, DEEP)), "created_at": CREATED_BAD,
     "id": MESSAGE_ID_BAD},
)


def _message_problem(fields: dict[str, Any]) -> str | None:
    if fields["role"] not in ROLES:
        return f"role {type(fields['role']).__name__}"
    if not isinstance(fields["content"], (str, list)):
        return f"content {type(fields['content']).__name__}"
    if fields["id"] is not None and (not isinstance(fields["id"], str) or not fields["id"]):
        return "id not a non-empty str"
    for name in ("metadata", "extras"):
        if fields[name] is not None and not isinstance(fields[name], dict):
            return f"{name} {type(fields[name]).__name__}"
    if fields["created_at"] is not None and not isinstance(fields["created_at"], datetime):
        return f"created_at {type(fields['created_at']).__name__}"
    for name in ("content", "metadata", "tool_calls", "extras", "name", "tool_call_id", "id"):
        problem = json_problem(fields[name])
        if problem:
            return f"{name}: {problem}"
    return None


def test_fuzz_message_fields(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(fields: dict[str, Any], how: str) -> None:
        sid = fuzz.fresh()
        role, content = fields["role"], fields["content"]
        with fuzz.example(how=how, **fields) as ex:
            s = mem.session(sid)
            ex.cleanup(lambda: mem.delete_session(sid))
            given_fields = {k: v for k, v in fields.items() if v is not None and k not in ("role", "content")}
            if how == "add":
                ok, result = ex.primary("Session.add", s.add, role, content, **given_fields)
            elif how == "extend-dict":
                ok, result = ex.primary("Session.extend([dict])", s.extend,
                                        [{"role": role, "content": content, **given_fields}])
            else:
                ok, result = ex.primary("Session.extend([Message])", lambda: s.extend(
                    [Message(role=role, content=content, **given_fields)]))
            problem = _message_problem(fields)
            if not ok:
                back = ex.must("Session.messages after a refused write", s.messages)
                ex.expect(back == [], "refused write", f"{len(back)} messages stored by a refused write")
                return
            if problem:
                ex.fail("accepted invalid input", how, problem, reason=problem)
            stored = result if how == "add" else result[0]
            written = Message(role=role, content=content, **given_fields)
            for key in ("role", "content", "name", "tool_calls", "tool_call_id", "metadata", "extras", "id"):
                if key in given_fields or key in ("role", "content"):
                    a, b = getattr(stored, key), getattr(written, key)
                    ex.expect(json_equal(a, b, strict=True), f"{how} return value",
                              f"{key}: returned {safe_repr(a, 80)}, wrote {safe_repr(b, 80)}", reason=key)
            back = ex.must("Session.messages", s.messages)
            ex.expect(len(back) == 1, "Session.messages", f"{len(back)} messages")
            check_message(ex, "Session.messages vs the returned Message", back[0], stored)
            got = ex.must("Session.get([id])", s.get, [stored.id])
            ex.expect(len(got) == 1, "Session.get([id])", f"{len(got)} messages for the stored id")
            check_message(ex, "Session.get", got[0], stored)
            check_export_round_trip(ex, mem, sid, None, back)

    fuzz.run("message_fields", run, fields=MESSAGE_FIELDS, how=st.sampled_from(["add", "extend-dict", "extend-message"]))


# -- targets: read arguments ----------------------------------------------------------------------------------------

READ_IDS = ["a", "b", "c", "d", "e", "abc"]
ID_LISTS = st.one_of(
    st.lists(st.sampled_from([*READ_IDS, "missing", "", "A", "a\x00", "\ud800", 1, None, b"a", ("a",)]), max_size=6),
    st.sampled_from(["abc", "a", "", 5, None, b"ab", {"a": 1}, {"b"}]),
    st.just(ReIter(["a", "b"])),
)


def _read_model(last: Any, start: Any, stop: Any, limit: Any) -> list[str]:
    seqs = [seq for seq in range(1, len(READ_IDS) + 1) if (start is None or seq >= start) and (stop is None or seq < stop)]
    if last is not None:
        seqs = seqs[-last:] if last else []
    if limit is not None:
        seqs = seqs[:limit]
    return [READ_IDS[seq - 1] for seq in seqs]


def _int_kind(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        if value < 0:
            return "bad"
        return "huge" if value >= 2**31 else "ok"
    return "bad"


def test_fuzz_read_args(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(op: str, last: Any, start: Any, stop: Any, limit: Any, ids: Any) -> None:
        sid = fuzz.fresh()
        inputs: dict[str, Any] = {"op": op}
        if op == "messages":
            inputs.update(last=last, start=start, stop=stop, limit=limit)
        elif op == "summaries":
            inputs.update(last=last)
        else:
            inputs.update(ids=ids)
        with fuzz.example(**inputs) as ex:
            s = mem.session(sid)
            ex.cleanup(lambda: mem.delete_session(sid))
            ex.must("Session.extend", s.extend, [Message("user", f"text {i}", id=i) for i in READ_IDS])
            if op in ("messages", "summaries"):
                args = {"last": last, "start": start, "stop": stop, "limit": limit} if op == "messages" else {
                    "last": last}
                kinds = {k: _int_kind(v) for k, v in args.items()}
                ok, result = ex.primary(f"Session.{op}", getattr(s, op), **args)
                bad = [k for k, kind in kinds.items() if kind == "bad"]
                if bad and ok:
                    ex.fail("accepted invalid input", f"Session.{op}", f"{bad[0]}={args[bad[0]]!r}",
                            reason=f"{bad[0]} {type(args[bad[0]]).__name__}")
                if not ok:
                    ex.expect(bool(bad) or any(k in ("huge", "bool") for k in kinds.values()), f"Session.{op}",
                              f"refused valid arguments: {type(result).__name__}: {result}", reason="refused")
                    return
                if op == "messages":
                    want = _read_model(*(None if v is None else int(v) for v in (last, start, stop, limit)))
                    ex.expect([m.id for m in result] == want, "Session.messages",
                              f"returned {[m.id for m in result]}, expected {want}", reason="slice")
                else:
                    ex.expect(result == [], "Session.summaries", f"{result!r} for a session without summaries")
                return
            iterator = isinstance(ids, ReIter)
            items = list(ids) if iterator else None
            ok, result = ex.primary(f"Session.{op}", getattr(s, op), iter(items) if items is not None else ids)
            iterable = isinstance(ids, (list, tuple, set, frozenset, dict)) or iterator
            if isinstance(ids, (str, bytes)) or not iterable:
                if ok:
                    ex.fail("accepted invalid input", f"Session.{op}", f"ids={ids!r} is not a list of ids",
                            reason=f"ids {type(ids).__name__}")
                return
            items = list(ids) if items is None else items
            if not ok:
                ex.expect(isinstance(ids, (dict, set, frozenset)) or any(id_problem(i) for i in items),
                          f"Session.{op}",
                          f"refused a list of str ids: {type(result).__name__}: {result}", reason="refused")
                return
            wanted = [i for i in READ_IDS if i in items]
            strange = [i for i in items if not isinstance(i, str)]
            if op == "get":
                got = [m.id for m in result]
                ex.expect(got == wanted, "Session.get", f"returned {got} for ids {items!r}, expected {wanted}",
                          reason="non-str id matched" if strange else "wrong messages")
            else:
                left = [m.id for m in ex.must("Session.messages", s.messages)]
                ex.expect(result == len(wanted) and left == [i for i in READ_IDS if i not in wanted],
                          "Session.delete_messages", f"deleted {result} for ids {items!r}, left {left}",
                          reason="non-str id matched" if strange else "wrong messages")

    fuzz.run("read_args", run, op=st.sampled_from(["messages", "get", "delete_messages", "summaries"]), last=INTS, start=INTS, stop=INTS,
           limit=INTS, ids=ID_LISTS)


# -- targets: listing -----------------------------------------------------------------------------------------------

LIST_NS = "fuzz-list"
LIST_VALUES: list[Any] = [
    1, 1.0, 0, -0.0, True, False, None, "1", "", "O'Brien", "ab", "a\x00b", [1, 2], [2, 1], [1.0, 2], [True],
    {"a": 1, "b": 2}, {"b": 2, "a": 1}, {"a": {"b": [1, {"c": None}]}}, 2**70, 2**53 + 1, 0.1, 2.5, -7, "🚀",
    {"a": True}, {"a": 1}, [], {}, "a.b",
]
FILTER_VALUES_OK = st.one_of(
    st.sampled_from(LIST_VALUES),
    st.sampled_from(LIST_VALUES),
    st.sampled_from([1.00, 2**70 + 0.0, float(2**53 + 1), "a\x00b", [1, 2.0], {"a": 1.0, "b": 2}, {"a": [1, {"c": None}]},
                     1, True, {"a": True}, [1.0, 2.0]]),
    JSON_OK,
    DEEP,
)
FILTER_VALUES_BAD = st.one_of(JSON_ANY.filter(lambda v: json_problem(v) is not None), JUNK_VALUES,
                              st.sampled_from([(1, 2), {"a": (1,)}, "\ud800", {1: 2}]))
FILTER_KEYS = st.sampled_from(["k", "k", "k", "i", "other", "a.b", "", "missing"])
FILTERS_OK = st.one_of(st.none(), st.just({}), st.dictionaries(FILTER_KEYS, FILTER_VALUES_OK, min_size=1, max_size=2),
                       st.dictionaries(st.one_of(FILTER_KEYS, KEYS_OK), FILTER_VALUES_OK, min_size=1, max_size=2))
FILTERS_BAD = st.one_of(
    st.dictionaries(FILTER_KEYS, FILTER_VALUES_BAD, min_size=1, max_size=2),
    st.dictionaries(JUNK_KEYS, FILTER_VALUES_OK, min_size=1, max_size=2),
    st.dictionaries(st.just("\ud800"), FILTER_VALUES_OK, min_size=1, max_size=1),
    st.sampled_from(NOT_DICTS),
)
T_LIST = 1_800_000_000.0  # FakeClock start; seeds are written one second apart from here
WHEN_OK = st.one_of(
    st.none(),
    st.builds(lambda s: datetime.fromtimestamp(T_LIST + s, timezone.utc), st.floats(-5, 40)),
    st.builds(lambda s: datetime.fromtimestamp(T_LIST + s, timezone.utc).replace(tzinfo=None), st.integers(-5, 40)),
    st.builds(lambda s: datetime.fromtimestamp(T_LIST + s, timezone(timedelta(hours=-7))), st.integers(-5, 40)),
    DATETIMES,
)
WHEN_BAD = st.sampled_from(["2020-01-01", "2027-01-15T08:00:00+00:00", "", "yesterday", int(T_LIST + 10),
                            T_LIST + 10.5, math.nan, True, date(2027, 1, 15), [1], Decimal(1)])
LIMITS_OK = st.one_of(st.integers(1, 30), st.sampled_from([50, 1000, 1001, 2**63, 2**70]))
LIMITS_BAD = st.sampled_from([0, -1, True, False, 1.5, "5", None, math.nan])
CURSOR_JUNK: list[Any] = [
    123, 0, -1, 1.5, True, b"abc", ["a"], {"a": 1}, "[" * 100_000, b64(b"[" * 100_000), b64(b"{" * 5000),
    "not-a-cursor", "!!!", "=", "====", "\ud800", "a\x00b", b64(b"null"), b64(b"[]"), b64(b"[1]"), b64(b"[1,2,3]"),
    b64(b'["1","a"]'), b64(b"[null,\"a\"]"), b64(b"[true,\"a\"]"), b64(b"[[1],\"a\"]"), b64(b"[1, 2]"),
    b64(b'{"a": 1}'), b64(b'"ab"'), b64(b"[NaN, \"a\"]"), b64(b"[Infinity, \"a\"]"), b64(b"[-Infinity, \"a\"]"),
    b64(b"[1e999, \"a\"]"), b64(b'[1, "\\ud800"]'), b64(b'[1, "a\\u0000b"]'), b64("[1, \"\udcff\"]".encode(
        "utf-8", "surrogateescape")), b64(b"\xff\xfe"), b64(b'[1800000010, "s10"]') + "!!", "x" * 10_000,
]
FORGED = st.builds(
    forge_cursor,
    st.one_of(st.integers(-5, 40).map(lambda s: T_LIST + s), st.floats(-5, 40).map(lambda s: T_LIST + s),
              st.sampled_from([0, -1e308, 1e308, 2**70, 1e-300])),
    st.one_of(st.sampled_from([f"s{i:02d}" for i in range(0, 30, 3)] + ["", "\uffff", "z" * 600, "s10\x00"]),
              st.text(max_size=5)),
)
CURSORS_OK = st.one_of(st.none(), st.none(), FORGED)
CURSORS_BAD = st.one_of(st.sampled_from(CURSOR_JUNK), st.binary(max_size=40).map(b64),
                        st.text(st.sampled_from("ABCabc0123-_=+/"), min_size=1, max_size=30))
USERS_OK = st.one_of(st.none(), st.none(), st.sampled_from(["u0", "u1", "nobody"]), IDS_OK)
LISTING = mixed(
    {"user_id": USERS_OK, "metadata": FILTERS_OK, "updated_after": WHEN_OK, "updated_before": WHEN_OK,
     "limit": LIMITS_OK, "cursor": CURSORS_OK},
    {"user_id": IDS_BAD, "metadata": FILTERS_BAD, "updated_after": WHEN_BAD, "updated_before": WHEN_BAD,
     "limit": LIMITS_BAD, "cursor": CURSORS_BAD},
)


@dataclass
class ListingModel:
    """The sessions of LIST_NS as stored: (updated_at, id, user_id, metadata), newest first."""

    rows: list[tuple[float, str, str | None, dict[str, Any]]] = field(default_factory=list)

    def select(self, user_id: str | None, metadata: Mapping[str, Any] | None, after: float | None,
               before: float | None, cursor: tuple[float, str] | None) -> list[str]:
        out = []
        for updated, sid, user, md in sorted(self.rows, key=lambda r: (r[0], r[1]), reverse=True):
            if user_id is not None and user != user_id:
                continue
            if after is not None and updated < after:
                continue
            if before is not None and updated >= before:
                continue
            if metadata and not all(k in md and json_equal(md[k], v) for k, v in metadata.items()):
                continue
            if cursor is not None and not (updated < cursor[0] or (updated == cursor[0] and sid < cursor[1])):
                continue
            out.append(sid)
        return out


def seed_listing(mem: Memory, clock: FakeClock) -> ListingModel:
    model = ListingModel()
    clock.now = T_LIST
    for i, value in enumerate(LIST_VALUES):
        clock.now = T_LIST + i
        sid, user = f"s{i:02d}", ("u0", "u1", None)[i % 3]
        md = {"k": value, "i": i} if i % 4 else {"k": value, "i": i, "other": {"i": i}}
        try:
            mem.session(sid, namespace=LIST_NS, user_id=user, metadata=md).add("user", f"listing seed {i}")
        except MemvaultError:
            continue  # a backend may refuse a seed value (e.g. NUL on PostgreSQL): the model holds what was stored
        model.rows.append((clock.now, sid, user, md))
    clock.now = T_LIST + 100
    return model


def _kinds(metadata: Mapping[str, Any]) -> str:
    """The JSON kinds of a filter's values (separates e.g. object key-order issues from NUL-in-string issues)."""
    names = set()
    for key, value in metadata.items():
        if "\x00" in key:
            names.add("key with NUL")
        if isinstance(value, bool):
            names.add("bool")
        elif isinstance(value, (int, float)):
            names.add("number")
        elif isinstance(value, str):
            names.add("string with NUL" if "\x00" in value else "string")
        elif isinstance(value, list):
            names.add("array")
        elif isinstance(value, dict):
            names.add("object")
        else:
            names.add("null" if value is None else type(value).__name__)
    return "+".join(sorted(names))


def _when_kind(value: Any) -> tuple[str, float | None]:
    """("ok" | "lenient" | "bad", epoch seconds when it has a meaning)."""
    if value is None:
        return "ok", None
    if isinstance(value, datetime):
        try:
            return "ok", utc(value).timestamp()
        except (OverflowError, ValueError, OSError):
            return "lenient", None
    if isinstance(value, bool):
        return "bad", None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return "lenient", float(value)  # epoch seconds: accepted or refused
    if isinstance(value, str):
        try:
            return "lenient", utc(datetime.fromisoformat(value)).timestamp()
        except ValueError:
            return "bad", None
    return "bad", None


def _cursor_kind(value: Any) -> tuple[str, tuple[float, str] | None]:
    """("none" | "forged" | "lenient" | "bad", the position a decodable cursor names)."""
    if value is None:
        return "none", None
    if value == "":
        return "lenient", None
    if not isinstance(value, str):
        return "bad", None
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, TypeError, RecursionError):
        return "bad", None
    if (isinstance(data, list) and len(data) == 2 and isinstance(data[0], (int, float))
            and not isinstance(data[0], bool) and isinstance(data[1], str)):
        return "forged", (float(data[0]), data[1])  # accepted at that position, or refused (signed cursors)
    return "bad", None


def extreme(value: Any) -> bool:
    """Valid JSON a store may still refuse in a filter: NUL characters, ints outside 64 bits, deep nesting."""
    if has_nul(value) or _depth(value) > 16:
        return True
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**64:
            return True
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False


def has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            return True
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
    return False


def test_fuzz_listing_args(fuzz: Fuzz) -> None:
    mem = fuzz.mem
    model = seed_listing(mem, fuzz.clock)
    fuzz.baseline = fuzz.snapshot()

    def run(kwargs: dict[str, Any], walk: bool) -> None:
        user_id, metadata, limit, cursor = kwargs["user_id"], kwargs["metadata"], kwargs["limit"], kwargs["cursor"]
        after, before = kwargs["updated_after"], kwargs["updated_before"]
        with fuzz.example(**kwargs, walk=walk) as ex:
            problems: list[tuple[str, str]] = []  # (argument, what is wrong with it)
            lenient: list[str] = []
            if user_id is not None and id_problem(user_id):
                problems.append(("user_id", id_problem(user_id) or ""))
            if metadata is not None:
                mp = _metadata_problem(metadata)
                if mp:
                    problems.append(("metadata", mp))
                elif extreme(metadata):
                    lenient.append("NUL, a 64-bit overflow or deep nesting in a filter")
            after_kind, after_s = _when_kind(after)
            before_kind, before_s = _when_kind(before)
            for name, kind in (("updated_after", after_kind), ("updated_before", before_kind)):
                if kind == "bad":
                    problems.append((name, type(kwargs[name]).__name__))
                elif kind == "lenient":
                    lenient.append(name)
            if isinstance(limit, bool):
                lenient.append("limit bool")
            elif not isinstance(limit, int) or limit < 1:
                problems.append(("limit", type(limit).__name__ if not isinstance(limit, int) else "< 1"))
            ckind, position = _cursor_kind(cursor)
            if ckind == "bad":
                problems.append(("cursor", type(cursor).__name__ if not isinstance(cursor, str) else "malformed"))
            elif ckind in ("forged", "lenient"):
                lenient.append("cursor")
            ok, page = ex.primary("Memory.sessions", mem.sessions, namespace=LIST_NS, **kwargs)
            if problems:
                if ok:
                    name, what = problems[0]
                    ex.fail("accepted invalid input", "Memory.sessions", f"{name}: {what}", reason=f"{name}: {what}")
                return
            if not ok:
                ex.expect(bool(lenient), "Memory.sessions", f"refused valid arguments: {type(page).__name__}: {page}",
                          reason=type(page).__name__)
                return
            if metadata is not None and has_big_float(metadata):
                return  # a float >= 2**53 against an int: decimal and binary equality may differ; no raw errors is enough
            size = min(int(limit), 1000)
            want = model.select(user_id, metadata, after_s, before_s, position)
            got = [i.id for i in page]
            reason = f"metadata filter on {_kinds(metadata)}" if metadata else "cursor" if position else "filters"
            ex.expect(got == want[:size], "Memory.sessions", f"returned {got}, expected {want[:size]}", reason=reason)
            ex.expect((page.next_cursor is None) == (len(want) <= size), "Page.next_cursor",
                      f"next_cursor={page.next_cursor!r} with {len(want)} matches and limit {size}")
            if walk and page.next_cursor:
                seen, nxt, pages = list(got), page.next_cursor, 0
                while nxt and pages < 40:
                    more = ex.must("Memory.sessions(cursor=next_cursor)", mem.sessions, namespace=LIST_NS,
                                   **{**kwargs, "cursor": nxt})
                    seen += [i.id for i in more]
                    nxt, pages = more.next_cursor, pages + 1
                ex.expect(seen == want, "paging with next_cursor", f"walked {seen}, expected {want}", reason="walk")

    fuzz.run("listing_args", run, kwargs=LISTING, walk=st.booleans())


# -- targets: import_session ----------------------------------------------------------------------------------------

FRESH = "@@FRESH@@"
ISO_OK = st.one_of(DATETIMES.map(lambda d: d.isoformat()),
                   st.sampled_from(["2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456+05:30"]))
ISO_BAD = st.sampled_from(["2024-13-01T00:00:00", "yesterday", "", 5, None, "2024-01-01T00:00:00+25:00", [2024]])
LINE_OK = mixed(
    {"v": st.sampled_from([1, 0, 1.0]), "id": st.one_of(st.sampled_from(["m1", "m2", "m3"]), IDS_OK),
     "role": st.sampled_from(ROLES), "content": CONTENT_OK, "created_at": ISO_OK, "name": OPT_TEXT_OK,
     "tool_calls": TOOL_CALLS_OK, "tool_call_id": OPT_TEXT_OK, "metadata": OPT_DICT_OK, "extras": OPT_DICT_OK,
     "session_id": st.just(FRESH), "seq": st.integers(1, 5)},
    {}, optional=("v", "name", "tool_calls", "tool_call_id", "metadata", "extras", "session_id", "seq"),
)
LINE_JUNK = {
    "v": st.sampled_from([2, "1", None, [1]]), "id": st.sampled_from(["", 5, None, ["m1"]]),
    "role": ROLE_BAD, "content": st.sampled_from([5, None, {"text": "x"}, True]), "created_at": ISO_BAD,
    "metadata": st.sampled_from([[1], "meta", 5, [], 0, "", False]), "extras": st.sampled_from([[1], "x", [], 0]),
    "tool_calls": st.sampled_from(["x", {"id": 1}]), "name": st.sampled_from([5, ["n"]]),
}
HEADER_OK = mixed(
    {"type": st.just("session"), "v": st.just(1), "id": st.just(FRESH),
     "namespace": st.one_of(st.just(SEED_NS), IDS_OK), "user_id": st.one_of(st.none(), IDS_OK),
     "metadata": st.one_of(st.none(), METADATA_OK), "created_at": ISO_OK},
    {}, optional=("v", "namespace", "user_id", "metadata", "created_at"),
)
HEADER_JUNK = {
    "id": st.one_of(IDS_BAD, st.just("")), "user_id": IDS_BAD, "metadata": st.sampled_from(NOT_DICTS),
    "v": st.sampled_from([2, "1", None]), "namespace": IDS_BAD,
}
STRUCTURAL_HEADERS = ['{"type":"session"', '[{"type":"session"}]', '{"type": "session"}',
                      '{"type":"session","metadata":NaN}', '"type":"session"', '{"type":"session","id":"\\ud800"}']


def _dump(value: Any, ascii_: bool) -> str | None:
    try:
        return json.dumps(value, ensure_ascii=ascii_)
    except (ValueError, TypeError, RecursionError):
        return None


@st.composite
def raw_lines(draw: st.DrawFn) -> list[Any]:
    """An export-like list of lines: a header (usually), message lines (valid, or one of them corrupted)."""
    lines: list[Any] = []
    header: dict[str, Any] | None = draw(st.one_of(st.none(), HEADER_OK, HEADER_OK))
    messages = [draw(LINE_OK) for _ in range(draw(st.integers(0, 4)))]
    corrupt = draw(st.sampled_from([None, None, None, "header-field", "header-shape", "field", "truncated", "text",
                                    "json", "escaped", "bom", "blank", "header-late", "nan", "surrogate"]))
    ascii_ = draw(st.booleans())
    if corrupt == "header-field":
        header = dict(header or {"type": "session", "id": FRESH})
        name = draw(st.sampled_from(sorted(HEADER_JUNK)))
        header[name] = draw(HEADER_JUNK[name])
    if corrupt == "field" and messages:
        name = draw(st.sampled_from(sorted(LINE_JUNK)))
        messages[draw(st.integers(0, len(messages) - 1))][name] = draw(LINE_JUNK[name])
    if corrupt == "header-shape":
        lines.append(draw(st.sampled_from(STRUCTURAL_HEADERS)))
    elif header is not None:
        lines.append(_dump(header, ascii_))
    lines += [_dump(m, ascii_) for m in messages]
    lines = [line for line in lines if line is not None]
    at = draw(st.integers(0, len(lines)))
    if corrupt == "truncated" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))]
    elif corrupt == "text":
        lines.insert(at, draw(TEXTS))
    elif corrupt == "json":
        dumped = _dump(draw(JSON_ANY.filter(lambda v: not isinstance(v, str))), True)
        if dumped is not None:
            lines.insert(at, dumped)
    elif corrupt == "escaped":
        lines.insert(at, draw(st.binary(min_size=1, max_size=30)).decode("utf-8", "surrogateescape"))
    elif corrupt == "bom" and lines:
        lines[-1] = "\ufeff" + lines[-1]
    elif corrupt == "blank":
        lines.insert(at, draw(st.sampled_from(["", "   ", "\t", "\r"])))
    elif corrupt == "header-late":
        lines.append(_dump({"type": "session", "id": FRESH}, True))
    elif corrupt == "nan":
        lines.append('{"v":1,"id":"n1","role":"user","content":"x","created_at":"2024-01-01","metadata":{"x":NaN}}')
    elif corrupt == "surrogate":
        lines.append('{"v":1,"id":"s1","role":"user","content":"\\ud800","created_at":"2024-01-01"}')
    if draw(st.integers(0, 100)) == 0:
        big = {"v": 1, "id": "big", "role": "user", "content": "y " * draw(st.sampled_from([50_000, 300_000])),
               "created_at": "2024-01-01T00:00:00+00:00"}
        lines.append(json.dumps(big))
    return lines


IMPORT_INPUT = st.one_of(
    raw_lines(),
    raw_lines(),
    raw_lines().map(lambda ls: "\n".join(ls)),
    raw_lines().map(lambda ls: "\r\n".join(ls)),
    raw_lines().map(ReIter),
    st.sampled_from([b'{"role":"user"}', None, 5, [5], [b"{}"], [None], "", []]),
)


def _physical_lines(lines: Any) -> list[str] | None:
    """The lines of an import as JSON Lines defines them: split on "\\n" only (a "\\r" before it is whitespace);
    U+2028, U+0085 and the other characters str.splitlines() also splits on are text inside a JSON string."""
    if isinstance(lines, str):
        return lines.split("\n")
    if isinstance(lines, list) and all(isinstance(x, str) for x in lines):
        return list(lines)
    return None


def _expect_line(raw: str) -> tuple[str | None, dict[str, Any] | None]:
    """(why the line is not a valid message, its decoded fields)."""
    line = raw.strip()
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return "not JSON", None
    if not isinstance(data, dict):
        return "not an object", None
    problem = json_problem(data)
    if problem:
        return f"non-JSON value: {problem}", None
    version = data.get("v", 1)
    if not isinstance(version, (int, float)) or version > 1:
        return f"v {version!r}", None
    if data.get("role") not in ROLES:
        return "role", None
    if not isinstance(data.get("content"), (str, list)):
        return "content", None
    if not isinstance(data.get("id"), str) or not data["id"]:
        return "id", None
    created = data.get("created_at")
    if not isinstance(created, str):
        return "created_at type", None
    try:
        when = utc(datetime.fromisoformat(created))
        when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return "created_at value", None
    for key in ("metadata", "extras"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            return f"{key} not an object", None
    return None, {**data, "created_at": when}


def test_fuzz_import_lines(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(lines: Any, use_sid: bool, user: Any, use_ns: bool) -> None:
        fresh = fuzz.fresh("imp")
        ns = fuzz.fresh("impns") if use_ns else None
        is_iterator = isinstance(lines, ReIter)
        if is_iterator:
            lines = list(lines)
        if isinstance(lines, list):
            lines = [x.replace(FRESH, fresh) if isinstance(x, str) else x for x in lines]
        elif isinstance(lines, str):
            lines = lines.replace(FRESH, fresh)
        sid = fresh if use_sid else None
        with fuzz.example(lines=lines, session_id=sid, user_id=user, namespace=ns) as ex:
            physical = _physical_lines(lines)
            ok, info = ex.primary("Memory.import_session", mem.import_session, iter(lines) if is_iterator else lines,
                                  session_id=sid, user_id=user, namespace=ns)
            if ok and not isinstance(info, SessionInfo):
                ex.cleanup(lambda: mem.delete_session(sid or fresh, namespace=ns))
                ex.fail("wrong result", "Memory.import_session", f"returned {info!r} instead of a SessionInfo",
                        reason="not a SessionInfo")
            if ok:
                ex.cleanup(lambda: mem.delete_session(info.id, namespace=ns))
            if physical is None:
                if ok and not (isinstance(lines, list) and not lines):
                    ex.fail("accepted invalid input", "import_session", f"lines of type {type(lines).__name__}",
                            reason=f"lines {type(lines).__name__}")
                return
            header: Any = None
            messages: list[dict[str, Any]] = []
            invalid: list[str] = []
            first = True
            for number, raw in enumerate(physical, 1):
                if not raw.strip():
                    continue
                is_first, first = first, False
                if is_first and '"type":"session"' in raw.replace(" ", ""):  # the export's header line
                    try:
                        header = json.loads(raw)
                    except (ValueError, RecursionError):
                        invalid.append("header is not JSON")
                    continue
                why, data = _expect_line(raw)
                if why:
                    invalid.append(f"line {number}: {why}")
                else:
                    messages.append(data)  # type: ignore[arg-type]
            if header is not None and not isinstance(header, dict):
                invalid.append(f"header is a {type(header).__name__}")
            elif isinstance(header, dict) and json_problem(header):
                invalid.append(f"header: {json_problem(header)}")
            if user is not None and id_problem(user):
                invalid.append(f"user_id: {id_problem(user)}")
            if not ok:
                return
            if invalid:
                ex.fail("accepted invalid input", "import_session", invalid[0],
                        reason=re.sub(r"line \d+: ", "", invalid[0]))
            ex.expect(info.namespace == (ns or mem.namespace), "import_session", f"landed in {info.namespace!r}",
                      reason="namespace")
            if sid is not None:
                ex.expect(info.id == sid, "import_session", f"landed in session {info.id!r}, not {sid!r}")
            head = header if isinstance(header, dict) else {}
            owner = user if user is not None else head.get("user_id")
            if owner is not None and id_problem(owner):
                ex.expect(info.user_id is None, "import_session header user_id",
                          f"stored the header's invalid user_id {info.user_id!r}", reason="header user_id")
            else:
                ex.expect(info.user_id == owner, "import_session", f"user_id {info.user_id!r} != {owner!r}")
            hmeta = head.get("metadata")
            ex.expect(isinstance(info.metadata, dict), "import_session header metadata",
                      f"stored metadata {safe_repr(info.metadata, 60)}", reason="header metadata type")
            if isinstance(hmeta, dict):
                ex.expect(json_equal(info.metadata, hmeta, strict=True), "import_session header metadata",
                          f"stored {safe_repr(info.metadata, 60)}, header {safe_repr(hmeta, 60)}")
            unique: dict[str, dict[str, Any]] = {}
            for data in messages:
                unique.setdefault(data["id"], data)
            back = ex.must("messages() after import", mem.session(info.id, namespace=ns).messages)
            ex.expect([m.id for m in back] == list(unique), "import_session",
                      f"stored ids {[m.id for m in back]}, lines hold {list(unique)}", reason="ids")
            for m in back:
                data = unique[m.id]
                for key, default in (("content", None), ("name", None), ("tool_call_id", None),
                                     ("metadata", {}), ("extras", {})):
                    want = data.get(key)
                    want = default if want is None else want
                    ex.expect(json_equal(getattr(m, key), want, strict=True), "import_session",
                              f"{key}: stored {safe_repr(getattr(m, key), 60)}, line {safe_repr(want, 60)}",
                              reason=key)
                ex.expect(json_equal(m.tool_calls or None, data.get("tool_calls") or None, strict=True),
                          "import_session", f"tool_calls {safe_repr(m.tool_calls, 60)}", reason="tool_calls")
                ex.expect(m.role == data["role"] and m.created_at == data["created_at"], "import_session",
                          f"role/created_at {m.role!r} {m.created_at!r}", reason="role/created_at")
            check_export_round_trip(ex, mem, info.id, ns, back)

    fuzz.run("import_lines", run, lines=IMPORT_INPUT, use_sid=st.booleans(), user=st.one_of(st.none(), st.none(), ID_VALUES),
           use_ns=st.booleans())


# -- targets: collections -------------------------------------------------------------------------------------------

VECTORS_OK = st.one_of(
    st.none(), st.none(),
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=DIM, max_size=DIM),
    st.lists(st.integers(-5, 5), min_size=DIM, max_size=DIM),
    st.sampled_from([[0.5] * DIM, [1e-30] * DIM, [-3.4e38] * DIM]),
)
VECTORS_BAD = st.one_of(
    st.lists(st.floats(-1, 1), max_size=DIM * 2).filter(lambda v: len(v) != DIM),
    st.sampled_from([[math.nan] * DIM, [math.inf] * DIM, [1e39] * DIM, ["1"] * DIM, [[1.0]] * DIM, "12345678", 5,
                     [True] * DIM, [None] * DIM, b"\x00" * DIM, {"x": 1}]),
)
DOC_OK = st.fixed_dictionaries({"id": st.one_of(st.none(), st.sampled_from(["d1", "d2", "d3"]), IDS_OK),
                                "text": TEXTS_OK, "metadata": st.one_of(st.none(), METADATA_OK), "vector": VECTORS_OK})
DOC_BAD = st.one_of(
    mixed({"id": st.one_of(st.none(), st.sampled_from(["d1", "d2"])), "text": TEXTS_OK,
           "metadata": st.one_of(st.none(), METADATA_OK), "vector": VECTORS_OK},
          {"id": st.sampled_from(["", 5, b"d", "\ud800", ["d1"]]), "text": st.sampled_from([None, 5, b"t", ["t"],
                                                                                            "\ud800"]),
           "metadata": METADATA_BAD, "vector": VECTORS_BAD}, max_junk=1),
    st.sampled_from([{"text": "t", "bogus": 1}, "just a str", 5, None, {"id": "d1"}]),
)
DOCS = st.one_of(
    st.lists(DOC_OK, max_size=4),
    st.lists(DOC_OK, max_size=4),
    st.tuples(st.lists(DOC_OK, max_size=3), DOC_BAD).map(lambda t: [*t[0], t[1]]),
)
WHERE_FIELDS = st.sampled_from(["tag", "n", "list", "a.b", "missing"])
WHERE_OK = st.one_of(
    st.none(),
    st.dictionaries(WHERE_FIELDS, FILTER_VALUES_OK, min_size=1, max_size=2),
    st.dictionaries(WHERE_FIELDS, st.sampled_from(["x", "y", 1, 1.0, True, [1, True], [True], [1, 1], {"b": 2}]),
                    min_size=1, max_size=2),
    st.builds(lambda f, op, v: {f: {op: v}}, WHERE_FIELDS,
              st.sampled_from(["$eq", "$ne", "$lt", "$gte", "$contains"]), st.sampled_from([1, "x", True, 1.5])),
    st.builds(lambda f, op, v: {f: {op: v}}, WHERE_FIELDS, st.sampled_from(["$in", "$nin", "$any", "$all"]),
              st.lists(st.sampled_from([1, "x", True, 1.0, None]), max_size=3)),
    st.sampled_from([{"$and": []}, {"$or": [{"tag": "x"}, {"n": 1}]}, {"$not": {"tag": "x"}},
                     {"tag": {"$like": "%"}}, {"tag": {"$exists": True}}, {"list": {"$empty": False}}]),
)
WHERE_BAD = st.one_of(
    st.dictionaries(WHERE_FIELDS, FILTER_VALUES_BAD, min_size=1, max_size=1),
    st.builds(lambda f, op: {f: {op: 1}}, WHERE_FIELDS, st.sampled_from(["$regex", "eq", "", "$EQ", "$in", "$like",
                                                                          "$exists"])),
    st.sampled_from([{"$nor": []}, {"$and": "x"}, {"tag": {"$eq": 1, "plain": 2}}, [], "tag", 5, {1: 2}, {"": 1},
                     {"$not": 5}, {"$or": [5]}]),
)
SEARCH = mixed(
    {"query": st.one_of(TEXTS_OK, st.sampled_from(["lighthouse", "harbour alpha"])), "vector": VECTORS_OK,
     "k": st.integers(1, 5), "mode": st.sampled_from(["dense", "keyword", "hybrid"]), "alpha": st.floats(0, 1),
     "where": WHERE_OK, "mmr": st.one_of(st.none(), st.floats(0, 1)), "fetch_k": st.integers(1, 50)},
    {"query": st.sampled_from([5, b"q", ["q"], "\ud800"]), "vector": VECTORS_BAD, "k": INTS.filter(
        lambda k: not (isinstance(k, int) and not isinstance(k, bool) and 1 <= k < 2**31)),
     "mode": st.sampled_from(["", "HYBRID", 5, None, "bm25"]),
     "alpha": st.sampled_from([-0.1, 1.5, math.nan, "0.5", None, True]), "where": WHERE_BAD,
     "mmr": st.sampled_from([-1, 2, math.nan, "x"]), "fetch_k": st.sampled_from([0, -1, 2**70, "x", None])},
    optional=("vector", "mmr", "fetch_k"),
)
DOC_TEXT = {"d1": ("alpha lighthouse", {"tag": "x", "n": 1, "list": [1, True]}),
            "d2": ("beta harbour", {"tag": "y", "n": 1.0, "list": [True]}),
            "d3": ("gamma lighthouse harbour", {"tag": "x", "n": True, "a": {"b": 2}})}


def _doc_problem(doc: Any) -> str | None:
    if isinstance(doc, Document):
        doc = doc.__dict__
    if not isinstance(doc, dict) or set(doc) - {"id", "text", "metadata", "vector"}:
        return "not a document"
    if doc.get("id") is not None and (not isinstance(doc["id"], str) or not doc["id"]):
        return "id"
    if not isinstance(doc.get("text"), str):
        return "text"
    mp = _metadata_problem(doc.get("metadata"))
    if mp:
        return mp
    problem = json_problem([doc.get("id"), doc.get("text")])
    if problem:
        return problem
    vector = doc.get("vector")
    if vector is not None:
        if not isinstance(vector, list) or len(vector) != DIM:
            return "vector shape"
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vector):
            return "vector values"
        if not all(math.isfinite(float(_f32(x))) for x in vector):
            return "vector overflows float32"
    return None


def _f32(x: float) -> float:
    import numpy as np

    with np.errstate(over="ignore"):
        return float(np.float32(x))


def _simple_where(where: Any) -> Callable[[dict[str, Any]], bool] | None:
    """A reference predicate for plain equality filters ({field: value, ...}, no operators); None otherwise."""
    if not isinstance(where, dict) or not where:
        return None
    for key, value in where.items():
        if not isinstance(key, str) or key.startswith("$") or "." in key:
            return None
        if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
            return None
        if json_problem(value) or has_big_float(value):
            return None
    return lambda md: all(k in md and json_equal(md[k], v) for k, v in where.items())


def test_fuzz_collections(fuzz: Fuzz) -> None:
    mem = fuzz.mem

    def run(name: Any, docs: list[Any], search: dict[str, Any], delete: str | None) -> None:
        ns = fuzz.fresh("colns")
        with fuzz.example(name=name, docs=docs, search=search, delete=delete) as ex:
            problem = id_problem(name)
            ok, col = ex.primary("Memory.collection(name)", mem.collection, name, namespace=ns)
            if not ok:
                return
            if problem:
                ex.fail("accepted invalid input", "Memory.collection(name)", problem, reason=problem)
            ex.cleanup(col.clear)
            base = ex.must("Collection.upsert(base documents)", col.upsert,
                           [{"id": k, "text": t, "metadata": m} for k, (t, m) in DOC_TEXT.items()])
            ok, ids = ex.primary("Collection.upsert", col.upsert, docs)
            problems = [p for p in map(_doc_problem, docs) if p]
            if ok and problems:
                ex.fail("accepted invalid input", "Collection.upsert", problems[0], reason=problems[0])
            expected = {k: (t, m, None) for k, (t, m) in DOC_TEXT.items()}
            if ok:
                ex.expect(len(ids) == len(docs), "Collection.upsert", f"{len(ids)} ids for {len(docs)} documents")
                for doc_id, doc in zip(ids, docs, strict=False):
                    expected[doc_id] = (doc["text"], dict(doc.get("metadata") or {}), doc.get("vector"))
            got = ex.must("Collection.get", col.get, list(expected))
            ex.expect([d.id for d in got] == list(expected), "Collection.get",
                      f"ids {[d.id for d in got]} != {list(expected)}", reason="ids")
            for d in got:
                text, md, vector = expected[d.id]
                ex.expect(d.text == text and json_equal(d.metadata, md, strict=True), "Collection.get",
                          f"{d.id!r}: {safe_repr((d.text, d.metadata), 80)} != {safe_repr((text, md), 80)}",
                          reason="text/metadata")
                if vector is not None:
                    ex.expect(d.vector == [_f32(x) for x in vector], "Collection.get", f"{d.id!r}: vector changed",
                              reason="vector")
            count = ex.must("Collection.count", col.count)
            ex.expect(count == len(expected), "Collection.count", f"{count} != {len(expected)}")
            args = dict(search)
            query = args.pop("query")
            ok, hits = ex.primary("Collection.search", col.search, query, **args)
            if ok:
                k = args["k"]
                ex.expect(isinstance(k, int) and not isinstance(k, bool) and k >= 1, "Collection.search",
                          f"accepted k={k!r}", reason="k")
                ex.expect(query is None or isinstance(query, str), "Collection.search",
                          f"accepted query={safe_repr(query, 40)}", reason="query")
                vector = args.get("vector")
                used = args["mode"] != "keyword" or args.get("mmr") is not None  # keyword search ignores a vector
                ex.expect(not used or vector is None or _doc_problem({"text": "", "vector": vector}) is None,
                          "Collection.search", f"accepted vector={safe_repr(vector, 60)}", reason="vector")
                ex.expect(args["mode"] in ("dense", "keyword", "hybrid"), "Collection.search",
                          f"accepted mode={args['mode']!r}", reason="mode")
                alpha = args["alpha"]
                ex.expect(isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 <= alpha <= 1,
                          "Collection.search", f"accepted alpha={alpha!r}", reason="alpha")
                ex.expect(len(hits) <= k and all(h.document.id in expected for h in hits), "Collection.search",
                          f"{len(hits)} hits for k={k}: {[h.document.id for h in hits]}")
                where = args["where"]
                ex.expect(where is None or where_problem(where) is None, "Collection.search",
                          f"accepted where={safe_repr(where, 80)}: {where is not None and where_problem(where)}",
                          reason=f"where {where is not None and (where_problem(where) or '')[:18]}")
                mmr = args.get("mmr")
                ex.expect(mmr is None or (isinstance(mmr, (int, float)) and not isinstance(mmr, bool)
                                          and 0 <= mmr <= 1), "Collection.search", f"accepted mmr={mmr!r}",
                          reason="mmr")
                fetch_k = args.get("fetch_k", 20)
                ex.expect(mmr is None or (isinstance(fetch_k, int) and not isinstance(fetch_k, bool)
                                          and 1 <= fetch_k < 2**31), "Collection.search",
                          f"accepted fetch_k={fetch_k!r} with mmr={mmr!r}", reason="fetch_k")
                predicate = _simple_where(where)
                if predicate is not None:
                    wrong = [h.document.id for h in hits if not predicate(expected[h.document.id][1])]
                    ex.expect(not wrong, "Collection.search(where=)",
                              f"{wrong} do not satisfy {safe_repr(where, 80)} (JSON equality)", reason="where")
            if delete == "ids":
                removed = ex.must("Collection.delete(ids)", col.delete, list(base))
                ex.expect(removed == len(set(base)), "Collection.delete(ids)", f"{removed} removed")
            elif delete == "where":
                where = search["where"]
                ok, removed = ex.primary("Collection.delete(where=)", col.delete, where=where)
                predicate = _simple_where(where)
                if ok and predicate is not None:
                    want = sum(1 for t, md, _ in expected.values() if predicate(md))
                    ex.expect(removed == want, "Collection.delete(where=)",
                              f"removed {removed}, {want} match {safe_repr(where, 80)}", reason="where")

    fuzz.run("collections", run, name=st.one_of(st.sampled_from(["docs", "c"]), IDS_OK, ID_VALUES), docs=DOCS, search=SEARCH,
           delete=st.sampled_from([None, "ids", "where"]))


# -- targets: recall and context ------------------------------------------------------------------------------------

RECALL_NS = "fuzz-recall"
FACTS = [("user", "I adopted a golden retriever named Biscuit"), ("assistant", "Golden retrievers are great"),
         ("user", "My sister lives in Lisbon"), ("assistant", "Lisbon is lovely"), ("tool", "peanut allergy noted")]
RECALL_FILTERS_OK = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={
        "role": st.one_of(st.sampled_from(ROLES), st.lists(st.sampled_from(ROLES), max_size=2)),
        "after": st.one_of(DATETIMES, st.sampled_from([0, 1.5, 1714564800])),
        "before": st.one_of(DATETIMES, st.sampled_from([0, 2e9, 1714565000])),
        "session": st.sampled_from(["r1", "r2", ["r1"], ["r1", "r2"], [], "nope"]),
        "metadata": WHERE_OK,
    }),
)
RECALL_FILTERS_BAD = st.one_of(
    mixed({"role": st.sampled_from(ROLES), "session": st.just("r1"), "metadata": st.just({"tag": "x"}),
           "after": st.just(0)},
          {"role": st.sampled_from(["robot", 5, [5], ["user", "robot"]]),
           "session": st.one_of(IDS_BAD, st.just([5])), "metadata": WHERE_BAD,
           "after": st.sampled_from(["2020-01-01", math.nan, True, [1], math.inf])},
          optional=("role", "session", "metadata", "after"), max_junk=1).filter(lambda d: bool(d)),
    st.sampled_from([{"bogus": 1}, [], "role", 5]),
)
RECALL_ARGS = mixed(
    {"query": st.one_of(st.sampled_from(["Biscuit", "Lisbon sister", "peanut", "", "   "]), TEXTS_OK,
                        st.builds(_repeat, st.just("x "), st.just(50_000))),
     "session": st.one_of(st.none(), st.none(), st.sampled_from(["r1", "r2", "missing"]), IDS_OK),
     "user_id": st.one_of(st.none(), st.none(), st.sampled_from(["ru1", "ru2"]), IDS_OK),
     "namespace": st.one_of(st.just(RECALL_NS), st.just(RECALL_NS), st.none(), IDS_OK),
     "k": st.integers(1, 5), "mode": st.sampled_from(["hybrid", "dense", "keyword"]), "filters": RECALL_FILTERS_OK,
     "recency_half_life": st.sampled_from([None, 60, 0.5, timedelta(hours=1)]),
     "mmr": st.one_of(st.none(), st.floats(0, 1)), "neighbors": st.sampled_from([0, 1, 5]),
     "fusion": st.sampled_from(["zscore", "rrf"]), "dense_weight": st.sampled_from([0.0, 0.5, 1.0]),
     "fetch_k": st.sampled_from([10, 100]), "bogus_option": ABSENT},
    {"query": st.sampled_from([None, 5, b"q", ["q"]]), "session": IDS_BAD, "user_id": IDS_BAD,
     "namespace": IDS_BAD, "k": INTS.filter(lambda k: not (isinstance(k, int) and not isinstance(k, bool)
                                                           and 1 <= k < 2**31)),
     "mode": st.sampled_from(["", "bm25", 5, None, "HYBRID"]), "filters": RECALL_FILTERS_BAD,
     "recency_half_life": st.sampled_from([0, -1, math.nan, "1", timedelta(0), True, math.inf]),
     "mmr": st.sampled_from([-1, 2, math.nan, "x"]), "neighbors": st.sampled_from([-1, True, 1.5, 2**70, "1"]),
     "fusion": st.sampled_from(["bogus", 5, None]), "dense_weight": st.sampled_from([-1, math.nan, "x", 2]),
     "fetch_k": st.sampled_from([0, -1, 2**70, "x"]), "bogus_option": st.just(1)},
    optional=("recency_half_life", "mmr", "neighbors", "fusion", "dense_weight", "fetch_k", "bogus_option"),
)
WHERE_OPERATORS = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$contains", "$any", "$all", "$like",
                   "$ilike", "$exists", "$empty"}


def where_problem(where: Any) -> str | None:
    """Why ``where`` is outside the documented filter language (memvault.recall.filters); None when it is in it."""
    stack = [where]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            return f"where is a {type(item).__name__}"
        for key, value in item.items():
            if not isinstance(key, str) or not key:
                return f"where key {key!r}"
            if key in ("$and", "$or"):
                if not isinstance(value, list):
                    return f"{key} needs a list"
                stack.extend(value)
            elif key == "$not":
                stack.append(value)
            elif key.startswith("$"):
                return f"unknown logical operator {key}"
            elif isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
                for op, arg in value.items():
                    if not isinstance(op, str) or op not in WHERE_OPERATORS:
                        return f"unknown operator {op!r}"
                    if op in ("$in", "$nin", "$any", "$all") and not isinstance(arg, list):
                        return f"{op} needs a list"
                    if op in ("$like", "$ilike") and not isinstance(arg, str):
                        return f"{op} needs a str"
                    if op in ("$exists", "$empty") and not isinstance(arg, bool):
                        return f"{op} needs a bool"
                    if op in ("$lt", "$lte", "$gt", "$gte") and (isinstance(arg, bool)
                                                                 or not isinstance(arg, (int, float, str))):
                        return f"{op} needs a number or a str"
                    if json_problem(arg):
                        return f"{op} value: {json_problem(arg)}"
            elif json_problem(value):
                return f"value: {json_problem(value)}"
    return None


def recall_filters_problem(filters: Any) -> str | None:
    if filters is None:
        return None
    if not isinstance(filters, dict):
        return f"filters is a {type(filters).__name__}"
    unknown = set(filters) - {"role", "after", "before", "session", "metadata"}
    if unknown:
        return "unknown filter key"
    role = filters.get("role")
    roles = [role] if isinstance(role, str) else role
    if roles is not None and (not isinstance(roles, list) or not all(r in ROLES for r in roles)):
        return "role"
    for name in ("after", "before"):
        value = filters.get(name)
        if value is not None and not isinstance(value, datetime) and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            return name
    session = filters.get("session")
    sessions = [session] if isinstance(session, str) else session
    if sessions is not None and (not isinstance(sessions, list) or not all(isinstance(x, str) for x in sessions)):
        return "session"
    if filters.get("metadata") is not None and where_problem(filters["metadata"]):
        return f"metadata: {where_problem(filters['metadata'])}"
    return None


def _seed_recall(mem: Memory) -> None:
    base = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    for sid, user in (("r1", "ru1"), ("r2", "ru2")):
        s = mem.session(sid, namespace=RECALL_NS, user_id=user)
        s.extend([Message(role, text, created_at=base + timedelta(minutes=i), metadata={"i": i, "tag": "x"})
                  for i, (role, text) in enumerate(FACTS)])


def test_fuzz_recall_args(fuzz: Fuzz) -> None:
    mem = fuzz.mem
    _seed_recall(mem)
    fuzz.baseline = fuzz.snapshot()
    owners = {"r1": "ru1", "r2": "ru2"}

    def run(args: dict[str, Any]) -> None:
        with fuzz.example(**args) as ex:
            kwargs = dict(args)
            query = kwargs.pop("query")
            ok, hits = ex.primary("Memory.recall", mem.recall, query, **kwargs)
            if not ok:
                return
            problems = []
            if not isinstance(query, str):
                problems.append(f"query {type(query).__name__}")
            k = kwargs["k"]
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                problems.append(f"k {k!r}")
            if kwargs["mode"] not in ("hybrid", "dense", "keyword"):
                problems.append(f"mode {kwargs['mode']!r}")
            for name in ("session", "user_id", "namespace"):
                if kwargs[name] is not None and id_problem(kwargs[name]):
                    problems.append(f"{name}: {id_problem(kwargs[name])}")
            if "bogus_option" in kwargs:
                problems.append("unknown option")
            filters = kwargs["filters"]
            if recall_filters_problem(filters):
                problems.append(f"filters {recall_filters_problem(filters)}")
            neighbors = kwargs.get("neighbors", 0)  # a bool is an int here: either way is fine
            if not isinstance(neighbors, int) or not 0 <= neighbors < 2**31:
                problems.append(f"neighbors {neighbors!r}")
            half_life = kwargs.get("recency_half_life")
            if half_life is not None:
                seconds = half_life.total_seconds() if isinstance(half_life, timedelta) else half_life
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= math.inf:
                    problems.append(f"recency_half_life {half_life!r}")
            mmr = kwargs.get("mmr")
            if mmr is not None and (isinstance(mmr, bool) or not isinstance(mmr, (int, float)) or not 0 <= mmr <= 1):
                problems.append(f"mmr {mmr!r}")
            if kwargs.get("fusion", "zscore") not in ("zscore", "rrf", None):
                problems.append(f"fusion {kwargs['fusion']!r}")
            weight = kwargs.get("dense_weight", 0.5)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
                problems.append(f"dense_weight {weight!r}")
            fetch_k = kwargs.get("fetch_k", 10)
            if isinstance(fetch_k, bool) or not isinstance(fetch_k, int) or not 1 <= fetch_k < 2**31:
                problems.append(f"fetch_k {fetch_k!r}")
            if problems:
                ex.fail("accepted invalid input", "Memory.recall", problems[0], reason=problems[0][:20])
            ns = kwargs["namespace"] or mem.namespace
            ex.expect(len(hits) <= k, "Memory.recall", f"{len(hits)} hits for k={k}")
            for h in hits:
                ex.expect(h.namespace == ns, "Memory.recall", f"hit from namespace {h.namespace!r}, scope {ns!r}",
                          reason="namespace")
                if kwargs["session"] is not None:
                    ex.expect(h.session_id == kwargs["session"], "Memory.recall(session=)",
                              f"hit from {h.session_id!r}", reason="session")
                if kwargs["user_id"] is not None:
                    ex.expect(owners.get(h.session_id) == kwargs["user_id"], "Memory.recall(user_id=)",
                              f"hit from {h.session_id!r}", reason="user")
                role = (filters or {}).get("role")
                if isinstance(role, str):
                    ex.expect(h.message.role == role, "Memory.recall(filters={'role'})", f"hit role {h.message.role}",
                              reason="role")
                sessions = (filters or {}).get("session")
                if isinstance(sessions, str):
                    ex.expect(h.session_id == sessions, "Memory.recall(filters={'session'})",
                              f"hit from {h.session_id!r}", reason="filter session")
                ex.expect(all(n.session_id in (None, h.session_id) for n in h.neighbors), "Hit.neighbors",
                          "a neighbour from another session", reason="neighbors")

    fuzz.run("recall_args", run, args=RECALL_ARGS)


CONTEXT_ARGS = mixed(
    {"sid": st.one_of(st.sampled_from(["r1", "r1", "r2", "missing"]), IDS_OK),
     "query": st.one_of(st.none(), st.sampled_from(["Biscuit", "Lisbon"]), TEXTS_OK),
     "budget_tokens": st.one_of(st.integers(0, 400), st.sampled_from([2000, 2**31, 2**63])),
     "namespace": st.one_of(st.just(RECALL_NS), st.just(RECALL_NS), IDS_OK),
     "model": st.sampled_from([None, "gpt-4o", "gpt-3.5-turbo"]),
     "summary_share": st.sampled_from([0.3, 0, 0.5]), "recall_share": st.sampled_from([0.25, 0, 0.5]),
     "recall_k": st.sampled_from([10, 0, 1])},
    {"sid": IDS_BAD, "query": st.sampled_from([5, b"q", ["q"]]),
     "budget_tokens": st.sampled_from([-1, True, 1.5, "100", None, math.nan]), "namespace": IDS_BAD,
     "model": st.sampled_from(["no-such-model", "", 5, "\ud800", ["gpt-4o"]]),
     "summary_share": st.sampled_from([-0.1, 1.5, math.nan, "0.3", None, True]),
     "recall_share": st.sampled_from([-1, math.nan, None, 0.9]), "recall_k": st.sampled_from([-1, 1.5, 2**70, None])},
    optional=("model", "summary_share", "recall_share", "recall_k"),
)


def test_fuzz_context_args(fuzz: Fuzz) -> None:
    mem = fuzz.mem
    _seed_recall(mem)
    fuzz.baseline = fuzz.snapshot()
    texts = {text for _, text in FACTS}

    def run(args: dict[str, Any]) -> None:
        with fuzz.example(**args) as ex:
            kwargs = dict(args)
            sid = kwargs.pop("sid")
            ok, ctx = ex.primary("Memory.context", mem.context, sid, **kwargs)
            if not ok:
                return
            budget = kwargs["budget_tokens"]
            problems = []
            if id_problem(sid):
                problems.append(f"session id: {id_problem(sid)}")
            if id_problem(kwargs["namespace"]):
                problems.append(f"namespace: {id_problem(kwargs['namespace'])}")
            if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
                problems.append(f"budget_tokens {budget!r}")
            query = kwargs["query"]
            if query is not None and not isinstance(query, str):
                problems.append(f"query {type(query).__name__}")
            for name in ("summary_share", "recall_share"):
                share = kwargs.get(name, 0.3)
                if not isinstance(share, (int, float)) or isinstance(share, bool) or not 0 <= share <= 1:
                    problems.append(f"{name} {share!r}")
            if kwargs.get("summary_share", 0.3) + kwargs.get("recall_share", 0.25) > 1 and not problems:
                problems.append("summary_share + recall_share > 1")
            recall_k = kwargs.get("recall_k", 10)
            if not isinstance(recall_k, int) or isinstance(recall_k, bool) or not 0 <= recall_k < 2**31:
                problems.append(f"recall_k {recall_k!r}")
            model = kwargs.get("model")
            if model is not None and not isinstance(model, str):
                problems.append(f"model {type(model).__name__}")
            if problems:
                ex.fail("accepted invalid input", "Memory.context", problems[0], reason=problems[0][:20])
            ex.expect(ctx.tokens <= budget, "Memory.context", f"{ctx.tokens} tokens for a budget of {budget}",
                      reason="budget")
            foreign = [m.text for m in ctx.messages if m.role != "system" and m.text not in texts]
            ex.expect(not foreign, "Memory.context", f"messages that are not the session's: {foreign[:3]}")
            if kwargs["namespace"] != RECALL_NS or sid not in ("r1", "r2"):
                ex.expect(not [m for m in ctx.messages if m.role != "system"], "Memory.context",
                          f"context of an unknown session holds {[m.text for m in ctx.messages][:3]}",
                          reason="unknown session")

    fuzz.run("context_args", run, args=CONTEXT_ARGS)


# -- target: Memory(...) itself -------------------------------------------------------------------------------------

MEMORY_OPTIONS = mixed(
    {"namespace": st.one_of(st.none(), IDS_OK), "ttl": TTLS_OK, "max_messages": MAX_MESSAGES_OK,
     "embedder": st.sampled_from(["hash", "hash-4", "default"]), "bogus_option": ABSENT},
    {"namespace": IDS_BAD, "ttl": TTLS_BAD, "max_messages": MAX_MESSAGES_BAD,
     "embedder": st.sampled_from(["hash-0", "hash-x", "hash--1", "bogus", 5, object()]),
     "bogus_option": st.sampled_from([1, "x"])},
    optional=("ttl", "max_messages", "embedder", "bogus_option"),
)


def test_fuzz_memory_args(fuzz: Fuzz, make_memory: MemoryFactory) -> None:
    def run(options: dict[str, Any]) -> None:
        sid = fuzz.fresh()
        with fuzz.example(**options) as ex:
            opts = dict(options)
            if opts.get("embedder") == "default":
                opts["embedder"] = "hash"  # the MiniLM model is slow to load per example; its spec is valid anyway
            ok, mem = ex.primary("Memory(...)", make_memory, clock=fuzz.clock, **opts)
            if not ok:
                return
            ex.cleanup(mem.close)
            ns = options["namespace"]
            if ns is not None and id_problem(ns):
                ex.fail("accepted invalid input", "Memory(namespace=)", id_problem(ns) or "",
                        reason=id_problem(ns) or "")
            if "bogus_option" in options:
                ex.fail("accepted invalid input", "Memory(bogus_option=)", "an unknown keyword option was accepted")
            ok, s = ex.primary("Memory.session", mem.session, sid)
            if ok:
                ex.cleanup(lambda: mem.delete_session(sid))
                ok, _ = ex.primary("Session.add", s.add, "user", "memory args")
            if ok and "embedder" in options:
                ok, _ = ex.primary("Memory.recall", mem.recall, "memory args", session=sid)
            if ok and _ttl_kind(options.get("ttl")) == "bad":
                ex.fail("accepted invalid input", "Memory(ttl=)", f"ttl {options['ttl']!r}", reason="ttl")
            if ok and options.get("embedder") not in (None, "default", "hash", "hash-4") and "embedder" in options:
                ex.fail("accepted invalid input", "Memory(embedder=)", f"embedder {options['embedder']!r}",
                        reason="embedder")

    fuzz.run("memory_args", run, options=MEMORY_OPTIONS)


# -- targets: session state, metadata updates, artifacts (docs/state-and-artifacts.md, docs/limits.md) -------------

#: the documented limits (docs/limits.md), restated so the oracle does not take them from the code under test
DOC_STATE_BYTES = 1024 * 1024
DOC_METADATA_BYTES = 64 * 1024
DOC_METADATA_DEPTH = 32
DOC_NAME_BYTES = 512
INT64 = (-(2**63), 2**63 - 1)


def compact_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def container_depth(value: Any) -> int:
    """How many lists / dicts are nested at the deepest point of ``value`` (a flat dict: 1)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def doc_metadata_problem(value: Any, *, allow_nul: bool, max_bytes: int) -> str | None:
    """Why ``value`` breaks the documented metadata rules (a dict, or a Mapping, with str keys; None, bool, int in
    the signed 64-bit range, finite float, str, list, dict; nesting at most 32 deep; no NUL unless ``allow_nul``; at
    most ``max_bytes`` of compact JSON), None when it follows them."""
    if not isinstance(value, Mapping):
        return f"not a dict: {type(value).__name__}"
    value = dict(value)
    problem = json_problem(value)
    if problem:
        return problem
    if container_depth(value) > DOC_METADATA_DEPTH:
        return f"nested more than {DOC_METADATA_DEPTH} deep"
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and not INT64[0] <= item <= INT64[1]:
            return "int outside 64 bits"
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    if not allow_nul and has_nul(value):
        return "NUL"
    if compact_size(value) > max_bytes:
        return f"over {max_bytes} bytes"
    return None


def _int_problem(value: Any, minimum: int) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"not an int: {type(value).__name__}"
    if not minimum <= value <= INT64[1]:
        return f"int out of range ({'< ' + str(minimum) if value < minimum else '> int64'})"
    return None


@dataclass(frozen=True)
class Rel:
    """A version relative to the one the example's session is at (0: the current one); resolved when it runs."""

    offset: int

    def __repr__(self) -> str:
        return f"current{self.offset:+d}"

    def at(self, current: int) -> int:
        version = current + self.offset
        return version if version >= 0 else current + 1


def _resolve(value: Any, current: int) -> Any:
    return value.at(current) if isinstance(value, Rel) else value


def big_dict(key: str, unit: str, size: int) -> dict[str, Any]:
    """``{key: unit * n}`` whose compact JSON is ``size`` bytes (as near as the unit allows)."""
    overhead = compact_size({key: ""})
    return {key: unit * max(0, (size - overhead) // len(unit.encode("utf-8")))}


def _seed_state_and_artifacts(fuzz: Fuzz, *, watch: str) -> dict[tuple[str, str, str, int], bytes]:
    """A state on seed-1 (three versions) and artifacts on seed-2 (default namespace: ``open_artifact`` serves it)
    and on seed-1 (another namespace: its URL must not open). They join the snapshot (``watch`` = "state": the state
    with its history and the manifests; "artifacts": the state, the manifests and a load; each read costs every
    example a store call). Returns (namespace, session, name, version) -> content of every seeded artifact version."""
    mem = fuzz.mem
    s1 = mem.session("seed-1", namespace=SEED_NS)
    for i, data in enumerate([{"step": 1}, {"step": 2, "plan": ["a", "b"]}, {"step": 3, "nul": "a\x00b", "é": None}]):
        s1.state.set(data, actor=f"seeder-{i}")
    s2 = mem.session("seed-2")
    seeded: dict[tuple[str, str, str, int], bytes] = {}
    for name, content in [("seed/report.txt", b"first report"), ("seed/report.txt", b"second\x00report\xff"),
                          ("caf\u00e9.txt", b"accent"), ("empty", b""), ("%2e%2e", b"literal percent name")]:
        v = s2.artifacts.save(name, content, metadata={"seeded": True})
        seeded[(mem.namespace, "seed-2", v.name, v.version)] = content
    v = s1.artifacts.save("tenant.txt", b"other tenant")
    seeded[(SEED_NS, "seed-1", v.name, v.version)] = b"other tenant"
    fuzz.extra.update({"seed-1 state": s1.state.get, "seed-2 artifacts": s2.artifacts.manifest})
    if watch == "state":
        fuzz.extra["seed-1 state history"] = s1.state.history
    else:
        fuzz.extra["seed-1 artifacts"] = s1.artifacts.manifest
        fuzz.extra["seed-2 report v2"] = lambda: s2.artifacts.load("seed/report.txt", version=2)
    fuzz.baseline = fuzz.snapshot()
    return seeded


# -- target: session state ------------------------------------------------------------------------------------------

STATE_PRIOR = [{"keep": "x", "n": 1, "gone": [1]}, {"keep": "x", "n": 2.0, "nul": "\x00"}]
STATE_NEAR_LIMIT = st.builds(big_dict, st.sampled_from(["blob", "é"]), st.sampled_from(["x", "é", "🚀", "\x00"]),
                             st.sampled_from([DOC_STATE_BYTES - 6, DOC_STATE_BYTES, DOC_STATE_BYTES + 1,
                                              DOC_STATE_BYTES + 6]))
STATE_DATA_OK = st.one_of(
    METADATA_OK, METADATA_OK, METADATA_OK,
    st.dictionaries(st.sampled_from(["keep", "n", "gone", "nul", "new", ""]), JSON_OK, max_size=4),  # vs the prior
    st.dictionaries(st.text(CHARS_OK, max_size=4), st.text(CHARS_OK, max_size=8), max_size=3),  # NUL is allowed
    st.builds(MappingProxyType, METADATA_OK),
    st.builds(lambda v: {"deep": v}, st.builds(nest, st.sampled_from(["list", "dict", "mixed"]), st.integers(28, 33))),
)
STATE_DATA_BAD = st.one_of(
    METADATA_BAD, st.builds(lambda v: {"deep": v}, DEEP), st.just(None), STATE_NEAR_LIMIT,
    st.builds(lambda v: {"proxy": MappingProxyType(v)}, METADATA_OK),
)
STATE_ARGS = mixed(
    {"data": STATE_DATA_OK, "expected_version": st.sampled_from([None, None, Rel(0), Rel(0), Rel(-1), Rel(1),
                                                                 2**63 - 1]),
     "actor": st.one_of(st.none(), st.none(), IDS_OK), "retries": st.sampled_from([ABSENT, 0, 1, 50, 10_000]),
     "history_limit": st.one_of(st.none(), st.integers(1, 4), st.sampled_from([100, 2**63 - 1]))},
    {"data": STATE_DATA_BAD,
     "expected_version": st.sampled_from([-1, True, False, 1.5, "1", 2**63, 2**70, math.nan, [0], Decimal(1)]),
     "actor": IDS_BAD, "retries": st.sampled_from([-1, True, 1.5, "3", None, 2**70, 10_001]),
     "history_limit": st.sampled_from([0, -1, True, 1.5, "2", 2**70, math.inf])},
    optional=("retries",),
)


def _state_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    return (sorted(k for k in new if k not in old), sorted(k for k in old if k not in new),
            sorted(k for k in new if k in old and not json_equal(old[k], new[k])))


def test_fuzz_state_args(fuzz: Fuzz) -> None:
    mem = fuzz.mem
    _seed_state_and_artifacts(fuzz, watch="state")

    def run(args: dict[str, Any], how: str, prior: int) -> None:
        sid = fuzz.fresh()
        with fuzz.example(how=how, prior=prior, **args) as ex:
            s = mem.session(sid)
            ex.cleanup(lambda: mem.delete_session(sid))
            for data in STATE_PRIOR[:prior]:
                ex.must("state.set (prior version)", s.state.set, data)
            before = STATE_PRIOR[prior - 1] if prior else {}
            data, actor = args["data"], args["actor"]
            expected = _resolve(args["expected_version"], prior)
            problems = []
            data_problem = doc_metadata_problem(data, allow_nul=True, max_bytes=DOC_STATE_BYTES)
            if data_problem:
                problems.append(f"data: {data_problem}")
            if actor is not None and id_problem(actor):
                problems.append(f"actor: {id_problem(actor)}")
            lenient = False
            if how in ("set", "aset"):
                call: dict[str, Any] = {"expected_version": expected, "actor": actor}
                if expected is not None and _int_problem(expected, 0):
                    problems.append(f"expected_version: {_int_problem(expected, 0)}")
                label = f"state.{how}(data, expected_version=, actor=)"
                fn: Callable[[], Any] = (lambda: s.state.set(data, **call)) if how == "set" else (
                    lambda: fuzz.arun(s.state.aset(data, **call)))
            else:
                call = {"actor": actor}
                if "retries" in args:
                    call["retries"] = retries = args["retries"]
                    if _int_problem(retries, 0):
                        problems.append(f"retries: {_int_problem(retries, 0)}")
                    elif retries > 10_000:
                        lenient = True  # no bound is documented; the code caps the attempts
                label = f"state.{how}(fn, actor=, retries=)"
                fn = (lambda: s.state.update(lambda _: data, **call)) if how == "update" else (
                    lambda: fuzz.arun(s.state.aupdate(lambda _: data, **call)))
            conflict = how in ("set", "aset") and expected is not None and not problems and expected != prior
            ok, got = ex.primary(label, fn)
            if not ok:
                if conflict:
                    ex.expect(isinstance(got, StateConflict), label, f"a stale expected_version raised "
                              f"{type(got).__name__}, not StateConflict", reason="conflict type")
                elif not problems and not lenient:
                    ex.fail("refused valid input", label, f"{type(got).__name__}: {safe_repr(str(got), 160)}",
                            reason=type(got).__name__)
                now = ex.must("state.get after a refused call", s.state.get)
                ex.expect(now.version == prior and json_equal(now.data, before, strict=True), label,
                          f"a refused call changed the state: version {now.version}, data {safe_repr(now.data, 80)}",
                          reason="refused call changed the state")
                if prior == 0:
                    ok2, _ = ex.call("get_session after a refused state write", mem.get_session, sid)
                    ex.expect(not ok2, label, "a refused state write left a session behind", reason="session left")
                return
            if problems:
                ex.fail("accepted invalid input", label, problems[0], reason=problems[0].split(":")[0])
            if conflict:
                ex.fail("accepted invalid input", label, f"expected_version {expected} but the state was at {prior}",
                        reason="stale expected_version")
            want = dict(data)
            ex.expect(got.version == prior + 1 and got.actor == actor and json_equal(got.data, want, strict=True),
                      label, f"returned version {got.version}, actor {got.actor!r}, data {safe_repr(got.data, 80)}",
                      reason="returned state")
            now = ex.must("state.get", s.state.get)
            ex.expect(json_equal(now.data, want, strict=True), "state.get",
                      f"read back {safe_repr(now.data, 100)}, set {safe_repr(want, 100)}",
                      reason="number type" if json_equal(now.data, want) else "data")
            ex.expect((now.version, now.actor, now.updated_at) == (got.version, got.actor, got.updated_at),
                      "state.get", f"read back version {now.version} actor {now.actor!r} at {now.updated_at}, "
                      f"returned {got.version} {got.actor!r} {got.updated_at}", reason="version")
            limit = args["history_limit"]
            if limit is not None and _int_problem(limit, 1):
                ex.reject("state.history(limit=)", s.state.history, limit=limit, why=f"limit {safe_repr(limit)}")
                return
            events = ex.must("state.history(limit=)", s.state.history, limit=limit)
            count = min(prior + 1, limit or prior + 1, mem.state_history or prior + 1)
            ex.expect([e.version for e in events] == list(range(prior + 1, prior + 1 - count, -1)), "state.history",
                      f"versions {[e.version for e in events]} with limit {limit} after {prior + 1} versions",
                      reason="history versions")
            if events:
                top = events[0]
                ex.expect(json_equal(top.data, want, strict=True) and top.actor == actor, "state.history()[0]",
                          f"data {safe_repr(top.data, 80)}, actor {top.actor!r}", reason="history data")
                changes = (sorted(top.added), sorted(top.removed), sorted(top.changed))
                ex.expect(changes == _state_changes(before, want), "state.history()[0]",
                          f"added/removed/changed {changes}, expected {_state_changes(before, want)}",
                          reason="history changes")

    fuzz.run("state_args", run, args=STATE_ARGS, how=st.sampled_from(["set", "set", "update", "aset", "aupdate"]),
             prior=st.sampled_from([0, 0, 1, 2]))


# -- target: session.update_metadata --------------------------------------------------------------------------------

MD_NS = "fuzz-md"
MD_KEYS = st.sampled_from(["a", "b", "n", "keep", "é", "", "big"])
#: JSON values session metadata may hold (no NUL, ints within 64 bits): most updates should reach the merge
JSON_MD = JSON_OK.filter(lambda v: doc_metadata_problem({"v": v}, allow_nul=False, max_bytes=DOC_METADATA_BYTES) is None)
MD_START = st.one_of(  # (Hypothesis favours the first branches)
    st.dictionaries(MD_KEYS, JSON_MD, max_size=4),
    st.none(),
    st.dictionaries(MD_KEYS, JSON_MD, max_size=4),
    st.sampled_from(["never written", "deleted", "expired"]),
    st.builds(big_dict, st.just("big"), st.just("x"), st.sampled_from([DOC_METADATA_BYTES - 40,
                                                                          DOC_METADATA_BYTES])),
).filter(lambda v: isinstance(v, str) or v is None or doc_metadata_problem(v, allow_nul=False,
                                                                            max_bytes=DOC_METADATA_BYTES) is None)
MD_UPDATE_OK = st.one_of(
    st.dictionaries(MD_KEYS, JSON_MD, max_size=3),  # keys the start metadata has
    st.dictionaries(st.one_of(MD_KEYS, KEYS_OK.filter(lambda k: "\x00" not in k)), JSON_MD, max_size=3),
    METADATA_OK,
    st.builds(MappingProxyType, st.dictionaries(MD_KEYS, SCALARS_OK, max_size=3)),
    st.builds(big_dict, st.sampled_from(["a", "big"]), st.sampled_from(["x", "é"]),
              st.sampled_from([20, DOC_METADATA_BYTES - 60, DOC_METADATA_BYTES, DOC_METADATA_BYTES + 1])),
)
MD_UPDATE_BAD = st.one_of(METADATA_BAD, METADATA_BAD, st.builds(lambda v: {"deep": v}, DEEP), st.just(None),
                          st.dictionaries(MD_KEYS, st.sampled_from(["\x00", "a\x00", 2**63, -(2**63) - 1]), min_size=1,
                                          max_size=2))
MD_UPDATE = mixed(
    {"metadata": MD_UPDATE_OK, "replace": st.booleans()},
    {"metadata": MD_UPDATE_BAD, "replace": st.sampled_from([0, 1, None, "yes", "", [True], 1.0])},
    optional=("replace",),
)


def _spacious_size(value: dict[str, Any]) -> int:
    """An upper bound of the size PostgreSQL checks (its stored text has spaces after ``:`` and ``,``)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8")) + 4 * len(value) + 4


def test_fuzz_update_metadata(fuzz: Fuzz) -> None:
    mem, clock = fuzz.mem, fuzz.clock

    def run(args: dict[str, Any], start: Any, ttl: float | None, how: str) -> None:
        sid = fuzz.fresh()
        with fuzz.example(start=start, ttl=ttl, how=how, **args) as ex:
            s = mem.session(sid, namespace=MD_NS, metadata=None if isinstance(start, str) else start, ttl=ttl)
            ex.cleanup(lambda: mem.delete_session(sid, namespace=MD_NS))
            if start != "never written":
                ex.must("Session.add (creates the session)", s.add, "user", "x")
            if start == "deleted":
                ex.must("delete_session", mem.delete_session, sid, namespace=MD_NS)
            elif start == "expired":
                ex.must("session(ttl=1)", mem.session(sid, namespace=MD_NS, ttl=1).add, "user", "y")
                clock.advance(2)
            old = None if isinstance(start, str) else ex.must("get_session", mem.get_session, sid, namespace=MD_NS)
            clock.advance(1)
            md, replace = args["metadata"], args.get("replace", False)
            call = {"replace": replace} if "replace" in args else {}
            problems = []
            if md is None:
                problems.append("metadata: None")
            else:
                problem = doc_metadata_problem(md, allow_nul=False, max_bytes=DOC_METADATA_BYTES)
                if problem:
                    problems.append(f"metadata: {problem}")
            if not isinstance(replace, bool):
                problems.append(f"replace: {type(replace).__name__}")
            merged: dict[str, Any] | None = None
            lenient = False
            if not problems and old is not None:
                merged = dict(md) if replace else {**old.metadata, **dict(md)}
                if compact_size(merged) > DOC_METADATA_BYTES:
                    problems.append("merged metadata over 64 KiB")
                elif _spacious_size(merged) > DOC_METADATA_BYTES:
                    lenient = True  # PostgreSQL checks the limit on its stored text, a few spaces longer
            label = f"Session.{how}(metadata, replace=)"
            fn: Callable[[], Any] = (lambda: s.update_metadata(md, **call)) if how == "update_metadata" else (
                lambda: fuzz.arun(s.aupdate_metadata(md, **call)))
            ok, info = ex.primary(label, fn)
            if old is None:  # no live session
                if ok:
                    ex.fail("accepted invalid input", label, f"updated a session that is {start}", reason=start)
                ex.expect(bool(problems) or isinstance(info, SessionNotFound), label,
                          f"{start} session: {type(info).__name__}, not SessionNotFound", reason="not found type")
                ok2, found = ex.call("get_session after the refused update", mem.get_session, sid, namespace=MD_NS)
                ex.expect(not ok2, label, f"the update of a {start} session left it behind: {safe_repr(found, 80)}",
                          reason="session left")
                return
            if not ok:
                if not problems and not lenient:
                    ex.fail("refused valid input", label, f"{type(info).__name__}: {safe_repr(str(info), 160)}",
                            reason=type(info).__name__)
                now = ex.must("get_session after a refused update", mem.get_session, sid, namespace=MD_NS)
                ex.expect(json_equal(now.metadata, old.metadata, strict=True)
                          and list(now.metadata) == list(old.metadata) and now.updated_at == old.updated_at, label,
                          f"a refused update changed the session: {safe_repr(now.metadata, 80)}",
                          reason="refused update changed it")
                return
            if problems:
                ex.fail("accepted invalid input", label, problems[0], reason=problems[0].split(":")[0])
            assert merged is not None
            got = info.metadata
            ex.expect(json_equal(got, merged, strict=True), label,
                      f"returned {safe_repr(got, 100)}, expected {safe_repr(merged, 100)}",
                      reason="number type" if json_equal(got, merged) else "merge" if not replace else "replace")
            ex.expect(list(got) == list(merged), label, f"top-level key order {list(got)[:8]}, expected "
                      f"{list(merged)[:8]}", reason="key order")
            now = ex.must("get_session", mem.get_session, sid, namespace=MD_NS)
            ex.expect(json_equal(now.metadata, merged, strict=True) and list(now.metadata) == list(merged),
                      "get_session after update_metadata", f"read back {safe_repr(now.metadata, 100)}",
                      reason="read back")
            ex.expect(now.updated_at is not None and abs(now.updated_at.timestamp() - clock.now) < 1e-3,
                      "get_session().updated_at", f"{now.updated_at} after an update at {clock.now}",
                      reason="updated_at")
            ex.expect(now.expires_at == old.expires_at and now.message_count == old.message_count,
                      "get_session after update_metadata", f"expires_at {now.expires_at} (was {old.expires_at}), "
                      f"message_count {now.message_count} (was {old.message_count})", reason="ttl or messages")
            # the listing index follows: not found by a value it lost (replace), found by a value it got
            probe = next(((k, v) for k, v in merged.items() if not extreme({k: v}) and not has_big_float(v)), None)
            lost = next(((k, v) for k, v in old.metadata.items() if k not in merged and not extreme({k: v})), None)
            if lost is not None:
                listed = ex.must("sessions(metadata={lost key})", mem.sessions, namespace=MD_NS,
                                 metadata={lost[0]: lost[1]}, limit=1000)
                ex.expect(sid not in [i.id for i in listed], "sessions(metadata=) after replace",
                          f"still found by {lost[0]!r}, which the update removed", reason="stale index")
            elif probe is not None:
                listed = ex.must("sessions(metadata={key: new value})", mem.sessions, namespace=MD_NS,
                                 metadata={probe[0]: probe[1]}, limit=1000)
                ex.expect(sid in [i.id for i in listed], "sessions(metadata=) after update_metadata",
                          f"not found by {probe[0]!r}={safe_repr(probe[1], 60)}", reason="index not updated")

    fuzz.run("update_metadata", run, args=MD_UPDATE, start=MD_START, ttl=st.sampled_from([None, None, 3600.0]),
             how=st.sampled_from(["update_metadata", "update_metadata", "aupdate_metadata"]))


# -- target: artifacts ----------------------------------------------------------------------------------------------

ART_LIMIT = 64  # max_artifact_bytes of the "limited" Memory (same store)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def art_name_problem(value: Any) -> tuple[str, str | None]:
    """("ok" | "bad" | "lenient", why) for an artifact name under the documented rules: NFC-normalised text of 1 to
    512 UTF-8 bytes, "/"-separated components that are not empty, "." or ".."; no leading "/" or drive letter, no
    backslash, no control characters. C1 characters (U+0080-U+009F) are "lenient": either answer is fine."""
    if not isinstance(value, str):
        return "bad", f"not a str: {type(value).__name__}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "bad", "lone surrogate"
    name = unicodedata.normalize("NFC", value)
    if not name:
        return "bad", "empty"
    if len(name.encode("utf-8")) > DOC_NAME_BYTES:
        return "bad", f"over {DOC_NAME_BYTES} bytes"
    if _CONTROL.search(name):
        return "bad", "control character"
    if "\\" in name:
        return "bad", "backslash"
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        return "bad", "absolute"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "bad", "empty, '.' or '..' component"
    if any(0x80 <= ord(c) <= 0x9F for c in name):
        return "lenient", "C1 control character"
    return "ok", None


_MIME_TOKEN = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")


def content_type_problem(value: Any) -> tuple[str, str | None]:
    """("ok" | "bad" | "lenient", why): None or a MIME type ``type/subtype[; parameters]``. Parameters are not
    checked (lenient), but they are text: no control characters, no lone surrogates."""
    if value is None:
        return "ok", None
    if not isinstance(value, str):
        return "bad", f"not a str: {type(value).__name__}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "bad", "lone surrogate"
    if _CONTROL.search(value):
        return "bad", "control character"
    head, _, params = value.partition(";")
    if not _MIME_TOKEN.fullmatch(head.strip() if params else head):
        return "bad", "not type/subtype"
    if len(value) > 255 or params or head != head.strip():
        return "lenient", "parameters or length"
    return "ok", None


class Unsized(io.RawIOBase):
    """A binary stream of unknown size (not seekable) that hands out at most 5 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        part = self._data[self._pos : self._pos + min(len(buffer), 5)]
        buffer[: len(part)] = part
        self._pos += len(part)
        return len(part)


def _array_of(data: bytes) -> array.array[int]:
    out = array.array("H")
    out.frombytes(data)
    return out


class ReadsText:
    """A "file object" whose read() returns something other than bytes."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def read(self, n: int = -1) -> Any:
        value, self.value = self.value, b""
        return value


SRC_VALID = ("bytes", "bytearray", "memoryview", "memoryview-slice", "array", "bytesio", "file", "path", "unsized")
SRC_LENIENT: tuple[str, ...] = ()
SRC_BAD = ("str", "str-path", "stringio", "text-file", "int", "none", "list", "path-missing", "path-dir",
           "reads-int", "reads-str")


@dataclass(frozen=True)
class Src:
    """An artifact source, built afresh for every call (a drawn file object would be used up by the first backend
    replaying the example)."""

    kind: str
    payload: bytes = b""
    skip: int = 0  # file objects: the position the save starts reading from

    def __repr__(self) -> str:
        return f"Src({self.kind}, {self.payload[:12]!r}{'…' if len(self.payload) > 12 else ''} ({len(self.payload)} " \
               f"bytes){', from ' + str(self.skip) if self.skip else ''})"

    @property
    def bad(self) -> bool:
        """Refused by the documented rules. A strided memoryview is bytes-like but not a contiguous buffer, unless
        it holds at most one byte (then it is contiguous: Python's own rule)."""
        return self.kind in SRC_BAD or (self.kind == "memoryview-strided" and len(self.payload) > 1)

    def content(self) -> bytes:
        """What a save of it must store (valid and lenient kinds)."""
        if self.kind == "array":
            return self.payload + b"\x00" * (len(self.payload) % 2)
        if self.kind in ("bytesio", "file"):
            return self.payload[self.skip:]
        if self.kind == "memoryview-strided":
            return self.payload
        return self.payload

    def build(self, tmp: Path, ex: Example) -> Any:
        kind, data = self.kind, self.payload
        path = tmp / f"src-{uuid.uuid4().hex[:8]}"
        if kind in ("file", "path", "str-path", "text-file"):
            path.write_bytes(data)
            ex.cleanup(lambda: path.unlink(missing_ok=True))
        if kind == "file" or kind == "text-file":
            fh = open(path, "rb") if kind == "file" else open(path, encoding="latin-1")  # noqa: SIM115
            ex.cleanup(fh.close)
            if kind == "file":
                fh.seek(self.skip)
            return fh
        if kind == "bytesio":
            buffer = io.BytesIO(data)
            buffer.seek(self.skip)
            return buffer
        return {
            "bytes": lambda: data, "bytearray": lambda: bytearray(data), "memoryview": lambda: memoryview(data),
            "memoryview-slice": lambda: memoryview(b"<<" + data + b">>")[2:-2],
            "array": lambda: memoryview(_array_of(self.content())),
            "memoryview-strided": lambda: memoryview(bytes(b for pair in zip(data, data, strict=True) for b in pair))[::2],
            "path": lambda: path, "unsized": lambda: Unsized(data), "str": lambda: data.decode("latin-1"),
            "str-path": lambda: str(path), "stringio": lambda: io.StringIO(data.decode("latin-1")),
            "int": lambda: len(data), "none": lambda: None, "list": lambda: list(data),
            "path-missing": lambda: tmp / "no-such-file", "path-dir": lambda: tmp,
            "reads-int": lambda: ReadsText(5), "reads-str": lambda: ReadsText("text"),
        }[kind]()


PAYLOADS = st.one_of(st.binary(max_size=48), st.sampled_from([b"", b"\x00", b"\xff" * 3, b"%PDF-1.7\n"]),
                     st.builds(bytes, st.sampled_from([ART_LIMIT - 1, ART_LIMIT, ART_LIMIT + 1, 2 * ART_LIMIT])))
SRC_OK = st.builds(Src, st.sampled_from(SRC_VALID + SRC_VALID[:3] + SRC_LENIENT), PAYLOADS, st.integers(0, 3))
SRC_JUNK = st.builds(Src, st.sampled_from((*SRC_BAD, "memoryview-strided")), PAYLOADS)
_COMPONENTS = st.one_of(st.sampled_from(["a", "reports", "q1.pdf", "café.txt", "cafe\u0301.txt", ".hidden", "..a",
                                          "a..", "...", "%2e%2e", "~", "*", "?", " ", "C", "a:b", "🚀", "\u2028",
                                          "\ufeff", "x" * 100]),
                        st.text(CHARS_ID.filter(lambda c: c not in "/\\"), min_size=1, max_size=10))
ART_NAMES_OK = st.one_of(
    st.lists(_COMPONENTS, min_size=1, max_size=4).map("/".join),
    st.sampled_from(["x" * 512, "é" * 256, "e\u0301" * 256, "🚀" * 128, "a/" * 255 + "b", "reports/q1.pdf",
                     "data.json", "image.PNG", "archive.tar.gz", "noext", "C", "c/d:"]),
)
ART_NAMES_BAD = st.one_of(
    st.sampled_from(["", "/", "/abs", "//a", "a//b", "a/", "./a", "a/./b", ".", "..", "../x", "a/../b", "a/..",
                     "a\\b", "\\a", "C:x", "c:\\x", "C:", "z:/a", "\x00", "a\nb", "a\x00", "\x1f", "\x7f", "\t",
                     "\ud800", "a/\udcff", "x" * 513, "é" * 257, "e\u0301" * 257, "🚀" * 129, "a/" * 256 + "b"]),
    JUNK_IDS,
    st.builds(lambda p: Path(p), st.sampled_from(["a", "a/b"])),
)
CONTENT_TYPES_OK = st.one_of(st.none(), st.none(), st.sampled_from([
    "text/plain", "application/json", "application/json; charset=utf-8", "image/svg+xml", "a/b", "x-custom/x.y-z",
    "TEXT/PLAIN", "application/vnd.ms-excel", "text/plain;charset=\"é\"", "multipart/form-data; boundary=--x--",
    "text/plain; \u2028", "a/" + "b" * 253, "a/" + "b" * 300]))
CONTENT_TYPES_BAD = st.one_of(st.sampled_from([
    "", "text", "/plain", "text/", "text /plain", "text/plain extra", "text/plain\n", "text/\x00", "text/plain; a=\x00",
    "text/plain; a=\ud800", "\ud800/x", "text/plain; a=\x85", 5, b"text/plain", ["text/plain"], "text/plain\r\n",
    "ä/b", " text/plain", "*/*;q=\x7f"]), TEXTS)
ART_META_OK = st.one_of(st.none(), METADATA_OK.filter(lambda m: not has_nul(m)),
                        st.builds(MappingProxyType, st.dictionaries(KEYS_OK, SCALARS_OK, max_size=2)))
ART_META_BAD = st.one_of(METADATA_BAD, st.builds(lambda v: {"deep": v}, DEEP),
                         st.sampled_from([{"k": "a\x00"}, {"a\x00": 1}, {"n": 2**63}]),
                         st.builds(big_dict, st.just("m"), st.just("x"), st.just(DOC_METADATA_BYTES + 1)))
VERSIONS_OK = st.sampled_from([None, None, Rel(0), Rel(0), Rel(-1), Rel(-2), Rel(1), 1, 2**63 - 1, 10**12, 10**13])
VERSIONS_BAD = st.sampled_from([0, -1, True, False, 1.5, "1", 2**63, 2**70, math.nan, [1], Decimal(1)])
ARTIFACT_ARGS = mixed(
    {"name": ART_NAMES_OK, "source": SRC_OK, "content_type": CONTENT_TYPES_OK, "metadata": ART_META_OK,
     "version": VERSIONS_OK},
    {"name": ART_NAMES_BAD, "source": SRC_JUNK, "content_type": CONTENT_TYPES_BAD, "metadata": ART_META_BAD,
     "version": VERSIONS_BAD},
    optional=("content_type", "metadata"),
)
ART_OPS = ("load", "open", "info", "versions", "delete", "delete-all", "manifest", "open_artifact")
PRIOR_PAYLOADS = [b"prior version 1", b"prior version 2 \x00\xff"]


def artifact_url_of(ns: str, sid: str, name: str, version: int) -> str:
    """The documented URL shape, built here: ``memvault://<namespace>/<session>/<name>?version=<n>``, each part
    percent-encoded."""
    return "memvault://" + "/".join(quote(p, safe="") for p in (ns, sid, name)) + f"?version={version}"


def test_fuzz_artifact_args(fuzz: Fuzz, make_memory: MemoryFactory, tmp_path: Path) -> None:
    mem = fuzz.mem
    limited = make_memory(embedder=f"hash-{DIM}", clock=fuzz.clock, max_artifact_bytes=ART_LIMIT)
    _seed_state_and_artifacts(fuzz, watch="artifacts")
    tmp = tmp_path / "artifact-sources"
    tmp.mkdir()

    def stored_keys(sid: str, kind: str) -> list[str]:
        return [k for k, _ in mem.store.scan_entries(mem.namespace, sid, kind, keys_only=True)]

    def run(args: dict[str, Any], op: str, prior: int, small: bool) -> None:
        sid = fuzz.fresh()
        with fuzz.example(op=op, prior=prior, small=small, **args) as ex:
            s = mem.session(sid)
            ex.cleanup(lambda: mem.delete_session(sid))
            name, src = args["name"], args["source"]
            kind, why = art_name_problem(name)
            norm = unicodedata.normalize("NFC", name) if kind != "bad" else None
            prior_name = norm if kind == "ok" else "prior.bin"
            contents: dict[int, bytes] = {}
            for i in range(prior):
                v0 = ex.must("artifacts.save (prior version)", s.artifacts.save, prior_name, PRIOR_PAYLOADS[i])
                contents[v0.version] = PRIOR_PAYLOADS[i]
            before = ex.must("artifacts.manifest before", s.artifacts.manifest) if prior else {}
            problems, lenient = [], []
            if kind == "bad":
                problems.append(f"name: {why}")
            elif kind == "lenient":
                lenient.append(f"name: {why}")
            if src.bad:
                problems.append(f"source: {src.kind}")
            elif src.kind in SRC_LENIENT:
                lenient.append(f"source: {src.kind}")
            ctype = args.get("content_type")
            ckind, cwhy = content_type_problem(ctype)
            if ckind == "bad":
                problems.append(f"content_type: {cwhy}")
            elif ckind == "lenient":
                lenient.append(f"content_type: {cwhy}")
            meta = args.get("metadata")
            if meta is not None:
                mp = doc_metadata_problem(meta, allow_nul=False, max_bytes=DOC_METADATA_BYTES)
                if mp:
                    problems.append(f"metadata: {mp}")
            content = src.content() if not problems and not src.bad else None
            too_large = small and content is not None and len(content) > ART_LIMIT
            if too_large:
                problems.append(f"content: {len(content or b'')} bytes > max_artifact_bytes={ART_LIMIT}")
            kwargs = {k: args[k] for k in ("content_type", "metadata") if k in args}
            store = limited if small else mem
            target = store.session(sid).artifacts
            label = "artifacts.save(name, source, content_type=, metadata=)"
            ok, v = ex.primary(label, lambda: target.save(name, src.build(tmp, ex), **kwargs))
            if not ok:
                if too_large and len(problems) == 1 and not lenient:
                    ex.expect(isinstance(v, ArtifactTooLarge), label, f"{type(v).__name__} for an artifact over "
                              "max_artifact_bytes, not ArtifactTooLarge", reason="too large type")
                if not problems and not lenient:
                    ex.fail("refused valid input", label, f"{type(v).__name__}: {safe_repr(str(v), 160)}",
                            reason=type(v).__name__)
                after = ex.must("artifacts.manifest after a refused save", s.artifacts.manifest)
                ex.expect(after == before, label, f"a refused save changed the manifest: {sorted(after)}",
                          reason="manifest changed")
                chunks, marks = stored_keys(sid, CHUNK), stored_keys(sid, SAVE)
                ex.expect(len(chunks) == prior and not marks, label, f"a refused save left {len(chunks) - prior} "
                          f"chunk(s) and {len(marks)} progress mark(s)", reason="leftovers")
                return
            if problems:
                ex.fail("accepted invalid input", label, problems[0], reason=problems[0].split(":")[0])
            assert content is not None and norm is not None
            version = (max(contents) if prior_name == norm and contents else 0) + 1
            if prior_name == norm:
                contents[version] = content
            else:
                contents = {version: content}
            guess = mimetypes.guess_type(norm, strict=False)[0] or "application/octet-stream"
            want = (norm, version, len(content), hashlib.sha256(content).hexdigest(), ctype or guess,
                    dict(meta or {}), artifact_url_of(mem.namespace, sid, norm, version))
            got = (v.name, v.version, v.size, v.sha256, v.content_type, v.metadata, v.url)
            for field_name, a, b in zip(("name", "version", "size", "sha256", "content_type", "metadata", "url"), got,
                                        want, strict=True):
                ex.expect(json_equal(a, b, strict=True), label, f"{field_name}: returned {safe_repr(a, 80)}, "
                          f"expected {safe_repr(b, 80)}", reason=field_name)
            loaded = ex.must("artifacts.load(name)", s.artifacts.load, name)
            ex.expect(loaded == content, "artifacts.load(name)", f"loaded {safe_repr(loaded, 60)}, saved "
                      f"{safe_repr(content, 60)}", reason="content")
            requested = _resolve(args["version"], version)
            vp = None if requested is None else _int_problem(requested, 1)
            exists = requested is None or (vp is None and requested in contents)
            wanted = content if requested is None else contents.get(requested) if vp is None else None
            if op in ("load", "open", "info"):
                what = f"artifacts.{op}(name, version={safe_repr(requested)})"
                if op == "load":
                    fn: Callable[[], Any] = lambda: s.artifacts.load(name, version=requested)  # noqa: E731
                elif op == "open":
                    def fn() -> Any:
                        with s.artifacts.open(name, version=requested) as reader:
                            return reader.read()
                else:
                    fn = lambda: s.artifacts.info(name, version=requested)  # noqa: E731
                if vp is not None:
                    ex.reject(what, fn, why=f"version {vp}")
                elif not exists:
                    ok2, err = ex.call(what, fn)
                    ex.expect(not ok2 and isinstance(err, ArtifactNotFound), what,
                              f"a version that does not exist: {safe_repr(err, 80)}", reason="missing version")
                else:
                    out = ex.must(what, fn)
                    if op == "info":
                        ex.expect(out.sha256 == hashlib.sha256(wanted or b"").hexdigest(), what,
                                  f"sha256 of version {requested}", reason="info")
                    else:
                        ex.expect(out == wanted, what, f"read {safe_repr(out, 60)}, stored {safe_repr(wanted, 60)}",
                                  reason="content")
            elif op == "open_artifact":
                with ex.must("Memory.open_artifact(v.url)", mem.open_artifact, v.url) as reader:
                    out = ex.must("ArtifactReader.read()", reader.read)
                ex.expect(out == content and reader.info == v, "Memory.open_artifact(v.url)",
                          f"read {safe_repr(out, 60)}, info {safe_repr(reader.info, 80)}", reason="content")
            elif op == "versions":
                listed = ex.must("artifacts.versions(name)", s.artifacts.versions, name)
                ex.expect([x.version for x in listed] == sorted(contents) and listed[-1] == v, "artifacts.versions",
                          f"versions {[x.version for x in listed]}, expected {sorted(contents)}", reason="versions")
            elif op in ("delete", "delete-all"):
                what = f"artifacts.delete(name{'' if op == 'delete-all' else ', version=' + safe_repr(requested)})"
                if op == "delete" and vp is not None:
                    ex.reject(what, s.artifacts.delete, name, version=requested, why=f"version {vp}")
                    return
                # version=None: every version
                gone = sorted(contents) if op == "delete-all" or requested is None else [requested] if exists else []
                count = ex.must(what, s.artifacts.delete, name, **({} if op == "delete-all" else {"version":
                                                                                                  requested}))
                ex.expect(count == len(gone), what, f"returned {count}, expected {len(gone)}", reason="count")
                for number in gone:
                    contents.pop(number)
                manifest = ex.must("artifacts.manifest after delete", s.artifacts.manifest)
                latest = max(contents) if contents else None
                shown = manifest.get(norm)
                ex.expect((shown.version if shown else None) == latest, "artifacts.manifest after delete",
                          f"shows version {shown.version if shown else None}, expected {latest}", reason="manifest")
                chunks = stored_keys(sid, CHUNK)
                left = sum(1 for number, data in contents.items() if data) + (prior if prior_name != norm else 0)
                ex.expect(len(chunks) == left, what, f"{len(chunks)} chunk(s) left, expected {left}",
                          reason="chunks left")
                if op == "delete-all":
                    again = ex.must("artifacts.save after delete", s.artifacts.save, name, b"again")
                    ex.expect(again.version == version + 1, "artifacts.save after delete",
                              f"version {again.version} after deleting up to {version}: numbers are never reused",
                              reason="reused number")
            else:
                manifest = ex.must("artifacts.manifest", s.artifacts.manifest)
                expected_names = sorted({norm, *([prior_name] if prior else [])})
                ex.expect(sorted(manifest) == expected_names and manifest[norm] == v, "artifacts.manifest",
                          f"names {sorted(manifest)}, expected {expected_names}", reason="manifest")
                listed = ex.must("artifacts.list", s.artifacts.list)
                ex.expect([x.name for x in listed] == sorted(manifest) and v in listed, "artifacts.list",
                          f"lists {[x.name for x in listed]}", reason="list")

    fuzz.run("artifact_args", run, args=ARTIFACT_ARGS, op=st.sampled_from(ART_OPS), prior=st.sampled_from([0, 0, 1, 2]),
             small=st.sampled_from([False, False, True]))


# -- target: Memory.open_artifact(url) ------------------------------------------------------------------------------

URL_SEEDS = [("default", "seed-2", "seed/report.txt", 1), ("default", "seed-2", "seed/report.txt", 2),
             ("default", "seed-2", "café.txt", 1), ("default", "seed-2", "empty", 1),
             ("default", "seed-2", "%2e%2e", 1), (SEED_NS, "seed-1", "tenant.txt", 1)]
URL_SCHEMES = st.sampled_from(["memvault://"] * 8 + ["MEMVAULT://", "memvault:/", "memvault:///", " memvault://",
                                                     "memvault+x://", "file://", "", "memvault:\\\\"])
URL_NS = st.sampled_from(["default", "default", "%64efault", "fuzz-seed", "DEFAULT", "", "%00", "other", "%ff",
                          "default%20", "default#collections", "default%1Fcollections", "%ED%A0%80"])
URL_SIDS = st.sampled_from(["seed-2", "seed-2", "seed-1", "seed%2D2", "", "nobody", "%00", "..", "%2e%2e",
                            "seed-2%00", "%C3%28", "x" * 600])
URL_NAMES = st.sampled_from(["seed%2Freport.txt", "seed%2Freport.txt", "seed/report.txt", "caf%C3%A9.txt",
                             "cafe%CC%81.txt", "caf\u00e9.txt", "empty", "%252e%252e", "%2e%2e", "..", "%2e%2e%2Fx",
                             "seed%2F..%2Freport.txt", "%2Fetc%2Fpasswd", "a%5Cb", "%00", "%", "%zz", "%ff",
                             "%ED%A0%80", "", "missing", "C%3Ax", "x" * 513])
URL_VERSIONS = st.sampled_from(["?version=1", "?version=1", "?version=2", "?version=3", "?version=0", "?version=01",
                                "?version=-1", "?version=1.0", "?version=", "", "?", "?version=1&x=2", "?Version=1",
                                "?version=1 ", "?version=+1", "?version=" + "9" * 18, "?version=" + "9" * 19,
                                "?version=" + "9" * 40, "#version=1", "?version=1#frag", "?version=1\n",
                                "?version=\u0661", "?version=0x1", "?version=10000000000000"])


@st.composite
def artifact_urls(draw: st.DrawFn) -> Any:
    """A seeded artifact's URL with one or two of its parts (scheme, namespace, session, name, an extra path part,
    the query) made hostile, or with text spliced in, or any text, or not a str."""
    kind = draw(st.sampled_from(["mutated"] * 4 + ["parts", "valid+text", "text", "junk"]))
    if kind == "mutated":
        ns, sid, name, version = draw(st.sampled_from(URL_SEEDS))
        parts = ["memvault://", quote(ns, safe=""), quote(sid, safe=""), quote(name, safe=""), "",
                 f"?version={version}"]
        hostile = [URL_SCHEMES, URL_NS, URL_SIDS, URL_NAMES, st.sampled_from(["/", "/extra", "//"]), URL_VERSIONS]
        for i in draw(st.lists(st.integers(0, 5), max_size=2, unique=True)):
            parts[i] = draw(hostile[i])
        return parts[0] + "/".join(parts[1:4]) + "".join(parts[4:])
    if kind == "junk":
        return draw(st.one_of(JUNK_IDS, st.just(b"memvault://default/seed-2/empty?version=1"), st.none()))
    if kind == "text":
        return draw(st.one_of(TEXTS, st.text(st.sampled_from("memvault:/?=%2e1"), max_size=30)))
    if kind == "valid+text":
        ns, sid, name, version = draw(st.sampled_from(URL_SEEDS))
        url = artifact_url_of(ns, sid, name, version)
        cut = draw(st.integers(0, len(url)))
        return url[:cut] + draw(TEXTS) + url[cut:] if draw(st.booleans()) else url[:cut]
    extra = draw(st.sampled_from(["", "", "", "/", "/extra", "//"]))
    return (draw(URL_SCHEMES) + draw(URL_NS) + "/" + draw(URL_SIDS) + "/" + draw(URL_NAMES) + extra
            + draw(URL_VERSIONS))


def url_target(url: Any) -> tuple[str, Any]:
    """("bad", why) | ("lenient", why) | ("ok", (namespace, session, NFC name, version)) for a URL under the
    documented shape ``memvault://<namespace>/<session>/<name>?version=<n>`` (parts percent-encoded). Leading zeros
    and a fragment are "lenient"."""
    if not isinstance(url, str):
        return "bad", f"not a str: {type(url).__name__}"
    if not url.startswith("memvault://"):
        return "bad", "scheme"
    rest = url[len("memvault://"):]
    path, sep, query = rest.partition("?")
    parts = path.split("/")
    if len(parts) != 3:
        return "bad", f"{len(parts)} path parts"
    query, frag, _ = query.partition("#")
    match = re.fullmatch(r"version=([0-9]+)", query) if sep else None
    if match is None or not match.group(1).isascii():
        return "bad", "version"
    number = int(match.group(1))
    if number < 1:
        return "bad", "version < 1"
    try:
        ns, sid, name = (unquote(p, errors="strict") for p in parts)
    except UnicodeDecodeError:
        return "bad", "percent-encoding is not UTF-8"
    for value in (ns, sid):
        if id_problem(value) or any(0x80 <= ord(c) <= 0x9F for c in value):
            return "bad", f"id: {id_problem(value) or 'C1'}"
    nkind, why = art_name_problem(name)
    if nkind == "bad":
        return "bad", f"name: {why}"
    if frag or match.group(1).startswith("0") or number > INT64[1] or nkind == "lenient":
        return "lenient", "fragment, leading zero, huge version or C1 name"
    return "ok", (ns, sid, unicodedata.normalize("NFC", name), number)


def test_fuzz_artifact_urls(fuzz: Fuzz) -> None:
    mem = fuzz.mem
    seeded = _seed_state_and_artifacts(fuzz, watch="artifacts")
    assert sorted(seeded) == sorted(URL_SEEDS), "URL_SEEDS must name the seeded artifact versions"

    def run(url: Any, how: str) -> None:
        with fuzz.example(url=url, how=how) as ex:
            kind, target = url_target(url)
            label = f"Memory.{how}(url)"
            if how == "open_artifact":
                ok, reader = ex.primary(label, mem.open_artifact, url)
                if ok:
                    ex.cleanup(reader.close)
                    data = ex.must("ArtifactReader.read()", reader.read)
            else:
                async def opened() -> tuple[Any, bytes]:
                    async with await mem.aopen_artifact(url) as reader:
                        return reader, await reader.read()

                ok, result = ex.primary(label, lambda: fuzz.arun(opened()))
                if ok:
                    reader, data = result
            if not ok:
                error = reader if how == "open_artifact" else result
                ex.expect(not (kind == "ok" and target[0] == mem.namespace and target in seeded), label,
                          f"refused the URL of a stored artifact: {type(error).__name__}: {safe_repr(str(error), 120)}",
                          reason="refused valid")
                return
            if kind == "bad":
                ex.fail("accepted invalid input", label, target, reason=target.split(":")[0])
            if kind == "ok" and target[0] != mem.namespace:
                ex.fail("accepted invalid input", label, f"opened an artifact of namespace {target[0]!r} from a "
                        f"Memory of {mem.namespace!r}", reason="cross-namespace")
            info = reader.info
            key = (mem.namespace, "seed-2", info.name, info.version)
            ex.expect(kind == "lenient" or target == key, label, f"opened {key}, the URL names {target}",
                      reason="wrong artifact")
            ex.expect(key in seeded and data == seeded[key], label,
                      f"read {safe_repr(data, 60)} from {key}", reason="content")

    fuzz.run("artifact_urls", run, url=artifact_urls(), how=st.sampled_from(["open_artifact"] * 4 +
                                                                            ["aopen_artifact"]))


# -- explicit examples: the inputs the issue names, run before the drawn ones on every backend --------------------------

_LISTING_BASE: dict[str, Any] = {"user_id": None, "metadata": None, "updated_after": None, "updated_before": None,
                                 "limit": 50, "cursor": None}
_MESSAGE_BASE: dict[str, Any] = {"role": "user", "content": "hi", "name": None, "tool_calls": None,
                                 "tool_call_id": None, "metadata": None, "extras": None, "created_at": None, "id": None}
_SEARCH_BASE: dict[str, Any] = {"query": "lighthouse", "k": 3, "mode": "hybrid", "alpha": 0.5, "where": None}
_RECALL_BASE: dict[str, Any] = {"query": "Biscuit", "session": None, "user_id": None, "namespace": RECALL_NS, "k": 3,
                                "mode": "hybrid", "filters": None}
_CONTEXT_BASE: dict[str, Any] = {"sid": "r1", "query": "Biscuit", "budget_tokens": 200, "namespace": RECALL_NS}
_OPTIONS_BASE: dict[str, Any] = {"ttl": None, "max_messages": None, "compress": None}
_ID_CASES: list[Any] = ["", "../../etc/passwd", "\x00", "a\x00b", "\x1f", "\ud800", "x" * 513, "é" * 257, "x" * 512,
                        "X#collections", f"{SEED_NS}#collections", "default#collections", "\x85", "\u2028", "{a}",
                        "\\(", 5, b"id", None, True]


def _line(**fields: Any) -> str:
    return json.dumps({"v": 1, "id": "m1", "role": "user", "content": "x", "created_at": "2024-01-01T00:00:00+00:00",
                       **fields})


EXPLICIT: dict[str, list[dict[str, Any]]] = {
    "session_id": [{"sid": v} for v in _ID_CASES if v is not None],
    "namespace": [{"ns": v} for v in _ID_CASES if v is not None],
    "user_id": [{"uid": v} for v in [*_ID_CASES, 0, -1.5]],
    "session_metadata": [{"md": v} for v in [
        {"n": math.nan}, {"i": math.inf}, {"big": 2**70}, {"when": datetime(2020, 1, 1)}, {"s": {1, 2}}, {"b": b"x"},
        {"t": (1, 2)}, {1: "int key"}, {"\ud800": 1}, {"k": "\ud800"}, {"a\x00b": 1}, {"k": "v\x00"},
        {"deep": nest("list", 1000)}, {"deep": nest("dict", 1000)}, {"deep": nest("list", 200)}, ["ab"], [("a", 1)],
        "ab", 5, [], {"f": 1e16}, {"huge": 2**20_000}, {"o": {"b": 2, "a": 1}}, {"yes": True}, {"one": 1},
        {"z": -0.0}, {"e": ""}, {"": "empty key"}]],
    "session_options": [{"options": {**_OPTIONS_BASE, **o}} for o in [
        {"ttl": math.nan}, {"ttl": math.inf}, {"ttl": 2**70}, {"ttl": "60"}, {"ttl": timedelta(seconds=60)},
        {"ttl": -1}, {"ttl": 0}, {"max_messages": True}, {"max_messages": 2**63}, {"max_messages": 0},
        {"max_messages": 1.5}, {"compress": "yes"}, {"compress": {"trigger_messages": 2, "keep_messages": 1,
                                                                   "trigger_tokens": None, "keep_tokens": None,
                                                                   "prompt": 5}}]],
    "message_fields": [{"fields": {**_MESSAGE_BASE, **f}, "how": "add"} for f in [
        {"tool_calls": []}, {"extras": []}, {"extras": "x"}, {"metadata": {"t": (1, 2)}}, {"metadata": {1: "a"}},
        {"metadata": {"n": math.nan}}, {"content": "\ud800"}, {"content": ["ok", {"type": "text", "text": "\ud800"}]},
        {"content": [nest("list", 1000)]}, {"content": b"x"}, {"role": "robot"}, {"id": ""}, {"id": "a\x00b"},
        {"created_at": datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))},
        {"created_at": datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))}, {"created_at": "2024-01-01"},
        {"name": "\u2028"}, {"content": "line\u2028separator \x85 and \x1c"}, {"tool_call_id": 5}]],
    "read_args": [{"op": op, "last": last, "start": start, "stop": None, "limit": None, "ids": ids} for op, last, start,
                  ids in [("messages", 2**64, None, None), ("messages", None, 2**70, None), ("messages", True, None, None),
                          ("messages", -1, None, None), ("summaries", 2**63, None, None), ("get", None, None, "abc"),
                          ("get", None, None, 5), ("get", None, None, ["a", None]), ("delete_messages", None, None,
                                                                                      ["b", ("a",)]),
                          ("get", None, None, [b"a"]), ("get", None, None, ["\ud800"])]],
    "listing_args": [{"kwargs": {**_LISTING_BASE, **k}, "walk": False} for k in [
        {"updated_after": "2020-01-01"}, {"updated_before": 1800000010}, {"updated_after": datetime(2027, 1, 15, 8)},
        {"cursor": 123}, {"cursor": "[" * 100_000}, {"cursor": b64(b"[" * 100_000)}, {"cursor": forge_cursor(1e308, "")},
        {"cursor": b64(b'[NaN, "s10"]')}, {"cursor": forge_cursor(T_LIST + 10, "s10")}, {"metadata": {"k": 2**70}},
        {"metadata": {"a\x00b": 1}}, {"metadata": {"k": "a\x00b"}}, {"metadata": {"k": math.nan}},
        {"metadata": {"k": {1, 2}}}, {"metadata": {"k": {"b": 2, "a": 1}}}, {"metadata": {"k": True}},
        {"metadata": {"k": 1}}, {"metadata": {"k": [1.0, 2]}}, {"metadata": {"k": {"a": 1.0, "b": 2}}},
        {"metadata": {"k": [True]}}, {"metadata": {"k": "\ud800"}}, {"metadata": {"k": None}}, {"metadata": ["k"]},
        {"metadata": {1: 1}}, {"metadata": {"k": datetime(2020, 1, 1)}}, {"limit": 0}, {"limit": "5"}, {"limit": 2**70},
        {"user_id": "\ud800"}, {"user_id": 5}]],
    "import_lines": [{"lines": lines, "use_sid": True, "user": None, "use_ns": False} for lines in [
        [json.dumps({"type": "session", "id": FRESH, "user_id": 5}), _line()],
        [json.dumps({"type": "session", "id": FRESH, "user_id": ["u"]}), _line()],
        [json.dumps({"type": "session", "id": FRESH, "metadata": [1, 2]}), _line()],
        [json.dumps({"type": "session", "id": FRESH, "metadata": "meta"}), _line()],
        ['[{"type":"session"}]', _line()], ['{"type":"session","metadata":NaN}', _line()],
        [_line(created_at="0001-01-01T00:00:00+05:00")], [_line(created_at="9999-12-31T23:59:59-05:00")],
        [_line(metadata={"x": 1})[:-5]], [b'\xff\xfe{"role"}'.decode("utf-8", "surrogateescape")],
        [_line(content="\u2028 inside")], [_line(v=2)], [_line(metadata=[])], [_line(extras=[1])],
        [_line(content="y" * 3_000_000)], "\n".join([_line(id="a"), _line(id="b"), _line(id="a")]), [5], None, b"{}",
    ]],
    "collections": [{"name": "c", "docs": docs, "search": {**_SEARCH_BASE, **search}, "delete": None}
                    for docs, search in [
        ([{"id": "v1", "text": "t", "metadata": {}, "vector": [math.nan] * DIM}], {}),
        ([{"id": "v1", "text": "t", "metadata": {}, "vector": [1.0] * (DIM + 1)}], {}),
        ([{"id": "v1", "text": "t", "metadata": {"t": (1,)}, "vector": None}], {}),
        ([], {"where": {"list": [1]}}), ([], {"where": {"list": [True]}}), ([], {"where": {"n": True}}),
        ([], {"where": {"n": 1}}), ([], {"alpha": "0.5"}), ([], {"alpha": math.nan}), ([], {"k": 0}), ([], {"k": True}),
        ([], {"mode": "bm25"}), ([], {"query": b"q"}), ([], {"vector": [math.nan] * DIM, "mode": "dense"}),
        ([], {"vector": "12345678", "mode": "dense"}), ([], {"where": {"tag": {"$regex": "x"}}}), ([], {"where": [1]}),
        ([], {"mmr": 2}), ([], {"mmr": 0.5, "fetch_k": 0})]],
    "recall_args": [{"args": {**_RECALL_BASE, **a}} for a in [
        {"filters": 5}, {"filters": "role"}, {"filters": {"role": "robot"}}, {"k": True}, {"k": 0}, {"mmr": "x"},
        {"neighbors": -1}, {"query": None}, {"namespace": f"{SEED_NS}#collections", "query": "seeded document"},
        {"namespace": "default#collections"}, {"session": "\ud800"}, {"user_id": 5, "session": "r1"},
        {"filters": {"after": "2020-01-01"}}, {"filters": {"metadata": {"tag": {"$regex": "x"}}}},
        {"recency_half_life": -1}, {"fusion": "bogus"}]],
    "context_args": [{"args": {**_CONTEXT_BASE, **a}} for a in [
        {"model": 5}, {"budget_tokens": -1}, {"budget_tokens": 1.5}, {"query": 5}, {"summary_share": 1.5},
        {"summary_share": 0.8, "recall_share": 0.8}, {"recall_k": -1}, {"namespace": ""}]],
    "memory_args": [{"options": o} for o in [
        {"namespace": ""}, {"namespace": b"ns"}, {"namespace": 0}, {"namespace": None, "embedder": "bogus"},
        {"namespace": None, "embedder": "hash-0"}, {"namespace": None, "bogus_option": 1},
        {"namespace": None, "ttl": "60"}]],
}


_STATE_BASE: dict[str, Any] = {"data": {"a": 1}, "expected_version": None, "actor": None, "history_limit": None}
_MD_BASE: dict[str, Any] = {"start": {"a": 1, "b": 2}, "ttl": None, "how": "update_metadata"}
_ART_BASE: dict[str, Any] = {"name": "a.txt", "source": Src("bytes", b"hi"), "version": None}
_SEED_URL = artifact_url_of("default", "seed-2", "seed/report.txt", 1)

EXPLICIT.update({
    "state_args": [
        *[{"args": {**_STATE_BASE, "data": d}, "how": "set", "prior": 1} for d in [
            {"n": math.nan}, {"i": -math.inf}, {"big": 2**63}, {"big": 2**63 - 1}, {"big": -(2**63)},
            {"big": -(2**63) - 1}, {"huge": 2**20_000}, {"when": datetime(2020, 1, 1)}, {"s": {1, 2}}, {"b": b"x"},
            {"t": (1, 2)}, {1: "int key"}, {None: 1}, {"\ud800": 1}, {"k": "\ud800"}, {"a\x00b": "v\x00"},
            {"deep": nest("list", 31)}, {"deep": nest("list", 32)}, {"deep": nest("dict", 1000)}, [("a", 1)], "ab",
            None, [], MappingProxyType({"a": 1}), {"p": MappingProxyType({})}, {"d": Decimal("1.5")},
            big_dict("blob", "x", DOC_STATE_BYTES), big_dict("blob", "x", DOC_STATE_BYTES + 1),
            big_dict("blob", "é", DOC_STATE_BYTES + 1), big_dict("blob", "\x00", DOC_STATE_BYTES + 6),
            {"o": {"b": 2, "a": 1}}, {"f": 1e300}, {"z": -0.0}, {"": ""}, {}, {"keep": "x", "n": True}]],
        *[{"args": {**_STATE_BASE, "expected_version": e}, "how": "set", "prior": p} for e, p in [
            (-1, 0), (True, 1), (False, 0), (1.5, 1), ("0", 0), (2**63, 0), (Rel(0), 1), (Rel(-1), 2), (5, 0),
            (0, 2), (Rel(0), 0), (math.nan, 0)]],
        *[{"args": {**_STATE_BASE, "actor": a}, "how": h, "prior": 0} for a in ["", "\x00", 5, "x" * 513, "\ud800",
                                                                               b"a", "planner"]
          for h in ("set", "update")],
        *[{"args": {**_STATE_BASE, "history_limit": h}, "how": "set", "prior": 2} for h in [0, True, 2**70, 1, "1"]],
        *[{"args": {**_STATE_BASE, "retries": r}, "how": h, "prior": 1} for r in [-1, True, 10_001, "3", None, 0]
          for h in ("update", "aupdate")],
        {"args": {**_STATE_BASE, "data": {"n": math.nan}}, "how": "aset", "prior": 0},
        {"args": {**_STATE_BASE, "data": None}, "how": "aupdate", "prior": 1},
    ],
    "update_metadata": [
        *[{"args": {"metadata": {"x": 1}}, **_MD_BASE, "start": s} for s in ["never written", "deleted", "expired"]],
        *[{"args": {"metadata": m, "replace": r}, **_MD_BASE} for m, r in [
            ({"b": 3, "c": 4}, False), ({"b": 3, "c": 4}, True), ({}, True), ({}, False), ({"b": True}, False),
            ({"b": 2.0}, False), (None, True), (None, False), ([], False), ("ab", False), ({"k": "\x00"}, False),
            ({"a\x00": 1}, False), ({"n": 2**63}, False), ({"deep": nest("list", 40)}, False),
            ({"t": (1, 2)}, False), ({1: 2}, False), ({"n": math.nan}, True), (MappingProxyType({"m": 1}), False),
            ({"x": 1}, "yes"), ({"x": 1}, 1), ({"x": 1}, None), ({"x": 1}, 0),
            (big_dict("big", "x", DOC_METADATA_BYTES - 40), False), (big_dict("big", "x", DOC_METADATA_BYTES + 1),
                                                                      True)]],
        {"args": {"metadata": {"more": "y" * 100}}, **_MD_BASE,
         "start": big_dict("big", "x", DOC_METADATA_BYTES - 40)},
        {"args": {"metadata": {"more": "y" * 100}, "replace": True}, **_MD_BASE,
         "start": big_dict("big", "x", DOC_METADATA_BYTES - 40)},
        {"args": {"metadata": {"b": 3}}, **_MD_BASE, "ttl": 3600.0, "how": "aupdate_metadata"},
        {"args": {"metadata": None}, **_MD_BASE, "how": "aupdate_metadata"},
    ],
    "artifact_args": [
        *[{"args": {**_ART_BASE, "name": n}, "op": "load", "prior": p, "small": False} for n, p in [
            ("../../etc/passwd", 0), ("/etc/passwd", 0), ("a/../b", 0), ("a\\b", 0), ("C:\\x", 0), ("C:x", 0),
            ("", 0), (".", 0), ("..", 0), ("a//b", 0), ("a/", 0), ("a\x00b", 0), ("a\nb", 0), ("\ud800", 0),
            ("x" * 513, 0), ("é" * 257, 0), ("é" * 256, 0), ("e\u0301" * 256, 0), ("cafe\u0301.txt", 1),
            ("caf\u00e9.txt", 1), ("a\x85b", 0), (5, 0), (b"a", 0), (None, 0), (Path("a"), 0), ("%2e%2e", 0)]],
        *[{"args": {**_ART_BASE, "source": src}, "op": "manifest", "prior": 1, "small": small} for src, small in [
            (Src("str", b"text"), False), (Src("str-path", b"text"), False), (Src("memoryview-strided", b"abc"), False),
            (Src("stringio", b"x"), False), (Src("reads-str"), False), (Src("reads-int"), False),
            (Src("path-dir"), False), (Src("path-missing"), False), (Src("none"), False), (Src("list", b"ab"), False),
            (Src("bytes", bytes(ART_LIMIT + 1)), True), (Src("unsized", bytes(ART_LIMIT + 1)), True),
            (Src("file", bytes(ART_LIMIT + 4), 4), True), (Src("path", bytes(ART_LIMIT + 1)), True),
            (Src("bytes", bytes(ART_LIMIT)), True), (Src("bytesio", b"0123456789", 3), False),
            (Src("array", b"abc"), False), (Src("bytes", b""), False), (Src("unsized", b"x" * 23), False)]],
        *[{"args": {**_ART_BASE, "content_type": c}, "op": "info", "prior": 0, "small": False} for c in [
            "text/plain; a=\ud800", "\ud800/x", "*/*;q=\x7f", "text/plain; q=\x7f", "text/plain; charset=\x85", "text/plain\n", "", 5,
            "text", "text/", b"text/plain", "application/json; charset=utf-8", "a/" + "b" * 300]],
        *[{"args": {**_ART_BASE, "metadata": m}, "op": "versions", "prior": 0, "small": False} for m in [
            {"k": "a\x00"}, {"n": math.nan}, {"t": (1,)}, {1: 1}, "x", [], {"n": 2**63},
            big_dict("m", "x", DOC_METADATA_BYTES + 1), big_dict("m", "x", DOC_METADATA_BYTES),
            MappingProxyType({"m": 1})]],
        *[{"args": {**_ART_BASE, "version": v}, "op": op, "prior": p, "small": False} for v, op, p in [
            (0, "load", 0), (-1, "open", 0), (True, "load", 1), (2**63, "info", 0), ("1", "load", 0),
            (Rel(1), "load", 1), (10**13, "open", 0), (2**63 - 1, "load", 0), (Rel(-1), "open", 2), (0, "delete", 0),
            (Rel(-1), "delete", 1), (None, "delete", 2), (Rel(0), "delete", 2), (Rel(5), "delete", 0),
            (None, "delete-all", 2), (None, "open_artifact", 0)]],
    ],
    "artifact_urls": [{"url": u, "how": "open_artifact"} for u in [
        _SEED_URL, artifact_url_of("default", "seed-2", "seed/report.txt", 2),
        artifact_url_of("default", "seed-2", "seed/report.txt", 3), artifact_url_of(SEED_NS, "seed-1", "tenant.txt", 1),
        artifact_url_of("default", "seed-2", "cafe\u0301.txt", 1), artifact_url_of("default", "seed-2", "%2e%2e", 1),
        "memvault://default/seed-2/seed/report.txt?version=1", _SEED_URL.replace("version=1", "version=0"),
        _SEED_URL.replace("version=1", "version=01"), _SEED_URL.replace("version=1", "version=1e3"),
        _SEED_URL.replace("version=1", "version=" + "9" * 18), _SEED_URL.replace("version=1", "version=" + "9" * 40),
        _SEED_URL + "&x=1", _SEED_URL + "#x", _SEED_URL.replace("?", "#"), _SEED_URL.split("?")[0],
        "memvault://default/seed-2/%ff?version=1", "memvault://default/%00/empty?version=1",
        "memvault://default/\ud800/empty?version=1", "memvault://default/seed-2/%ED%A0%80?version=1",
        "memvault://default%1Fcollections/seed-2/empty?version=1", "memvault://%64efault/seed%2D2/empty?version=1",
        "memvault://default/seed-2/..?version=1", "memvault://default/seed-2/%2e%2e%2Fempty?version=1",
        "memvault://default/seed-2/%2Fempty?version=1", "memvault://default/seed-2/a%5Cb?version=1",
        "memvault://default/seed-2/empty?version=1\n", "memvault:///seed-2/empty?version=1", "memvault://", "",
        "MEMVAULT://default/seed-2/empty?version=1", None, 5, b"memvault://default/seed-2/empty?version=1",
        ["memvault://default/seed-2/empty?version=1"]]] + [{"url": _SEED_URL, "how": "aopen_artifact"},
                                                           {"url": None, "how": "aopen_artifact"},
                                                           {"url": "memvault://x", "how": "aopen_artifact"}],
})


# -- deterministic companions -----------------------------------------------------------------------------------------


def test_empty_namespace_is_refused_everywhere(make_memory: MemoryFactory, backend: str) -> None:
    """An empty namespace is an error on every path (InvalidSessionId), never silently the default namespace."""
    from memvault.errors import InvalidSessionId

    failures = []
    try:
        mem = make_memory(namespace="")
        failures.append(f"Memory(namespace='') was accepted as namespace {mem.namespace!r}")
    except InvalidSessionId:
        pass
    except Exception as exc:  # pragma: no cover - reported below
        failures.append(f"Memory(namespace='') raised {type(exc).__name__}: {exc}")
    mem = make_memory()
    for label, fn in {
        "session(namespace='')": lambda: mem.session("x", namespace=""),
        "sessions(namespace='')": lambda: mem.sessions(namespace=""),
        "get_session(namespace='')": lambda: mem.get_session("x", namespace=""),
        "recall(namespace='')": lambda: mem.recall("x", namespace=""),
    }.items():
        try:
            fn()
            failures.append(f"{label} was accepted")
        except InvalidSessionId:
            pass
        except Exception as exc:
            failures.append(f"{label} raised {type(exc).__name__}: {exc}")
    assert not failures, f"[{backend}] " + "; ".join(failures)
