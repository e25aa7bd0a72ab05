"""The fair queue with real processes: a collector and one load worker with one slot (room for one run
at a time). Project A queues 5 runs, then B queues 1: B's run is admitted second, not sixth."""

import signal

import pytest

from runs import cluster as registry
from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import start_collector, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PATHS = b"""\
from locust import FastHttpUser, task, constant


class U(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def t(self):
        self.client.get("/slot/%s")
"""


@pytest.fixture
def one_slot():
    processes = [start_worker("fair-machine"), start_collector()]
    try:
        wait_for(lambda: registry.capacity() >= 1, 30, "the worker never showed up in the registry")
        yield
    finally:
        for process in processes:
            process.kill(signal.SIGTERM)


def test_another_projects_run_goes_second_not_sixth(one_slot, target, alice, charlie, project, charlies_project):
    a = store_scenario(project, alice, name="A", content=PATHS % b"a")
    b = store_scenario(charlies_project, charlie, name="B", content=PATHS % b"b")
    before = target.counts()
    a_runs = [services.start_run(a, user=alice, params={"host": target.url, "users": 1, "duration": 1, "slots": 1})
              for _ in range(5)]
    b_run = services.start_run(b, user=charlie, params={"host": target.url, "users": 1, "duration": 1, "slots": 1})
    try:
        b_run = services.wait_until_done(b_run, timeout=60)
        assert b_run.status == Run.Status.FINISHED, b_run.reason
        a_first = Run.objects.get(pk=a_runs[0].pk)
        assert a_first.status == Run.Status.FINISHED and a_first.dispatched_at < b_run.dispatched_at
        # Every other run of A was still queued when B's was admitted, or admitted after it.
        later = Run.objects.filter(pk__in=[r.pk for r in a_runs[1:]])
        assert all(r.dispatched_at is None or r.dispatched_at > b_run.dispatched_at for r in later)
        served = target.counts()
        b_served = served.get(("GET", "/slot/b", 200), 0) - before.get(("GET", "/slot/b", 200), 0)
        assert b_served > 0 and abs(b_served - b_run.total_requests) <= 1, (b_run.totals, b_run.warnings, served)
    finally:
        for run in Run.objects.filter(status__in=Run.ACTIVE):
            if run.status == Run.Status.QUEUED:
                services.cancel_run(run)
            else:
                services.request_stop(run)
