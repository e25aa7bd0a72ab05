"""The Celery app: `celery -A controlcenter worker -Q loadgen` and `celery -A controlcenter beat`.

A load worker on another machine has REDIS_URL and nothing else: this module must not need
Django settings, a database or a secret. Only beat (DJANGO_SETTINGS_MODULE set, for
django-celery-beat's database scheduler) and the control worker (`-Q control`: fires schedules,
delivers webhooks) configure Django, through Celery's Django fix-up; automation's AppConfig then
registers the control tasks.
"""

import logging

from celery import Celery

from controlcenter.env import envint, resolve_redis_url

LOADGEN_QUEUE = "loadgen"
# Tasks that need Django and the database (schedules, webhooks): only the control worker consumes it.
CONTROL_QUEUE = "control"


def _transport_options() -> dict:
    """Redis visibility timeout, and how often workers look for unacknowledged messages past it.

    The defaults are kombu's (1 h; a sweep every ~100 s). Tests shorten both to prove that a
    run longer than the timeout is never handed out twice.
    """
    options = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1)}
    sweep = envint("CELERY_RESTORE_INTERVAL", 0, minimum=0)
    if sweep:
        options.update(unacked_restore_interval=sweep, unacked_restore_throttle=1)
    return options


class OneLinePerOutage(logging.Filter):
    """Celery logs every reconnection attempt; an outage gets its first line and its end only."""

    def __init__(self):
        super().__init__()
        self.down = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith("consumer: Cannot connect to"):
            seen, self.down = self.down, True
            return not seen
        if message.startswith("Connected to"):
            self.down = False
        return True


_outages = OneLinePerOutage()
logging.getLogger("celery.worker.consumer.consumer").addFilter(_outages)
logging.getLogger("celery.worker.consumer.connection").addFilter(_outages)

app = Celery("controlcenter", include=["workers.tasks"])
app.conf.update(
    broker_url=resolve_redis_url(),
    broker_connection_retry_on_startup=True,
    # Workers and beat never give up on Redis (Celery's default stops a worker after 100 attempts).
    broker_connection_max_retries=None,
    # Celery 6's default, set now (silences its warning at each reconnect). No task is acks_late,
    # so a connection loss cancels nothing.
    worker_cancel_long_running_tasks_on_connection_loss=True,
    task_default_queue=CONTROL_QUEUE,
    task_routes={"automation.*": {"queue": CONTROL_QUEUE}},
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
    # A worker takes a slot only when one of its processes is free (Redis broker only).
    worker_disable_prefetch=True,
    # Runs last long: acknowledge on receipt so the Redis visibility timeout never redelivers
    # a running slot (a redelivered one would find its claim taken and return anyway).
    task_acks_late=False,
    broker_transport_options=_transport_options(),
    beat_scheduler="automation.beat:Scheduler",
    timezone="UTC",
)
