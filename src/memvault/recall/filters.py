"""The metadata filter language ``where`` and the recall filters, compiled to predicates (never to SQL text).

Shapes (see docs/recall.md)::

    {"field": value}                                  equality
    {"field": {"$eq"|"$ne"|"$lt"|"$lte"|"$gt"|"$gte": v}}
    {"field": {"$in"|"$nin": [...]}}
    {"field": {"$contains": v}}                       list contains v, or string contains substring v
    {"field": {"$any"|"$all": [...]}}                 list holds any / all of the values
    {"field": {"$like"|"$ilike": "pat%"}}             SQL LIKE (% and _), case-sensitive / insensitive
    {"field": {"$exists": bool}}  {"field": {"$empty": bool}}
    {"$and": [w, ...]}, {"$or": [w, ...]}, {"$not": w}

Dotted names (``"a.b"``) reach into nested objects. Anything else raises InvalidFilter. Values are compared as
values, so quotes and unicode (``O'Brien``) need no escaping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from memvault.errors import InvalidFilter
from memvault.model import ROLES, to_epoch
from memvault.validation import check_json, check_number, json_equal, validate_id

Predicate = Callable[[Mapping[str, Any]], bool]
#: what :func:`lookup` returns for an absent field (distinct from a stored null)
MISSING: Any = object()
COMPARE = {"$eq", "$ne", "$lt", "$lte", "$gt", "$gte"}
OPERATORS = COMPARE | {"$in", "$nin", "$contains", "$any", "$all", "$like", "$ilike", "$exists", "$empty"}
RECALL_KEYS = frozenset({"role", "after", "before", "session", "metadata"})


def lookup(data: Mapping[str, Any], field: str) -> Any:
    """``data[field]``, else the dotted path ``a.b`` walked through nested objects; MISSING when absent."""
    if field in data:
        return data[field]
    value: Any = data
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _same(a: Any, b: Any) -> bool:
    """Equality of filter values: JSON equality, as in session listings (true is not 1; 1 is 1.0)."""
    return a is not MISSING and json_equal(a, b)


def _order(a: Any, b: Any, op: str) -> bool:
    if a is MISSING or a is None or isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        if op == "$lt":
            return bool(a < b)
        if op == "$lte":
            return bool(a <= b)
        if op == "$gt":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def like_regex(pattern: str, insensitive: bool) -> re.Pattern[str]:
    parts = ["%" if ch == "%" else "_" if ch == "_" else re.escape(ch) for ch in pattern]
    body = "".join(".*" if p == "%" else "." if p == "_" else p for p in parts)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if insensitive else 0))


def _list(value: Any, op: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidFilter(f"{op} needs a list of values, got {type(value).__name__}")
    return list(value)


def _operator(field: str, op: str, arg: Any) -> Predicate:
    if isinstance(arg, (tuple, set, frozenset)):  # a filter value is not stored: any sequence of values will do
        arg = list(arg)
    check_json(arg, f"filter {field!r} {op}", error=InvalidFilter)
    if op not in OPERATORS:
        raise InvalidFilter(f"unknown operator {op!r} on {field!r}; use one of {sorted(OPERATORS)}")
    if op == "$eq":
        return lambda d: _same(lookup(d, field), arg)
    if op == "$ne":
        return lambda d: not _same(lookup(d, field), arg)
    if op in ("$lt", "$lte", "$gt", "$gte"):
        if not isinstance(arg, (int, float, str)) or isinstance(arg, bool):
            raise InvalidFilter(f"{op} on {field!r} needs a number or a string, got {arg!r}")
        return lambda d: _order(lookup(d, field), arg, op)
    if op in ("$in", "$nin"):
        values = _list(arg, op)
        hit: Predicate = lambda d: any(_same(lookup(d, field), v) for v in values)  # noqa: E731
        return hit if op == "$in" else (lambda d: not hit(d))
    if op == "$contains":

        def contains(d: Mapping[str, Any]) -> bool:
            value = lookup(d, field)
            if isinstance(value, str):
                return isinstance(arg, str) and arg in value
            return isinstance(value, list) and any(_same(v, arg) for v in value)

        return contains
    if op in ("$any", "$all"):
        values = _list(arg, op)
        test = any if op == "$any" else all

        def holds(d: Mapping[str, Any]) -> bool:
            value = lookup(d, field)
            return isinstance(value, list) and test(any(_same(v, w) for v in value) for w in values)

        return holds
    if op in ("$like", "$ilike"):
        if not isinstance(arg, str):
            raise InvalidFilter(f"{op} on {field!r} needs a string pattern, got {arg!r}")
        regex = like_regex(arg, op == "$ilike")
        return lambda d: isinstance(v := lookup(d, field), str) and regex.match(v) is not None
    if not isinstance(arg, bool):
        raise InvalidFilter(f"{op} on {field!r} needs true or false, got {arg!r}")
    if op == "$exists":
        return lambda d: (lookup(d, field) is not MISSING) == arg

    def empty(d: Mapping[str, Any]) -> bool:
        value = lookup(d, field)
        is_empty = value is MISSING or value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)
        return is_empty == arg

    return empty


def _all_of(preds: list[Predicate]) -> Predicate:
    return lambda d: all(p(d) for p in preds)


def _any_of(preds: list[Predicate]) -> Predicate:
    return lambda d: any(p(d) for p in preds)


def _negated(pred: Predicate) -> Predicate:
    return lambda d: not pred(d)


def _equals(key: str, value: Any) -> Predicate:
    return lambda d: _same(lookup(d, key), value)


def compile_where(where: Mapping[str, Any] | None) -> Predicate:
    """A predicate over a metadata dict; raises InvalidFilter on anything outside the language."""
    if where is None:
        return lambda d: True
    if not isinstance(where, Mapping):
        raise InvalidFilter(f"a where filter must be a dict, got {type(where).__name__}")
    parts: list[Predicate] = []
    for key, value in where.items():
        if not isinstance(key, str) or not key:
            raise InvalidFilter(f"filter keys must be non-empty strings, got {key!r}")
        if key in ("$and", "$or"):
            subs = [compile_where(w) for w in _list(value, key)]
            parts.append(_all_of(subs) if key == "$and" else _any_of(subs))
        elif key == "$not":
            parts.append(_negated(compile_where(value)))
        elif key.startswith("$"):
            raise InvalidFilter(f"unknown logical operator {key!r}; use $and, $or or $not")
        elif isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
            parts.extend(_operator(key, op, arg) for op, arg in value.items())
        elif isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value):
            raise InvalidFilter(f"{key!r}: do not mix operators and plain keys in one object")
        else:
            check_json(value, f"filter {key!r}", error=InvalidFilter)
            parts.append(_equals(key, value))
    return _all_of(parts)


def _epoch(value: Any, key: str) -> float:
    if isinstance(value, datetime):
        try:
            return to_epoch(value)
        except (OverflowError, ValueError, OSError) as exc:
            raise InvalidFilter(f"filter {key!r}: {value!r} is out of range ({exc})") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return check_number(value, f"filter {key!r}")
    raise InvalidFilter(f"filter {key!r} needs a datetime (or epoch seconds), got {value!r}")


class RecallFilter:
    """The recall ``filters`` dict, validated: role, after, before (epoch), session, metadata (a where)."""

    def __init__(self, filters: Mapping[str, Any] | None) -> None:
        filters = dict(filters or {})
        unknown = set(filters) - RECALL_KEYS
        if unknown:
            raise InvalidFilter(f"unknown recall filter key(s) {sorted(unknown)}; known: {sorted(RECALL_KEYS)}")
        role = filters.get("role")
        roles = [role] if isinstance(role, str) else role
        if roles is not None and (not isinstance(roles, (list, tuple, set)) or not all(r in ROLES for r in roles)):
            raise InvalidFilter(f"role filter must be one of {sorted(ROLES)} (or a list of them), got {role!r}")
        self.roles: frozenset[str] | None = None if roles is None else frozenset(roles)
        self.after = None if filters.get("after") is None else _epoch(filters["after"], "after")
        self.before = None if filters.get("before") is None else _epoch(filters["before"], "before")
        session = filters.get("session")
        sessions = [session] if isinstance(session, str) else session
        if sessions is not None and not (
            isinstance(sessions, (list, tuple, set)) and all(isinstance(s, str) for s in sessions)
        ):
            raise InvalidFilter(f"session filter must be a session id or a list of them, got {session!r}")
        self.sessions: frozenset[str] | None = None if sessions is None else frozenset(
            validate_id(s) for s in sessions)
        self.where: Mapping[str, Any] | None = filters.get("metadata")
        self.metadata = compile_where(self.where) if self.where is not None else None

    @property
    def empty(self) -> bool:
        return (self.roles, self.after, self.before, self.sessions, self.metadata) == (None,) * 5

    def accepts(self, message: Any) -> bool:
        if self.roles is not None and message.role not in self.roles:
            return False
        if self.after is not None or self.before is not None:
            ts = to_epoch(message.created_at)
            if self.after is not None and ts < self.after:
                return False
            if self.before is not None and ts >= self.before:
                return False
        if self.sessions is not None and message.session_id not in self.sessions:
            return False
        return self.metadata is None or self.metadata(message.metadata)
