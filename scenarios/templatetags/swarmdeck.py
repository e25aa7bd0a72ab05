from django import template
from django.template.defaultfilters import filesizeformat

from scenarios.durations import format_duration

register = template.Library()


@register.filter
def duration(seconds):
    """90 -> "1m30s", like Locust's -t."""
    return format_duration(int(seconds or 0))


@register.filter
def bytes_short(size):
    return filesizeformat(size).replace("\xa0", " ")


@register.filter
def caret(column):
    """A ^ under the given 1-based column of a quoted source line."""
    return " " * max(int(column or 1) - 1, 0) + "^"


@register.filter
def pairs(value):
    """(key, value) pairs of a list of pairs or of a mapping stored before pairs were used."""
    if isinstance(value, dict):
        return list(value.items())
    return [tuple(pair) for pair in value or ()]


@register.filter
def run_options(run):
    """A run's custom locustfile options (value or the default), secret values masked: scenarios.options.rows."""
    from scenarios.options import rows

    return rows(run.version.findings, run.params)


@register.filter
def schedule_options(schedule):
    """A schedule's locustfile options against the scenario's current version, secret values masked."""
    from scenarios.options import rows, secret_names

    version = schedule.scenario.current_version
    findings = version.findings if version is not None else {}
    values = dict(schedule.options or {})
    return rows(findings, {"options": values, "secret_options": secret_names(findings, values)})
