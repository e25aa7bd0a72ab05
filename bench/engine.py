"""Run-engine benchmarks, each side by side with its reference in the same invocation.

  1. One slot vs plain `locust --headless` (one process): same FastHttpUser locustfile, same
     nginx target. Target: Swarmdeck RPS / Locust RPS >= 0.97.
  2. Two slots vs one slot. Target: >= 1.85x.
  5. Start (submit -> all slots running) and stop (stop pressed -> every user stopped), median
     of 5. Targets: <= 3 s and <= 2 s. Slots run sandboxed (bubblewrap) when the worker can.
  6. The sandbox's share of the start: a pool from its start to "ready" (locustfile imported),
     in the sandbox and as a plain child process, median of 5 each.
  7. A locustfile that logs 100 lines per second (the Logs tab's cost): one slot vs plain
     `locust --headless` with the same file, as in 1. Target: >= 0.97.
  8. requirements.txt: submit -> running for a bundle whose requirements the worker installs
     (cold: first run, environment built; warm: the next run, cached), next to the same bundle
     without requirements. Offline: a wheel built here, served from a find-links directory.

Swarmdeck runs as `make run` does (embedded Redis, SQLite, collector, one load worker with one
process per core) in a temporary VAR_DIR; runs go through `manage.py runscenario` and the ORM.

    .venv/bin/python bench/engine.py [--seconds 20] [--users 50] [--repeats 3] [--only 1,2,5,6,7,8] [--pin]

--pin gives each load generator of benchmarks 1 and 7 (plain Locust, and the load worker with its slot and
pool) the last CPU to itself, nginx and the control plane the others: on a two-core VM where the target and
the generator otherwise fight for the same CPUs, single pairs then vary far less.
"""

import argparse
import contextlib
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402
from tests import target as target_module  # noqa: E402  (the nginx target the tests use too)

LOCUSTFILE = """\
from locust import FastHttpUser, task


class Hammer(FastHttpUser):
    @task
    def ok(self):
        self.client.get("/ok")
"""


CHATTY = LOCUSTFILE + """

import logging

import gevent
from locust import events


@events.init.add_listener
def chatter(environment, **kwargs):
    def loop():
        log = logging.getLogger("chatty")
        while True:
            log.info("a line of the locustfile's own logging")
            gevent.sleep(0.01)  # 100 lines per second

    gevent.spawn(loop)
"""

WITH_REQUIREMENTS = """\
import {module}
from locust import FastHttpUser, task


class Hammer(FastHttpUser):
    @task
    def ok(self):
        self.client.get("/ok")
"""


def plain_locust(locustfile: Path, host: str, users: int, seconds: int, workdir: Path,
                 cpus: list[int] | None = None) -> tuple[float, int]:
    """Plain Locust's (RPS, requests), on `cpus` when given (the CPU the load worker is pinned to)."""
    prefix = workdir / "locust"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
         "-t", f"{seconds}s", "--host", host, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
        cwd=workdir, check=False, capture_output=True, timeout=seconds + 60,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    with open(f"{prefix}_stats.csv") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                # Locust divides by its own run time; so does Swarmdeck (the time users were started).
                return float(row["Requests/s"]), int(row["Request Count"])
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


@dataclass
class Pairs:
    """Benchmark 1's alternating runs: RPS of each, and with --pin the requests per CPU-second of the pinned CPU
    (everything that ran on it: Locust, or the slot and its pool)."""

    locust: list[float] = field(default_factory=list)
    one: list[float] = field(default_factory=list)
    locust_per_cpu: list[float] = field(default_factory=list)
    one_per_cpu: list[float] = field(default_factory=list)
    stolen: float = 0.0


