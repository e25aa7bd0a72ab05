"""Cron validation names the wrong field; next fire times agree with what Celery's crontab fires."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab

from automation import cron

NOW = datetime(2025, 3, 28, 16, 40, tzinfo=UTC)  # a Friday; Paris is on CET (+01:00)


@pytest.mark.parametrize("expression,field", [
    ("61 * * * *", "minute"),
    ("0 25 * * *", "hour"),
    ("0 0 0 * *", "day of month"),
    ("0 0 * 13 *", "month"),
    ("0 0 * * funday", "day of week"),
    ("*/0 * * * *", "minute"),
])
def test_it_names_the_invalid_field(expression, field):
    with pytest.raises(cron.CronError, match=f"The {field} field"):
        cron.split(expression)


def test_it_wants_five_fields():
    with pytest.raises(cron.CronError, match="has 5 fields.*has 4"):
        cron.split("0 2 * *")


def test_it_accepts_names_ranges_and_steps():
    assert cron.split("*/15 9-17 * jan-jun mon-fri")["day_of_week"] == "mon-fri"


def test_it_computes_the_next_five_across_a_weekend_and_a_dst_change():
    times = cron.next_fire_times("*/15 9-17 * * mon-fri", "Europe/Paris", NOW)
    assert [t.strftime("%a %H:%M %z") for t in times] == [
        "Fri 17:45 +0100",  # 16:40 UTC is 17:40 in Paris
        "Mon 09:00 +0200", "Mon 09:15 +0200", "Mon 09:30 +0200", "Mon 09:45 +0200",  # summer time since Sunday
    ]


def test_it_leaves_out_wall_times_that_do_not_exist():
    times = cron.next_fire_times("30 2 * * *", "Europe/Paris", datetime(2025, 3, 28, 12, tzinfo=UTC))
    assert [t.date().isoformat() for t in times] == ["2025-03-29", "2025-03-31", "2025-04-01", "2025-04-02",
                                                     "2025-04-03"]  # no 02:30 on 30 March


def test_it_uses_the_schedule_time_zone_for_presets():
    times = cron.next_fire_times(cron.PRESETS["weekly"], "America/New_York", NOW)
    assert times[0] == datetime(2025, 3, 31, 2, 0, tzinfo=ZoneInfo("America/New_York"))
    assert [t - times[0] for t in times] == [timedelta(weeks=n) for n in range(5)]


def test_it_finds_rare_dates():
    times = cron.next_fire_times("0 0 29 2 *", "UTC", NOW, count=2)
    assert [t.year for t in times] == [2028, 2032]
    with pytest.raises(cron.CronError, match="day of month field “31” never occurs"):
        cron.split("0 0 31 2 *")  # each field is valid, the date never comes


@pytest.mark.parametrize("expression", ["*/15 9-17 * * mon-fri", "0 2 * * 1", "5 */6 1,15 * *"])
def test_it_agrees_with_celery_about_when_each_time_is_due(expression):
    """Celery's crontab (what beat runs) says each computed time is due, and a second before it is not."""
    times = cron.next_fire_times(expression, "UTC", NOW)
    previous = NOW
    for moment in times:
        fields = cron.split(expression)
        at_time = crontab(**fields, nowfun=lambda m=moment: m)
        before = crontab(**fields, nowfun=lambda m=moment: m - timedelta(seconds=1))
        assert at_time.is_due(previous).is_due, (expression, moment)
        assert not before.is_due(previous).is_due, (expression, moment)
        previous = moment
