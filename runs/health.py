"""Is the control plane up? For the banner on every page and for refusing to start a run half-way.

Its own Redis client with short timeouts: a page must not hang because Redis does.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings

from runs import stream
from workers import protocol

CHECK_TIMEOUT = 0.5


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT,
                                socket_timeout=CHECK_TIMEOUT)


def redis_reachable() -> bool:
    try:
        return bool(_client().ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def collector_alive() -> bool:
    """A collector refreshed its key (TTL COLLECTOR_TTL_SECONDS) recently."""
    try:
        return any(True for _ in _client().scan_iter(match=protocol.COLLECTOR_PATTERN, count=100))
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def problems() -> list[str]:
    """What a person using Swarmdeck must know right now, in words; empty when all is well."""
    if not redis_reachable():
        return ["Redis, the broker, is unreachable: runs cannot start and live pages do not update. "
                "Swarmdeck reconnects by itself when it is back."]
    if not collector_alive():
        return ["The collector is not running: queued runs wait and live numbers stop until it is back "
                "(make run restarts it by itself; elsewhere, start manage.py collect)."]
    try:
        state = stream.backlog(_client())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return []
    return [state.words()] if state is not None and state.alarming else []


def context(request) -> dict:
    """Context processor: `control_plane_problems` for signed-in pages."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"control_plane_problems": problems()}
