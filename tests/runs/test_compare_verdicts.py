"""The compare page and the report say better / worse / no significant change per cell, from runs whose
statistics were recorded like a pool records them (workers.stats.Recorder -> RunStats, its state in
stats_blob, its closed seconds as RunTick rows) — the data the collector leaves behind."""

import math
import re

import numpy as np
import pytest
from django.urls import reverse

from runs import reports
from runs.models import Run, RunTick
from tests.runs.test_history import make_run
from workers.stats import Recorder, RunStats

SECONDS = 8


def recorded_run(scenario, user, endpoints: dict, *, seconds=SECONDS, seed=1, params=None, failures=None):
    """A finished run whose pool recorded, every second, `endpoints[(method, name)] = (requests per second,
    median ms)` lognormal response times (sigma 0.2); `failures[(method, name)]` of them failed per second."""
    rng = np.random.default_rng(seed)
    recorder, stats = Recorder(), RunStats()
    for second in range(seconds):
        for (method, name), (count, median) in endpoints.items():
            failed = (failures or {}).get((method, name), 0)
            for i, ms in enumerate(rng.lognormal(math.log(median), 0.2, count)):
                recorder.record(method, name, float(ms), 120, ConnectionError("refused") if i < failed else None)
        stats.apply(recorder.take_delta(run=1, slot=0, seq=second + 1, tick=second, elapsed=second + 1.0,
                                        users=10, cpu=20.0))
    ticks = stats.close_ticks(None, cumulative=True)
    totals = stats.totals(float(seconds))
    aggregate = totals[-1]
    run = make_run(scenario, user, totals=totals, params=params, seconds=seconds, requests=aggregate["requests"],
                   failures=aggregate["failures"], rps=aggregate["rps"], p50=aggregate["p50"],
                   p95=aggregate["p95"], p99=aggregate["p99"])
    Run.objects.filter(pk=run.pk).update(stats_blob=stats.to_bytes())
    RunTick.objects.bulk_create([
        RunTick(run=run, tick=t["tick"], users=t["users"], rps=t["rps"], fails_per_s=t["fails_per_s"],
                p50_ms=t["p50_ms"], p95_ms=t["p95_ms"], p99_ms=t["p99_ms"], endpoints=t["endpoints"],
                cumulative=t["cumulative"]) for t in ticks])
    run.refresh_from_db()
    return run


CHECKOUT = ("GET", "/checkout")
SEARCH = ("GET", "/search")
LOAD = {CHECKOUT: (300, 10.0), SEARCH: (200, 40.0)}


def values(response, key) -> dict:
    """{figure key: value dict} of the second run's cell of endpoint `key` on a compare page."""
    endpoint = next(e for e in response.context["endpoints"] if (e["method"], e["name"]) == key)
    return {value["key"]: value for value in endpoint["cells"][1]["values"]}


@pytest.fixture
def compare(client, alice):
    client.force_login(alice)

    def get(*runs):
        response = client.get(reverse("runs-compare", args=["shop"]), {"runs": ",".join(str(r.pk) for r in runs)})
        assert response.status_code == 200
        return response

    return get


def test_it_finds_no_significant_change_between_runs_of_the_same_system(compare, alice, scenario):
    first = recorded_run(scenario, alice, LOAD, seed=1)
    second = recorded_run(scenario, alice, LOAD, seed=2)
    response = compare(first, second)
    for key in (CHECKOUT, SEARCH, ("", "Aggregated")):
        cells = values(response, key)
        for figure in ("fail_pct", "rps", "p50", "p95", "p99", "mean_ms"):
            assert cells[figure]["verdict"] == "no significant change", (key, figure, cells[figure]["title"])
            assert cells[figure]["css"] == "neutral"
        assert cells["requests"]["verdict"] == "" and cells["requests"]["css"] == ""


