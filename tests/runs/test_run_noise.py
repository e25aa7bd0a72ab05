"""Run-to-run noise (runs/run_noise.py, runs/significance.py): equal runs that differ as whole runs, more than their
own intervals say, teach the comparison how much; runs of other parameters or labels teach it nothing."""

import math

import pytest

from runs import run_noise, significance
from runs.models import Run
from tests.runs.test_compare_verdicts import CHECKOUT, compare, recorded_run, values  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_between_run_sd_is_the_spread_its_own_intervals_do_not_explain():
    assert significance.between_run_sd([10.0, 12.0, 14.0], [0.0, 0.0, 0.0]) == pytest.approx(2.0)
    assert significance.between_run_sd([10.0, 12.0, 14.0], [1.0, 1.0, 1.0]) == pytest.approx(math.sqrt(3.0))
    assert significance.between_run_sd([10.0, 12.0, 14.0], [3.0, 3.0, 3.0]) == 0.0   # sampling explains it all
    assert significance.between_run_sd([10.0, 14.0], [0.0, 0.0]) == 0.0              # too few runs to say


def test_run_noise_widens_an_interval_in_quadrature_and_says_so():
    estimate = significance.Estimate(10.0, 9.0, 11.5, 0.99, 1000, "order statistics")
    z = significance.z_quantile(0.995)
    widened = significance.with_run_noise(estimate, 0.5, 6, "ms")
    assert widened.low == pytest.approx(10.0 - math.hypot(1.0, z * 0.5))
    assert widened.high == pytest.approx(10.0 + math.hypot(1.5, z * 0.5))
    assert widened.method == ("order statistics; widened by run-to-run noise (sd 0.5 ms between 6 earlier runs "
                              "with these parameters and labels)")
    assert significance.with_run_noise(estimate, 0.0, 2) is estimate   # too few runs to know
    same = significance.with_run_noise(estimate, 0.0, 6)   # enough runs, and they differ no more than they say
    assert (same.low, same.high) == (estimate.low, estimate.high)
    assert same.method.endswith("no run-to-run noise beyond their own intervals between 6 earlier runs with these "
                                "parameters and labels")
    assert significance.within_sd(significance.Estimate(10.0, 9.0, 11.0, 0.99, 1, "")) == pytest.approx(1 / z)


LABELS = {"sut_version": "1.4.2"}


def history(scenario, alice, medians, labels=LABELS, seed=10):
    """Finished runs of the same parameters whose /checkout median differs run to run (the whole run shifted)."""
    runs = []
    for i, median in enumerate(medians):
        run = recorded_run(scenario, alice, {CHECKOUT: (300, median)}, seed=seed + i)
        Run.objects.filter(pk=run.pk).update(labels=labels)
        runs.append(run)
    return runs


def labelled(run, labels=LABELS):
    Run.objects.filter(pk=run.pk).update(labels=labels)
    run.refresh_from_db()
    return run


def test_equal_runs_that_differ_as_whole_runs_make_a_small_change_noise(compare, alice, scenario):
    earlier = history(scenario, alice, [9.0, 10.0, 11.0, 10.5, 9.5])
    base = labelled(recorded_run(scenario, alice, {CHECKOUT: (300, 10.0)}, seed=1))
    other = labelled(recorded_run(scenario, alice, {CHECKOUT: (300, 11.5)}, seed=2))
    noise = run_noise.of_history(base, 0.99, exclude=[other.pk])
    assert noise.runs == 5 and set(noise.run_ids) == {r.pk for r in earlier}
    assert 0.5 < noise.of(CHECKOUT)["p50"] < 1.2     # the medians' spread (sd 0.79 ms) less what sampling explains

    response = compare(base, other)
    p50 = values(response, CHECKOUT)["p50"]
    assert p50["verdict"] == "no significant change", p50["title"]
    assert "widened by run-to-run noise (sd" in p50["title"] and "between 5 earlier runs" in p50["title"]
    page = response.content.decode()
    assert "Intervals include the run-to-run noise of 5 earlier runs of the baseline" in page

    twice = labelled(recorded_run(scenario, alice, {CHECKOUT: (300, 20.0)}, seed=3))
    assert values(compare(base, twice), CHECKOUT)["p50"]["verdict"] == "worse"   # a real change still shows


def test_runs_of_other_labels_or_parameters_teach_nothing(compare, alice, scenario):
    history(scenario, alice, [9.0, 10.0, 11.0, 10.5, 9.5], labels={"sut_version": "1.4.1"})
    for i, median in enumerate([9.0, 11.0, 10.0]):
        run = recorded_run(scenario, alice, {CHECKOUT: (300, median)}, seed=30 + i,
                           params={"users": 99, "spawn_rate": 1, "duration": 8, "host": "http://shop.test",
                                   "slots": 1})
        labelled(run)
    base = labelled(recorded_run(scenario, alice, {CHECKOUT: (300, 10.0)}, seed=1))
    other = labelled(recorded_run(scenario, alice, {CHECKOUT: (300, 11.5)}, seed=2))
    assert run_noise.of_history(base, 0.99, exclude=[other.pk]).runs == 0
    response = compare(base, other)
    p50 = values(response, CHECKOUT)["p50"]
    assert p50["verdict"] == "worse" and "run-to-run" not in p50["title"]
    assert "Run-to-run noise unknown: the baseline has no earlier runs with the same parameters and labels" in (
        response.content.decode())
