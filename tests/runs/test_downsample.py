"""runs/downsample.py: long series cut to at most N buckets, exact in aggregate."""

import math
import random

import pytest

from runs.downsample import aggregate, bucket_width, covered_seconds, downsample


def tick(t, users=10, rps=5.0, fails=0.0, p50=10.0, p95=20.0, p99=30.0):
    return {"tick": t, "users": users, "rps": rps, "fails_per_s": fails, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def random_run(seconds, seed=1, start=0):
    rng = random.Random(seed)
    rows = []
    for t in range(start, start + seconds):
        if rng.random() < 0.02:
            continue   # a second without a row
        p50 = None if rng.random() < 0.01 else rng.uniform(5, 50)
        rows.append(tick(t, users=rng.randint(0, 500), rps=rng.choice([0.0, rng.uniform(0, 300)]),
                         fails=rng.uniform(0, 3), p50=p50, p95=None if p50 is None else p50 * 2,
                         p99=None if p50 is None else p50 * 3))
    return rows


def area(series, key, first, last, width):
    """The series' value x seconds covered, summed over its points."""
    return math.fsum(value * covered_seconds(t // width, width, first, last)
                     for t, value in zip(series["tick"], series[key]))


@pytest.mark.parametrize("seconds,start", [(604_800, 0), (10_001, 0), (7_777, 13), (2_001, 0)])
def test_it_never_makes_more_than_n_points(seconds, start):
    first, last = start, start + seconds - 1
    width = bucket_width(first, last, 2000)
    assert last // width - first // width + 1 <= 2000
    assert width == 1 or last // (width - 1) - first // (width - 1) + 1 > 2000   # the smallest such width


def test_requests_and_failures_are_preserved_exactly():
    rows = random_run(50_000)
    series, width = downsample(rows, 2000)
    assert width == 25 and len(series["tick"]) <= 2000
    first, last = rows[0]["tick"], rows[-1]["tick"]
    assert area(series, "rps", first, last, width) == pytest.approx(math.fsum(r["rps"] for r in rows), rel=1e-12)
    assert area(series, "fails_per_s", first, last, width) == pytest.approx(
        math.fsum(r["fails_per_s"] for r in rows), rel=1e-12)


def test_a_partial_last_bucket_counts_only_its_seconds():
    # 5 seconds of 10 rps, 2 points at most: width 3, buckets 0..2 and 3..4 (2 seconds).
    series, width = downsample([tick(t, rps=10.0) for t in range(5)], 2)
    assert width == 3
    assert series["tick"] == [0, 3]
    assert series["rps"] == [10.0, 10.0]


def test_seconds_without_a_row_count_as_no_requests():
    series, width = downsample([tick(0, rps=8.0), tick(3, rps=4.0)], 1)
    assert width == 4
    assert series["rps"] == [3.0]   # 12 requests over 4 seconds


def test_extremes_are_kept():
    rows = random_run(30_000, seed=7)
    series, width = downsample(rows, 1000)
    assert max(series["users"]) == max(r["users"] for r in rows)
    assert min(series["users_min"]) == min(r["users"] for r in rows)
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        present = [r[key] for r in rows if r[key] is not None]
        assert max(v for v in series[key] if v is not None) == max(present)
        assert min(v for v in series[f"{key}_min"] if v is not None) == min(present)


def test_each_bucket_holds_its_seconds_max_and_min():
    rows = [tick(0, users=3, p95=100.0), tick(1, users=9, p95=None), tick(2, users=5, p95=40.0),
            tick(3, users=1, p95=None), tick(4, users=2, p95=None)]
    series, width = downsample(rows, 2)
    assert width == 3
    assert series["users"] == [9, 2] and series["users_min"] == [3, 1]
    assert series["p95_ms"] == [100.0, None] and series["p95_ms_min"] == [40.0, None]


def test_a_short_run_comes_back_unchanged():
    rows = random_run(1_999, seed=3)
    series, width = downsample(rows, 2000)
    assert width == 1
    for key in ("tick", "users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms"):
        assert series[key] == [r[key] for r in rows]


def test_a_run_that_starts_late_is_clipped_to_its_first_tick():
    rows = [tick(t, rps=2.0) for t in range(10, 20)]
    series, width = downsample(rows, 3)
    assert width == 4   # buckets 8..11 (from 10: 2 seconds), 12..15 and 16..19
    assert series["tick"] == [10, 12, 16] and series["rps"] == [2.0, 2.0, 2.0]


def test_aggregate_groups_by_tick_over_width():
    buckets = aggregate([tick(0, rps=1.0), tick(1, rps=2.0), tick(2, rps=4.0)], 2)
    assert [(b["bucket"], b["requests"]) for b in buckets] == [(0, 3.0), (1, 4.0)]


def test_no_ticks_no_points():
    series, width = downsample([], 2000)
    assert width == 1 and series["tick"] == []
