"""Latency histogram, pool-side recorder and mergeable run statistics.

Pure: numpy, msgpack and the standard library only. No Django, no locust, no gevent: the collector and the web
process import this module, and `import locust` would monkey-patch them.

Response times are integer microseconds in one fixed, global bucket layout, so merging the
statistics of any number of pools is plain vector addition (associative, commutative), and
applying a snapshot is idempotent per slot through its sequence number.

Bucket layout (``NUM_BUCKETS`` = 3328):
- 0..255 µs: one exact bucket per value (index = value);
- above: log-linear, 128 sub-buckets per power of two up to 2**32 µs (~71 min); larger
  values clamp into the last bucket.
A bucket is at most 1/128 of its lower bound wide, so its representative value (its
midpoint) is within 1/256 (0.39 %) of any value in it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from operator import itemgetter

import msgpack
import numpy as np

SUB_BUCKET_BITS = 7
SUB_BUCKETS = 1 << SUB_BUCKET_BITS            # 128 sub-buckets per power of two
MAX_SHIFT = 32 - SUB_BUCKET_BITS - 1          # 24: the octave [2**31, 2**32)
NUM_BUCKETS = (MAX_SHIFT + 2) * SUB_BUCKETS   # 3328
MAX_TRACKED_US = (1 << 32) - 1
RELATIVE_ERROR = 1 / (2 * SUB_BUCKETS)        # worst case of a bucket's midpoint: 0.39 %

PERCENTILES = (0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)
TICK_PERCENTILES = (0.50, 0.95, 0.99)
MAX_ENDPOINTS = 500         # distinct names a run keeps apart by default (SWARMDECK_MAX_ENDPOINTS); then OTHER_NAME
OTHER_NAME = "(other)"
MAX_ERRORS = 1_000          # distinct (method, name, error) rows of a run; the rest fold into OTHER_ERRORS
OTHER_ERRORS = "(other errors)"
MAX_EXCEPTIONS = 200        # distinct (message, traceback) rows of a run; the rest fold into OTHER_EXCEPTIONS
OTHER_EXCEPTIONS = "(other exceptions)"
AGGREGATE_NAME = "Aggregated"
STATE_VERSION = 2          # 1: plain msgpack, int64 positions, uint64 counts (still read: runs stored it)

# Columns of a snapshot's per-endpoint counters, in the order the wire and RunStats keep them:
# the first four add up, min_us takes the minimum, max_us the maximum.
SCALAR_FIELDS = ("count", "failures", "total_us", "bytes", "min_us", "max_us")
_SUMS = slice(0, 4)
_MIN, _MAX = 4, 5
_NO_MIN = np.iinfo(np.int64).max   # min_us/max_us of an endpoint without timed requests
_NO_MAX = -1


# -- histogram ---------------------------------------------------------------------------------

def bucket_of(us: int) -> int:
    """Bucket index of a response time in µs (hot path: a few integer operations)."""
    if us < 256:
        return us if us > 0 else 0
    shift = us.bit_length() - 8
    if shift > MAX_SHIFT:
        return NUM_BUCKETS - 1
    return (shift << SUB_BUCKET_BITS) + (us >> shift)


def buckets_of(us: np.ndarray) -> np.ndarray:
    """Vectorised `bucket_of`, for tests and benchmarks."""
    values = np.clip(np.asarray(us, dtype=np.int64), 0, MAX_TRACKED_US)
    bit_length = np.frexp(values.astype(np.float64))[1].astype(np.int64)  # exact below 2**53
    shift = np.maximum(bit_length - 8, 0)
    return (shift << SUB_BUCKET_BITS) + (values >> shift)


def _bucket_values() -> np.ndarray:
    index = np.arange(NUM_BUCKETS, dtype=np.int64)
    shift = np.maximum((index >> SUB_BUCKET_BITS) - 1, 0)
    low = (index - (shift << SUB_BUCKET_BITS)) << shift
    return low + ((1 << shift) - 1) / 2  # midpoint of the integers low .. low + width - 1 (exact below 256)


def _bucket_edges() -> tuple[np.ndarray, np.ndarray]:
    index = np.arange(NUM_BUCKETS, dtype=np.int64)
    shift = np.maximum((index >> SUB_BUCKET_BITS) - 1, 0)
    low = (index - (shift << SUB_BUCKET_BITS)) << shift
    return low, low + (1 << shift) - 1


_bucket_low, _bucket_high = _bucket_edges()  # the smallest and largest µs of each bucket
bucket_lows: np.ndarray = _bucket_low
"""The smallest µs of each bucket (int64), e.g. for confidence intervals that must cover a whole bucket."""
bucket_highs: np.ndarray = _bucket_high
"""The largest µs of each bucket (int64)."""
bucket_lows.setflags(write=False)
bucket_highs.setflags(write=False)
bucket_values: np.ndarray = _bucket_values()
"""Representative µs of each bucket (float64): the value itself below 256 µs, else the midpoint."""
bucket_values.setflags(write=False)


def sparse_percentiles(flat: np.ndarray, counts: np.ndarray, qs=PERCENTILES) -> tuple[np.ndarray, np.ndarray]:
    """Percentiles of many histograms at once, from one cumulative sum.

    `flat` holds the distinct, sorted positions ``row * NUM_BUCKETS + bucket`` of nonzero
    `counts`. Returns (rows, values): the rows present, and per row and q the representative
    µs of the bucket holding the sample of rank int(n * q) (0-based, at most n - 1) — the rank
    Locust's calculate_response_time_percentile picks with its descending walk.
    """
    if len(flat) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(qs)))
    cumulative = np.cumsum(counts, dtype=np.int64)
    rows, first = np.unique(flat // NUM_BUCKETS, return_index=True)
    last = np.append(first[1:], len(flat)) - 1
    before = np.where(first > 0, cumulative[first - 1], 0)
    totals = cumulative[last] - before
    # int(n * q) with the same float64 arithmetic as Locust.
    ranks = np.minimum((totals[:, None] * np.asarray(qs, dtype=np.float64)).astype(np.int64), totals[:, None] - 1)
    positions = np.searchsorted(cumulative, before[:, None] + ranks, side="right")
    return rows, bucket_values[flat[positions] % NUM_BUCKETS]


def _clamp(values: np.ndarray, qs, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
    """Exact min/max for q = 0 and 1, and every other percentile inside [min, max]."""
    values = np.clip(values, mins[:, None], maxs[:, None])
    qs = np.asarray(qs)
    values[:, qs >= 1.0] = maxs[:, None]
    values[:, qs <= 0.0] = mins[:, None]
    return values


def percentiles(hist: np.ndarray, qs=PERCENTILES, *, min_us: float | None = None,
                max_us: float | None = None) -> dict[float, float | None]:
    """Percentiles in µs of one dense count vector (None without samples).

    Given the exact min/max the caller tracked, q=0 and q=1 answer them exactly and every
    other result is clamped into them.
    """
    flat = np.flatnonzero(hist)
    _, values = sparse_percentiles(flat, np.asarray(hist)[flat], qs)
    if len(values) == 0:
        return {q: None for q in qs}
    if min_us is not None or max_us is not None:
        low = bucket_values[flat[0]] if min_us is None else float(min_us)
        high = bucket_values[flat[-1]] if max_us is None else float(max_us)
        values = _clamp(values, qs, np.array([low]), np.array([high]))
    return {q: float(v) for q, v in zip(qs, values[0])}


def percentile(hist: np.ndarray, q: float, *, min_us: float | None = None,
               max_us: float | None = None) -> float | None:
    """One percentile in µs; see `percentiles`."""
    return percentiles(hist, (q,), min_us=min_us, max_us=max_us)[q]


def percentile_key(q: float) -> str:
    """Row key of a percentile: 0.5 -> "p50", 0.999 -> "p99.9", 1.0 -> "p100"."""
    return f"p{round(q * 100, 4):g}"


def parse_error(error: BaseException | str | None) -> str:
    """Locust's StatsError.parse_error: drop memory addresses so equal errors group."""
    text = error if isinstance(error, str) else repr(error)
    target = "object at 0x"
    index = text.find(target)
    if index < 0:
        return text
    start = index + len(target) - 2
    end = text.find(">", start)
    if end < 0:
        return text
    return text.replace(text[start:end], "0x....")


