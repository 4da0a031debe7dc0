"""Index fields (LangGraph's path syntax: ``a.b``, ``tags[*]``, ``x[0]``) and the filter operators of document searches."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from memvault.errors import (
    InvalidFilter,
)
from memvault.recall.filters import MISSING, lookup
from memvault.validation import (
    check_json,
    check_text,
    json_equal,
)


# -- index fields (LangGraph's path syntax) ----------------------------------------------------------------------
def tokenize_path(path: str) -> list[str]:
    """``"a.b[*].c"`` -> ``["a", "b", "[*]", "c"]``; brackets ``[0]``/``[-1]``/``[*]`` and braces ``{x,y.z}`` are
    single tokens."""
    tokens: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char in "[{":
            if current:
                tokens.append("".join(current))
                current = []
            close = "]" if char == "[" else "}"
            depth, j = 1, i + 1
            while j < len(path) and depth:
                depth += (path[j] == char) - (path[j] == close)
                j += 1
            tokens.append(path[i:j])
            i = j
            continue
        if char == ".":
            if current:
                tokens.append("".join(current))
                current = []
        else:
            current.append(char)
        i += 1
    if current:
        tokens.append("".join(current))
    return tokens


def _json_text(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def texts_at_path(obj: Any, path: str) -> list[str]:
    """The texts a path selects in ``obj`` ("$" or "": the whole object as JSON); missing fields give none."""
    if not path or path == "$":
        return [_json_text(obj)]
    tokens = tokenize_path(path)

    def walk(node: Any, pos: int) -> list[str]:
        if pos >= len(tokens):
            if isinstance(node, bool):
                return [str(node)]
            if isinstance(node, (str, int, float)):
                return [str(node)]
            if isinstance(node, (list, dict)):
                return [_json_text(node)]
            return []
        token = tokens[pos]
        if token.startswith("["):
            if not isinstance(node, list):
                return []
            inner = token[1:-1]
            if inner == "*":
                return [t for element in node for t in walk(element, pos + 1)]
            try:
                index = int(inner)
            except ValueError:
                return []
            if index < 0:
                index += len(node)
            return walk(node[index], pos + 1) if 0 <= index < len(node) else []
        if token.startswith("{"):
            if not isinstance(node, dict):
                return []
            out: list[str] = []
            for name in (f.strip() for f in token[1:-1].split(",")):
                out.extend(texts_at_path(node, name) if name else [])
            return out
        if token == "*":
            children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
            return [t for child in children for t in walk(child, pos + 1)]
        return walk(node[token], pos + 1) if isinstance(node, dict) and token in node else []

    return walk(obj, 0)


def check_fields(fields: object, what: str) -> list[str]:
    if isinstance(fields, str) or not isinstance(fields, (list, tuple)):
        raise InvalidFilter(f"{what} must be a list of field paths (e.g. ['text', 'a.b', 'tags[*]']), got {fields!r}")
    out = []
    for path in fields:
        check_text(path, f"{what} path")
        if not path.strip():
            raise InvalidFilter(f"{what} holds an empty path; use '$' for the whole value")
        out.append(path)
    return out


# -- filters ------------------------------------------------------------------------------------------------------
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (isinstance(a, str) and isinstance(b, str))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _operator_test(op: str, bound: Any) -> Callable[[Any], bool]:
    """The test of one ``{"$op": bound}`` pair (bound already checked)."""
    if op == "$eq":
        return lambda v: v is not MISSING and json_equal(v, bound)
    if op == "$ne":
        return lambda v: v is MISSING or not json_equal(v, bound)
    compare = _COMPARE[op]
    return lambda v: v is not MISSING and _comparable(v, bound) and bool(compare(v, bound))


def _matcher(condition: Any, where: str) -> Callable[[Any], bool]:
    """A test of one (possibly missing) field value against a filter condition."""
    if isinstance(condition, dict) and any(k.startswith("$") for k in condition):
        tests: list[Callable[[Any], bool]] = []
        for op, bound in condition.items():
            if op not in OPERATORS:
                raise InvalidFilter(f"filter {where!r} uses {op!r}; operators are {', '.join(OPERATORS)} (and a "
                                    "condition cannot mix operators with plain keys)")
            if op not in ("$eq", "$ne") and (isinstance(bound, bool) or not isinstance(bound, (int, float, str))):
                raise InvalidFilter(f"filter {where!r}: {op} needs a number or a string, got {bound!r}")
            tests.append(_operator_test(op, bound))
        return lambda v: all(t(v) for t in tests)
    if isinstance(condition, dict):
        subs = {k: _matcher(c, f"{where}.{k}") for k, c in condition.items()}
        return lambda v: isinstance(v, dict) and all(m(v.get(k, MISSING)) for k, m in subs.items())
    return lambda v: v is not MISSING and json_equal(v, condition)


def compile_filter(flt: object) -> Callable[[Mapping[str, Any]], bool] | None:
    """A predicate over item values: every key must match. A key is a field, or a dotted path into nested objects;
    a condition is a value (JSON equality: 1 == 1.0, true is not 1, lists in order), a nested object (each of its
    keys matched the same way) or operators ``$eq $ne $gt $gte $lt $lte`` (comparisons between numbers or between
    strings; ``$ne`` also matches a missing field). InvalidFilter for anything else."""
    if flt is None:
        return None
    if isinstance(flt, Mapping) and not isinstance(flt, dict):
        flt = dict(flt)
    if not isinstance(flt, dict):
        raise InvalidFilter(f"filter must be a dict of field -> condition, got {type(flt).__name__}")
    if not flt:
        return None
    check_json(flt, "filter", max_depth=32, error=InvalidFilter)
    tests = []
    for key, condition in flt.items():
        if not key:
            raise InvalidFilter("filter has an empty field name")
        tests.append((key, _matcher(condition, key)))
    return lambda value: all(test(lookup(value, key)) for key, test in tests)


