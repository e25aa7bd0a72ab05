"""Long runs (issue 13): a finished 7-day run of 20 endpoints, each figure next to a 1-hour run's.

Run: .venv/bin/python bench/long_run.py [--days 7] [--repeats 5] [--compact]
(DATABASE_URL=... to use that database instead of a temporary SQLite file; the benchmark's project
is deleted again at the end)

Fabricates in the database, with executemany INSERTs in chunks of 5,000 rows (a few distinct tick
payloads, encoded once: the database stores every row in full anyway):
  - a finished run of `--days` days: one RunTick row per second (604,800 for 7 days), each with
    20 endpoint entries in `endpoints` and 21 rows in `cumulative`, as the collector writes them;
  - the reference: the same run of 1 hour (3,600 rows); and a 10-minute run to compare with.
Then it measures, with Django's test client logged in as a member (server time: URL resolution,
queries, template; no network), the median of `--repeats` requests after one warm-up:
  - the run page GET /runs/<id>/ (the live page, its full state embedded): time and size, cold
    (the process cache cleared before each request: a restarted web process) with the series kept
    in RunSeries as the collector keeps it when a run finishes (the time that takes is printed),
    cold with no series kept (its first view had the collector not kept it), and with the ended
    run's downsampled series cached;
  - the WebSocket initial state: runs.live.full_state(run) json-encoded as the consumer sends it
    on every (re)connect: time and size, cold and cached;
  - the compare page with that run and the 10-minute one;
  - the zoom: GET /runs/<id>/series/?from=&to= for one day of the run, and one hour of it;
  - for scale, the old first paint: reading every RunTick row's series columns into Python (once);
  - with --compact: the time to compact the long run to per-minute rows (runs/retention.py), and the
    run page, initial state and compare page after it.
"""

import argparse
import json
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.compare import LOCUSTFILE, clean_up, endpoint_name  # noqa: E402  (its scenario, names, clean-up)
from bench.compare import setup_django as _setup_django  # noqa: E402

ENDPOINTS = 20
CHUNK = 5_000
VARIANTS = 16
TARGET_MS = 1000

