"""Server time of the run comparison page: 5 runs x 100 endpoints, one hour of per-second ticks each.

Run: .venv/bin/python bench/compare.py   (about a minute; DATABASE_URL=... to use that database instead of
a temporary SQLite file; the benchmark's project is deleted again at the end)

Builds a project with 5 finished runs, each with 100 endpoints in its totals and 3,600 RunTick rows that
carry 100 per-endpoint entries (as the collector writes them), the last run on a newer locustfile
version so the source diff is part of the page. Then it times GET /p/<slug>/compare/?runs=... with
Django's test client (server time: URL resolution, queries, template; no network), 20 requests after
2 warm-ups, and the project's run list (25 rows) the same way as a reference.
"""

import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNS = 5
ENDPOINTS = 100
TICKS = 3600
REQUESTS = 20
WARMUP = 2
TARGET_MS = 300

LOCUSTFILE = b'''\
from locust import HttpUser, between, task


class Shopper(HttpUser):
    wait_time = between(1, 3)

    @task
    def browse(self):
        self.client.get("/products")
'''


def setup_django(prefix: str = "swarmdeck-bench-compare-") -> str:
    """Django on DATABASE_URL, else on a fresh SQLite file in a temporary VAR_DIR (named `prefix`...); returns a
    description. bench/long_run.py uses it too."""
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_urlsafe(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlcenter.settings"
    where = "DATABASE_URL"
    if not os.environ.get("DATABASE_URL"):
        os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix=prefix)
        where = f"temporary SQLite in {os.environ['VAR_DIR']}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()  # lets the test client's "testserver" host through ALLOWED_HOSTS
    return where


def clean_up(project, user) -> None:
    """Delete what the benchmark built: its project's runs, the project and the user; a temporary SQLite VAR_DIR."""
    from runs.models import Run

    Run.objects.filter(project=project).delete()  # runs protect their locustfile versions
    project.delete()
    user.delete()
    if not os.environ.get("DATABASE_URL"):
        shutil.rmtree(os.environ["VAR_DIR"], ignore_errors=True)


def endpoint_name(e: int) -> tuple[str, str]:
    return ("POST" if e % 5 == 0 else "GET"), f"/api/v1/resource-{e}/{{id}}"


def build(slug: str):
    """The project, its runs (ids in order) and its user."""
    import random

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from runs.models import Run, RunTick
    from scenarios import analysis, bundles
    from scenarios.services import add_version, create_project, create_scenario

    rng = random.Random(7)
    user = get_user_model().objects.create_user(f"{slug}-user", password=secrets.token_urlsafe(12))
    project = create_project(user, name="Bench compare", slug=slug)
    bundle = bundles.read_upload("locustfile.py", LOCUSTFILE)
    findings = analysis.analyze(bundle.sources)
    scenario = create_scenario(project, fields={"name": "Checkout"}, bundle=bundle, raw=LOCUSTFILE,
                               filename="locustfile.py", findings=findings, user=user)
    v1 = scenario.current_version
    newer = LOCUSTFILE.replace(b"between(1, 3)", b"between(0.5, 2)") + b'''
    @task
    def cart(self):
        self.client.post("/cart", json={"id": 1})
'''
    bundle2 = bundles.read_upload("locustfile.py", newer)
    v2 = add_version(scenario, bundle=bundle2, raw=newer, filename="locustfile.py",
                     findings=analysis.analyze(bundle2.sources), user=user)

    run_ids = []
    for r in range(RUNS):
        slow = 1 + 0.1 * r
        totals = []
        for e in range(ENDPOINTS):
            method, name = endpoint_name(e)
            base = 5 + 3 * e
            requests = rng.randint(50_000, 80_000)
            totals.append({
                "method": method, "name": name, "requests": requests, "failures": rng.randint(0, 500),
                "min_ms": 1.0, "max_ms": base * 20, "mean_ms": base * 1.2 * slow,
                **{key: base * factor * slow for key, factor in (("p50", 1), ("p66", 1.2), ("p75", 1.3), ("p80", 1.4),
                                                                  ("p90", 1.8), ("p95", 2.2), ("p98", 3), ("p99", 4),
                                                                  ("p99.9", 6), ("p99.99", 8), ("p100", 10))},
                "avg_size": 1200, "rps": requests / TICKS, "failures_per_s": 0.05,
            })
        total_requests = sum(row["requests"] for row in totals)
        totals.append({**totals[0], "method": "", "name": "Aggregated", "requests": total_requests,
                       "rps": total_requests / TICKS})
        run = Run.objects.create(
            project=project, scenario=scenario, version=v2 if r == RUNS - 1 else v1, status=Run.Status.FINISHED,
            params={"users": 100 * (r + 1), "spawn_rate": 10, "duration": TICKS, "host": "http://shop.test",
                    "slots": 2, "user_classes": ["Shopper"], "tags": [], "exclude_tags": []},
            created_by=user, totals=totals, total_requests=total_requests, total_failures=1000,
            rps=total_requests / TICKS, p50_ms=20.0 * slow, p95_ms=80.0 * slow, p99_ms=150.0 * slow,
            stats_updated_at=timezone.now(),  # as the collector leaves it: a finished run's per-second batches cache
        )
        run_ids.append(run.pk)
        # A handful of distinct per-endpoint tick payloads, reused: the database stores each row in full anyway.
        variants = [{f"{m} {n}": {"rps": round(rng.uniform(10, 30), 2), "fails_per_s": 0.0,
                                  "p50_ms": round(rng.uniform(5, 300), 1), "p95_ms": round(rng.uniform(20, 900), 1),
                                  "p99_ms": round(rng.uniform(50, 1500), 1)}
                     for m, n in map(endpoint_name, range(ENDPOINTS))} for _ in range(8)]
        with transaction.atomic():
            RunTick.objects.bulk_create(
                (RunTick(run=run, tick=t, users=100 * (r + 1), rps=1800 + rng.uniform(-100, 100) * slow,
                         fails_per_s=rng.uniform(0, 2), p50_ms=20 * slow + rng.uniform(-2, 2),
                         p95_ms=80 * slow + rng.uniform(-8, 8), p99_ms=150 * slow + rng.uniform(-15, 15),
                         endpoints=variants[t % len(variants)]) for t in range(TICKS)),
                batch_size=500,
            )
    return project, run_ids, user


