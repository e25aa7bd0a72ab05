"""runs/significance.py on synthetic histograms with known differences: no difference is never flagged,
a 20% shift with enough samples is, too few samples or a change below the minimum effect is not."""

import math

import numpy as np
import pytest

from runs import significance as sig
from workers.stats import NUM_BUCKETS, buckets_of

RNG_SEED = 12


def histogram(samples_us) -> np.ndarray:
    return np.bincount(buckets_of(samples_us), minlength=NUM_BUCKETS).astype(np.uint64)


def sample_of(samples_us, *, failures=0, rps=100.0, per_second=None) -> sig.EndpointSample:
    samples_us = np.asarray(samples_us, dtype=np.int64)
    return sig.EndpointSample(
        requests=len(samples_us), failures=failures, rps=rps, hist=histogram(samples_us),
        total_us=int(samples_us.sum()), min_us=int(samples_us.min()), max_us=int(samples_us.max()),
        per_second=per_second or {})


def lognormal_us(rng, n, median_ms=10.0, sigma=0.3):
    return (rng.lognormal(math.log(median_ms * 1000), sigma, n)).astype(np.int64)


def flagged(verdicts: dict) -> dict:
    return {figure: v.outcome for figure, v in verdicts.items() if v.outcome in (sig.BETTER_, sig.WORSE)}


# ---------------------------------------------------------------- distributions

def test_it_computes_t_and_binomial_quantiles_like_the_tables():
    assert sig.t_quantile(0.975, 5) == pytest.approx(2.5706, abs=1e-4)
    assert sig.t_quantile(0.995, 4) == pytest.approx(4.6041, abs=1e-4)
    assert sig.t_quantile(0.995, 1) == pytest.approx(63.657, abs=1e-2)
    assert sig.t_quantile(0.995, 5000) == pytest.approx(2.5758, abs=1e-3)
    # P(Bin(100, 0.5) <= 39) = 0.0176, P(<= 40) = 0.0284: the 2.5% quantile is 40.
    assert sig.binomial_ppf(0.025, 100, 0.5) == 40
    assert sig.binomial_ppf(0.975, 100, 0.5) == 60
    # Above EXACT_BINOMIAL_UP_TO the normal approximation lands on the same ranks, give or take one.
    exact = sig.binomial_ppf(0.005, 20_000, 0.95)
    assert abs(sig.binomial_ppf(0.005, 20_001, 0.95) - exact) <= 2


def test_the_order_statistic_interval_covers_the_true_percentile_at_its_level():
    rng = np.random.default_rng(RNG_SEED)
    true_p95 = math.exp(math.log(10_000) + 0.3 * 1.6448536) / 1000  # lognormal's exact 95th percentile, ms
    covered = 0
    trials = 300
    for _ in range(trials):
        samples = lognormal_us(rng, 400)
        estimate = sig.percentile_interval(histogram(samples), 0.95, 0.95, min_us=samples.min(), max_us=samples.max())
        covered += estimate.low <= true_p95 <= estimate.high
    assert covered / trials >= 0.93   # nominal 95% (the bucket edges make it a little wider)


def test_a_percentile_beyond_the_samples_is_open_on_that_side():
    samples = np.array([10_000] * 20)
    estimate = sig.percentile_interval(histogram(samples), 0.99, 0.99)
    assert math.isinf(estimate.high) and not estimate.bounded and estimate.value == pytest.approx(10.0, rel=0.004)
    assert "too few samples" in estimate.method


def test_the_wilson_interval_of_a_failure_ratio():
    none_failed = sig.failure_interval(0, 1000, 0.95)
    assert none_failed.value == 0 and none_failed.low == 0 and none_failed.high == pytest.approx(0.3826, abs=1e-3)
    some = sig.failure_interval(50, 1000, 0.95)
    assert (some.low, some.high) == (pytest.approx(3.81, abs=0.01), pytest.approx(6.53, abs=0.01))


def test_the_mean_interval_is_the_standard_error_from_the_histogram():
    rng = np.random.default_rng(RNG_SEED)
    samples = rng.normal(20_000, 2_000, 10_000).astype(np.int64)
    estimate = sig.mean_interval(histogram(samples), int(samples.sum()), 0.95)
    assert estimate.value == pytest.approx(samples.mean() / 1000)
    half = 1.96 * samples.std(ddof=1) / math.sqrt(len(samples)) / 1000
    assert estimate.high - estimate.value == pytest.approx(half, rel=0.01)


def test_mover_on_symmetric_intervals_is_the_welch_interval():
    base = sig.Estimate(10.0, 9.0, 11.0, 0.95, 100, "")
    other = sig.Estimate(13.0, 11.5, 14.5, 0.95, 100, "")
    change, low, high = sig.difference(base, other)
    assert change == 3.0
    assert (low, high) == (pytest.approx(3 - math.hypot(1, 1.5)), pytest.approx(3 + math.hypot(1, 1.5)))