def test_it_flags_a_20_percent_slower_endpoint_worse_and_leaves_the_others_alone(compare, alice, scenario):
    before = recorded_run(scenario, alice, LOAD, seed=1)
    after = recorded_run(scenario, alice, {CHECKOUT: (300, 12.0), SEARCH: (200, 40.0)}, seed=2)
    response = compare(before, after)
    checkout = values(response, CHECKOUT)
    for figure in ("p50", "p95", "p99", "mean_ms"):
        assert checkout[figure]["verdict"] == "worse" and checkout[figure]["css"].startswith("worse-"), figure
        assert 0 < checkout[figure]["interval"][0] < checkout[figure]["change"] < checkout[figure]["interval"][1]
    assert checkout["p50"]["change"] == pytest.approx(2.0, abs=0.3)
    search = values(response, SEARCH)
    assert all(search[f]["verdict"] == "no significant change" for f in ("p50", "p95", "p99", "mean_ms", "rps"))

    page = response.content.decode()
    assert "Colours mean significance" in page and "99% level" in page   # the legend
    # The interval is on hover: both runs' intervals, the change's, the verdict and the method.
    title = re.search(r'<td class="num worse-(?:light|strong)" title="(p50 [^"]*)"', page).group(1)
    assert "99% interval" in title and f"vs #{before.pk}: " in title and "order statistics" in title
    assert ": worse" in title
    assert '<span class="verdict-text">worse</span>' in page
    assert '<span class="verdict-text">no significant change</span>' in page


def test_a_big_change_of_few_requests_is_not_painted(compare, alice, scenario):
    few = {CHECKOUT: (3, 10.0)}  # 24 requests per run
    before = recorded_run(scenario, alice, few, seed=1)
    after = recorded_run(scenario, alice, {CHECKOUT: (3, 13.0)}, seed=2)
    checkout = values(compare(before, after), CHECKOUT)
    assert (checkout["p99"]["verdict"], checkout["p99"]["css"]) == ("not judged", "unjudged")
    assert "not judged (too few samples to bound it" in checkout["p99"]["title"]


def test_failures_are_judged_on_their_counts(compare, alice, scenario):
    before = recorded_run(scenario, alice, LOAD, seed=1)
    after = recorded_run(scenario, alice, LOAD, seed=2, failures={CHECKOUT: 30})   # 10% of /checkout fails
    checkout = values(compare(before, after), CHECKOUT)
    assert checkout["fail_pct"]["verdict"] == "worse" and checkout["fail_pct"]["css"] == "worse-strong"  # from 0%
    assert "Wilson interval" in checkout["fail_pct"]["title"]


def test_the_report_compares_the_run_with_the_previous_run_of_the_same_parameters(alice, scenario):
    other_load = recorded_run(scenario, alice, LOAD, seed=3, params={"users": 99, "spawn_rate": 1, "duration": 60,
                                                                     "host": "http://shop.test", "slots": 1})
    before = recorded_run(scenario, alice, LOAD, seed=1)
    failing = recorded_run(scenario, alice, LOAD, seed=4)
    Run.objects.filter(pk=failing.pk).update(verdict="fail")   # never a reference
    after = recorded_run(scenario, alice, {CHECKOUT: (300, 12.0), SEARCH: (200, 40.0)}, seed=2)

    data = reports.report_data(after)["comparison"]
    assert data["baseline"] == before.pk and data["level"] == 0.99 and other_load.pk != before.pk
    checkout = next(e for e in data["endpoints"] if e["name"] == "/checkout")["figures"]
    assert checkout["p95"]["verdict"] == "worse" and checkout["p95"]["interval"][0] > 0
    search = next(e for e in data["endpoints"] if e["name"] == "/search")["figures"]
    assert search["p95"]["verdict"] == "same"
    assert data["counts"]["worse"] >= 4

    page = reports.html_report(after)
    assert f"Compared with run #{before.pk}" in page and "Colours mean significance" in page
    assert re.search(r'<td class="num worse-(light|strong)" title="p95 [^"]*99% interval', page)
    # The first run of its parameters has nothing to be compared with.
    assert reports.report_data(other_load)["comparison"] is None
    assert "Compared with run" not in reports.html_report(other_load)
