"""A load worker that cannot sandbox (no bubblewrap here: SWARMDECK_BWRAP points nowhere)
still starts, says so loudly, registers as not isolated, and takes no runs while isolation is
required: the Cluster page and the run form say why, and a slot sent to it anyway is refused
with the reason. Real Celery worker and collector."""

import signal

import pytest
from django.urls import reverse

from runs import cluster as registry
from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import start_collector, start_worker, wait_for
from tests.runs.test_limits import NORMAL

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def laptop(django_db_setup, django_db_blocker):
    worker = start_worker("laptop", SWARMDECK_BWRAP="/nonexistent/bwrap")
    collector = start_collector()
    try:
        with django_db_blocker.unblock():
            wait_for(lambda: any(w.host == "laptop" and w.online for w in registry.workers()), 30,
                     "the laptop worker never showed up in the registry")
        yield worker
    finally:
        collector.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)


def project_scenario(user):
    from scenarios.services import create_project

    project = create_project(user, name="Laptop", slug="laptop")
    return store_scenario(project, user, name="Form").pk


def test_it_registers_a_worker_without_bubblewrap_as_not_isolated(laptop, client, alice, settings):
    settings.SWARMDECK_REQUIRE_ISOLATION = True
    worker = next(w for w in registry.workers() if w.host == "laptop")
    assert worker.isolated is False and not worker.eligible
    assert worker.isolation == "bubblewrap (bwrap) is not installed: install bubblewrap (Debian/Ubuntu: " \
                               "apt-get install bubblewrap)"
    assert registry.capacity() == 0 and registry.unisolated_slots() == 1
    assert "LOAD WORKER loadgen@laptop IS NOT ISOLATED" in laptop.output()
    client.force_login(alice)
    page = client.get(reverse("runs-cluster")).content.decode()
    assert "not isolated" in page and "takes no runs" in page
    assert "1 slot takes no runs: their worker is not isolated." in " ".join(page.split())
    assert services.capacity_problem(1).startswith("No isolated load worker is online")
    form = " ".join(client.get(reverse("runs-create", args=[project_scenario(alice)])).content.decode().split())
    assert "No isolated load worker is online: 1 slot online cannot sandbox locustfiles and takes no runs." in form

    settings.SWARMDECK_REQUIRE_ISOLATION = False
    assert registry.capacity() == 1 and services.capacity_problem(1) is None


def test_it_refuses_a_slot_on_an_unisolated_worker_with_the_reason(laptop, target, alice, project, settings):
    settings.SWARMDECK_REQUIRE_ISOLATION = True
    scenario = store_scenario(project, alice, name="Refused")
    before = target.total()
    run = services.start_run(scenario, user=alice, params={"users": 1, "duration": 2, "slots": 1, "host": target.url})
    assert services.dispatch(run)  # sent to the queue as if capacity had allowed it: the worker must refuse it
    run = services.wait_until_done(run, timeout=60)
    assert run.status == Run.Status.FAILED
    assert "Slot refused by loadgen@laptop on laptop: this worker is not isolated (bubblewrap (bwrap) is not " \
           "installed" in run.reason
    assert "SWARMDECK_REQUIRE_ISOLATION" in run.reason
    assert target.total() == before


def test_it_runs_on_an_unisolated_worker_when_isolation_is_not_required(laptop, target, alice, project, settings):
    settings.SWARMDECK_REQUIRE_ISOLATION = False
    scenario = store_scenario(project, alice, name="Allowed", content=NORMAL)
    before = target.total()
    run = services.start_run(scenario, user=alice, params={"users": 2, "spawn_rate": 100, "duration": 2, "slots": 1,
                                                           "host": target.url, "stop_timeout": 3})
    assert services.dispatch(run)  # the collector's own settings require isolation: dispatch as an admin allowed it
    run = services.wait_until_done(run, timeout=60)
    assert run.status == Run.Status.FINISHED, run.reason
    assert run.total_requests == target.total() - before > 0
