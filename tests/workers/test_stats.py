"""The latency histogram, the pool's Recorder and the collector's RunStats, fed synthetic timings."""

import itertools

import msgpack
import numpy as np
import pytest

from workers import wire
from workers.stats import (
    MAX_ENDPOINTS,
    NUM_BUCKETS,
    PERCENTILES,
    RELATIVE_ERROR,
    Recorder,
    RunStats,
    bucket_of,
    bucket_values,
    buckets_of,
    parse_error,
    percentile,
    percentiles,
)

CHECKED = (0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999)


def histogram(samples_us) -> np.ndarray:
    return np.bincount(buckets_of(samples_us), minlength=NUM_BUCKETS).astype(np.uint64)


def exact(samples_us, q: float) -> float:
    """The sample Locust's rank rule picks: sorted[int(n * q)], the last one for q = 1."""
    ordered = np.sort(samples_us)
    return float(ordered[min(int(len(ordered) * q), len(ordered) - 1)])


def locust_percentile(response_times: dict[int, int], num_requests: int, percent: float) -> int:
    """locust.stats.calculate_response_time_percentile, copied: importing locust here would
    monkey-patch the whole test process with gevent."""
    num_of_request = int(num_requests * percent)
    processed_count = 0
    for response_time in sorted(response_times.keys(), reverse=True):
        processed_count += response_times[response_time]
        if num_requests - processed_count <= num_of_request:
            return response_time
    return 0


def snapshot(recorder: Recorder, slot: int, seq: int, tick: int | None = None, users: int = 10, kind="delta"):
    return recorder.take_delta(run=7, slot=slot, seq=seq, tick=seq - 1 if tick is None else tick,
                               elapsed=float(seq), users=users, cpu=42.0, kind=kind)


def record_all(recorder: Recorder, samples_ms, method="GET", name="/items", fail_every=0):
    for i, ms in enumerate(samples_ms):
        failed = fail_every and i % fail_every == 0
        recorder.record(method, name, ms, 100 + i % 7, ConnectionError("refused") if failed else None)


# -- buckets ---------------------------------------------------------------------------------------

def test_it_keeps_values_below_256_us_exact_and_others_within_the_stated_error():
    values = np.concatenate([np.arange(0, 300_000), np.random.default_rng(1).integers(300_000, 2**32, 200_000)])
    buckets = buckets_of(values)
    assert buckets.min() == 0 and buckets.max() == NUM_BUCKETS - 1
    assert np.all(np.diff(buckets[:300_000]) >= 0)
    assert np.array_equal(bucket_values[buckets[:256]], np.arange(256))
    relative = np.abs(bucket_values[buckets] - values) / np.maximum(values, 1)
    assert relative.max() <= RELATIVE_ERROR
    assert RELATIVE_ERROR < 0.004


def test_it_computes_the_same_bucket_one_value_at_a_time():
    values = [0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 12_345, 999_999, 2**31, 2**32 - 1]
    assert [bucket_of(v) for v in values] == buckets_of(np.array(values)).tolist()
    assert bucket_of(-5) == 0
    assert bucket_of(2**32) == bucket_of(2**40) == NUM_BUCKETS - 1


# -- percentiles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("distribution", ["uniform 40-900 us", "exponential 5 ms", "lognormal 50 ms", "bimodal"])
def test_it_matches_exact_percentiles_within_one_percent(distribution):
    rng = np.random.default_rng(7)
    n = 200_000
    samples = {
        "uniform 40-900 us": lambda: rng.integers(40, 901, n),
        "exponential 5 ms": lambda: np.rint(rng.exponential(5_000, n)),
        "lognormal 50 ms": lambda: np.rint(rng.lognormal(np.log(50_000), 0.8, n)),
        "bimodal": lambda: np.rint(np.where(rng.random(n) < 0.7, rng.normal(1_000, 100, n),
                                            rng.normal(200_000, 20_000, n))).clip(1),
    }[distribution]().astype(np.int64)
    result = percentiles(histogram(samples), CHECKED)
    for q in CHECKED:
        assert abs(result[q] - exact(samples, q)) / exact(samples, q) <= 0.01, (q, result[q], exact(samples, q))