# -- pool side ---------------------------------------------------------------------------------

@dataclass(slots=True)
class _EndpointDelta:
    count: int = 0
    failures: int = 0
    total_us: int = 0
    min_us: int = MAX_TRACKED_US + 1
    max_us: int = 0
    bytes: int = 0
    hist: dict[int, int] = field(default_factory=dict)


class Recorder:
    """Per-pool accumulator of one snapshot interval; `record` runs on every request event.

    With `max_endpoints` (the run's cap, from the pool's assignment) it folds names past the
    first `max_endpoints` of the run into "(other)" of their method, as RunStats does, so a
    snapshot never carries more names than the collector keeps.
    """

    def __init__(self, max_endpoints: int | None = None) -> None:
        self.max_endpoints = max_endpoints
        self._named: set[tuple[str, str]] = set()   # the names of the run that count against max_endpoints
        self._endpoints: dict[tuple[str, str], _EndpointDelta] = {}
        self._errors: dict[tuple[str, str, str], int] = {}
        self._exceptions: dict[tuple[str, str], int] = {}

    def _admit(self, method: str, name: str) -> tuple[str, str]:
        """The row of a name new in this interval: its own while the run has room, else "(other)"."""
        key = (method, name)
        if self.max_endpoints is None or name == OTHER_NAME or key in self._named:
            return key
        if len(self._named) < self.max_endpoints:
            self._named.add(key)
            return key
        return method, OTHER_NAME

    def record(self, method: str, name: str, response_time_ms: float | None, response_length: int | None,
               exception: BaseException | str | None) -> None:
        """Count one request. A None response time counts it without timing it, as Locust does."""
        key = (method, name)
        entry = self._endpoints.get(key)
        if entry is None:
            key = self._admit(method, name)
            entry = self._endpoints.get(key)
            if entry is None:
                entry = self._endpoints[key] = _EndpointDelta()
        entry.count += 1
        if response_length:
            entry.bytes += response_length
        if response_time_ms is not None:
            us = round(response_time_ms * 1000)
            if us < 0:
                us = 0
            entry.total_us += us
            if us < entry.min_us:
                entry.min_us = us
            if us > entry.max_us:
                entry.max_us = us
            if us < 256:  # bucket_of, inlined: this runs once per request
                bucket = us
            else:
                shift = us.bit_length() - 8
                bucket = NUM_BUCKETS - 1 if shift > MAX_SHIFT else (shift << SUB_BUCKET_BITS) + (us >> shift)
            hist = entry.hist
            hist[bucket] = hist.get(bucket, 0) + 1
        if exception is not None:
            entry.failures += 1
            error_key = (key[0], key[1], parse_error(exception))
            self._errors[error_key] = self._errors.get(error_key, 0) + 1

    def record_exception(self, message: str, traceback: str) -> None:
        """An exception raised in user code outside a request (Locust's Exceptions tab)."""
        key = (message, traceback)
        self._exceptions[key] = self._exceptions.get(key, 0) + 1

    @property
    def pending(self) -> int:
        """Requests recorded since the last `take_delta`."""
        return sum(entry.count for entry in self._endpoints.values())

    def take_delta(self, *, run: int, slot: int, seq: int, tick: int, elapsed: float, users: int, cpu: float,
                   kind: str = "delta", classes: dict[str, int] | None = None, lag_ms: float = 0.0) -> dict:
        """The snapshot of everything recorded since the last call, which starts a new interval.
        `classes`: the users running now per user class (the live page's Current ratio); `lag_ms`: the most
        the pool's event loop was late in that interval (workers.pool.LagProbe)."""
        endpoints = []
        for (method, name), entry in self._endpoints.items():
            items = sorted(entry.hist.items())
            endpoints.append({
                "method": method, "name": name, "count": entry.count, "failures": entry.failures,
                "total_us": entry.total_us, "min_us": entry.min_us if entry.hist else 0, "max_us": entry.max_us,
                "bytes": entry.bytes,
                "hist": (np.fromiter((b for b, _ in items), dtype=np.uint16, count=len(items)),
                         np.fromiter((c for _, c in items), dtype=np.uint32, count=len(items))),
            })
        snapshot = {
            "v": 1, "kind": kind, "run": run, "slot": slot, "seq": seq, "tick": tick, "elapsed": float(elapsed),
            "users": users, "cpu": float(cpu), "lag_ms": float(lag_ms), "classes": dict(classes or {}),
            "endpoints": endpoints,
            "errors": [{"method": m, "name": n, "error": e, "count": c} for (m, n, e), c in self._errors.items()],
            "exceptions": [{"message": m, "traceback": t, "count": c} for (m, t), c in self._exceptions.items()],
        }
        self._endpoints = {}
        self._errors = {}
        self._exceptions = {}
        return snapshot


