"""Schedules keep beat's PeriodicTask in step, and a fire starts a run or records why not."""

import ast
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from automation import schedules
from automation.models import Schedule, ScheduleSkip
from automation.tasks import fire_schedule
from controlcenter.env import BASE_DIR
from runs import services
from runs.models import Run

HOST = "http://127.0.0.1:9"


@pytest.fixture
def schedule(scenario, alice):
    return schedules.save_schedule(Schedule(scenario=scenario, name="nightly smoke", preset=Schedule.Preset.NIGHTLY,
                                            timezone="Europe/Paris", host=HOST, users=5, created_by=alice))


def test_it_creates_the_periodic_task_beat_fires(schedule):
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "automation.tasks.fire_schedule" and task.queue == "control"
    assert json.loads(task.args) == [schedule.pk] and task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "2", "*")
    assert str(task.crontab.timezone) == "Europe/Paris" and task.interval is None
    assert schedule.cron == "0 2 * * *"


def test_it_follows_edits_disabling_and_deletion(schedule):
    task_id = schedule.periodic_task_id
    schedule.preset, schedule.cron, schedule.timezone = Schedule.Preset.CUSTOM, "15 6 * * 1-5", "UTC"
    schedules.save_schedule(schedule)
    task = PeriodicTask.objects.get(pk=task_id)
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("15", "6", "1-5")
    assert str(task.crontab.timezone) == "UTC"
    assert PeriodicTask.objects.filter(task="automation.tasks.fire_schedule").count() == 1

    schedule.enabled = False
    schedules.save_schedule(schedule)
    assert not PeriodicTask.objects.get(pk=task_id).enabled
    assert schedules.next_fire_times(schedule) == []

    schedule.delete()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_it_leaves_no_timing_row_behind_an_edit_or_a_deletion(schedule, scenario):
    """Beat's crontab and interval rows: the old one goes once nothing uses it; one another task shares stays."""
    from django_celery_beat.models import IntervalSchedule

    nightly = PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab_id
    other = schedules.save_schedule(Schedule(scenario=scenario, name="also nightly", preset=Schedule.Preset.NIGHTLY,
                                             timezone="Europe/Paris"))
    assert PeriodicTask.objects.get(pk=other.periodic_task_id).crontab_id == nightly   # shared

    schedule.preset, schedule.cron = Schedule.Preset.CUSTOM, "15 6 * * 1-5"
    schedules.save_schedule(schedule)
    assert CrontabSchedule.objects.filter(pk=nightly).exists()   # the other schedule still uses it
    other.preset, other.cron = Schedule.Preset.CUSTOM, "15 6 * * 1-5"
    schedules.save_schedule(other)
    assert not CrontabSchedule.objects.filter(pk=nightly).exists()
    assert CrontabSchedule.objects.count() == 1

    other.preset, other.every_seconds = Schedule.Preset.CUSTOM, 30
    schedules.save_schedule(other)
    assert CrontabSchedule.objects.count() == 1 and IntervalSchedule.objects.count() == 1
    other.delete()
    assert IntervalSchedule.objects.count() == 0
    schedule.delete()
    assert CrontabSchedule.objects.count() == 0


def test_it_removes_the_periodic_task_when_the_scenario_goes(schedule, scenario):
    task_id = schedule.periodic_task_id
    scenario.delete()
    assert not Schedule.objects.exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_it_removes_the_periodic_tasks_of_a_queryset_delete(schedule, scenario):
    other = schedules.save_schedule(Schedule(scenario=scenario, name="hourly", preset=Schedule.Preset.HOURLY))
    assert PeriodicTask.objects.filter(task=schedules.FIRE_TASK).count() == 2
    Schedule.objects.filter(pk__in=[schedule.pk, other.pk]).delete()
    assert not PeriodicTask.objects.filter(task=schedules.FIRE_TASK).exists()


def test_it_keeps_what_beat_wrote_when_an_older_copy_is_saved(schedule):
    older = Schedule.objects.select_related("periodic_task").get(pk=schedule.pk)
    fired = timezone.now() - timedelta(minutes=1)
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=fired, total_run_count=3)
    older.users = 9
    schedules.save_schedule(older)
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (task.last_run_at, task.total_run_count) == (fired, 3)
    assert older.periodic_task.total_run_count == 3


WRITES = {"create", "bulk_create", "get_or_create", "update_or_create", "update", "bulk_update"}


