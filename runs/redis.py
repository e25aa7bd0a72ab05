"""One Redis client per process for the Django side (collector, web, CLI)."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def client() -> redis.Redis:
    # Timeouts, so an outage raises instead of hanging; the collector's XREADGROUP blocks for
    # at most its block_ms (well under the socket timeout).
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5, socket_timeout=10,
                                health_check_interval=15)
