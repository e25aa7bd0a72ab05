"""Live dashboard benchmarks, measured in Chromium, each next to its reference in one invocation.

  A. Freshness: a real run (2 slots against the nginx target) watched on its page. For every
     delta the page receives: receive time - the time its newest snapshot was made by its pool
     (go time + the pool's elapsed seconds). Target p95 <= 1.5 s. Reference, same machine, same
     target, same browser: Locust's own web UI (`locust` with --autostart), whose page polls
     /stats/requests; the interval between its stats arrivals bounds how old its numbers are.
  B. A running run's page with 100 endpoints and 1 hour of history (3,600 ticks): load time
     (navigation start -> first render of the embedded state, charts included) and the
     main-thread time of each update (one delta per second with 100 endpoint rows and one
     tick, rendered). Targets < 1 s and < 50 ms. Reference: the same page for a run with no
     data yet (the fixed cost of the page).
  C. The same with 1,000 endpoints (the cap raised, SWARMDECK_MAX_ENDPOINTS), on the Statistics
     tab (the table in view) and on the Charts tab. The deltas are the collector's change-only
     pushes (runs/changes.py) in their worst case: every endpoint got requests that second, so
     every row (and `current` for each) travels. Update = reading and merging the message plus
     rendering it, measured by the page; next to it the main thread's busy time per second in
     Chrome's trace (every task: the message, the render, style, layout and paint). Target
     <= 50 ms. Also the size of one push: every row changed, 2 of 1,000 changed, and the old
     push that re-sent every row.

Needs Debian's chromium and Playwright (pip install playwright; no browser download):

    .venv/bin/python bench/live_dashboard.py [--seconds 30] [--python /tmp/pw/bin/python]

The browser is driven by a small Playwright script run with `--python` (Playwright is not a
project requirement); Swarmdeck runs as `make run` does, in a temporary VAR_DIR.
"""

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import Stack  # noqa: E402
from tests import target as target_module  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

LOCUSTFILE = """\
from locust import FastHttpUser, task, constant


class Shopper(FastHttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/ok")

    @task(1)
    def slow(self):
        self.client.get("/delay/10ms")
"""

