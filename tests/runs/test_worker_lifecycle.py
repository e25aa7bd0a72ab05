"""Load workers coming and going, and a run that outlives the broker's visibility timeout."""

import re
import signal
import time

import pytest
from django.urls import reverse

from runs import cluster as registry
from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import start_collector, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEADY = b'''\
from locust import FastHttpUser, task, constant


class Steady(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def ok(self):
        self.client.get("/ok")
'''


def _online(host):
    return [w for w in registry.workers() if w.host == host and w.online]


def test_a_machine_shows_up_within_5_s_and_goes_offline_within_15_s_of_dying(client, alice, project):
    worker = start_worker("machine-new", concurrency=2)
    try:
        wait_for(lambda: "ready" in worker.output(), 60, "the worker never became ready:\n" + worker.output())
        ready = time.monotonic()
        wait_for(lambda: _online("machine-new"), 5, "the worker was not online 5 s after it was ready")
        assert time.monotonic() - ready <= 5
        assert _online("machine-new")[0].slots == 2
        client.force_login(alice)
        page = client.get(reverse("runs-cluster")).content.decode()
        assert "machine-new" in page and "online" in page
    finally:
        worker.kill(signal.SIGKILL)  # no clean shutdown: the registry must notice by itself
    died = time.monotonic()
    wait_for(lambda: not _online("machine-new"), 15, "the dead worker still showed as online after 15 s")
    assert time.monotonic() - died <= 15
    gone = [w for w in registry.workers() if w.host == "machine-new"]
    assert gone and not gone[0].online  # still listed, as offline
    page = client.get(reverse("runs-cluster")).content.decode()
    assert re.search(r"machine-new.*?offline", page, re.S)


def test_a_run_longer_than_the_visibility_timeout_is_delivered_once(target, alice, project):
    # The worker sweeps for unacknowledged messages older than its 3 s visibility timeout every
    # second: a 12 s run would be handed out again if the slot task were acknowledged late.
    worker = start_worker("machine-v", concurrency=2, CELERY_VISIBILITY_TIMEOUT="3",
                          CELERY_RESTORE_INTERVAL="1")
    collector = start_collector()
    try:
        wait_for(lambda: _online("machine-v"), 60, "the worker never registered")
        before = target.total()
        scenario = store_scenario(project, alice, name="Steady", content=STEADY)
        run = services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 10, "duration": 12,
                                                               "slots": 1, "host": target.url})
        run = services.wait_until_done(run, timeout=120)
        assert run.status == Run.Status.FINISHED, run.reason
        received = re.findall(r"Task workers\.run_slot\[[^\]]+\] received", worker.output())
        assert len(received) == 1, worker.output()
        assert "already claimed" not in worker.output().lower()
        assert abs(run.total_requests - (target.total() - before)) <= 2
    finally:
        collector.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)
