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


@dataclass(frozen=True)
class Lease:
    """One busy slot of a worker: slot `slot` of run `run` (its sd:busy:<worker>:<pid> key)."""

    run: int
    slot: int


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
    draining: bool = False  # an admin drains it: it takes no new slots, its current ones finish
    leases: tuple[Lease, ...] = ()  # what its busy slots run, from their leases

    @property
    def eligible(self) -> bool:
        """Takes runs: isolated, or this Swarmdeck allows unisolated workers."""
        return self.isolated or not require_isolation()

    @property
    def drained(self) -> bool:
        """Draining, and nothing left running on it: it may be stopped for maintenance."""
        return self.draining and not self.leases and self.busy == 0

    @property
    def admissible_slots(self) -> int:
        """Slots admission may count: every slot of an online worker that takes runs; of a draining one,
        only those its current runs hold (admission counts them as in use; they are freed for nobody)."""
        if not (self.online and self.eligible):
            return 0
        return self.busy if self.draining else self.slots

    @property
    def slot_cells(self) -> list[Lease | None]:
        """One entry per slot for the Cluster page: the busy ones' leases, then None for each free one."""
        leases = sorted(self.leases, key=lambda lease: (lease.run, lease.slot))
        return [*leases, *([None] * max(0, self.slots - len(leases)))]

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
    draining = {_text(name) for name in redis.hkeys(protocol.WORKERS_DRAINING)}
    leases = busy_leases(redis)
    found: dict[str, Worker] = {}
    for key in redis.scan_iter(match=protocol.WORKER_PATTERN, count=500):
        raw = redis.get(key)
        if not raw:
            continue
        data = json.loads(raw)
        found[data["name"]] = _worker(data, online=True, draining=data["name"] in draining,
                                      leases=leases.get(data["name"], ()))
    now = time.time()
    for name, raw in seen.items():
        name = name.decode() if isinstance(name, bytes) else name
        if name in found:
            continue
        data = json.loads(raw)
        if now - data.get("heartbeat", 0) < 3600:  # forget machines gone for an hour
            found[name] = _worker(data, online=False, draining=name in draining)
    return sorted(found.values(), key=lambda w: (not w.online, w.host, w.name))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def busy_leases(redis) -> dict[str, tuple[Lease, ...]]:
    """The busy slots' leases (sd:busy:<worker>:<pid> = "run:slot"), by worker name."""
    keys = list(redis.scan_iter(match=protocol.BUSY_PATTERN, count=1000))
    values = redis.mget(keys) if keys else []
    found: dict[str, list[Lease]] = {}
    for key, value in zip(keys, values, strict=True):
        worker = _text(key).removeprefix(f"{protocol.PREFIX}busy:").rpartition(":")[0]
        run, _, slot = _text(value or "").partition(":")
        if worker and run.isdigit() and slot.isdigit():
            found.setdefault(worker, []).append(Lease(int(run), int(slot)))
    return {name: tuple(items) for name, items in found.items()}


def _worker(data: dict, online: bool, draining: bool = False, leases: tuple[Lease, ...] = ()) -> Worker:
    return Worker(
        name=data["name"], host=data.get("host", "?"), slots=int(data.get("slots", 0)),
        busy=int(data.get("busy", 0)), cpu=data.get("cpu"), version=str(data.get("version", "")),
        heartbeat=float(data.get("heartbeat", 0)), online=online,
        isolated=bool(data.get("isolated", False)), isolation=str(data.get("isolation", "")),
        draining=draining, leases=leases,
    )


def require_isolation() -> bool:
    return bool(getattr(settings, "SWARMDECK_REQUIRE_ISOLATION", True))


def capacity(known: list[Worker] | None = None) -> int:
    """Total slots of the online workers that take runs (isolated ones, unless that is not required);
    a draining worker counts only the slots its current runs still hold (Worker.admissible_slots).
    `known`: the registry as already read (workers()), so a caller needing several figures reads it once."""
    return sum(w.admissible_slots for w in (workers() if known is None else known))


def unisolated_slots() -> int:
    """Online slots kept off runs because their worker is not isolated."""
    return sum(w.slots for w in workers() if w.online and not w.eligible)


def drained_slots(known: list[Worker] | None = None) -> int:
    """Online slots that take no new runs because an admin drains their worker (free ones only)."""
    return sum(w.slots - w.busy for w in (workers() if known is None else known)
               if w.online and w.eligible and w.draining)
