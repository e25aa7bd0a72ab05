"""Is the control plane up? For the banner on every page and for refusing to start a run half-way.

Its own Redis client with short timeouts: a page must not hang because Redis does.
"""

from __future__ import annotations

import time
from functools import lru_cache

import redis
from django.conf import settings

from runs import stream
from workers import registry

CHECK_TIMEOUT = 0.5


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT,
                                socket_timeout=CHECK_TIMEOUT)


_last_check: list = [0.0, False]  # (monotonic time, answer): one page asks several times
RECHECK_SECONDS = 1.0


def redis_reachable() -> bool:
    """PING within CHECK_TIMEOUT; the answer is kept for a second, so a page that reads Redis in several
    places waits at most once for a Redis that hangs (SIGSTOPped, or cut off without a reset)."""
    now = time.monotonic()
    if now - _last_check[0] < RECHECK_SECONDS:
        return _last_check[1]
    try:
        answer = bool(_client().ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        answer = False
    _last_check[:] = [time.monotonic(), answer]
    return answer


def forget() -> None:
    """Drop the kept answer (tests, and a settings change of REDIS_URL)."""
    _last_check[:] = [0.0, False]
    _client.cache_clear()


def collector_alive() -> bool:
    """A collector made a lifecycle pass within COLLECTOR_TTL_SECONDS (workers.registry, no SCAN)."""
    try:
        return bool(registry.collectors(_client()))
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _holders() -> list[str | None]:
    """Per collector shard (runs/shards.py), the collector whose lease renewal wrote its holder key lately, or None;
    raises Redis' errors. The key outlives its lease by a few TTLs."""
    from runs import leader, shards

    pipe = _client().pipeline(transaction=False)
    for k in range(shards.count()):
        pipe.get(f"{leader.key(k)}:holder")
    return [value.decode() if value else None for value in pipe.execute()]


def collector_leads() -> tuple[list[tuple[int, str | None]], list[str]]:
    """(shard, the collector leading it or None) for each collector shard, and the collectors present that
    lead none (standing by); ([], []) while Redis cannot be read. For the Cluster page."""
    try:
        holders = _holders()
        present = registry.collectors(_client())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return [], []
    return list(enumerate(holders)), [name for name in present if name not in holders]


def shards_without_leader() -> list[int]:
    """The collector shards no collector leads lately; [] with one shard, where collector_alive says it."""
    from runs import shards

    if shards.count() == 1:
        return []
    try:
        return [k for k, holder in enumerate(_holders()) if holder is None]
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return []


def problems() -> list[str]:
    """What a person using Swarmdeck must know right now, in words; empty when all is well."""
    if not redis_reachable():
        return ["Redis, the broker, is unreachable: runs cannot start and live pages do not update. "
                "Swarmdeck reconnects by itself when it is back."]
    if not collector_alive():
        return ["The collector is not running: queued runs wait and live numbers stop until it is back "
                "(make run restarts it by itself; elsewhere, start manage.py collect)."]
    orphans = shards_without_leader()
    if orphans:
        return [f"No collector leads shard{'s' if len(orphans) > 1 else ''} {', '.join(map(str, orphans))} of "
                f"SWARMDECK_COLLECTOR_SHARDS: {'their' if len(orphans) > 1 else 'its'} runs neither start nor update. "
                "Start another `manage.py collect` (each takes a free shard)."]
    try:
        state = stream.backlog_of_all(_client())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return []
    return [state.words()] if state is not None and state.alarming else []


def context(request) -> dict:
    """Context processor: `control_plane_problems` for signed-in pages."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"control_plane_problems": problems()}
