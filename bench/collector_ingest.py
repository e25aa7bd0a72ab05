"""Collector ingest: decode + merge throughput of snapshots on one core, Swarmdeck vs naive JSON.

Run: .venv/bin/python bench/collector_ingest.py

Synthetic but realistic snapshots: 50 endpoints each, lognormal latencies with per-endpoint
medians from 2 ms to 400 ms, ~160 requests and ~120 populated histogram buckets per endpoint,
2% failures, built with the real Recorder and wire.encode. The naive reference carries the same data as
JSON with each histogram as a {bucket: count} dict, merged with json.loads + dict addition.
Both paths do the same bookkeeping (duplicate check per slot, scalar totals, histograms);
the Swarmdeck path also keeps the per-second time series and closes ticks as it goes, like
the collector does.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers import wire  # noqa: E402
from workers.stats import Recorder, RunStats  # noqa: E402

ENDPOINTS = 50
SLOTS = 10
BASES = 16               # distinct recorded deltas, reused with different slot/seq/tick
SNAPSHOTS = 4000         # Swarmdeck path, per repetition
NAIVE_SNAPSHOTS = 800    # the naive path is ~15x slower; fewer keep the bench under a minute
REPEATS = 3
TARGET = 1000
TICK_GRACE = 2


def pin_to_one_core() -> str:
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError) as error:
        return f"not pinned ({error})"


def recorded_bases(rng: np.random.Generator) -> tuple[list[dict], float]:
    medians_ms = np.geomspace(2, 400, ENDPOINTS)
    recorder = Recorder()
    bases = []
    calls = 0
    started = time.perf_counter()
    for _ in range(BASES):
        for e, median in enumerate(medians_ms):
            method = "POST" if e % 5 == 0 else "GET"
            name = f"/api/v1/resource-{e}/{{id}}"
            n = int(rng.integers(130, 190))
            times = rng.lognormal(np.log(median), 0.4, n)
            failed = rng.random(n) < 0.02
            sizes = rng.integers(200, 20_000, n)
            for t, f, size in zip(times.tolist(), failed.tolist(), sizes.tolist()):
                recorder.record(method, name, t, size, f"HTTPError('503 for <Response object at 0x7f{calls:08x}>')"
                                if f else None)
                calls += 1
        bases.append(recorder.take_delta(run=1, slot=0, seq=1, tick=0, elapsed=1.0, users=100, cpu=80.0))
    return bases, (time.perf_counter() - started) / calls * 1e6


def stream_of(bases: list[dict], count: int) -> list[dict]:
    """`count` snapshots in stream order: every slot sends seq 1, 2, 3 … (one per second)."""
    snapshots = []
    for i in range(count):
        seq, slot = divmod(i, SLOTS)
        seq += 1
        snapshots.append({**bases[(slot * 7 + seq) % BASES], "slot": slot, "seq": seq, "tick": seq - 1,
                          "elapsed": float(seq)})
    return snapshots


def naive_encode(snapshot: dict) -> bytes:
    plain = {**snapshot, "endpoints": [
        {**{k: v for k, v in e.items() if k != "hist"},
         "hist": {str(b): int(c) for b, c in zip(e["hist"][0].tolist(), e["hist"][1].tolist())}}
        for e in snapshot["endpoints"]]}
    return json.dumps(plain).encode()


class NaiveStats:
    """The reference merge: json.loads, then dict addition per endpoint and bucket."""

    def __init__(self):
        self.high_water = {}
        self.endpoints = {}
        self.errors = {}

    def apply(self, data: bytes) -> bool:
        snapshot = json.loads(data)
        if snapshot["seq"] <= self.high_water.get(snapshot["slot"], 0):
            return False
        self.high_water[snapshot["slot"]] = snapshot["seq"]
        for e in snapshot["endpoints"]:
            key = (e["method"], e["name"])
            totals = self.endpoints.get(key)
            if totals is None:
                totals = self.endpoints[key] = {"count": 0, "failures": 0, "total_us": 0, "bytes": 0,
                                                "min_us": None, "max_us": 0, "hist": {}}
            totals["count"] += e["count"]
            totals["failures"] += e["failures"]
            totals["total_us"] += e["total_us"]
            totals["bytes"] += e["bytes"]
            totals["min_us"] = e["min_us"] if totals["min_us"] is None else min(totals["min_us"], e["min_us"])
            totals["max_us"] = max(totals["max_us"], e["max_us"])
            hist = totals["hist"]
            for bucket, count in e["hist"].items():
                hist[bucket] = hist.get(bucket, 0) + count
        for e in snapshot["errors"]:
            key = (e["method"], e["name"], e["error"])
            self.errors[key] = self.errors.get(key, 0) + e["count"]
        return True


def swarmdeck_pass(payloads: list[bytes]) -> tuple[float, RunStats]:
    stats = RunStats()
    per_second = SLOTS
    started = time.perf_counter()
    for i, data in enumerate(payloads):
        stats.apply(wire.decode(data))
        if (i + 1) % per_second == 0:  # the collector closes finished seconds as it goes
            stats.close_ticks((i + 1) // per_second - 1 - TICK_GRACE)
    stats.close_ticks(None)
    return time.perf_counter() - started, stats


def naive_pass(payloads: list[bytes]) -> tuple[float, NaiveStats]:
    stats = NaiveStats()
    started = time.perf_counter()
    for data in payloads:
        stats.apply(data)
    return time.perf_counter() - started, stats


def main() -> None:
    pinned = pin_to_one_core()
    rng = np.random.default_rng(42)
    bases, record_us = recorded_bases(rng)
    populated = statistics.mean(len(e["hist"][0]) for b in bases for e in b["endpoints"])

    snapshots = stream_of(bases, SNAPSHOTS)
    started = time.perf_counter()
    payloads = [wire.encode(s) for s in snapshots]
    encode_us = (time.perf_counter() - started) / len(payloads) * 1e6
    naive_payloads = [naive_encode(s) for s in snapshots[:NAIVE_SNAPSHOTS]]

    fast_times = [swarmdeck_pass(payloads)[0] for _ in range(REPEATS)]
    _, stats = swarmdeck_pass(payloads)
    naive_times = [naive_pass(naive_payloads)[0] for _ in range(REPEATS)]
    _, naive = naive_pass(naive_payloads)

    # Both paths saw the same data: their request counts for the shared prefix must agree.
    prefix = RunStats()
    for data in payloads[:NAIVE_SNAPSHOTS]:
        prefix.apply(wire.decode(data))
    assert prefix.totals(1.0)[-1]["requests"] == sum(e["count"] for e in naive.endpoints.values())

    fast_rate = SNAPSHOTS / statistics.median(fast_times)
    naive_rate = NAIVE_SNAPSHOTS / statistics.median(naive_times)
    started = time.perf_counter()
    for data in payloads[:1000]:
        wire.decode(data)
    decode_us = (time.perf_counter() - started) / 1000 * 1e6
    decoded = [wire.decode(data) for data in payloads[:1000]]
    started = time.perf_counter()
    applier = RunStats()
    for snapshot in decoded:
        applier.apply(snapshot)
    apply_us = (time.perf_counter() - started) / 1000 * 1e6
    started = time.perf_counter()
    totals = stats.totals(60.0)
    totals_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    blob = stats.to_bytes()
    to_bytes_ms = (time.perf_counter() - started) * 1e3

    print(f"Collector ingest, one core ({pinned}); {SNAPSHOTS} snapshots from {SLOTS} slots, "
          f"{ENDPOINTS} endpoints each, {populated:.0f} populated buckets per endpoint on average, "
          f"median of {REPEATS} runs")
    print()
    print(f"{'':<34} {'Swarmdeck':>14} {'naive JSON':>14} {'ratio':>8}")
    ratio = fast_rate / naive_rate
    print(f"{'decode + merge, snapshots/s':<34} {fast_rate:>14,.0f} {naive_rate:>14,.0f} {ratio:>7.1f}x")
    wire_kb = statistics.mean(map(len, payloads)) / 1024
    json_kb = statistics.mean(map(len, naive_payloads)) / 1024
    print(f"{'bytes per snapshot (KiB)':<34} {wire_kb:>14.1f} {json_kb:>14.1f} {json_kb / wire_kb:>7.1f}x")
    print(f"{'target (decode + merge)':<34} {TARGET:>14,} snapshots/s -> "
          f"{'MET' if fast_rate >= TARGET else 'MISSED'}")
    print()
    print("Swarmdeck breakdown")
    print(f"  Recorder.record              {record_us:8.2f} µs per request (pool side)")
    print(f"  wire.encode                  {encode_us:8.1f} µs per snapshot (pool side)")
    print(f"  wire.decode                  {decode_us:8.1f} µs per snapshot")
    print(f"  RunStats.apply               {apply_us:8.1f} µs per snapshot (ticks left open)")
    print(f"  RunStats.totals (51 rows)    {totals_ms:8.2f} ms")
    print(f"  RunStats.to_bytes            {to_bytes_ms:8.2f} ms, {len(blob) / 1024:.0f} KiB")
    print(f"  aggregate requests merged    {totals[-1]['requests']:,}")


if __name__ == "__main__":
    main()
