"""Rolling windows of a live run: its last N seconds, merged across every slot, per scope.

A criterion may judge a window instead of the run's totals ("p95 of the last 60 s ≤ 300 ms",
"failure ratio over any 30 s window ≤ 5%"). The collector hands every second it closes
(`RunStats.close_ticks(seconds=...)`, already merged across slots) to the run's `Tracker`, which
keeps, for each scope (the total or one endpoint) and window length the criteria need:
- a ring of the last N seconds: per second the scope's counters and sparse histogram;
- their running sum (a dense histogram, counts, failures, time), so a window's p95, mean,
  failure ratio and RPS are exact from the merged histogram, never an average of percentiles.

Each closed second ends one window per criterion; a window counts once it is full (N seconds
seen). Per criterion the tracker keeps the newest windows (for `last`, and for the live check)
and the worst one before them (for `any`). At the end, partial seconds are left out: the
verdict judges only windows that end at or before the last whole second of the run.

Seconds are counted from the run's go, as ticks are. Pure: numpy and workers.stats, no Django.
The tracker lives in the collector's memory: a collector that restarts starts its windows again
from the first second it closes (`Tracker.first_second` says from when).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from workers.stats import NUM_BUCKETS, ClosedSecond, percentiles

LAST, ANY = "last", "any"
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
MEAN, FAILURE_RATIO, RPS = "mean", "failure_ratio", "rps"
RECENT = 4   # newest windows kept per criterion: the end's partial seconds are never more than that


@dataclass(frozen=True, slots=True)
class Spec:
    """A windowed criterion as the tracker needs it."""

    id: int
    metric: str      # p50, p95, p99, mean, failure_ratio or rps
    endpoint: str    # "" for the total, else "METHOD name"
    seconds: int
    kind: str        # LAST or ANY


@dataclass(frozen=True, slots=True)
class Result:
    """One full window of one criterion: seconds [start, end) since go, and what it measured there."""

    start: int
    end: int
    value: float | None   # None: no requests in the window (or, for RPS, none in the run yet)
    requests: int


@dataclass(slots=True)
class Part:
    """One second of one scope: its counters and its sparse histogram (distinct buckets, their counts),
    small (uint16 + uint32 per bucket): a ring of a long window holds one per second."""

    requests: int
    failures: int
    total_us: int
    min_us: int | None
    max_us: int | None
    buckets: np.ndarray
    counts: np.ndarray


def endpoint_label(method: str, name: str) -> str:
    """An endpoint as criteria name it: "GET /cart" (the name alone for a method-less one)."""
    return f"{method} {name}".strip()


def scope_part(second: ClosedSecond, endpoint: str) -> Part:
    """What one closed second holds for a scope: every endpoint for "", else the one named."""
    if endpoint:
        mask = np.fromiter((endpoint_label(*second.names[row]) == endpoint for row in second.rows.tolist()),
                           dtype=bool, count=len(second.rows))
        rows = second.rows[mask]
    else:
        rows = second.rows
    scalars = second.scalars[mask] if endpoint else second.scalars
    in_scope = np.isin(second.flat // NUM_BUCKETS, rows) if endpoint else slice(None)
    dense = np.bincount(second.flat[in_scope] % NUM_BUCKETS, weights=second.counts[in_scope], minlength=NUM_BUCKETS)
    buckets = np.flatnonzero(dense)
    timed = scalars[:, 5] >= 0
    return Part(
        requests=int(scalars[:, 0].sum()), failures=int(scalars[:, 1].sum()), total_us=int(scalars[:, 2].sum()),
        min_us=int(scalars[timed, 4].min()) if timed.any() else None,
        max_us=int(scalars[timed, 5].max()) if timed.any() else None,
        buckets=buckets.astype(np.uint16), counts=dense[buckets].astype(np.uint32))


class Window:
    """The last `seconds` seconds of one scope: a ring of seconds and their running sum."""

    def __init__(self, seconds: int):
        self.seconds = seconds
        self.ring: deque[tuple[int, Part]] = deque()
        self.hist = np.zeros(NUM_BUCKETS, dtype=np.uint64)
        self.requests = self.failures = self.total_us = 0
        self.first: int | None = None   # the first second this window saw
        self.newest = -1                # the newest second added
        self.seen_requests = False      # the scope had requests at some point

    def add(self, second: int, part: Part) -> None:
        """Add the next second (seconds come in order; missing ones had nothing) and drop those now outside."""
        if self.first is None:
            self.first = second
        self.newest = second
        self.ring.append((second, part))
        self._count(part, +1)
        self.seen_requests = self.seen_requests or part.requests > 0
        while self.ring and self.ring[0][0] <= second - self.seconds:
            self._count(self.ring.popleft()[1], -1)

    def _count(self, part: Part, sign: int) -> None:
        self.requests += sign * part.requests
        self.failures += sign * part.failures
        self.total_us += sign * part.total_us
        if len(part.buckets):
            index, counts = part.buckets.astype(np.intp), part.counts.astype(np.uint64)
            if sign > 0:
                self.hist[index] += counts   # distinct buckets: plain fancy indexing adds each once
            else:
                self.hist[index] -= counts

    @property
    def full(self) -> bool:
        return self.first is not None and self.newest - self.first + 1 >= self.seconds

    def measure(self, metric: str) -> float | None:
        """The window's figure in the unit criteria use (ms, %, requests/s); None without requests."""
        if metric == RPS:
            return self.requests / self.seconds if self.seen_requests else None
        if not self.requests:
            return None
        if metric == FAILURE_RATIO:
            return 100.0 * self.failures / self.requests
        timed = int(self.hist.sum())
        if not timed:
            return None
        if metric == MEAN:
            return self.total_us / timed / 1000
        parts = [part for _, part in self.ring if part.min_us is not None]
        low = min(part.min_us for part in parts)
        high = max(part.max_us for part in parts)
        value = percentiles(self.hist, (QUANTILES[metric],), min_us=low, max_us=high)[QUANTILES[metric]]
        return None if value is None else value / 1000

    def result(self, metric: str) -> Result:
        return Result(self.newest - self.seconds + 1, self.newest + 1, self.measure(metric), self.requests)