def timed(client, url: str) -> tuple[list[float], int]:
    for _ in range(WARMUP):
        assert client.get(url).status_code == 200, url
    samples, size = [], 0
    for _ in range(REQUESTS):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
        size = len(response.content)
    return samples, size


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main():
    started = time.perf_counter()
    where = setup_django()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from runs import history
    from runs.models import Run, RunTick

    slug = f"bench-compare-{secrets.token_hex(3)}"
    built = time.perf_counter()
    project, run_ids, user = build(slug)
    build_s = time.perf_counter() - built
    try:
        client = Client()
        client.force_login(user)
        compare_url = reverse("runs-compare", args=[slug]) + "?runs=" + ",".join(map(str, run_ids))
        list_url = reverse("runs-list", args=[slug])
        compare_ms, compare_bytes = timed(client, compare_url)
        list_ms, list_bytes = timed(client, list_url)

        runs = [Run.objects.select_related("version").get(pk=pk) for pk in run_ids]
        parts = {}
        for label, call in (("overlay_series (DB bucket averages)", lambda: history.overlay_series(runs)),
                            ("  same, all 3,600 points (no averaging)",
                             lambda: history.overlay_series(runs, max_points=TICKS)),
                            ("compare_endpoints (101 x 5)", lambda: history.compare_endpoints(runs)),
                            ("  same, cold (per-second batches not cached yet)",
                             lambda: (cache.clear(), history.compare_endpoints(runs)))):
            samples = []
            for _ in range(5):
                t0 = time.perf_counter()
                call()
                samples.append((time.perf_counter() - t0) * 1000)
            parts[label] = statistics.median(samples)
        overlay = history.overlay_series(runs)
        ticks = RunTick.objects.filter(run__project=project).count()
        entries = len(RunTick.objects.filter(run_id=run_ids[0], tick=TICKS // 2).values_list("endpoints", flat=True)[0])
        compare_median = statistics.median(compare_ms)
        verdict = "MET" if compare_median < TARGET_MS and p95(compare_ms) < TARGET_MS else "NOT MET"

        print(f"Compare {RUNS} runs x {ENDPOINTS} endpoints, {TICKS:,} ticks per run ({ticks:,} RunTick rows with "
              f"{entries} endpoint entries each); {connection.vendor}, {where}")
        print(f"Server time through Django's test client, {REQUESTS} requests after {WARMUP} warm-ups\n")
        print(f"{'page':<48}{'median':>10}{'p95':>10}{'size':>10}")
        print(f"{'compare 5 runs  /p/<slug>/compare/?runs=...':<48}{compare_median:>8.1f}ms{p95(compare_ms):>8.1f}ms"
              f"{compare_bytes / 1024:>7.0f}KiB")
        print(f"{'reference: project run list (25 rows)':<48}{statistics.median(list_ms):>8.1f}ms"
              f"{p95(list_ms):>8.1f}ms{list_bytes / 1024:>7.0f}KiB")
        print(f"{'target (compare, median and p95)':<48}{'< ' + str(TARGET_MS) + ' ms':>20}  -> {verdict}\n")
        print(f"Overlay: {len(overlay['x'])} points per run (buckets of {overlay['step']} s) instead of {TICKS:,}")
        for label, value in parts.items():
            print(f"  {label:<44}{value:>8.1f} ms (median of 5)")
        print(f"Data built in {build_s:.1f} s; finished in {time.perf_counter() - started:.1f} s.")
    finally:
        clean_up(project, user)


if __name__ == "__main__":
    main()
