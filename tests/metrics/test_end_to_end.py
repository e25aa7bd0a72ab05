"""/metrics and OTLP during a real run: a collector (exporting to a local OTLP receiver) and two load
workers in their own processes, a real nginx target; what the last scrape counted is what nginx served."""

import signal
import time

import pytest
from django.test import override_settings

from runs import cluster as registry
from runs import services
from runs.models import Run
from tests.conftest import store_scenario
from tests.metrics.helpers import samples, scrape
from tests.metrics.otlp_stub import OtlpStub, attributes, points
from tests.runs.conftest import fresh_run_keys, start_collector, start_worker, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STEADY = b'''\
from locust import FastHttpUser, task, constant


class Steady(FastHttpUser):
    wait_time = constant(0.05)

    @task(2)
    def ok(self):
        self.client.get("/ok")

    @task(1)
    def boom(self):
        self.client.get("/status/500")
'''
ENDPOINTS = (("/ok", 200), ("/status/500", 500))


@pytest.fixture(scope="module")
def exporting_cluster(django_db_setup, django_db_blocker):
    """Two load workers and a collector that exports over OTLP every 0.5 s to a local receiver."""
    stub = OtlpStub()
    collector = start_collector(OTEL_EXPORTER_OTLP_ENDPOINT=stub.url, OTEL_METRIC_EXPORT_INTERVAL="500")
    workers = [start_worker("machine-a"), start_worker("machine-b")]
    try:
        with django_db_blocker.unblock():
            wait_for(lambda: registry.capacity() >= 2, 30, "the two workers never showed up in the registry")
        yield stub
    finally:
        for process in [collector, *workers]:
            process.kill(signal.SIGTERM)
        stub.stop()


def _requests(families, run) -> dict[str, float]:
    return {s.labels["name"]: s.value for s in samples(families, "swarmdeck_run_requests_total", run=str(run.pk))}


def test_it_scrapes_a_real_run_and_ends_with_what_nginx_served(exporting_cluster, target, client, alice, project):
    stub = exporting_cluster
    before = target.counts()
    scenario = store_scenario(project, alice, name="Steady", content=STEADY)
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 4, "slots": 2,
                                                           "host": target.url})
    Run.objects.filter(pk=run.pk).update(labels={"commit": "abc123"})  # as the run form or the API sets them

    running_scrapes = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db(fields=["status"])
        if run.status in Run.TERMINAL:
            break
        families = scrape(client)
        [info] = samples(families, "swarmdeck_run_info", run=str(run.pk))
        if info.labels["status"] == "running" and _requests(families, run):
            running_scrapes.append(families)
        time.sleep(0.3)
    run = services.wait_until_done(run, timeout=30)
    assert run.status == Run.Status.FINISHED, run.reason

    # While it ran: exported with its labels, users up, counters only going up.
    assert len(running_scrapes) >= 3
    seen = [_requests(families, run).get("/ok", 0) for families in running_scrapes]
    assert seen == sorted(seen) and seen[-1] > seen[0] > 0
    assert any(samples(f, "swarmdeck_run_users", run=str(run.pk), label_commit="abc123")[0].value == 4
               for f in running_scrapes)

    # The scrape after the end (it stays for the grace period) matches nginx, within the requests in flight.
    last = scrape(client)
    counted = _requests(last, run)
    served = target.counts()
    for uri, status in ENDPOINTS:
        delivered = served.get(("GET", uri, status), 0) - before.get(("GET", uri, status), 0)
        assert delivered > 0 and abs(counted[uri] - delivered) <= run.params["users"], (uri, counted, delivered)
    failures = {s.labels["name"]: s.value for s in samples(last, "swarmdeck_run_failures_total", run=str(run.pk))}
    assert failures == {"/ok": 0, "/status/500": counted["/status/500"]}
    timed = {s.labels["name"]: s.value for s in samples(last, "swarmdeck_run_response_time_seconds_count",
                                                        run=str(run.pk))}
    assert timed == counted
    assert sum(counted.values()) == run.total_requests

    # The collector sent the same final figures over OTLP.
    def final_export():
        for request in reversed(stub.received):
            sent = points(request, "swarmdeck.run.requests", run=str(run.pk))
            found = {attributes(p)["name"]: p.as_int for p in sent}
            if found:
                return found
        return None

    wait_for(lambda: final_export() == counted, 10, f"OTLP never sent {counted}; last: {final_export()}")

    with override_settings(SWARMDECK_METRICS_ENDED_GRACE=0):
        assert not samples(scrape(client), "swarmdeck_run_info", run=str(run.pk))
