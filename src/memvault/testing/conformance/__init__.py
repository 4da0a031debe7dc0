"""The memvault conformance kit: check that a :class:`~memvault.contract.Store` honours the storage contract.

```python
from memvault.testing.conformance import validate

def make_store(*, clock):                        # a fresh, empty store per call, reading time from `clock`
    return MyStore(tmp_dir(), clock=clock)

def test_conformance():
    report = validate(make_store, reopen=lambda store: MyStore(store.path, clock=store.clock))
    assert report.ok, report.summary()
```

Every check runs twice: on the store ("sync" face) and through ``store.aio`` ("async" face, driven from a
persistent event loop in a background thread), so a native async face is held to exactly the same contract.
Checks are grouped (``sessions``, ``listing``, ``messages``, ``records``, ``entries``, ``ttl``, ``isolation``,
``validation``, ``lifecycle``, ``async_face``); the groups ``multiprocess``, ``native_async`` and ``fulltext`` run
only when the store declares that capability (``Store.capabilities``, or ``capabilities=`` to validate), and are
reported as skipped otherwise. ``report.summary()`` names every failed check with its exception and the line of
the check that failed. ``python -m memvault.testing.conformance --list`` lists the checks.
"""

from __future__ import annotations

from memvault.testing.conformance.kit import (
    CHECKS,
    FACES,
    KNOWN_CAPABILITIES,
    Check,
    CheckResult,
    Context,
    FakeClock,
    KitError,
    Reopen,
    Report,
    StoreFactory,
    SyncOverAsync,
    avalidate,
    select,
    validate,
)

__all__ = [
    "CHECKS",
    "FACES",
    "KNOWN_CAPABILITIES",
    "Check",
    "CheckResult",
    "Context",
    "FakeClock",
    "KitError",
    "Reopen",
    "Report",
    "StoreFactory",
    "SyncOverAsync",
    "avalidate",
    "checks",
    "select",
    "validate",
]


def checks() -> list[Check]:
    """Every registered check (name, doc, required capability, faces)."""
    return select()
