"""Baseline rule 2.0 (runs/baseline.py): p95 significantly worse than each of the last N passing runs with the
same parameters, judged on the runs' histograms; the verdict names the endpoints that regressed and by how much."""

import numpy as np
import pytest
from django.urls import reverse

from runs import baseline, reports, thresholds
from runs.models import Run, Threshold
from runs.significance import Rule
from tests.runs.test_compare_verdicts import CHECKOUT, LOAD, SEARCH, recorded_run
from tests.runs.test_significance import lognormal_us, sample_of

M = Threshold.Metric
PARAMS = {"users": 10, "spawn_rate": 1, "duration": 60, "host": "http://shop.test", "slots": 1}


def rule_of(value=0.0, endpoint="", runs=5):
    return Threshold(pk=1, metric=M.P95_BASELINE, value=value, endpoint=endpoint, baseline_runs=runs)


def samples(rng, checkout_ms=10.0, search_ms=40.0, n=3000):
    return {CHECKOUT: sample_of(lognormal_us(rng, n, checkout_ms, 0.2)),
            SEARCH: sample_of(lognormal_us(rng, n, search_ms, 0.2))}


# ---------------------------------------------------------------- the rule, on plain data

def test_it_describes_the_rule():
    assert thresholds.describe(rule_of(runs=3)) == ("p95 of total not significantly worse than each of the last 3 "
                                                    "passing runs with the same parameters")
    assert thresholds.describe(rule_of(10, "GET /cart", 1)) == (
        "p95 of GET /cart not significantly worse (by more than 10%) than each of the last 1 passing run with the "
        "same parameters")


def test_it_names_the_endpoint_that_regressed_and_by_how_much():
    rng = np.random.default_rng(5)
    earlier = [(9, samples(rng)), (8, samples(rng)), (7, samples(rng))]
    verdict = baseline.judge(rule_of(), samples(rng, checkout_ms=12.0), earlier, Rule())
    assert verdict["applicable"] and not verdict["passed"] and verdict["baseline_runs"] == [9, 8, 7]
    [regression] = verdict["regressions"]
    assert regression["endpoint"] == "GET /checkout" and regression["runs"] == [9, 8, 7]
    assert regression["change_pct"] == pytest.approx(20, abs=5) and 0 < regression["low_ms"] < regression["change_ms"]
    assert regression["against"] in (9, 8, 7) and regression["p95_ms"] > regression["baseline_p95_ms"]
    assert verdict["detail"].startswith("Significantly worse than each of runs #9, #8, #7: GET /checkout p95 ")
    assert f"against #{regression['against']} (99% interval +" in verdict["detail"]
    assert verdict["limit_text"] == "runs #9, #8, #7"


def test_noise_passes_and_one_slower_baseline_run_shields_a_small_regression():
    rng = np.random.default_rng(6)
    earlier = [(9, samples(rng)), (8, samples(rng))]
    same = baseline.judge(rule_of(), samples(rng), earlier, Rule())
    assert same["passed"] and same["applicable"] and same["regressions"] == []
    assert same["detail"].startswith("No endpoint significantly worse than each of runs #9, #8 (2 judged;")
    slow_one = [(9, samples(rng)), (8, samples(rng, checkout_ms=12.0))]
    assert baseline.judge(rule_of(), samples(rng, checkout_ms=12.0), slow_one, Rule())["passed"]


def test_the_criterions_value_is_the_size_a_regression_must_exceed():
    rng = np.random.default_rng(7)
    earlier = [(9, samples(rng))]
    slower = samples(rng, checkout_ms=12.0)
    assert not baseline.judge(rule_of(10), slower, earlier, Rule())["passed"]
    assert baseline.judge(rule_of(30), slower, earlier, Rule())["passed"]   # +20%, not more than 30%


def test_an_endpoint_scope_judges_that_endpoint_only():
    rng = np.random.default_rng(8)
    earlier = [(9, samples(rng))]
    slower = samples(rng, checkout_ms=12.0)
    assert baseline.judge(rule_of(endpoint="GET /search"), slower, earlier, Rule())["passed"]
    assert not baseline.judge(rule_of(endpoint="GET /checkout"), slower, earlier, Rule())["passed"]
    missing = baseline.judge(rule_of(endpoint="GET /nowhere"), slower, earlier, Rule())
    assert not missing["applicable"] and missing["passed"] and "same parameters" in missing["detail"]


def test_few_samples_never_fail_the_rule():
    rng = np.random.default_rng(9)
    earlier = [(9, samples(rng, n=15))]
    assert baseline.judge(rule_of(), samples(rng, checkout_ms=13.0, n=15), earlier, Rule())["passed"]


