"""What a stored run holds for runs.significance: per endpoint, its histogram, counts and per-second rates.

The histograms come from the run's mergeable RunStats state (Run.stats_blob); the per-second
variation of each endpoint's figures from its RunTick rows over the steady seconds (one pass over
the rows; a run of an hour reads its 3,600 rows once per comparison).
Callers scope the runs to the user first; nothing here checks access.
"""

from __future__ import annotations

import bisect
import logging
import math
import statistics

from django.db.models import F, Max, Min

from runs.models import Run, RunTick
from runs.significance import MAX_BATCHES, EndpointSample, PerSecond
from workers.stats import AGGREGATE_NAME, RunStats

log = logging.getLogger("swarmdeck.runs")

AGGREGATED_KEY = ("", AGGREGATE_NAME)

Key = tuple[str, str]


def row_key(row: dict) -> Key:
    return (row.get("method") or "", row.get("name") or "")


TICK_FIGURES = {"rps": "rps", "p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms", "mean_ms": "mean_ms"}
LATENCY_FIGURES = ("p50", "p95", "p99", "mean_ms")


SECONDS_READ_PER_BATCH = 4   # a long run's batches are read from this many evenly spaced seconds each


def partial_ends(first: int, last: int) -> bool:
    """Whether a run recorded from second `first` to `last` is long enough (4 seconds) to leave out its first and
    last second, which are partial (users spawning, users stopping)."""
    return last - first + 1 >= 4


