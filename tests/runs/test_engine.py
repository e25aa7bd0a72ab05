"""A run end to end: real Redis, database, collector and Celery workers in their own processes,
and a real nginx target that counts what it served."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from django.urls import reverse

from controlcenter.env import BASE_DIR
from runs import services, stream
from runs.models import Run, RunSlot
from runs.redis import client
from tests.conftest import store_scenario
from tests.runs.conftest import database_url, start_collector, wait_for
from workers import protocol

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MIXED = b'''\
from locust import FastHttpUser, task, constant


class Mixed(FastHttpUser):
    wait_time = constant(0.02)

    @task(3)
    def ok(self):
        self.client.get("/ok")

    @task(2)
    def slow(self):
        self.client.get("/delay/10ms")

    @task(1)
    def boom(self):
        self.client.get("/status/500")
'''

IMPORT_ERROR = b'''\
from locust import HttpUser, task
import module_that_does_not_exist


class U(HttpUser):
    @task
    def t(self):
        pass
'''


def _row(run, method, name):
    return next(r for r in run.totals if r["method"] == method and r["name"] == name)


def _start(project, user, content=MIXED, name="Mixed", **params):
    scenario = store_scenario(project, user, name=name, content=content)
    return services.start_run(scenario, user=user, params=params)


def test_it_runs_on_two_machines_and_reports_what_the_target_served(cluster, target, alice, project):
    before = target.counts()
    run = _start(project, alice, users=6, spawn_rate=100, duration=5, slots=2, host=target.url)
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason
    served = target.counts()

    def delta(uri, status):
        return served.get(("GET", uri, status), 0) - before.get(("GET", uri, status), 0)

    in_flight = run.params["users"]
    assert abs(_row(run, "GET", "/ok")["requests"] - delta("/ok", 200)) <= in_flight
    assert abs(_row(run, "GET", "/delay/10ms")["requests"] - delta("/delay/10ms", 200)) <= in_flight
    boom = _row(run, "GET", "/status/500")
    assert abs(boom["requests"] - delta("/status/500", 500)) <= in_flight
    assert boom["failures"] == boom["requests"] > 0
    assert run.total_failures == boom["failures"]
    assert 10.0 <= _row(run, "GET", "/delay/10ms")["p50"] <= 15.0  # 10 ms of echo_sleep, plus a busy machine
    slots = list(run.slots.all())
    assert {s.host for s in slots} == {"machine-a", "machine-b"}
    assert all(s.status == RunSlot.Status.FINISHED and s.requests > 0 for s in slots)
    assert sum(s.requests for s in slots) == run.total_requests
    assert run.ticks.count() >= 4
    statuses = [h["status"] for h in run.history]
    assert statuses[:1] == ["queued"] and statuses[-1] == "finished" and "running" in statuses

    # What the collector acked leaves the stream (the last delivered entry stays as its mark).
    redis = client()
    assert sum(s.snapshots for s in slots) >= 8  # that many entries went through the stream, and more
    wait_for(lambda: redis.xlen(protocol.REPORT_STREAM) <= 1, stream.TRIM_SECONDS + 5,
             f"the stream still holds {redis.xlen(protocol.REPORT_STREAM)} entries after the run")


def test_it_fails_a_run_whose_locustfile_cannot_import_and_runs_the_next(cluster, target, alice, project):
    broken = _start(project, alice, content=IMPORT_ERROR, name="Broken", users=1, duration=3, slots=1, host=target.url)
    broken = services.wait_until_done(broken, timeout=60)
    assert broken.status == Run.Status.FAILED
    assert "module_that_does_not_exist" in broken.reason
    good = _start(project, alice, users=2, spawn_rate=10, duration=2, slots=1, host=target.url)
    good = services.wait_until_done(good, timeout=60)
    assert good.status == Run.Status.FINISHED and good.total_requests > 0


NO_USERS = b"""\
from locust import HttpUser, task


class Gone(HttpUser):
    @task
    def t(self):
        pass


Gone.abstract = True  # the static analysis sees a user; Locust, at run time, none
"""

IMPORT_LOOP = b"""\
import time
from locust import HttpUser, task

