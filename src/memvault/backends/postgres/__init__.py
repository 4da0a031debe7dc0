"""``postgresql://`` — PostgreSQL (+ pgvector when available) through psycopg 3; see :mod:`.store`.

Modules: :mod:`.store` (construction, connections, the outage breaker, the sync face), :mod:`.aio` (the native async
face), :mod:`.plans` (every operation, as a plan), :mod:`.drive` (plans and their two drivers), :mod:`.sql` (the
statements), :mod:`.schema` (migrations), :mod:`.pool` (loop-local async connections).
"""

from memvault.backends.postgres.aio import PostgresAsyncStore
from memvault.backends.postgres.drive import BEGIN, COMMIT, Q
from memvault.backends.postgres.schema import MIGRATIONS
from memvault.backends.postgres.store import PostgresStore

__all__ = ["BEGIN", "COMMIT", "MIGRATIONS", "PostgresAsyncStore", "PostgresStore", "Q"]
