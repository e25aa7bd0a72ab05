"""Tick retention (runs/retention.py, manage.py compact_ticks): an old run's per-second rows compacted to
per-minute ones, with its counts exact and its reports, charts and comparison evidence still working."""

import csv
import datetime as dt
import io
import math
import random

import pytest
from django.core.management import call_command
from django.utils import timezone

from runs import evidence, reports, retention, tick_series
from runs.models import Run, RunTick

SECONDS = 3_725   # 62 whole minutes and 5 seconds
PERCENTILES = 11


def cumulative_row(method, name, count, failures, rng):
    values = sorted(round(rng.uniform(5, 500), 4) for _ in range(PERCENTILES))
    return [method, name, count, failures, round(rng.uniform(10, 50), 4), 1.0, values[-1], 120.0, *values]


def make_run(scenario, *, ended_days_ago=10, status=Run.Status.FINISHED, seconds=SECONDS, seed=3):
    """A run with a row per second (a few missing): GET /a every second, POST /b every other second."""
    rng = random.Random(seed)
    ended = timezone.now() - dt.timedelta(days=ended_days_ago)
    run = Run.objects.create(
        project=scenario.project, scenario=scenario, version=scenario.current_version, status=status,
        params={"users": 10, "spawn_rate": 1, "duration": seconds, "host": "http://shop.test", "slots": 1},
        started_at=ended - dt.timedelta(seconds=seconds), ended_at=ended)
    rows, totals = [], {"a": [0, 0], "b": [0, 0]}
    for t in range(seconds):
        if t % 97 == 13:
            continue   # a second without a row
        a = rng.randint(5, 20)
        b = rng.randint(1, 4) if t % 2 == 0 else 0
        fails = rng.choice([0, 0, 1])
        totals["a"][0] += a
        totals["a"][1] += fails
        changed = [cumulative_row("GET", "/a", totals["a"][0], totals["a"][1], rng)]
        endpoints = {"GET /a": {"rps": float(a), "fails_per_s": float(fails), "p50_ms": rng.uniform(5, 20),
                                "p95_ms": rng.uniform(20, 90), "p99_ms": rng.uniform(90, 200),
                                "mean_ms": round(rng.uniform(5, 40), 4)}}
        if b:
            totals["b"][0] += b
            changed.insert(0, cumulative_row("POST", "/b", totals["b"][0], totals["b"][1], rng))
            endpoints["POST /b"] = {"rps": float(b), "fails_per_s": 0.0, "p50_ms": 50.0, "p95_ms": 60.0,
                                    "p99_ms": 70.0, "mean_ms": 52.0}
        aggregated = cumulative_row("", "Aggregated", totals["a"][0] + totals["b"][0], totals["a"][1], rng)
        rows.append(RunTick(run=run, tick=t, users=rng.randint(1, 10), rps=float(a + b), fails_per_s=float(fails),
                            p50_ms=rng.uniform(5, 20), p95_ms=rng.uniform(20, 90), p99_ms=rng.uniform(90, 200),
                            endpoints=endpoints, cumulative=[*sorted(changed, key=lambda r: (r[1], r[0])),
                                                             aggregated]))
    RunTick.objects.bulk_create(rows, batch_size=1000)
    return run


def snapshot(run):
    return list(RunTick.objects.filter(run=run).order_by("tick").values())


def endpoint_count(ticks, name, key="rps"):
    return math.fsum((t["endpoints"].get(name) or {}).get(key, 0) * t["seconds"] for t in ticks)


def test_compaction_keeps_the_counts_exactly_and_the_highs(scenario):
    run = make_run(scenario)
    before = snapshot(run)
    removed, written = retention.compact_run(run.pk)
    after = snapshot(run)
    assert removed == len(before) and written == len(after) == 63
    assert [(t["tick"], t["seconds"]) for t in after[:2]] == [(0, 60), (60, 60)]
    assert (after[-1]["tick"], after[-1]["seconds"]) == (3720, 5)
    for key in ("rps", "fails_per_s"):
        assert math.fsum(t[key] * t["seconds"] for t in after) == pytest.approx(
            math.fsum(t[key] for t in before), rel=1e-12)
    for name in ("GET /a", "POST /b"):
        assert endpoint_count(after, name) == pytest.approx(endpoint_count(before, name), rel=1e-12)
    for key in ("users", "p95_ms", "p99_ms"):
        assert max(t[key] for t in after) == max(t[key] for t in before)
    minute = [t for t in before if 60 <= t["tick"] < 120]
    weighted = math.fsum(t["endpoints"]["GET /a"]["mean_ms"] * t["endpoints"]["GET /a"]["rps"] for t in minute)
    assert after[1]["endpoints"]["GET /a"]["mean_ms"] == pytest.approx(
        weighted / math.fsum(t["endpoints"]["GET /a"]["rps"] for t in minute), abs=1e-4)
    assert after[1]["endpoints"]["POST /b"]["p99_ms"] == 70.0
    assert retention.compact_run(run.pk) == (0, 0)   # nothing left to compact