BROWSER = r"""
import json, sys, time
from playwright.sync_api import sync_playwright


def busy_per_second(trace):
    # ms of main-thread tasks of the page's renderer in each second of the trace (deltas come once a second)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    main = {(e["pid"], e["tid"]) for e in events
            if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"}
    tasks = [e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in main
             and e.get("name") in ("ThreadControllerImpl::RunTask", "RunTask") and e.get("dur")]
    if not tasks:
        return []
    by_thread = {}
    for e in tasks:
        by_thread.setdefault((e["pid"], e["tid"]), []).append(e)
    tasks = max(by_thread.values(), key=lambda group: sum(e["dur"] for e in group))  # the page's, not about:blank's
    start = min(e["ts"] for e in tasks)
    seconds = {}
    for e in tasks:
        index = int((e["ts"] - start) // 1_000_000)
        seconds[index] = seconds.get(index, 0) + e["dur"] / 1000
    return [round(seconds.get(i, 0.0), 2) for i in range(max(seconds) + 1)]


job = json.loads(sys.argv[1])
out = {}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=job["args"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    if job.get("login"):
        page.goto(job["base"] + "/accounts/login/")
        page.fill("input[name=username]", job["login"][0])
        page.fill("input[name=password]", job["login"][1])
        page.click("button[type=submit]")
        page.wait_for_load_state()
    if job["kind"] == "swarmdeck-fresh":
        page.goto(job["url"])
        time.sleep(job["seconds"])
        out["freshness"] = page.evaluate("window.swarmdeckLive.freshness")
    elif job["kind"] == "locust-ui":
        arrivals = []
        page.on("response", lambda r: arrivals.append(time.time()) if "stats/requests" in r.url else None)
        page.goto(job["url"])
        deadline = time.time() + job["seconds"]
        while time.time() < deadline:
            page.wait_for_timeout(200)
        out["arrivals"] = arrivals
    elif job["kind"] == "page-load":
        loads = []
        for _ in range(job["repeats"]):
            page.goto("about:blank")
            page.goto(job["url"] + "#" + job.get("tab", "charts"))
            page.wait_for_function("performance.getEntriesByName('swarmdeck-first-render').length > 0")
            loads.append(page.evaluate("performance.getEntriesByName('swarmdeck-first-render')[0].startTime"))
        out["loads"] = loads
        page.evaluate('window.__long = []; new PerformanceObserver((list) => list.getEntries().forEach('
                      '(e) => window.__long.push(e.duration))).observe({entryTypes: ["longtask"]});')
        browser.start_tracing(page=page, categories=["toplevel", "devtools.timeline"])
        print("ready", flush=True)
        sys.stdin.readline()          # the bench publishes deltas now, then says when it is done
        trace = json.loads(browser.stop_tracing())
        out["timings"] = page.evaluate("window.swarmdeckLive.timings")
        out["applied"] = page.evaluate("window.swarmdeckLive.applied")
        out["long_tasks"] = page.evaluate("window.__long")
        out["ticks"] = page.evaluate("window.swarmdeckLive.state.series.tick.length")
        out["rows"] = page.evaluate("document.querySelectorAll('#stats-body tr').length")
        out["busy"] = busy_per_second(trace)
    browser.close()
print(json.dumps(out), flush=True)
"""


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_browser(python: str, job: dict, interactive=None) -> dict:
    job = {**job, "args": CHROMIUM_ARGS}
    proc = subprocess.Popen([python, "-c", BROWSER, json.dumps(job)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    if interactive:
        line = proc.stdout.readline()
        assert line.strip() == "ready", line
        interactive()
        proc.stdin.write("done\n")
        proc.stdin.flush()
    output, _ = proc.communicate(timeout=600)
    return json.loads(output.strip().splitlines()[-1])


def admin_password(stack: Stack) -> str:
    text = (stack.var.parent / "launcher.log").read_text()
    return re.search(r"log in as\s+admin\s+with password\s+(\S+)", text).group(1)


def freshness(stack: Stack, python: str, base: str, password: str, target_url: str, seconds: int, work: Path):
    from runs import services
    from runs.models import Run
    from scenarios.models import Scenario

    locustfile = work / "fresh.py"
    locustfile.write_text(LOCUSTFILE)
    stack.runscenario(locustfile, target_url, 2, 2, slots=1)  # creates the scenario
    scenario = Scenario.objects.get(name="fresh", project__slug="bench")
    run = services.start_run(scenario, params={"users": 10, "spawn_rate": 100, "duration": seconds + 30, "slots": 2,
                                               "host": target_url})
    while Run.objects.get(pk=run.pk).status != Run.Status.RUNNING:
        time.sleep(0.1)
    result = run_browser(python, {"kind": "swarmdeck-fresh", "base": base, "login": ["admin", password],
                                  "url": f"{base}/runs/{run.pk}/", "seconds": seconds})
    services.request_stop(Run.objects.get(pk=run.pk))
    services.wait_until_done(run, timeout=60)
    ages = [f["received_at"] - f["produced_at"] for f in result["freshness"]]
    arrivals = [f["received_at"] for f in result["freshness"]]
    return ages, [b - a for a, b in zip(arrivals, arrivals[1:])]


def locust_ui(python: str, target_url: str, seconds: int, work: Path):
    port = 18900 + os.getpid() % 90
    locustfile = work / "fresh.py"
    proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", str(locustfile), "--host", target_url,
                             "--autostart", "-u", "10", "-r", "100", "--web-host", "127.0.0.1", "--web-port", str(port),
                             "--loglevel", "WARNING"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)
        result = run_browser(python, {"kind": "locust-ui", "url": f"http://127.0.0.1:{port}/", "seconds": seconds})
    finally:
        proc.terminate()
        proc.wait(30)
    arrivals = result["arrivals"]
    return [b - a for a, b in zip(arrivals, arrivals[1:])]


def synthetic_run(endpoints: int, seconds: int, status: str):
    """A run in the given state with `endpoints` rows of totals and `seconds` ticks of history."""
    from django.utils import timezone

    from runs.models import Run, RunSlot, RunTick
    from scenarios.models import Scenario

    scenario = Scenario.objects.get(name="fresh", project__slug="bench")
    rng = random.Random(7)
    names = [f"/api/items/{i:03d}" for i in range(endpoints)]

    def row(method, name, requests):
        p50 = rng.uniform(2, 50)
        return {"method": method, "name": name, "requests": requests, "failures": requests // 50,
                "min_ms": p50 / 4, "max_ms": p50 * 9, "mean_ms": p50 * 1.2, "p50": p50, "p66": p50 * 1.1,
                "p75": p50 * 1.2, "p80": p50 * 1.3, "p90": p50 * 1.6, "p95": p50 * 2, "p98": p50 * 2.5,
                "p99": p50 * 3, "p99.9": p50 * 5, "p99.99": p50 * 7, "p100": p50 * 9, "avg_size": 512.0,
                "rps": requests / max(seconds, 1), "failures_per_s": requests / 50 / max(seconds, 1)}

    totals = [row("GET", n, 3600 * 40) for n in names] if endpoints else []
    if totals:
        totals.append(row("", "Aggregated", 3600 * 40 * endpoints))
    run = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version,
                             status=status, params={"users": 500, "spawn_rate": 50, "duration": 7200, "host": "x",
                                                    "slots": 2},
                             started_at=timezone.now() - timedelta(seconds=seconds) if seconds else None,
                             totals=totals, total_requests=3600 * 40 * endpoints, current_users=500,
                             history=[{"status": "queued", "at": timezone.now().isoformat(), "note": ""}])
    RunSlot.objects.bulk_create(RunSlot(run=run, index=i, status="running", host="bench", users=250, cpu=40,
                                        requests=10) for i in range(2))
    current = {f"GET {n}": {"rps": 40.0, "fails_per_s": 0.8, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0}
               for n in names}
    RunTick.objects.bulk_create(
        [RunTick(run=run, tick=t, users=500, rps=40.0 * endpoints, fails_per_s=0.8 * endpoints, p50_ms=5.0,
                 p95_ms=9.0 + rng.random(), p99_ms=12.0 + rng.random(), endpoints=current if t == seconds - 1 else {})
         for t in range(seconds)], batch_size=1000)
    return run, totals, current