# -- a snapshot's endpoints as arrays ----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Columns:
    """A snapshot's endpoints as a few arrays: what the wire carries and RunStats merges.

    wire.decode returns them under the snapshot's "columns" key (alongside the per-endpoint
    dicts), so the collector merges a snapshot in a handful of numpy calls.
    """

    names: tuple[tuple[str, str], ...]   # (method, name) per endpoint
    scalars: np.ndarray                  # int64 (endpoints, 6), SCALAR_FIELDS order
    lengths: np.ndarray                  # histogram entries per endpoint
    index: np.ndarray                    # every endpoint's bucket indexes, concatenated
    counts: np.ndarray                   # and their counts


def columns_of(endpoints: list[dict]) -> Columns:
    """Columns from the per-endpoint dicts of a snapshot (as Recorder.take_delta makes them)."""
    hists = [(np.asarray(e["hist"][0], dtype=np.uint16), np.asarray(e["hist"][1], dtype=np.uint32))
             for e in endpoints]
    for e, (index, counts) in zip(endpoints, hists):
        if index.shape != counts.shape:
            raise ValueError(f"Endpoint {e['method']} {e['name']}: {len(index)} bucket indexes, {len(counts)} counts.")
    return Columns(
        names=tuple((e["method"], e["name"]) for e in endpoints),
        scalars=np.array([[e[f] for f in SCALAR_FIELDS] for e in endpoints], dtype=np.int64).reshape(-1, 6),
        lengths=np.array([len(index) for index, _ in hists], dtype=np.int64),
        index=np.concatenate([index for index, _ in hists]) if hists else np.zeros(0, dtype=np.uint16),
        counts=np.concatenate([counts for _, counts in hists]) if hists else np.zeros(0, dtype=np.uint32),
    )


def _reduce_rows(rows: np.ndarray, scalars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge scalar rows that share a row id: sums add, min_us takes the min, max_us the max."""
    unique, inverse = np.unique(rows, return_inverse=True)
    merged = np.zeros((len(unique), 6), dtype=np.int64)
    merged[:, _MIN] = _NO_MIN
    merged[:, _MAX] = _NO_MAX
    np.add.at(merged[:, _SUMS], inverse, scalars[:, _SUMS])
    np.minimum.at(merged[:, _MIN], inverse, scalars[:, _MIN])
    np.maximum.at(merged[:, _MAX], inverse, scalars[:, _MAX])
    return unique, merged


def _reduce_flat(flat: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum counts at equal positions; positions come back sorted and distinct.

    Through a dense scratch vector rather than np.unique: positions are bounded by
    rows x NUM_BUCKETS, and one add.at there is several times faster than a sort.
    """
    if len(flat) == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint64)
    dense = np.zeros(int(flat.max()) + 1, dtype=np.uint64)
    np.add.at(dense, flat, np.asarray(counts, dtype=np.uint64))
    unique = np.flatnonzero(dense)
    return unique, dense[unique]


# -- collector side ----------------------------------------------------------------------------

@dataclass(slots=True)
class EndpointTotals:
    """Running totals of one endpoint, as reported (min/max None before any timed request)."""

    method: str
    name: str
    count: int = 0
    failures: int = 0
    total_us: int = 0
    bytes: int = 0
    min_us: int | None = None
    max_us: int | None = None


@dataclass(slots=True)
class SlotState:
    """What RunStats knows of one slot: its high-water mark and its latest figures."""

    last_seq: int = 0
    users: int = 0
    cpu: float = 0.0
    tick: int = -1
    final: bool = False