PERCENTILE_NAMES = ("p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "p99.9", "p99.99", "p100")
FACTORS = (1, 1.2, 1.3, 1.4, 1.8, 2.2, 3, 4, 6, 8, 10)


def totals_of(seconds: int, rng: random.Random) -> list[dict]:
    rows = []
    for e in range(ENDPOINTS):
        method, name = endpoint_name(e)
        base = 5 + 3 * e
        requests = 20 * seconds
        rows.append({"method": method, "name": name, "requests": requests, "failures": rng.randint(0, seconds // 100),
                     "min_ms": 1.0, "max_ms": base * 20, "mean_ms": base * 1.2,
                     **{key: base * f for key, f in zip(PERCENTILE_NAMES, FACTORS)},
                     "avg_size": 1200, "rps": 20.0, "failures_per_s": 0.01})
    total = sum(row["requests"] for row in rows)
    rows.append({**rows[0], "method": "", "name": "Aggregated", "requests": total, "rps": total / seconds})
    return rows


def payloads(rng: random.Random) -> list[tuple[str, str]]:
    """VARIANTS (endpoints, cumulative) pairs, JSON-encoded, in the collector's shapes."""
    out = []
    for _ in range(VARIANTS):
        endpoints = {f"{m} {n}": {"rps": round(rng.uniform(10, 30), 2), "fails_per_s": 0.0,
                                  "p50_ms": round(rng.uniform(5, 300), 1), "p95_ms": round(rng.uniform(20, 900), 1),
                                  "p99_ms": round(rng.uniform(50, 1500), 1)}
                     for m, n in map(endpoint_name, range(ENDPOINTS))}
        cumulative = [[m, n, rng.randint(10**6, 10**7), rng.randint(0, 10**4), round(rng.uniform(5, 300), 4), 1.0,
                       round(rng.uniform(1000, 5000), 4), 1200.0,
                       *(round(rng.uniform(5, 300) * f, 4) for f in FACTORS)]
                      for m, n in [*map(endpoint_name, range(ENDPOINTS)), ("", "Aggregated")]]
        out.append((json.dumps(endpoints), json.dumps(cumulative)))
    return out


def insert_ticks(run_id: int, seconds: int, rng: random.Random) -> None:
    """One RunTick row per second, CHUNK rows per executemany and transaction."""
    from django.db import connection, transaction

    variants = payloads(rng)
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    sql = ("INSERT INTO runs_runtick (run_id, tick, users, rps, fails_per_s, p50_ms, p95_ms, p99_ms, endpoints,"
           f" cumulative, seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s{cast}, %s{cast}, 1)")
    for start in range(0, seconds, CHUNK):
        rows = []
        for t in range(start, min(start + CHUNK, seconds)):
            wave = 1 + 0.3 * ((t // 3600) % 24 < 12)   # a daily cycle, so buckets differ
            p50 = 20 * wave + rng.uniform(-2, 2)
            endpoints, cumulative = variants[t % VARIANTS]
            rows.append((run_id, t, 400 if t > 60 else t * 400 // 60, 400 * wave + rng.uniform(-40, 40),
                         rng.uniform(0, 2), p50, p50 * 4, p50 * 7, endpoints, cumulative))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def build(slug: str, days: float):
    """The project's user, the long run, the 1-hour reference run and the 10-minute one."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from runs.models import Run
    from scenarios import analysis, bundles
    from scenarios.services import create_project, create_scenario

    rng = random.Random(13)
    user = get_user_model().objects.create_user(f"{slug}-user", password=secrets.token_urlsafe(12))
    project = create_project(user, name="Bench long run", slug=slug)
    bundle = bundles.read_upload("locustfile.py", LOCUSTFILE)
    scenario = create_scenario(project, fields={"name": "Soak"}, bundle=bundle, raw=LOCUSTFILE,
                               filename="locustfile.py", findings=analysis.analyze(bundle.sources), user=user)
    runs = {}
    for label, seconds in (("long", int(days * 86_400)), ("hour", 3_600), ("short", 600)):
        totals = totals_of(seconds, rng)
        ended = timezone.now()
        run = Run.objects.create(
            project=project, scenario=scenario, version=scenario.current_version, status=Run.Status.FINISHED,
            params={"users": 400, "spawn_rate": 10, "duration": seconds, "host": "http://shop.test", "slots": 2,
                    "user_classes": ["Shopper"], "tags": [], "exclude_tags": []},
            created_by=user, totals=totals, total_requests=totals[-1]["requests"], total_failures=1000,
            rps=totals[-1]["rps"], p50_ms=20.0, p95_ms=80.0, p99_ms=150.0, stats_updated_at=ended,
            started_at=ended - timedelta(seconds=seconds), ended_at=ended,
        )
        insert_ticks(run.pk, seconds, rng)
        runs[label] = run
    return project, user, runs


def timed(call, repeats: int) -> tuple[float, int]:
    """Median ms of `repeats` calls after one warm-up, and the size in bytes of the last result."""
    call()
    samples, size = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        size = call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compact", action="store_true",
                        help="Then compact the long run to per-minute rows (runs/retention.py) and measure again")
    args = parser.parse_args()
    started = time.perf_counter()
    where = _setup_django("swarmdeck-bench-long-run-")
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from runs import lifecycle, live
    from runs.models import Run, RunSeries, RunTick

    slug = f"bench-long-{secrets.token_hex(3)}"
    built = time.perf_counter()
    project, user, runs = build(slug, args.days)
    if connection.vendor == "postgresql":
        # What autovacuum does after this many inserts: statistics, and the visibility map that lets the
        # buckets' query read the covering index alone (without it PostgreSQL scans the rows' heap pages).
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE runs_runtick")
    build_s = time.perf_counter() - built
    try:
        client = Client()
        client.force_login(user)

        def forget(kept: bool) -> None:
            cache.clear()   # an ended run's downsampled series is cached in the process (runs/tick_series.py)
            if not kept:    # ... and kept in RunSeries from its end on
                RunSeries.objects.all().delete()

        def get(url: str, cold: bool = False, kept: bool = True):
            def call() -> int:
                if cold:
                    forget(kept)
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                return len(response.content)
            return call

        def state(run: Run, cold: bool = False, kept: bool = True):
            def call() -> int:
                if cold:
                    forget(kept)
                fresh = Run.objects.get(pk=run.pk)   # as the consumer reads it on connect
                return len(json.dumps(live.full_state(fresh)).encode())
            return call

        def compare(run: Run) -> str:
            return reverse("runs-compare", args=[slug]) + f"?runs={run.pk},{runs['short'].pk}"

        long, hour = runs["long"], runs["hour"]
        last = RunTick.objects.filter(run=long).count() - 1
        zoom_day = reverse("runs-series", args=[long.pk]) + f"?from={last // 2}&to={last // 2 + 86_399}"
        zoom_hour = reverse("runs-series", args=[long.pk]) + f"?from={last // 2}&to={last // 2 + 3_599}"
        zoom_ref = reverse("runs-series", args=[hour.pk]) + "?from=0&to=3599"
        page_long, page_hour = reverse("runs-detail", args=[long.pk]), reverse("runs-detail", args=[hour.pk])
        t0 = time.perf_counter()
        for run in runs.values():
            lifecycle.keep_first_paint(run.pk)   # what the collector does when a run finishes
        keep_ms = (time.perf_counter() - t0) * 1000
        rows = [
            ("run page GET /runs/<id>/, cold (process restarted)", get(page_long, cold=True),
             get(page_hour, cold=True)),
            ("WebSocket initial state (full_state + JSON), cold", state(long, cold=True), state(hour, cold=True)),
            ("run page, cold, series never kept", get(page_long, cold=True, kept=False),
             get(page_hour, cold=True, kept=False)),
            ("WebSocket initial state, cold, series never kept", state(long, cold=True, kept=False),
             state(hour, cold=True, kept=False)),
            ("run page, ended run's series cached", get(page_long), get(page_hour)),
            ("WebSocket initial state, cached", state(long), state(hour)),
            ("compare page, with the 10-minute run", get(compare(long)), get(compare(hour))),
            ("zoom: one day  /runs/<id>/series/", get(zoom_day), get(zoom_ref)),
            ("zoom: one hour /runs/<id>/series/", get(zoom_hour), get(zoom_ref)),
        ]
        width = live.full_state(long)["series_width"]
        points = len(live.full_state(long)["series"]["tick"])
        print(f"Long run: {args.days:g} days, {last + 1:,} RunTick rows with {ENDPOINTS} endpoint entries and "
              f"{ENDPOINTS + 1} cumulative rows each; reference: the same for 1 hour (3,600 rows); "
              f"{connection.vendor}, {where}")
        print(f"First paint: {points:,} points per series (buckets of {width} s), kept in RunSeries when the run "
              f"ended ({keep_ms:,.0f} ms for the three runs, once). Server time through Django's test client, median "
              f"of {args.repeats} after a warm-up; cold: the process cache empty\n")
        print(f"{'':<52}{f'{args.days:g}-day run':>22}{'1-hour run (ref.)':>24}")
        verdicts = []
        for label, long_call, ref_call in rows:
            long_ms, long_bytes = timed(long_call, args.repeats)
            ref_ms, ref_bytes = timed(ref_call, args.repeats)
            print(f"{label:<52}{long_ms:>9.1f} ms{long_bytes / 1024:>8.0f} KiB{ref_ms:>11.1f} ms"
                  f"{ref_bytes / 1024:>8.0f} KiB")
            verdicts.append(long_ms)
        verdict = "MET" if max(verdicts[:2]) < TARGET_MS else "NOT MET"
        print(f"{'target: run page and initial state, cold':<52}{'< ' + str(TARGET_MS) + ' ms':>14}  -> {verdict}"
              f"   (series never kept: {'met' if max(verdicts[2:4]) < TARGET_MS else 'not met'})\n")
        t0 = time.perf_counter()
        every = list(RunTick.objects.filter(run=long).order_by("tick")
                     .values("tick", "users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms"))
        old_ms = (time.perf_counter() - t0) * 1000
        old_bytes = len(json.dumps({key: [row[key] for row in every] for key in every[0]}).encode())
        print(f"For scale, the old first paint's series: every row read into Python {old_ms:,.0f} ms, "
              f"{old_bytes / 1024 / 1024:.1f} MiB of JSON ({len(every):,} points per series)")
        if args.compact:
            from runs import retention

            t0 = time.perf_counter()
            removed, written = retention.compact_run(long.pk)
            compact_s = time.perf_counter() - t0
            print(f"\nRetention: compact_run of the long run {compact_s:.1f} s ({removed:,} rows -> {written:,})")
            for label, call in (("run page, cold, series never kept, after compaction",
                                 get(page_long, cold=True, kept=False)),
                                ("WebSocket initial state, the same", state(long, cold=True, kept=False)),
                                ("compare page, after compaction", get(compare(long)))):
                ms, size = timed(call, args.repeats)
                print(f"{label:<52}{ms:>9.1f} ms{size / 1024:>8.0f} KiB")
        print(f"Data built in {build_s:.1f} s; finished in {time.perf_counter() - started:.1f} s.")
    finally:
        clean_up(project, user)


if __name__ == "__main__":
    main()
