"""Collector capacity: the CPU one collector spends per snapshot and per persist, apart from the machine's load.

    .venv/bin/python bench/collector_capacity.py [--slots 1000] [--runs 10] [--seconds 20] [--profile FILE]

bench/scale.py measures the whole control plane under N live slots; on a shared 2-core machine the
collector then gets what the slots, Redis and PostgreSQL leave it, and how fast it ingests says as
much about them as about it. This measures the collector alone: the real Collector class in this
process, on a private redis-server and a temporary PostgreSQL database (as bench/scale.py sets them
up), R runs of N/R slots set running, and S seconds of their snapshots (one per slot per second, the
same recorded contents as bench/scale.py: 50 endpoints, ~160 requests and ~115 error rows each) put
on the stream beforehand. Then the collector's loop (Collector.process_one, as `manage.py collect`
runs it) until every snapshot is persisted. Printed: the CPU time of this process (user + system,
`resource.getrusage`) per snapshot and per persist, the snapshots it merged per CPU second, and the
cores it would need for N slots in real time (N snapshots/s and R persists/s), with the share of
each part from cProfile-free timers around the collector's steps.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def prepare(args) -> tuple[list[tuple[int, list[tuple[int, str]]]], object]:
    """The stack and R running runs; their (run, [(slot, token)])."""
    import scale

    stack = scale.Stack()
    redis_url = scale.start_redis(stack)
    scale.setup_django(stack, redis_url, scale.prepare_database(stack))
    from django.utils import timezone

    from runs.models import Run, RunSlot

    user, scenario = scale.make_project()
    dispatched = scale.dispatch_runs(user, scenario, args.slots, args.runs)
    started = timezone.now()
    for run_id, _ in dispatched:
        Run.objects.filter(pk=run_id).update(status=Run.Status.RUNNING, started_at=started)
        RunSlot.objects.filter(run_id=run_id).update(status=RunSlot.Status.RUNNING)
    return [(run_id, [(a["slot"], a["token"]) for a in batch]) for run_id, batch in dispatched], stack


def fill(redis, runs, seconds: int) -> int:
    """Every slot's snapshots of `seconds` seconds on the stream, second by second; how many."""
    import scale

    from workers import protocol, wire

    deltas = scale.recorded_deltas(0)
    count = 0
    for second in range(1, seconds + 1):
        pipe = redis.pipeline(transaction=False)
        for run, slots in runs:
            for slot, token in slots:
                base = deltas[(slot + second) % len(deltas)]
                data = wire.encode({**base, "run": run, "slot": slot, "seq": second, "tick": second - 1,
                                    "kind": "delta", "elapsed": float(second)})
                pipe.xadd(protocol.REPORT_STREAM, {"type": protocol.EVENT_SNAPSHOT, "run": run, "slot": slot,
                                                   "token": token, "data": data})
                count += 1
        pipe.execute()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=20, help="seconds of snapshots put on the stream")
    parser.add_argument("--profile", type=Path, help="also write a cProfile of the loop to this file")
    args = parser.parse_args()
    runs, stack = prepare(args)
    try:
        measure(args, runs)
    finally:
        stack.close()


def measure(args, runs) -> None:
    from runs import persistence
    from runs.collector import Collector
    from runs.models import RunSlot
    from runs.redis import client

    collector = Collector("capacity", block_ms=10)
    collector.setup()
    offered = fill(client(), runs, args.seconds)
    persists = {"n": 0, "cpu": 0.0}
    original = persistence.Persistence.persist_run

    def timed(self, live, final=False):
        started = cpu()
        try:
            return original(self, live, final)
        finally:
            persists["n"] += 1
            persists["cpu"] += cpu() - started

    persistence.Persistence.persist_run = timed
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    wall, started = time.perf_counter(), cpu()
    deadline = time.monotonic() + 600
    expected = args.seconds * args.slots
    run_ids = [run for run, _ in runs]
    while time.monotonic() < deadline:
        collector.process_one()  # its lifecycle runs in it every 0.25 s, as under `manage.py collect`
        merged = sum(state.merged for live in collector.live.values() for state in live.slots.values())
        if merged >= expected and sum(RunSlot.objects.filter(run_id__in=run_ids).values_list(
                "snapshots", flat=True)) >= expected:
            break
    spent, wall = cpu() - started, time.perf_counter() - wall
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    per_persist = persists["cpu"] / max(1, persists["n"])
    per_snapshot = (spent - persists["cpu"]) / offered
    need = args.slots * per_snapshot + args.runs * per_persist
    print(json.dumps({"slots": args.slots, "runs": args.runs, "snapshots": offered, "persists": persists["n"],
                      "cpu_s": round(spent, 2), "wall_s": round(wall, 2)}))
    print(f"Collector alone, {args.slots} slots in {args.runs} runs, {offered:,} snapshots on the stream "
          f"({args.seconds} s of them), merged and persisted in {wall:.1f} s wall, {spent:.1f} s CPU")
    print(f"  CPU per snapshot (read, check, merge; lifecycle included)  {per_snapshot * 1e3:6.3f} ms")
    print(f"  CPU per persist ({persists['n']} of them: write, push)            {per_persist * 1e3:6.1f} ms")
    print(f"  snapshots merged per CPU second                          {offered / spent:8,.0f}")
    print(f"  cores needed for {args.slots} slots in real time ({args.slots} snapshots/s, {args.runs} persists/s): "
          f"{need:.2f}")


if __name__ == "__main__":
    main()
