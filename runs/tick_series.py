"""A run's chart series read from its RunTick rows, downsampled in the database when long.

A run (or a window of it) spanning more than `max_points` seconds is read as one aggregate
query grouped by tick // width (runs/downsample.py says what a bucket holds and what is exact),
so a 7-day run's 604,800 rows never reach Python; a shorter one is read second by second,
unchanged. Used by the live page's full state (runs/live.py) and its zoom (runs/views.py).

That query still visits every row's index entry (about 1 s for 7 days on SQLite), so an ended
long run's first paint is read once, when it finishes (the collector, runs/lifecycle.py) or at its
first view, and kept in RunSeries: its ticks no longer change (runs/evidence.py caches its batches
so). Pages read that row, and their process caches it.
"""

from __future__ import annotations

from django.db.models import ExpressionWrapper, F, FloatField, IntegerField, Max, Min, Sum

from runs.downsample import MAX_POINTS, Bucket, bucket_width, empty_series, series_of_buckets
from runs.models import Run, RunSeries, RunTick

SERIES_KEYS = ("users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms")
CACHE_SECONDS = 24 * 3600


def first_paint(run: Run) -> tuple[dict[str, list], int]:
    """run_series() of the whole run; for a long run that ended, the series kept in RunSeries (read once, when it
    finished or at its first view) and cached."""
    if run.status not in Run.TERMINAL or not run.stats_updated_at:
        return run_series(run.pk)
    from django.core.cache import cache

    name = f"swarmdeck:first-paint:v1:{run.pk}:{run.stats_updated_at.timestamp()}"
    found = cache.get(name)
    if found is None:
        found = kept(run)
        if found[1] > 1:   # a short run is read as fast as from the cache
            cache.set(name, found, CACHE_SECONDS)
    return found


def kept(run: Run) -> tuple[dict[str, list], int]:
    """The ended run's whole series from RunSeries, read from its ticks and kept there when it is long (a
    point per several seconds) and not kept yet for its latest statistics."""
    stored = RunSeries.objects.filter(run_id=run.pk, stats_updated_at=run.stats_updated_at).values_list(
        "series", "width").first()
    if stored is not None:
        return stored[0], stored[1]
    series, width = run_series(run.pk)
    if width > 1:
        RunSeries.objects.update_or_create(run_id=run.pk, defaults={
            "stats_updated_at": run.stats_updated_at, "width": width, "series": series})
    return series, width


def run_series(run_id: int, max_points: int = MAX_POINTS, start: int | None = None,
               end: int | None = None) -> tuple[dict[str, list], int]:
    """The run's series from tick `start` to `end` (inclusive; None: the run's first/last) and the
    width of its points in seconds (1: every second as recorded)."""
    ticks = RunTick.objects.filter(run_id=run_id).order_by()
    if start is not None:
        ticks = ticks.filter(tick__gte=start)
    if end is not None:
        ticks = ticks.filter(tick__lte=end)
    bounds = ticks.aggregate(first=Min("tick"), last=Max(F("tick") + F("seconds") - 1), coarsest=Max("seconds"))
    if bounds["first"] is None:
        return {"tick": [], **{key: [] for key in SERIES_KEYS}}, 1
    first, last, coarsest = bounds["first"], bounds["last"], bounds["coarsest"]
    width = bucket_width(first, last, max_points)
    if width <= coarsest:
        # Rows as recorded: every second, or per-minute rows (runs/retention.py) when buckets would be finer.
        rows = list(ticks.order_by("tick").values_list("tick", *SERIES_KEYS))
        return {key: [row[i] for row in rows] for i, key in enumerate(("tick", *SERIES_KEYS))}, coarsest
    bucket = ExpressionWrapper(F("tick") / width, output_field=IntegerField())
    buckets: list[Bucket] = list(
        ticks.annotate(bucket=bucket).values("bucket").annotate(
            users_max=Max("users"), users_min=Min("users"),
            # A compacted row (runs/retention.py) stands for `seconds` seconds at its average rates.
            requests=Sum(ExpressionWrapper(F("rps") * F("seconds"), output_field=FloatField())),
            failures=Sum(ExpressionWrapper(F("fails_per_s") * F("seconds"), output_field=FloatField())),
            p50_max=Max("p50_ms"), p50_min=Min("p50_ms"), p95_max=Max("p95_ms"), p95_min=Min("p95_ms"),
            p99_max=Max("p99_ms"), p99_min=Min("p99_ms"),
        ).order_by("bucket"))
    return (series_of_buckets(buckets, width, first, last) if buckets else empty_series()), width