@dataclass
class _Tick:
    """One open second, accumulated lazily: its parts are reduced once, when it closes."""

    users: dict[int, tuple[int, int]] = field(default_factory=dict)  # slot -> (seq, users) of its latest delta
    rows: list[np.ndarray] = field(default_factory=list)
    scalars: list[np.ndarray] = field(default_factory=list)
    flat: list[np.ndarray] = field(default_factory=list)              # row * NUM_BUCKETS + bucket
    counts: list[np.ndarray] = field(default_factory=list)

    def compact(self) -> None:
        """Reduce the parts to one (bounds memory when many slots report into one second)."""
        if len(self.rows) > 1:
            rows, scalars = _reduce_rows(np.concatenate(self.rows), np.concatenate(self.scalars))
            self.rows, self.scalars = [rows], [scalars]
        if len(self.flat) > 1:
            flat, counts = _reduce_flat(np.concatenate(self.flat), np.concatenate(self.counts))
            self.flat, self.counts = [flat], [counts]


_TICK_COMPACT_PARTS = 32
_error_key = itemgetter("method", "name", "error")   # an error row's key, built in C (apply reads thousands a second)


@dataclass(frozen=True, slots=True)
class ClosedSecond:
    """One closed second's merged counters and histograms, what rolling windows add up (runs/windows.py).

    `rows` index `names`, the run's (method, name) per row (a list that only grows); `scalars` are
    their SCALAR_FIELDS (min/max neutral for an endpoint without timed requests); `flat` holds
    the positions ``row * NUM_BUCKETS + bucket`` of the histogram `counts`.
    """

    tick: int
    names: list[tuple[str, str]]
    rows: np.ndarray
    scalars: np.ndarray
    flat: np.ndarray
    counts: np.ndarray


def _timed_scalars(columns: Columns) -> np.ndarray:
    """Scalars with min/max of endpoints without timed requests set to neutral values."""
    scalars = np.array(columns.scalars, dtype=np.int64)
    untimed = columns.lengths == 0
    if untimed.any():
        scalars[untimed, _MIN] = _NO_MIN
        scalars[untimed, _MAX] = _NO_MAX
    return scalars


