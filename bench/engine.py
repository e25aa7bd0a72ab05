"""Run-engine benchmarks, each side by side with its reference in the same invocation.

  1. One slot vs plain `locust --headless` (one process): same FastHttpUser locustfile, same
     nginx target. Target: Swarmdeck RPS / Locust RPS >= 0.97.
  2. Two slots vs one slot. Target: >= 1.85x.
  5. Start (submit -> all slots running) and stop (stop pressed -> every user stopped), median
     of 5. Targets: <= 3 s and <= 2 s. Slots run sandboxed (bubblewrap) when the worker can.
  6. The sandbox's share of the start: a pool from its start to "ready" (locustfile imported),
     in the sandbox and as a plain child process, median of 5 each.

Swarmdeck runs as `make run` does (embedded Redis, SQLite, collector, one load worker with one
process per core) in a temporary VAR_DIR; runs go through `manage.py runscenario` and the ORM.

    .venv/bin/python bench/engine.py [--seconds 20] [--users 50] [--repeats 3] [--only 1,2,5,6]
"""

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import target as target_module  # noqa: E402  (the nginx target the tests use too)

LOCUSTFILE = """\
from locust import FastHttpUser, task


class Hammer(FastHttpUser):
    @task
    def ok(self):
        self.client.get("/ok")
"""


def plain_locust(locustfile: Path, host: str, users: int, seconds: int, workdir: Path) -> float:
    prefix = workdir / "locust"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
         "-t", f"{seconds}s", "--host", host, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
        cwd=workdir, check=False, capture_output=True, timeout=seconds + 60,
    )
    with open(f"{prefix}_stats.csv") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                # Locust divides by its own run time; so does Swarmdeck (the time users were started).
                return float(row["Requests/s"])
    raise RuntimeError("locust wrote no Aggregated row")


