"""The report stream's size: nothing unread is ever cut; what the collector acked is trimmed.

Slots XADD without a cap, because a cap trims the oldest entries whether the collector read them
or not (a long collector outage would lose them silently). Instead the leading collector trims,
every TRIM_SECONDS, the entries older than the oldest one the group still needs: the oldest
pending (delivered, not acked) entry, or, with none pending, the last delivered one.

Unread entries that pile up (the collector down or behind) are kept and raise an alarm: every
page says so once they pass SWARMDECK_STREAM_ALARM_ENTRIES. Should Redis then reach its
maxmemory, slots buffer their events and, past their outbox bound, drop old snapshots, which
their runs state ("data truncated: ...").
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from workers import protocol

log = logging.getLogger("swarmdeck.collector")

TRIM_SECONDS = 5.0


@dataclass(frozen=True)
class Backlog:
    entries: int       # in the stream now
    unread: int        # not yet delivered to the collectors' group
    used_memory: int   # bytes Redis uses, all keys

    @property
    def alarming(self) -> bool:
        return self.unread >= settings.SWARMDECK_STREAM_ALARM_ENTRIES

    def words(self) -> str:
        return (f"The report stream holds {self.unread:,} unread entries (Redis uses "
                f"{self.used_memory / 2**20:,.0f} MiB): the collector is down or behind. Nothing is dropped "
                f"while Redis has memory; live numbers lag until the collector catches up.")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def _group(redis, name: str) -> dict | None:
    for group in redis.xinfo_groups(name):
        if _text(group["name"]) == protocol.COLLECTOR_GROUP:
            return group
    return None


def backlog(redis, name: str = protocol.REPORT_STREAM) -> Backlog | None:
    """The stream's unread entries, or None when there is no stream or group yet."""
    if not redis.exists(name):
        return None
    group = _group(redis, name)
    if group is None:
        return None
    entries = int(redis.xlen(name))
    lag = group.get("lag")
    # Redis before 7 reports no lag (nor does 7 after a trim it cannot see past). Counting the entries
    # after the last delivered id would fetch them whole (XRANGE has no ids-only form): at a thousand
    # slots that is tens of megabytes a second of backlog, read by every page. Instead: the entries
    # minus the pending ones and minus the last delivered one, which a trim keeps. That is exact
    # right after a trim with nothing pending; otherwise the acked entries the trim keeps behind the
    # oldest pending one count as unread too (an upper bound: seconds of entries while the collector
    # keeps up).
    if lag is None:
        last = _text(group["last-delivered-id"])
        kept = 0
        if last != "0-0" and redis.xrange(name, min=last, max=last):
            pending_last = redis.xpending_range(name, protocol.COLLECTOR_GROUP, min=last,
                                                max=last, count=1)
            kept = 0 if pending_last else 1
        lag = max(0, entries - int(group.get("pending") or 0) - kept)
    return Backlog(entries=entries, unread=int(lag), used_memory=int(redis.info("memory")["used_memory"]))


def backlog_of_all(redis) -> Backlog | None:
    """Every collector shard's stream together (runs/shards.py), or None when none has a group yet."""
    from runs import shards

    states = [state for state in (backlog(redis, name) for name in shards.streams()) if state is not None]
    if not states:
        return None
    return Backlog(entries=sum(s.entries for s in states), unread=sum(s.unread for s in states),
                   used_memory=states[0].used_memory)


def safe_min_id(redis, name: str = protocol.REPORT_STREAM) -> str | None:
    """The oldest entry id the collectors' group still needs; entries before it were acked."""
    group = _group(redis, name)
    if group is None:
        return None
    oldest = _text(group["last-delivered-id"])
    pending = redis.xpending(name, protocol.COLLECTOR_GROUP)
    if pending["pending"]:
        oldest = min(oldest, _text(pending["min"]), key=_id)
    return None if oldest == "0-0" else oldest


def trim(redis, name: str = protocol.REPORT_STREAM) -> int:
    """Delete what was acked; returns how many entries went."""
    if not redis.exists(name):
        return 0
    oldest = safe_min_id(redis, name)
    if oldest is None:
        return 0
    return int(redis.xtrim(name, minid=oldest, approximate=False))


class Keeper:
    """The leader's periodic trim, and one log line each time the backlog starts and stops alarming."""

    def __init__(self, redis, name: str = protocol.REPORT_STREAM):
        self.redis = redis
        self.name = name   # the stream of the shard this collector leads
        self.next_at = 0.0
        self.alarmed = False

    def tend(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + TRIM_SECONDS
        trim(self.redis, self.name)
        state = backlog(self.redis, self.name)
        alarming = state is not None and state.alarming
        if alarming and not self.alarmed:
            log.warning("%s", state.words())
        elif self.alarmed and not alarming:
            log.info("The report stream's backlog is below %s entries again.", settings.SWARMDECK_STREAM_ALARM_ENTRIES)
        self.alarmed = alarming
