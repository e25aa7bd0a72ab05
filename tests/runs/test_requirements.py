"""requirements.txt end to end: a real load worker installs a package (offline, from a wheel the
test builds) before its pool imports it, nginx counts what the run reports, the next run reuses
the environment, and a requirement pip cannot satisfy fails the run with pip's message."""

import signal

import pytest

from runs import services
from runs.models import Run, RunSlot
from tests.conftest import store_scenario
from tests.locustfiles import zip_bundle
from tests.runs.conftest import start_collector, start_worker, wait_for
from tests.workers.test_venvs import make_wheel

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOCUSTFILE = b'''\
import swarmdeck_tinypkg
from locust import FastHttpUser, task, constant


class U(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def t(self):
        if swarmdeck_tinypkg.VALUE == "swarmdeck_tinypkg 1.0":
            self.client.get("/ok")
'''


@pytest.fixture
def pip_machine(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "swarmdeck_tinypkg")
    worker = start_worker("pip-machine", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels),
                          SWARMDECK_VENV_DIR=str(tmp_path / "venvs"))
    collector = start_collector()
    try:
        yield worker
    finally:
        collector.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)


def _scenario(project, user, requirements: bytes, name: str):
    bundle = zip_bundle({"locustfile.py": LOCUSTFILE, "requirements.txt": requirements})
    return store_scenario(project, user, name=name, content=bundle, filename="bundle.zip")


def test_a_run_installs_its_requirements_and_the_next_reuses_them(pip_machine, target, alice, project):
    from runs import cluster

    wait_for(lambda: cluster.capacity() >= 1, 30, "the worker never registered")
    scenario = _scenario(project, alice, b"swarmdeck_tinypkg==1.0\n", "With requirements")
    before = target.counts().get(("GET", "/ok", 200), 0)
    first = services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 50, "duration": 3,
                                                             "slots": 1, "host": target.url})
    first = services.wait_until_done(first, timeout=180)
    assert first.status == Run.Status.FINISHED, first.reason
    row = next(r for r in first.totals if r["name"] == "/ok")
    served = target.counts().get(("GET", "/ok", 200), 0) - before
    assert row["requests"] > 0 and abs(row["requests"] - served) <= 2
    assert RunSlot.objects.get(run=first).note.startswith("Environment built in ")

    second = services.start_run(scenario, user=alice, params={"users": 1, "spawn_rate": 50, "duration": 1,
                                                              "slots": 1, "host": target.url})
    second = services.wait_until_done(second, timeout=120)
    assert second.status == Run.Status.FINISHED, second.reason
    assert RunSlot.objects.get(run=second).note.startswith("Environment reused from this machine's cache")


def test_a_bad_requirement_fails_the_run_with_pips_message(pip_machine, target, alice, project):
    from runs import cluster

    wait_for(lambda: cluster.capacity() >= 1, 30, "the worker never registered")
    scenario = _scenario(project, alice, b"swarmdeck_tinypkg==9.9\n", "Bad requirement")
    run = services.start_run(scenario, user=alice, params={"users": 1, "duration": 3, "slots": 1,
                                                           "host": target.url})
    run = services.wait_until_done(run, timeout=120)
    assert run.status == Run.Status.FAILED
    assert "pip could not install requirements.txt" in run.reason
    assert "No matching distribution found for swarmdeck_tinypkg==9.9" in run.reason
