"""Control-queue tasks: run by `celery -A controlcenter worker -Q control` (it has Django and the
database; load workers have neither). Thin: ids in, work in automation.schedules / .webhooks."""

import logging

from controlcenter.celery import app

log = logging.getLogger(__name__)


@app.task(name="automation.tasks.fire_schedule", ignore_result=True)
def fire_schedule(schedule_id: int) -> None:
    """Sent by beat on the schedule's timing."""
    from automation import schedules
    from automation.models import Schedule

    schedule = Schedule.objects.select_related("scenario").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled:
        log.info("Schedule %s is gone or disabled: nothing to fire.", schedule_id)
        return
    schedules.fire(schedule)


@app.task(bind=True, name="automation.tasks.deliver_webhook", max_retries=None, ignore_result=True)
def deliver_webhook(self, delivery_id: int) -> None:
    """One POST per execution; retried with the backoff countdown until delivered or out of attempts."""
    from automation import webhooks

    countdown = webhooks.attempt_delivery(delivery_id)
    if countdown is not None:
        raise self.retry(countdown=countdown)