def ratio_pairs(stack, locustfile: Path, host: str, users: int, seconds: int, repeats: int, work: Path,
                cpus: list[int] | None = None) -> Pairs:
    """Plain Locust and one slot alternately (a shared machine's drift hits both alike); and the CPU seconds
    the hypervisor stole during the pairs."""
    pairs = Pairs()
    before = machine.stolen_seconds()
    for _ in range(repeats):
        busy = machine.busy_seconds(cpus[0]) if cpus else 0.0
        rps, requests = plain_locust(locustfile, host, users, seconds, work, cpus)
        pairs.locust.append(rps)
        if cpus:
            pairs.locust_per_cpu.append(requests / (machine.busy_seconds(cpus[0]) - busy))
            busy = machine.busy_seconds(cpus[0])
        totals = stack.runscenario(locustfile, host, users, seconds, slots=1)["totals"]
        pairs.one.append(totals["rps"])
        if cpus:
            pairs.one_per_cpu.append(totals["requests"] / (machine.busy_seconds(cpus[0]) - busy))
    pairs.stolen = machine.stolen_seconds() - before
    return pairs


@contextlib.contextmanager
def load_cpu(stack, target, pin: bool) -> Iterator[tuple[list[int] | None, str]]:
    """With --pin: the load worker (and plain Locust) alone on one CPU for the block, nginx and the rest on the
    others, so that neither load generator shares its CPU with the target. Yields (that CPU, in words)."""
    split = machine.split_cpus() if pin else None
    if split is None:
        yield None, "not pinned" if not pin else "not pinned (one CPU)"
        return
    with machine.load_worker_pinned(stack.process.pid, target.pid) as described:
        yield split[0], described + "; plain Locust on the same CPU"


def ratio_lines(title: str, pairs: Pairs, pinned: str) -> list[str]:
    lines = ["", title, *ratio_figures("req/s", pairs.locust, pairs.one)]
    if pairs.one_per_cpu:
        lines += ["   per CPU-second of the pinned CPU (the generator's own efficiency, whatever CPU it was given):",
                  *ratio_figures("req/CPU-s", pairs.locust_per_cpu, pairs.one_per_cpu)]
    lines.append(f"   {pinned}; CPU stolen by the hypervisor meanwhile: {pairs.stolen:.1f} s")
    return lines


def ratio_figures(unit: str, locust_runs: list[float], one_runs: list[float]) -> list[str]:
    locust_rps, one_rps = statistics.median(locust_runs), statistics.median(one_runs)
    pairs = ", ".join(f"{b / a:.3f}" for a, b in zip(locust_runs, one_runs))
    return [f"   locust --headless          {locust_rps:>10,.0f} {unit}  (median; all: "
            f"{', '.join(f'{r:,.0f}' for r in locust_runs)})",
            f"   Swarmdeck, 1 slot          {one_rps:>10,.0f} {unit}  (median; all: "
            f"{', '.join(f'{r:,.0f}' for r in one_runs)})",
            f"   ratio                      {one_rps / locust_rps:>10.3f}   (target >= 0.97; pairs: {pairs})",
            f"   median of the pairs' ratios {statistics.median(b / a for a, b in zip(locust_runs, one_runs)):>9.3f}"
            "   (each pair ran back to back: the machine's drift between pairs cancels)"]


def start_seconds(stack, bundle: Path, host: str) -> tuple[float, str]:
    """Submit -> running of a 1-second, 1-slot run of `bundle`, from the run's history; and its slot's note."""
    from datetime import datetime

    stack.runscenario(bundle, host, 1, 1, slots=1)
    from runs.models import Run

    run = Run.objects.order_by("-pk").first()
    at = {h["status"]: datetime.fromisoformat(h["at"]) for h in run.history}
    return (at["running"] - at["queued"]).total_seconds(), run.slots.get().note


def step_seconds(note: str) -> float:
    """The requirements step's seconds, from the slot's last note ("Environment built in 1.32 s.")."""
    import re

    found = re.search(r"([0-9]+\.[0-9]+) s\)?\.$", note)
    if not found:
        raise RuntimeError(f"no duration in the slot's note: {note!r}")
    return float(found.group(1))