# ---------------------------------------------------------------- verdicts on synthetic runs

def test_no_difference_is_not_flagged():
    rng = np.random.default_rng(RNG_SEED)
    seconds = {"rps": sig.PerSecond.of([100, 98, 103, 101, 99])}
    false_alarms, cells = 0, 0
    for _ in range(100):
        base = sample_of(lognormal_us(rng, 5000), failures=int(rng.binomial(5000, 0.01)), per_second=seconds)
        other = sample_of(lognormal_us(rng, 5000), failures=int(rng.binomial(5000, 0.01)), per_second=seconds)
        verdicts = sig.compare(base, other)
        false_alarms += len(flagged(verdicts))
        cells += len(verdicts)
    assert false_alarms / cells <= 0.01   # nominal: 1% at the 99% level, fewer with the minimum effect


def test_a_20_percent_slowdown_with_enough_samples_is_flagged_worse():
    rng = np.random.default_rng(RNG_SEED)
    base = sample_of(lognormal_us(rng, 5000))
    slower = sample_of((lognormal_us(rng, 5000) * 1.2).astype(np.int64))
    verdicts = sig.compare(base, slower)
    assert {figure: verdicts[figure].outcome for figure in ("p50", "p95", "p99", "mean_ms")} == dict.fromkeys(
        ("p50", "p95", "p99", "mean_ms"), sig.WORSE)
    assert verdicts["p50"].change == pytest.approx(2.0, rel=0.1) and verdicts["p50"].low > 0
    assert verdicts["fail_pct"].outcome == sig.SAME
    # And the other way round it is better.
    assert sig.compare(slower, base)["p95"].outcome == sig.BETTER_


def test_few_samples_are_not_judged_or_no_significant_change_even_for_a_20_percent_shift():
    rng = np.random.default_rng(RNG_SEED)
    base = sample_of(lognormal_us(rng, 12))
    slower = sample_of((lognormal_us(rng, 12) * 1.2).astype(np.int64))
    verdicts = sig.compare(base, slower)
    assert flagged(verdicts) == {}
    assert (verdicts["p99"].outcome, verdicts["p99"].reason) == (sig.UNKNOWN, "too few samples to bound it")
    assert verdicts["p99"].text == "not judged"  # the data cannot tell, which is not "no change"
    assert verdicts["p50"].reason == "the interval of the change includes zero"


def test_a_significant_change_below_the_minimum_effect_is_not_painted():
    rng = np.random.default_rng(RNG_SEED)
    base = lognormal_us(rng, 200_000, median_ms=10.0, sigma=0.05)
    shifted = base + 500   # +0.5 ms on 10 ms: real, certain with 200,000 samples, and below 1 ms
    verdict = sig.compare(sample_of(base), sample_of(shifted))["p50"]
    assert verdict.outcome == sig.SAME and verdict.reason == "smaller than the minimum effect"
    assert verdict.low > 0   # the interval says it is real; the minimum effect says it does not matter
    stricter = sig.Rule(min_ms=0.2)
    assert sig.compare(sample_of(base), sample_of(shifted), stricter)["p50"].outcome == sig.WORSE


def test_failure_ratios_are_judged_on_their_binomial_uncertainty():
    latencies = np.full(10_000, 5_000)
    one = sample_of(latencies, failures=100)      # 1%
    three = sample_of(latencies, failures=300)    # 3%
    assert sig.compare(one, three)["fail_pct"].outcome == sig.WORSE
    assert sig.compare(three, one)["fail_pct"].outcome == sig.BETTER_
    few = sample_of(latencies[:100], failures=1), sample_of(latencies[:100], failures=3)
    assert sig.compare(*few)["fail_pct"].outcome == sig.SAME   # 1% vs 3% of 100 requests: noise
    assert sig.compare(sample_of(latencies), sample_of(latencies))["fail_pct"].outcome == sig.SAME


def test_rps_is_judged_on_its_per_second_variation():
    latencies = np.full(1000, 5_000)
    steady = sample_of(latencies, rps=100.0, per_second={"rps": sig.PerSecond.of([100, 101, 99, 100, 100])})
    lower = sample_of(latencies, rps=80.0, per_second={"rps": sig.PerSecond.of([80, 81, 79, 80, 80])})
    jumpy = sample_of(latencies, rps=80.0, per_second={"rps": sig.PerSecond.of([20, 150, 40, 130, 60])})
    assert sig.compare(steady, lower)["rps"].outcome == sig.WORSE    # higher is better for RPS
    assert sig.compare(lower, steady)["rps"].outcome == sig.BETTER_
    assert sig.compare(steady, jumpy)["rps"].outcome == sig.SAME
    one_second = sample_of(latencies, rps=80.0, per_second={"rps": sig.PerSecond.of([80])})
    assert sig.compare(steady, one_second)["rps"].outcome == sig.UNKNOWN
    assert sig.compare(steady, one_second)["rps"].reason == "too few samples to bound it"


