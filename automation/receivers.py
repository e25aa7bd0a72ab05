"""Listeners for run events (runs.signals) and for schedule deletion. Connected in apps.ready().

The collector sends run_ended: an error here must never break it, so everything is caught and logged.
"""

import logging

from django.db.models.signals import post_delete
from django.dispatch import receiver
from django_celery_beat.models import PeriodicTask

from automation.models import Event, Schedule
from runs import signals as run_signals
from runs.models import Run

log = logging.getLogger(__name__)


def _run(run_id):
    return Run.objects.select_related("scenario", "project").defer("stats_blob").filter(pk=run_id).first()


@receiver(run_signals.run_ended, dispatch_uid="automation-webhooks-run-ended")
def on_run_ended(sender, run_id, **kwargs):
    from automation import webhooks

    try:
        run = _run(run_id)
        event = webhooks.event_for_end(run) if run else None
        if event:
            webhooks.create_deliveries(run, event)
    except Exception:
        log.exception("Run %s ended, but its webhook deliveries could not be created.", run_id)


@receiver(run_signals.threshold_broken, dispatch_uid="automation-webhooks-threshold-broken")
def on_threshold_broken(sender, run_id, criterion=None, **kwargs):
    from automation import webhooks

    try:
        run = _run(run_id)
        if run:
            webhooks.create_deliveries(run, Event.THRESHOLD_BROKEN, criterion=_describe(criterion))
    except Exception:
        log.exception("Run %s broke a threshold, but its webhook deliveries could not be created.", run_id)


def _describe(criterion):
    """A dict or string as given; a model instance or object as its text."""
    if criterion is None or isinstance(criterion, (dict, str, int, float)):
        return criterion
    for attribute in ("as_dict", "to_dict"):
        if callable(getattr(criterion, attribute, None)):
            return getattr(criterion, attribute)()
    return str(criterion)


@receiver(post_delete, sender=Schedule, dispatch_uid="automation-schedule-periodic-task")
def delete_periodic_task(sender, instance, **kwargs):
    """Also when a scenario's deletion cascades to its schedules: beat must stop firing them."""
    if instance.periodic_task_id:
        from automation.schedules import drop_unused_timings

        timings = PeriodicTask.objects.filter(pk=instance.periodic_task_id).values_list("crontab_id",
                                                                                        "interval_id").first()
        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()
        if timings:
            drop_unused_timings(*timings)
