"""The worker registry as the web and the collector see it (written by workers/tasks.py)."""

import json
import logging
import time
from dataclasses import dataclass

import redis as redis_lib
from django.conf import settings

from runs.redis import client
from workers import protocol

log = logging.getLogger(__name__)


@dataclass
class Worker:
    name: str
    host: str
    slots: int
    busy: int
    cpu: float | None
    version: str
    heartbeat: float
    online: bool
    isolated: bool = False
    isolation: str = ""

    @property
    def eligible(self) -> bool:
        """Takes runs: isolated, or this Swarmdeck allows unisolated workers."""
        return self.isolated or not require_isolation()

    @property
    def free(self) -> int:
        return max(0, self.slots - self.busy) if self.online else 0

    @property
    def seen_ago(self) -> float:
        return max(0.0, time.time() - self.heartbeat)


def workers() -> list[Worker]:
    """Online workers (heartbeat key alive) plus recently seen ones, marked offline; none while
    Redis is unreachable (every page's banner says so), found out in half a second even when it hangs."""
    from runs import health

    if not health.redis_reachable():
        return []
    try:
        return _workers()
    except (redis_lib.ConnectionError, redis_lib.TimeoutError) as error:
        log.warning("The worker registry is unreadable: %s", error)
        return []


def _workers() -> list[Worker]:
    redis = client()
    seen = redis.hgetall(protocol.WORKERS_SEEN)
    found: dict[str, Worker] = {}
    for key in redis.scan_iter(match=protocol.WORKER_PATTERN, count=500):
        raw = redis.get(key)
        if not raw:
            continue
        data = json.loads(raw)
        found[data["name"]] = _worker(data, online=True)
    now = time.time()
    for name, raw in seen.items():
        name = name.decode() if isinstance(name, bytes) else name
        if name in found:
            continue
        data = json.loads(raw)
        if now - data.get("heartbeat", 0) < 3600:  # forget machines gone for an hour
            found[name] = _worker(data, online=False)
    return sorted(found.values(), key=lambda w: (not w.online, w.host, w.name))


def _worker(data: dict, online: bool) -> Worker:
    return Worker(
        name=data["name"], host=data.get("host", "?"), slots=int(data.get("slots", 0)),
        busy=int(data.get("busy", 0)), cpu=data.get("cpu"), version=str(data.get("version", "")),
        heartbeat=float(data.get("heartbeat", 0)), online=online,
        isolated=bool(data.get("isolated", False)), isolation=str(data.get("isolation", "")),
    )


def require_isolation() -> bool:
    return bool(getattr(settings, "SWARMDECK_REQUIRE_ISOLATION", True))


def capacity() -> int:
    """Total slots of the online workers that take runs (isolated ones, unless that is not required)."""
    return sum(w.slots for w in workers() if w.online and w.eligible)


def unisolated_slots() -> int:
    """Online slots kept off runs because their worker is not isolated."""
    return sum(w.slots for w in workers() if w.online and not w.eligible)
