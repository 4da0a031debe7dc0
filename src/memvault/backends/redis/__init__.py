"""``redis://`` — plain Redis 7 (standalone, Cluster, Sentinel), no modules; see :mod:`.store`."""

from memvault.backends.redis.aio import RedisAsyncStore
from memvault.backends.redis.store import RedisStore

__all__ = ["RedisAsyncStore", "RedisStore"]
