"""A drained load worker takes no new slots: it hands each slot task it receives back to the queue.

An admin drains a worker from the Cluster page (sd:workers:draining, see workers.protocol); its
running slots go on to their end. The check is made when a slot task arrives, before the slot is
claimed, so the task is left whole for another worker. The admission does not count a draining
worker's free slots (runs.cluster), so the only tasks that reach it are those dispatched before it
was drained, or those another draining worker handed back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis as redis_lib

from workers import protocol

log = logging.getLogger("swarmdeck.worker")

# After handing a task back, the process waits this long before taking another: a worker process
# takes a task only when it is free (worker_disable_prefetch), so the task goes to another worker
# instead of coming straight back here.
PAUSE_AFTER_HANDING_BACK = 2.0


def is_draining(redis: redis_lib.Redis, worker: str) -> bool:
    """Whether an admin drains `worker`; False when Redis cannot say (the slot's claim then fails on its own)."""
    try:
        return bool(redis.hexists(protocol.WORKERS_DRAINING, worker))
    except (redis_lib.ConnectionError, redis_lib.TimeoutError):
        return False


def hand_back(assignment: dict, worker: str, resend: Callable[[dict], None], redis: redis_lib.Redis,
              pause: float = PAUSE_AFTER_HANDING_BACK) -> bool:
    """If `worker` is draining: send the slot task back to the queue (`resend`), pause, and say True."""
    if not is_draining(redis, worker):
        return False
    resend(assignment)
    log.info("Run %s slot %s handed back to the queue: %s is draining.", assignment.get("run"),
             assignment.get("slot"), worker)
    time.sleep(pause)
    return True
