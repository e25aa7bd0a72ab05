"""Long runs: the live page's first paint downsampled in the database (runs/tick_series.py), with
RunTick rows of known figures written directly."""

import datetime as dt
import json
import math
import random

import pytest
from django.urls import reverse
from django.utils import timezone

from runs import live
from runs.downsample import downsample
from runs.models import Run, RunTick


def make_run(scenario, seconds, seed=1, start=0):
    """A finished run with `seconds` RunTick rows of random figures (a few seconds missing); its rows too."""
    started = timezone.now() - dt.timedelta(seconds=seconds + 5)
    run = Run.objects.create(
        project=scenario.project, scenario=scenario, version=scenario.current_version, status=Run.Status.FINISHED,
        params={"users": 10, "spawn_rate": 1, "duration": seconds, "host": "http://shop.test", "slots": 1},
        started_at=started, ended_at=started + dt.timedelta(seconds=seconds))
    rng = random.Random(seed)
    rows = []
    for t in range(start, start + seconds):
        if rng.random() < 0.01:
            continue
        p50 = None if rng.random() < 0.01 else round(rng.uniform(5, 50), 2)
        rows.append({"tick": t, "users": rng.randint(0, 300), "rps": round(rng.uniform(0, 200), 2),
                     "fails_per_s": rng.choice([0.0, 1.0, 2.5]), "p50_ms": p50,
                     "p95_ms": None if p50 is None else p50 * 2, "p99_ms": None if p50 is None else p50 * 3})
    RunTick.objects.bulk_create([RunTick(run=run, endpoints={"GET /": {"rps": r["rps"]}}, **r) for r in rows],
                                batch_size=2000)
    return run, rows


def test_a_long_runs_state_is_downsampled_in_the_database_as_in_python(scenario):
    run, rows = make_run(scenario, 10_000)
    state = live.full_state(run)
    series = state["series"]
    assert state["series_width"] == 5
    assert len(series["tick"]) == 2000
    expected, width = downsample(rows, 2000)
    assert width == 5
    assert series["tick"] == expected["tick"]
    for key in ("users", "users_min", "p50_ms", "p95_ms", "p99_ms", "p50_ms_min", "p95_ms_min", "p99_ms_min"):
        assert series[key] == expected[key], key
    for key in ("rps", "fails_per_s"):
        assert series[key] == pytest.approx(expected[key], rel=1e-9)
        assert math.fsum(v * 5 for v in series[key]) == pytest.approx(math.fsum(r[key] for r in rows), rel=1e-9)
    assert max(series["users"]) == max(r["users"] for r in rows)
    assert min(series["users_min"]) == min(r["users"] for r in rows)
    assert state["current"] == {"GET /": {"rps": rows[-1]["rps"]}}
    json.dumps(state)


def test_a_short_runs_state_has_every_second(scenario):
    run, rows = make_run(scenario, 1_500)
    state = live.full_state(run)
    assert state["series_width"] == 1
    assert state["series"] == {key: [r[key] for r in rows]
                               for key in ("tick", "users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms")}


def test_the_run_page_embeds_the_downsampled_series(client, alice, scenario):
    run, _ = make_run(scenario, 6_000)
    client.force_login(alice)
    response = client.get(reverse("runs-detail", args=[run.pk]))
    assert response.status_code == 200
    assert len(response.context["state"]["series"]["tick"]) == 2000
    assert b'"series_width": 3' in response.content


def test_the_zoom_sends_every_second_of_a_short_window(client, alice, scenario):
    run, rows = make_run(scenario, 6_000)
    client.force_login(alice)
    response = client.get(reverse("runs-series", args=[run.pk]), {"from": 1000, "to": 2999})
    assert response.status_code == 200
    body = response.json()
    window = [r for r in rows if 1000 <= r["tick"] <= 2999]
    assert body["series_width"] == 1
    assert body["series"]["tick"] == [r["tick"] for r in window]
    assert body["series"]["p95_ms"] == [r["p95_ms"] for r in window]


