"""Runs whose statistics are real workers.stats state, as the collector stores it, and scrapes of /metrics."""

from datetime import timedelta

from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from runs.models import Run
from workers.stats import Recorder, RunStats


def stored_run(scenario, requests, *, status=Run.Status.RUNNING, labels=None, users=3, ended_ago=None) -> Run:
    """A run of `scenario` whose stats_blob merged one snapshot of `requests`: (method, name, ms or None, failed)."""
    recorder = Recorder()
    for method, name, ms, failed in requests:
        recorder.record(method, name, ms, 10, "HTTPError('500 Server Error')" if failed else None)
    stats = RunStats()
    stats.apply(recorder.take_delta(run=1, slot=0, seq=1, tick=0, elapsed=1.0, users=users, cpu=1.0))
    now = timezone.now()
    return Run.objects.create(
        project=scenario.project, scenario=scenario, version=scenario.current_version, status=status,
        labels=labels or {}, stats_blob=stats.to_bytes(), current_users=users, started_at=now - timedelta(seconds=30),
        ended_at=None if ended_ago is None else now - timedelta(seconds=ended_ago))


def scrape(client, **headers) -> dict:
    """GET /metrics from loopback; the parsed families by name (prometheus_client's own parser)."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def samples(families: dict, metric: str, /, **labels) -> list:
    """Every sample named `name` (e.g. swarmdeck_run_requests_total) whose labels include `labels`."""
    return [sample for family in families.values() for sample in family.samples
            if sample.name == metric and labels.items() <= sample.labels.items()]


def value(families: dict, metric: str, /, **labels) -> float:
    found = samples(families, metric, **labels)
    assert len(found) == 1, f"{len(found)} samples of {metric} with {labels}"
    return found[0].value