def test_it_answers_integers_below_128_us_exactly():
    samples = np.random.default_rng(3).integers(0, 128, 50_000)
    result = percentiles(histogram(samples), PERCENTILES)
    assert result == {q: exact(samples, q) for q in PERCENTILES}


def test_it_picks_the_same_rank_as_locust():
    rng = np.random.default_rng(11)
    for _ in range(50):  # small, lumpy samples are where rank conventions differ
        samples = rng.integers(1, 120, int(rng.integers(1, 40)))
        counts = dict(zip(*np.unique(samples, return_counts=True)))
        ours = percentiles(histogram(samples), PERCENTILES)
        assert ours == {q: float(locust_percentile(counts, len(samples), q)) for q in PERCENTILES}


def test_it_answers_the_exact_min_and_max_and_clamps_into_them():
    hist = histogram(np.array([100_000, 100_100, 250_000]))
    assert percentile(hist, 1.0) == bucket_values[bucket_of(250_000)] != 250_000
    assert percentile(hist, 1.0, min_us=100_000, max_us=250_000) == 250_000
    assert percentile(hist, 0.0, min_us=100_000, max_us=250_000) == 100_000
    assert percentile(hist, 0.5, min_us=100_000, max_us=100_050) == 100_050  # bucket midpoint above the max
    top_of_a_bucket = histogram(np.array([100_000, 100_351]))  # both in the bucket 99,840..100,351
    assert percentile(top_of_a_bucket, 1.0) == 100_095.5
    assert percentile(top_of_a_bucket, 1.0, min_us=100_000, max_us=100_351) == 100_351
    assert percentile(top_of_a_bucket, 0.0, min_us=100_000, max_us=100_351) == 100_000


def test_it_has_no_percentiles_without_samples():
    assert percentiles(np.zeros(NUM_BUCKETS, dtype=np.uint64), (0.5, 1.0)) == {0.5: None, 1.0: None}


# -- Recorder -------------------------------------------------------------------------------------

def test_it_records_an_interval_and_starts_a_new_one():
    recorder = Recorder()
    recorder.record("GET", "/a", 1.2344, 10, None)
    recorder.record("GET", "/a", 250.0, 30, "HTTPError('500')")
    recorder.record("POST", "/a", 0.0004, 0, None)
    recorder.record("GET", "/a", None, 5, None)  # no response time: counted, not timed
    delta = snapshot(recorder, slot=0, seq=1)
    by_key = {(e["method"], e["name"]): e for e in delta["endpoints"]}
    get = by_key[("GET", "/a")]
    assert (get["count"], get["failures"], get["total_us"], get["min_us"], get["max_us"], get["bytes"]) == (
        3, 1, 1_234 + 250_000, 1_234, 250_000, 45)
    assert list(get["hist"][0]) == sorted([bucket_of(1_234), bucket_of(250_000)]) and list(get["hist"][1]) == [1, 1]
    assert (by_key[("POST", "/a")]["min_us"], by_key[("POST", "/a")]["max_us"]) == (0, 0)
    assert delta["errors"] == [{"method": "GET", "name": "/a", "error": "HTTPError('500')", "count": 1}]
    header = (delta["v"], delta["kind"], delta["run"], delta["slot"], delta["seq"], delta["tick"], delta["users"])
    assert header == (1, "delta", 7, 0, 1, 0, 10)
    assert recorder.pending == 0
    assert snapshot(recorder, slot=0, seq=2)["endpoints"] == []