def test_the_zoom_downsamples_a_long_window(client, alice, scenario):
    run, rows = make_run(scenario, 6_000)
    client.force_login(alice)
    body = client.get(reverse("runs-series", args=[run.pk]), {"from": 500, "to": 4999}).json()
    expected, width = downsample([r for r in rows if 500 <= r["tick"] <= 4999], 2000)
    assert body["series_width"] == width == 3
    assert body["series"]["tick"] == expected["tick"] and body["series"]["tick"][0] == 500
    assert body["series"]["users"] == expected["users"]
    assert body["series"]["rps"] == pytest.approx(expected["rps"], rel=1e-9)


def test_the_zoom_is_scoped_to_the_users_projects(client, alice, charlie, charlies_project, scenario):
    run, rows = make_run(scenario, 10)
    url = reverse("runs-series", args=[run.pk])
    assert client.get(url).status_code == 302   # to the login page
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    client.force_login(alice)
    assert client.get(url).json()["series"]["tick"] == [r["tick"] for r in rows]


@pytest.mark.parametrize("query", [{"from": "x"}, {"to": "1e9"}, {"from": "10", "to": "5"}, {"from": "9" * 13}])
def test_the_zoom_refuses_a_bad_window(client, alice, scenario, query):
    run, _ = make_run(scenario, 10)
    client.force_login(alice)
    assert client.get(reverse("runs-series", args=[run.pk]), query).status_code == 400


def test_an_ended_long_runs_first_paint_is_read_once(scenario):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cache.clear()
    run, _ = make_run(scenario, 6_000)
    Run.objects.filter(pk=run.pk).update(stats_updated_at=timezone.now())
    run.refresh_from_db()
    with CaptureQueriesContext(connection) as first:
        state = live.full_state(run)
    with CaptureQueriesContext(connection) as second:
        again = live.full_state(run)
    assert again["series"] == state["series"] and again["series_width"] == 3

    def series_reads(queries):   # the bounds (MIN/MAX of tick) and the buckets (GROUP BY)
        return [q["sql"] for q in queries
                if "runs_runtick" in q["sql"] and ("MIN(" in q["sql"] or "GROUP BY" in q["sql"])]

    assert len(series_reads(first.captured_queries)) == 2
    assert series_reads(second.captured_queries) == []
    # A run still going is read anew on every connect: its ticks grow.
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    run.refresh_from_db()
    with CaptureQueriesContext(connection) as running:
        live.full_state(run)
    assert [q["sql"] for q in running.captured_queries if "GROUP BY" in q["sql"]]


def test_an_ended_long_runs_series_is_kept_in_the_database_for_every_process(scenario):
    """A restarted process (its cache empty) reads the kept row, not the ticks; statistics written later make it
    read the ticks once more and keep that."""
    from django.core.cache import cache

    from runs import lifecycle, tick_series
    from runs.models import RunSeries

    run, rows = make_run(scenario, 6_000)
    Run.objects.filter(pk=run.pk).update(stats_updated_at=timezone.now())
    lifecycle.keep_first_paint(run.pk)   # what the collector does when the run finishes
    run.refresh_from_db()
    kept = RunSeries.objects.get(run=run)
    assert kept.width == 3 and kept.stats_updated_at == run.stats_updated_at
    expected = tick_series.run_series(run.pk)
    RunTick.objects.filter(run=run).delete()   # what the page shows now can only come from the kept row
    cache.clear()
    assert tick_series.first_paint(run) == expected
    assert live.full_state(run)["series"] == expected[0]

    RunTick.objects.bulk_create([RunTick(run=run, tick=t, users=1, rps=2.0) for t in range(0, 4_500)])
    Run.objects.filter(pk=run.pk).update(stats_updated_at=timezone.now())   # a later persist: new statistics
    run.refresh_from_db()
    cache.clear()
    series, width = tick_series.first_paint(run)
    assert width == 3 and sum(series["rps"]) == pytest.approx(2.0 * len(series["rps"]))
    assert RunSeries.objects.get(run=run).stats_updated_at == run.stats_updated_at


def test_a_short_run_keeps_no_series_row(scenario):
    from runs import lifecycle
    from runs.models import RunSeries

    run, _ = make_run(scenario, 600)
    Run.objects.filter(pk=run.pk).update(stats_updated_at=timezone.now())
    lifecycle.keep_first_paint(run.pk)
    assert not RunSeries.objects.filter(run=run).exists()   # every second is read as fast as the row would be
