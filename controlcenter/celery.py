"""The Celery app: `celery -A controlcenter worker -Q loadgen` and `celery -A controlcenter beat`.

A load worker on another machine has REDIS_URL and nothing else: this module must not need
Django settings, a database or a secret. Only beat (DJANGO_SETTINGS_MODULE set, for
django-celery-beat's database scheduler) configures Django, through Celery's Django fix-up.
"""

from celery import Celery

from controlcenter.env import resolve_redis_url

LOADGEN_QUEUE = "loadgen"

app = Celery("controlcenter")  # the run engine adds its slot task module here
app.conf.update(
    broker_url=resolve_redis_url(),
    broker_connection_retry_on_startup=True,
    task_default_queue="control",
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    timezone="UTC",
)