def test_a_run_with_a_few_bad_seconds_gets_an_interval_as_wide_as_its_seconds_disagree():
    rng = np.random.default_rng(RNG_SEED)
    calm = sample_of(lognormal_us(rng, 5000), per_second={"p95": sig.PerSecond.of([16.1, 16.3, 16.0, 16.2, 16.4])})
    burst = lognormal_us(rng, 5000)
    burst[:400] *= 3   # one second of the run, three times slower
    bumpy = sample_of(burst, per_second={"p95": sig.PerSecond.of([16.2, 48.0, 16.1, 16.3, 16.0])})
    assert sig.compare(calm, sample_of(burst))["p95"].outcome == sig.WORSE   # iid samples: "significant"
    verdict = sig.compare(calm, bumpy)["p95"]
    assert verdict.outcome == sig.SAME and verdict.high > 10
    assert "widened by the per-second sd" in verdict.other.method


def test_only_the_variation_sampling_does_not_explain_widens_an_interval():
    rng = np.random.default_rng(RNG_SEED)
    seconds = [lognormal_us(rng, 600) for _ in range(8)]
    steady = np.concatenate(seconds)
    plain = sig.percentile_interval(histogram(steady), 0.95, min_us=steady.min(), max_us=steady.max())
    per_second = sig.PerSecond.of([sig.percentile_interval(histogram(s), 0.95).value for s in seconds], [600] * 8)
    # Independent seconds disagree about as much as 600 samples each do: the sampling interval (nearly) stands.
    calm = sig.estimates(sample_of(steady, per_second={"p95": per_second}))["p95"]
    assert calm.value == plain.value and calm.high - calm.low <= 1.3 * (plain.high - plain.low)
    seconds[3] = seconds[3] * 2   # one second twice as slow
    bumpy = np.concatenate(seconds)
    per_second = sig.PerSecond.of([sig.percentile_interval(histogram(s), 0.95).value for s in seconds], [600] * 8)
    widened = sig.estimates(sample_of(bumpy, per_second={"p95": per_second}))["p95"]
    plain = sig.percentile_interval(histogram(bumpy), 0.95, min_us=bumpy.min(), max_us=bumpy.max())
    assert widened.high - widened.low > 2 * (plain.high - plain.low) and "widened" in widened.method


def test_batch_means_group_long_runs_into_at_most_30_batches():
    seconds = sig.PerSecond.of([1.0] * 45 + [3.0] * 45)
    means, samples = seconds.batches()
    assert seconds.width == 3 and len(means) == 30 and means.mean() == pytest.approx(2.0)
    weighted = sig.PerSecond.of([5.0, None, 7.0, math.nan], [10, 0, 30, 0])
    assert weighted.batches()[0].tolist() == [5.0, 7.0]
    assert sig.PerSecond.of([10.0, 20.0] * 30, [1, 3] * 30).batches()[0][0] == pytest.approx(17.5)


def test_a_missing_histogram_is_not_judged():
    verdicts = sig.compare(sig.EndpointSample(requests=100, failures=0, rps=10.0),
                           sig.EndpointSample(requests=100, failures=0, rps=12.0))
    assert verdicts["p95"].outcome == sig.UNKNOWN and verdicts["p95"].text == "not judged"
    assert verdicts["fail_pct"].outcome == sig.SAME


def test_a_long_run_is_read_from_a_few_seconds_of_each_batch():
    from runs.evidence import seconds_to_read

    assert seconds_to_read(0, 9) == (list(range(1, 9)), 1)          # 10 s: all but the first and the last
    assert seconds_to_read(0, 2) == ([0, 1, 2], 1)
    ticks, width = seconds_to_read(0, 3601)                          # an hour: 30 batches of 120 s
    assert width == 120 and len(ticks) == 120 and ticks[0] == 1 and ticks[-1] < 3601
    assert ticks[:4] == [1, 31, 61, 91] and ticks[4] == 121


def test_a_widened_response_time_interval_never_goes_below_zero():
    rng = np.random.default_rng(RNG_SEED)
    fast = lognormal_us(rng, 300) / 20  # about 0.8 ms
    wild = sig.PerSecond.of([0.5, 30.0, 0.4, 25.0, 0.6])  # seconds that disagree by far more than the value
    estimate = sig.estimates(sample_of(fast, per_second={"p50": wild}))["p50"]
    assert "widened" in estimate.method and estimate.low == 0.0 < estimate.value < estimate.high