def bundle_zip(path: Path, files: dict[str, str]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--only", default="1,2,5,6,7,8")
    parser.add_argument("--repeats", type=int, default=3, help="alternating pairs in benchmark 1")
    parser.add_argument("--pin", action="store_true",
                        help="benchmarks 1 and 7: each load generator alone on the last CPU, nginx and the rest on "
                             "the others")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="swarmdeck-bench-"))
    locustfile = work / "hammer.py"
    locustfile.write_text(LOCUSTFILE)
    target = target_module.start()
    if "8" in only:  # the worker's package source for benchmark 8: a wheel built here, nothing else
        from tests.workers.test_venvs import make_wheel

        (work / "wheels").mkdir()
        make_wheel(work / "wheels", "swarmdeck_tinypkg")
        # No pip download cache: "cold" is a worker that never fetched these packages.
        os.environ.update(PIP_FIND_LINKS=str(work / "wheels"), SWARMDECK_VENV_DIR=str(work / "venvs"),
                          PIP_NO_CACHE_DIR="1")
    os.environ["SWARMDECK_ALLOW_LOOPBACK_TARGETS"] = "1"  # the target is nginx on loopback, like the tests'
    stack = None
    try:
        stack = Stack(work / "var", port=18000 + os.getpid() % 1000)
        lines = [f"nginx target {target.url}, FastHttpUser, {args.users} users, {args.seconds} s per run, "
                 f"{os.cpu_count()} cores", f"load worker {stack.isolation()}"]
        if only & {"1", "2"}:
            with load_cpu(stack, target, args.pin) as (cpus, pinned):
                pairs = ratio_pairs(stack, locustfile, target.url, args.users, args.seconds, args.repeats, work,
                                    cpus)
            one_rps = statistics.median(pairs.one)
            lines += ratio_lines(f"1. One slot vs plain locust --headless (one process), {args.repeats} alternating "
                                 "pairs", pairs, pinned)
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
        if "7" in only:
            chatty = work / "chatty.py"
            chatty.write_text(CHATTY)
            with load_cpu(stack, target, args.pin) as (cpus, pinned):
                pairs = ratio_pairs(stack, chatty, target.url, args.users, args.seconds, args.repeats, work, cpus)
            lines += ratio_lines(f"7. Logging 100 lines/s: one slot vs plain locust --headless, {args.repeats} "
                                 "alternating pairs", pairs, pinned)
            from runlogs.models import LogLine
            from runs.models import Run

            last = Run.objects.order_by("-pk").first()
            kept = LogLine.objects.filter(run=last, logger="chatty").count()
            lines.append(f"   the last Swarmdeck run kept {kept:,} of its locustfile's log lines "
                         f"({kept / args.seconds:,.0f} per second of its {args.seconds} s)")
        if "8" in only:
            plain_bundle = bundle_zip(work / "plain.zip", {"locustfile.py": LOCUSTFILE})
            without, _ = start_seconds(stack, plain_bundle, target.url)
            lines += ["", "8. requirements.txt: submit -> running, 1 slot (the environment's build or reuse inside)",
                      f"   without requirements.txt                  {without:.2f} s"]
            cases = [("swarmdeck_tinypkg==1.0", "swarmdeck_tinypkg", "one small wheel, local find-links"),
                     ("pyquery==2.0.1", "pyquery", "pyquery + lxml + cssselect, the worker's index")]
            for requirement, module, what in cases:
                bundle = bundle_zip(work / f"{module}.zip", {"locustfile.py": WITH_REQUIREMENTS.format(module=module),
                                                            "requirements.txt": requirement + "\n"})
                try:
                    cold, cold_note = start_seconds(stack, bundle, target.url)
                except RuntimeError as error:
                    lines.append(f"   {requirement}: could not run ({str(error).strip().splitlines()[-1]})")
                    continue
                warm, warm_note = start_seconds(stack, bundle, target.url)
                built, reused = step_seconds(cold_note), step_seconds(warm_note)
                lines += [f"   {requirement} ({what})",
                          f"     cold (environment built)                {cold:.2f} s   ({cold_note})",
                          f"     warm (environment reused)               {warm:.2f} s   ({warm_note})",
                          f"     submit -> running, cold / warm          {cold / warm:.1f}x   "
                          f"(the pool's own boot, {without:.2f} s above, is in both)",
                          f"     the requirements step, cold / warm      {built / max(reused, 0.005):.0f}x   "
                          "(target: the reused environment >= 5x faster)"]
        print("\n".join(lines))
    finally:
        if stack:
            stack.stop()
        target.stop()


if __name__ == "__main__":
    main()