def page_load(stack: Stack, python: str, base: str, password: str, repeats: int, ticks_to_push: int):

    # The synthetic runs have no real slots: pause the collector, or it would (rightly) mark
    # their slots lost and fail them while the page is being measured.
    collector = json.loads((stack.var / "launcher.json").read_text())["children"]["collector"]
    os.kill(collector, signal.SIGSTOP)
    try:
        return _page_load(python, base, password, repeats, ticks_to_push)
    finally:
        os.kill(collector, signal.SIGCONT)


CASES = (("empty", 0, 0, "charts"), ("100 endpoints, 1 h", 100, 3600, "charts"),
         ("empty, Statistics tab", 0, 0, "stats"), ("1,000 endpoints, 1 h, Statistics tab", 1000, 3600, "stats"),
         ("1,000 endpoints, 1 h, Charts tab", 1000, 3600, "charts"))


def next_second(totals: list[dict], current: dict, rng: random.Random) -> None:
    """Every endpoint gets requests this second (the worst case for a change-only push): new rows."""
    aggregate = totals[-1] if totals else None
    for i, row in enumerate(totals[:-1]):
        p50 = row["p50"] * rng.uniform(0.98, 1.02)
        totals[i] = {**row, "requests": row["requests"] + 40, "failures": row["failures"] + 1, "p50": p50,
                     "p90": p50 * 1.6, "p95": p50 * 2, "p99": p50 * 3, "mean_ms": p50 * 1.2}
        current[f"GET {row['name']}"] = {"rps": 40.0, "fails_per_s": 1.0, "p50_ms": p50, "p95_ms": p50 * 2,
                                         "p99_ms": p50 * 3}
    if aggregate:
        totals[-1] = {**aggregate, "requests": aggregate["requests"] + 40 * (len(totals) - 1)}