def test_it_groups_errors_that_differ_only_by_memory_address():
    class Boom(Exception):
        pass

    recorder = Recorder()
    for address in ("0x7f1a2b3c4d50", "0x7f99aa00bb11"):
        recorder.record("GET", "/x", 3.0, 0, Boom(f"<urllib3.connection.HTTPConnection object at {address}>: refused"))
    recorder.record("GET", "/x", 3.0, 0, "plain message")
    errors = snapshot(recorder, 0, 1)["errors"]
    assert sorted((e["error"], e["count"]) for e in errors) == [
        ("Boom('<urllib3.connection.HTTPConnection object at 0x....>: refused')", 2), ("plain message", 1)]
    assert parse_error("object at 0x1234 without a bracket") == "object at 0x1234 without a bracket"


# -- RunStats: merging -----------------------------------------------------------------------------

def three_slots(rng, deltas=4):
    """Per slot, `deltas` snapshots with random timings on a few endpoints, and every sample."""
    streams, samples = {}, []
    for slot in range(3):
        recorder, stream = Recorder(), []
        for seq in range(1, deltas + 1):
            for name in ("/a", "/b", f"/only-{slot}"):
                timings = rng.lognormal(np.log(20), 1.0, int(rng.integers(5, 60))).tolist()
                record_all(recorder, timings, name=name, fail_every=9)
                samples += [(name, t) for t in timings]
            recorder.record_exception("ValueError: bad", "Traceback: line 3")
            stream.append(snapshot(recorder, slot, seq, users=slot + 1))
        streams[slot] = stream
    return streams, samples


def state(stats: RunStats):
    return (stats.totals(10.0), stats.error_rows(), stats.exception_rows(), stats.aggregate_histogram().tolist(),
            {e.name: stats.endpoint_histogram(e.method, e.name).tolist() for e in stats.endpoints})


def test_it_merges_slots_in_any_order_to_identical_results():
    streams, _ = three_slots(np.random.default_rng(5))
    results = []
    for order in itertools.permutations(range(3)):
        stats = RunStats()
        # Interleave the slots in this order, each slot's own stream staying in sequence.
        for seq in range(4):
            for slot in order:
                assert stats.apply(streams[slot][seq])
        results.append(state(stats))
    stats = RunStats()
    for slot in (2, 0, 1):  # one slot after the other
        for delta in streams[slot]:
            stats.apply(delta)
    results.append(state(stats))
    assert all(result == results[0] for result in results[1:])


def test_it_gives_the_same_result_however_the_samples_were_grouped():
    streams, samples = three_slots(np.random.default_rng(6))
    split = RunStats()
    for stream in streams.values():
        for delta in stream:
            split.apply(delta)
    whole = Recorder()
    for name, ms in samples:
        whole.record("GET", name, ms, 0, None)
    single = RunStats()
    single.apply(snapshot(whole, slot=0, seq=1))
    assert split.aggregate_histogram().tolist() == single.aggregate_histogram().tolist()
    for endpoint in single.endpoints:
        assert split.endpoint_histogram("GET", endpoint.name).tolist() == \
            single.endpoint_histogram("GET", endpoint.name).tolist()
    assert [r["requests"] for r in split.totals(1)] == [r["requests"] for r in single.totals(1)]
    assert [r["p99"] for r in split.totals(1)] == [r["p99"] for r in single.totals(1)]


def test_it_ignores_a_redelivered_snapshot():
    streams, _ = three_slots(np.random.default_rng(8), deltas=3)
    stats = RunStats()
    for delta in streams[0]:
        assert stats.apply(delta) is True
    before = stats.to_bytes()
    assert stats.apply(streams[0][2]) is False   # the same again
    assert stats.apply(streams[0][0]) is False   # an older one
    assert stats.to_bytes() == before
    assert stats.slots[0].last_seq == 3


