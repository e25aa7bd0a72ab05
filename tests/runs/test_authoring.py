"""What a locustfile author does with Locust, end to end (issue 10): real collector, Celery load
workers on two "machines" and the nginx target.

- Users that raise in `__init__` fail the run with the error and where it happened, like
  Locust's examples/multiple_hosts.py run without API_HOST.
- Locust's distributed API: each slot is a worker with its index and the run's slot count, and
  splits a CSV of test data by them (the README's recipe)."""

import collections
import re
import time

import pytest

from runs import services
from runs.models import Run, RunSlot
from tests.conftest import store_scenario
from tests.locustfiles import zip_bundle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MULTIPLE_HOSTS = b'''\
import os

from locust import HttpUser, TaskSet, between, task
from locust.clients import HttpSession


class MultipleHostsUser(HttpUser):
    abstract = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.api_client = HttpSession(
            base_url=os.environ["API_HOST"], request_event=self.client.request_event, user=self
        )


class UserTasks(TaskSet):
    @task
    def index(self):
        self.user.client.get("/ok")

    @task
    def index_other_host(self):
        self.user.api_client.get("/json")


class WebsiteUser(MultipleHostsUser):
    wait_time = between(2, 5)
    tasks = [UserTasks]
'''
API_HOST_LINE = next(n for n, line in enumerate(MULTIPLE_HOSTS.decode().splitlines(), 1) if "API_HOST" in line)


def test_it_fails_a_run_whose_users_raise_in_init_and_says_what_and_where(cluster, target, alice, project):
    began = time.monotonic()
    scenario = store_scenario(project, alice, name="Multiple hosts", content=MULTIPLE_HOSTS)
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 10, "duration": 120, "slots": 2,
                                                           "host": target.url})
    run = services.wait_until_done(run, timeout=60)
    assert run.status == Run.Status.FAILED, run.reason
    assert "KeyError: 'API_HOST'" in run.reason and f"locustfile.py:{API_HOST_LINE}" in run.reason, run.reason
    assert "failed in __init__" in run.reason
    assert time.monotonic() - began < 40  # fast: long before the 2 minutes
    assert not any(s.status in (RunSlot.Status.RUNNING, RunSlot.Status.READY) for s in run.slots.all())
    rows = [row for row in run.exceptions if row["message"] == "KeyError: 'API_HOST'"]
    assert rows and sum(row["count"] for row in rows) >= 2, run.exceptions
    for row in rows:
        assert f'File "locustfile.py", line {API_HOST_LINE}, in __init__' in row["traceback"]
        assert "/tmp" not in row["traceback"] and "swarmdeck-run" not in row["traceback"]


PARTITIONED = b'''\
import csv
import itertools
import os

from locust import FastHttpUser, constant, events, task

MY_ROWS = []


@events.test_start.add_listener
def take_my_rows(environment, **_kwargs):
    runner = environment.runner
    with open(os.path.join(os.path.dirname(__file__), "accounts.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    MY_ROWS[:] = rows[runner.worker_index::runner.worker_count]  # every n-th row, from this slot's index


class Account(FastHttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        self.rows = itertools.cycle(MY_ROWS)

    @task
    def visit(self):
        runner = self.environment.runner
        row = next(self.rows)
        self.client.get(f"/slot/{runner.worker_index}/of/{runner.worker_count}"
                        f"/env/{os.environ['SWARMDECK_SLOT']}/{os.environ['SWARMDECK_SLOTS']}/account/{row['id']}",
                        name="/slot/[account]")
'''
ACCOUNTS = b"id,name\n" + b"".join(f"{i},user{i}\n".encode() for i in range(10))
SLOT_URI = re.compile(r"^/slot/(\d+)/of/(\d+)/env/(\d+)/(\d+)/account/(\d+)$")


def test_each_slot_has_its_own_index_and_takes_every_nth_row_of_the_test_data(cluster, target, alice, project):
    bundle = zip_bundle({"locustfile.py": PARTITIONED, "accounts.csv": ACCOUNTS})
    scenario = store_scenario(project, alice, name="Partitioned", content=bundle, filename="partitioned.zip")
    target.reset()
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 4, "slots": 2,
                                                           "host": target.url})
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason
    assert {s.host for s in run.slots.all()} == {"machine-a", "machine-b"}
    served = collections.Counter()
    for (method, uri, status), count in target.counts().items():
        match = SLOT_URI.match(uri)
        assert match and method == "GET" and status == 200, (method, uri, status)
        served[tuple(map(int, match.groups()))] += count
    # Slot by slot: the runner's worker_index and SWARMDECK_SLOT agree, the count is the run's 2 slots.
    seen = {(index, count, env, env_count) for index, count, env, env_count, _ in served}
    assert seen == {(0, 2, 0, 2), (1, 2, 1, 2)}
    # Each slot took every 2nd row from its index: together they cover the file, each row once.
    rows_of = {index: {row for i, _, _, _, row in served if i == index} for index in (0, 1)}
    assert rows_of == {0: {0, 2, 4, 6, 8}, 1: {1, 3, 5, 7, 9}}
    assert abs(sum(served.values()) - run.total_requests) <= run.params["users"]
