"""The whole chain in real processes: Celery beat fires a schedule every 2 s, the control worker
starts the run (trigger: schedule) or records a skip while it is active, a load worker executes it
against a real nginx, the collector finishes it, and the control worker delivers the signed webhook."""

import hashlib
import hmac
import json
import os
import signal
import sys

import pytest

from automation import schedules
from automation.models import Event, Schedule, ScheduleSkip, Webhook
from runs import services
from runs.models import Run
from runs.redis import client
from tests.conftest import store_scenario
from tests.runs.conftest import Process, database_url, start_collector, start_worker, wait_for
from workers import protocol

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PING = b'''\
from locust import FastHttpUser, constant, task


class Ping(FastHttpUser):
    wait_time = constant(0.1)

    @task
    def ping(self):
        self.client.get("/ok")
'''


def _django_env(**extra) -> dict:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1", **extra}


def start_beat(tmp_path) -> Process:
    return Process("beat", [sys.executable, "-m", "celery", "-A", "controlcenter", "beat", "--loglevel", "INFO",
                            "--pidfile=", "-s", str(tmp_path / "celerybeat-schedule"), "--max-interval", "1"],
                   _django_env())


def start_control() -> Process:
    return Process("control", [sys.executable, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "control",
                               "-c", "1", "-n", "control@e2e", "--loglevel", "INFO", "--without-mingle",
                               "--without-gossip"], _django_env(SWARMDECK_BASE_URL="http://swarmdeck.test",
                                                             SWARMDECK_WEBHOOK_ALLOW_PRIVATE="1"))


def _clean_broker():
    """Nothing of this test may reach later tests: queued tasks, run keys, reports."""
    redis = client()
    for key in ("control", "loadgen", "unacked", "unacked_index"):
        redis.delete(key)
    for key in redis.scan_iter(match="sd:run:*", count=1000):
        redis.delete(key)
    redis.xtrim(protocol.REPORT_STREAM, maxlen=0)


def test_beat_fires_a_schedule_that_runs_on_a_worker_and_notifies(project, alice, target, receiver, tmp_path):
    target.reset()
    _clean_broker()
    scenario = store_scenario(project, alice, name="Ping", content=PING)
    schedule = schedules.save_schedule(Schedule(scenario=scenario, name="every 2 s", cron="* * * * *", every_seconds=2,
                                                host=target.url, users=2, spawn_rate=20, duration=3, slots=1))
    hook = Webhook.objects.create(project=project, url=receiver.url, events=[Event.RUN_FINISHED])
    processes = {"collector": start_collector(), "worker": start_worker("machine-s"),
                 "control": start_control(), "beat": start_beat(tmp_path)}
    try:
        run = wait_for(lambda: Run.objects.filter(scenario=scenario).order_by("pk").first(), 30,
                       "beat and the control worker started no run:\n" + processes["beat"].output()[-2000:]
                       + processes["control"].output()[-3000:])
        assert run.trigger == Run.Trigger.SCHEDULE
        assert run.trigger_detail == {"schedule": schedule.pk, "name": "every 2 s"}
        assert run.params["users"] == 2 and run.params["duration"] == 3 and run.params["host"] == target.url

        def finished():
            run.refresh_from_db()
            return run.status in Run.TERMINAL

        wait_for(finished, 40, "the scheduled run never ended")
        assert run.status == Run.Status.FINISHED, run.reason
        assert run.total_requests > 0 and target.total() >= run.total_requests

        # Beat kept firing every 2 s while the run was active: those fires were skipped and recorded.
        skips = list(ScheduleSkip.objects.filter(schedule=schedule))
        assert all(s.kind == ScheduleSkip.Kind.OVERLAP for s in skips)
        assert any(s.active_run_id == run.pk for s in skips), skips

        assert receiver.received.wait(20), processes["control"].output()[-3000:]
        request = receiver.requests[0]
        expected = "sha256=" + hmac.new(hook.secret.encode(), request["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, request["headers"]["X-Swarmdeck-Signature"])
        payload = json.loads(request["body"])
        assert payload["event"] == "run.finished" and payload["run"]["id"] == run.pk
        assert payload["run"]["trigger"] == "schedule" and payload["figures"]["requests"] > 0
    finally:
        schedule.enabled = False
        schedules.save_schedule(schedule)
        processes["beat"].kill(signal.SIGTERM)
        for active in Run.objects.filter(scenario=scenario).active():
            services.request_stop(active)
        for name in ("control", "worker", "collector"):
            processes[name].kill(signal.SIGTERM)
        _clean_broker()