def test_it_round_trips_recorder_wire_and_runstats():
    recorder = Recorder()
    record_all(recorder, [0.5, 12.0, 7.25, 3000.0], name="/checkout", fail_every=2)
    recorder.record("GET", "/checkout", 1.0, 0, RuntimeError("<Session object at 0xdeadbeef> closed"))
    recorder.record("GET", "/checkout", 1.0, 0, RuntimeError("<Session object at 0x0badcafe> closed"))
    recorder.record_exception("KeyError: 'id'", "Traceback (most recent call last): ...")
    recorder.record_exception("KeyError: 'id'", "Traceback (most recent call last): ...")
    stats = RunStats()
    assert stats.apply(wire.decode(wire.encode(snapshot(recorder, slot=3, seq=1, kind="final"))))
    row = next(r for r in stats.totals(2.0) if r["name"] == "/checkout")
    assert (row["requests"], row["failures"], row["min_ms"], row["max_ms"]) == (6, 4, 0.5, 3000.0)
    assert row["avg_size"] == (100 + 101 + 102 + 103 + 0 + 0) / 6
    assert row["mean_ms"] == pytest.approx((500 + 12_000 + 7_250 + 3_000_000 + 1_000 + 1_000) / 6 / 1000)
    assert (row["rps"], row["failures_per_s"]) == (3.0, 2.0)
    assert stats.error_rows() == [
        {"method": "GET", "name": "/checkout", "error": "ConnectionError('refused')", "count": 2},
        {"method": "GET", "name": "/checkout", "error": "RuntimeError('<Session object at 0x....> closed')",
         "count": 2},
    ]
    assert stats.exception_rows() == [
        {"message": "KeyError: 'id'", "traceback": "Traceback (most recent call last): ...", "count": 2}]
    assert stats.slots[3].final and stats.slots[3].users == 10 and stats.slots[3].cpu == 42.0


def test_it_reports_one_row_per_endpoint_and_the_aggregate_last():
    recorder = Recorder()
    record_all(recorder, [10.0] * 9 + [100.0], name="/b")
    record_all(recorder, [1.0, 2.0], method="POST", name="/a")
    stats = RunStats()
    stats.apply(snapshot(recorder, 0, 1))
    rows = stats.totals(duration=4.0)
    assert [(r["method"], r["name"]) for r in rows] == [("POST", "/a"), ("GET", "/b"), ("", "Aggregated")]
    aggregate = rows[-1]
    assert (aggregate["requests"], aggregate["min_ms"], aggregate["max_ms"], aggregate["rps"]) == (12, 1.0, 100.0, 3.0)
    assert [k for k in aggregate if k.startswith("p")] == ["p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99",
                                                          "p99.9", "p99.99", "p100"]
    assert aggregate["p50"] == pytest.approx(10.0, rel=RELATIVE_ERROR) and aggregate["p100"] == 100.0
    assert rows[1]["p90"] == 100.0  # rank int(10 * 0.9) = 9: the tenth sample, exactly the max
    assert rows[1]["p80"] == pytest.approx(10.0, rel=RELATIVE_ERROR)


def test_it_folds_endpoints_beyond_the_cap_into_other():
    recorder = Recorder()
    for i in range(MAX_ENDPOINTS + 5):
        recorder.record("GET", f"/item/{i}", 5.0, 1, "HTTPError('404')" if i >= MAX_ENDPOINTS else None)
    recorder.record("POST", "/late", 5.0, 1, None)
    stats = RunStats()
    stats.apply(snapshot(recorder, 0, 1))
    rows = stats.totals(1.0)
    names = {(r["method"], r["name"]) for r in rows}
    assert stats.overflowed
    assert len(names) == MAX_ENDPOINTS + 3  # 500 named, GET (other), POST (other), Aggregated
    assert next(r for r in rows if r["name"] == "(other)" and r["method"] == "GET")["requests"] == 5
    assert stats.endpoint_histogram("GET", "(other)")[bucket_of(5_000)] == 5  # five names, one row, one bucket
    assert ("POST", "/late") not in names and ("POST", "(other)") in names
    assert rows[-1]["requests"] == MAX_ENDPOINTS + 6
    assert stats.error_rows() == [{"method": "GET", "name": "(other)", "error": "HTTPError('404')", "count": 5}]
    # Known names keep their own row after the cap.
    record_all(recorder, [1.0], name="/item/3")
    stats.apply(snapshot(recorder, 0, 2))
    assert next(r for r in stats.totals(1.0) if r["name"] == "/item/3")["requests"] == 2