def history_rows(run):
    return list(csv.reader(io.StringIO(reports.stats_history_csv(run))))[1:]


def test_the_stats_history_csv_keeps_each_minutes_end(scenario):
    run = make_run(scenario)
    start = int(run.started_at.timestamp())
    before = history_rows(run)
    last_second = {}
    for row in before:   # each minute's last recorded second, per endpoint
        last_second[((int(row[0]) - start) // 60, row[2], row[3])] = row
    retention.compact_run(run.pk)
    after = history_rows(run)
    assert len(after) == len({minute for minute, _, _ in last_second}) * 3   # /b, /a, Aggregated each minute
    for row in after:
        minute = (int(row[0]) - start) // 60
        assert row[6:] == last_second[(minute, row[2], row[3])][6:]   # percentiles and totals through its end
    assert after[-1][6:] == before[-1][6:]


def test_the_charts_series_keeps_its_area_after_compaction(scenario):
    run = make_run(scenario, seconds=9_000)
    whole, width = tick_series.run_series(run.pk, max_points=100)
    every = snapshot(run)
    retention.compact_run(run.pk)
    compacted, compacted_width = tick_series.run_series(run.pk, max_points=100)
    assert width == compacted_width == 90 and len(compacted["tick"]) == 100
    assert compacted["tick"] == whole["tick"]
    assert math.fsum(v * 90 for v in compacted["rps"]) == pytest.approx(math.fsum(v * 90 for v in whole["rps"]),
                                                                        rel=1e-9)
    assert max(compacted["p99_ms"]) == max(whole["p99_ms"]) and max(compacted["users"]) == max(whole["users"])
    # Buckets finer than a minute: the per-minute rows as they are, at the minute's rates.
    minutes, minutes_width = tick_series.run_series(run.pk)
    assert minutes_width == 60 and minutes["tick"] == list(range(0, 9_000, 60))
    assert minutes["rps"][1] == pytest.approx(
        math.fsum(t["rps"] for t in every if 60 <= t["tick"] < 120) / 60, rel=1e-12)


def test_comparison_evidence_reads_a_compacted_run_at_its_minutes_rates(scenario):
    run = make_run(scenario)
    keys = [("GET", "/a"), evidence.AGGREGATED_KEY]
    before = evidence.per_second(run.pk, keys)
    retention.compact_run(run.pk)
    after = evidence.per_second(run.pk, keys)
    for key in keys:
        old, new = before[key]["rps"], after[key]["rps"]
        assert len(new.means) == len(old.means) and new.width == old.width
        # Each batch now averages minute rates instead of 4 of its seconds: the run's mean rate stays.
        assert sum(new.means) / len(new.means) == pytest.approx(sum(old.means) / len(old.means), rel=0.05)
        assert min(new.means) > 0


def test_only_runs_ended_before_the_retention_are_compacted(scenario, settings):
    old = make_run(scenario, seconds=300)
    recent = make_run(scenario, seconds=300, ended_days_ago=1)
    running = make_run(scenario, seconds=300, status=Run.Status.RUNNING)
    assert list(retention.runs_to_compact(7)) == [old]

    settings.SWARMDECK_TICK_RETENTION_DAYS = 0
    out = io.StringIO()
    call_command("compact_ticks", stdout=out)
    assert "retention is off" in out.getvalue() and RunTick.objects.filter(run=old, seconds=60).count() == 0

    settings.SWARMDECK_TICK_RETENTION_DAYS = 7
    call_command("compact_ticks", stdout=io.StringIO())
    assert RunTick.objects.filter(run=old).count() == 5
    assert RunTick.objects.filter(run=recent, seconds=1).count() == RunTick.objects.filter(run=recent).count() > 290
    assert RunTick.objects.filter(run=running, seconds=1).count() > 290
    assert list(retention.runs_to_compact(7)) == []
