"""The Celery app: `celery -A controlcenter worker -Q loadgen` and `celery -A controlcenter beat`.

A load worker on another machine has REDIS_URL and nothing else: this module must not need
Django settings, a database or a secret. Only beat (DJANGO_SETTINGS_MODULE set, for
django-celery-beat's database scheduler) and the control worker (`-Q control`: fires schedules,
delivers webhooks) configure Django, through Celery's Django fix-up; automation's AppConfig then
registers the control tasks.
"""

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


app = Celery("controlcenter", include=["workers.tasks"])
app.conf.update(
    broker_url=resolve_redis_url(),
    broker_connection_retry_on_startup=True,
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
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    timezone="UTC",
)