def seconds_to_read(first: int, last: int) -> tuple[list[int], int]:
    """The ticks to read and the seconds each batch spans: the steady seconds (all but the first and the
    last recorded once there are 4: users spawning, users stopping, the same in every run and partial),
    all of them up to MAX_BATCHES x SECONDS_READ_PER_BATCH, else that many evenly spaced in each of the
    MAX_BATCHES batches. A batch's mean from 4 of its seconds is a little noisier than from all of
    them, never less: the intervals only get wider, and an hour-long run reads 120 rows, not 3,600."""
    low, high = (first + 1, last - 1) if partial_ends(first, last) else (first, last)
    steady = high - low + 1
    if steady <= MAX_BATCHES * SECONDS_READ_PER_BATCH:
        return list(range(low, high + 1)), 1
    width = math.ceil(steady / MAX_BATCHES)
    ticks = []
    for start in range(low, high + 1, width):
        span = min(width, high + 1 - start)
        ticks.extend(sorted({start + (i * span) // SECONDS_READ_PER_BATCH for i in range(SECONDS_READ_PER_BATCH)}))
    return ticks, width


def per_second(run_id: int, keys: list[Key]) -> dict[Key, dict[str, PerSecond]]:
    """Per endpoint (and Aggregated) and figure, its per-second values as batch means (significance.PerSecond),
    over the seconds `seconds_to_read` picks.

    For response times, only the seconds in which the endpoint had at least half its usual (median)
    number of requests count. A second without a row, or without the endpoint in it, counts 0
    requests. The Aggregated mean of a second is the endpoints' means weighted by their requests.
    """
    bounds = RunTick.objects.filter(run_id=run_id).order_by().aggregate(
        first=Min("tick"), last=Max(F("tick") + F("seconds") - 1))
    if bounds["first"] is None:
        return {}
    ticks, width = seconds_to_read(bounds["first"], bounds["last"])
    position = {tick: at for at, tick in enumerate(ticks)}
    seconds = len(ticks)
    wanted = {f"{method} {name}": (method, name) for method, name in keys if (method, name) != AGGREGATED_KEY}
    every = [*wanted.values(), AGGREGATED_KEY]
    series = {key: {figure: [None] * seconds for figure in TICK_FIGURES} for key in every}
    for key in every:
        series[key]["rps"] = [0.0] * seconds
    aggregate = series[AGGREGATED_KEY]
    for tick, rps, p50, p95, p99, endpoints in _read_seconds(run_id, ticks, width):
        at = position[tick]
        aggregate["rps"][at], aggregate["p50"][at], aggregate["p95"][at], aggregate["p99"][at] = rps, p50, p95, p99
        weighted, timed = 0.0, 0.0
        for name, figures in (endpoints or {}).items():
            mean, count = figures.get("mean_ms"), figures.get("rps") or 0
            if mean is not None:
                weighted += mean * count
                timed += count
            key = wanted.get(name)
            if key is not None:
                for figure, field_name in TICK_FIGURES.items():
                    series[key][figure][at] = figures.get(field_name)
        aggregate["mean_ms"][at] = weighted / timed if timed else None
    per_batch = SECONDS_READ_PER_BATCH if width > 1 else 1
    found = {}
    for key, by_figure in series.items():
        counts = by_figure["rps"]
        usual = statistics.median([count for count in counts if count > 0] or [0])
        full = [count >= usual / 2 and count > 0 for count in counts]
        found[key] = {"rps": PerSecond.of(counts, per_batch=per_batch, width=width), **{
            figure: PerSecond.of([value if ok else None for value, ok in zip(by_figure[figure], full)], counts,
                                 per_batch=per_batch, width=width)
            for figure in LATENCY_FIGURES}}
    return found


def _read_seconds(run_id: int, ticks: list[int], width: int):
    """(tick, rps, p50, p95, p99, endpoints) of each of `ticks` (sorted) that has a row. A row compacted
    to per-minute (runs/retention.py) stands for each of its seconds, with the minute's average rates
    and its highest percentiles."""
    rows = RunTick.objects.filter(run_id=run_id).order_by("tick")
    figures = ("tick", "rps", "p50_ms", "p95_ms", "p99_ms", "endpoints")
    if not rows.filter(seconds__gt=1).exists():
        rows = rows.filter(tick__gte=ticks[0], tick__lte=ticks[-1]) if width == 1 else rows.filter(tick__in=ticks)
        yield from rows.values_list(*figures)
        return
    covering = rows.filter(tick__gt=ticks[0] - F("seconds"), tick__lte=ticks[-1])
    for start, seconds, *values in covering.values_list("tick", "seconds", *figures[1:]):
        for at in range(bisect.bisect_left(ticks, start), bisect.bisect_left(ticks, start + seconds)):
            yield (ticks[at], *values)


CACHE_SECONDS = 24 * 3600


def run_per_second(run: Run) -> dict[Key, dict[str, PerSecond]]:
    """per_second() of every endpoint of the run's totals. A run that ended never changes: its batches
    (at most 30 numbers a figure) are cached, so an hour-long run's 3,600 rows are read once."""
    keys = [row_key(row) for row in run.totals or []]
    if run.status not in Run.TERMINAL or not run.stats_updated_at:
        return per_second(run.pk, keys)
    from django.core.cache import cache

    name = f"swarmdeck:per-second:v1:{run.pk}:{run.stats_updated_at.timestamp()}"
    found = cache.get(name)
    if found is None:
        found = per_second(run.pk, keys)
        cache.set(name, found, CACHE_SECONDS)
    return found


def load_stats(run: Run) -> RunStats | None:
    """The run's merged statistics, or None when it kept none (or they cannot be read)."""
    blob = run.stats_blob
    if not blob:
        return None
    try:
        return RunStats.from_bytes(bytes(blob))
    except (ValueError, KeyError, TypeError):
        log.warning("Run %s: its statistics state could not be read; comparing it without intervals.", run.pk)
        return None


def samples(run: Run, keys: list[Key] | None = None, rates: bool = True) -> dict[Key, EndpointSample]:
    """EndpointSample per endpoint of the run's totals (only `keys` when given), Aggregated included;
    `rates=False` skips the per-second rows (for the latency figures only).

    Without a stored histogram the latency figures get no interval (NO_ESTIMATE), without
    RunTick rows the RPS gets none: those cells are "not judged", never flagged.
    """
    rows = {row_key(row): row for row in run.totals or []}
    wanted = [key for key in (keys if keys is not None else rows) if key in rows]
    stats = load_stats(run)
    by_name = {(e.method, e.name): e for e in stats.endpoints} if stats else {}
    rates = run_per_second(run) if rates else {}
    found = {}
    for key in wanted:
        row = rows[key]
        hist, total_us, low, high = None, 0, None, None
        if stats is not None and key == AGGREGATED_KEY:
            hist = stats.aggregate_histogram()
            timed = [e for e in stats.endpoints if e.min_us is not None]
            total_us = sum(e.total_us for e in stats.endpoints)
            low = min((e.min_us for e in timed), default=None)
            high = max((e.max_us for e in timed), default=None)
        elif key in by_name:
            entry = by_name[key]
            hist, total_us, low, high = stats.endpoint_histogram(*key), entry.total_us, entry.min_us, entry.max_us
        found[key] = EndpointSample(
            requests=int(row.get("requests") or 0), failures=int(row.get("failures") or 0), rps=row.get("rps"),
            hist=hist, total_us=total_us, min_us=low, max_us=high, per_second=rates.get(key, {}))
    return found
