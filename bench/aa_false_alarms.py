"""False alarms and real regressions: the comparison's verdicts (runs/significance.py) on real runs.

Runs one scenario many times through the real stack against the nginx target (tests/target.py):

  A/A   --runs (20) runs of the same scenario, same parameters, same target. Every pair is compared
        as the compare page compares them (runs.history: each run's histograms and per-second rows,
        runs.significance's rule, and the run-to-run noise of the base run's earlier equal runs,
        runs.run_noise: A runs are labelled sut_version=base, B runs sut_version=slow, as a user labels two
        versions of a target, so an A run's equal runs are the other A runs, the pair left out); a cell is
        one endpoint (Aggregated included) x one figure (p50, p95, p99, mean, failure ratio, RPS).
        Target: at most 5 % of cells flagged better or worse.
  A/B   --slow-runs (10) runs in which the target is 20 % slower on /delay: the locustfile requests
        /delay/12ms (echo_sleep 0.012) instead of /delay/10ms (echo_sleep 0.01) under the same name
        "/delay", through an environment variable of the run, so the run's parameters are the same.
        Every A x B pair is compared. Target: at least 95 % of the /delay cells that a slowdown moves
        (p50, p95, p99, mean, RPS) flagged worse. /delay's failure ratio (nothing fails) and the other
        endpoints (their users are separate, fixed_count) did not change: their flags are false alarms,
        printed too.
  Baseline rule 2.0 (runs/baseline.py), on the same runs: the scenario has the criterion "p95 of total
        not significantly worse than each of the last 5 passing runs with the same parameters", so each
        run ended with a verdict; printed: how many A runs failed it (false alarms) and how many B runs
        (regressions caught), with the endpoints the verdicts named.

Runs are interleaved (A A B A A B ...) after one warm-up run that is not counted, so drift of the
machine over the benchmark hits both kinds alike. Swarmdeck runs as `make run` does (bench/engine.py's
Stack: embedded Redis, SQLite, collector, one load worker) in a temporary VAR_DIR.

    .venv/bin/python bench/aa_false_alarms.py [--runs 20] [--slow-runs 10] [--seconds 8] [--users 20]
    .venv/bin/python bench/aa_false_alarms.py --analyze /tmp/swarmdeck-bench-aa-XXXX/var   (compare kept runs again)

About 5 minutes with the defaults on 2 cores.
"""

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import Stack  # noqa: E402
from bench.machine import lower_control_plane, pin_load_worker, raise_priority, stolen_seconds  # noqa: E402
from tests import target as target_module  # noqa: E402

FALSE_ALARM_TARGET = 0.05
DETECTION_TARGET = 0.95
SLOW_PATH = "/delay/12ms"
MOVED_BY_SLOWDOWN = ("p50", "p95", "p99", "mean_ms", "rps")

LOCUSTFILE = """\
import os

from locust import FastHttpUser, constant_throughput, task

DELAY_PATH = os.environ.get("DELAY_PATH", "/delay/10ms")


class Browser(FastHttpUser):
    fixed_count = {browsers}
    wait_time = constant_throughput(40)

    @task(3)
    def ok(self):
        self.client.get("/ok")

    @task(2)
    def json(self):
        self.client.get("/json")

    @task(1)
    def static(self):
        self.client.get("/static10k")


class Waiter(FastHttpUser):
    fixed_count = {waiters}

    @task
    def delay(self):
        self.client.get(DELAY_PATH, name="/delay")
"""


def wait_for_end(run_id: int, timeout: float):
    from runs.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.status in Run.TERMINAL:
            return run
        time.sleep(0.1)
    raise RuntimeError(f"run #{run_id} did not end within {timeout:.0f} s")


def labels_of(slow: bool) -> dict:
    """What the run tested, as a user labels it: the B runs test another version of the target."""
    return {"sut_version": "slow" if slow else "base"}


def one_run(scenario, params: dict, slow: bool, timeout: float):
    from runs import services

    overrides = {**params, "env": {"DELAY_PATH": SLOW_PATH} if slow else {}}
    run = services.start_run(scenario, params=overrides, labels=labels_of(slow))
    run = wait_for_end(run.pk, timeout)
    if run.status != run.Status.FINISHED or not run.total_requests:
        raise RuntimeError(f"run #{run.pk} ended {run.status} with {run.total_requests} requests: {run.reason}")
    return run


