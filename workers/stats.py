"""Latency histogram, pool-side recorder and mergeable run statistics.

Pure: numpy and msgpack only. No Django, no locust, no gevent: the collector and the web
process import this module, and `import locust` would monkey-patch them.

Response times are integer microseconds in one fixed, global bucket layout, so merging
statistics from any number of pools is plain vector addition (associative, commutative), and
applying a snapshot is idempotent per slot through its sequence number.

Bucket layout (``NUM_BUCKETS`` = 3328):
- 0..255 µs: one exact bucket per value (index = value);
- above: log-linear, 128 sub-buckets per power of two up to 2**32 µs (~71 min); larger
  values clamp into the last bucket.
A bucket is at most 1/128 of its lower bound wide, so its representative value (midpoint)
is within 1/256 (0.39 %) of any value in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack
import numpy as np

SUB_BUCKET_BITS = 7
SUB_BUCKETS = 1 << SUB_BUCKET_BITS            # 128 sub-buckets per power of two
MAX_SHIFT = 32 - SUB_BUCKET_BITS - 1          # 24: the octave [2**31, 2**32)
NUM_BUCKETS = (MAX_SHIFT + 2) * SUB_BUCKETS   # 3328
MAX_TRACKED_US = (1 << 32) - 1
RELATIVE_ERROR = 1 / (2 * SUB_BUCKETS)        # worst case of a bucket's midpoint, 0.39 %

PERCENTILES = (0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)
MAX_ENDPOINTS = 500
OTHER_NAME = "(other)"
AGGREGATE_NAME = "Aggregated"
STATE_VERSION = 1


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
    """Vectorised `bucket_of` for tests and benchmarks."""
    values = np.clip(np.asarray(us, dtype=np.int64), 0, MAX_TRACKED_US)
    bit_length = np.frexp(values.astype(np.float64))[1].astype(np.int64)  # exact below 2**53
    shift = np.maximum(bit_length - 8, 0)
    return (shift << SUB_BUCKET_BITS) + (values >> shift)


def _bucket_values() -> np.ndarray:
    index = np.arange(NUM_BUCKETS, dtype=np.int64)
    shift = np.maximum((index >> SUB_BUCKET_BITS) - 1, 0)
    low = (index - (shift << SUB_BUCKET_BITS)) << shift
    values = low + ((1 << shift) - 1) / 2  # midpoint of the integers low .. low + width - 1
    values[:256] = index[:256]
    return values


bucket_values: np.ndarray = _bucket_values()
"""Representative µs of each bucket (float64): the value itself below 256 µs, else the midpoint."""
bucket_values.setflags(write=False)


def _ranks(total: int, qs) -> list[int]:
    # Locust's rank: int(n * q), 0-based, the same float arithmetic as
    # locust.stats.calculate_response_time_percentile.
    return [int(total * q) for q in qs]


def percentiles(hist: np.ndarray, qs=PERCENTILES, *, min_us: float | None = None,
                max_us: float | None = None) -> dict[float, float | None]:
    """Percentiles in µs of a dense count vector, all from one cumulative sum.

    The answer for q is the bucket holding the sample of rank int(n * q) in sorted order,
    which is what Locust's descending walk returns. Given the exact min/max the caller
    tracked, q=0 and q=1 answer them exactly and every other result is clamped into them.
    """
    cumulative = np.cumsum(hist)
    total = int(cumulative[-1]) if len(cumulative) else 0
    if total == 0:
        return {q: None for q in qs}
    positions = np.searchsorted(cumulative, _ranks(total, qs), side="right")
    last = int(np.flatnonzero(hist)[-1])
    result = {}
    for q, position in zip(qs, positions):
        value = float(bucket_values[min(int(position), last)])
        if q >= 1.0 and max_us is not None:
            value = float(max_us)
        elif q <= 0.0 and min_us is not None:
            value = float(min_us)
        if min_us is not None:
            value = max(value, float(min_us))
        if max_us is not None:
            value = min(value, float(max_us))
        result[q] = value
    return result


def percentile(hist: np.ndarray, q: float, *, min_us: float | None = None,
               max_us: float | None = None) -> float | None:
    """One percentile in µs (None without samples); see `percentiles`."""
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
    """Per-pool accumulator of one snapshot interval; `record` runs on every request event."""

    def __init__(self) -> None:
        self._endpoints: dict[tuple[str, str], _EndpointDelta] = {}
        self._errors: dict[tuple[str, str, str], int] = {}
        self._exceptions: dict[tuple[str, str], int] = {}

    def record(self, method: str, name: str, response_time_ms: float | None, response_length: int | None,
               exception: BaseException | str | None) -> None:
        """Count one request. A None response time counts the request without timing it (as Locust)."""
        key = (method, name)
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
            if us < 256:
                bucket = us
            else:
                shift = us.bit_length() - 8
                bucket = NUM_BUCKETS - 1 if shift > MAX_SHIFT else (shift << SUB_BUCKET_BITS) + (us >> shift)
            hist = entry.hist
            hist[bucket] = hist.get(bucket, 0) + 1
        if exception is not None:
            entry.failures += 1
            error_key = (method, name, parse_error(exception))
            self._errors[error_key] = self._errors.get(error_key, 0) + 1

    def record_exception(self, message: str, traceback: str) -> None:
        """An exception raised in user code outside a request (Locust's "Exceptions" tab)."""
        key = (message, traceback)
        self._exceptions[key] = self._exceptions.get(key, 0) + 1

    @property
    def pending(self) -> int:
        """Requests recorded since the last `take_delta`."""
        return sum(entry.count for entry in self._endpoints.values())

    def take_delta(self, *, run: int, slot: int, seq: int, tick: int, elapsed: float, users: int, cpu: float,
                   kind: str = "delta") -> dict:
        """The snapshot of everything recorded since the last call, which starts a new interval."""
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
            "users": users, "cpu": float(cpu), "endpoints": endpoints,
            "errors": [{"method": m, "name": n, "error": e, "count": c} for (m, n, e), c in self._errors.items()],
            "exceptions": [{"message": m, "traceback": t, "count": c} for (m, t), c in self._exceptions.items()],
        }
        self._endpoints = {}
        self._errors = {}
        self._exceptions = {}
        return snapshot