def test_it_does_not_overflow_at_the_cap():
    recorder = Recorder()
    for i in range(MAX_ENDPOINTS):
        recorder.record("GET", f"/item/{i}", 5.0, 1, None)
    stats = RunStats()
    stats.apply(snapshot(recorder, 0, 1))
    assert not stats.overflowed and len(stats.endpoints) == MAX_ENDPOINTS


def test_a_pool_folds_names_past_the_runs_cap_as_the_collector_does():
    def record(recorder):
        for i in range(6):
            recorder.record("GET", f"/item/{i}", 5.0 + i, 1, "HTTPError('404')" if i >= 4 else None)
        recorder.record("POST", "/late", 5.0, 1, None)

    pool, plain = Recorder(max_endpoints=4), Recorder()
    record(pool)
    record(plain)
    folded = snapshot(pool, 0, 1)
    assert [(e["method"], e["name"], e["count"]) for e in folded["endpoints"]] == [
        ("GET", "/item/0", 1), ("GET", "/item/1", 1), ("GET", "/item/2", 1), ("GET", "/item/3", 1),
        ("GET", "(other)", 2), ("POST", "(other)", 1)]
    assert folded["errors"] == [{"method": "GET", "name": "(other)", "error": "HTTPError('404')", "count": 2}]
    from_pool, from_plain = RunStats(max_endpoints=4), RunStats(max_endpoints=4)
    from_pool.apply(wire.decode(wire.encode(folded)))
    from_plain.apply(snapshot(plain, 0, 1))
    assert from_pool.totals(1.0) == from_plain.totals(1.0) and from_pool.error_rows() == from_plain.error_rows()
    assert from_pool.overflowed and from_plain.overflowed   # the page says so either way
    # The pool remembers the run's names from one interval to the next: known ones keep their row.
    pool.record("GET", "/item/2", 1.0, 1, None)
    pool.record("GET", "/item/9", 1.0, 1, None)
    assert [(e["name"], e["count"]) for e in snapshot(pool, 0, 2)["endpoints"]] == [("/item/2", 1), ("(other)", 1)]


def test_the_cap_is_the_runs_and_survives_a_round_trip_through_bytes():
    recorder = Recorder()
    for i in range(1_000):
        recorder.record("GET", f"/item/{i}", 5.0, 1, None)
    stats = RunStats(max_endpoints=1_000)
    stats.apply(snapshot(recorder, 0, 1))
    assert not stats.overflowed and len(stats.endpoints) == 1_000
    again = RunStats.from_bytes(stats.to_bytes())
    assert again.max_endpoints == 1_000
    recorder.record("GET", "/item/1000", 5.0, 1, None)
    again.apply(snapshot(recorder, 0, 2))
    rows = again.totals(1.0)
    assert again.overflowed and len(rows) == 1_002 and rows[0]["name"] == "(other)" and rows[0]["requests"] == 1


def test_it_continues_identically_after_a_round_trip_through_bytes():
    streams, _ = three_slots(np.random.default_rng(9), deltas=6)
    plain, restored = RunStats(), RunStats()
    deltas = [streams[slot][seq] for seq in range(6) for slot in range(3)]
    for delta in deltas[:10]:
        plain.apply(delta)
        restored.apply(delta)
    first_closed = plain.close_ticks(1)
    assert restored.close_ticks(1) == first_closed and [t["tick"] for t in first_closed] == [0, 1]
    restored = RunStats.from_bytes(restored.to_bytes())
    assert restored.apply(deltas[3]) is False  # high-water marks survived
    for delta in deltas[10:]:
        assert plain.apply(delta) and restored.apply(delta)
    assert state(restored) == state(plain)
    assert restored.close_ticks(None) == plain.close_ticks(None)
    assert RunStats.from_bytes(restored.to_bytes()).to_bytes() == restored.to_bytes()