def worse(metric: str, a: float, b: float) -> bool:
    """Is `a` worse than `b`? RPS is a floor (lower is worse); everything else a ceiling."""
    return a < b if metric == RPS else a > b


@dataclass
class Watch:
    """One criterion's windows over the run: the newest few, and the worst of those before them."""

    spec: Spec
    recent: deque[Result] = field(default_factory=lambda: deque(maxlen=RECENT))
    settled_worst: Result | None = None
    windows: int = 0

    def push(self, result: Result) -> None:
        if len(self.recent) == RECENT:
            self.settled_worst = self.worst_of([self.recent[0]], self.settled_worst)
        self.recent.append(result)
        self.windows += 1

    def worst_of(self, results: list[Result], worst: Result | None = None) -> Result | None:
        for result in results:
            if result.value is None:
                continue
            if worst is None or worst.value is None or worse(self.spec.metric, result.value, worst.value):
                worst = result
        return worst

    def final(self, through: int | None) -> Result | None:
        """`last`: the newest window ending by second `through`; `any`: the worst of them (None: all)."""
        recent = [r for r in self.recent if through is None or r.end <= through]
        if self.spec.kind == LAST:
            return recent[-1] if recent else None
        worst = self.worst_of(recent, self.settled_worst)
        if worst is None and recent:  # no window had requests: say so on the newest one
            return recent[-1]
        return worst


class Tracker:
    """A live run's rolling windows, one per (scope, length) its windowed criteria need."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, int], Window] = {}
        self.watches: dict[int, Watch] = {}
        self.duration: float | None = None   # seconds the users ran, as the pools measured it

    @property
    def active(self) -> bool:
        return bool(self.watches)

    def configure(self, specs: list[Spec]) -> None:
        """Follow the criteria as they are now: a new or changed one starts watching from the next second."""
        wanted = {spec.id: spec for spec in specs}
        self.watches = {pk: watch for pk, watch in self.watches.items() if wanted.get(pk) == watch.spec}
        for spec in specs:
            self.watches.setdefault(spec.id, Watch(spec))
        needed = {(w.spec.endpoint, w.spec.seconds) for w in self.watches.values()}
        self.windows = {key: window for key, window in self.windows.items() if key in needed}
        for endpoint, seconds in needed:
            self.windows.setdefault((endpoint, seconds), Window(seconds))

    def feed(self, seconds: list[ClosedSecond]) -> None:
        """Closed seconds, in order: each moves every window on and ends one window per criterion."""
        for second in seconds:
            parts: dict[str, Part] = {}
            for (endpoint, _), window in self.windows.items():
                if second.tick <= window.newest:
                    continue  # a window added by configure() since may not see a second twice
                part = parts.get(endpoint)
                if part is None:
                    part = parts[endpoint] = scope_part(second, endpoint)
                window.add(second.tick, part)
            for watch in self.watches.values():
                window = self.windows[(watch.spec.endpoint, watch.spec.seconds)]
                if window.full and window.newest == second.tick:
                    watch.push(window.result(watch.spec.metric))

    def latest(self, criterion_id: int) -> Result | None:
        """The newest full window of a criterion (the live check)."""
        watch = self.watches.get(criterion_id)
        return watch.recent[-1] if watch and watch.recent else None

    def final(self, criterion_id: int) -> Result | None:
        """A criterion's window for the verdict, among those made only of whole seconds of the run."""
        watch = self.watches.get(criterion_id)
        if watch is None:
            return None
        through = math.floor(self.duration + 1e-6) if self.duration is not None else None
        return watch.final(through)

    def first_second(self, criterion_id: int) -> int | None:
        """The first second of the run the criterion's windows saw (0 unless the collector restarted or
        the criterion was added while the run went)."""
        watch = self.watches.get(criterion_id)
        window = self.windows.get((watch.spec.endpoint, watch.spec.seconds)) if watch else None
        return window.first if window else None


def spec_of(criterion) -> Spec:
    """A Threshold (or anything with its attributes) with a window, as the tracker watches it."""
    return Spec(id=criterion.pk, metric=criterion.metric, endpoint=criterion.endpoint or "",
                seconds=int(criterion.window_seconds), kind=criterion.window or LAST)