# ---------------------------------------------------------------- against the database

def passing(run):
    Run.objects.filter(pk=run.pk).update(verdict="pass")
    run.refresh_from_db()
    return run


def test_the_baseline_runs_are_the_last_n_passing_runs_with_the_same_parameters(scenario, alice):
    oldest = passing(recorded_run(scenario, alice, LOAD, seed=1, params=PARAMS))
    passing(recorded_run(scenario, alice, LOAD, seed=2, params={**PARAMS, "users": 50}))
    passing(recorded_run(scenario, alice, LOAD, seed=3, params={**PARAMS, "host": "http://staging.shop.test"}))
    passing(recorded_run(scenario, alice, LOAD, seed=4, params={**PARAMS, "options": {"region": "eu"}}))
    failed = recorded_run(scenario, alice, LOAD, seed=5, params=PARAMS)
    Run.objects.filter(pk=failed.pk).update(verdict="fail")
    recorded_run(scenario, alice, LOAD, seed=6, params=PARAMS)                 # no verdict: never passing
    middle = passing(recorded_run(scenario, alice, LOAD, seed=7, params={**PARAMS, "env": {"BUILD": "2"}}))
    newest = passing(recorded_run(scenario, alice, LOAD, seed=8, params=PARAMS))
    current = recorded_run(scenario, alice, LOAD, seed=9, params=PARAMS)
    assert [r.pk for r in baseline.candidates(current, 5)] == [newest.pk, middle.pk, oldest.pk]
    assert [r.pk for r in baseline.candidates(current, 2)] == [newest.pk, middle.pk]
    assert baseline.previous_comparable(current).pk == newest.pk


def test_a_run_that_regressed_fails_its_baseline_rule_naming_the_endpoint(client, alice, scenario):
    for seed in (1, 2, 3):
        passing(recorded_run(scenario, alice, LOAD, seed=seed, params=PARAMS))
    Threshold.objects.create(scenario=scenario, metric=M.P95_BASELINE, value=0, baseline_runs=3)
    steady = recorded_run(scenario, alice, LOAD, seed=4, params=PARAMS)
    verdict, [entry] = thresholds.evaluate_run(steady)
    assert verdict == "pass" and entry["applicable"] and entry["regressions"] == []

    slower = recorded_run(scenario, alice, {CHECKOUT: (300, 12.0), SEARCH: (200, 40.0)}, seed=5, params=PARAMS)
    verdict, [entry] = thresholds.evaluate_run(slower)
    assert verdict == "fail" and not entry["passed"] and len(entry["baseline_runs"]) == 3
    assert {r["endpoint"] for r in entry["regressions"]} >= {"GET /checkout"}
    assert "GET /search" not in {r["endpoint"] for r in entry["regressions"]}
    assert "GET /checkout p95" in entry["detail"] and "ms (+" in entry["detail"]
    assert entry["measured_text"].endswith(" ms") and entry["operator"] == "<="

    Run.objects.filter(pk=slower.pk).update(verdict=verdict, verdict_details=[entry])
    client.force_login(alice)
    page = client.get(reverse("runs-detail", args=[slower.pk])).content.decode()
    assert "not significantly worse than each of the last 3 passing runs" in page and "GET /checkout p95" in page


def test_verdicts_stored_by_the_old_rule_still_read(client, alice, scenario):
    """An entry of the median rule (before rule 2.0) has no baseline_runs or regressions: pages and reports show
    it from its own fields."""
    run = recorded_run(scenario, alice, LOAD, seed=1, params=PARAMS)
    old = {"id": 3, "criterion": "p95 of total at most 10% worse than the median p95 of the last 3 passing runs",
           "metric": "p95_baseline", "scope": "total", "operator": "<=", "unit": "ms", "limit": 132.0,
           "limit_text": "132.0 ms", "measured": 500.0, "measured_text": "500.0 ms", "passed": False,
           "applicable": True, "aborted": False, "detail": "Median p95 of runs #9, #8, #7: 120.0 ms, plus 10%."}
    Run.objects.filter(pk=run.pk).update(verdict="fail", verdict_details=[old])
    run.refresh_from_db()
    client.force_login(alice)
    page = client.get(reverse("runs-detail", args=[run.pk])).content.decode()
    assert "Median p95 of runs #9, #8, #7: 120.0 ms, plus 10%." in page and "132.0 ms" in page
    assert "Median p95 of runs #9, #8, #7" in reports.html_report(run)
    assert reports.report_data(run)["criteria"] == [old]