# -- collector side ----------------------------------------------------------------------------

@dataclass(slots=True)
class EndpointTotals:
    """Scalar running totals of one endpoint; its histogram is a row of RunStats' 2-D array."""

    method: str
    name: str
    count: int = 0
    failures: int = 0
    total_us: int = 0
    min_us: int | None = None
    max_us: int | None = None
    bytes: int = 0


@dataclass(slots=True)
class SlotState:
    last_seq: int = 0
    users: int = 0
    cpu: float = 0.0
    tick: int = -1
    final: bool = False


@dataclass
class _Tick:
    """One open second, accumulated lazily: parts are concatenated once, when the tick closes."""

    users: dict[int, tuple[int, int]] = field(default_factory=dict)  # slot -> (seq, users)
    rows: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    mins: list[int] = field(default_factory=list)
    maxs: list[int] = field(default_factory=list)
    flat: list[np.ndarray] = field(default_factory=list)         # row * NUM_BUCKETS + bucket
    flat_counts: list[np.ndarray] = field(default_factory=list)

    def compact(self) -> None:
        """Merge the histogram parts into one sparse pair (bounds memory with many slots)."""
        if len(self.flat) <= 1:
            return
        flat = np.concatenate(self.flat)
        counts = np.concatenate(self.flat_counts).astype(np.uint64)
        unique, inverse = np.unique(flat, return_inverse=True)
        summed = np.zeros(len(unique), dtype=np.uint64)
        np.add.at(summed, inverse, counts)
        self.flat = [unique]
        self.flat_counts = [summed]


_TICK_COMPACT_PARTS = 32