class RunStats:
    """All statistics of one run, merged from every slot's snapshots.

    One row per endpoint in a dense 2-D histogram (rows x NUM_BUCKETS) and a scalar array, so
    a snapshot merges with a few vectorised additions. `apply` is idempotent per slot (a
    snapshot whose seq is not above the slot's high-water mark is ignored; a slot's stream is
    ordered) and merging is addition, so the order in which slots interleave does not matter.
    One exception: once `max_endpoints` names exist (the run's cap, MAX_ENDPOINTS unless the
    setting says otherwise), which later names fold into "(other)" depends on which arrived
    first — as in Locust.
    """

    def __init__(self, max_endpoints: int = MAX_ENDPOINTS) -> None:
        self.max_endpoints = max_endpoints
        self._rows: dict[tuple[str, str], int] = {}
        self._names: list[tuple[str, str]] = []
        self._named = 0  # rows that count against max_endpoints (all but "(other)")
        self._allocate(8)
        self.errors: dict[tuple[str, str, str], int] = {}
        self.exceptions: dict[tuple[str, str], int] = {}
        self.slots: dict[int, SlotState] = {}
        self.overflowed = False
        self.errors_overflowed = False  # error or exception rows past MAX_ERRORS / MAX_EXCEPTIONS
        self.closed_through = -1   # ticks up to this one were handed out by close_ticks
        self.late_snapshots = 0    # merged into the totals, but too late for their (closed) tick
        self._ticks: dict[int, _Tick] = {}
        self._late_rows: set[int] = set()   # endpoints a late snapshot changed since the last cumulative close

    def _allocate(self, capacity: int) -> None:
        hist = np.zeros((capacity, NUM_BUCKETS), dtype=np.uint64)
        scalars = np.zeros((capacity, 6), dtype=np.int64)
        scalars[:, _MIN] = _NO_MIN
        scalars[:, _MAX] = _NO_MAX
        if hasattr(self, "_hist"):
            hist[: len(self._hist)] = self._hist
            scalars[: len(self._scalars)] = self._scalars
        self._hist = hist
        self._hist_flat = hist.reshape(-1)  # a view: flat positions row * NUM_BUCKETS + bucket
        self._scalars = scalars

    # -- merging -------------------------------------------------------------------------------
    def _row_of(self, method: str, name: str) -> int:
        row = self._rows.get((method, name))
        if row is not None:
            return row
        if name == OTHER_NAME:
            self.overflowed = True   # a pool folded names past the run's cap (Recorder), or this did
        elif self._named >= self.max_endpoints:
            # Not remembered per name: a run with a million distinct URLs must not grow a
            # million-entry map (nor a million-entry persisted state).
            self.overflowed = True
            row = self._rows.get((method, OTHER_NAME))
            return row if row is not None else self._add_row(method, OTHER_NAME)
        return self._add_row(method, name)

    def _add_row(self, method: str, name: str) -> int:
        row = len(self._names)
        if row >= len(self._hist):
            self._allocate(2 * len(self._hist))
        self._names.append((method, name))
        self._rows[(method, name)] = row
        if name != OTHER_NAME:
            self._named += 1
        return row

    def apply(self, snapshot: dict) -> bool:
        """Merge one snapshot; False (and nothing changes) when the slot already sent this seq."""
        slot, seq = snapshot["slot"], snapshot["seq"]
        state = self.slots.get(slot)
        if state is None:
            state = self.slots[slot] = SlotState()
        elif seq <= state.last_seq:
            return False

        columns = snapshot.get("columns") or columns_of(snapshot["endpoints"])
        row_list = list(map(self._rows.get, columns.names))
        if None in row_list:
            row_list = [self._row_of(method, name) for method, name in columns.names]
        rows = np.asarray(row_list, dtype=np.intp)
        scalars = _timed_scalars(columns)
        # ufunc.at, not `a[rows] += …`: names folded into "(other)" can repeat a row.
        np.add.at(self._scalars[:, _SUMS], rows, scalars[:, _SUMS])
        np.minimum.at(self._scalars[:, _MIN], rows, scalars[:, _MIN])
        np.maximum.at(self._scalars[:, _MAX], rows, scalars[:, _MAX])
        flat = np.repeat(rows * NUM_BUCKETS, columns.lengths) + columns.index
        counts = columns.counts.astype(np.uint64)  # ufunc.at is only fast with matching dtypes
        np.add.at(self._hist_flat, flat, counts)

        errors = self.errors
        for error in snapshot["errors"]:
            key = _error_key(error)
            try:
                errors[key] += error["count"]
            except KeyError:
                # A new error, or one of a name folded into "(other)": fold it the same way.
                method, name = self._names[self._row_of(key[0], key[1])]
                key = (method, name, key[2])
                if key not in errors and len(errors) >= MAX_ERRORS:
                    key = (method, name, OTHER_ERRORS)  # like endpoint names: capped, counted, said
                    self.errors_overflowed = True
                errors[key] = errors.get(key, 0) + error["count"]
        exceptions = self.exceptions
        for exception in snapshot["exceptions"]:
            key = (exception["message"], exception["traceback"])
            if key not in exceptions and len(exceptions) >= MAX_EXCEPTIONS:
                key = (OTHER_EXCEPTIONS, "")
                self.errors_overflowed = True
            exceptions[key] = exceptions.get(key, 0) + exception["count"]

        state.last_seq = seq
        state.users = snapshot["users"]
        state.cpu = snapshot["cpu"]
        state.tick = max(state.tick, snapshot["tick"])
        state.final = state.final or snapshot["kind"] == "final"
        self._add_to_tick(snapshot, rows, scalars, flat, counts)
        return True

    def _add_to_tick(self, snapshot: dict, rows, scalars, flat, counts) -> None:
        number = snapshot["tick"]
        if number <= self.closed_through:
            self.late_snapshots += 1
            self._late_rows.update(rows.tolist())   # their cumulative figures changed after all
            return
        tick = self._ticks.get(number)
        if tick is None:
            tick = self._ticks[number] = _Tick()
        slot, seq = snapshot["slot"], snapshot["seq"]
        if slot not in tick.users or tick.users[slot][0] < seq:
            tick.users[slot] = (seq, snapshot["users"])
        tick.rows.append(rows)
        tick.scalars.append(scalars)
        tick.flat.append(flat)
        tick.counts.append(counts)
        if len(tick.rows) > _TICK_COMPACT_PARTS:
            tick.compact()

    # -- time series ---------------------------------------------------------------------------
    def close_ticks(self, up_to_tick: int | None = None, *, cumulative: bool = False,
                    seconds: list[ClosedSecond] | None = None) -> list[dict]:
        """Hand out every open tick <= up_to_tick (all of them when None), in order.

        The collector passes "seconds since go minus a grace", so a slot whose delta arrives
        a little late still lands in its own second. A snapshot for a tick already handed out
        counts in the totals only (`late_snapshots`), and in the cumulative figures of the
        next second handed out.

        With `cumulative`, each tick also gets "cumulative": the run's figures through that
        second (`_cumulative_rows`), what Locust's `--csv-full-history` writes every second.

        With `seconds` (a list), each closed second's merged counters and histograms are appended
        to it as a `ClosedSecond`, in order.
        """
        ready = sorted(t for t in self._ticks if up_to_tick is None or t <= up_to_tick)
        parts = [self._ticks.pop(number) for number in ready]
        if seconds is not None:
            seconds.extend(self._closed_second(number, tick) for number, tick in zip(ready, parts))
        closed = [self._close_tick(number, tick) for number, tick in zip(ready, parts)]
        if cumulative and closed:
            self._add_cumulative(closed, parts)
        through = up_to_tick if up_to_tick is not None else (ready[-1] if ready else self.closed_through)
        self.closed_through = max(self.closed_through, through)
        return closed

    def _closed_second(self, number: int, tick: _Tick) -> ClosedSecond:
        tick.compact()  # one part (or none): what _close_tick and _add_cumulative reduce next is short
        empty = np.zeros(0, dtype=np.intp)
        return ClosedSecond(
            number, self._names, tick.rows[0] if tick.rows else empty,
            tick.scalars[0] if tick.scalars else np.zeros((0, 6), dtype=np.int64),
            tick.flat[0] if tick.flat else empty, tick.counts[0] if tick.counts else np.zeros(0, dtype=np.uint64))

    @property
    def open_ticks(self) -> list[int]:
        return sorted(self._ticks)

    def _close_tick(self, number: int, tick: _Tick) -> dict:
        rows, scalars = _reduce_rows(np.concatenate(tick.rows), np.concatenate(tick.scalars))
        flat, counts = _reduce_flat(np.concatenate(tick.flat), np.concatenate(tick.counts))

        endpoints = {}
        timed_rows, values = sparse_percentiles(flat, counts, TICK_PERCENTILES)
        at = np.searchsorted(rows, timed_rows)
        values = _clamp(values, TICK_PERCENTILES, scalars[at, _MIN].astype(float), scalars[at, _MAX].astype(float))
        by_row = dict(zip(timed_rows.tolist(), values.tolist()))
        # Timed requests per row this second, for its mean (runs.significance reads its per-second spread).
        timed_counts = np.bincount(flat // NUM_BUCKETS, weights=counts.astype(np.float64)) if len(flat) else []
        for row, (count, failed, total_us, *_rest) in zip(rows.tolist(), scalars.tolist()):
            method, name = self._names[row]
            timed_here = timed_counts[row] if row < len(timed_counts) else 0
            endpoints[f"{method} {name}"] = self._tick_figures(count, failed, by_row.get(row),
                                                               total_us / timed_here if timed_here else None)

        overall = np.zeros(NUM_BUCKETS, dtype=np.uint64)
        np.add.at(overall, flat % NUM_BUCKETS, counts)
        timed = scalars[:, _MAX] >= 0
        bounds = {"min_us": scalars[timed, _MIN].min(), "max_us": scalars[timed, _MAX].max()} if timed.any() else {}
        overall_values = percentiles(overall, TICK_PERCENTILES, **bounds)
        timed_total = float(counts.sum()) if len(counts) else 0.0
        figures = self._tick_figures(int(scalars[:, 0].sum()), int(scalars[:, 1].sum()),
                                     [overall_values[q] for q in TICK_PERCENTILES],
                                     float(scalars[:, 2].sum()) / timed_total if timed_total else None)
        return {"tick": number, "users": sum(users for _, users in tick.users.values()), **figures,
                "endpoints": endpoints}

    def _add_cumulative(self, closed: list[dict], parts: list[_Tick]) -> None:
        """Everything merged, minus the seconds still open, is the run through the newest closed
        second; minus that second, through the one before; and so on. Sums and histograms
        subtract exactly; min and max do not, so they come from the edges of the lowest and
        highest bucket, kept inside the run's exact min and max (exact for the last second).

        Only the endpoints with requests in that second get a row (plus, in the first second handed
        out, those a late snapshot changed): the others' figures are those of their previous row,
        which the reader carries forward. A run of 500 endpoints, most of them idle, stays small."""
        used = len(self._names)
        flat = np.flatnonzero(self._hist_flat[: used * NUM_BUCKETS])
        counts = self._hist_flat[flat].astype(np.int64)
        sums = self._scalars[:used, _SUMS].copy()

        def subtract(tick: _Tick) -> None:
            tick.compact()
            if tick.flat and len(tick.flat[0]):
                np.subtract.at(counts, np.searchsorted(flat, tick.flat[0]), tick.counts[0].astype(np.int64))
            if tick.rows and len(tick.rows[0]):
                np.subtract.at(sums, tick.rows[0], tick.scalars[0][:, _SUMS])

        for tick in self._ticks.values():   # later seconds, still open
            subtract(tick)
        late, self._late_rows = self._late_rows, set()
        for position in range(len(closed) - 1, -1, -1):
            tick = parts[position]
            tick.compact()
            changed = set(tick.rows[0].tolist()) if tick.rows else set()
            if position == 0:
                changed |= late
            closed[position]["cumulative"] = self._cumulative_rows(flat, counts, sums, changed)
            subtract(tick)

    def _cumulative_rows(self, flat: np.ndarray, counts: np.ndarray, sums: np.ndarray, changed: set[int]) -> list[list]:
        """[method, name, requests, failures, mean_ms, min_ms, max_ms, avg_size, p50 .. p100 (ms)] per
        endpoint in `changed` with requests, sorted by (name, method) like the totals, then Aggregated
        (method ""), which is always there."""
        present = counts > 0
        all_flat, all_counts = flat[present], counts[present]
        wanted = np.fromiter(sorted(changed), dtype=np.int64, count=len(changed))
        mine = np.isin(all_flat // NUM_BUCKETS, wanted)
        flat, counts = all_flat[mine], all_counts[mine]
        rows, values = sparse_percentiles(flat, counts, PERCENTILES)
        timed: dict[int, tuple] = {}
        if len(rows):
            first = np.searchsorted(flat, rows * NUM_BUCKETS)
            last = np.searchsorted(flat, (rows + 1) * NUM_BUCKETS) - 1
            mins = np.maximum(_bucket_low[flat[first] % NUM_BUCKETS], self._scalars[rows, _MIN]).astype(float)
            maxs = np.minimum(_bucket_high[flat[last] % NUM_BUCKETS], self._scalars[rows, _MAX]).astype(float)
            values = _clamp(values, PERCENTILES, mins, maxs)
            per_row = np.add.reduceat(counts, first)
            timed = {row: (int(n), low, high, v)
                     for row, n, low, high, v in zip(rows.tolist(), per_row.tolist(), mins.tolist(), maxs.tolist(),
                                                     values.tolist())}

        def row_of(method, name, count, failures, total_us, size, entry) -> list:
            n, low, high, values_us = entry if entry else (0, None, None, [None] * len(PERCENTILES))
            return [method, name, count, failures, round(total_us / n / 1000, 4) if n else None, _ms4(low),
                    _ms4(high), round(size / count, 2) if count else 0.0, *map(_ms4, values_us)]

        used = [r for r in changed if r < len(self._names) and sums[r, 0] > 0]
        used.sort(key=lambda r: (self._names[r][1], self._names[r][0]))
        result = [row_of(*self._names[r], *sums[r].tolist(), timed.get(r)) for r in used]
        aggregate = None
        if len(all_flat):
            hist = np.zeros(NUM_BUCKETS, dtype=np.uint64)
            np.add.at(hist, all_flat % NUM_BUCKETS, all_counts.astype(np.uint64))
            timed_rows = np.unique(all_flat // NUM_BUCKETS)
            buckets = np.flatnonzero(hist)
            low = max(float(self._scalars[timed_rows, _MIN].min()), float(_bucket_low[buckets[0]]))
            high = min(float(self._scalars[timed_rows, _MAX].max()), float(_bucket_high[buckets[-1]]))
            overall = percentiles(hist, PERCENTILES, min_us=low, max_us=high)
            aggregate = (int(hist.sum()), low, high, [overall[q] for q in PERCENTILES])
        total = sums[: len(self._names)].sum(axis=0).tolist() if len(self._names) else [0, 0, 0, 0]
        result.append(row_of("", AGGREGATE_NAME, *total, aggregate))
        return result

    @staticmethod
    def _tick_figures(count: int, failures: int, values_us: list | None, mean_us: float | None = None) -> dict:
        values_us = values_us or [None] * len(TICK_PERCENTILES)
        return {"rps": float(count), "fails_per_s": float(failures),
                **{f"p{round(q * 100)}_ms": _ms(v) for q, v in zip(TICK_PERCENTILES, values_us)},
                "mean_ms": None if mean_us is None else round(mean_us / 1000, 4)}

    # -- reporting -----------------------------------------------------------------------------
    @property
    def endpoints(self) -> list[EndpointTotals]:
        """Per endpoint totals, in the order the endpoints first appeared."""
        result = []
        for (method, name), (count, failures, total_us, size, low, high) in zip(
                self._names, self._scalars[: len(self._names)].tolist()):
            timed = high >= 0
            result.append(EndpointTotals(method, name, count, failures, total_us, size,
                                         low if timed else None, high if timed else None))
        return result

    def endpoint_histogram(self, method: str, name: str) -> np.ndarray:
        """A copy of one endpoint's dense histogram."""
        return self._hist[self._rows[(method, name)]].copy()

    def aggregate_histogram(self) -> np.ndarray:
        return self._hist[: len(self._names)].sum(axis=0)

    def totals(self, duration: float) -> list[dict]:
        """Locust-like rows, one per endpoint sorted by (name, method), then "Aggregated" last.

        `duration` (seconds) turns counts into rps and failures_per_s.
        """
        endpoints = self.endpoints
        used = len(endpoints)
        flat = np.flatnonzero(self._hist_flat[: used * NUM_BUCKETS])
        timed_rows, values = sparse_percentiles(flat, self._hist_flat[flat], PERCENTILES)
        scalars = self._scalars[timed_rows]
        values = _clamp(values, PERCENTILES, scalars[:, _MIN].astype(float), scalars[:, _MAX].astype(float))
        by_row = dict(zip(timed_rows.tolist(), values.tolist()))
        order = sorted(range(used), key=lambda r: (endpoints[r].name, endpoints[r].method))
        rows = [self._report_row(endpoints[r], int(self._hist[r].sum()), by_row.get(r), duration) for r in order]

        aggregate = EndpointTotals("", AGGREGATE_NAME)
        for entry in endpoints:
            aggregate.count += entry.count
            aggregate.failures += entry.failures
            aggregate.total_us += entry.total_us
            aggregate.bytes += entry.bytes
            if entry.min_us is not None:
                aggregate.min_us = entry.min_us if aggregate.min_us is None else min(aggregate.min_us, entry.min_us)
                aggregate.max_us = entry.max_us if aggregate.max_us is None else max(aggregate.max_us, entry.max_us)
        hist = self.aggregate_histogram()
        values = percentiles(hist, PERCENTILES, min_us=aggregate.min_us, max_us=aggregate.max_us)
        rows.append(self._report_row(aggregate, int(hist.sum()), [values[q] for q in PERCENTILES], duration))
        return rows

    @staticmethod
    def _report_row(entry: EndpointTotals, timed: int, values_us, duration: float) -> dict:
        values_us = values_us or [None] * len(PERCENTILES)
        duration = duration if duration and duration > 0 else None
        return {
            "method": entry.method, "name": entry.name, "requests": entry.count, "failures": entry.failures,
            "min_ms": _ms(entry.min_us), "max_ms": _ms(entry.max_us),
            "mean_ms": entry.total_us / timed / 1000 if timed else None,
            **{percentile_key(q): _ms(v) for q, v in zip(PERCENTILES, values_us)},
            "avg_size": entry.bytes / entry.count if entry.count else 0.0,
            "rps": entry.count / duration if duration else 0.0,
            "failures_per_s": entry.failures / duration if duration else 0.0,
        }

    def error_rows(self) -> list[dict]:
        """Failures grouped like Locust's Failures tab, most frequent first."""
        return [{"method": m, "name": n, "error": e, "count": c}
                for (m, n, e), c in sorted(self.errors.items(), key=lambda item: (-item[1], item[0]))]

    def exception_rows(self) -> list[dict]:
        return [{"message": m, "traceback": t, "count": c}
                for (m, t), c in sorted(self.exceptions.items(), key=lambda item: (-item[1], item[0]))]

    # -- persistence ---------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Everything, high-water marks and open ticks included; histograms sparse, their positions as
        gaps and their counts each in the narrowest unsigned type that holds them (uint16 mostly), the
        whole deflated (zlib, level 1). Every persist writes it, every second for every live run: for
        a run of 50 endpoints about 70 KiB instead of the 780 KiB of plain int64 arrays (version 1),
        which were most of what its UPDATE cost the database (TOAST, WAL)."""
        used = len(self._names)
        flat = np.flatnonzero(self._hist_flat[: used * NUM_BUCKETS])
        ticks = []
        for number, tick in sorted(self._ticks.items()):
            tick_flat, tick_counts = _sorted_parts(tick)
            ticks.append([number, [[slot, seq, users] for slot, (seq, users) in tick.users.items()],
                          _pack(tick.rows, "<i8"), _pack(tick.scalars, "<i8"), _narrow(_gaps(tick_flat)),
                          _narrow(tick_counts)])
        state = {
            "v": STATE_VERSION, "names": [list(key) for key in self._names], "max_endpoints": self.max_endpoints,
            "scalars": self._scalars[:used].astype("<i8").tobytes(),
            "flat": _narrow(_gaps(flat)), "counts": _narrow(self._hist_flat[flat]),
            "errors": [[m, n, e, c] for (m, n, e), c in self.errors.items()],
            "exceptions": [[m, t, c] for (m, t), c in self.exceptions.items()],
            "slots": [[slot, s.last_seq, s.users, s.cpu, s.tick, s.final] for slot, s in self.slots.items()],
            "overflowed": self.overflowed, "errors_overflowed": self.errors_overflowed,
            "closed_through": self.closed_through,
            "late_snapshots": self.late_snapshots, "ticks": ticks,
        }
        return zlib.compress(msgpack.packb(state, use_bin_type=True), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> RunStats:
        """A state `to_bytes` made: version 2 (deflated), or version 1 (plain msgpack, int64 positions and
        uint64 counts) as runs stored it before. A msgpack map never starts like a zlib stream (0x78)."""
        if data[:1] == b"\x78":
            try:
                data = zlib.decompress(data)
            except zlib.error as error:
                raise ValueError(f"Not a RunStats state: {error}") from None
        state = msgpack.unpackb(data, raw=False, strict_map_key=False)
        version = state.get("v") if isinstance(state, dict) else None
        if version not in (1, STATE_VERSION):
            raise ValueError(f"Unknown RunStats state version {version!r} (expected {STATE_VERSION}).")
        positions, counts_of = (_positions_v1, _counts_v1) if version == 1 else (_positions, _widened)
        stats = cls(int(state.get("max_endpoints") or MAX_ENDPOINTS))   # the cap the run started with
        for method, name in state["names"]:
            stats._add_row(method, name)
        used = len(stats._names)
        stats._scalars[:used] = np.frombuffer(state["scalars"], dtype="<i8").reshape(used, 6)
        stats._hist_flat[positions(state["flat"])] = counts_of(state["counts"])
        stats.errors = {(m, n, e): c for m, n, e, c in state["errors"]}
        stats.exceptions = {(m, t): c for m, t, c in state["exceptions"]}
        stats.slots = {slot: SlotState(seq, users, cpu, tick, final)
                       for slot, seq, users, cpu, tick, final in state["slots"]}
        stats.overflowed = state["overflowed"]
        stats.errors_overflowed = state.get("errors_overflowed", False)
        stats.closed_through = state["closed_through"]
        stats.late_snapshots = state["late_snapshots"]
        for number, users, rows, scalars, flat, counts in state["ticks"]:
            tick = _Tick(users={slot: (seq, n) for slot, seq, n in users})
            tick.rows = [np.frombuffer(rows, dtype="<i8").astype(np.intp)]
            tick.scalars = [np.frombuffer(scalars, dtype="<i8").reshape(-1, 6).copy()]
            tick.flat = [positions(flat)]
            tick.counts = [counts_of(counts)]
            stats._ticks[number] = tick
        return stats


def _pack(parts: list[np.ndarray], dtype: str) -> bytes:
    return parts[0].astype(dtype).tobytes() if parts else b""


def _sorted_parts(tick: _Tick) -> tuple[np.ndarray, np.ndarray]:
    """An open tick's histogram as one part of sorted, distinct positions (what `_gaps` encodes)."""
    tick.compact()
    if not tick.flat:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint64)
    flat, counts = tick.flat[0], tick.counts[0]
    if len(flat) > 1 and not bool((np.diff(flat) > 0).all()):  # one snapshot's part: in its endpoints' order
        flat, counts = _reduce_flat(flat, counts)
        tick.flat, tick.counts = [flat], [counts]
    return flat, counts


def _gaps(positions: np.ndarray) -> np.ndarray:
    """Sorted, distinct positions as the gaps between them (small numbers, which deflate well)."""
    return np.diff(np.asarray(positions, dtype=np.int64), prepend=0)


def _narrow(values: np.ndarray) -> list:
    """Non-negative integers as [dtype, bytes] in the narrowest of uint16, uint32, uint64 that holds them."""
    top = int(values.max()) if len(values) else 0
    dtype = "<u2" if top < 2**16 else "<u4" if top < 2**32 else "<u8"
    return [dtype, values.astype(dtype).tobytes()]


def _widened(packed: list) -> np.ndarray:
    dtype, data = packed
    if dtype not in ("<u2", "<u4", "<u8"):
        raise ValueError(f"Unknown array type {dtype!r} in a RunStats state.")
    return np.frombuffer(data, dtype=dtype).astype(np.uint64)


def _positions(packed: list) -> np.ndarray:
    return np.cumsum(_widened(packed), dtype=np.int64).astype(np.intp)


def _positions_v1(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i8").astype(np.intp)


def _counts_v1(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def _ms(us) -> float | None:
    return None if us is None else float(us) / 1000


def _ms4(us) -> float | None:
    """ms rounded to 0.1 µs: exact for bucket midpoints (multiples of 0.5 µs), short in JSON."""
    return None if us is None else round(float(us) / 1000, 4)
