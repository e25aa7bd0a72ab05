"""One collector leads; any other waits as a hot standby and takes over within seconds.

The lease is redis-py's Lock (SET NX with a TTL, renewals and release checked against the
holder's token). Three rules keep it both kept and safe:

- A small thread renews it (`_keep`, every TTL / 3 s), not the loop, so a long pass (a big
  XREADGROUP, its merge, the persists of many runs, a slow statement) does not lose it. The
  thread renews only while the loop shows progress (`check` or `hold` within STALL s): a loop
  stuck for good lets the lease expire and a standby take over.
- The loop writes nothing unless the lease surely still holds: `check()` runs before each step
  that writes (each entry, each run's persist and again just before its commit, the lifecycle,
  the trim) and raises LeadLost unless the last successful renewal was *sent* less than
  TTL - TTL / 6 ago. Redis expires the key TTL after it received that renewal, so the check
  needs nothing from the thread: a collector that was paused (SIGSTOP stops its thread too) or
  cut off from Redis (its renewals fail) finds the lease stale at its first check after the
  pause or the cut, before it writes, and steps down. The sixth of the TTL is the time a step
  that passed its check has to finish before a standby can take the key.
- A lead taken anew (`generation`) starts from the database and the stream, not from memory:
  another collector may have led in between.

What is left: a pause that falls between a check and the write right after it (microseconds
for a commit) lets that one write land late; only a fencing token checked by the database
would close that.

Bounding the passes (fewer entries per XREADGROUP, a time budget) was the alternative: it keeps
the renewal in the loop, but any one step that outlasts the TTL (a statement waiting on a lock,
a big merge on a loaded machine) still loses the lead, and the budget would have to shrink with
the TTL. The thread needs no bound on a step, only the check before it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis as redis_lib
from redis.exceptions import LockError

log = logging.getLogger("swarmdeck.collector")

KEY = "sd:leader:collector"   # shard 0's; shard k's is key(k) (runs/shards.py)
TTL = float(os.environ.get("SWARMDECK_LEADER_TTL", 3))   # a dead leader is replaced within this (+ a poll)
STALL = float(os.environ.get("SWARMDECK_LEADER_STALL", max(30.0, 10 * TTL)))  # a loop silent this long lets go
POLL = 0.5                                                 # how often a standby tries to take over


def key(shard: int = 0) -> str:
    """The lease of collector shard `shard`: one leader each."""
    return KEY if shard == 0 else f"{KEY}:{int(shard)}"


class LeadLost(Exception):
    """This collector cannot be sure it still leads: it must write nothing more and stand by."""


class Lease:
    def __init__(self, redis: redis_lib.Redis, holder: str, *, ttl: float = TTL, stall: float = STALL,
                 shard: int = 0):
        self.holder = holder
        self.shard = shard
        self.key = key(shard)
        self.redis = redis
        self.ttl = ttl
        self.renew_every = ttl / 3
        self.safety = ttl / 6     # the loop stops writing this long before the key could expire in Redis
        self.stall = stall
        self.lock = redis.lock(self.key, timeout=ttl, blocking=False, thread_local=False)
        self.held = False
        self.valid_until = 0.0    # monotonic: the lease surely holds until then
        self.progress = 0.0       # monotonic: the loop's last sign of life
        self._mutex = threading.Lock()
        self._generation = 0      # one per lead: a keeper thread of an earlier lead changes nothing
        self._stop = threading.Event()

    def hold(self) -> bool:
        """The loop, once per pass: take the lease if it is free; True while this collector leads."""
        now = self.progress = time.monotonic()
        if self.held:
            if now < self.valid_until:
                return True
            self._lose(self._generation, "it could not renew its lead in time (it was paused or cut off from Redis)")
            return False
        if not self.lock.acquire(blocking=False):
            return False
        with self._mutex:
            self._generation += 1
            generation = self._generation
            self.held, self.valid_until = True, now + self.ttl - self.safety
            self._stop = threading.Event()
        self.redis.set(f"{self.key}:holder", self.holder, ex=int(self.ttl * 10))
        threading.Thread(target=self._keep, args=(generation, self._stop), name="lease-keeper", daemon=True).start()
        log.info("Collector %s leads%s.", self.holder, f" shard {self.shard}" if self.shard else "")
        return True

    @property
    def generation(self) -> int:
        """1, 2, 3 ... one per lead this collector took: a new one means another collector may have led meanwhile."""
        return self._generation

    def valid(self) -> bool:
        return self.held and time.monotonic() < self.valid_until

    def check(self) -> None:
        """Before each step that writes: LeadLost unless the lease surely still holds."""
        now = self.progress = time.monotonic()
        if self.held and now < self.valid_until:
            return
        if self.held:
            self._lose(self._generation, "its lease went stale (it was paused or cut off from Redis)")
        raise LeadLost(f"Collector {self.holder} no longer leads.")

    def _keep(self, generation: int, stop: threading.Event) -> None:
        """The keeper thread of one lead: renews it until it is lost, released or the loop stalls."""
        while not stop.wait(self.renew_every):
            if time.monotonic() - self.progress > self.stall:
                log.warning("Collector %s: its loop made no progress for %.0f s; letting its lead expire.",
                            self.holder, self.stall)
                return
            sent = time.monotonic()
            try:
                self.lock.reacquire()
                self.redis.set(f"{self.key}:holder", self.holder, ex=int(self.ttl * 10))  # who leads, for pages
            except LockError:
                self._lose(generation, "another collector took its lead (it was paused or cut off from Redis)")
                return
            except redis_lib.RedisError as error:  # an outage: the lease goes stale on its own, the loop sees it
                log.debug("Collector %s could not renew its lead: %s", self.holder, error)
                continue
            except Exception:  # noqa: BLE001 - the thread must not die silently: the loop would flap
                log.exception("Collector %s: renewing its lead failed.", self.holder)
                continue
            with self._mutex:
                if generation != self._generation or not self.held:
                    return
                self.valid_until = max(self.valid_until, sent + self.ttl - self.safety)

    def _lose(self, generation: int, why: str) -> None:
        with self._mutex:
            if generation != self._generation or not self.held:
                return
            self.held = False
            self.valid_until = 0.0
            self._stop.set()
        log.warning("Collector %s lost its lead: %s; standing by.", self.holder, why)

    def release(self) -> None:
        with self._mutex:
            was_held, self.held = self.held, False
            self.valid_until = 0.0
            self._stop.set()
        if was_held:
            try:
                self.lock.release()
            except LockError:
                pass