class RunStats:
    """All statistics of one run, merged from every slot's snapshots.

    `apply` is idempotent per slot (a snapshot whose seq is not above the slot's high-water
    mark is ignored), and merging is addition, so the order in which slots' snapshots arrive
    does not change the result. One exception: once MAX_ENDPOINTS names exist, which later
    names fold into "(other)" depends on arrival order.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], int] = {}
        self._endpoints: list[EndpointTotals] = []
        self._hist = np.zeros((8, NUM_BUCKETS), dtype=np.uint64)
        self._named = 0  # rows that count against MAX_ENDPOINTS (all but "(other)")
        self.errors: dict[tuple[str, str, str], int] = {}
        self.exceptions: dict[tuple[str, str], int] = {}
        self.slots: dict[int, SlotState] = {}
        self.overflowed = False
        self.closed_through = -1   # ticks up to this one were handed out by close_ticks
        self.late_snapshots = 0    # applied to totals, but too late for their (closed) tick
        self._ticks: dict[int, _Tick] = {}

    # -- merging -------------------------------------------------------------------------------
    def _row_of(self, method: str, name: str) -> int:
        key = (method, name)
        row = self._rows.get(key)
        if row is not None:
            return row
        if self._named >= MAX_ENDPOINTS and name != OTHER_NAME:
            self.overflowed = True
            other = (method, OTHER_NAME)
            row = self._rows.get(other)
            # Not remembered per name: a run with a million distinct URLs must not grow a
            # million-entry map (nor a million-entry persisted state).
            return row if row is not None else self._add_row(method, OTHER_NAME)
        row = self._add_row(method, name)
        if name != OTHER_NAME:
            self._named += 1
        return row

    def _add_row(self, method: str, name: str) -> int:
        row = len(self._endpoints)
        self._endpoints.append(EndpointTotals(method, name))
        self._rows[(method, name)] = row
        if row >= self._hist.shape[0]:
            grown = np.zeros((self._hist.shape[0] * 2, NUM_BUCKETS), dtype=np.uint64)
            grown[: self._hist.shape[0]] = self._hist
            self._hist = grown
        return row

    def apply(self, snapshot: dict) -> bool:
        """Merge one (decoded) snapshot; False when the slot already sent this seq (duplicate)."""
        slot = snapshot["slot"]
        seq = snapshot["seq"]
        state = self.slots.get(slot)
        if state is None:
            state = self.slots[slot] = SlotState()
        elif seq <= state.last_seq:
            return False

        rows, counts, failures, mins, maxs, lengths, indexes, bucket_counts = [], [], [], [], [], [], [], []
        for endpoint in snapshot["endpoints"]:
            row = self._row_of(endpoint["method"], endpoint["name"])
            totals = self._endpoints[row]
            count = endpoint["count"]
            failed = endpoint["failures"]
            totals.count += count
            totals.failures += failed
            totals.total_us += endpoint["total_us"]
            totals.bytes += endpoint["bytes"]
            index, bucket_count = endpoint["hist"]
            if len(index):
                low, high = endpoint["min_us"], endpoint["max_us"]
                if totals.min_us is None or low < totals.min_us:
                    totals.min_us = low
                if totals.max_us is None or high > totals.max_us:
                    totals.max_us = high
                lengths.append(len(index))
                indexes.append(index)
                bucket_counts.append(bucket_count)
            else:
                low, high = -1, -1
                lengths.append(0)
            rows.append(row)
            counts.append(count)
            failures.append(failed)
            mins.append(low)
            maxs.append(high)

        flat = flat_counts = None
        if indexes:
            offsets = np.repeat(np.asarray(rows, dtype=np.int64) * NUM_BUCKETS, lengths)
            flat = np.concatenate(indexes).astype(np.int64) + offsets
            flat_counts = np.concatenate(bucket_counts).astype(np.uint64)
            np.add.at(self._hist.reshape(-1), flat, flat_counts)

        for error in snapshot["errors"]:
            # Errors of endpoints folded into "(other)" are folded with them.
            row = self._row_of(error["method"], error["name"])
            key = (self._endpoints[row].method, self._endpoints[row].name, error["error"])
            self.errors[key] = self.errors.get(key, 0) + error["count"]
        for exception in snapshot["exceptions"]:
            key = (exception["message"], exception["traceback"])
            self.exceptions[key] = self.exceptions.get(key, 0) + exception["count"]

        state.last_seq = seq
        state.users = snapshot["users"]
        state.cpu = snapshot["cpu"]
        state.tick = max(state.tick, snapshot["tick"])
        state.final = state.final or snapshot["kind"] == "final"
        self._add_to_tick(snapshot, rows, counts, failures, mins, maxs, flat, flat_counts)
        return True

    def _add_to_tick(self, snapshot, rows, counts, failures, mins, maxs, flat, flat_counts) -> None:
        tick_number = snapshot["tick"]
        if tick_number <= self.closed_through:
            self.late_snapshots += 1
            return
        tick = self._ticks.get(tick_number)
        if tick is None:
            tick = self._ticks[tick_number] = _Tick()
        slot, seq = snapshot["slot"], snapshot["seq"]
        if slot not in tick.users or tick.users[slot][0] < seq:
            tick.users[slot] = (seq, snapshot["users"])
        tick.rows += rows
        tick.counts += counts
        tick.failures += failures
        tick.mins += mins
        tick.maxs += maxs
        if flat is not None:
            tick.flat.append(flat)
            tick.flat_counts.append(flat_counts)
            if len(tick.flat) > _TICK_COMPACT_PARTS:
                tick.compact()

    # -- time series ---------------------------------------------------------------------------
    def close_ticks(self, up_to_tick: int | None = None) -> list[dict]:
        """Hand out every open tick <= up_to_tick (all of them when None), in order.

        The collector passes "seconds since go minus a grace", so a slot whose delta arrives
        a little late still lands in its own second. Snapshots for a tick already handed out
        count in the totals only (`late_snapshots`).
        """
        ready = sorted(t for t in self._ticks if up_to_tick is None or t <= up_to_tick)
        closed = [self._close_tick(t, self._ticks.pop(t)) for t in ready]
        through = up_to_tick if up_to_tick is not None else (ready[-1] if ready else self.closed_through)
        self.closed_through = max(self.closed_through, through)
        return closed

    @property
    def open_ticks(self) -> list[int]:
        return sorted(self._ticks)

    def _close_tick(self, number: int, tick: _Tick) -> dict:
        rows = np.asarray(tick.rows, dtype=np.int64)
        present = np.unique(rows)
        position = {int(row): i for i, row in enumerate(present)}
        local = np.searchsorted(present, rows)
        counts = np.bincount(local, weights=tick.counts, minlength=len(present))
        failures = np.bincount(local, weights=tick.failures, minlength=len(present))
        mins = np.full(len(present), np.inf)
        maxs = np.full(len(present), -np.inf)
        timed = np.asarray(tick.mins) >= 0
        np.minimum.at(mins, local[timed], np.asarray(tick.mins, dtype=np.float64)[timed])
        np.maximum.at(maxs, local[timed], np.asarray(tick.maxs, dtype=np.float64)[timed])

        hists = np.zeros((len(present), NUM_BUCKETS), dtype=np.uint64)
        if tick.flat:
            flat = np.concatenate(tick.flat)
            flat_counts = np.concatenate(tick.flat_counts).astype(np.uint64)
            local_flat = np.searchsorted(present, flat // NUM_BUCKETS) * NUM_BUCKETS + flat % NUM_BUCKETS
            np.add.at(hists.reshape(-1), local_flat, flat_counts)
        qs = (0.50, 0.95, 0.99)

        def figures(hist, count, failed, low, high):
            bounds = {"min_us": low, "max_us": high} if np.isfinite(low) else {}
            values = percentiles(hist, qs, **bounds)
            return {"rps": float(count), "fails_per_s": float(failed),
                    **{f"p{round(q * 100)}_ms": _ms(values[q]) for q in qs}}

        endpoints = {}
        for row, i in position.items():
            entry = self._endpoints[row]
            endpoints[f"{entry.method} {entry.name}"] = figures(hists[i], counts[i], failures[i], mins[i], maxs[i])
        overall = figures(hists.sum(axis=0), counts.sum(), failures.sum(),
                          mins.min() if len(mins) else np.inf, maxs.max() if len(maxs) else -np.inf)
        return {"tick": number, "users": sum(users for _, users in tick.users.values()), **overall,
                "endpoints": endpoints}

    # -- reporting -----------------------------------------------------------------------------
    def endpoint_histogram(self, method: str, name: str) -> np.ndarray:
        """A copy of one endpoint's dense histogram (tests, comparisons)."""
        return self._hist[self._rows[(method, name)]].copy()

    def aggregate_histogram(self) -> np.ndarray:
        return self._hist[: len(self._endpoints)].sum(axis=0)

    @property
    def endpoints(self) -> list[EndpointTotals]:
        return list(self._endpoints)

    def totals(self, duration: float) -> list[dict]:
        """Locust-like rows, one per endpoint sorted by (name, method), then "Aggregated"."""
        order = sorted(range(len(self._endpoints)), key=lambda r: (self._endpoints[r].name, self._endpoints[r].method))
        rows = [self._row(self._endpoints[r], self._hist[r], duration) for r in order]
        aggregate = EndpointTotals("", AGGREGATE_NAME)
        for entry in self._endpoints:
            aggregate.count += entry.count
            aggregate.failures += entry.failures
            aggregate.total_us += entry.total_us
            aggregate.bytes += entry.bytes
            if entry.min_us is not None:
                aggregate.min_us = entry.min_us if aggregate.min_us is None else min(aggregate.min_us, entry.min_us)
                aggregate.max_us = entry.max_us if aggregate.max_us is None else max(aggregate.max_us, entry.max_us)
        rows.append(self._row(aggregate, self.aggregate_histogram(), duration))
        return rows

    @staticmethod
    def _row(entry: EndpointTotals, hist: np.ndarray, duration: float) -> dict:
        timed = int(hist.sum())
        values = percentiles(hist, PERCENTILES, min_us=entry.min_us, max_us=entry.max_us)
        duration = duration if duration and duration > 0 else None
        return {
            "method": entry.method, "name": entry.name, "requests": entry.count, "failures": entry.failures,
            "min_ms": _ms(entry.min_us), "max_ms": _ms(entry.max_us),
            "mean_ms": entry.total_us / timed / 1000 if timed else None,
            **{percentile_key(q): _ms(values[q]) for q in PERCENTILES},
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
        """Everything, high-water marks and open ticks included, with sparse histograms."""
        endpoints = []
        for row, entry in enumerate(self._endpoints):
            nonzero = np.flatnonzero(self._hist[row])
            endpoints.append([entry.method, entry.name, entry.count, entry.failures, entry.total_us, entry.min_us,
                              entry.max_us, entry.bytes, nonzero.astype("<u2").tobytes(),
                              self._hist[row, nonzero].astype("<u8").tobytes()])
        ticks = []
        for number, tick in sorted(self._ticks.items()):
            tick.compact()
            flat = tick.flat[0] if tick.flat else np.zeros(0, dtype=np.int64)
            flat_counts = tick.flat_counts[0] if tick.flat_counts else np.zeros(0, dtype=np.uint64)
            ticks.append([number, [[slot, seq, users] for slot, (seq, users) in tick.users.items()],
                          tick.rows, tick.counts, tick.failures, tick.mins, tick.maxs,
                          flat.astype("<u4").tobytes(), flat_counts.astype("<u8").tobytes()])
        state = {
            "v": STATE_VERSION, "endpoints": endpoints,
            "errors": [[m, n, e, c] for (m, n, e), c in self.errors.items()],
            "exceptions": [[m, t, c] for (m, t), c in self.exceptions.items()],
            "slots": [[slot, s.last_seq, s.users, s.cpu, s.tick, s.final] for slot, s in self.slots.items()],
            "overflowed": self.overflowed, "closed_through": self.closed_through,
            "late_snapshots": self.late_snapshots, "ticks": ticks,
        }
        return msgpack.packb(state, use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> RunStats:
        state = msgpack.unpackb(data, raw=False, strict_map_key=False)
        if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
            raise ValueError(f"Unknown RunStats state version {state.get('v') if isinstance(state, dict) else '?'}.")
        stats = cls()
        for method, name, count, failures, total_us, min_us, max_us, size, index, counts in state["endpoints"]:
            row = stats._add_row(method, name)
            if name != OTHER_NAME:
                stats._named += 1
            stats._endpoints[row] = EndpointTotals(method, name, count, failures, total_us, min_us, max_us, size)
            stats._hist[row, np.frombuffer(index, dtype="<u2")] = np.frombuffer(counts, dtype="<u8")
        stats.errors = {(m, n, e): c for m, n, e, c in state["errors"]}
        stats.exceptions = {(m, t): c for m, t, c in state["exceptions"]}
        stats.slots = {slot: SlotState(seq, users, cpu, tick, final)
                       for slot, seq, users, cpu, tick, final in state["slots"]}
        stats.overflowed = state["overflowed"]
        stats.closed_through = state["closed_through"]
        stats.late_snapshots = state["late_snapshots"]
        for number, users, rows, counts, failures, mins, maxs, flat, flat_counts in state["ticks"]:
            tick = _Tick(users={slot: (seq, n) for slot, seq, n in users}, rows=list(rows), counts=list(counts),
                         failures=list(failures), mins=list(mins), maxs=list(maxs))
            if flat:
                tick.flat = [np.frombuffer(flat, dtype="<u4").astype(np.int64)]
                tick.flat_counts = [np.frombuffer(flat_counts, dtype="<u8").astype(np.uint64)]
            stats._ticks[number] = tick
        return stats


def _ms(us) -> float | None:
    return None if us is None else float(us) / 1000
