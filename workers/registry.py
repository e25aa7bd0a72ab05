"""The cluster's registry in Redis: load workers, their busy slots and the collectors, read without SCAN.

Written by the load workers (the heartbeat in workers.tasks, the slots' leases in workers.slot) and
by the collector (runs.lifecycle); read by the web and the collector (runs.cluster, runs.health).
No Django: a load worker has REDIS_URL and nothing else.

Every "until" below is in Redis's clock (TIME), which every machine shares, so a machine whose own
clock is off is still online exactly while its heartbeat lasts. The layout (keys in workers.protocol):

- ``sd:workers:seen`` hash, name -> the worker's last heartbeat (JSON); ``sd:workers:until`` sorted
  set, name -> when that heartbeat lapses. Online while its time is ahead; listed as offline for
  OFFLINE_LISTED_SECONDS after; then the next heartbeat of any worker prunes it from both.
- ``sd:busy:<worker>`` sorted set, one member "<pid>:<run>:<slot>" per busy slot -> when its lease
  lapses. Each refresh drops the lapsed members (slots that died) and keeps the key alive
  BUSY_TTL_SECONDS, so a dead worker's key expires with its last lease.
- ``sd:collectors`` sorted set, consumer -> when its presence lapses; it expires with the last one.

A Redis that restarted empty refills from the next heartbeats, leases and collector passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis as redis_lib

from workers import protocol

OFFLINE_LISTED_SECONDS = 3600  # a worker gone this long is forgotten


# -- load workers ------------------------------------------------------------------------------

def beat(redis: redis_lib.Redis, name: str, payload: str, now: float | None = None, ttl: float | None = None) -> None:
    """Record `name`'s heartbeat (its JSON `payload`): online for `ttl` (WORKER_TTL_SECONDS) from `now`
    (Redis's clock). Workers gone for OFFLINE_LISTED_SECONDS are pruned on the way."""
    now = protocol.redis_now(redis) if now is None else now
    cutoff = now - OFFLINE_LISTED_SECONDS
    pipe = redis.pipeline(transaction=True)
    pipe.hset(protocol.WORKERS_SEEN, name, payload)
    pipe.zadd(protocol.WORKERS_UNTIL, {name: now + (protocol.WORKER_TTL_SECONDS if ttl is None else ttl)})
    pipe.zcount(protocol.WORKERS_UNTIL, "-inf", f"({cutoff}")
    pipe.zcard(protocol.WORKERS_UNTIL)
    pipe.hlen(protocol.WORKERS_SEEN)
    *_, forgotten, timed, seen = pipe.execute()
    if forgotten or timed != seen:
        prune(redis, cutoff)


def prune(redis: redis_lib.Redis, cutoff: float) -> None:
    """Forget the workers whose heartbeat lapsed before `cutoff`, and any entry of one structure
    missing from the other. Atomic against a heartbeat arriving meanwhile (WATCH, retried)."""
    def drop(pipe) -> None:
        timed = {_text(name): score for name, score in pipe.zrange(protocol.WORKERS_UNTIL, 0, -1, withscores=True)}
        seen = {_text(name) for name in pipe.hkeys(protocol.WORKERS_SEEN)}
        stale = {name for name, until in timed.items() if until < cutoff} | (set(timed) ^ seen)
        pipe.multi()
        if stale:
            pipe.zrem(protocol.WORKERS_UNTIL, *stale)
            pipe.hdel(protocol.WORKERS_SEEN, *stale)

    redis.transaction(drop, protocol.WORKERS_UNTIL, protocol.WORKERS_SEEN)


def sign_off(redis: redis_lib.Redis, name: str) -> None:
    """`name` stops: offline from now on, still listed as offline (its last heartbeat is kept)."""
    redis.zadd(protocol.WORKERS_UNTIL, {name: protocol.redis_now(redis)}, xx=True)


def forget(redis: redis_lib.Redis, name: str) -> None:
    """Remove `name` from the registry altogether, leases included (as if it had never been)."""
    pipe = redis.pipeline(transaction=True)
    pipe.zrem(protocol.WORKERS_UNTIL, name)
    pipe.hdel(protocol.WORKERS_SEEN, name)
    pipe.delete(protocol.busy_key(name))
    pipe.execute()


@dataclass
class Entry:
    """A worker as its last heartbeat described it; online while that heartbeat lasts."""

    data: dict
    online: bool
    leases: list[tuple[int, int]] = field(default_factory=list)  # (run, slot) of its live busy leases


@dataclass
class Registry:
    """The whole registry, read at one moment `now` (Redis's clock)."""

    now: float
    workers: dict[str, Entry]
    draining: set[str]


def read(redis: redis_lib.Redis) -> Registry:
    """Workers heard from within OFFLINE_LISTED_SECONDS, whether online, their live leases (online
    ones only) and which are draining: three round trips, whatever the size of the keyspace."""
    now = protocol.redis_now(redis)
    pipe = redis.pipeline(transaction=False)
    pipe.zrangebyscore(protocol.WORKERS_UNTIL, now - OFFLINE_LISTED_SECONDS, "+inf", withscores=True)
    pipe.hgetall(protocol.WORKERS_SEEN)
    pipe.hkeys(protocol.WORKERS_DRAINING)
    timed, seen, draining = pipe.execute()
    seen = {_text(name): raw for name, raw in seen.items()}
    workers: dict[str, Entry] = {}
    for name, until in timed:
        name = _text(name)
        if name in seen:
            workers[name] = Entry(json.loads(seen[name]), online=until > now)
    online = [name for name, entry in workers.items() if entry.online]
    for name, leases in zip(online, _leases(redis, online, now), strict=True):
        workers[name].leases = leases
    return Registry(now=now, workers=workers, draining={_text(name) for name in draining})


# -- busy slots --------------------------------------------------------------------------------

def hold_lease(redis: redis_lib.Redis, worker: str, pid: int, run: int, slot: int) -> None:
    """Slot `slot` of run `run` keeps `worker`'s process `pid` busy for BUSY_TTL_SECONDS more."""
    ttl = protocol.BUSY_TTL_SECONDS
    now = protocol.redis_now(redis)
    key = protocol.busy_key(worker)
    pipe = redis.pipeline(transaction=True)
    pipe.zremrangebyscore(key, "-inf", now)  # leases of slots that died without releasing them
    pipe.zadd(key, {_member(pid, run, slot): now + ttl})
    pipe.pexpire(key, int(ttl * 1000))
    pipe.execute()


def release_lease(redis: redis_lib.Redis, worker: str, pid: int, run: int, slot: int) -> None:
    redis.zrem(protocol.busy_key(worker), _member(pid, run, slot))


def busy(redis: redis_lib.Redis, worker: str, now: float | None = None) -> int:
    """How many of `worker`'s slots hold a live lease."""
    now = protocol.redis_now(redis) if now is None else now
    return int(redis.zcount(protocol.busy_key(worker), f"({now}", "+inf"))


def leases(redis: redis_lib.Redis, worker: str) -> list[tuple[int, int]]:
    """(run, slot) of each of `worker`'s live leases."""
    return _leases(redis, [worker], protocol.redis_now(redis))[0]


def _leases(redis: redis_lib.Redis, workers: list[str], now: float) -> list[list[tuple[int, int]]]:
    if not workers:
        return []
    pipe = redis.pipeline(transaction=False)
    for name in workers:
        pipe.zrangebyscore(protocol.busy_key(name), f"({now}", "+inf")
    found = []
    for members in pipe.execute():
        parsed = [_lease(_text(member)) for member in members]
        found.append([lease for lease in parsed if lease is not None])
    return found


def _member(pid: int, run: int, slot: int) -> str:
    return f"{int(pid)}:{int(run)}:{int(slot)}"


def _lease(member: str) -> tuple[int, int] | None:
    _pid, run, slot = (member.split(":") + ["", ""])[:3]
    return (int(run), int(slot)) if run.isdigit() and slot.isdigit() else None


# -- collectors --------------------------------------------------------------------------------

def collector_present(redis: redis_lib.Redis, consumer: str, ttl: float | None = None) -> None:
    """Collector `consumer` is running: present for `ttl` (COLLECTOR_TTL_SECONDS) more."""
    ttl = protocol.COLLECTOR_TTL_SECONDS if ttl is None else ttl
    now = protocol.redis_now(redis)
    pipe = redis.pipeline(transaction=True)
    pipe.zremrangebyscore(protocol.COLLECTORS, "-inf", now)
    pipe.zadd(protocol.COLLECTORS, {consumer: now + ttl})
    pipe.pexpire(protocol.COLLECTORS, int(ttl * 1000))
    pipe.execute()


def collectors(redis: redis_lib.Redis) -> list[str]:
    """The collectors present now."""
    now = protocol.redis_now(redis)
    return [_text(name) for name in redis.zrangebyscore(protocol.COLLECTORS, f"({now}", "+inf")]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
