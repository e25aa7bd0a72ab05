"""What a locustfile author does with Locust, end to end (issue 10): real collector, Celery load
workers on two "machines" and the nginx target.

- Users that raise in `__init__` fail the run with the error and where it happened, like
  Locust's examples/multiple_hosts.py run without API_HOST."""

import time

import pytest

from runs import services
from runs.models import Run, RunSlot
from tests.conftest import store_scenario

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

