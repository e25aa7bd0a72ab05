"""A locustfile that runs into one of its sandbox's limits is stopped there, the run says which
limit in words, and the next run on the same worker is unaffected. Real Celery worker, real
collector, the nginx target; the worker's limits are lowered through its environment."""

import signal

import pytest

from runs import cluster as registry
from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import start_collector, start_worker, wait_for
from workers import sandbox

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not sandbox.probe().isolated, reason=f"no sandbox here: {sandbox.probe().detail}")]

LIMITS = {"SWARMDECK_POOL_MEMORY_MB": "400", "SWARMDECK_POOL_PROCESSES": "48", "SWARMDECK_POOL_OPEN_FILES": "200",
          "SWARMDECK_POOL_CPU_GRACE": "4"}

HOGS = {
    "memory": ('''\
import time
from locust import User, constant, task

hoard = []


class Hog(User):
    wait_time = constant(0)

    @task
    def grow(self):
        hoard.append(bytearray(20 * 1024 * 1024))
        time.sleep(0.01)
''', "Slot 0: the locustfile exceeded its 400 MiB memory limit (killed)"),
    "processes": ('''\
import os, time
from locust import User, constant, task


class ForkLoop(User):
    wait_time = constant(0)

    def on_start(self):
        children = 0
        while True:  # no child ever exits: only the process limit stops this
            try:
                if os.fork() == 0:
                    time.sleep(600)
                    os._exit(0)
                children += 1
            except OSError:
                time.sleep(0.01)

    @task
    def t(self):
        pass
''', "Slot 0: the locustfile reached its limit of 48 processes and threads (killed)"),
    "open_files": ('''\
import time
from locust import User, constant, task

kept = []


class Leak(User):
    wait_time = constant(0)

    def on_start(self):
        while True:
            try:
                kept.append(open("/dev/null"))
            except OSError:
                time.sleep(0.05)

    @task
    def t(self):
        pass
''', "Slot 0: the locustfile reached its limit of 200 open files (killed)"),
    "cpu": ('''\
from locust import User, constant, task


class Spin(User):
    wait_time = constant(0)

    @task
    def spin(self):
        while True:  # never yields: not even a stop reaches it
            pass
''', "Slot 0: the locustfile used up its 7 s CPU-time limit (killed)"),
}

NORMAL = b'''\
from locust import FastHttpUser, constant, task


class Shopper(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def ok(self):
        self.client.get("/ok")
'''


@pytest.fixture(scope="module")
def limited_worker(django_db_setup, django_db_blocker):
    """One load worker with low limits, and a collector."""
    worker = start_worker("limited", **LIMITS)
    collector = start_collector()
    try:
        with django_db_blocker.unblock():
            wait_for(lambda: registry.capacity() >= 1, 30, "the limited worker never showed up in the registry")
        yield worker
    finally:
        collector.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)


@pytest.mark.parametrize("limit", list(HOGS))
def test_it_stops_a_locustfile_at_its_limit_and_runs_the_next(limited_worker, target, alice, project, limit):
    content, reason = HOGS[limit]
    hog = store_scenario(project, alice, name=f"Hog {limit}", content=content.encode())
    run = services.start_run(hog, user=alice, params={"users": 1, "spawn_rate": 10, "duration": 2, "slots": 1,
                                                      "host": target.url, "stop_timeout": 1})
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FAILED, (run.status, run.reason)
    assert reason in run.reason, run.reason
    slot = run.slots.get()
    assert slot.error.startswith(reason.removeprefix("Slot 0: ")), slot.error
    if limit == "memory":  # where it happened, in the author's own file
        assert 'File "locustfile.py", line 12, in grow' in run.reason and "MemoryError" in run.reason, run.reason

    before = target.total()
    normal = store_scenario(project, alice, name=f"After {limit}", content=NORMAL)
    after = services.start_run(normal, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 2, "slots": 1,
                                                           "host": target.url, "stop_timeout": 3})
    after = services.wait_until_done(after, timeout=90)
    assert after.status == Run.Status.FINISHED, after.reason
    assert not after.degraded
    assert after.total_requests == target.total() - before > 0
    assert limited_worker.popen.poll() is None  # the worker itself is unharmed
