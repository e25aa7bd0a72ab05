"""A project's caps, and the refusal of a run that exceeds one, naming the cap.

Hard caps (slots per run, duration, users per slot, the month's slot-hours, and a run larger
than the concurrent cap) refuse a run at start. The concurrent-slot cap otherwise only makes a
run wait in the queue (sharing.queue). Each cap is the project's own value, else the site-wide
default (SWARMDECK_QUOTA_* settings), else no limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from runs.services import RunError
from scenarios.models import Project
from sharing import usage
from sharing.models import Quota

CAPS = ("max_slots_per_run", "max_concurrent_slots", "max_duration", "max_users_per_slot", "monthly_slot_hours")
WARN_AT = 0.8  # of the month's slot-hours: the run form, the project and usage pages say so


class QuotaRefused(RunError):
    """A run exceeds a hard cap; `field` is the run parameter it concerns (None: the month's slot-hours).

    A run over several caps is refused once, naming them all: `errors` maps each field ("__all__" for
    the month's slot-hours) to its refusals; `cap` and `field` are the first one's.
    """

    def __init__(self, message: str, cap: str, field: str | None, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.cap = cap
        self.field = field
        self.errors = errors or {field or "__all__": [message]}

    @classmethod
    def of(cls, refusals: list[QuotaRefused]) -> QuotaRefused:
        errors: dict[str, list[str]] = {}
        for refusal in refusals:
            errors.setdefault(refusal.field or "__all__", []).append(str(refusal))
        first = refusals[0]
        return cls(" ".join(str(refusal) for refusal in refusals), first.cap, first.field, errors)


@dataclass(frozen=True)
class Limits:
    max_slots_per_run: int | None = None
    max_concurrent_slots: int | None = None
    max_duration: int | None = None
    max_users_per_slot: int | None = None
    monthly_slot_hours: float | None = None
    weight: int = 1

    def any(self) -> bool:
        return any(getattr(self, cap) is not None for cap in CAPS)


def values(quota: Quota | None) -> dict:
    """The project's own settings (None where unset), for the audit log's from/to."""
    return {field: getattr(quota, field) if quota else None for field in (*CAPS, "weight")}


def changes(before: dict, after: dict) -> dict:
    return {name: {"from": before[name], "to": after[name]} for name in after if before[name] != after[name]}


def site_defaults() -> dict:
    return dict(getattr(settings, "SWARMDECK_QUOTA_DEFAULTS", {}) or {})


def limits(project: Project) -> Limits:
    """The caps in force for `project`: its own, else the site's default, else none."""
    quota = Quota.objects.filter(project=project).first()
    return limits_of(quota)


def limits_of(quota: Quota | None) -> Limits:
    defaults = site_defaults()
    values = {cap: (getattr(quota, cap) if quota is not None and getattr(quota, cap) is not None
                    else defaults.get(cap)) for cap in CAPS}
    return Limits(**values, weight=quota.weight if quota is not None else 1)


def check_start(project: Project, params: dict) -> None:
    """Refuse (QuotaRefused, naming every cap it exceeds) a run with these frozen parameters."""
    caps = limits(project)
    if not caps.any():
        return
    refusals = list(refusals_of(project, caps, params))
    if refusals:
        raise QuotaRefused.of(refusals)


def refusals_of(project: Project, caps: Limits, params: dict) -> Iterator[QuotaRefused]:
    slots = int(params.get("slots") or 1)
    users = int(params.get("users") or 0)
    duration = float(params.get("duration") or 0)
    name = project.name
    if caps.max_slots_per_run is not None and slots > caps.max_slots_per_run:
        yield QuotaRefused(f"{name} may use at most {caps.max_slots_per_run} slot{_s(caps.max_slots_per_run)} per run "
                           f"(its quota) and this run asks for {slots}: ask for fewer.", "max_slots_per_run", "slots")
    elif caps.max_concurrent_slots is not None and slots > caps.max_concurrent_slots:
        most = caps.max_concurrent_slots
        yield QuotaRefused(f"{name} may hold at most {most} slot{_s(most)} at once (its quota), "
                           f"so a run of {slots} could never start: ask for fewer.", "max_concurrent_slots", "slots")
    if caps.max_duration is not None and (duration <= 0 or duration > caps.max_duration):
        asked = f"this run asks for {_duration(duration)}" if duration > 0 else "this run has no duration"
        yield QuotaRefused(f"{name}'s runs may last at most {_duration(caps.max_duration)} (its quota) and {asked}: "
                           "set a shorter duration.", "max_duration", "duration")
    try:
        check_users(project, users, slots, caps)
    except QuotaRefused as refused:
        yield refused
    if caps.monthly_slot_hours is not None:
        try:
            _check_month(project, caps.monthly_slot_hours, slots, duration)
        except QuotaRefused as refused:
            yield refused


def check_users(project: Project, users: int, slots: int, caps: Limits | None = None) -> None:
    """Refuse `users` over `slots` when one slot would get more than the project's users-per-slot cap."""
    caps = caps or limits(project)
    per_slot = math.ceil(users / max(slots, 1))
    if caps.max_users_per_slot is not None and per_slot > caps.max_users_per_slot:
        cap, most = caps.max_users_per_slot, caps.max_users_per_slot * slots
        more_slots = caps.max_slots_per_run is None or slots < caps.max_slots_per_run
        raise QuotaRefused(f"{project.name} may run at most {cap} user{_s(cap)} per slot (its quota): "
                           f"{users} users on {slots} slot{_s(slots)} is {per_slot} per slot. "
                           f"Ask for at most {most} users{', or more slots' if more_slots else ''}.",
                           "max_users_per_slot", "users")


def _check_month(project: Project, cap: float, slots: int, duration: float) -> None:
    used = usage.month_slot_hours(project, timezone.now())
    if used >= cap:
        raise QuotaRefused(f"{project.name} has used its {_hours(cap)} slot-hours for this month "
                           f"({_hours(used)} used): new runs start again next month, or an admin raises the quota.",
                           "monthly_slot_hours", None)
    needs = slots * duration / 3600
    if needs > cap - used:
        raise QuotaRefused(f"This run would use {_hours(needs)} slot-hours ({slots} slot{_s(slots)} × "
                           f"{_duration(duration)}) and {project.name} has {_hours(cap - used)} of its {_hours(cap)} "
                           "left this month: shorten it or use fewer slots.", "monthly_slot_hours", "duration")


def month_warning(project: Project) -> str | None:
    """A sentence once the project has used WARN_AT of its month's slot-hours, else None."""
    cap = limits(project).monthly_slot_hours
    if cap is None:
        return None
    used = usage.month_slot_hours(project, timezone.now())
    if used < WARN_AT * cap:
        return None
    if used >= cap:
        return f"{project.name} has used all {_hours(cap)} of its slot-hours for this month: new runs are refused."
    return (f"{project.name} has used {_hours(used)} of its {_hours(cap)} slot-hours this month ({used / cap:.0%}): "
            f"at {_hours(cap)} new runs are refused until next month.")


def _hours(value: float) -> str:
    """Slot-hours as every page writes them: two decimals (0.02, 12.50)."""
    return f"{max(value, 0.0):.2f}"


def _s(count: float) -> str:
    return "" if count == 1 else "s"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
