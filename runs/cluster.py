"""The worker registry as the web and the collector see it (written by workers/tasks.py)."""

import logging
import time
from dataclasses import dataclass

import redis as redis_lib
from django.conf import settings

from runs.redis import client
from workers import registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """One busy slot of a worker: slot `slot` of run `run` (its lease in sd:busy:<worker>)."""

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
    """Online workers (heartbeat not lapsed) plus those seen within the hour, marked offline; none while
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
    entries = registry.read(client())
    found = [_worker(entry.data, online=entry.online, draining=name in entries.draining,
                     leases=tuple(Lease(run, slot) for run, slot in entry.leases))
             for name, entry in entries.workers.items()]
    return sorted(found, key=lambda w: (not w.online, w.host, w.name))


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
