"""Schedules: saving them with beat's PeriodicTask in step, the next fire times, and firing.

Every path that creates or changes a schedule (its form, the toggle, the admin, tests) calls
save_schedule(): beat reads only django-celery-beat's tables, so a Schedule.save() or a
QuerySet.update() of its own would leave beat firing the old timing, or a disabled schedule.

Beat only sends `automation.tasks.fire_schedule(schedule_id)` to the control queue; the control
worker (one process, so two fires never race) calls fire() here.
"""

import json
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from audit import log as audit_log
from automation import cron
from automation.models import Schedule, ScheduleSkip
from controlcenter.celery import CONTROL_QUEUE
from runs.models import Run
from runs.services import RunError, start_run

log = logging.getLogger(__name__)

FIRE_TASK = "automation.tasks.fire_schedule"


def _crontab_for(schedule: Schedule) -> CrontabSchedule:
    fields = dict(cron.split(schedule.cron), timezone=ZoneInfo(schedule.timezone))
    existing = CrontabSchedule.objects.filter(**fields).first()
    return existing or CrontabSchedule.objects.create(**fields)


def _interval_for(schedule: Schedule) -> IntervalSchedule:
    existing = IntervalSchedule.objects.filter(every=schedule.every_seconds, period=IntervalSchedule.SECONDS).first()
    return existing or IntervalSchedule.objects.create(every=schedule.every_seconds, period=IntervalSchedule.SECONDS)


def drop_unused_timings(crontab_id: int | None, interval_id: int | None) -> None:
    """Delete these crontab / interval rows of beat's if no PeriodicTask uses them any more: an edited or
    deleted schedule left its old timing behind, one row per edit (rows other tasks share are kept)."""
    if crontab_id:
        CrontabSchedule.objects.filter(pk=crontab_id, periodictask__isnull=True).delete()
    if interval_id:
        IntervalSchedule.objects.filter(pk=interval_id, periodictask__isnull=True).delete()


def save_schedule(schedule: Schedule) -> Schedule:
    """Save a new or changed schedule and its PeriodicTask, in one transaction."""
    if schedule.preset != Schedule.Preset.CUSTOM:
        schedule.cron = cron.PRESETS[schedule.preset]
    with transaction.atomic():
        schedule.save()
        sync_periodic_task(schedule)
    return schedule


def sync_periodic_task(schedule: Schedule) -> PeriodicTask:
    """Create or update the PeriodicTask beat fires for this schedule (enabled, timing, args)."""
    with transaction.atomic():
        # From the database, not a cached relation: beat writes last_run_at and total_run_count,
        # and saving back an older copy would undo them.
        task = PeriodicTask.objects.filter(pk=schedule.periodic_task_id).first() or PeriodicTask()
        was = (task.crontab_id, task.interval_id)
        if schedule.every_seconds:
            task.interval, task.crontab = _interval_for(schedule), None
        else:
            task.crontab, task.interval = _crontab_for(schedule), None
        # Named by timing and action; the pk keeps it unique (PeriodicTask.name is unique).
        task.name = f"{schedule.timing}: start scenario {schedule.scenario_id} (schedule {schedule.pk})"[:200]
        task.task = FIRE_TASK
        task.args = json.dumps([schedule.pk])
        task.kwargs = "{}"
        task.queue = CONTROL_QUEUE
        task.enabled = schedule.enabled
        task.description = f"Swarmdeck schedule “{schedule.name}” of scenario “{schedule.scenario.name}”."
        task.save()  # PeriodicTask.save tells beat that the schedule changed
        now = (task.crontab_id, task.interval_id)
        drop_unused_timings(*(before if before != after else None for before, after in zip(was, now)))
        if schedule.periodic_task_id != task.pk:
            Schedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
        schedule.periodic_task = task
    return task


def next_fire_times(schedule: Schedule, now: datetime | None = None, count: int = 5) -> list[datetime]:
    """When beat will fire next, in the schedule's time zone (empty when disabled)."""
    if not schedule.enabled:
        return []
    now = now or timezone.now()
    tz = ZoneInfo(schedule.timezone)
    if schedule.every_seconds:
        task = schedule.periodic_task
        last = task.last_run_at if task and task.last_run_at else now
        step = timedelta(seconds=schedule.every_seconds)
        first = last + step
        while first <= now:
            first += step
        return [(first + step * index).astimezone(tz) for index in range(count)]
    return cron.next_fire_times(schedule.cron, schedule.timezone, now, count)


def runs_of(schedule: Schedule):
    """Runs this schedule started (Run.trigger_detail names it)."""
    return Run.objects.filter(scenario_id=schedule.scenario_id, trigger=Run.Trigger.SCHEDULE,
                              trigger_detail__schedule=schedule.pk)


def fire(schedule: Schedule) -> Run | ScheduleSkip:
    """Start the schedule's run, or record why not: the scenario is busy (overlap skip) or the
    run cannot start (no locustfile, no host)."""
    scenario = schedule.scenario
    with audit_log.via(f"schedule:{schedule.pk}"), transaction.atomic():
        if schedule.overlap == Schedule.Overlap.SKIP:
            active = Run.objects.filter(scenario=scenario).active().order_by("created_at").first()
            if active is not None:
                skip = ScheduleSkip.objects.create(
                    schedule=schedule, kind=ScheduleSkip.Kind.OVERLAP, active_run=active,
                    reason=f"Run #{active.pk} of {scenario.name} was still {active.get_status_display().lower()}.")
                log.info("Schedule %s skipped a fire: %s", schedule.pk, skip.reason)
                return skip
        try:
            run = start_run(scenario, params=schedule.overrides(), trigger=Run.Trigger.SCHEDULE,
                            trigger_detail={"schedule": schedule.pk, "name": schedule.name},
                            labels=schedule.labels or None)
        except RunError as error:
            skip = ScheduleSkip.objects.create(schedule=schedule, kind=ScheduleSkip.Kind.ERROR, reason=str(error))
            log.warning("Schedule %s could not start a run of scenario %s: %s", schedule.pk, scenario.pk, error)
            return skip
    log.info("Schedule %s started run %s of scenario %s.", schedule.pk, run.pk, scenario.pk)
    return run