def _page_load(python, base, password, repeats, ticks_to_push):
    from runs import live
    from runs.changes import Pushed
    from runs.models import Run

    results = {}
    for label, endpoints, seconds, tab in CASES:
        run, totals, current = synthetic_run(endpoints, seconds, Run.Status.RUNNING)

        def push(run=run, totals=totals, current=current, seconds=seconds):
            rng, pushed = random.Random(11), Pushed()
            pushed.delta(totals, [], live.slot_rows(run.pk))   # what the page's state already holds
            time.sleep(2)
            for i in range(ticks_to_push):
                next_second(totals, current, rng)
                meta = live.meta(Run.objects.get(pk=run.pk))
                live.publish(run.pk, {"type": "delta", "meta": meta,
                                      **pushed.delta(totals, [], live.slot_rows(run.pk)), "current": current,
                                      "series": {"tick": [seconds + i], "users": [500], "rps": [4000.0],
                                                 "fails_per_s": [80.0], "p50_ms": [5.0], "p95_ms": [9.5],
                                                 "p99_ms": [12.5]},
                                      "produced_at": time.time()})
                time.sleep(1)
            time.sleep(1)

        result = run_browser(python, {"kind": "page-load", "base": base, "login": ["admin", password],
                                      "url": f"{base}/runs/{run.pk}/", "repeats": repeats, "tab": tab},
                             interactive=push)
        Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
        results[label] = result
    return results


