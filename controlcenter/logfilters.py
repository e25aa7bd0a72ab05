"""Logging filters."""

import logging


class ShortClientErrors(logging.Filter):
    """A 403 or 404 is the client's business: log one line, not the traceback that raised it."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.name == "django.request" and status is not None and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
