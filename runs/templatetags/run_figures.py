"""Small formatting filters for run figures in history rows and comparisons."""

from django import template

from runs.history import failure_percent

register = template.Library()


@register.filter
def failure_rate(run) -> str:
    """'1.25%' of a run's requests that failed, '—' before any request."""
    percent = failure_percent(run.total_failures, run.total_requests)
    return "—" if percent is None else f"{percent:.2f}%"


@register.filter
def run_duration(run) -> str:
    """How long the run has gone (or went): '1m30s', '—' before it started."""
    from scenarios.durations import format_duration

    elapsed = run.elapsed_seconds()
    return "—" if elapsed is None else format_duration(round(elapsed))