def cell_name(key) -> str:
    method, name = key
    return f"{method} {name}".strip()


def compare_all(pairs, samples, rule, runs):
    """Every pair's verdicts: {(base id, other id): {endpoint key: {figure: Verdict}}}, as the compare page
    judges them: with the run-to-run noise of the base run's earlier equal runs (runs/run_noise.py: same
    parameters and labels, the pair left out)."""
    from runs import run_noise, significance

    results = {}
    for base, other in pairs:
        noise = run_noise.of_history(runs[base], rule.level, exclude=[base, other])
        shared = sorted(set(samples[base]) & set(samples[other]))
        results[base, other] = {key: significance.compare(samples[base][key], samples[other][key], rule,
                                                          noise.of(key), noise.runs) for key in shared}
    return results


def flag_table(results, keys, figures) -> tuple[int, int, dict]:
    """(flagged, cells, per (endpoint, figure) Counter of outcomes) over the given endpoints and figures."""
    flagged, cells = 0, 0
    detail = defaultdict(Counter)
    for verdicts in results.values():
        for key, by_figure in verdicts.items():
            if key not in keys:
                continue
            for figure in figures:
                verdict = by_figure[figure]
                detail[key, figure][verdict.outcome] += 1
                cells += 1
                flagged += verdict.outcome in ("better", "worse")
    return flagged, cells, detail


def share(outcomes: Counter) -> float:
    """The flagged share of one endpoint-figure's cells."""
    return (outcomes["better"] + outcomes["worse"]) / max(1, sum(outcomes.values()))


def met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def analyze(runs_a, runs_b, header: list[str]) -> list[str]:
    """The report: A/A and A/B flag rates, per endpoint and figure, and the baseline rule's verdicts."""
    from runs import evidence, history
    from runs.models import Run

    rule = history.compare_rule()
    every = runs_a + runs_b
    samples = {run.pk: evidence.samples(run) for run in every}
    keys = sorted({key for run in every for key in samples[run.pk]})
    delay = next(key for key in keys if key[1] == "/delay")
    others = [key for key in keys if key != delay and key[1] != "Aggregated"]
    figures = ("p50", "p95", "p99", "mean_ms", "fail_pct", "rps")

    by_id = {run.pk: run for run in every}
    aa = compare_all(itertools.combinations([r.pk for r in runs_a], 2), samples, rule, by_id)
    aa_flagged, aa_cells, aa_detail = flag_table(aa, set(keys), figures)
    ab = compare_all([(x.pk, y.pk) for x in runs_a for y in runs_b], samples, rule, by_id)
    hit, moved, ab_detail = flag_table(ab, {delay}, MOVED_BY_SLOWDOWN)
    worse = sum(ab_detail[delay, figure]["worse"] for figure in MOVED_BY_SLOWDOWN)
    still, still_cells, _ = flag_table(ab, set(others), figures)
    ratio_flagged, ratio_cells, _ = flag_table(ab, {delay}, ("fail_pct",))

    requests = sorted(run.total_requests for run in runs_a)
    lines = [
        *header,
        f"rule: {rule.level * 100:g}% intervals, minimum effect {rule.min_ms:g} ms and "
        f"{rule.min_relative * 100:g}% (response times), {rule.min_failure_pp:g} pp (failures), "
        f"{rule.min_relative * 100:g}% (RPS); requests per A run {requests[0]:,} .. {requests[-1]:,}",
        "",
        f"A/A: {len(aa)} pairs x {len(keys)} endpoints (Aggregated included) x {len(figures)} figures = "
        f"{aa_cells:,} cells",
        f"   flagged better or worse      {aa_flagged:>6,} of {aa_cells:,} = {aa_flagged / aa_cells:6.2%}   "
        f"(target <= {FALSE_ALARM_TARGET:.0%})  {met(aa_flagged / aa_cells <= FALSE_ALARM_TARGET)}",
        "",
        f"A/B, /delay 10 ms -> 12 ms: {len(ab)} pairs",
        f"   /delay cells flagged         {hit:>6,} of {moved:,} = {hit / moved:6.2%}   "
        f"(target >= {DETECTION_TARGET:.0%})  {met(hit / moved >= DETECTION_TARGET)}"
        f"   [{', '.join(MOVED_BY_SLOWDOWN)}; {worse:,} of them worse]",
        f"   unchanged cells flagged      {still:>6,} of {still_cells:,} = {still / still_cells:6.2%}   "
        f"(the other endpoints, all figures)",
        f"   /delay failure ratio flagged {ratio_flagged:>6,} of {ratio_cells:,}   (nothing fails)",
        "",
        "Flagged share per endpoint and figure, A/A (and A/B for /delay)",
        f"   {'endpoint':<18}" + "".join(f"{figure:>9}" for figure in figures),
    ]
    for key in keys:
        lines.append(f"   {cell_name(key):<18}" + "".join(
            f"{share(aa_detail[key, f]):9.1%}" if aa_detail[key, f] else f"{'-':>9}" for f in figures))
    lines.append(f"   {cell_name(delay) + ' A/B':<18}" + "".join(
        f"{share(ab_detail[delay, f]):9.1%}" if f in MOVED_BY_SLOWDOWN else f"{'-':>9}" for f in figures))

    stored = {run.pk: run for run in Run.objects.filter(pk__in=[r.pk for r in every]).only("verdict",
                                                                                           "verdict_details")}
    judged_a = [r.pk for r in runs_a if any(e.get("applicable") for e in stored[r.pk].verdict_details)]
    failed_a = [pk for pk in judged_a if stored[pk].verdict == "fail"]
    failed_b = [r.pk for r in runs_b if stored[r.pk].verdict == "fail"]
    named = Counter(regression["endpoint"] for r in runs_b for e in stored[r.pk].verdict_details
                    for regression in e.get("regressions") or [])
    lines += ["", "Baseline rule 2.0 (p95 of every endpoint against each of the last 5 passing runs with the "
                  "same parameters)",
              f"   A runs failed                {len(failed_a):>6} of {len(judged_a)} judged "
              "(the first has no baseline)",
              f"   B runs failed                {len(failed_b):>6} of {len(runs_b)}   regressions named: "
              + (", ".join(f"{name} ({count})" for name, count in named.most_common()) or "none")]
    return lines


