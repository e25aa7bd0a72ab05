"""Noise-aware comparison of two runs: is a change in an endpoint's figure real, or noise?

Pure: numpy, the standard library and workers.stats (itself pure). No Django. Every figure of an
endpoint gets an interval from the run's own data, then two runs' intervals give an interval of
the difference, and the difference gets a verdict: better, worse or no significant change.

Intervals of one run (level L, 99 % by default; all two-sided):

- p50 / p95 / p99: an order-statistic (distribution-free) interval. With n timed requests, the
  number of samples below the true q-quantile is Binomial(n, q); its L/2 and 1 - L/2 quantiles
  (exact below 20,000 samples, normal approximation above) give 1-based ranks j and k with
  P(X(j) <= true quantile <= X(k)) >= L. The ranks are mapped through the mergeable histogram:
  the lowest value of the bucket holding sample j and the highest of the bucket holding sample
  k, kept inside the exact min/max. So the interval also covers the histogram's own 0.39 %
  resolution. A rank beyond the samples (too few requests for that tail) leaves that side open
  (infinite): such a figure can never be flagged.
- mean: the mean ± t(n - 1) standard errors, the standard deviation taken from the histogram's
  bucket midpoints around the exact mean (total µs / timed requests).
- failure ratio: the Wilson score interval of failures / requests.
- RPS: the shown rate ± t(B - 1) · sd / sqrt(B) over the run's per-second counts (batch means:
  B batches of consecutive seconds, one second each up to 30 seconds, at most 30 batches for
  longer runs, so seconds that move together count as one), without the first and the last
  recorded second, which are partial (users spawning, users stopping).

Per-second widening: the intervals of p50 / p95 / p99 and of the mean assume independent
samples. A run whose machine got busy for a few seconds (another process, a GC pause, the
system under test itself) has samples that are not: its response times move together, second by
second. So each of these figures is also read second by second (RunTick's p50/p95/p99/mean of
each full second, batched as above) and its interval widened by the part of that spread that
sampling does not explain: τ² = var(batch values) - mean(v / n_batch), where v / n is the
figure's sampling variance at n samples (v read back from its own sampling interval), and the
half-width t(B - 1) · sqrt(τ² / B) is added to each side in quadrature. A steady run keeps its
sampling interval; a run with a bad few seconds gets an interval as wide as its seconds disagree.
A percentile with fewer than 5 samples a second beyond it (p99 of 100 requests a second) has
per-second values that are mostly noise: it is widened to the whole batch-means interval instead.
Interval of a difference (other - base): the MOVER rule (Zou & Donner 2008; for two
proportions it is Newcombe's hybrid score interval): with d = b - a,

    low  = d - sqrt((b - b_low)² + (a_high - a)²)
    high = d + sqrt((b_high - b)² + (a - a_low)²)

which is the Welch interval when both intervals are symmetric and normal, and keeps asymmetric
ones (percentiles, Wilson) honest.

Verdict of a cell: **worse** or **better** when (1) the interval of the difference excludes zero
and (2) the change is at least the minimum effect: at least `min_ms` (1 ms) *and* `min_relative`
(2 %) of the base value for response times, `min_failure_pp` (0.5 percentage points) for the
failure ratio, `min_relative` for RPS. Otherwise **no significant change** (the hover text says
which condition was not met), or **not judged** when the interval of the change includes zero because
a run has too few samples to bound the figure (an open side): the data cannot tell, which is not "no
change". Request counts are not judged.

Run-to-run noise: the intervals above see the noise inside each run (sampling, per-second
variation), not what differs between whole runs (a busier machine for all of one run, a colder
cache; for closed-loop users their RPS follows). When the base run has at least MIN_NOISE_RUNS
earlier finished runs of its scenario with the same parameters and labels (runs/run_noise.py), the
spread of their figures beyond what their own intervals explain, between_run_sd, is a random effect
of a run: it widens both runs' intervals in quadrature (z·sd each side). Without such a history only
the minimum effect absorbs whole-run noise.

False-alarm rate: when two runs measure the same system, condition (1) alone flags a cell with
probability about 1 - L (1 % at 99 %), half of them "better", half "worse" — if the intervals
are right. bench/aa_false_alarms.py measures the whole rule on real runs against nginx: the
share of cells flagged between runs of the same system (target: at most 5 %), and of cells
flagged when the target is made 20 % slower (target: at least 95 %), figure by figure.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from workers.stats import bucket_highs, bucket_lows, bucket_values, percentile

LEVEL = 0.99
EXACT_BINOMIAL_UP_TO = 20_000   # samples; above, the normal approximation of the binomial is excellent

# The judged figures of a row, with the direction that is better; keys as in runs/history.METRICS.
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
FIGURES = ("fail_pct", "rps", "p50", "p95", "p99", "mean_ms")
BETTER = {"fail_pct": "lower", "rps": "higher", "p50": "lower", "p95": "lower", "p99": "lower", "mean_ms": "lower"}
UNITS = {"fail_pct": "%", "rps": "/s", "p50": "ms", "p95": "ms", "p99": "ms", "mean_ms": "ms"}
NOISE_UNITS = {**UNITS, "fail_pct": "pp"}   # a spread of failure ratios is in percentage points

BETTER_, WORSE, SAME, UNKNOWN = "better", "worse", "same", "unknown"
OUTCOME_TEXT = {BETTER_: "better", WORSE: "worse", SAME: "no significant change", UNKNOWN: "not judged"}


@dataclass(frozen=True)
class Rule:
    """How sure, and how big, a change must be to be painted (see the module docstring)."""

    level: float = LEVEL
    min_ms: float = 1.0
    min_relative: float = 0.02
    min_failure_pp: float = 0.5

    def minimum(self, figure: str, base: float) -> float:
        """The smallest change of `figure` that counts, in its unit, at the base value `base`."""
        relative = self.min_relative * abs(base)
        if UNITS[figure] == "ms":
            return max(self.min_ms, relative)
        if figure == "fail_pct":
            return self.min_failure_pp
        return relative


@dataclass(frozen=True)
class Estimate:
    """A figure and its interval at `level`. low/high may be -inf/inf: that side is not bounded by the data."""

    value: float | None
    low: float
    high: float
    level: float
    samples: int          # timed requests, requests or seconds behind it
    method: str           # how the interval was made, for the hover text

    @property
    def bounded(self) -> bool:
        return self.value is not None and math.isfinite(self.low) and math.isfinite(self.high)


NO_ESTIMATE = Estimate(None, -math.inf, math.inf, LEVEL, 0, "")


MAX_BATCHES = 30
MIN_TAIL_SAMPLES = 5   # per second beyond a percentile (n·(1 - q)) for its per-second value to behave


@dataclass(frozen=True)
class PerSecond:
    """One figure of one endpoint, second by second, as batch means: at most MAX_BATCHES batches of
    `width` consecutive seconds, each the mean of its seconds' values (weighted by their timed
    requests when known: `weighted`), with the samples behind it (requests, or seconds)."""

    means: tuple
    samples: tuple
    width: int = 1            # seconds of the run a batch spans
    weighted: bool = False
    per_batch: int = 1        # seconds read per batch (fewer than `width` for a long run)

    @classmethod
    def of(cls, values, counts=None, *, per_batch: int | None = None, width: int | None = None) -> PerSecond:
        """From per-second values in order (None/NaN: no value that second) and, for response times, the
        timed requests of each second: `per_batch` consecutive values a batch (default: as many as keep
        the batches at MAX_BATCHES), which span `width` seconds of the run (default: per_batch; more when
        the values are a sample of a long run's seconds)."""
        series = np.array(values, dtype=float)   # None -> NaN
        weights = np.array(counts, dtype=float) if counts is not None else np.ones(len(series))
        weights = np.where(np.isnan(series) | ~(weights > 0), 0.0, weights)
        per_batch = per_batch or max(1, math.ceil(len(series) / MAX_BATCHES))
        batches = math.ceil(len(series) / per_batch)
        padded = batches * per_batch - len(series)
        series = np.pad(np.nan_to_num(series), (0, padded)).reshape(batches, per_batch)
        weights = np.pad(weights, (0, padded)).reshape(batches, per_batch)
        samples = weights.sum(axis=1)
        kept = samples > 0
        means = (series * weights).sum(axis=1)[kept] / samples[kept]
        return cls(tuple(means.tolist()), tuple(samples[kept].tolist()), width or per_batch, counts is not None,
                   per_batch)

    def batches(self) -> tuple[np.ndarray, np.ndarray]:
        """(batch means, samples per batch)."""
        return np.asarray(self.means, dtype=float), np.asarray(self.samples, dtype=float)

    @property
    def typical_per_second(self) -> float:
        """The median samples of a second read."""
        return float(np.median(self.samples)) / self.per_batch if self.samples else 0.0

    def half_width(self, level: float) -> float:
        """t(B - 1) · sd / sqrt(B) of the batch means: half the interval of their mean (inf below 2 batches)."""
        means, _ = self.batches()
        if len(means) < 2:
            return math.inf
        return t_quantile(0.5 + level / 2, len(means) - 1) * float(means.std(ddof=1)) / math.sqrt(len(means))

    def excess_half_width(self, level: float, variance_of_one: float) -> float:
        """The part of the batches' spread that sampling does not explain, as a half-width at `level`:
        t(B - 1) · sqrt(τ² / B) with τ² = var(batch means) - mean(variance_of_one / samples), at least 0.
        A steady run gets 0; one whose seconds move together gets as much as they disagree."""
        means, samples = self.batches()
        if len(means) < 2:
            return 0.0
        excess = float(means.var(ddof=1)) - float(np.mean(variance_of_one / samples))
        if excess <= 0:
            return 0.0
        return t_quantile(0.5 + level / 2, len(means) - 1) * math.sqrt(excess / len(means))

    def describe(self, unit: str) -> str:
        means, _ = self.batches()
        sd = float(means.std(ddof=1)) if len(means) > 1 else 0.0
        span = (f"{len(means)} seconds" if self.width == 1 else f"{len(means)} batches of {self.width} s"
                + (f" ({self.per_batch} s read of each)" if self.per_batch < self.width else ""))
        return f"per-second sd {sd:.3g} {unit} over {span}"


@dataclass(frozen=True)
class EndpointSample:
    """What one run recorded of one endpoint (or of Aggregated): plain data, built by runs.evidence."""

    requests: int
    failures: int
    rps: float | None
    hist: np.ndarray | None = None      # dense counts of timed requests (workers.stats layout); None: not kept
    total_us: int = 0
    min_us: int | None = None
    max_us: int | None = None
    per_second: dict[str, PerSecond] = field(default_factory=dict)  # by figure (rps, p50, ...); {}: no rows


@dataclass(frozen=True)
class Verdict:
    """The verdict of one cell: outcome, the change (other - base) and its interval, and why."""

    figure: str
    outcome: str
    base: Estimate
    other: Estimate
    change: float | None = None
    low: float = -math.inf
    high: float = math.inf
    minimum: float = 0.0
    reason: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        return OUTCOME_TEXT[self.outcome]


# -- distributions -------------------------------------------------------------------------------

def z_quantile(p: float) -> float:
    return NormalDist().inv_cdf(p)


@functools.lru_cache(maxsize=512)
def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (p > 0.5), by bisection on its CDF integrated numerically. Close enough (1e-6)."""
    if df <= 0:
        return math.inf
    if df > 1000:
        return z_quantile(p)
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        grid = np.linspace(0.0, x, 4001)
        pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(grid * grid / df))
        return 0.5 + float(np.trapezoid(pdf, grid))

    low, high = 0.0, 1.0
    while cdf(high) < p:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        if cdf(middle) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


_LOG_FACTORIAL = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, EXACT_BINOMIAL_UP_TO + 1)))))


def binomial_ppf(p: float, n: int, q: float) -> int:
    """The smallest k with P(Binomial(n, q) <= k) >= p."""
    mean, sd = n * q, math.sqrt(n * q * (1 - q))
    if n <= EXACT_BINOMIAL_UP_TO:
        # The pmf over mean ± 12 sd (all of it for small n): what lies beyond is below 1e-30.
        low, high = max(0, math.floor(mean - 12 * sd - 5)), min(n, math.ceil(mean + 12 * sd + 5))
        k = np.arange(low, high + 1)
        log_pmf = (_LOG_FACTORIAL[n] - _LOG_FACTORIAL[k] - _LOG_FACTORIAL[n - k] + k * math.log(q)
                   + (n - k) * math.log1p(-q))
        cdf = np.cumsum(np.exp(log_pmf - log_pmf.max()))
        cdf /= cdf[-1]
        return int(min(low + np.searchsorted(cdf, p - 1e-12, side="left"), n))
    return int(min(max(math.floor(mean + z_quantile(p) * sd + 0.5), 0), n))


def quantile_ranks(n: int, q: float, level: float) -> tuple[int, int]:
    """1-based ranks (j, k) of the order-statistic interval of the q-quantile of n samples:
    P(X(j) <= quantile <= X(k)) >= level. j < 1 or k > n: that side is not bounded by the samples."""
    alpha = 1 - level
    return binomial_ppf(alpha / 2, n, q), binomial_ppf(1 - alpha / 2, n, q) + 1


# -- one run's intervals -----------------------------------------------------------------------

def percentile_interval(hist: np.ndarray, q: float, level: float = LEVEL, *, min_us: float | None = None,
                        max_us: float | None = None) -> Estimate:
    """The q-quantile in ms (as Swarmdeck reports it) and its order-statistic interval; see the module docstring."""
    counts = np.asarray(hist)
    n = int(counts.sum())
    if n == 0:
        return NO_ESTIMATE
    value = percentile(counts, q, min_us=min_us, max_us=max_us)
    j, k = quantile_ranks(n, q, level)
    cumulative = np.cumsum(counts, dtype=np.int64)
    low_us = float(bucket_lows[np.searchsorted(cumulative, j, side="left")]) if j >= 1 else -math.inf
    high_us = float(bucket_highs[np.searchsorted(cumulative, k, side="left")]) if k <= n else math.inf
    if min_us is not None and j >= 1:
        low_us = max(low_us, float(min_us))
    if max_us is not None and k <= n:
        high_us = min(high_us, float(max_us))
    low_us, high_us = min(low_us, value), max(high_us, value)
    return Estimate(value / 1000, low_us / 1000, high_us / 1000, level, n,
                    f"order statistics: samples {j:,} and {k:,} of {n:,}" if j >= 1 and k <= n
                    else f"too few samples ({n:,}) to bound this percentile")


def mean_interval(hist: np.ndarray, total_us: float, level: float = LEVEL) -> Estimate:
    """The exact mean in ms and mean ± t standard errors, the spread taken from the histogram."""
    counts = np.asarray(hist, dtype=np.float64)
    n = int(counts.sum())
    if n == 0:
        return NO_ESTIMATE
    mean = total_us / n
    if n < 2:
        return Estimate(mean / 1000, -math.inf, math.inf, level, n, "one sample: no spread")
    nonzero = np.flatnonzero(counts)
    deviations = bucket_values[nonzero] - mean
    sd = math.sqrt(float(np.dot(counts[nonzero], deviations * deviations)) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Estimate(mean / 1000, float(mean - half) / 1000, float(mean + half) / 1000, level, n,
                    f"standard error {sd / math.sqrt(n) / 1000:.3g} ms of {n:,} samples")


def failure_interval(failures: int, requests: int, level: float = LEVEL) -> Estimate:
    """The failure ratio in % and its Wilson score interval."""
    if requests <= 0:
        return NO_ESTIMATE
    z = z_quantile(0.5 + level / 2)
    p = failures / requests
    denominator = 1 + z * z / requests
    centre = (p + z * z / (2 * requests)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / requests + z * z / (4 * requests * requests))
    low = 0.0 if failures == 0 else max(0.0, centre - half)        # exact ends, not rounding noise
    high = 1.0 if failures == requests else min(1.0, centre + half)
    return Estimate(100 * p, 100 * low, 100 * high, level, requests,
                    f"Wilson interval, {failures:,} of {requests:,} requests")


def rate_interval(rate: float | None, per_second: PerSecond | None, level: float = LEVEL) -> Estimate:
    """The shown RPS ± t(B - 1) · sd / sqrt(B) over the run's per-second counts (batch means)."""
    batches = len(per_second.batches()[0]) if per_second is not None else 0
    if rate is None or batches == 0:
        return NO_ESTIMATE   # no per-second rows: not judged
    if batches < 2:
        return Estimate(rate, -math.inf, math.inf, level, batches, "too few steady seconds for a spread")
    half = per_second.half_width(level)
    return Estimate(rate, rate - half, rate + half, level, batches, per_second.describe("/s"))


def widened(estimate: Estimate, per_second: PerSecond | None, variance_of_one: float | None) -> Estimate:
    """The estimate's interval widened by the per-second variation its samples do not explain (module
    docstring: per-second widening). `variance_of_one`: the figure's variance from one sample (its
    sampling variance at n samples is that / n); None when per-second values of it are not
    trustworthy (too few samples a second beyond a percentile): then by the whole per-second spread."""
    if estimate.value is None or not estimate.bounded or per_second is None:
        return estimate
    if variance_of_one is None:
        half = per_second.half_width(estimate.level)
        if math.isinf(half):
            return estimate
        low, high = min(estimate.low, estimate.value - half), max(estimate.high, estimate.value + half)
    else:
        half = per_second.excess_half_width(estimate.level, variance_of_one)
        if half == 0:
            return estimate
        low = estimate.value - math.hypot(estimate.value - estimate.low, half)
        high = estimate.value + math.hypot(estimate.high - estimate.value, half)
    low = max(low, 0.0)  # a response time is never negative, however wide the per-second spread
    if low == estimate.low and high == estimate.high:
        return estimate
    return Estimate(estimate.value, low, high, estimate.level, estimate.samples,
                    f"{estimate.method}; widened by the {per_second.describe('ms')}")


def _variance_of_one(estimate: Estimate, q: float | None, per_second: PerSecond | None) -> float | None:
    """What one sample contributes to the variance of the figure, read back from its sampling interval:
    half-width ≈ z · sqrt(v / n). None for a percentile whose per-second values have too few samples
    beyond it to be more than noise."""
    if not estimate.bounded or per_second is None or not per_second.weighted:
        return None
    if q is not None and per_second.typical_per_second * min(q, 1 - q) < MIN_TAIL_SAMPLES:
        return None
    z = z_quantile(0.5 + estimate.level / 2)
    half = (estimate.high - estimate.low) / 2
    return estimate.samples * (half / z) ** 2


def estimates(sample: EndpointSample | None, level: float = LEVEL) -> dict[str, Estimate]:
    """Every judged figure of one endpoint with its interval (NO_ESTIMATE where the data is missing)."""
    if sample is None:
        return {figure: NO_ESTIMATE for figure in FIGURES}
    seconds = sample.per_second or {}
    found = {"fail_pct": failure_interval(sample.failures, sample.requests, level),
             "rps": rate_interval(sample.rps, seconds.get("rps"), level)}
    timed = sample.hist is not None and sample.hist.sum() > 0
    if not timed:
        return {**found, **{figure: NO_ESTIMATE for figure in (*PERCENTILES, "mean_ms")}}
    for figure, q in PERCENTILES.items():
        plain = percentile_interval(sample.hist, q, level, min_us=sample.min_us, max_us=sample.max_us)
        found[figure] = widened(plain, seconds.get(figure), _variance_of_one(plain, q, seconds.get(figure)))
    plain = mean_interval(sample.hist, sample.total_us, level)
    found["mean_ms"] = widened(plain, seconds.get("mean_ms"), _variance_of_one(plain, None, seconds.get("mean_ms")))
    return found


# -- run-to-run noise ---------------------------------------------------------------------------

MIN_NOISE_RUNS = 3   # earlier equal runs needed before their spread says anything


def within_sd(estimate: Estimate) -> float:
    """The standard deviation an estimate's interval stands for: its half-width over the normal quantile."""
    return (estimate.high - estimate.low) / 2 / z_quantile(0.5 + estimate.level / 2)


def between_run_sd(values: list[float], within: list[float]) -> float:
    """How much equal runs differ beyond what each run's own interval says: the random effect of a run,
    sqrt(max(0, var(values) - mean(within²))) over the earlier runs' values of one figure and their
    within-run standard deviations. 0 with fewer than MIN_NOISE_RUNS runs (nothing known)."""
    if len(values) < MIN_NOISE_RUNS:
        return 0.0
    spread = float(np.var(np.asarray(values, dtype=float), ddof=1))
    excess = spread - float(np.mean(np.square(np.asarray(within, dtype=float))))
    return math.sqrt(excess) if excess > 0 else 0.0


def with_run_noise(estimate: Estimate, sd: float, runs: int, unit: str = "") -> Estimate:
    """The estimate's interval widened by run-to-run noise `sd` (between_run_sd, from `runs` earlier runs): in
    quadrature, z·sd on each side, as one more source of error independent of the run's own. With enough runs
    and no spread beyond their own intervals, the interval stays and its method says so."""
    if not estimate.bounded:
        return estimate
    if not sd:
        if runs < MIN_NOISE_RUNS:
            return estimate
        return Estimate(estimate.value, estimate.low, estimate.high, estimate.level, estimate.samples,
                        f"{estimate.method}; no run-to-run noise beyond their own intervals between {runs} earlier "
                        "runs with these parameters and labels")
    half = z_quantile(0.5 + estimate.level / 2) * sd
    low = max(0.0, estimate.value - math.hypot(estimate.value - estimate.low, half))  # every figure is >= 0
    high = estimate.value + math.hypot(estimate.high - estimate.value, half)
    return Estimate(estimate.value, low, high, estimate.level, estimate.samples,
                    f"{estimate.method}; widened by run-to-run noise (sd {sd:.3g}{' ' + unit if unit else ''} between "
                    f"{runs} earlier runs with these parameters and labels)")


# -- two runs --------------------------------------------------------------------------------

def difference(base: Estimate, other: Estimate) -> tuple[float, float, float]:
    """(change, low, high) of other - base: the MOVER interval (module docstring)."""
    change = other.value - base.value
    low = change - math.hypot(other.value - other.low, base.high - base.value)
    high = change + math.hypot(other.high - other.value, base.value - base.low)
    return change, low, high


def judge(figure: str, base: Estimate, other: Estimate, rule: Rule = Rule()) -> Verdict:
    """better / worse / same (no significant change) / unknown (a figure missing, or too few samples to bound
    it) for one cell."""
    if base.value is None or other.value is None:
        return Verdict(figure, UNKNOWN, base, other, reason="not measured in both runs")
    change, low, high = difference(base, other)
    minimum = rule.minimum(figure, base.value)
    verdict = functools.partial(Verdict, figure, base=base, other=other, change=change, low=low, high=high,
                                minimum=minimum)
    if low <= 0 <= high:
        if not (base.bounded and other.bounded):  # the data cannot say either way: not "no change"
            return verdict(UNKNOWN, reason="too few samples to bound it")
        return verdict(SAME, reason="the interval of the change includes zero")
    if abs(change) < minimum:
        return verdict(SAME, reason="smaller than the minimum effect")
    lower_is_better = BETTER[figure] == "lower"
    improved = change < 0 if lower_is_better else change > 0
    return verdict(BETTER_ if improved else WORSE, reason="significant")


def compare(base: EndpointSample | None, other: EndpointSample | None, rule: Rule = Rule(),
            noise: dict[str, float] | None = None, noise_runs: int = 0) -> dict[str, Verdict]:
    """Every judged figure of one endpoint in two runs; `noise`: the figures' run-to-run sd (between_run_sd of
    `noise_runs` earlier runs), which widens both runs' intervals."""
    mine, theirs = estimates(base, rule.level), estimates(other, rule.level)
    noise = noise or {}
    return {figure: judge(figure, with_run_noise(mine[figure], noise.get(figure, 0.0), noise_runs, NOISE_UNITS[figure]),
                          with_run_noise(theirs[figure], noise.get(figure, 0.0), noise_runs, NOISE_UNITS[figure]),
                          rule)
            for figure in FIGURES}
