"""Which queued run starts next: weighted fair sharing between projects, FIFO inside each.

The rule, as the Cluster page states it:

1. **Order.** The next run considered is the oldest queued run of the project that used the
   least slot time lately (slot-seconds over the last SWARMDECK_FAIR_WINDOW seconds, the runs
   it holds now included) divided by its weight. Inside a project, runs go in the order they
   were queued.
2. **Project cap.** A run that would take its project past its concurrent-slot quota waits
   ("waiting: shop uses 8 of its 8 slots"), and so do the project's runs behind it. Other
   projects go on.
3. **Backfill, with a reservation.** A run that does not fit the free slots lets later, smaller
   runs start ahead of it, for SWARMDECK_BACKFILL_AFTER seconds. After that the longest-waiting
   such run holds a reservation: a later run starts only if its duration ends before the
   reservation's estimated start, or if it fits in the slots the reservation leaves over. So a
   run that fits the cluster is never starved by later, smaller runs: it waits at most the
   backfill time, then only for the runs ahead of it to end.
4. A run asking for more slots than the cluster has online waits for machines without
   holding anything up.

`plan()` computes all of it from the database and the cluster's capacity, without side
effects; `admit()` dispatches what the plan starts now. The run page and the Cluster page
show each queued run's position, why it waits and its estimated start, from the same plan.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from runs.models import Run
from sharing import quotas, usage
from sharing.models import Quota

START_ALLOWANCE = 10.0  # seconds a dispatched run takes to start, in deadline estimates


def window() -> float:
    return float(getattr(settings, "SWARMDECK_FAIR_WINDOW", 3600))


def backfill_after() -> float:
    return float(getattr(settings, "SWARMDECK_BACKFILL_AFTER", 300))


@dataclass
class Entry:
    """One queued run in admission order."""

    run: Run
    position: int = 0
    start_now: bool = False
    reason: str = ""
    estimated_start: datetime | None = None
    behind: int | None = None     # the run of its project it waits behind (FIFO inside a project)
    for_slots: bool = False       # it waits for held slots to be released (by its project or the cluster)


@dataclass
class Plan:
    entries: list[Entry] = field(default_factory=list)
    capacity: int = 0
    free: int = 0

    def of(self, run_id: int) -> Entry | None:
        return next((entry for entry in self.entries if entry.run.pk == run_id), None)


@dataclass
class _Holding:
    slots: int
    ends: datetime | None  # None: until stopped


def deadline(run: Run, now: datetime) -> datetime | None:
    """When a run that holds slots is expected to release them (None: it runs until stopped)."""
    if not run.duration:
        return None
    stop = run.params.get("stop_timeout")
    stop = 10.0 if stop is None else float(stop)
    if run.started_at:
        return run.started_at + timedelta(seconds=run.duration + stop)
    return now + timedelta(seconds=START_ALLOWANCE + run.duration + stop)


def _recent_usage(now: datetime) -> dict[int, float]:
    """Slot-seconds per project over the fair window, runs holding slots now included."""
    start = now - timedelta(seconds=window())
    used: dict[int, float] = defaultdict(float)
    for run in usage.overlapping(Run.objects.all(), start, now + timedelta(seconds=1)).only(
            "project_id", "params", "dispatched_at", "ended_at"):
        used[run.project_id] += usage.held_seconds(run, start, now, now)
    return used


class _Timeline:
    """Free slots over time: slots released by runs that hold them, taken and released by the runs
    the plan starts now or expects to start later."""

    def __init__(self, free: int, now: datetime):
        self.free_now = free
        self.now = now
        self.events: list[tuple[datetime, int]] = []  # (when, +released / -taken)

    def hold(self, slots: int, ends: datetime | None) -> None:
        """`slots` held from now (already out of free_now) until `ends` (None: until stopped)."""
        if ends is not None:
            self.events.append((ends, slots))

    def take(self, slots: int, at: datetime, ends: datetime | None) -> None:
        if at <= self.now:
            self.free_now -= slots
        else:
            self.events.append((at, -slots))
        if ends is not None:
            self.events.append((ends, slots))

    def free_at(self, moment: datetime) -> int:
        return self.free_now + sum(delta for when, delta in self.events if when <= moment)

    def earliest(self, slots: int, seconds: float | None, not_before: datetime | None = None) -> datetime | None:
        """The first moment (from `not_before`) from which `slots` stay free for `seconds` (None: for good);
        None if never."""
        first = max(self.now, not_before or self.now)
        times = sorted({first, *(when for when, _ in self.events if when > first)})
        for start in times:
            end = start + timedelta(seconds=seconds) if seconds else None
            checked = [start, *(t for t in times if t > start and (end is None or t < end))]
            if all(self.free_at(t) >= slots for t in checked):
                return start
        return None


def plan(now: datetime | None = None, capacity: int | None = None) -> Plan:
    """Every queued run, in admission order, with whether it starts now, why not, and when it may."""
    from runs import cluster

    now = now or timezone.now()
    queued = list(Run.objects.filter(status=Run.Status.QUEUED).select_related("project", "scenario")
                  .defer("stats_blob", "totals", "errors", "exceptions").order_by("created_at", "id"))
    drained = 0
    if capacity is None:
        registry = cluster.workers() if queued else []  # read once: the collector plans several times a second
        capacity, drained = cluster.capacity(registry), cluster.drained_slots(registry)
    holding = list(Run.objects.filter(status__in=Run.HOLDING_SLOTS).only(
        "project_id", "params", "started_at", "dispatched_at", "status"))
    result = Plan(capacity=capacity)
    held_by_project: dict[int, int] = defaultdict(int)
    timeline = _Timeline(0, now)
    releases: dict[int, list[tuple[datetime | None, int]]] = defaultdict(list)  # per project: (ends, slots)
    for run in holding:
        held_by_project[run.project_id] += run.slots_requested
        timeline.hold(run.slots_requested, deadline(run, now))
        releases[run.project_id].append((deadline(run, now), run.slots_requested))
    free = capacity - sum(held_by_project.values())
    timeline.free_now = free
    result.free = max(0, free)
    if not queued:
        return result
    caps = {quota.project_id: quotas.limits_of(quota)
            for quota in Quota.objects.filter(project_id__in={run.project_id for run in queued})}
    default_caps = quotas.limits_of(None)
    used = _recent_usage(now)
    queues: dict[int, list[Run]] = defaultdict(list)
    for run in queued:
        queues[run.project_id].append(run)
    reservation: _Reservation | None = None
    order: list[Entry] = []
    while queues:
        project_id = min(queues, key=lambda pid: (used[pid] / caps.get(pid, default_caps).weight,
                                                  queues[pid][0].created_at, queues[pid][0].pk))
        run = queues[project_id].pop(0)
        if not queues[project_id]:
            del queues[project_id]
        entry = Entry(run)
        order.append(entry)
        slots = run.slots_requested
        limit = caps.get(project_id, default_caps).max_concurrent_slots
        if slots > capacity:
            more = f" ({drained} more drained by an admin)" if drained else ""
            entry.reason = (f"waiting for machines: it needs {slots} slot{'s' if slots != 1 else ''} and the cluster "
                            f"has {capacity} taking runs{more}")
            continue
        length = START_ALLOWANCE + run.duration if run.duration else None
        if limit is not None and held_by_project[project_id] + slots > limit:
            entry.for_slots = True
            entry.reason = (f"waiting: {run.project.name} uses {held_by_project[project_id]} of its {limit} "
                            f"slot{'s' if limit != 1 else ''}")
            below = _below_cap(releases[project_id], held_by_project[project_id] + slots - limit)
            entry.estimated_start = timeline.earliest(slots, length, not_before=below) if below else None
            if entry.estimated_start is not None:
                timeline.take(slots, entry.estimated_start,
                              entry.estimated_start + timedelta(seconds=length) if length else None)
            for behind in queues.pop(project_id, []):  # FIFO inside the project: the rest wait behind it
                order.append(Entry(behind, reason=f"waiting behind run #{run.pk} of {run.project.name}",
                                   behind=run.pk))
            continue
        ends_at = now + timedelta(seconds=length) if length else None
        fits = slots <= timeline.free_now
        if fits and (reservation is None or reservation.allows(slots, ends_at)):
            entry.start_now = True
            entry.estimated_start = now
            timeline.take(slots, now, ends_at)
            releases[project_id].append((ends_at, slots))
            held_by_project[project_id] += slots
            used[project_id] += slots * min(run.duration or window(), window())
            if reservation is not None:
                reservation.take(slots, ends_at)
            continue
        when = timeline.earliest(slots, length)
        free_then = timeline.free_at(when) if when else 0
        entry.estimated_start = when
        if when is not None:
            timeline.take(slots, when, when + timedelta(seconds=length) if length else None)
        if fits:
            entry.reason = f"waiting: run #{reservation.run_id} holds a reservation for the slots it would take"
        else:
            entry.for_slots = True
            entry.reason = (f"waiting for {slots} free slot{'s' if slots != 1 else ''} "
                            f"({max(0, timeline.free_now)} free now)")
        waited = (now - run.created_at).total_seconds()
        if reservation is None and not fits and waited >= backfill_after():
            reservation = _Reservation(run.pk, when, free_then - slots)
            entry.reason += "; it holds a reservation: later runs start only if they leave it room"
    for position, entry in enumerate(order, start=1):
        entry.position = position
    result.entries = order
    return result


def _below_cap(releases: list[tuple[datetime | None, int]], excess: int) -> datetime | None:
    """When the project's runs will have released `excess` slots, from their deadlines (None: not before a
    run without a duration is stopped)."""
    freed = 0
    for ends, slots in sorted((r for r in releases if r[0] is not None), key=lambda r: r[0]):
        freed += slots
        if freed >= excess:
            return ends
    return None


@dataclass
class _Reservation:
    """The slots a long-waiting run will take at `at`: later runs may use what it leaves over, or end first."""

    run_id: int
    at: datetime | None
    spare: int  # slots free at `at` beyond the reserved run's

    def allows(self, slots: int, ends_at: datetime | None) -> bool:
        if self.at is not None and ends_at is not None and ends_at <= self.at:
            return True
        return slots <= self.spare

    def take(self, slots: int, ends_at: datetime | None) -> None:
        if not (self.at is not None and ends_at is not None and ends_at <= self.at):
            self.spare -= slots


def admit() -> list[int]:
    """Dispatch the queued runs the plan starts now; their ids, in order."""
    from runs import services

    started = []
    for entry in plan().entries:
        if entry.start_now and services.dispatch(entry.run):
            started.append(entry.run.pk)
    return started


def describe(entry: Entry | None) -> dict:
    """A queued run's place for pages and the API: position, reason, estimated start (ISO, or None)."""
    if entry is None:
        return {"position": None, "reason": "", "estimated_start": None}
    return {"position": entry.position, "reason": entry.reason,
            "estimated_start": entry.estimated_start.isoformat() if entry.estimated_start else None}


def eta_words(entry: Entry, now: datetime | None = None) -> str:
    """'in about 3 min', 'when a run without a duration is stopped', or ''."""
    if entry.start_now:
        return "now"
    if entry.estimated_start is None:
        if entry.behind is not None:
            return f"after run #{entry.behind}"
        if entry.for_slots:
            return "when a run without a duration is stopped"
        return ""
    seconds = max(0.0, (entry.estimated_start - (now or timezone.now())).total_seconds())
    if seconds < 60:
        return "in less than a minute"
    return f"in about {math.ceil(seconds / 60)} min"