def _version_1(stats: RunStats) -> bytes:
    """The state as runs stored it before version 2: plain msgpack, int64 positions, uint64 counts."""
    used = len(stats._names)
    flat = np.flatnonzero(stats._hist_flat[: used * NUM_BUCKETS])
    ticks = []
    for number, tick in sorted(stats._ticks.items()):
        tick.compact()
        ticks.append([number, [[slot, seq, users] for slot, (seq, users) in tick.users.items()],
                      *(part[0].astype(dtype).tobytes() if part else b"" for part, dtype in (
                          (tick.rows, "<i8"), (tick.scalars, "<i8"), (tick.flat, "<i8"), (tick.counts, "<u8")))])
    return msgpack.packb({
        "v": 1, "names": [list(key) for key in stats._names], "scalars": stats._scalars[:used].astype("<i8").tobytes(),
        "flat": flat.astype("<i8").tobytes(), "counts": stats._hist_flat[flat].astype("<u8").tobytes(),
        "errors": [[m, n, e, c] for (m, n, e), c in stats.errors.items()],
        "exceptions": [[m, t, c] for (m, t), c in stats.exceptions.items()],
        "slots": [[slot, x.last_seq, x.users, x.cpu, x.tick, x.final] for slot, x in stats.slots.items()],
        "overflowed": stats.overflowed, "closed_through": stats.closed_through,
        "late_snapshots": stats.late_snapshots, "ticks": ticks}, use_bin_type=True)


def test_it_reads_the_state_runs_stored_before_and_stores_a_fraction_of_it():
    streams, _ = three_slots(np.random.default_rng(11), deltas=6)
    stats = RunStats()
    for seq in range(6):
        for slot in range(3):
            stats.apply(streams[slot][seq])
    stats.close_ticks(2)  # seconds 3 to 5 stay open: they are in the state too
    before = _version_1(stats)
    for restored in (RunStats.from_bytes(before), RunStats.from_bytes(stats.to_bytes())):
        assert state(restored) == state(stats) and restored.open_ticks == [3, 4, 5]
        assert restored.close_ticks(None) == RunStats.from_bytes(before).close_ticks(None)
    assert len(stats.to_bytes()) * 3 < len(before)


def test_counts_past_32_bits_survive_the_state():
    stats = RunStats()
    for seq in (1, 2):  # 3 billion in one bucket each second: 6 billion in all
        stats.apply({"slot": 0, "seq": seq, "tick": seq - 1, "kind": "delta", "users": 1, "cpu": 1.0,
                     "errors": [], "exceptions": [], "endpoints": [{
                         "method": "GET", "name": "/hot", "count": 3 * 10**9, "failures": 0, "total_us": 3 * 10**11,
                         "bytes": 0, "min_us": 100, "max_us": 100,
                         "hist": (np.array([100], dtype=np.uint16), np.array([3 * 10**9], dtype=np.uint32))}]})
    restored = RunStats.from_bytes(stats.to_bytes())
    assert int(restored.endpoint_histogram("GET", "/hot")[100]) == 6 * 10**9
    assert restored.close_ticks(None) == stats.close_ticks(None)


def test_it_rejects_state_of_another_version():
    with pytest.raises(ValueError, match="version"):
        RunStats.from_bytes(wire.encode_control({"v": 99}))


# -- RunStats: one-second ticks ----------------------------------------------------------------------