def push_sizes(endpoints: int = 1000) -> dict:
    """Bytes of one push's JSON at `endpoints` endpoints: every row changed, 2 changed, and those 2 as the push
    was before (every row re-sent). `current` has the endpoints that got requests that second."""
    from runs.changes import Pushed

    rng = random.Random(5)
    totals = [{"method": "GET", "name": f"/api/items/{i:04d}", "requests": 1000, "failures": 10, "min_ms": 1.0,
               "max_ms": 90.0, "mean_ms": 12.0, **{k: rng.uniform(2, 50) for k in (
                   "p50", "p66", "p75", "p80", "p90", "p95", "p98", "p99", "p99.9", "p99.99", "p100")},
               "avg_size": 512.0, "rps": 40.0, "failures_per_s": 0.4} for i in range(endpoints)]
    totals.append({**totals[0], "method": "", "name": "Aggregated", "requests": 1000 * endpoints})
    current = {f"GET {row['name']}": {"rps": 40.0, "fails_per_s": 0.4, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0}
               for row in totals[:-1]}
    pushed = Pushed()
    pushed.delta(totals, [], [])
    every = [{**row, "requests": row["requests"] + 40} for row in totals]
    all_changed = pushed.delta(every, [], [])
    two = [{**row, "requests": row["requests"] + (40 if i in (3, 500) else 0)} for i, row in enumerate(every)]
    two_changed = pushed.delta(two, [], [])
    size = lambda message, now: len(json.dumps({**message, "current": now}))  # noqa: E731
    two_current = {k: v for k, v in current.items() if k in (f"GET {totals[3]['name']}", f"GET {totals[500]['name']}")}
    return {"every row changed": size(all_changed, current), "2 rows changed": size(two_changed, two_current),
            "2 rows changed, as before (every row re-sent)": size({"totals": two, "errors": [], "slots": []},
                                                                  two_current)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--python", default=os.environ.get("PLAYWRIGHT_PYTHON", "/tmp/pw/bin/python"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="swarmdeck-bench-live-"))
    os.environ.setdefault("SWARMDECK_MAX_ENDPOINTS", "1000")   # case C's run has 1,000 names
    os.environ["SWARMDECK_ALLOW_LOOPBACK_TARGETS"] = "1"  # the target is nginx on loopback, like the tests'
    target = target_module.start()
    port = 18100 + os.getpid() % 800
    stack = None
    lines = []
    try:
        stack = Stack(work / "var", port=port)
        base = f"http://127.0.0.1:{port}"
        password = admin_password(stack)
        ages, intervals = freshness(stack, args.python, base, password, target.url, args.seconds, work)
        locust_intervals = locust_ui(args.python, target.url, args.seconds, work)
        lines += [f"A. Freshness over {args.seconds} s of a 2-slot run, 10 users, nginx target, Chromium",
                  f"   Swarmdeck: pool snapshot -> browser   p50 {statistics.median(ages):.3f} s   "
                  f"p95 {percentile(ages, 0.95):.3f} s   max {max(ages):.3f} s   ({len(ages)} deltas)   "
                  "(target p95 <= 1.5 s)",
                  f"   Swarmdeck: between updates            p50 {statistics.median(intervals):.2f} s   "
                  f"p95 {percentile(intervals, 0.95):.2f} s",
                  f"   Locust web UI: between stats arrivals  p50 {statistics.median(locust_intervals):.2f} s   "
                  f"p95 {percentile(locust_intervals, 0.95):.2f} s   ({len(locust_intervals) + 1} polls; its numbers "
                  "are up to one interval old when they arrive, more with workers reporting every 3 s)"]
        loads = page_load(stack, args.python, base, password, repeats=5, ticks_to_push=20)
        lines += ["", "B. Run page in Chromium (navigation start -> first render incl. charts; "
                      "update = render of one delta)"]
        for label, result in loads.items():
            # Left out, as before: the full state on connect and the first delta (warm-up).
            renders, applies = result["timings"][2:], result["applied"][2:]
            updates = [a + r for a, r in zip(applies, renders)]
            busy = sorted(result["busy"])[-len(updates):] if result["busy"] else []  # as many seconds, the busiest
            lines.append(f"   {label:<38} load median {statistics.median(result['loads']):6.0f} ms "
                         f"(all: {', '.join(f'{v:.0f}' for v in result['loads'])})")
            lines.append(f"   {'':<38} update (read + merge + render) median {statistics.median(updates):5.1f} ms  "
                         f"p95 {percentile(updates, 0.95):5.1f} ms  max {max(updates):5.1f} ms  "
                         f"(render alone: median {statistics.median(renders):5.1f} ms, max {max(renders):5.1f} ms)  "
                         f"({len(updates)} updates, {result['ticks']} ticks, {result['rows']} table rows)")
            if busy:
                lines.append(f"   {'':<38} main thread busy, busiest {len(busy)} s (Chrome trace, all tasks): median "
                             f"{statistics.median(busy):5.1f} ms  p95 {percentile(busy, 0.95):5.1f} ms  "
                             f"max {max(busy):5.1f} ms;  tasks over 50 ms while updating: {len(result['long_tasks'])}")
        lines.append("   targets: load < 1000 ms, update < 50 ms, with 100 endpoints and 1 hour of history;"
                     " update <= 50 ms with 1,000 endpoints")
        sizes = push_sizes()
        lines += ["", "C. One push at 1,000 endpoints (JSON bytes, `current` included): " + ",  ".join(
            f"{label} {size / 1024:.1f} KiB" for label, size in sizes.items())]
        print("\n".join(lines))
    finally:
        if stack:
            stack.stop()
        target.stop()


if __name__ == "__main__":
    main()
