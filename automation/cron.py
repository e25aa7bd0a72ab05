"""Cron expressions as Celery understands them: validation that names the wrong field, and the
next fire times shown on the scenario page.

Celery's crontab (what django-celery-beat fires) parses each field; a fire time must match the
month, the day of the month *and* the day of the week (Celery's rule, unlike Vixie cron's OR).
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from celery.schedules import crontab, crontab_parser

# (name, parser bounds) in the order of "minute hour day-of-month month day-of-week".
FIELDS = (
    ("minute", "minute", 60, 0),
    ("hour", "hour", 24, 0),
    ("day of month", "day_of_month", 31, 1),
    ("month", "month_of_year", 12, 1),
    ("day of week", "day_of_week", 7, 0),
)
PRESETS = {
    "hourly": "0 * * * *",
    "nightly": "0 2 * * *",
    "weekly": "0 2 * * 1",
}


class CronError(ValueError):
    """An invalid expression; the message names the field that is wrong."""


def split(expression: str) -> dict:
    """{"minute": ..., "hour": ..., "day_of_month": ..., "month_of_year": ..., "day_of_week": ...}."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise CronError(f"A cron expression has 5 fields (minute hour day-of-month month day-of-week); "
                        f"“{expression.strip()}” has {len(parts)}.")
    fields = {}
    for (label, key, maximum, minimum), part in zip(FIELDS, parts):
        try:
            values = crontab_parser(maximum, minimum).parse(part)
        except Exception as error:  # crontab_parser raises ValueError or ParseException
            low, high = minimum, maximum - 1 + minimum
            problem = str(error).rstrip(".")
            raise CronError(f"The {label} field “{part}” is invalid: {problem} (allowed {low}-{high}).") from None
        if not values or any(not minimum <= value <= maximum - 1 + minimum for value in values):
            raise CronError(f"The {label} field “{part}” is out of range "
                            f"({minimum}-{maximum - 1 + minimum}).")
        fields[key] = part
    try:
        crontab(**fields)  # whole-expression checks, e.g. a day of month that never occurs in those months
    except ValueError as error:
        raise CronError(f"The day of month field “{fields['day_of_month']}” never occurs in month "
                        f"“{fields['month_of_year']}”: {str(error).rstrip('.')}.") from None
    return fields


def parse(expression: str) -> crontab:
    return crontab(**split(expression))


def check_timezone(name: str) -> ZoneInfo:
    if name not in available_timezones():
        raise CronError(f"“{name}” is not a time zone name such as UTC or Europe/Paris.")
    return ZoneInfo(name)


def next_fire_times(expression: str, tz_name: str, now: datetime, count: int = 5) -> list[datetime]:
    """The next `count` fire times after `now`, aware, in the schedule's time zone.

    Wall-clock times that do not exist (the hour skipped when clocks go forward) are left out.
    """
    cron = parse(expression)
    tz = check_timezone(tz_name)
    local_now = now.astimezone(tz)
    minutes, hours = sorted(cron.minute), sorted(cron.hour)
    found: list[datetime] = []
    day = local_now.date()
    last_day = day + timedelta(days=366 * 8)  # "29 Feb" fires every 4 years (8 across 2100); "31 Feb" never
    while day <= last_day and len(found) < count:
        if _fires_on(cron, day):
            for hour in hours:
                for minute in minutes:
                    moment = _local(day, hour, minute, tz)
                    if moment is not None and moment > local_now:
                        found.append(moment)
                        if len(found) == count:
                            return found
        day += timedelta(days=1)
    return found


def _fires_on(cron: crontab, day: date) -> bool:
    sunday_is_zero = day.isoweekday() % 7
    return day.month in cron.month_of_year and day.day in cron.day_of_month and sunday_is_zero in cron.day_of_week


def _local(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime | None:
    moment = datetime.combine(day, time(hour, minute), tzinfo=tz)
    round_trip = moment.astimezone(ZoneInfo("UTC")).astimezone(tz)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        return None  # does not exist on that day in that zone
    return moment