def deltas_for(slot, tick, timings_ms, users, seq, failures=0, name="/a"):
    recorder = Recorder()
    for i, ms in enumerate(timings_ms):
        recorder.record("GET", name, ms, 0, "boom" if i < failures else None)
    return snapshot(recorder, slot, seq, tick=tick, users=users)


def test_it_sums_users_across_slots_and_counts_requests_per_second():
    stats = RunStats()
    stats.apply(deltas_for(0, 0, [0.1] * 30, users=5, seq=1, failures=3))  # 100 µs: exact buckets
    stats.apply(deltas_for(1, 0, [0.2] * 10, users=7, seq=1))
    stats.apply(deltas_for(0, 1, [0.1] * 4, users=6, seq=2))
    stats.apply(deltas_for(1, 1, [0.1] * 6, users=8, seq=2, name="/b"))
    ticks = stats.close_ticks(1)
    assert [(t["tick"], t["users"], t["rps"], t["fails_per_s"]) for t in ticks] == [(0, 12, 40.0, 3.0),
                                                                                   (1, 14, 10.0, 0.0)]
    assert (ticks[0]["p50_ms"], ticks[0]["p95_ms"], ticks[0]["p99_ms"]) == (0.1, 0.2, 0.2)
    assert ticks[0]["endpoints"] == {"GET /a": {"rps": 40.0, "fails_per_s": 3.0, "p50_ms": 0.1, "p95_ms": 0.2,
                                                "p99_ms": 0.2, "mean_ms": 0.125}}
    assert ticks[0]["mean_ms"] == 0.125 and ticks[1]["endpoints"]["GET /b"]["mean_ms"] == 0.1
    assert set(ticks[1]["endpoints"]) == {"GET /a", "GET /b"} and ticks[1]["endpoints"]["GET /b"]["rps"] == 6.0
    assert stats.close_ticks(5) == []


def test_it_takes_each_slots_latest_users_within_a_tick():
    stats = RunStats()
    stats.apply(deltas_for(0, 3, [1.0], users=10, seq=1))
    stats.apply(deltas_for(0, 3, [1.0], users=12, seq=2))
    assert stats.close_ticks(3)[0]["users"] == 12


def test_it_puts_a_late_delta_in_its_own_tick_within_the_grace():
    stats = RunStats()
    stats.apply(deltas_for(0, 0, [5.0] * 10, users=1, seq=1))
    stats.apply(deltas_for(0, 1, [5.0] * 10, users=1, seq=2))
    stats.apply(deltas_for(0, 2, [5.0] * 10, users=1, seq=3))
    assert [t["tick"] for t in stats.close_ticks(0)] == [0]   # now = 2 s, grace 2 s
    stats.apply(deltas_for(1, 1, [5.0] * 5, users=2, seq=1))  # slot 1's second 1, arriving late
    ticks = stats.close_ticks(1)
    assert [(t["tick"], t["rps"], t["users"]) for t in ticks] == [(1, 15.0, 3)]
    stats.apply(deltas_for(1, 1, [5.0] * 5, users=2, seq=2))  # too late: its tick is written
    assert stats.late_snapshots == 1 and stats.open_ticks == [2]
    assert stats.totals(3.0)[-1]["requests"] == 40  # still in the totals
    assert [(t["tick"], t["rps"]) for t in stats.close_ticks(None)] == [(2, 10.0)]


def test_it_compacts_a_tick_fed_by_many_slots_without_changing_it():
    many, few = RunStats(), RunStats()
    rng = np.random.default_rng(4)
    whole = Recorder()
    for slot in range(80):
        timings = rng.exponential(30, 20).tolist()
        many.apply(deltas_for(slot, 0, timings, users=1, seq=1))
        for ms in timings:
            whole.record("GET", "/a", ms, 0, None)
    few.apply(snapshot(whole, 0, 1, tick=0, users=80))
    assert many.close_ticks(0) == few.close_ticks(0)