while True:  # never finishes importing
    time.sleep(0.1)


class Never(HttpUser):
    @task
    def t(self):
        pass
"""

ON_START_RAISES = b"""\
from locust import HttpUser, task, constant


class Login(HttpUser):
    wait_time = constant(0.1)

    def on_start(self):
        raise ValueError("the login page moved")

    @task
    def t(self):
        self.client.get("/ok")
"""


@pytest.mark.parametrize("content, reason", [
    (NO_USERS, "defines no User class"),
    (IMPORT_LOOP, "did not finish importing within 10 s"),
    (ON_START_RAISES, "failed in on_start: ValueError: the login page moved"),
], ids=["no-users", "import-loop", "on-start-raises"])
def test_it_fails_a_broken_locustfile_in_bounded_time_and_runs_the_next(cluster, target, alice, project, content,
                                                                         reason):
    began = time.monotonic()
    broken = _start(project, alice, content=content, name="Broken", users=2, spawn_rate=10, duration=60, slots=2,
                    host=target.url)
    broken = services.wait_until_done(broken, timeout=60)
    assert broken.status == Run.Status.FAILED
    assert reason.lower() in broken.reason.lower(), broken.reason
    assert time.monotonic() - began < 40
    assert not any(s.status in (RunSlot.Status.RUNNING, RunSlot.Status.READY) for s in broken.slots.all())
    good = _start(project, alice, users=2, spawn_rate=10, duration=2, slots=2, host=target.url)
    good = services.wait_until_done(good, timeout=60)
    assert good.status == Run.Status.FINISHED and good.total_requests > 0, good.reason


def test_a_broken_abort_on_fail_criterion_stops_a_real_run(cluster, target, alice, project):
    from runs.models import Threshold

    scenario = store_scenario(project, alice, name="Guarded", content=MIXED)  # 1 request in 6 fails
    Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.FAILURE_RATIO, value=5, abort_on_fail=True,
                             grace_seconds=3)
    Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.P95, value=5000)
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 600,
                                                           "slots": 2, "host": target.url})
    run = services.wait_until_done(run, timeout=60)
    assert run.status == Run.Status.FINISHED and run.verdict == "fail"
    assert run.reason.startswith("Aborted: failure ratio"), run.reason
    assert 3 <= run.elapsed_seconds() < 30  # after the grace period, long before the 10 minutes
    aborted = [c for c in run.verdict_details if c.get("aborted")]
    assert len(aborted) == 1 and aborted[0]["metric"] == "failure_ratio" and not aborted[0]["passed"]
    assert any(c["metric"] == "p95" and c["passed"] for c in run.verdict_details)


def test_it_stops_a_run_from_the_ui_and_counts_every_final_snapshot(cluster, target, client, alice, project):
    before = target.total()
    run = _start(project, alice, users=4, spawn_rate=100, duration=600, slots=2, host=target.url)
    wait_for(lambda: Run.objects.get(pk=run.pk).total_requests > 50, 60, "the run never got going")
    client.force_login(alice)
    response = client.post(reverse("runs-stop", args=[run.pk]))
    assert response.status_code == 302
    run = services.wait_until_done(run, timeout=60)
    assert run.status == Run.Status.FINISHED
    assert all(s.got_final for s in run.slots.all())
    assert abs(run.total_requests - (target.total() - before)) <= 4
    assert any("stopped by alice" in h["note"] for h in run.history)


def test_it_keeps_totals_when_the_collector_is_killed_and_restarted(cluster, target, alice, project):
    before = target.total()
    run = _start(project, alice, users=4, spawn_rate=100, duration=8, slots=2, host=target.url)
    wait_for(lambda: Run.objects.get(pk=run.pk).total_requests > 0, 60, "the run never got going")
    cluster["collector"].kill(signal.SIGKILL)
    time.sleep(3)
    cluster["collector"] = start_collector()
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason
    assert abs(run.total_requests - (target.total() - before)) <= 4


def test_it_finishes_degraded_when_a_pool_is_killed(cluster, target, alice, project):
    run = _start(project, alice, users=4, spawn_rate=100, duration=8, slots=2, host=target.url)
    wait_for(lambda: Run.objects.get(pk=run.pk).total_requests > 0, 60, "the run never got going")
    victim = RunSlot.objects.get(run=run, index=1)
    assert victim.pid, "slot 1 never said which pool process it runs"
    requests_before_kill = wait_for(lambda: RunSlot.objects.get(pk=victim.pk).requests, 10, "slot 1 sent nothing")
    os.kill(victim.pid, signal.SIGKILL)  # the pool, a child of the slot
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED
    assert run.degraded and "Slot 1" in run.reason and "lost" in run.reason
    victim.refresh_from_db()
    assert victim.status == RunSlot.Status.LOST
    assert victim.requests >= requests_before_kill  # its earlier data is kept


def test_it_queues_a_run_larger_than_the_cluster_and_cancels_it(cluster, target, client, alice, project):
    run = _start(project, alice, users=2, duration=5, slots=3, host=target.url)
    time.sleep(2)
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'position <strong id="queue-position">1</strong>' in page
    client.post(reverse("runs-stop", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED


def test_it_runs_headless_from_the_command_line(cluster, target, alice, project, tmp_path):
    locustfile = tmp_path / "cli_mixed.py"
    locustfile.write_bytes(MIXED)
    report = tmp_path / "report.json"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url()}
    result = subprocess.run(
        [sys.executable, "manage.py", "runscenario", str(locustfile), "-u", "2", "-r", "10", "-t", "3s",
         "--host", target.url, "--slots", "1", "--project", "shop", "--user", "alice", "--json", str(report),
         "--csv", str(tmp_path / "out")],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr  # /status/500 failures
    assert "Aggregated" in result.stdout and "Response time percentiles" in result.stdout
    assert re.search(r"Watch it live: http://\S+/runs/\d+/", result.stdout)
    assert re.search(r"Exit 1: [\d,]+ failed requests\. Report: http://\S+/runs/\d+/", result.stdout)
    assert " INFO " not in result.stdout + result.stderr  # the command speaks for itself
    summary = json.loads(report.read_text())
    assert summary["status"] == "finished"
    assert summary["totals"]["requests"] > 0 and summary["totals"]["failures"] > 0
    assert {e["name"] for e in summary["endpoints"]} == {"/ok", "/delay/10ms", "/status/500"}
    assert summary["slots"][0]["state"] == "finished"
    assert all((tmp_path / f"out_{kind}.csv").exists() for kind in ("stats", "stats_history", "failures", "exceptions"))
    header = (tmp_path / "out_stats.csv").read_text().splitlines()[0]
    assert header.startswith("Type,Name,Request Count,Failure Count,Median Response Time")
    missing = subprocess.run([sys.executable, "manage.py", "runscenario", "999999", "--user", "alice"], cwd=BASE_DIR,
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no scenario 999999" in missing.stderr


PHASES = b'''\
import time
from locust import FastHttpUser, task, constant

FAST_UNTIL = []  # monotonic time the slow phase starts: 4 s after the pool's first request


class Phases(FastHttpUser):
    wait_time = constant(0.001)

    @task
    def hit(self):
        if not FAST_UNTIL:
            FAST_UNTIL.append(time.monotonic() + 4)
        self.client.get("/delay/1ms" if time.monotonic() < FAST_UNTIL[0] else "/delay/100ms")
'''

WINDOW_ABORT = re.compile(r"^Aborted: p95 of the last 2 s was ([\d.]+) ms > 50 ms "
                          r"\((\d\d):(\d\d):(\d\d)–(\d\d):(\d\d):(\d\d)\)$", re.MULTILINE)


def test_a_rolling_window_criterion_aborts_a_real_run_when_a_slow_phase_starts(cluster, target, alice, project):
    from runs.models import Threshold

    began = time.time()
    scenario = store_scenario(project, alice, name="Phases", content=PHASES)
    window = Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.P95, value=50, abort_on_fail=True,
                                      window_seconds=2, window=Threshold.Window.LAST)
    whole = Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.P95, value=50, abort_on_fail=True)
    clean = Threshold.objects.create(scenario=scenario, metric=Threshold.Metric.FAILURE_RATIO, value=5,
                                     window_seconds=2, window=Threshold.Window.ANY)
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 60,
                                                           "slots": 2, "host": target.url})
    run = services.wait_until_done(run, timeout=60)
    served = [(at, uri) for at, _, uri, _ in target.served_at() if at >= began]

    assert run.status == Run.Status.FINISHED and run.verdict == "fail", run.reason
    found = WINDOW_ABORT.search(run.reason)
    assert found, run.reason
    assert float(found.group(1)) >= 95  # the window's p95 is a /delay/100ms request
    start, end = (int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in (found.groups()[1:4], found.groups()[4:7]))
    assert (end - start) % 86400 == 2
    entries = {entry["id"]: entry for entry in run.verdict_details}
    assert entries[window.pk]["aborted"] and entries[window.pk]["window"]["seconds"] == 2
    assert not entries[whole.pk]["aborted"]
    assert entries[clean.pk]["passed"] and entries[clean.pk]["detail"].startswith("Worst 2 s window: ")

    # The run's own p95 through the window's last second: the whole-run criterion alone had not broken.
    window_end = entries[window.pk]["window"]["end_s"]
    through = run.ticks.filter(tick=window_end - 1).values_list("cumulative", flat=True).get()
    assert through[-1][1] == "Aggregated" and through[-1][13] <= 50, through[-1]

    # At nginx: the slow phase began about 4 s in; the abort came soon after, and the slow requests stopped.
    slow = [at for at, uri in served if uri == "/delay/100ms"]
    fast = [at for at, uri in served if uri == "/delay/1ms"]
    assert fast and slow and len(fast) > 10 * len(slow)
    aborted_at = run.stopping_at.timestamp()
    assert 3.5 <= slow[0] - fast[0] <= 5.5
    assert slow[0] < aborted_at < slow[0] + 5, (slow[0], aborted_at)
    assert max(slow) < aborted_at + 1.0, max(slow) - aborted_at
    assert abs(_row(run, "GET", "/delay/100ms")["requests"] - len(slow)) <= run.params["users"]


STEADY = """\
from locust import FastHttpUser, constant, task


