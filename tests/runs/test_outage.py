"""Redis down for 30 s in the middle of everything: a scheduled run (beat and the control worker)
and a `runscenario` run, each on its own load slot, with the collector. Every process rides the
outage out; starting a run meanwhile creates nothing; both runs finish with nginx's count in
their report; and beat, the control worker and the collector work again afterwards."""

import os
import signal
import subprocess
import sys
import time

import pytest

from automation.models import Schedule, ScheduleSkip
from automation.schedules import save_schedule
from controlcenter.env import BASE_DIR
from runs import health, services
from runs import redis as runs_redis
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import Process, database_url, start_collector, start_worker, wait_for
from tests.runs.test_faults import PrivateRedis

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 30


def _locustfile(path: str) -> bytes:
    return f'''\
from locust import FastHttpUser, constant, task


class Steady(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self):
        self.client.get("{path}")
'''.encode()


def _django_env(redis_url: str, **extra: str) -> dict:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture
def broker(settings):
    """A private Redis the test kills; this process's pages and run starts use it too."""
    server = PrivateRedis()
    settings.REDIS_URL = server.url
    health.forget()
    runs_redis.client.cache_clear()
    yield server
    server.stop()
    health.forget()
    runs_redis.client.cache_clear()


def _served(target, path: str, status: int = 200) -> int:
    return target.counts().get(("GET", path, status), 0)


def _row(run: Run, name: str) -> dict:
    return next(r for r in run.totals if r["name"] == name)


def _assert_accounted(run: Run, requests_served: int) -> None:
    """Exact up to the requests in flight at stop, or the report says what is missing."""
    row = _row(run, run.totals[0]["name"])
    if abs(row["requests"] - requests_served) > run.params["users"]:
        lost = [w for w in run.warnings if w["kind"] == "lost_data"]
        assert lost and lost[0]["message"].startswith("data truncated: "), (row, requests_served, run.warnings)
        assert row["requests"] < requests_served


def test_everything_rides_out_a_30_s_redis_outage(broker, target, alice, project, tmp_path):
    scheduled = store_scenario(project, alice, name="Scheduled", content=_locustfile("/ok"))
    headless = store_scenario(project, alice, name="Headless", content=_locustfile("/json"))
    before_ok, before_202 = _served(target, "/ok"), _served(target, "/json")
    # Both runs last past the outage; the dead-man switch (its own test) is set beyond it here.
    worker = start_worker("outage", concurrency=2, REDIS_URL=broker.url, SWARMDECK_CONTROL_TIMEOUT="90")
    collector = start_collector(REDIS_URL=broker.url)
    control = Process("control", [sys.executable, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "control",
                                  "-c", "1", "-n", "control@outage", "--loglevel", "INFO", "--without-mingle",
                                  "--without-gossip"], _django_env(broker.url))
    beat = Process("beat", [sys.executable, "-m", "celery", "-A", "controlcenter", "beat", "--loglevel", "INFO",
                            "--pidfile=", "-s", str(tmp_path / "celerybeat-schedule"), "--max-interval", "1"],
                   _django_env(broker.url))
    processes = [worker, collector, control, beat]
    cli = None
    schedule = None
    try:
        wait_for(lambda: services.collector_running(), 30, "the collector never started")
        schedule = save_schedule(Schedule(scenario=scheduled, name="every 2 s", cron="* * * * *", every_seconds=2,
                                          host=target.url, users=2, spawn_rate=20, duration=45, slots=1))
        first = wait_for(lambda: Run.objects.filter(scenario=scheduled).first(), 30, "beat never started the run")
        cli = subprocess.Popen(
            [sys.executable, "manage.py", "runscenario", str(headless.pk), "-u", "2", "-r", "20", "-t", "40s",
             "--slots", "1", "--host", target.url, "--user", "alice"],
            cwd=BASE_DIR, env=_django_env(broker.url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        second = wait_for(lambda: Run.objects.filter(scenario=headless).first(), 30, "runscenario started no run")
        for run in (first, second):
            wait_for(lambda run=run: Run.objects.get(pk=run.pk).total_requests > 0, 60, f"run {run.pk} never got going")

        broker.kill()
        down_at = time.monotonic()
        time.sleep(3)
        with pytest.raises(services.BrokerUnavailable):
            services.start_run(headless, user=alice, params={"users": 1, "duration": 5, "host": target.url})
        assert Run.objects.filter(scenario=headless).count() == 1  # nothing created half-way
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        broker.restart()  # empty: no persistence
        back_at = time.time()

        output, _ = cli.communicate(timeout=120)
        first, second = services.wait_until_done(first, timeout=90), Run.objects.get(pk=second.pk)
        for run in (first, second):
            assert run.status == Run.Status.FINISHED, (run.pk, run.reason)
        assert cli.returncode == 0, output
        assert f"Run #{second.pk}: finished" in output and "Traceback" not in output
        _assert_accounted(first, _served(target, "/ok") - before_ok)
        _assert_accounted(second, _served(target, "/json") - before_202)

        # Afterwards the chain works again: beat fires, the control worker records the overlap or
        # starts the next run, the collector runs it.
        wait_for(lambda: ScheduleSkip.objects.filter(schedule=schedule, at__gte=_aware(back_at)).exists()
                 or Run.objects.filter(scenario=scheduled).count() > 1, 60,
                 "beat and the control worker did nothing after the outage")
        assert all(process.popen.poll() is None for process in processes), [p.name for p in processes
                                                                             if p.popen.poll() is not None]
        for process in (collector, control, worker):
            log = process.output()
            assert "Traceback" not in log, (process.name, log[-3000:])
        assert collector.output().count("retrying with backoff") == 1
        assert control.output().count("Cannot connect to") == 1  # one line per outage, not per retry
        assert worker.output().count("Cannot connect to") == 1
        assert worker.output().count("Heartbeat of") == 2  # failed, back
        assert "Message Error" not in beat.output()  # no traceback per missed fire
        assert beat.output().count("Beat cannot reach the broker") == 1
        assert beat.output().count("Beat reaches the broker again") == 1
    except AssertionError:
        for process in processes:
            print(f"--- {process.name} ---\n{process.output()[-3000:]}")
        raise
    finally:
        if schedule is not None:
            schedule.enabled = False
            save_schedule(schedule)
        if cli is not None and cli.poll() is None:
            cli.kill()
        beat.kill(signal.SIGTERM)
        for active in Run.objects.active():
            services.request_stop(active)
        for process in (control, worker, collector):
            process.kill(signal.SIGTERM)


def _aware(timestamp: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, tz=UTC)
