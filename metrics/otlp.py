"""OTLP export of the figures /metrics shows, from the collector, when OTEL_EXPORTER_OTLP_ENDPOINT is set.

The collector's `collect` command starts one OtlpExport: a thread that every
OTEL_METRIC_EXPORT_INTERVAL ms (default here 10,000, not the SDK's 60,000: a load test is short)
reads metrics.figures.exported_runs and sends it with opentelemetry-sdk's OTLP/HTTP (protobuf)
exporter, which reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout,
compression). Only the leading collector exports, so a standby does not send the same figures twice.

Metrics (cumulative, attributes project, scenario, run, method, name and label_<key> as in /metrics):
swarmdeck.run.requests and swarmdeck.run.failures (monotonic sums), swarmdeck.run.users (gauge),
swarmdeck.run.response_time (histogram in seconds, explicit bounds metrics.figures.LE_BOUNDS_SECONDS).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from django.db import connection
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from metrics.figures import LE_BOUNDS_SECONDS, RunFigures, exported_runs

log = logging.getLogger("swarmdeck.otlp")

DEFAULT_INTERVAL_MS = 10_000
SCOPE = InstrumentationScope("swarmdeck.metrics")


def metrics_data(runs: list[RunFigures], now_ns: int, resource: Resource | None = None) -> MetricsData:
    """The runs' figures as one OTLP batch; each run's cumulative series start at its go time."""
    requests, failures, users, latency = [], [], [], []
    for run in runs:
        identity = {"project": run.project, "scenario": run.scenario, "run": str(run.run_id), **run.labels}
        start = int(run.started_at.timestamp() * 1e9) if run.started_at else now_ns
        users.append(NumberDataPoint(identity, start, now_ns, run.users))
        for endpoint in run.endpoints:
            attributes = {**identity, "method": endpoint.method, "name": endpoint.name}
            requests.append(NumberDataPoint(attributes, start, now_ns, endpoint.requests))
            failures.append(NumberDataPoint(attributes, start, now_ns, endpoint.failures))
            cumulative = [*endpoint.cumulative, endpoint.timed]
            latency.append(HistogramDataPoint(
                attributes, start, now_ns, count=endpoint.timed, sum=endpoint.seconds_sum,
                bucket_counts=[cumulative[0], *(b - a for a, b in zip(cumulative, cumulative[1:]))],
                explicit_bounds=list(LE_BOUNDS_SECONDS), min=endpoint.min_seconds, max=endpoint.max_seconds))
    cumulative_kind = AggregationTemporality.CUMULATIVE
    metrics = [
        Metric("swarmdeck.run.requests", "Requests made, per endpoint.", "{request}",
               Sum(requests, cumulative_kind, is_monotonic=True)),
        Metric("swarmdeck.run.failures", "Requests that failed, per endpoint.", "{request}",
               Sum(failures, cumulative_kind, is_monotonic=True)),
        Metric("swarmdeck.run.users", "Users running now.", "{user}", Gauge(users)),
        Metric("swarmdeck.run.response_time", "Response times, per endpoint.", "s",
               Histogram(latency, cumulative_kind)),
    ]
    return MetricsData([ResourceMetrics(resource or Resource.create({"service.name": "swarmdeck"}),
                                        [ScopeMetrics(SCOPE, metrics, "")], "")])


class OtlpExport:
    """Sends the figures every `interval` seconds on its own thread, while `is_leading()` is true."""

    def __init__(self, exporter: MetricExporter, interval: float, is_leading: Callable[[], bool],
                 source: Callable[[], list[RunFigures]] = exported_runs):
        self.exporter = exporter
        self.interval = interval
        self.is_leading = is_leading
        self.source = source
        self.failing = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="swarmdeck-otlp", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """One last export (a run that just ended sends its final figures), then the exporter's shutdown."""
        self._stopping.set()
        self._thread.join(timeout)
        self.exporter.shutdown()

    def _loop(self) -> None:
        try:
            while not self._stopping.wait(self.interval):
                self.export_once()
            self.export_once()
        finally:
            connection.close()  # this thread's own database connection

    def export_once(self) -> bool:
        """One batch, if this collector leads; True when the receiver took it. Never raises: one
        log line when exports start failing, one when they work again."""
        if not self.is_leading():
            return False
        try:
            result = self.exporter.export(metrics_data(self.source(), time.time_ns()))
            ok = result is MetricExportResult.SUCCESS
            problem = "the receiver refused it or could not be reached"
        except Exception as error:  # noqa: BLE001 - the collector's loop must not die for its metrics
            connection.close()  # a database outage: reconnect next time
            ok, problem = False, f"{type(error).__name__}: {error}"
        if not ok and not self.failing:
            log.warning("OTLP export to %s failed (%s); retrying every %.0f s.", _endpoint(), problem, self.interval)
        elif ok and self.failing:
            log.info("OTLP export to %s works again.", _endpoint())
        self.failing = not ok
        return ok


def _endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def from_environment(is_leading: Callable[[], bool]) -> OtlpExport | None:
    """An OtlpExport (not started) when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._METRICS_ENDPOINT) is set, else None."""
    if not _endpoint():
        return None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    raw = os.environ.get("OTEL_METRIC_EXPORT_INTERVAL", "").strip()
    try:
        interval_ms = float(raw) if raw else DEFAULT_INTERVAL_MS
    except ValueError:
        raise ValueError(f"OTEL_METRIC_EXPORT_INTERVAL={raw!r} is not a number of milliseconds.") from None
    if interval_ms <= 0:
        raise ValueError(f"OTEL_METRIC_EXPORT_INTERVAL={raw!r} must be positive.")
    log.info("Exporting run metrics over OTLP to %s every %.1f s.", _endpoint(), interval_ms / 1000)
    return OtlpExport(OTLPMetricExporter(), interval_ms / 1000, is_leading)
