"""The Prometheus exposition of exported runs, produced by prometheus_client from a custom collector.

Families (every series labelled project, scenario, run and the run's label_* labels):
- swarmdeck_run_info{status} 1: one per exported run, whatever its figures;
- swarmdeck_run_users: users running now (0 once the run ended);
- swarmdeck_run_endpoints_truncated: 1 when the run had more endpoint names than the cap;
- per endpoint (method, name): swarmdeck_run_requests_total, swarmdeck_run_failures_total and the
  histogram swarmdeck_run_response_time_seconds (buckets on metrics.figures.LE_BOUNDS_SECONDS; its
  count is the requests that had a response time). No "Aggregated" series: sum() over endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from metrics.figures import LE_BOUNDS_SECONDS, RunFigures, exported_runs

RUN_LABELS = ("project", "scenario", "run")
ENDPOINT_LABELS = ("method", "name")
_LE = tuple(floatToGoString(bound) for bound in LE_BOUNDS_SECONDS)


class RunsCollector(Collector):
    """Yields one set of metric families per scrape, from `source` (the database by default)."""

    def __init__(self, source: Callable[[], list[RunFigures]] = exported_runs):
        self.source = source

    def collect(self) -> Iterator[Metric]:
        runs = self.source()
        # One list of label names per family: every run label any exported run has. A run without one
        # has it empty, which Prometheus treats as absent.
        run_labels = sorted({name for run in runs for name in run.labels})
        per_run = [*RUN_LABELS, *run_labels]
        per_endpoint = [*per_run, *ENDPOINT_LABELS]
        info = GaugeMetricFamily("swarmdeck_run_info", "A run exported now; its status as a label.",
                                 labels=[*per_run, "status"])
        users = GaugeMetricFamily("swarmdeck_run_users", "Users running now.", labels=per_run)
        truncated = GaugeMetricFamily("swarmdeck_run_endpoints_truncated",
                                      "1 when the run had more endpoint names than the cap; the rest count as (other).",
                                      labels=per_run)
        requests = CounterMetricFamily("swarmdeck_run_requests", "Requests made, per endpoint.", labels=per_endpoint)
        failures = CounterMetricFamily("swarmdeck_run_failures", "Requests that failed, per endpoint.",
                                       labels=per_endpoint)
        latency = HistogramMetricFamily("swarmdeck_run_response_time_seconds",
                                        "Response times, per endpoint (untimed requests are not in it).",
                                        labels=per_endpoint, unit="seconds")
        for run in runs:
            values = [run.project, run.scenario, str(run.run_id), *(run.labels.get(name, "") for name in run_labels)]
            info.add_metric([*values, run.status], 1)
            users.add_metric(values, run.users)
            truncated.add_metric(values, int(run.endpoints_truncated))
            for endpoint in run.endpoints:
                labels = [*values, endpoint.method, endpoint.name]
                requests.add_metric(labels, endpoint.requests)
                failures.add_metric(labels, endpoint.failures)
                latency.add_metric(labels, [*zip(_LE, endpoint.cumulative), ("+Inf", endpoint.timed)],
                                   sum_value=endpoint.seconds_sum)
        yield from (info, users, truncated, requests, failures, latency)


def exposition(accept: str | None, source: Callable[[], list[RunFigures]] = exported_runs) -> tuple[bytes, str]:
    """The scrape body and its content type, in the format the scraper asked for (text or OpenMetrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RunsCollector(source))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
