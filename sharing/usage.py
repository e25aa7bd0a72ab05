"""Slot-hours: how much of the cluster a project's runs held, counted from the runs themselves.

A run holds its slots from its dispatch (slot rows created, tasks sent) until it ends, preparing
and stopping included: slots × (ended_at, or now while it runs, − dispatched_at). A run that
spans two months counts in each for the part inside it. Calendar months are UTC.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from runs.models import Run
from scenarios.models import Project


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def months_back(moment: datetime, count: int) -> list[datetime]:
    """The starts of the last `count` calendar months, oldest first, the month of `moment` last."""
    starts = [month_start(moment)]
    while len(starts) < count:
        starts.append(month_start(starts[-1] - timedelta(days=1)))
    return starts[::-1]


def overlapping(runs: QuerySet, start: datetime, end: datetime) -> QuerySet:
    """Runs that held slots at some moment in [start, end)."""
    return (runs.filter(dispatched_at__isnull=False, dispatched_at__lt=end)
            .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start)))


def held_seconds(run: Run, start: datetime, end: datetime, now: datetime) -> float:
    """Slot-seconds `run` held inside [start, end)."""
    if run.dispatched_at is None:
        return 0.0
    until = run.ended_at or now
    seconds = (min(until, end) - max(run.dispatched_at, start)).total_seconds()
    return max(0.0, seconds) * run.slots_requested


def month_slot_hours(project: Project, moment: datetime) -> float:
    start = month_start(moment)
    return slot_hours(Run.objects.filter(project=project), start, next_month(start))


def slot_hours(runs: QuerySet, start: datetime, end: datetime, now: datetime | None = None) -> float:
    now = now or timezone.now()
    fields = ("params", "dispatched_at", "ended_at")
    return sum(held_seconds(run, start, end, now) for run in overlapping(runs, start, end).only(*fields)) / 3600


@dataclass
class Month:
    start: datetime
    slot_hours: float = 0.0
    runs: int = 0


@dataclass
class Report:
    """One project's (or every project's) use of the cluster over some months."""

    months: list[Month]
    by_scenario: dict[str, float] = field(default_factory=dict)
    by_user: dict[str, float] = field(default_factory=dict)
    by_project: dict[str, float] = field(default_factory=dict)

    @property
    def this_month(self) -> Month:
        return self.months[-1]

    def top(self, table: dict[str, float], count: int = 5) -> list[tuple[str, float]]:
        return sorted(table.items(), key=lambda item: (-item[1], item[0]))[:count]


def report(runs: QuerySet, months: int = 12, now: datetime | None = None, since: datetime | None = None) -> Report:
    """Slot-hours and runs per month for the last `months` months (none before the month of `since`, e.g.
    the project's creation); scenarios, users and projects of this month."""
    now = now or timezone.now()
    starts = months_back(now, months)
    if since is not None:
        starts = [start for start in starts if start >= month_start(since)] or starts[-1:]
    result = Report(months=[Month(start) for start in starts])
    end = next_month(starts[-1])
    picked = (overlapping(runs, starts[0], end).select_related("scenario", "created_by", "project")
              .only("params", "dispatched_at", "ended_at", "created_at", "trigger", "scenario__name",
                    "created_by__username", "project__name", "project__slug"))
    this_month = result.this_month
    scenario_hours: dict[str, float] = defaultdict(float)
    user_hours: dict[str, float] = defaultdict(float)
    project_hours: dict[str, float] = defaultdict(float)
    for run in picked:
        for month in result.months:
            hours = held_seconds(run, month.start, next_month(month.start), now) / 3600
            month.slot_hours += hours
            if month.start <= run.dispatched_at < next_month(month.start):
                month.runs += 1
            if month is this_month and hours:
                scenario_hours[run.scenario.name] += hours
                user_hours[run.created_by.username if run.created_by else f"({run.get_trigger_display().lower()})"] \
                    += hours
                project_hours[run.project.slug] += hours
    result.by_scenario, result.by_user, result.by_project = dict(scenario_hours), dict(user_hours), dict(project_hours)
    return result
