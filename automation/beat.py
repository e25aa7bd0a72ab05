"""Beat's scheduler: django-celery-beat's, quiet through a broker outage.

Celery beat logs a full traceback for every fire it cannot publish; during a Redis outage with a
schedule every few seconds that is a wall of tracebacks. This one logs one line when publishing
starts failing and one when it works again. A fire that could not be published is lost, as it
would be with the stock scheduler; the schedule's next fire happens as usual.
"""

from __future__ import annotations

import logging
import time

from celery.beat import SchedulingError
from django_celery_beat.schedulers import DatabaseScheduler
from kombu.exceptions import OperationalError

log = logging.getLogger("swarmdeck.beat")


def _is_outage(error: BaseException) -> bool:
    while error is not None:
        if isinstance(error, (OperationalError, ConnectionError, TimeoutError, OSError)):
            return True
        error = error.__cause__ or error.__context__
    return False


class Scheduler(DatabaseScheduler):
    down_since: float | None = None
    missed = 0

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        try:
            result = super().apply_async(entry, producer, advance, **kwargs)
        except SchedulingError as error:
            if not _is_outage(error):
                raise
            self.missed += 1
            if self.down_since is None:
                self.down_since = time.monotonic()
                log.warning("Beat cannot reach the broker (%s); schedules firing meanwhile are missed.",
                            error.__cause__ or error)
            return None
        if self.down_since is not None:
            log.info("Beat reaches the broker again after %.0f s; %s fire(s) were missed.",
                     time.monotonic() - self.down_since, self.missed)
            self.down_since, self.missed = None, 0
        return result