class Steady(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def delay(self):
        self.client.get("{path}", name="/delay")
"""


def test_real_runs_compare_as_no_change_between_equals_and_worse_after_a_slowdown(
        cluster, target, alice, project, client):
    """A/A and A/B on the real stack: the compare page's verdicts on the figures a machine's noise barely moves.
    The slowdown is 10 ms -> 100 ms, which no busy machine hides (bench/aa_false_alarms.py measures a 20 % one, and
    the false-alarm rate of every figure, over 190 pairs)."""
    scenarios = {path: store_scenario(project, alice, name=f"Steady {path}", content=STEADY.format(path=path).encode())
                 for path in ("/delay/10ms", "/delay/100ms")}
    runs = []
    for path in ("/delay/10ms", "/delay/10ms", "/delay/100ms"):
        run = services.start_run(scenarios[path], user=alice, params={"users": 4, "spawn_rate": 100, "duration": 4,
                                                                      "slots": 1, "host": target.url})
        run = services.wait_until_done(run, timeout=90)
        assert run.status == Run.Status.FINISHED, run.reason
        assert run.total_requests > 100  # 4 users, about 50 (or 10) requests/s each, for 4 s
        runs.append(run)
    client.force_login(alice)
    response = client.get(reverse("runs-compare", args=[project.slug]), {"runs": ",".join(str(r.pk) for r in runs)})
    assert response.status_code == 200
    endpoint = next(e for e in response.context["endpoints"] if e["name"] == "/delay")
    same, slower = ({value["key"]: value for value in endpoint["cells"][index]["values"]} for index in (1, 2))
    for figure in ("p50", "mean_ms", "fail_pct"):
        assert same[figure]["verdict"] == "no significant change", (figure, same[figure]["title"])
    for figure in ("p50", "mean_ms"):
        assert slower[figure]["verdict"] == "worse", (figure, slower[figure]["title"])
