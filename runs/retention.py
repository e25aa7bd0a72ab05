"""Retention of per-second ticks: an ended run's RunTick rows, once it ended more than
SWARMDECK_TICK_RETENTION_DAYS ago, compacted to one row per minute (`manage.py compact_ticks`).

A compacted row starts at its minute's first second (the run's first tick in its first minute)
and stands for `seconds` seconds (60, fewer at the run's ends). What it keeps, per row and per
endpoint in `endpoints`:
- rps, fails_per_s: the minute's requests (failures) over its seconds, so rate x seconds is the
  minute's count exactly; every reader that adds seconds up multiplies by `seconds`.
- users and p50/p95/p99: the minute's highest (each second's own figure is gone);
- mean_ms: the minute's mean, weighted by each second's requests (exact);
- cumulative: the run through the minute's end (RunTick.cumulative is cumulative: the minute's
  last rows are exact), with every endpoint that had requests in the minute, as the stats history
  CSV carries rows forward (runs/reports.py), so its rows at each minute's end stay what they were.
Run totals, their histograms (Run.stats_blob) and verdicts do not come from ticks: unchanged.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, QuerySet
from django.utils import timezone

from runs.models import Run, RunTick

MINUTE = 60
CHUNK_MINUTES = 60          # minutes read, deleted and written per transaction
RATE_KEYS = ("rps", "fails_per_s")
FIELDS = ("id", "tick", "users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms", "endpoints", "cumulative")


def runs_to_compact(days: int, now: datetime | None = None) -> QuerySet[Run]:
    """Ended runs that ended more than `days` days ago and still have per-second rows."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    per_second = RunTick.objects.filter(run=OuterRef("pk"), seconds=1)
    return (Run.objects.filter(status__in=Run.TERMINAL, ended_at__lt=cutoff).filter(Exists(per_second))
            .order_by("pk"))


def _highest(values: list) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def merge_endpoints(seconds_rows: list[dict], seconds: int) -> dict:
    """The per-endpoint figures of one minute from its seconds' (module docstring)."""
    by_name: dict[str, list[dict]] = {}
    for endpoints in seconds_rows:
        for name, figures in (endpoints or {}).items():
            by_name.setdefault(name, []).append(figures)
    merged = {}
    for name, figures in by_name.items():
        entry: dict = {}
        for key in dict.fromkeys(k for f in figures for k in f):
            if key in RATE_KEYS:
                entry[key] = math.fsum(f.get(key) or 0 for f in figures) / seconds
            elif key == "mean_ms":
                timed = [(f["mean_ms"], f.get("rps") or 0) for f in figures if f.get("mean_ms") is not None]
                weight = math.fsum(count for _, count in timed)
                entry[key] = (round(math.fsum(m * c for m, c in timed) / weight, 4) if weight
                              else _highest([m for m, _ in timed]))
            else:
                entry[key] = _highest([f.get(key) for f in figures])
        merged[name] = entry
    return merged


def merge_cumulative(rows: list[list]) -> list:
    """One minute's cumulative rows: every endpoint's latest in the minute by (name, method), then the
    minute's last Aggregated row; [] when none of its seconds kept them."""
    latest: dict[tuple[str, str], list] = {}
    aggregated = None
    for cumulative in rows:
        if not cumulative:
            continue
        *changed, aggregated = cumulative
        latest.update(((row[0], row[1]), row) for row in changed)
    if aggregated is None:
        return []
    return [*(latest[k] for k in sorted(latest, key=lambda k: (k[1], k[0]))), aggregated]


def compact_minute(rows: list[dict], start: int, seconds: int) -> dict:
    """The RunTick fields of the minute starting at tick `start` standing for `seconds` seconds."""
    return {
        "tick": start, "seconds": seconds, "users": max(r["users"] for r in rows),
        "rps": math.fsum(r["rps"] for r in rows) / seconds,
        "fails_per_s": math.fsum(r["fails_per_s"] for r in rows) / seconds,
        **{key: _highest([r[key] for r in rows]) for key in ("p50_ms", "p95_ms", "p99_ms")},
        "endpoints": merge_endpoints([r["endpoints"] for r in rows], seconds),
        "cumulative": merge_cumulative([r["cumulative"] for r in rows]),
    }


def compact_run(run_id: int) -> tuple[int, int]:
    """Compact the run's per-second rows to per-minute ones: (rows removed, rows written)."""
    ticks = RunTick.objects.filter(run_id=run_id)
    bounds = ticks.order_by().aggregate(first=Min("tick"), last=Max(F("tick") + F("seconds") - 1))
    if bounds["first"] is None:
        return 0, 0
    first, last = bounds["first"], bounds["last"]
    removed = written = 0
    chunk = CHUNK_MINUTES * MINUTE
    for chunk_start in range(first // MINUTE * MINUTE, last + 1, chunk):
        with transaction.atomic():
            in_chunk = ticks.filter(seconds=1, tick__gte=chunk_start, tick__lt=chunk_start + chunk)
            rows = list(in_chunk.order_by("tick").values(*FIELDS))
            minutes: dict[int, list[dict]] = {}
            for row in rows:
                minutes.setdefault(row["tick"] // MINUTE, []).append(row)
            compacted, kept = [], []
            for minute, seconds_rows in minutes.items():
                start = max(minute * MINUTE, first)
                seconds = min((minute + 1) * MINUTE, last + 1) - start
                if seconds == 1:   # a lone second at an end of the run: already as small as it gets
                    kept.extend(r["id"] for r in seconds_rows)
                    continue
                compacted.append(RunTick(run_id=run_id, **compact_minute(seconds_rows, start, seconds)))
            if not compacted:
                continue
            removed += in_chunk.exclude(pk__in=kept).delete()[0]
            RunTick.objects.bulk_create(compacted, batch_size=500)
            written += len(compacted)
    return removed, written