def _schedule_writes(path):
    """Lines that create or update schedules through the ORM: Schedule.objects...update(...),
    scenario.schedules.create(...) and the like."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES):
            continue
        part = node.func.value
        while isinstance(part, (ast.Call, ast.Attribute)):
            if isinstance(part, ast.Attribute) and part.attr == "schedules":
                break
            part = part.func if isinstance(part, ast.Call) else part.value
        if isinstance(part, ast.Attribute) or (isinstance(part, ast.Name) and part.id == "Schedule"):
            yield node.lineno


def test_it_creates_and_updates_schedules_only_through_the_service():
    """Beat follows a schedule only through save_schedule: a QuerySet.update() of a schedule elsewhere
    would change what the pages show and leave beat firing the old timing."""
    service = BASE_DIR / "automation" / "schedules.py"
    files = [path for directory in ("controlcenter", "scenarios", "runs", "workers", "api", "automation", "tests")
             for path in (BASE_DIR / directory).rglob("*.py") if "migrations" not in path.parts and path != service]
    offenders = [f"{path.relative_to(BASE_DIR)}:{line}" for path in files for line in _schedule_writes(path)]
    assert offenders == []
    assert list(_schedule_writes(service))  # the check does see the service's own update()


def test_it_uses_an_interval_when_firing_every_few_seconds(scenario):
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="fast", cron="* * * * *", every_seconds=3,
                                                host=HOST))
    task = schedule.periodic_task
    assert task.crontab is None and task.interval.every == 3 and task.interval.period == "seconds"
    times = schedules.next_fire_times(schedule)
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:])] == [3.0] * 4
    assert CrontabSchedule.objects.count() == 0


def test_it_starts_a_run_with_the_schedule_as_trigger(schedule, scenario):
    run = schedules.fire(schedule)
    assert isinstance(run, Run)
    run.refresh_from_db()
    assert run.trigger == Run.Trigger.SCHEDULE and run.created_by is None
    assert run.trigger_detail == {"schedule": schedule.pk, "name": "nightly smoke"}
    assert run.params["users"] == 5 and run.params["host"] == HOST
    assert run.params["duration"] == scenario.default_duration  # not overridden: the scenario's default
    assert list(schedules.runs_of(schedule)) == [run]


def test_it_skips_a_fire_while_the_previous_run_is_active(schedule, scenario):
    first = schedules.fire(schedule)
    skip = schedules.fire(schedule)
    assert isinstance(skip, ScheduleSkip)
    assert skip.kind == ScheduleSkip.Kind.OVERLAP and skip.active_run == first
    assert f"Run #{first.pk}" in skip.reason and "still queued" in skip.reason
    assert Run.objects.count() == 1

    # A manual run counts too; once runs are over, the next fire starts one.
    Run.objects.filter(pk=first.pk).update(status=Run.Status.FINISHED)
    manual = services.start_run(scenario, params={"host": HOST})
    Run.objects.filter(pk=manual.pk).update(status=Run.Status.RUNNING)
    assert isinstance(schedules.fire(schedule), ScheduleSkip)
    Run.objects.filter(pk=manual.pk).update(status=Run.Status.FAILED)
    assert isinstance(schedules.fire(schedule), Run)
    assert schedule.skips.count() == 2


def test_it_queues_behind_an_active_run_when_told_to(schedule):
    schedule.overlap = Schedule.Overlap.QUEUE
    schedules.save_schedule(schedule)
    first, second = schedules.fire(schedule), schedules.fire(schedule)
    assert isinstance(second, Run) and second.pk != first.pk
    assert second.status == Run.Status.QUEUED and not schedule.skips.exists()


def test_it_records_a_fire_that_cannot_start(scenario):
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="no host", cron="0 * * * *"))
    skip = schedules.fire(schedule)
    assert skip.kind == ScheduleSkip.Kind.ERROR and "Set a host" in skip.reason
    assert not Run.objects.exists()


def test_the_task_ignores_gone_and_disabled_schedules(schedule):
    schedule.enabled = False
    schedules.save_schedule(schedule)
    fire_schedule(schedule.pk)
    fire_schedule(999999)
    assert not Run.objects.exists()
    schedule.enabled = True
    schedules.save_schedule(schedule)
    fire_schedule(schedule.pk)
    assert Run.objects.get().trigger == Run.Trigger.SCHEDULE
