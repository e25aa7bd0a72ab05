"""One collector leads; any other waits as a hot standby and takes over within seconds.

The lease is redis-py's Lock (SET NX with a TTL, renewals and release checked against the
holder's token), held by the leader and renewed every RENEW_EVERY seconds. A leader that
cannot renew (it was paused, or cut off from Redis) steps down before it reads or writes
again, so two collectors never merge the same run; admission happens only on the leader.
"""

from __future__ import annotations

import logging
import os
import time

import redis as redis_lib
from redis.exceptions import LockError

log = logging.getLogger("swarmdeck.collector")

KEY = "sd:leader:collector"
TTL = float(os.environ.get("SWARMDECK_LEADER_TTL", 3))   # a dead leader is replaced within this (+ a poll)
RENEW_EVERY = TTL / 3
POLL = 0.5                                                 # how often a standby tries to take over


class Lease:
    def __init__(self, redis: redis_lib.Redis, holder: str):
        self.holder = holder
        self.redis = redis
        self.lock = redis.lock(KEY, timeout=TTL, blocking=False, thread_local=False)
        self.held = False
        self.renewed = 0.0

    def hold(self) -> bool:
        """Take or renew the lease; True while this collector leads."""
        now = time.monotonic()
        if self.held:
            if now - self.renewed < RENEW_EVERY:
                return True
            try:
                self.lock.reacquire()
            except LockError:
                self.held = False
                log.warning("Collector %s could not renew its lead in time (it was paused or cut off from Redis); "
                            "standing by.", self.holder)
                return False
            self.renewed = now
            return True
        if self.lock.acquire(blocking=False):
            self.held, self.renewed = True, now
            self.redis.set(f"{KEY}:holder", self.holder, ex=int(TTL * 10))
            log.info("Collector %s leads.", self.holder)
            return True
        return False

    def release(self) -> None:
        if self.held:
            try:
                self.lock.release()
            except LockError:
                pass
            self.held = False
