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


@register.filter
def verdict_summary(run) -> str:
    """'2 of 3 criteria failed: p95 of total ≤ 500 ms (812.0 ms); ...' for a badge's title."""
    entries = run.verdict_details or []
    failed = [e for e in entries if e.get("aborted") or (e.get("applicable") and not e.get("passed"))]
    if not failed:
        return f"All {len(entries)} criteria passed" if len(entries) != 1 else "The criterion passed"
    listed = "; ".join(f"{e.get('criterion')} (measured {e.get('measured_text')})" for e in failed)
    return f"{len(failed)} of {len(entries)} criteria failed: {listed}"
