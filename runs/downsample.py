"""Per-second time series of a long run cut down to at most N points for a chart's first paint.

Pure (no Django): runs/live.py computes the same buckets in the database (one aggregate query
grouped by tick // width) and this module is the reference for what a bucket holds, and does
it in Python for series already in memory.

Buckets are `width` seconds wide, aligned on multiples of `width` (bucket b holds ticks
b*width .. b*width + width - 1) and clipped to the run's first and last tick; a bucket's
point sits at its first covered second. What is exact in aggregate:

- rps and fails_per_s: the bucket's requests (failures) over the seconds it covers, seconds
  without a row counting as none. So each bucket's area (value x seconds) is exactly the
  requests (failures) of its seconds, and the series' area is the run's total, exactly. A row
  compacted to per-minute (`seconds` > 1, runs/retention.py) brings its rate x seconds, all in
  the bucket of its first second: the total stays exact.
- users: the bucket's maximum, and its minimum in `users_min`: both exact.
- p50_ms, p95_ms, p99_ms: the highest per-second percentile in the bucket, and the lowest in
  `*_min`. These bound every second's figure exactly; they are not the percentile of the
  bucket's requests (the ticks keep percentiles, not histograms, so that cannot be merged).
  Seconds without responses (None) are left out; a bucket with none is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypedDict

MAX_POINTS = 2000
PERCENTILE_KEYS = ("p50_ms", "p95_ms", "p99_ms")
MIN_KEYS = ("users_min", "p50_ms_min", "p95_ms_min", "p99_ms_min")


class Bucket(TypedDict):
    """One bucket's sums and extremes as the database aggregate returns them (runs/live.py)."""

    bucket: int
    users_max: int
    users_min: int
    requests: float          # the sum of the seconds' rps
    failures: float          # the sum of the seconds' fails_per_s
    p50_max: float | None
    p50_min: float | None
    p95_max: float | None
    p95_min: float | None
    p99_max: float | None
    p99_min: float | None


def bucket_width(first: int, last: int, max_points: int = MAX_POINTS) -> int:
    """The smallest width (seconds) whose aligned buckets over ticks first..last number at most max_points."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    if last < first:
        return 1
    width = max(1, math.ceil((last - first + 1) / max_points))
    while last // width - first // width + 1 > max_points:
        width += 1
    return width


def covered_seconds(bucket: int, width: int, first: int, last: int) -> int:
    """How many of the run's seconds (first..last) bucket `bucket` of `width` covers."""
    return min((bucket + 1) * width, last + 1) - max(bucket * width, first)


def empty_series() -> dict[str, list]:
    keys = ("tick", "users", "rps", "fails_per_s", *PERCENTILE_KEYS, *MIN_KEYS)
    return {key: [] for key in keys}


def series_of_buckets(buckets: Iterable[Bucket], width: int, first: int, last: int) -> dict[str, list]:
    """The chart columns of aggregated buckets (sorted by bucket), with the *_min columns."""
    series = empty_series()
    for b in buckets:
        seconds = covered_seconds(b["bucket"], width, first, last)
        series["tick"].append(max(b["bucket"] * width, first))
        series["users"].append(b["users_max"])
        series["users_min"].append(b["users_min"])
        series["rps"].append(b["requests"] / seconds)
        series["fails_per_s"].append(b["failures"] / seconds)
        for key in PERCENTILE_KEYS:
            short = key.removesuffix("_ms")
            series[key].append(b[f"{short}_max"])
            series[f"{key}_min"].append(b[f"{short}_min"])
    return series


def _extreme(values: list[float | None], pick) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def aggregate(ticks: Iterable[Mapping], width: int) -> list[Bucket]:
    """What the database's GROUP BY tick // width computes, from tick rows in memory (sorted by bucket)."""
    grouped: dict[int, list[Mapping]] = {}
    for row in ticks:
        grouped.setdefault(row["tick"] // width, []).append(row)
    buckets: list[Bucket] = []
    for number in sorted(grouped):
        rows = grouped[number]
        bucket: Bucket = {
            "bucket": number, "users_max": max(r["users"] for r in rows), "users_min": min(r["users"] for r in rows),
            "requests": math.fsum(r["rps"] * r.get("seconds", 1) for r in rows),
            "failures": math.fsum(r["fails_per_s"] * r.get("seconds", 1) for r in rows),
            "p50_max": None, "p50_min": None, "p95_max": None, "p95_min": None, "p99_max": None, "p99_min": None,
        }
        for key in PERCENTILE_KEYS:
            short = key.removesuffix("_ms")
            values = [r[key] for r in rows]
            bucket[f"{short}_max"] = _extreme(values, max)  # type: ignore[literal-required]
            bucket[f"{short}_min"] = _extreme(values, min)  # type: ignore[literal-required]
        buckets.append(bucket)
    return buckets


def downsample(ticks: list[Mapping], max_points: int = MAX_POINTS) -> tuple[dict[str, list], int]:
    """Per-second tick rows (sorted by tick) as at most `max_points` points, and the width in seconds.

    A series of at most `max_points` seconds' span comes back unchanged (width 1, one point per row).
    """
    if not ticks:
        return empty_series(), 1
    first, last = ticks[0]["tick"], ticks[-1]["tick"]
    width = bucket_width(first, last, max_points)
    return series_of_buckets(aggregate(ticks, width), width, first, last), width