def kept_runs():
    """The A and B runs of an earlier benchmark's database (--analyze): every finished run but the first."""
    from runs.models import Run

    runs = list(Run.objects.filter(status=Run.Status.FINISHED).order_by("pk"))[1:]
    slow = [run for run in runs if (run.params.get("env") or {}).get("DELAY_PATH") == SLOW_PATH]
    for run in runs:   # runs kept by a version of this benchmark that did not label them
        if not run.labels:
            run.labels = labels_of(run in slow)
            Run.objects.filter(pk=run.pk).update(labels=run.labels)
    return [run for run in runs if run not in slow], slow


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20, help="A runs (same scenario, same target)")
    parser.add_argument("--slow-runs", type=int, default=10, help="B runs (/delay 20%% slower)")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--users", type=int, default=20, help="half of them Browser (40 req/s each), half Waiter")
    parser.add_argument("--nice", type=int, default=-10,
                        help="Niceness of the load worker and its pools; nginx runs 5 below, the rest of Swarmdeck 5 "
                             "above: as if the target, the load generator and the control plane each had a machine, "
                             "and other processes on a shared one disturbed them less (needs root below 0)")
    parser.add_argument("--pin", action="store_true",
                        help="The load worker and its pools alone on the last CPU, the rest on the others")
    parser.add_argument("--analyze", metavar="VAR_DIR",
                        help="Only compare the runs kept in an earlier benchmark's VAR_DIR (printed at the end)")
    args = parser.parse_args()
    if args.analyze:
        os.environ.update(VAR_DIR=args.analyze, DJANGO_SETTINGS_MODULE="controlcenter.settings",
                          REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:9/0"))
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a database kept by an older version of this benchmark
        runs_a, runs_b = kept_runs()
        print("\n".join(analyze(runs_a, runs_b, [f"{len(runs_a)} A runs + {len(runs_b)} B runs kept in "
                                                  f"{args.analyze}"])))
        return
    started = time.monotonic()
    # Priorities as if each had its own machine: nginx first, then the load worker and its pools, then the
    # control plane (web, collector, beat, Redis), all above whatever else shares this machine.
    raise_priority(args.nice - 5)
    work = Path(tempfile.mkdtemp(prefix="swarmdeck-bench-aa-"))
    target = target_module.start()
    niceness = raise_priority(args.nice)
    os.environ["SWARMDECK_ALLOW_LOOPBACK_TARGETS"] = "1"  # the target is nginx on loopback, like the tests'
    stack = None
    try:
        stack = Stack(work / "var", port=18000 + os.getpid() % 1000)
        control_plane = lower_control_plane(stack.process.pid, niceness + 5)
        pinned = pin_load_worker(stack.process.pid, target.pid) if args.pin else "not pinned"
        locustfile = work / "aa.py"
        waiters = args.users // 2
        locustfile.write_text(LOCUSTFILE.format(browsers=args.users - waiters, waiters=waiters))
        # The first run creates the project and the scenario (and warms the worker up); it is not counted.
        stack.runscenario(locustfile, target.url, args.users, args.seconds, slots=1)

        import logging

        logging.getLogger("runs").setLevel(logging.WARNING)  # a line per queued run otherwise
        from runs.models import Run, Threshold
        from scenarios.models import Scenario

        scenario = Scenario.objects.get(name=locustfile.stem, project__slug="bench")
        Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.P95_BASELINE, value=0, baseline_runs=5)
        params = {"users": args.users, "spawn_rate": args.users, "duration": args.seconds, "slots": 1,
                  "host": target.url}
        total = args.runs + args.slow_runs
        # A A B A A B ...: the B runs spread evenly among the A runs.
        plan = [(i + 1) * args.slow_runs // total > i * args.slow_runs // total for i in range(total)]
        runs_a, runs_b = [], []
        stolen = []   # per run: CPU seconds the hypervisor took from this VM meanwhile (a shared host's noise)
        for slow in plan:
            before = stolen_seconds()
            run = one_run(scenario, params, slow, timeout=args.seconds + 120)
            stolen.append((run.pk, stolen_seconds() - before))
            (runs_b if slow else runs_a).append(run)
        load = os.getloadavg()
        header = [
            f"nginx target {target.url}; {args.users} users ({args.users - waiters} Browser at 40 req/s each: /ok, "
            f"/json, /static10k; {waiters} Waiter: /delay), {args.seconds} s per run, 1 slot, {os.cpu_count()} cores, "
            f"niceness: nginx {niceness - 5 if niceness == args.nice else niceness}, load worker {niceness}, "
            f"control plane {niceness + 5} ({control_plane} processes); {pinned}",
            f"{len(runs_a)} A runs + {len(runs_b)} B runs (interleaved) in {time.monotonic() - started:.0f} s; "
            f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"CPU stolen by the hypervisor during the runs: {sum(t for _, t in stolen):.1f} s in all "
            f"({100 * sum(t for _, t in stolen) / (args.seconds * len(stolen) * (os.cpu_count() or 1)):.1f} % of the "
            f"runs' CPU time); the most during one run: "
            + ", ".join(f"#{pk} {t:.1f} s" for pk, t in sorted(stolen, key=lambda item: -item[1])[:5]),
        ]
        lagged = [(run.pk, "B" if run in runs_b else "A") for run in Run.objects.filter(
            pk__in=[r.pk for r in runs_a + runs_b]).order_by("pk") if any(w.get("kind") == "lag" for w in run.warnings)]
        header.append("runs whose load generator lagged (event loop 25 ms late in 3 seconds or more): "
                      + (", ".join(f"#{pk} ({kind})" for pk, kind in lagged) or "none"))
        lines = analyze(runs_a, runs_b, header)
        lines += ["", f"Finished in {time.monotonic() - started:.0f} s; the runs are kept in {work / 'var'} "
                      "(--analyze it)."]
        print("\n".join(lines))
    finally:
        if stack:
            stack.stop()
        target.stop()


if __name__ == "__main__":
    main()