def test_it_hands_out_each_seconds_cumulative_figures_through_that_second():
    """What `_stats_history.csv` writes per second (Locust's --csv-full-history): per endpoint and
    Aggregated, everything up to and including that second, not what arrived later."""
    stats = RunStats()
    stats.apply(deltas_for(0, 0, [0.1] * 10, users=1, seq=1, failures=2))        # /a: 10 x 100 µs
    stats.apply(deltas_for(0, 1, [0.2] * 10, users=1, seq=2, name="/b"))        # /b: 10 x 200 µs
    stats.apply(deltas_for(0, 2, [0.05] * 30, users=1, seq=3))                  # /a later: 30 x 50 µs
    stats.apply(deltas_for(0, 3, [0.25] * 5, users=1, seq=4, name="/b"))        # still open after the close
    ticks = stats.close_ticks(2, cumulative=True)
    rows = {t["tick"]: {(r[0], r[1]): r for r in t["cumulative"]} for t in ticks}
    # [method, name, requests, failures, mean_ms, min_ms, max_ms, avg_size, p50 .. p100]
    assert list(rows[0]) == [("GET", "/a"), ("", "Aggregated")]
    assert rows[0][("GET", "/a")][:8] == ["GET", "/a", 10, 2, 0.1, 0.1, 0.1, 0.0]
    assert rows[0][("", "Aggregated")][2:4] == [10, 2]
    assert list(rows[1]) == [("GET", "/b"), ("", "Aggregated")]   # /a had no request: its row stays as it was
    aggregated = rows[1][("", "Aggregated")]
    assert aggregated[2:7] == [20, 2, pytest.approx(0.15), 0.1, 0.2]
    assert aggregated[8] == 0.2 and aggregated[-1] == 0.2     # median: rank int(20 * .5) = 10 -> 200 µs; max
    third = rows[2][("GET", "/a")]
    assert third[2:7] == [40, 2, pytest.approx((10 * 0.1 + 30 * 0.05) / 40), 0.05, 0.1]
    assert third[8:] == [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]  # ranks 20, 26, 30, ... of 40
    assert rows[2][("", "Aggregated")][2] == 50                  # the open second 3 is not in it
    assert "cumulative" not in stats.close_ticks(None)[0]        # only when asked for
    final = stats.close_ticks(None, cumulative=True)
    assert final == []


def test_it_ends_the_cumulative_figures_on_the_runs_totals():
    stats = RunStats()
    rng = np.random.default_rng(11)
    for second in range(4):
        stats.apply(deltas_for(0, second, rng.exponential(20, 50).tolist(), users=3, seq=second + 1, failures=1))
    last = stats.close_ticks(None, cumulative=True)[-1]["cumulative"]
    totals = stats.totals(4.0)
    for row, total in zip(last, totals, strict=True):
        assert row[:8] == [total["method"], total["name"], total["requests"], total["failures"],
                           pytest.approx(total["mean_ms"], abs=1e-4), total["min_ms"], total["max_ms"],
                           pytest.approx(total["avg_size"], abs=0.01)]
        assert row[8:] == [total[key] for key in ("p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "p99.9",
                                                  "p99.99", "p100")]


def test_it_gives_a_row_to_an_endpoint_a_late_snapshot_changed():
    stats = RunStats()
    stats.apply(deltas_for(0, 0, [1.0] * 4, users=1, seq=1, name="/late"))
    stats.apply(deltas_for(0, 1, [1.0] * 2, users=1, seq=2))
    assert [r[1] for r in stats.close_ticks(0, cumulative=True)[0]["cumulative"]] == ["/late", "Aggregated"]
    stats.apply(deltas_for(1, 0, [1.0] * 3, users=1, seq=1, name="/late"))   # second 0, already handed out
    [tick] = stats.close_ticks(1, cumulative=True)
    assert [(r[1], r[2]) for r in tick["cumulative"]] == [("/a", 2), ("/late", 7), ("Aggregated", 9)]
