"""Testing tools for people building on memvault.

- :mod:`memvault.testing.conformance`: the conformance kit. ``validate(factory)`` runs every check of the storage
  contract on a :class:`~memvault.contract.Store` implementation, through its sync face and its async face, and
  returns a report.
- :mod:`memvault.testing.faults`: :class:`~memvault.testing.faults.FaultyStore`, a store wrapper that injects
  outages, latency and partial failures into your own agent's tests.

Neither needs pytest (the kit's report works with any test runner).
"""
