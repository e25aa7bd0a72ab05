"""What /metrics and the OTLP export publish: every exported run's live figures, read from the database.

The collector keeps each live run's mergeable statistics in Run.stats_blob (workers.stats.RunStats);
this module reads all exported runs in one query and decodes their blobs with the real RunStats, so
the counts are exactly those of the run page. Endpoints are capped as in the endpoint table: at most
the run's cap of names (SWARMDECK_MAX_ENDPOINTS, 500 by default), later names counted as "(other)"
(RunStats folds them).

Latency buckets: Swarmdeck's histogram has 3,328 fine buckets (0.39 % wide); an exporter needs a
fixed, small set of bounds so series stay stable. Each fine bucket counts under every bound at or
above its lowest value: a bound's count misses no request at or under it, and may include requests
at most 0.39 % above it (workers.stats.RELATIVE_ERROR x 2: a fine bucket's width).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from runs.models import Run
from workers import stats as run_stats

# Upper bounds (seconds) of the exported latency buckets, +Inf implied. Changing them changes every series.
LE_BOUNDS_SECONDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
# How many fine buckets start at or under each bound (bounds are whole µs): cumulative counts are read there.
_CUTS = np.array([run_stats.bucket_of(round(bound * 1e6)) + 1 for bound in LE_BOUNDS_SECONDS])

RUN_LABEL_PREFIX = "label_"
_NOT_IN_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True)
class EndpointFigures:
    """One endpoint of a run: counters and its latency histogram on LE_BOUNDS_SECONDS."""

    method: str
    name: str
    requests: int
    failures: int
    timed: int                  # requests with a response time: the histogram's count
    seconds_sum: float          # their response times added up
    min_seconds: float | None   # the fastest and slowest of them (None: no timed request)
    max_seconds: float | None
    cumulative: tuple[int, ...]  # requests at or under each bound of LE_BOUNDS_SECONDS


@dataclass(frozen=True, slots=True)
class RunFigures:
    """One exported run: who it belongs to, its labels, users and endpoints."""

    run_id: int
    project: str
    scenario: str
    status: str
    labels: dict[str, str]       # the run's own labels, as valid label names (label_<key>)
    users: int
    started_at: datetime | None
    endpoints_truncated: bool    # more endpoint names than the cap: the rest are "(other)"
    endpoints: list[EndpointFigures] = field(default_factory=list)


def label_names(labels: dict) -> dict[str, str]:
    """A run's labels as Prometheus label names and string values: `label_` + the key with every
    character outside [A-Za-z0-9_] replaced by "_". Keys that end up equal keep the first in key
    order. Values that are not strings are written as JSON."""
    result: dict[str, str] = {}
    for key in sorted(labels or {}, key=str):
        value = labels[key]
        name = RUN_LABEL_PREFIX + _NOT_IN_LABEL_NAME.sub("_", str(key))
        if name not in result:
            result[name] = value if isinstance(value, str) else json.dumps(value)
    return result


def cumulative_counts(histograms: np.ndarray) -> np.ndarray:
    """Rows of dense workers.stats histograms -> their cumulative counts at each LE_BOUNDS_SECONDS bound."""
    if len(histograms) == 0:
        return np.zeros((0, len(LE_BOUNDS_SECONDS)), dtype=np.uint64)
    running = np.cumsum(histograms, axis=1, dtype=np.uint64)
    return running[:, _CUTS - 1]


def endpoint_figures(blob: bytes | None) -> tuple[list[EndpointFigures], bool]:
    """The endpoints of a stats blob, in the order they first appeared, and whether the cap bit."""
    if not blob:
        return [], False
    merged = run_stats.RunStats.from_bytes(bytes(blob))
    endpoints = merged.endpoints
    histograms = np.array([merged.endpoint_histogram(e.method, e.name) for e in endpoints], dtype=np.uint64)
    cumulative = cumulative_counts(histograms.reshape(len(endpoints), run_stats.NUM_BUCKETS))
    timed = histograms.sum(axis=1) if len(endpoints) else []
    rows = [EndpointFigures(e.method, e.name, e.count, e.failures, int(n), e.total_us / 1e6, _seconds(e.min_us),
                            _seconds(e.max_us), tuple(map(int, counts)))
            for e, n, counts in zip(endpoints, timed, cumulative.tolist())]
    return rows, merged.overflowed


def _seconds(us: int | None) -> float | None:
    return None if us is None else us / 1e6


def exported_runs(now: datetime | None = None) -> list[RunFigures]:
    """Every active run, and every run that ended in the last SWARMDECK_METRICS_ENDED_GRACE seconds
    (so the scrape after its end still sees its final counts), in one query."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SWARMDECK_METRICS_ENDED_GRACE)
    runs = (Run.objects.filter(Q(status__in=Run.ACTIVE) | Q(ended_at__gte=cutoff))
            .select_related("project", "scenario").order_by("id")
            .only("id", "status", "labels", "current_users", "started_at", "stats_blob",
                  "project__slug", "scenario__name"))
    result = []
    for run in runs:
        endpoints, truncated = endpoint_figures(run.stats_blob)
        result.append(RunFigures(
            run_id=run.pk, project=run.project.slug, scenario=run.scenario.name, status=run.status,
            labels=label_names(run.labels), users=run.current_users if run.status in Run.ACTIVE else 0,
            started_at=run.started_at, endpoints_truncated=truncated, endpoints=endpoints))
    return result