class Stack:
    """`make run` in a temporary VAR_DIR."""

    def __init__(self, var: Path, port: int):
        self.var = var
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY",
                                                                       "DJANGO_SETTINGS_MODULE")}
        self.env.update(VAR_DIR=str(var), PORT=str(port), PYTHONUNBUFFERED="1")
        self.log = (var.parent / "launcher.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "controlcenter.launcher"], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "Swarmdeck is running at" not in (var.parent / "launcher.log").read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError((var.parent / "launcher.log").read_text()[-3000:])
            time.sleep(0.3)
        self.env["REDIS_URL"] = json.loads((var / "redis" / "embedded.json").read_text())["url"]
        self.env["DJANGO_SETTINGS_MODULE"] = "controlcenter.settings"
        os.environ.update({k: self.env[k] for k in ("VAR_DIR", "REDIS_URL", "DJANGO_SETTINGS_MODULE")})
        import django

        django.setup()
        from runs import cluster

        while cluster.capacity() < 2:
            time.sleep(0.2)

    def runscenario(self, locustfile: Path, host: str, users: int, seconds: int, slots: int) -> dict:
        report = self.var.parent / f"report-{time.time_ns()}.json"
        result = subprocess.run(
            [sys.executable, "manage.py", "runscenario", str(locustfile), "-u", str(users), "-r", str(users),
             "-t", f"{seconds}s", "--host", host, "--slots", str(slots), "--project", "bench", "--user", "admin",
             "--json", str(report)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=seconds + 120,
        )
        if result.returncode not in (0, 1):
            raise RuntimeError(result.stdout[-3000:] + result.stderr[-3000:])
        return json.loads(report.read_text())

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(60)

    def isolation(self) -> str:
        from runs import cluster

        workers = [w for w in cluster.workers() if w.online]
        return "; ".join(f"{w.name}: {'isolated' if w.isolated else 'NOT isolated'} ({w.isolation})" for w in workers)


def pool_ready_seconds(isolated: bool, work: Path) -> float:
    """One pool from its start to its ready frame, in the sandbox or as a plain child process."""
    from workers import sandbox, slot
    from workers.limits import Limits

    run_dir = Path(tempfile.mkdtemp(prefix="pool-", dir=work))
    (run_dir / "locustfile.py").write_text(LOCUSTFILE)
    user = sandbox.SandboxUser().acquire() if isolated else sandbox.SandboxUser()
    try:
        sandbox.prepare_run_dir(run_dir, user.uid)
        started = time.perf_counter()
        pool = slot.PoolProcess(run_dir, Limits(), sandbox.Isolation(isolated, ""), user.uid)
        pool.send({"type": "init", "run": 1, "slot": 0, "slots": 1, "locustfile": "locustfile.py",
                   "params": {"users": 1, "spawn_rate": 1, "share": 1.0, "host": "http://127.0.0.1:9",
                              "duration": 0, "user_classes": [], "tags": [], "exclude_tags": [], "stop_timeout": 0}})
        frame = pool.next_frame(60)
        elapsed = time.perf_counter() - started
        pool.close()
        if not frame or frame.get("type") != "ready":
            raise RuntimeError(f"the pool answered {frame!r}: {pool.tail()}")
        return elapsed
    finally:
        user.release()


def start_stop_latency(locustfile: Path, host: str, repeats: int) -> tuple[list[float], list[float]]:
    """Submit -> every slot running (the go time), and stop -> every user stopped (run finished)."""
    from runs import services
    from runs.models import Run
    from scenarios.models import Scenario

    scenario = Scenario.objects.get(name=locustfile.stem, project__slug="bench")
    starts, stops = [], []
    for _ in range(repeats):
        submitted = time.time()
        run = services.start_run(scenario, params={"users": 10, "spawn_rate": 100, "duration": 600, "slots": 2,
                                                   "host": host})
        while run.status != Run.Status.RUNNING:
            time.sleep(0.02)
            run.refresh_from_db()
        starts.append(run.started_at.timestamp() - submitted)
        time.sleep(2)
        pressed = time.time()
        services.request_stop(run)
        while run.status not in Run.TERMINAL:
            time.sleep(0.02)
            run.refresh_from_db()
        # Every slot's final snapshot (sent once its users stopped) has been counted by then.
        stops.append((run.ended_at.timestamp()) - pressed)
    return starts, stops


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--only", default="1,2,5,6")
    parser.add_argument("--repeats", type=int, default=3, help="alternating pairs in benchmark 1")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="swarmdeck-bench-"))
    locustfile = work / "hammer.py"
    locustfile.write_text(LOCUSTFILE)
    target = target_module.start()
    stack = None
    try:
        stack = Stack(work / "var", port=18000 + os.getpid() % 1000)
        lines = [f"nginx target {target.url}, FastHttpUser, {args.users} users, {args.seconds} s per run, "
                 f"{os.cpu_count()} cores", f"load worker {stack.isolation()}"]
        if only & {"1", "2"}:
            # Alternate the two, so that a shared machine's drift hits both alike; medians of the pairs.
            locust_runs, one_runs = [], []
            for _ in range(args.repeats):
                locust_runs.append(plain_locust(locustfile, target.url, args.users, args.seconds, work))
                one = stack.runscenario(locustfile, target.url, args.users, args.seconds, slots=1)
                one_runs.append(one["totals"]["rps"])
            locust_rps, one_rps = statistics.median(locust_runs), statistics.median(one_runs)
            pairs = ", ".join(f"{b / a:.3f}" for a, b in zip(locust_runs, one_runs))
            lines += ["", f"1. One slot vs plain locust --headless (one process), {args.repeats} alternating pairs",
                      f"   locust --headless          {locust_rps:>10,.0f} req/s  (median; all: "
                      f"{', '.join(f'{r:,.0f}' for r in locust_runs)})",
                      f"   Swarmdeck, 1 slot          {one_rps:>10,.0f} req/s  (median; all: "
                      f"{', '.join(f'{r:,.0f}' for r in one_runs)})",
                      f"   ratio                      {one_rps / locust_rps:>10.3f}   (target >= 0.97; pairs: {pairs})"]
            if "2" in only:
                two = stack.runscenario(locustfile, target.url, args.users, args.seconds, slots=2)
                two_rps = two["totals"]["rps"]
                lines += ["", "2. Two slots vs one",
                          f"   Swarmdeck, 1 slot          {one_rps:>10,.0f} req/s",
                          f"   Swarmdeck, 2 slots         {two_rps:>10,.0f} req/s",
                          f"   speed-up                   {two_rps / one_rps:>10.2f}x  (target >= 1.85x)"]
        if "5" in only:
            if not (only & {"1", "2"}):
                stack.runscenario(locustfile, target.url, 2, 2, slots=1)  # creates the scenario
            starts, stops = start_stop_latency(locustfile, target.url, repeats=5)
            lines += ["", "5. Start and stop latency, 2 slots, 5 runs",
                      f"   start (submit -> all slots running)  median {statistics.median(starts):.2f} s   "
                      f"all: {', '.join(f'{s:.2f}' for s in starts)}   (target <= 3 s)",
                      f"   stop (stop -> all users stopped)     median {statistics.median(stops):.2f} s   "
                      f"all: {', '.join(f'{s:.2f}' for s in stops)}   (target <= 2 s)"]
        if "6" in only:
            from workers import sandbox

            if sandbox.probe().isolated:
                boxed = [pool_ready_seconds(True, work) for _ in range(5)]
                plain = [pool_ready_seconds(False, work) for _ in range(5)]
                cost = statistics.median(boxed) - statistics.median(plain)
                lines += ["", "6. Pool start -> ready (locustfile imported), 5 each",
                          f"   in the sandbox (bubblewrap)          median {statistics.median(boxed):.3f} s   "
                          f"all: {', '.join(f'{s:.3f}' for s in boxed)}",
                          f"   plain child process                  median {statistics.median(plain):.3f} s   "
                          f"all: {', '.join(f'{s:.3f}' for s in plain)}",
                          f"   the sandbox's cost                   {cost:+.3f} s per slot (inside the start of 5)"]
            else:
                lines += ["", f"6. skipped: no sandbox on this machine ({sandbox.probe().detail})"]
        print("\n".join(lines))
    finally:
        if stack:
            stack.stop()
        target.stop()


if __name__ == "__main__":
    main()
